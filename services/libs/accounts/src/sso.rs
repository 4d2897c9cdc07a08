//! Console login through the identity provider: the OpenID Connect authorization code flow with
//! PKCE. The browser is sent to the provider with a fresh state, nonce and code challenge, whose
//! secrets wait in a short-lived HttpOnly cookie rather than in the bucket, so an anonymous request
//! writes nothing. The provider sends the browser back with a code; the callback exchanges it for an
//! ID token, checks the token like any JWT (signature, issuer, the client id as audience, expiry)
//! and its nonce, and leaves a one-time hand-off code in the bucket. The console redeems that code
//! for an ordinary session, so the session token never travels in a URL.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::accounts::{Accounts, from_json, now_ms, to_json};
use crate::error::AuthError;
use crate::principal::Principal;
use crate::secret::{random_b64, sha256_hex};
use crate::session::Session;

/// Where the provider sends the browser back; `auth.oidc.login.redirect_url` must end in it.
pub const CALLBACK_PATH: &str = "/v1/sso/callback";

/// The cookie holding a login in progress: its state, nonce and PKCE verifier.
pub(crate) const FLOW_COOKIE: &str = "sb_sso";

/// How long a person may take at the provider's login page.
pub(crate) const FLOW_TTL: Duration = Duration::from_secs(600);

/// How long the console has to redeem a hand-off code; it does so at once on load.
const HANDOFF_TTL: Duration = Duration::from_secs(60);

pub(crate) const HANDOFF_PREFIX: &str = "sso-handoff.";

/// The `auth.oidc.login` section: the client Switchboard is registered as at the provider.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoConfig {
    /// The provider's `authorization_endpoint`, where the browser logs in.
    pub authorization_url: String,
    /// The provider's `token_endpoint`, where the callback exchanges the code for an ID token.
    pub token_url: String,
    /// The client id; ID tokens name it as their audience.
    pub client_id: String,
    /// The client secret of a confidential client, sent in the token request's body; empty for a
    /// public client, which PKCE alone protects.
    #[serde(default)]
    pub client_secret: String,
    /// The console's callback as registered at the provider, such as
    /// `https://desk.example.com/v1/sso/callback`.
    pub redirect_url: String,
    /// The scopes asked for; `openid` is required.
    #[serde(default = "default_scopes")]
    pub scopes: String,
    /// What the console's login button says: "Log in with {label}".
    #[serde(default = "default_label")]
    pub label: String,
    /// Where the callback sends the browser on, with the one-time code or the reason it failed:
    /// the console's address on this server.
    #[serde(default = "default_console_path")]
    pub console_path: String,
}

fn default_console_path() -> String {
    "/console/".to_owned()
}

fn default_scopes() -> String {
    "openid profile".to_owned()
}

fn default_label() -> String {
    "SSO".to_owned()
}

impl SsoConfig {
    /// Refuses a login section the provider could never complete, naming the key.
    pub(crate) fn validate(&self) -> Result<(), AuthError> {
        for (key, value) in [
            ("auth.oidc.login.authorization_url", &self.authorization_url),
            ("auth.oidc.login.token_url", &self.token_url),
            ("auth.oidc.login.redirect_url", &self.redirect_url),
        ] {
            let url = Url::parse(value)
                .map_err(|e| AuthError::invalid(key, format!("{value:?} is not a URL: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(AuthError::invalid(key, format!("{value:?} is not http(s)")));
            }
        }
        let redirect = Url::parse(&self.redirect_url)
            .map_err(|e| AuthError::invalid("auth.oidc.login.redirect_url", e.to_string()))?;
        if redirect.path() != CALLBACK_PATH {
            return Err(AuthError::invalid(
                "auth.oidc.login.redirect_url",
                format!(
                    "its path must be {CALLBACK_PATH}, where the console takes the provider's answer"
                ),
            ));
        }
        if self.client_id.trim().is_empty() {
            return Err(AuthError::invalid(
                "auth.oidc.login.client_id",
                "must not be empty",
            ));
        }
        if !self.console_path.starts_with('/') || self.console_path.starts_with("//") {
            return Err(AuthError::invalid(
                "auth.oidc.login.console_path",
                "must be a path on this server, starting with one /",
            ));
        }
        if !self.scopes.split_whitespace().any(|s| s == "openid") {
            return Err(AuthError::invalid(
                "auth.oidc.login.scopes",
                "must include openid, or the provider sends no ID token",
            ));
        }
        Ok(())
    }
}

/// A login in progress: what the callback checks the provider's answer against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Flow {
    state: String,
    nonce: String,
    verifier: String,
}

impl Flow {
    pub(crate) fn new() -> Result<Self, AuthError> {
        Ok(Self {
            state: random_b64(32)?,
            nonce: random_b64(32)?,
            verifier: random_b64(32)?,
        })
    }

    /// The flow as its cookie's value: three base64url strings, which hold no dot.
    pub(crate) fn cookie_value(&self) -> String {
        format!("{}.{}.{}", self.state, self.nonce, self.verifier)
    }

