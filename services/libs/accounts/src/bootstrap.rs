//! The first start: an admin to log in with, when there is nobody yet.

use crate::accounts::Accounts;
use crate::error::AuthError;
use crate::role::Role;

/// The name of the admin the first start creates.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// When no user exists, creates [`BOOTSTRAP_ADMIN`] with a random password and returns that password
/// for the caller to print once; `None` when there were users already. Of two processes starting
/// together, one creates the admin and the other gets `None`: the user is written with a KV create,
/// which only one writer wins.
pub async fn bootstrap_admin(accounts: &Accounts) -> Result<Option<String>, AuthError> {
    if !accounts.users().await?.is_empty() {
        return Ok(None);
    }
    match accounts.add_user(BOOTSTRAP_ADMIN, Role::Admin, None).await {
        Ok(added) => Ok(added.generated_password),
        Err(AuthError::UserExists(_)) => Ok(None),
        Err(e) => Err(e),
    }
}
