//! From request headers to a [`Principal`]: which credential was sent, and whether it holds.

use std::net::IpAddr;
use std::time::Duration;

use axum::http::{HeaderMap, header};

use crate::accounts::{Accounts, User};
use crate::error::{AuthError, CredentialKind};
use crate::limit::FailureLimiter;
use crate::oidc::{Oidc, OidcConfig};
use crate::principal::{Principal, Via};
use crate::session::{COOKIE, Session};
use crate::sso::{CallbackQuery, Flow, SsoConfig, check_nonce, checked_code, id_token};
use crate::token::TOKEN_PREFIX;

/// Checks credentials for the layer and logins for the login route.
#[derive(Debug)]
pub struct Authenticator {
    accounts: Accounts,
    oidc: Option<Oidc>,
    /// Only password logins are limited: sessions and API tokens carry 256 random bits, which no
    /// rate of guessing finds, and limiting them would let one stale cookie lock out a whole office
    /// behind one address.
    logins: FailureLimiter,
}

/// A credential as sent, before it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credential<'a> {
    Session(&'a str),
    ApiToken(&'a str),
    Jwt(&'a str),
}

impl Authenticator {
    pub fn new(
        accounts: Accounts,
        oidc: Option<OidcConfig>,
        max_login_failures: u32,
        login_failure_window: Duration,
    ) -> Self {
        Self {
            logins: FailureLimiter::new(accounts.clone(), max_login_failures, login_failure_window),
            accounts,
            oidc: oidc.map(Oidc::new),
        }
    }

    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// The caller a request's headers name: `Authorization: Bearer` (an API token, a session token
    /// or, with OIDC configured, a JWT), else the session cookie.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        match credential(headers)? {
            Credential::ApiToken(token) => self.accounts.token(token).await,
            Credential::Session(token) => self.accounts.session(token).await,
            Credential::Jwt(jwt) => match &self.oidc {
                Some(oidc) => oidc.verify(jwt).await,
                None => Err(AuthError::OidcNotConfigured),
            },
        }
    }

    /// The console login through the identity provider, when one is configured.
    pub(crate) fn sso_config(&self) -> Option<&SsoConfig> {
        self.sso().ok().map(|(_, config)| config)
    }

    /// Starts a console login at the identity provider: the flow for the browser's cookie, and
    /// where to send the browser.
    pub(crate) fn start_sso(&self) -> Result<(Flow, String), AuthError> {
        let (_, config) = self.sso()?;
        let flow = Flow::new()?;
        let url = flow.authorization_url(config)?;
        Ok((flow, url))
    }

    /// Completes it: the provider's answer checked against the browser's flow, the code exchanged
    /// for an ID token, the token verified with its nonce. Returns the one-time code the console
    /// redeems for a session.
    pub(crate) async fn finish_sso(
        &self,
        flow: Option<&Flow>,
        answer: CallbackQuery,
    ) -> Result<String, AuthError> {
        let (oidc, config) = self.sso()?;
        let (flow, code) = checked_code(flow, answer)?;
        let jwt = id_token(oidc.client(), config, flow, &code).await?;
        let claims = oidc.claims(&jwt, &config.client_id).await?;
        check_nonce(&claims, flow)?;
        let principal = oidc.principal(&claims, Via::Sso)?;
        tracing::info!(user = %principal.name, role = %principal.role, "logged in through the identity provider");
        self.accounts.hand_off(principal).await
    }

    fn sso(&self) -> Result<(&Oidc, &SsoConfig), AuthError> {
        let oidc = self.oidc.as_ref().ok_or(AuthError::SsoNotConfigured)?;
        let config = oidc
            .config()
            .login
            .as_ref()
            .ok_or(AuthError::SsoNotConfigured)?;
        Ok((oidc, config))
    }

    /// Opens a session, refusing with 429 once `name` or `client` failed too often lately.
    pub async fn login(
        &self,
        name: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<Session, AuthError> {
        self.limited(name, client, self.accounts.login(name, password))
            .await
    }

    /// Checks a password the way a login does, counting a wrong one against the same limit: for
    /// changes that ask for the current password.
    pub async fn check_password(
        &self,
        name: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<User, AuthError> {
        let verified = async {
            self.accounts
                .verify(name, password)
                .await?
                .ok_or(AuthError::BadCredential {
                    kind: CredentialKind::Password,
                })
        };
        self.limited(name, client, verified).await
    }

    async fn limited<T>(
        &self,
        name: &str,
        client: Option<IpAddr>,
        attempt: impl Future<Output = Result<T, AuthError>>,
    ) -> Result<T, AuthError> {
        if let Err(err) = self.logins.check(name, client).await {
            if matches!(err, AuthError::TooManyFailures { .. }) {
                tracing::warn!(user = name, client = ?client, "login refused: too many failures");
            }
            return Err(err);
        }
        let outcome = attempt.await;
        // The attempt's own answer stands; a count the store could not keep is logged.
        let counted = match &outcome {
            Ok(_) => self.logins.succeeded(name).await,
            Err(AuthError::BadCredential {
                kind: CredentialKind::Password,
            }) => {
                // Logged for whoever watches for guessing; the client only hears "wrong name or
                // password".
                tracing::info!(user = name, client = ?client, "login failed: wrong name or password");
                self.logins.failed(name, client).await
            }
            Err(_) => Ok(()),
        };
        if let Err(e) = counted {
            tracing::warn!(user = name, error = %switchboard_errors::error_chain(&e), "the login's failure count was not updated");
        }
        outcome
    }
}

/// The credential in the headers; `Authorization` wins over the cookie.
pub(crate) fn credential(headers: &HeaderMap) -> Result<Credential<'_>, AuthError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let bearer = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, credential)| credential.trim())
            .filter(|credential| !credential.is_empty())
            .ok_or(AuthError::NotBearer)?;
        return Ok(if bearer.starts_with(TOKEN_PREFIX) {
            Credential::ApiToken(bearer)
        } else if bearer.bytes().filter(|b| *b == b'.').count() == 2 {
            // header.payload.signature; session tokens are base64url, which has no dot.
            Credential::Jwt(bearer)
        } else {
            Credential::Session(bearer)
        });
    }
    session_cookie(headers)
        .map(Credential::Session)
        .ok_or(AuthError::MissingCredential)
}

