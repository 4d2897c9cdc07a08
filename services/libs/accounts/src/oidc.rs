//! OIDC bearer tokens: JWTs signed by an identity provider, checked against its published key set
//! (JWKS), issuer, audience and expiry; the role comes from a configured claim.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::error::AuthError;
use crate::principal::{Principal, Via};
use crate::role::Role;
use crate::sso::SsoConfig;

/// The `auth.oidc` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Where the identity provider publishes its signing keys (`jwks_uri` of its discovery document).
    pub jwks_url: String,
    /// The `iss` every accepted JWT carries.
    pub issuer: String,
    /// The `aud` every accepted JWT includes: the client id Switchboard is registered under.
    pub audience: String,
    /// The claim naming the role: a string, or an array of which the first role name counts.
    #[serde(default = "default_role_claim")]
    pub role_claim: String,
    /// The claim naming the caller in logs and decisions.
    #[serde(default = "default_name_claim")]
    pub name_claim: String,
    /// A JWT with a key id not in the cached set refetches the set, at most once this often, so a
    /// stream of made-up key ids cannot turn into a stream of requests to the identity provider.
    #[serde(default = "default_refetch_secs")]
    pub jwks_refetch_secs: u64,
    /// Console login through this provider (the authorization code flow), when set.
    #[serde(default)]
    pub login: Option<SsoConfig>,
}

fn default_role_claim() -> String {
    "role".to_owned()
}

fn default_name_claim() -> String {
    "sub".to_owned()
}

const fn default_refetch_secs() -> u64 {
    60
}

/// A cached key set is refetched after this long even when every key id is known, so a key the
/// provider withdrew stops being accepted.
const MAX_KEY_AGE: Duration = Duration::from_secs(3600);

/// The asymmetric algorithms accepted. Never HMAC: with a public key as the "secret", anyone could
/// sign.
const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

#[derive(Debug)]
struct Keys {
    set: JwkSet,
    fetched_at: Instant,
}

#[derive(Debug)]
pub(crate) struct Oidc {
    config: OidcConfig,
    client: reqwest::Client,
    /// Held across a fetch, so concurrent JWTs with a new key id fetch the set once.
    keys: Mutex<Option<Keys>>,
}

impl Oidc {
    pub(crate) fn new(config: OidcConfig) -> Self {
        Self {
            config,
            client: reqwest::Client::new(),
            keys: Mutex::new(None),
        }
    }

    /// The caller a JWT stands for: signature, issuer, audience and expiry checked, role read.
    pub(crate) async fn verify(&self, jwt: &str) -> Result<Principal, AuthError> {
        let claims = self.claims(jwt, &self.config.audience).await?;
        self.principal(&claims, Via::Jwt)
    }

    /// A JWT's claims once its signature, issuer, `audience` and expiry hold: the API's bearer
    /// JWTs name the configured audience, the console login's ID tokens its client id.
    pub(crate) async fn claims(
        &self,
        jwt: &str,
        audience: &str,
    ) -> Result<Map<String, Value>, AuthError> {
        let header = jsonwebtoken::decode_header(jwt).map_err(AuthError::BadJwt)?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(AuthError::BadJwt(
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm.into(),
            ));
        }
        let jwk = self.key(header.kid.as_deref()).await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(AuthError::BadJwt)?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        Ok(
            jsonwebtoken::decode::<Map<String, Value>>(jwt, &key, &validation)
                .map_err(AuthError::BadJwt)?
                .claims,
        )
    }

    /// The caller verified `claims` name: the configured name and role claims.
    pub(crate) fn principal(
        &self,
        claims: &Map<String, Value>,
        via: Via,
    ) -> Result<Principal, AuthError> {
        let name = claims
            .get(&self.config.name_claim)
            .or_else(|| claims.get("sub"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let role =
            role_of(claims.get(&self.config.role_claim)).ok_or_else(|| AuthError::NoRole {
                subject: name.clone(),
                claim: self.config.role_claim.clone(),
            })?;
        Ok(Principal { name, role, via })
    }

    pub(crate) fn config(&self) -> &OidcConfig {
        &self.config
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The key a JWT names, from the cached set or, when it is not there, a fresh one.
    async fn key(&self, kid: Option<&str>) -> Result<Jwk, AuthError> {
        let mut keys = self.keys.lock().await;
        let stale = keys
            .as_ref()
            .is_none_or(|k| k.fetched_at.elapsed() >= MAX_KEY_AGE);
        if !stale && let Some(jwk) = keys.as_ref().and_then(|k| find(&k.set, kid)) {
            return Ok(jwk.clone());
        }
        let may_fetch = keys.as_ref().is_none_or(|k| {
            stale || k.fetched_at.elapsed() >= Duration::from_secs(self.config.jwks_refetch_secs)
        });
        if may_fetch {
            *keys = Some(Keys {
                set: self.fetch().await?,
                fetched_at: Instant::now(),
            });
        }
        keys.as_ref()
            .and_then(|k| find(&k.set, kid))
            .cloned()
            .ok_or_else(|| AuthError::UnknownKey {
                kid: kid.unwrap_or("").to_owned(),
            })
    }

    async fn fetch(&self) -> Result<JwkSet, AuthError> {
        let failed = |source| AuthError::Jwks {
            url: self.config.jwks_url.clone(),
            source,
        };
        self.client
            .get(&self.config.jwks_url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(failed)?
            .json::<JwkSet>()
            .await
            .map_err(failed)
    }
}

/// The key with the JWT's key id; without one, the set's only key, as providers with a single key
/// may leave `kid` out.
fn find<'a>(set: &'a JwkSet, kid: Option<&str>) -> Option<&'a Jwk> {
    match kid {
        Some(kid) => set.find(kid),
        None => match set.keys.as_slice() {
            [only] => Some(only),
            _ => None,
        },
    }
}

/// The first role a claim names: the claim itself when a string, the first element naming a role
/// when an array (groups claims list many things besides).
fn role_of(claim: Option<&Value>) -> Option<Role> {
    match claim? {
        Value::String(s) => s.parse().ok(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .find_map(|s| s.parse().ok()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_role_is_the_first_that_names_one() {
        assert_eq!(role_of(Some(&json!("agent"))), Some(Role::Agent));
        assert_eq!(
            role_of(Some(&json!(["staff", "supervisor", "admin"]))),
            Some(Role::Supervisor)
        );
        assert_eq!(role_of(Some(&json!(["staff"]))), None);
        assert_eq!(role_of(Some(&json!(7))), None);
        assert_eq!(role_of(None), None);
    }
}