    pub(crate) fn from_cookie(value: &str) -> Option<Self> {
        let mut parts = value.split('.');
        let flow = Self {
            state: parts.next()?.to_owned(),
            nonce: parts.next()?.to_owned(),
            verifier: parts.next()?.to_owned(),
        };
        let complete = parts.next().is_none()
            && [&flow.state, &flow.nonce, &flow.verifier]
                .iter()
                .all(|p| !p.is_empty());
        complete.then_some(flow)
    }

    /// Where to send the browser: the provider's login with this flow's state, nonce and S256
    /// challenge.
    pub(crate) fn authorization_url(&self, config: &SsoConfig) -> Result<String, AuthError> {
        let mut url = Url::parse(&config.authorization_url)
            .map_err(|e| AuthError::invalid("auth.oidc.login.authorization_url", e.to_string()))?;
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()));
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &config.client_id)
            .append_pair("redirect_uri", &config.redirect_url)
            .append_pair("scope", &config.scopes)
            .append_pair("state", &self.state)
            .append_pair("nonce", &self.nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }
}

/// The provider's answer at the callback.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// The code and state checked against the flow this browser started: the state is what stops
/// another site from logging this browser into someone else's account.
pub(crate) fn checked_code(
    flow: Option<&Flow>,
    answer: CallbackQuery,
) -> Result<(&Flow, String), AuthError> {
    if let Some(error) = answer.error {
        return Err(AuthError::SsoRefused {
            error,
            description: answer.error_description.unwrap_or_default(),
        });
    }
    let flow = flow.ok_or(AuthError::SsoFlow(
        "no login through the identity provider was started in this browser, or it took longer \
         than 10 minutes: start again",
    ))?;
    if answer.state.as_deref() != Some(flow.state.as_str()) {
        return Err(AuthError::SsoFlow(
            "the answer's state is not the one this browser's login sent: start again",
        ));
    }
    let code = answer
        .code
        .filter(|c| !c.is_empty())
        .ok_or_else(|| AuthError::invalid("code", "the identity provider sent no code"))?;
    Ok((flow, code))
}

/// The token endpoint's answer; only the ID token is used.
#[derive(Debug, Deserialize)]
struct TokenReply {
    id_token: Option<String>,
}

/// Exchanges `code` for the ID token at the provider's token endpoint.
pub(crate) async fn id_token(
    client: &reqwest::Client,
    config: &SsoConfig,
    flow: &Flow,
    code: &str,
) -> Result<String, AuthError> {
    let unreachable = |source| AuthError::SsoToken {
        url: config.token_url.clone(),
        source,
    };
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", config.redirect_url.as_str()),
        ("client_id", config.client_id.as_str()),
        ("code_verifier", flow.verifier.as_str()),
    ];
    if !config.client_secret.is_empty() {
        form.push(("client_secret", config.client_secret.as_str()));
    }
    let response = client
        .post(&config.token_url)
        .timeout(Duration::from_secs(10))
        .form(&form)
        .send()
        .await
        .map_err(unreachable)?;
    if !response.status().is_success() {
        // OAuth's error body ({"error", "error_description"}) says why; anything else, the status.
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
        return Err(AuthError::SsoRefused {
            error: text("error").unwrap_or_else(|| format!("HTTP {status}")),
            description: text("error_description").unwrap_or_default(),
        });
    }
    let reply: TokenReply = response.json().await.map_err(unreachable)?;
    reply.id_token.ok_or(AuthError::SsoFlow(
        "the identity provider's token reply holds no ID token: is openid among the scopes?",
    ))
}

/// The nonce the ID token carries must be the one this browser's login sent, or the token was
/// issued for another login and replayed into this one.
pub(crate) fn check_nonce(
    claims: &serde_json::Map<String, Value>,
    flow: &Flow,
) -> Result<(), AuthError> {
    match claims.get("nonce").and_then(Value::as_str) {
        Some(nonce) if nonce == flow.nonce => Ok(()),
        _ => Err(AuthError::SsoFlow(
            "the ID token's nonce is not the one this login sent",
        )),
    }
}

/// Who a hand-off code stands for until the console redeems it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredHandoff {
    pub(crate) principal: Principal,
    pub(crate) until_ms: u64,
}

impl Accounts {
    /// Leaves a one-time code standing for `principal`, redeemable for a session within a minute.
    pub(crate) async fn hand_off(&self, principal: Principal) -> Result<String, AuthError> {
        let code = random_b64(32)?;
        let ttl_ms = u64::try_from(HANDOFF_TTL.as_millis()).unwrap_or(u64::MAX);
        let handoff = StoredHandoff {
            principal,
            until_ms: now_ms().saturating_add(ttl_ms),
        };
        self.kv.put(&handoff_key(&code), to_json(&handoff)).await?;
        Ok(code)
    }

