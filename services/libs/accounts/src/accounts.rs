//! Local accounts in the `accounts` bucket: one JSON record per user under `user.<name>`, beside the
//! sessions (`session.<sha256>`, see `session.rs`) and API tokens (`token.<id>`, see `token.rs`).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use switchboard_bus::{Bus, BusError, Created, Entry, Kv};

use crate::error::AuthError;
use crate::password;
use crate::role::Role;
use crate::secret::random_hex;

/// The bucket accounts, sessions and API tokens live in; only this library reads it.
pub const ACCOUNTS_BUCKET: &str = "accounts";

const USER_PREFIX: &str = "user.";
const MAX_NAME_LEN: usize = 64;

/// A user as anyone may see it: never the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    pub name: String,
    pub role: Role,
    pub created_at_ms: u64,
}

/// A user just added, with the password when it was generated: the only time anyone sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedUser {
    pub user: User,
    pub generated_password: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredUser {
    #[serde(flatten)]
    pub(crate) user: User,
    /// argon2id PHC string.
    password_hash: String,
    /// Renewed whenever the password changes or the name is given to a new user; a session records
    /// the stamp it was opened under, so those sessions end with it.
    pub(crate) stamp: String,
}

/// The accounts store. Cheap to clone; every clone shares one bucket handle.
#[derive(Debug, Clone)]
pub struct Accounts {
    pub(crate) kv: Arc<dyn Kv>,
    pub(crate) session_ttl: Duration,
}

impl Accounts {
    /// Opens the accounts bucket; sessions opened through it last `session_ttl`.
    pub async fn open(bus: &Arc<dyn Bus>, session_ttl: Duration) -> Result<Self, AuthError> {
        Ok(Self {
            kv: bus.kv(ACCOUNTS_BUCKET).await?,
            session_ttl,
        })
    }

    /// Adds a user with `password`, or a generated one when `None` (returned once, in
    /// [`AddedUser::generated_password`]). Refuses a name already taken.
    pub async fn add_user(
        &self,
        name: &str,
        role: Role,
        password: Option<&str>,
    ) -> Result<AddedUser, AuthError> {
        check_name("name", name)?;
        let (password, generated) = match password {
            Some(given) => {
                password::check("password", given)?;
                (given.to_owned(), false)
            }
            None => (password::generate()?, true),
        };
        let stored = StoredUser {
            user: User {
                name: name.to_owned(),
                role,
                created_at_ms: now_ms(),
            },
            password_hash: hash_off_thread(password.clone()).await?,
            stamp: random_hex(8)?,
        };
        match self.kv.create(&user_key(name), to_json(&stored)).await? {
            Created::Created { .. } => Ok(AddedUser {
                user: stored.user,
                generated_password: generated.then_some(password),
            }),
            Created::Exists(_) => Err(AuthError::UserExists(name.to_owned())),
        }
    }

    /// The user when `password` is theirs; `None` for a wrong password and for a name nobody has,
    /// which take the same time.
    pub async fn verify(&self, name: &str, password: &str) -> Result<Option<User>, AuthError> {
        Ok(self
            .verified(name, password)
            .await?
            .map(|stored| stored.user))
    }

    pub(crate) async fn verified(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Option<StoredUser>, AuthError> {
        let stored = match check_name("name", name) {
            Ok(()) => self.stored_user(name).await?.map(|(user, _)| user),
            Err(_) => None,
        };
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || match stored {
            Some(stored) => {
                let ok = password::verify(&stored.user.name, &stored.password_hash, &password)?;
                Ok(ok.then_some(stored))
            }
            None => {
                password::verify_nobody(&password);
                Ok(None)
            }
        })
        .await
        .map_err(AuthError::Blocking)?
    }