/// The session cookie's value among the request's cookies.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, COOKIE)
}

/// The value of the cookie `name` among the request's cookies; an empty one counts as none.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn each_kind_of_credential_is_told_apart() {
        let h = headers(&[(header::AUTHORIZATION, "Bearer sbt_0123456789abcdef_x")]);
        assert_eq!(
            credential(&h).ok(),
            Some(Credential::ApiToken("sbt_0123456789abcdef_x"))
        );
        let h = headers(&[(header::AUTHORIZATION, "bearer aaa.bbb.ccc")]);
        assert_eq!(credential(&h).ok(), Some(Credential::Jwt("aaa.bbb.ccc")));
        let h = headers(&[
            (header::AUTHORIZATION, "Bearer abc-_def"),
            (header::COOKIE, "sb_session=cookie"),
        ]);
        assert_eq!(
            credential(&h).ok(),
            Some(Credential::Session("abc-_def")),
            "header first"
        );
        let h = headers(&[
            (header::COOKIE, "theme=dark"),
            (header::COOKIE, "lang=en; sb_session=abc; x=y"),
        ]);
        assert_eq!(credential(&h).ok(), Some(Credential::Session("abc")));
    }

    #[test]
    fn no_credential_and_another_scheme_are_refused() {
        let err = credential(&headers(&[(header::COOKIE, "theme=dark")])).expect_err("none");
        assert!(matches!(err, AuthError::MissingCredential), "{err:?}");
        assert!(
            err.to_string().starts_with("a credential is required: "),
            "{err}"
        );
        let err =
            credential(&headers(&[(header::AUTHORIZATION, "Basic YTpi")])).expect_err("basic");
        assert!(matches!(err, AuthError::NotBearer), "{err:?}");
        let err = credential(&headers(&[(header::AUTHORIZATION, "Bearer  ")])).expect_err("empty");
        assert!(matches!(err, AuthError::NotBearer), "{err:?}");
    }
}