    /// Opens the session a hand-off code stands for, once: the code is deleted at a revision check,
    /// so two requests with one code cannot both win.
    pub async fn redeem(&self, code: &str) -> Result<Session, AuthError> {
        let refused = AuthError::SsoFlow(
            "the login code is unknown, used or expired: log in through the identity provider again",
        );
        let key = handoff_key(code);
        let Some(entry) = self.kv.get(&key).await? else {
            return Err(refused);
        };
        if self
            .kv
            .delete_expect_revision(&key, entry.revision)
            .await
            .is_err()
        {
            return Err(refused);
        }
        let handoff: StoredHandoff = from_json(&key, &entry.value)?;
        if handoff.until_ms <= now_ms() {
            return Err(refused);
        }
        self.sso_session(handoff.principal).await
    }
}

fn handoff_key(code: &str) -> String {
    format!("{HANDOFF_PREFIX}{}", sha256_hex(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SsoConfig {
        SsoConfig {
            authorization_url: "https://idp.example/auth?kc_idp_hint=corp".to_owned(),
            token_url: "https://idp.example/token".to_owned(),
            client_id: "switchboard".to_owned(),
            client_secret: String::new(),
            redirect_url: "https://desk.example/v1/sso/callback".to_owned(),
            scopes: default_scopes(),
            label: default_label(),
            console_path: default_console_path(),
        }
    }

    #[test]
    fn the_authorization_url_carries_the_flow_and_an_s256_challenge() {
        let flow = Flow::new().expect("flow");
        let url = Url::parse(&flow.authorization_url(&config()).expect("url")).expect("parse");
        let pairs: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(pairs["kc_idp_hint"], "corp", "the configured query stays");
        assert_eq!(pairs["response_type"], "code");
        assert_eq!(pairs["state"], flow.state);
        assert_eq!(pairs["nonce"], flow.nonce);
        assert_eq!(
            pairs["redirect_uri"],
            "https://desk.example/v1/sso/callback"
        );
        assert_eq!(pairs["code_challenge_method"], "S256");
        // RFC 7636's own example: this verifier hashes to this challenge.
        let rfc = Flow {
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned(),
            ..flow
        };
        let url = Url::parse(&rfc.authorization_url(&config()).expect("url")).expect("parse");
        let challenge = url
            .query_pairs()
            .find(|(k, _)| k == "code_challenge")
            .map(|(_, v)| v.into_owned());
        assert_eq!(
            challenge.as_deref(),
            Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
        );
    }

    #[test]
    fn a_flow_survives_its_cookie_and_a_mangled_cookie_is_none() {
        let flow = Flow::new().expect("flow");
        assert_eq!(Flow::from_cookie(&flow.cookie_value()), Some(flow));
        assert_eq!(Flow::from_cookie("a.b"), None);
        assert_eq!(Flow::from_cookie("a..c"), None);
        assert_eq!(Flow::from_cookie("a.b.c.d"), None);
    }

    #[test]
    fn the_callback_needs_this_browsers_state() {
        let flow = Flow::new().expect("flow");
        let answer = |state: &str| CallbackQuery {
            code: Some("c0de".to_owned()),
            state: Some(state.to_owned()),
            ..CallbackQuery::default()
        };
        let (checked, code) = checked_code(Some(&flow), answer(&flow.state)).expect("ok");
        assert_eq!((checked, code.as_str()), (&flow, "c0de"));
        let err = checked_code(Some(&flow), answer("another")).expect_err("state");
        assert!(matches!(err, AuthError::SsoFlow(_)), "{err:?}");
        let err = checked_code(None, answer(&flow.state)).expect_err("no flow");
        assert!(err.to_string().contains("start again"), "{err}");
        let refused = CallbackQuery {
            error: Some("access_denied".to_owned()),
            error_description: Some("the user cancelled".to_owned()),
            ..CallbackQuery::default()
        };
        let err = checked_code(Some(&flow), refused).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "the identity provider refused the login: access_denied (the user cancelled)"
        );
    }

    #[test]
    fn a_config_the_provider_could_not_complete_is_refused_by_key() {
        assert!(config().validate().is_ok());
        let wrong_path = SsoConfig {
            redirect_url: "https://desk.example/callback".to_owned(),
            ..config()
        };
        let err = wrong_path.validate().expect_err("path");
        assert!(
            err.to_string().contains("auth.oidc.login.redirect_url"),
            "{err}"
        );
        let no_openid = SsoConfig {
            scopes: "profile".to_owned(),
            ..config()
        };
        assert!(no_openid.validate().is_err());
        let elsewhere = SsoConfig {
            console_path: "//evil.example/".to_owned(),
            ..config()
        };
        assert!(elsewhere.validate().is_err(), "no redirect off this server");
        let not_a_url = SsoConfig {
            token_url: "idp/token".to_owned(),
            ..config()
        };
        let err = not_a_url.validate().expect_err("url");
        assert!(
            err.to_string().contains("auth.oidc.login.token_url"),
            "{err}"
        );
    }
}
