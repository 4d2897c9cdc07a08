//! The console's login through the identity provider, walked redirect by redirect over real HTTP
//! against a stand-in provider (axum on 127.0.0.1:0) that speaks the authorization code flow: it
//! logs the browser in at once, checks the PKCE verifier against the challenge at its token
//! endpoint, and signs the ID token with the fixture key its JWKS publishes. A completed login opens
//! a session with the provider's name and role; a foreign state, a replayed code, a wrong nonce, a
//! refusal and an unconfigured server each fail with their reason.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, get_current_timestamp};
use reqwest::Url;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchboard_accounts::{Auth, AuthConfig, OidcConfig, SsoConfig};
use switchboard_bus::Bus;
use switchboard_bus::memory::MemoryBus;

const KEY_A: &[u8] = include_bytes!("fixtures/oidc-key-a.pem");
const JWK_A: &str = include_str!("fixtures/oidc-jwk-a.json");
const CLIENT_ID: &str = "switchboard-console";

/// What the provider bound a code to at its authorization endpoint.
struct Grant {
    nonce: String,
    challenge: String,
    redirect_uri: String,
}

/// What the stand-in provider remembers of each code it issued, and how it should misbehave.
#[derive(Clone, Default)]
struct Provider {
    issuer: Arc<Mutex<String>>,
    codes: Arc<Mutex<HashMap<String, Grant>>>,
    /// When set, the ID token carries this nonce instead of the one the login sent.
    forged_nonce: Arc<Mutex<Option<String>>>,
    /// The role claim of the person who logs in.
    roles: Arc<Mutex<Value>>,
}

async fn authorize(
    State(provider): State<Provider>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["code_challenge_method"], "S256");
    let code = format!("code-{}", provider.codes.lock().expect("codes").len());
    provider.codes.lock().expect("codes").insert(
        code.clone(),
        Grant {
            nonce: query["nonce"].clone(),
            challenge: query["code_challenge"].clone(),
            redirect_uri: query["redirect_uri"].clone(),
        },
    );
    let mut back = Url::parse(&query["redirect_uri"]).expect("redirect_uri");
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &query["state"]);
    Redirect::to(back.as_str()).into_response()
}

async fn token(State(provider): State<Provider>, body: Bytes) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let refuse = |why: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": why})),
        )
            .into_response()
    };
    // A code is good once, as RFC 6749 requires.
    let Some(Grant {
        nonce,
        challenge,
        redirect_uri,
    }) = provider.codes.lock().expect("codes").remove(&form["code"])
    else {
        return refuse("unknown or used code");
    };
    let verified = URL_SAFE_NO_PAD.encode(Sha256::digest(form["code_verifier"].as_bytes()));
    if form["grant_type"] != "authorization_code"
        || form["client_id"] != CLIENT_ID
        || form["redirect_uri"] != redirect_uri
        || verified != challenge
    {
        return refuse("the grant does not match the authorization");
    }
    let nonce = provider
        .forged_nonce
        .lock()
        .expect("nonce")
        .clone()
        .unwrap_or(nonce);
    let claims = json!({
        "iss": *provider.issuer.lock().expect("issuer"),
        "aud": CLIENT_ID,
        "sub": "7c1e",
        "preferred_username": "lin.wei",
        "exp": get_current_timestamp() + 300,
        "nonce": nonce,
        "roles": *provider.roles.lock().expect("roles"),
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("key-a".to_owned());
    let key = EncodingKey::from_rsa_pem(KEY_A).expect("fixture key");
    let id_token = jsonwebtoken::encode(&header, &claims, &key).expect("sign");
    Json(json!({"access_token": "opaque", "token_type": "Bearer", "id_token": id_token}))
        .into_response()
}

async fn jwks() -> Json<Value> {
    let jwk: Value = serde_json::from_str(JWK_A).expect("fixture JWK");
    Json(json!({ "keys": [jwk] }))
}

/// A listener on a free port and its base URL, known before the app that will serve it is built.
async fn bind() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    (listener, base)
}

fn serve(listener: tokio::net::TcpListener, app: Router) {
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
}

