//! Console sessions: an opaque random token handed out at login, kept in the bucket only as its
//! SHA-256 (`session.<hex>`) with the user, the user's stamp and an expiry.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::accounts::{Accounts, from_json, now_ms, to_json};
use crate::error::{AuthError, CredentialKind};
use crate::limit::{FAILURE_PREFIX, StoredFailures};
use crate::principal::{Principal, Via};
use crate::rate::{RATE_PREFIX, StoredBucket};
use crate::role::Role;
use crate::secret::{random_b64, sha256_hex};
use crate::sso::{HANDOFF_PREFIX, StoredHandoff};

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
    /// Set for a session opened through the identity provider: the role its ID token named. Such a
    /// session has no local user, so no stamp; it ends at its expiry or logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sso_role: Option<Role>,
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
        self.open_session(stored.user.name, stored.user.role, stored.stamp, None)
            .await
    }

    /// Opens a session for a caller the identity provider vouched for.
    pub(crate) async fn sso_session(&self, principal: Principal) -> Result<Session, AuthError> {
        let role = principal.role;
        self.open_session(principal.name, role, String::new(), Some(role))
            .await
    }

    async fn open_session(
        &self,
        name: String,
        role: Role,
        stamp: String,
        sso_role: Option<Role>,
    ) -> Result<Session, AuthError> {
        let token = random_b64(32)?;
        let ttl_ms = u64::try_from(self.session_ttl.as_millis()).unwrap_or(u64::MAX);
        let session = StoredSession {
            name: name.clone(),
            stamp,
            expires_at_ms: now_ms().saturating_add(ttl_ms),
            sso_role,
        };
        self.kv.put(&session_key(&token), to_json(&session)).await?;
        Ok(Session {
            token,
            name,
            role,
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
        if let Some(role) = session.sso_role {
            if session.expires_at_ms > now_ms() {
                return Ok(Principal {
                    name: session.name,
                    role,
                    via: Via::Sso,
                });
            }
            let _ = self.kv.delete_expect_revision(&key, entry.revision).await;
            return Err(refused);
        }
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

    /// Deletes every expired session, every login-failure record whose failures have all left the
    /// window, every request-rate bucket that is full again and every unredeemed SSO hand-off code,
    /// and returns how many. All are ignored anyway
    /// once expired; this only keeps the
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
        for (key, bucket) in self.records::<StoredBucket>(RATE_PREFIX).await? {
            if bucket.until_ms <= now {
                self.kv.delete(&key).await?;
                purged += 1;
            }
        }
        for (key, handoff) in self.records::<StoredHandoff>(HANDOFF_PREFIX).await? {
            if handoff.until_ms <= now {
                self.kv.delete(&key).await?;
                purged += 1;
            }
        }
        Ok(purged)
    }
}
