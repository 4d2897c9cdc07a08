//! Every way authentication and account management fails, each with its kind in the errors table.

use std::time::Duration;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use switchboard_bus::BusError;
use switchboard_errors::{ErrorKind, ServiceError, retry_secs};

use crate::role::{Capability, Role, UnknownRole, either};

/// The kind of credential that was presented and refused, named in the 401 so a client knows which of
/// its credentials to renew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    Password,
    Session,
    ApiToken,
    Jwt,
}

impl CredentialKind {
    const fn refusal(self) -> &'static str {
        match self {
            // Never which of the two was wrong: that would tell who has an account.
            Self::Password => "wrong name or password",
            Self::Session => "the session is unknown or has expired: log in again",
            Self::ApiToken => "the API token is unknown or revoked",
            Self::Jwt => "the JWT is not valid",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "a credential is required: send `Authorization: Bearer <API token, session token or JWT>` or the \
         {cookie} cookie from POST /v1/login"
    , cookie = crate::session::COOKIE)]
    MissingCredential,
    #[error("the Authorization header is not `Bearer <credential>`")]
    NotBearer,
    #[error("{}", .kind.refusal())]
    BadCredential { kind: CredentialKind },
    /// A JWT whose signature or claims do not hold; the cause says which.
    #[error("the JWT is not valid")]
    BadJwt(#[source] jsonwebtoken::errors::Error),
    #[error("the JWT's key {kid:?} is not in the identity provider's key set")]
    UnknownKey { kid: String },
    #[error("a JWT was sent, but this server accepts none: OIDC is not configured")]
    OidcNotConfigured,
    #[error(
        "the JWT for {subject:?} names no Switchboard role in its claim {claim:?}: the roles are agent, \
         supervisor, admin, connector and viewer"
    )]
    NoRole { subject: String, claim: String },
    #[error(
        "needs role {}; {role} {name:?} is not allowed to {}",
        either(&.capability.roles()),
        .capability.describe()
    )]
    Forbidden {
        name: String,
        role: Role,
        capability: Capability,
    },
    #[error("too many failed logins: retry in {} s", retry_secs(*.retry_after))]
    TooManyFailures { retry_after: Duration },
    /// The caller sent more requests than `auth.requests_per_second` allows (see `auth.request_burst`).
    #[error("too many requests from {name:?}: retry in {} s", retry_secs(*.retry_after))]
    RateLimited { name: String, retry_after: Duration },
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(transparent)]
    Role(#[from] UnknownRole),
    #[error("user {0:?} already exists")]
    UserExists(String),
    #[error("no user {0:?}")]
    NoUser(String),
    #[error("no API token {0:?}")]
    NoToken(String),
    #[error("the accounts store failed")]
    Store(#[from] BusError),
    #[error("stored {key} cannot be read")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("password hashing failed")]
    Hash(#[source] argon2::password_hash::Error),
    #[error("stored password hash of {name:?} cannot be read")]
    CorruptHash {
        name: String,
        #[source]
        source: argon2::password_hash::phc::Error,
    },
    #[error("a blocking task (password hashing) failed")]
    Blocking(#[source] tokio::task::JoinError),
    #[error("the operating system's random number generator failed")]
    Random(#[source] getrandom::Error),
    #[error("console login through the identity provider is not configured (auth.oidc.login)")]
    SsoNotConfigured,
    /// A step of the console's login through the identity provider that does not hold; it says which.
    #[error("{0}")]
    SsoFlow(&'static str),
    #[error("the identity provider refused the login: {error} ({description})")]
    SsoRefused { error: String, description: String },
    #[error("cannot exchange the login code at the identity provider's token endpoint {url}")]
    SsoToken {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("cannot fetch the identity provider's key set from {url}")]
    Jwks {
        url: String,
        #[source]
        source: reqwest::Error,
    },
}

impl ServiceError for AuthError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::MissingCredential
            | Self::NotBearer
            | Self::BadCredential { .. }
            | Self::BadJwt(_)
            | Self::UnknownKey { .. }
            | Self::OidcNotConfigured
            | Self::SsoFlow(_)
            | Self::SsoRefused { .. } => ErrorKind::Unauthenticated,
            Self::NoRole { .. } | Self::Forbidden { .. } => ErrorKind::PermissionDenied,
            Self::TooManyFailures { .. } | Self::RateLimited { .. } => ErrorKind::TooManyRequests,
            Self::Invalid { .. } | Self::Role(_) => ErrorKind::InvalidArgument,
            Self::UserExists(_) => ErrorKind::AlreadyExists,
            Self::NoUser(_) | Self::NoToken(_) | Self::SsoNotConfigured => ErrorKind::NotFound,
            Self::Store(_) | Self::Jwks { .. } | Self::SsoToken { .. } => ErrorKind::Unavailable,
            Self::Corrupt { .. } | Self::CorruptHash { .. } => ErrorKind::DataLoss,
            Self::Hash(_) | Self::Blocking(_) | Self::Random(_) => ErrorKind::Internal,
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. } => Some(field),
            Self::Role(_) => Some("role"),
            Self::UserExists(_) => Some("name"),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::TooManyFailures { retry_after } | Self::RateLimited { retry_after, .. } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }
}

impl AuthError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

impl From<AuthError> for tonic::Status {
    fn from(e: AuthError) -> Self {
        switchboard_errors::grpc_status(e)
    }
}

/// The JSON error shape (with `Retry-After` on a 429), plus `WWW-Authenticate` on a 401: RFC 9110
/// requires it.
impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let mut response = switchboard_errors::http_response(&self);
        let headers = response.headers_mut();
        if self.kind() == ErrorKind::Unauthenticated {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
