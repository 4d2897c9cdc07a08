//! Console sessions: an opaque random token handed out at login, kept in the bucket only as its
//! SHA-256 (`session.<hex>`) with the user, the user's stamp and an expiry.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::accounts::{Accounts, from_json, now_ms, to_json};
use crate::error::{AuthError, CredentialKind};
use crate::limit::{FAILURE_PREFIX, StoredFailures};
use crate::principal::{Principal, Via};
use crate::role::Role;
use crate::secret::{random_b64, sha256_hex};

/// The cookie the console's session travels in.
pub const COOKIE: &str = "sb_session";

/// How long a session lasts unless configured otherwise: a working day.
pub const DEFAULT_TTL: Duration = Duration::from_secs(12 * 3600);

const SESSION_PREFIX: &str = "session.";

/// A session just opened. `token` is the only copy of the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token: String,
    pub name: String,
    pub role: Role,
    pub expires_at_ms: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredSession {
    name: String,
    /// The user's stamp at login: a password change or a new user under the same name renews it,
    /// which ends this session.
    stamp: String,
    expires_at_ms: u64,
}

fn session_key(token: &str) -> String {
    format!("{SESSION_PREFIX}{}", sha256_hex(token))
}

impl Accounts {
    /// Opens a session for `name` when `password` is theirs. Not rate limited here (the CLI calls it
    /// too); [`Authenticator::login`](crate::Authenticator::login) is.
    pub async fn login(&self, name: &str, password: &str) -> Result<Session, AuthError> {
        let stored = self
            .verified(name, password)
            .await?
            .ok_or(AuthError::BadCredential {
                kind: CredentialKind::Password,
            })?;
        let token = random_b64(32)?;
        let ttl_ms = u64::try_from(self.session_ttl.as_millis()).unwrap_or(u64::MAX);
        let session = StoredSession {
            name: stored.user.name.clone(),
            stamp: stored.stamp,
            expires_at_ms: now_ms().saturating_add(ttl_ms),
        };
        self.kv.put(&session_key(&token), to_json(&session)).await?;
        Ok(Session {
            token,
            name: stored.user.name,
            role: stored.user.role,
            expires_at_ms: session.expires_at_ms,
        })
    }

    /// Ends the session `token` names; ending one that is not open is no error.
    pub async fn logout(&self, token: &str) -> Result<(), AuthError> {
        Ok(self.kv.delete(&session_key(token)).await?)
    }

    /// The caller a session token stands for, with the user's current role. An expired session, or
    /// one whose user was removed or changed password, is refused and deleted.
    pub async fn session(&self, token: &str) -> Result<Principal, AuthError> {
        let refused = AuthError::BadCredential {
            kind: CredentialKind::Session,
        };
        let key = session_key(token);
        let Some(entry) = self.kv.get(&key).await? else {
            return Err(refused);
        };
        let session: StoredSession = from_json(&key, &entry.value)?;
        let user = match self.stored_user(&session.name).await? {
            Some((user, _)) if user.stamp == session.stamp && session.expires_at_ms > now_ms() => {
                user.user
            }
            _ => {
                // The refusal stands whether or not the delete succeeds: it fails when another
                // request deleted the session first, and a bus failure only leaves it for the purge.
                let _ = self.kv.delete_expect_revision(&key, entry.revision).await;
                return Err(refused);
            }
        };
        Ok(Principal {
            name: user.name,
            role: user.role,
            via: Via::Session,
        })
    }

    /// Deletes every expired session, and every login-failure record whose failures have all left
    /// the window, and returns how many. Both are ignored anyway once expired; this only keeps the
    /// bucket from growing with sessions nobody presents again and names nobody tries again, for a
    /// periodic task of the binary.
    pub async fn purge_expired_sessions(&self) -> Result<usize, AuthError> {
        let now = now_ms();
        let mut purged = 0;
        for (key, session) in self.records::<StoredSession>(SESSION_PREFIX).await? {
            if session.expires_at_ms <= now {
                self.kv.delete(&key).await?;
                purged += 1;
            }
        }
        for (key, failures) in self.records::<StoredFailures>(FAILURE_PREFIX).await? {
            if failures.until_ms <= now {
                self.kv.delete(&key).await?;
                purged += 1;
            }
        }
        Ok(purged)
    }
}
