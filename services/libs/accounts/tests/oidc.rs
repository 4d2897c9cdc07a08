//! OIDC JWTs against a local JWKS server (axum on 127.0.0.1:0) publishing the public halves of the
//! RSA keys in `fixtures/` (made with `openssl genrsa 2048`; the JWKs beside them hold their modulus
//! and exponent): valid tokens, expired ones, wrong issuer or audience, an unknown key id (refetched
//! at most as often as configured, and a rotated-in key picked up), a forged signature, HMAC, and
//! tokens naming no role.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use common::bearer;
use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::{Algorithm, EncodingKey, Header, get_current_timestamp};
use serde_json::{Value, json};
use switchboard_accounts::{Accounts, AuthError, Authenticator, OidcConfig, Principal, Role, Via};
use switchboard_bus::Bus;
use switchboard_bus::memory::MemoryBus;
use switchboard_errors::{ErrorKind, ServiceError};

const KEY_A: &[u8] = include_bytes!("fixtures/oidc-key-a.pem");
const KEY_B: &[u8] = include_bytes!("fixtures/oidc-key-b.pem");
const JWK_A: &str = include_str!("fixtures/oidc-jwk-a.json");
const JWK_B: &str = include_str!("fixtures/oidc-jwk-b.json");
const ISSUER: &str = "https://idp.example.test/realms/switchboard";
const AUDIENCE: &str = "switchboard";

/// The identity provider's key set, changeable while it runs, and how often it was fetched.
#[derive(Clone)]
struct Provider {
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
}

async fn jwks(State(provider): State<Provider>) -> Json<Value> {
    provider.fetches.fetch_add(1, Ordering::SeqCst);
    let keys = provider.keys.lock().expect("keys").clone();
    Json(json!({ "keys": keys }))
}

async fn start_provider(keys: Vec<Value>) -> (String, Provider) {
    let provider = Provider {
        keys: Arc::new(Mutex::new(keys)),
        fetches: Arc::new(AtomicUsize::new(0)),
    };
    let app = axum::Router::new()
        .route("/jwks", get(jwks))
        .with_state(provider.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/jwks", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (url, provider)
}

fn jwk(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture JWK")
}

async fn authenticator(jwks_url: String, refetch_secs: u64) -> Authenticator {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let accounts = Accounts::open(&bus, Duration::from_secs(60))
        .await
        .expect("open");
    let config = OidcConfig {
        jwks_url,
        issuer: ISSUER.to_owned(),
        audience: AUDIENCE.to_owned(),
        role_claim: "roles".to_owned(),
        name_claim: "preferred_username".to_owned(),
        jwks_refetch_secs: refetch_secs,
        login: None,
    };
    Authenticator::new(accounts, Some(config), 5, Duration::from_secs(60))
}

fn claims(role: Value) -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "0f6c2a",
        "preferred_username": "ina",
        "exp": get_current_timestamp() + 600,
        "roles": role,
    })
}