    /// Replaces the password of `name`, which also ends every session they have open.
    pub async fn set_password(&self, name: &str, password: &str) -> Result<(), AuthError> {
        check_name("name", name)?;
        password::check("password", password)?;
        let password_hash = hash_off_thread(password.to_owned()).await?;
        // A read-modify-write: of two changes racing, the later reads the earlier's record.
        loop {
            let (mut stored, revision) = self
                .stored_user(name)
                .await?
                .ok_or_else(|| AuthError::NoUser(name.to_owned()))?;
            stored.password_hash.clone_from(&password_hash);
            stored.stamp = random_hex(8)?;
            match self
                .kv
                .update(&user_key(name), to_json(&stored), revision)
                .await
            {
                Ok(_) => return Ok(()),
                Err(BusError::WrongRevision { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Removes `name`; their sessions are refused from then on.
    pub async fn remove_user(&self, name: &str) -> Result<(), AuthError> {
        check_name("name", name)?;
        if self.stored_user(name).await?.is_none() {
            return Err(AuthError::NoUser(name.to_owned()));
        }
        Ok(self.kv.delete(&user_key(name)).await?)
    }

    pub async fn user(&self, name: &str) -> Result<Option<User>, AuthError> {
        check_name("name", name)?;
        Ok(self.stored_user(name).await?.map(|(stored, _)| stored.user))
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<User>, AuthError> {
        let mut users: Vec<User> = self
            .records::<StoredUser>(USER_PREFIX)
            .await?
            .into_iter()
            .map(|(_, stored)| stored.user)
            .collect();
        users.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(users)
    }

    pub(crate) async fn stored_user(
        &self,
        name: &str,
    ) -> Result<Option<(StoredUser, u64)>, AuthError> {
        let key = user_key(name);
        match self.kv.get(&key).await? {
            Some(Entry { value, revision }) => Ok(Some((from_json(&key, &value)?, revision))),
            None => Ok(None),
        }
    }

    /// Writes `record` under `key` if the key is still as it was read: absent (`revision` `None`) or
    /// at `revision`. `false` when another writer got there first, so the caller reads again: the
    /// read-modify-write of records several replicas update at once.
    pub(crate) async fn write_if_unchanged<T: Serialize>(
        &self,
        key: &str,
        record: &T,
        revision: Option<u64>,
    ) -> Result<bool, AuthError> {
        match revision {
            None => Ok(matches!(
                self.kv.create(key, to_json(record)).await?,
                Created::Created { .. }
            )),
            Some(revision) => match self.kv.update(key, to_json(record), revision).await {
                Ok(_) => Ok(true),
                Err(BusError::WrongRevision { .. }) => Ok(false),
                Err(e) => Err(e.into()),
            },
        }
    }

    /// Every record under `prefix`, read from one listing of the bucket.
    pub(crate) async fn records<T: DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, T)>, AuthError> {
        self.kv
            .entries()
            .await?
            .into_iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(key, entry)| {
                let record = from_json(&key, &entry.value)?;
                Ok((key, record))
            })
            .collect()
    }
}

fn user_key(name: &str) -> String {
    format!("{USER_PREFIX}{name}")
}

/// Names of users and tokens: 1 to 64 letters, digits, `-`, `_` or `.`, starting with a letter or
/// digit. Narrower than what a KV key allows, so every name is a valid key and reads well in a list.
pub(crate) fn check_name(field: &'static str, name: &str) -> Result<(), AuthError> {
    let starts_well = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric());
    let ok = starts_well
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(AuthError::invalid(
            field,
            format!(
                "{name:?}: a name has 1 to {MAX_NAME_LEN} letters, digits, '-', '_' or '.', and \
                 starts with a letter or digit"
            ),
        ))
    }
}

/// Hashing takes tens of milliseconds of CPU on purpose; off the async threads, it stalls no request.
async fn hash_off_thread(password: String) -> Result<String, AuthError> {
    tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(AuthError::Blocking)?
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Bytes {
    // Serializing these plain structs of strings and numbers cannot fail.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

pub(crate) fn from_json<T: DeserializeOwned>(key: &str, value: &[u8]) -> Result<T, AuthError> {
    serde_json::from_slice(value).map_err(|source| AuthError::Corrupt {
        key: key.to_owned(),
        source,
    })
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_the_field_named() {
        for good in ["admin", "ann.lee", "bot-7", "x", "A_1"] {
            check_name("name", good).expect(good);
        }
        for bad in [
            "",
            ".ann",
            "-x",
            "ann lee",
            "ann/lee",
            "ann*",
            &"a".repeat(65),
        ] {
            let err = check_name("name", bad).expect_err(bad);
            assert!(
                matches!(err, AuthError::Invalid { field: "name", .. }),
                "{bad}: {err:?}"
            );
        }
    }
}
