//! Who may call Switchboard: local accounts with argon2id passwords and sessions for the console, API
//! tokens for connectors and scripts, optional OIDC JWTs, the five roles and what each may do, and
//! one tower layer that makes both doors (axum HTTP and tonic gRPC) check every request.
//!
//! The binary builds one [`Auth`] from the `auth` settings section and takes from it the
//! [`AuthLayer`] for both servers, the [`router`](Auth::router) of the accounts API, and the
//! [`Accounts`] for the CLI (`user add`, `token create`) and the first start ([`bootstrap_admin`]).
//! Handlers take the caller as an axum extractor (`principal: Principal`) or, in gRPC, with
//! [`Principal::from_grpc`], and check it with [`Principal::require`].

mod accounts;
mod authenticator;
mod bootstrap;
mod error;
mod http;
mod layer;
mod limit;
mod oidc;
mod password;
mod principal;
mod rate;
mod role;
mod secret;
mod session;
mod sso;
mod token;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use switchboard_bus::Bus;

pub use accounts::{ACCOUNTS_BUCKET, Accounts, AddedUser, User};
pub use authenticator::Authenticator;
pub use bootstrap::{BOOTSTRAP_ADMIN, bootstrap_admin};
pub use error::{AuthError, CredentialKind};
pub use http::{
    AccountsApi, AddUserReply, AddUserRequest, CreateTokenReply, CreateTokenRequest, LOGIN_PATH,
    LoginReply, LoginRequest, MeReply, RedeemRequest, SSO_PATHS, SetPasswordRequest, SsoInfo,
};
pub use layer::{ALWAYS_OPEN, AuthLayer, AuthService, client_addr};
pub use oidc::OidcConfig;
pub use password::MIN_LEN as MIN_PASSWORD_LEN;
pub use principal::{Principal, Via};
pub use role::{Capability, Role, UnknownRole};
pub use session::{COOKIE, Session};
pub use sso::{CALLBACK_PATH, SsoConfig};
pub use token::{NewToken, TOKEN_PREFIX, TokenInfo};

/// The path Prometheus scrapes, open when [`AuthConfig::open_metrics`] says so.
pub const METRICS_PATH: &str = "/metrics";

/// The `auth` settings section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// How long a console session lasts, in seconds (12 h).
    pub session_ttl_secs: u64,
    /// Whether `/metrics` is open to anyone, for a Prometheus that sends no credential.
    pub open_metrics: bool,
    /// Whether the session cookie is marked `Secure` (sent over HTTPS only): set it where the
    /// console is served over HTTPS. Off by default, as the embedded default serves plain HTTP.
    pub secure_cookie: bool,
    /// Failed logins allowed per name and per client address within the window (5)…
    pub login_max_failures: u32,
    /// …of this many seconds (300).
    pub login_failure_window_secs: u64,
    /// Requests each credential may send per second, over HTTP and gRPC together and across replicas
    /// (100); 0: no limit.
    /// Past it a caller gets 429 with `Retry-After`, or `RESOURCE_EXHAUSTED` on gRPC.
    pub requests_per_second: u32,
    /// Requests a credential may send at once after a quiet spell (200).
    pub request_burst: u32,
    /// JWTs from an OIDC identity provider, when set.
    pub oidc: Option<OidcConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_ttl_secs: session::DEFAULT_TTL.as_secs(),
            open_metrics: false,
            secure_cookie: false,
            login_max_failures: 5,
            login_failure_window_secs: 300,
            requests_per_second: 100,
            request_burst: 200,
            oidc: None,
        }
    }
}

impl AuthConfig {
    /// Refuses settings that would lock everyone out or let everyone in, naming the key.
    pub fn validate(&self) -> Result<(), AuthError> {
        if self.session_ttl_secs == 0 {
            return Err(AuthError::invalid(
                "auth.session_ttl_secs",
                "must be at least 1",
            ));
        }
        if self.login_max_failures == 0 {
            return Err(AuthError::invalid(
                "auth.login_max_failures",
                "must be at least 1",
            ));
        }
        if self.login_failure_window_secs == 0 {
            return Err(AuthError::invalid(
                "auth.login_failure_window_secs",
                "must be at least 1",
            ));
        }
        if self.requests_per_second > 0 && self.request_burst == 0 {
            return Err(AuthError::invalid(
                "auth.request_burst",
                "must be at least 1 while auth.requests_per_second limits requests",
            ));
        }
        if let Some(oidc) = &self.oidc {
            let required = [
                ("auth.oidc.jwks_url", &oidc.jwks_url),
                ("auth.oidc.issuer", &oidc.issuer),
                ("auth.oidc.audience", &oidc.audience),
                ("auth.oidc.role_claim", &oidc.role_claim),
            ];
            for (key, value) in required {
                if value.trim().is_empty() {
                    return Err(AuthError::invalid(key, "must not be empty"));
                }
            }
            if let Some(login) = &oidc.login {
                login.validate()?;
            }
        }
        Ok(())
    }
}

