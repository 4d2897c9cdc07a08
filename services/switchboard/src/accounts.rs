//! The account commands (`switchboard user add`, `switchboard token create`) and the first start's
//! admin, over the bus the settings name: the same `accounts` bucket the running process checks.

use std::sync::Arc;
use std::time::Duration;

use switchboard_accounts::{Accounts, Role, bootstrap_admin};
use switchboard_bus::Bus;

use crate::settings::Settings;

async fn open(settings: &Settings, bus: &Arc<dyn Bus>) -> anyhow::Result<Accounts> {
    let ttl = Duration::from_secs(settings.auth.session_ttl_secs);
    Ok(Accounts::open(bus, ttl).await?)
}

/// Adds a user; returns the password to hand over when none was given (shown once, stored hashed).
pub async fn add_user(
    settings: &Settings,
    bus: &Arc<dyn Bus>,
    name: &str,
    role: Role,
    password: Option<String>,
) -> anyhow::Result<Option<String>> {
    let added = open(settings, bus)
        .await?
        .add_user(name, role, password.as_deref())
        .await?;
    Ok(added.generated_password)
}

/// Creates an API token and returns its secret (shown once, stored hashed).
pub async fn create_token(
    settings: &Settings,
    bus: &Arc<dyn Bus>,
    name: &str,
    role: Role,
) -> anyhow::Result<String> {
    Ok(open(settings, bus)
        .await?
        .create_token(name, role)
        .await?
        .token)
}

/// On the first start of a store with no user: creates `admin` and returns its one-time password.
pub async fn first_admin(
    settings: &Settings,
    bus: &Arc<dyn Bus>,
) -> anyhow::Result<Option<String>> {
    Ok(bootstrap_admin(&open(settings, bus).await?).await?)
}
