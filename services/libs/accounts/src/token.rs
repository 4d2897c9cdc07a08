//! API tokens for connectors and scripts: `sbt_<id>_<secret>`, the id naming the record
//! (`token.<id>`) so a token is found with one read, the secret kept only as its SHA-256.

use serde::{Deserialize, Serialize};

use crate::accounts::{Accounts, check_name, from_json, now_ms, to_json};
use crate::error::{AuthError, CredentialKind};
use crate::principal::{Principal, Via};
use crate::role::Role;
use crate::secret::{random_b64, random_hex, sha256_hex};

/// What every API token starts with, so the authenticator tells it from a session or a JWT, and a
/// secret scanner can find one pasted where it should not be.
pub const TOKEN_PREFIX: &str = "sbt_";

const TOKEN_KEY_PREFIX: &str = "token.";

/// An API token as listings show it: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at_ms: u64,
}

/// A token just created. `token` is the only copy of the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub info: TokenInfo,
    pub token: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredToken {
    #[serde(flatten)]
    info: TokenInfo,
    secret_sha256: String,
}

fn token_key(id: &str) -> String {
    format!("{TOKEN_KEY_PREFIX}{id}")
}

impl Accounts {
    /// Creates an API token called `name` (a label: names need not be unique) acting as `role`.
    pub async fn create_token(&self, name: &str, role: Role) -> Result<NewToken, AuthError> {
        check_name("name", name)?;
        // Hex, so the id never holds the `_` that separates it from the secret.
        let id = random_hex(8)?;
        let secret = random_b64(32)?;
        let info = TokenInfo {
            id: id.clone(),
            name: name.to_owned(),
            role,
            created_at_ms: now_ms(),
        };
        let stored = StoredToken {
            info: info.clone(),
            secret_sha256: sha256_hex(&secret),
        };
        self.kv.put(&token_key(&id), to_json(&stored)).await?;
        Ok(NewToken {
            info,
            token: format!("{TOKEN_PREFIX}{id}_{secret}"),
        })
    }

    /// Every API token, by name then id.
    pub async fn tokens(&self) -> Result<Vec<TokenInfo>, AuthError> {
        let mut tokens: Vec<TokenInfo> = self
            .records::<StoredToken>(TOKEN_KEY_PREFIX)
            .await?
            .into_iter()
            .map(|(_, stored)| stored.info)
            .collect();
        tokens.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        Ok(tokens)
    }

    /// Revokes the token `id`; it is refused from the next request on.
    pub async fn revoke_token(&self, id: &str) -> Result<(), AuthError> {
        let found = is_token_id(id) && self.kv.get(&token_key(id)).await?.is_some();
        if !found {
            return Err(AuthError::NoToken(id.to_owned()));
        }
        Ok(self.kv.delete(&token_key(id)).await?)
    }

    /// The caller an API token stands for.
    pub async fn token(&self, token: &str) -> Result<Principal, AuthError> {
        let refused = AuthError::BadCredential {
            kind: CredentialKind::ApiToken,
        };
        let Some((id, secret)) = token
            .strip_prefix(TOKEN_PREFIX)
            .and_then(|rest| rest.split_once('_'))
            .filter(|(id, _)| is_token_id(id))
        else {
            return Err(refused);
        };
        let key = token_key(id);
        let Some(entry) = self.kv.get(&key).await? else {
            return Err(refused);
        };
        let stored: StoredToken = from_json(&key, &entry.value)?;
        // Comparing hashes, not secrets: how long the comparison takes says nothing useful about
        // the secret.
        if stored.secret_sha256 != sha256_hex(secret) {
            return Err(refused);
        }
        Ok(Principal {
            name: stored.info.name,
            role: stored.info.role,
            via: Via::ApiToken,
        })
    }
}

fn is_token_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())
}