/// The stand-in provider and a Switchboard whose console logs in through it.
async fn start(login: bool) -> (Provider, String) {
    let provider = Provider {
        roles: Arc::new(Mutex::new(json!(["staff", "supervisor"]))),
        ..Provider::default()
    };
    let (idp_listener, idp) = bind().await;
    serve(
        idp_listener,
        Router::new()
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/jwks", get(jwks))
            .with_state(provider.clone()),
    );
    *provider.issuer.lock().expect("issuer") = idp.clone();

    // The callback URL names the server's own address, known only once it listens.
    let (listener, base) = bind().await;
    let config = AuthConfig {
        oidc: Some(OidcConfig {
            jwks_url: format!("{idp}/jwks"),
            issuer: idp.clone(),
            audience: "switchboard-api".to_owned(),
            role_claim: "roles".to_owned(),
            name_claim: "preferred_username".to_owned(),
            jwks_refetch_secs: 60,
            login: login.then(|| SsoConfig {
                authorization_url: format!("{idp}/authorize"),
                token_url: format!("{idp}/token"),
                client_id: CLIENT_ID.to_owned(),
                client_secret: String::new(),
                redirect_url: format!("{base}/v1/sso/callback"),
                scopes: "openid profile".to_owned(),
                label: "Corp ID".to_owned(),
                console_path: "/console/".to_owned(),
            }),
        }),
        ..AuthConfig::default()
    };
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let auth = Auth::new(&bus, config).await.expect("auth");
    serve(listener, auth.router().layer(auth.layer()));
    (provider, base)
}

/// A client that follows no redirect, so each step can be looked at.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn location(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{response:?}");
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("Location")
        .to_owned()
}

/// The `name=value` of the cookie a response sets, as a browser would send it back.
fn set_cookie(response: &reqwest::Response) -> String {
    let value = response
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("Set-Cookie");
    value.split(';').next().expect("pair").to_owned()
}