/// Everything the binary wires: the accounts store, the authenticator, the layer and the routes.
#[derive(Debug, Clone)]
pub struct Auth {
    authenticator: Arc<Authenticator>,
    layer: AuthLayer,
    secure_cookie: bool,
}

impl Auth {
    /// Validates `config` and opens the accounts bucket on `bus`.
    pub async fn new(bus: &Arc<dyn Bus>, config: AuthConfig) -> Result<Self, AuthError> {
        config.validate()?;
        let accounts = Accounts::open(bus, Duration::from_secs(config.session_ttl_secs)).await?;
        let authenticator = Arc::new(Authenticator::new(
            accounts,
            config.oidc,
            config.login_max_failures,
            Duration::from_secs(config.login_failure_window_secs),
        ));
        let open_metrics = config.open_metrics.then_some(METRICS_PATH);
        let layer = AuthLayer::new(Arc::clone(&authenticator), open_metrics)
            .with_request_limit(config.requests_per_second, config.request_burst);
        Ok(Self {
            authenticator,
            layer,
            secure_cookie: config.secure_cookie,
        })
    }

    /// The layer for the HTTP router and the gRPC server alike.
    pub fn layer(&self) -> AuthLayer {
        self.layer.clone()
    }

    /// The accounts API (`/v1/login`, `/v1/me`, `/v1/users`, `/v1/tokens`, …), to merge into the
    /// binary's router before its layer is applied.
    pub fn router(&self) -> axum::Router {
        http::router(Arc::clone(&self.authenticator), self.secure_cookie)
    }

    pub fn accounts(&self) -> &Accounts {
        self.authenticator.accounts()
    }

    pub fn authenticator(&self) -> &Arc<Authenticator> {
        &self.authenticator
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchboard_bus::memory::MemoryBus;

    #[test]
    fn a_section_reads_with_defaults_for_what_it_leaves_out() {
        let config: AuthConfig = serde_json::from_value(json!({
            "open_metrics": true,
            "oidc": {
                "jwks_url": "https://idp.example.test/jwks",
                "issuer": "https://idp.example.test",
                "audience": "switchboard"
            }
        }))
        .expect("config");
        assert_eq!(config.session_ttl_secs, 12 * 3600);
        assert!(config.open_metrics);
        assert_eq!(
            (config.login_max_failures, config.login_failure_window_secs),
            (5, 300)
        );
        let oidc = config.oidc.as_ref().expect("oidc");
        assert_eq!(
            (oidc.role_claim.as_str(), oidc.name_claim.as_str()),
            ("role", "sub")
        );
        assert_eq!(oidc.jwks_refetch_secs, 60);
        config.validate().expect("valid");
        let empty: AuthConfig = serde_json::from_value(json!({})).expect("config");
        assert_eq!(empty, AuthConfig::default());
    }

    #[tokio::test]
    async fn settings_that_lock_everyone_out_are_refused_by_key() {
        let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
        let zero_ttl = AuthConfig {
            session_ttl_secs: 0,
            ..AuthConfig::default()
        };
        let err = Auth::new(&bus, zero_ttl).await.expect_err("zero ttl");
        assert_eq!(
            switchboard_errors::ServiceError::field(&err),
            Some("auth.session_ttl_secs")
        );
        let no_failures = AuthConfig {
            login_max_failures: 0,
            ..AuthConfig::default()
        };
        let err = no_failures.validate().expect_err("no failures allowed");
        assert_eq!(
            err.to_string(),
            "invalid auth.login_max_failures: must be at least 1"
        );
        let no_audience = AuthConfig {
            oidc: Some(OidcConfig {
                jwks_url: "https://idp.example.test/jwks".into(),
                issuer: "https://idp.example.test".into(),
                audience: " ".into(),
                role_claim: "role".into(),
                name_claim: "sub".into(),
                jwks_refetch_secs: 60,
                login: None,
            }),
            ..AuthConfig::default()
        };
        let err = no_audience.validate().expect_err("no audience");
        assert_eq!(
            switchboard_errors::ServiceError::field(&err),
            Some("auth.oidc.audience")
        );
    }
}