/// A JWT over `claims`, signed with `key` and naming `kid`.
fn sign(claims: &Value, key: &[u8], kid: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let key = EncodingKey::from_rsa_pem(key).expect("fixture key");
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

fn jwt_error(err: &AuthError) -> Option<&JwtErrorKind> {
    match err {
        AuthError::BadJwt(source) => Some(source.kind()),
        _ => None,
    }
}

#[tokio::test]
async fn a_valid_jwt_names_the_caller_and_role() {
    let (url, provider) = start_provider(vec![jwk(JWK_A)]).await;
    let auth = authenticator(url, 60).await;
    let jwt = sign(&claims(json!("agent")), KEY_A, "key-a");
    let principal = auth.authenticate(&bearer(&jwt)).await.expect("valid");
    assert_eq!(
        principal,
        Principal {
            name: "ina".into(),
            role: Role::Agent,
            via: Via::Jwt
        }
    );
    // An array claim: the first entry that names a role.
    let jwt = sign(
        &claims(json!(["staff", "supervisor", "viewer"])),
        KEY_A,
        "key-a",
    );
    let principal = auth.authenticate(&bearer(&jwt)).await.expect("valid");
    assert_eq!(principal.role, Role::Supervisor);
    assert_eq!(
        provider.fetches.load(Ordering::SeqCst),
        1,
        "the key set is cached"
    );
}

#[tokio::test]
async fn bad_jwts_are_refused_with_the_reason() {
    let (url, _) = start_provider(vec![jwk(JWK_A), jwk(JWK_B)]).await;
    let auth = authenticator(url, 60).await;
    let refuse = |claims: Value, key: &'static [u8], kid: &'static str| {
        let jwt = sign(&claims, key, kid);
        let auth = &auth;
        async move { auth.authenticate(&bearer(&jwt)).await.expect_err("refused") }
    };

    let mut expired = claims(json!("agent"));
    expired["exp"] = json!(get_current_timestamp() - 3600);
    let err = refuse(expired, KEY_A, "key-a").await;
    assert_eq!(
        jwt_error(&err),
        Some(&JwtErrorKind::ExpiredSignature),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert_eq!(
        switchboard_errors::error_chain(&err),
        "the JWT is not valid: ExpiredSignature"
    );

    let mut wrong_issuer = claims(json!("agent"));
    wrong_issuer["iss"] = json!("https://evil.example.test");
    let err = refuse(wrong_issuer, KEY_A, "key-a").await;
    assert_eq!(
        jwt_error(&err),
        Some(&JwtErrorKind::InvalidIssuer),
        "{err:?}"
    );

    let mut wrong_audience = claims(json!("agent"));
    wrong_audience["aud"] = json!("another-app");
    let err = refuse(wrong_audience, KEY_A, "key-a").await;
    assert_eq!(
        jwt_error(&err),
        Some(&JwtErrorKind::InvalidAudience),
        "{err:?}"
    );

    let mut no_audience = claims(json!("agent"));
    no_audience.as_object_mut().expect("object").remove("aud");
    let err = refuse(no_audience, KEY_A, "key-a").await;
    assert!(
        matches!(jwt_error(&err), Some(JwtErrorKind::MissingRequiredClaim(c)) if c == "aud"),
        "{err:?}"
    );

    // Signed with key B but claiming to be key A.
    let err = refuse(claims(json!("agent")), KEY_B, "key-a").await;
    assert_eq!(
        jwt_error(&err),
        Some(&JwtErrorKind::InvalidSignature),
        "{err:?}"
    );

    let err = refuse(claims(json!("agent")), KEY_A, "key-z").await;
    assert!(
        matches!(err, AuthError::UnknownKey { ref kid } if kid == "key-z"),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);

    for role in [json!(null), json!("root"), json!(["staff", "ops"])] {
        let err = refuse(claims(role.clone()), KEY_A, "key-a").await;
        assert!(matches!(err, AuthError::NoRole { .. }), "{role}: {err:?}");
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        assert_eq!(
            err.to_string(),
            "the JWT for \"ina\" names no Switchboard role in its claim \"roles\": the roles are \
             agent, supervisor, admin, connector and viewer"
        );
    }

    // HMAC with the public key's text as the secret: the classic confusion, refused outright.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("key-a".to_owned());
    let forged = jsonwebtoken::encode(
        &header,
        &claims(json!("admin")),
        &EncodingKey::from_secret(JWK_A.as_bytes()).expect("key"),
    )
    .expect("sign");
    let err = auth.authenticate(&bearer(&forged)).await.expect_err("HMAC");
    assert_eq!(
        jwt_error(&err),
        Some(&JwtErrorKind::InvalidAlgorithm),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unknown_key_refetches_the_set_at_most_as_often_as_configured() {
    let (url, provider) = start_provider(vec![jwk(JWK_A)]).await;
    let fetches = || provider.fetches.load(Ordering::SeqCst);

    let patient = authenticator(url.clone(), 3600).await;
    let jwt_a = sign(&claims(json!("viewer")), KEY_A, "key-a");
    patient.authenticate(&bearer(&jwt_a)).await.expect("key a");
    assert_eq!(fetches(), 1);
    for kid in ["made-up-1", "made-up-2", "made-up-3"] {
        let jwt = sign(&claims(json!("viewer")), KEY_A, kid);
        patient
            .authenticate(&bearer(&jwt))
            .await
            .expect_err("unknown key");
    }
    assert_eq!(
        fetches(),
        1,
        "made-up key ids within the interval fetch nothing"
    );

    // The provider rotates key B in; an authenticator allowed to refetch picks it up.
    let eager = authenticator(url, 0).await;
    eager.authenticate(&bearer(&jwt_a)).await.expect("key a");
    assert_eq!(fetches(), 2);
    provider.keys.lock().expect("keys").push(jwk(JWK_B));
    let jwt_b = sign(&claims(json!("admin")), KEY_B, "key-b");
    let principal = eager
        .authenticate(&bearer(&jwt_b))
        .await
        .expect("rotated in");
    assert_eq!(principal.role, Role::Admin);
    assert_eq!(fetches(), 3, "one refetch for the new key id");
    let err = patient
        .authenticate(&bearer(&jwt_b))
        .await
        .expect_err("not yet");
    assert!(matches!(err, AuthError::UnknownKey { .. }), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_provider_is_unavailable_not_unauthenticated() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/jwks", listener.local_addr().expect("addr"));
    drop(listener);
    let auth = authenticator(url, 0).await;
    let jwt = sign(&claims(json!("agent")), KEY_A, "key-a");
    let err = auth
        .authenticate(&bearer(&jwt))
        .await
        .expect_err("no provider");
    assert!(matches!(err, AuthError::Jwks { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
}