/// The console's query parameter in the callback's redirect.
fn console_param(location: &str, name: &str) -> Option<String> {
    let url = Url::parse("http://console")
        .expect("base")
        .join(location)
        .expect("join");
    assert_eq!(
        url.path(),
        "/console/",
        "the callback sends the browser to the console"
    );
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Walks the flow as a browser would: start, the provider, the callback (with the flow cookie
/// `cookie`, when given, instead of the one start set). Returns the callback's redirect.
async fn walk(base: &str, cookie: Option<&str>) -> String {
    let http = client();
    let started = http
        .get(format!("{base}/v1/sso/start"))
        .send()
        .await
        .expect("start");
    let to_provider = location(&started);
    let flow_cookie = set_cookie(&started);
    assert!(flow_cookie.starts_with("sb_sso="), "{flow_cookie}");
    let at_provider = http.get(&to_provider).send().await.expect("authorize");
    let back = at_provider
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("provider's redirect")
        .to_owned();
    let callback = http
        .get(&back)
        .header(COOKIE, cookie.unwrap_or(&flow_cookie))
        .send()
        .await
        .expect("callback");
    assert!(
        set_cookie(&callback).starts_with("sb_sso="),
        "the callback clears the flow cookie"
    );
    location(&callback)
}

#[tokio::test]
async fn a_login_at_the_provider_opens_a_session_with_its_name_and_role() {
    let (_, base) = start(true).await;
    let http = client();
    let info: Value = http
        .get(format!("{base}/v1/sso"))
        .send()
        .await
        .expect("info")
        .json()
        .await
        .expect("json");
    assert_eq!(info, json!({"enabled": true, "label": "Corp ID"}));

    let to_console = walk(&base, None).await;
    let code = console_param(&to_console, "sso").expect("a one-time code");
    let redeemed = http
        .post(format!("{base}/v1/sso/redeem"))
        .json(&json!({ "code": code }))
        .send()
        .await
        .expect("redeem");
    assert_eq!(redeemed.status(), StatusCode::OK);
    assert!(set_cookie(&redeemed).starts_with("sb_session="));
    let login: Value = redeemed.json().await.expect("json");
    assert_eq!(login["name"], "lin.wei");
    assert_eq!(login["role"], "supervisor");

    let token = login["token"].as_str().expect("token");
    let me: Value = http
        .get(format!("{base}/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (&me["name"], &me["role"], &me["via"]),
        (&json!("lin.wei"), &json!("supervisor"), &json!("sso"))
    );

    // The code opens one session only.
    let again = http
        .post(format!("{base}/v1/sso/redeem"))
        .json(&json!({ "code": code }))
        .send()
        .await
        .expect("redeem again");
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);

    // Logging out ends the session.
    let out = http
        .post(format!("{base}/v1/logout"))
        .bearer_auth(token)
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    let after = http
        .get(format!("{base}/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("me");
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn another_browsers_flow_a_forged_nonce_and_no_role_are_refused_with_the_reason() {
    let (provider, base) = start(true).await;

    // The callback reached with someone else's flow cookie: the state does not match.
    let foreign = format!("sb_sso={}", ["a"; 3].join("."));
    let to_console = walk(&base, Some(&foreign)).await;
    let error = console_param(&to_console, "sso_error").expect("an error");
    assert!(error.contains("state"), "{error}");
    assert_eq!(
        console_param(&to_console, "sso_reason").as_deref(),
        Some("flow")
    );
    assert_eq!(console_param(&to_console, "sso"), None);

    // No flow cookie at all (it expired, or the login started elsewhere).
    let to_console = walk(&base, Some("other=1")).await;
    let error = console_param(&to_console, "sso_error").expect("an error");
    assert!(error.contains("start again"), "{error}");

    // An ID token minted for another login.
    *provider.forged_nonce.lock().expect("nonce") = Some("replayed".to_owned());
    let to_console = walk(&base, None).await;
    let error = console_param(&to_console, "sso_error").expect("an error");
    assert!(error.contains("nonce"), "{error}");
    assert_eq!(
        console_param(&to_console, "sso_reason").as_deref(),
        Some("flow")
    );
    *provider.forged_nonce.lock().expect("nonce") = None;

    // A person the provider gives no Switchboard role.
    *provider.roles.lock().expect("roles") = json!(["staff"]);
    let to_console = walk(&base, None).await;
    let error = console_param(&to_console, "sso_error").expect("an error");
    assert!(error.contains("names no Switchboard role"), "{error}");
    assert_eq!(
        console_param(&to_console, "sso_reason").as_deref(),
        Some("no_role")
    );
}

#[tokio::test]
async fn the_providers_refusal_and_an_unknown_code_are_shown_to_the_person() {
    let (_, base) = start(true).await;
    let http = client();
    let callback = http
        .get(format!(
            "{base}/v1/sso/callback?error=access_denied&error_description=cancelled+by+the+user"
        ))
        .send()
        .await
        .expect("callback");
    let to_console = location(&callback);
    let error = console_param(&to_console, "sso_error").expect("an error");
    assert_eq!(
        error,
        "the identity provider refused the login: access_denied (cancelled by the user)"
    );
    assert_eq!(
        console_param(&to_console, "sso_reason").as_deref(),
        Some("refused")
    );

    let redeemed = http
        .post(format!("{base}/v1/sso/redeem"))
        .json(&json!({ "code": "made-up" }))
        .send()
        .await
        .expect("redeem");
    assert_eq!(redeemed.status(), StatusCode::UNAUTHORIZED);
    let body: Value = redeemed.json().await.expect("json");
    assert!(
        body.to_string().contains("unknown, used or expired"),
        "{body}"
    );
}

#[tokio::test]
async fn without_a_login_section_the_console_offers_none() {
    let (_, base) = start(false).await;
    let http = client();
    let info: Value = http
        .get(format!("{base}/v1/sso"))
        .send()
        .await
        .expect("info")
        .json()
        .await
        .expect("json");
    assert_eq!(info, json!({"enabled": false}));
    let started = http
        .get(format!("{base}/v1/sso/start"))
        .send()
        .await
        .expect("start");
    assert_eq!(started.status(), StatusCode::NOT_FOUND);
    let body: Value = started.json().await.expect("json");
    assert!(body.to_string().contains("auth.oidc.login"), "{body}");
}
