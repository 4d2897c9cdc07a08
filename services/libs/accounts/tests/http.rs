//! The accounts API and the layer on a real axum server on 127.0.0.1: open paths stay open, no
//! credential or a bad one is 401, each role reaches exactly what the table allows (403 naming the
//! roles that would do otherwise), logins set the cookie, are rate limited and say when to retry,
//! and the admin's user and token routes answer bad input with the field.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_accounts::{
    AccountsApi, Auth, AuthConfig, AuthError, Capability, Principal, bootstrap_admin,
};
use switchboard_bus::Bus;
use switchboard_bus::memory::MemoryBus;
use utoipa::OpenApi as _;

/// The role table once more, as the issue states it, by capability name.
const TABLE: [(&str, &[&str]); 5] = [
    ("connector", &["submit"]),
    ("viewer", &["read"]),
    ("agent", &["read", "work"]),
    ("supervisor", &["read", "work", "read_all", "reassign"]),
    (
        "admin",
        &["submit", "read", "work", "read_all", "reassign", "admin"],
    ),
];

const CAPABILITIES: [(&str, &str); 6] = [
    ("submit", "submit tickets"),
    ("read", "read tickets"),
    ("read_all", "read every department's tickets"),
    ("work", "work tickets"),
    ("reassign", "reassign tickets"),
    (
        "admin",
        "administer rules, departments, accounts and tokens",
    ),
];

/// An endpoint per capability, the way the binary's handlers will check theirs.
async fn needs(principal: Principal, Path(capability): Path<String>) -> Result<String, AuthError> {
    let capability = match capability.as_str() {
        "submit" => Capability::Submit,
        "read" => Capability::Read,
        "read_all" => Capability::ReadAll,
        "work" => Capability::Work,
        "reassign" => Capability::Reassign,
        _ => Capability::Admin,
    };
    principal.require(capability)?;
    Ok(principal.name)
}

async fn serve(bus: &Arc<dyn Bus>, config: AuthConfig) -> (String, Auth) {
    let auth = Auth::new(bus, config).await.expect("auth");
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ready" }))
        .route("/metrics", get(|| async { "# metrics" }))
        .route("/needs/{capability}", get(needs))
        .merge(auth.router())
        .layer(auth.layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    (format!("http://{addr}"), auth)
}

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    async fn call(
        &self,
        method: Method,
        path: &str,
        credential: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(credential) = credential {
            request = request.bearer_auth(credential);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("send");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, headers, body)
    }

    async fn get(&self, path: &str, credential: Option<&str>) -> (StatusCode, Value) {
        let (status, _, body) = self.call(Method::GET, path, credential, None).await;
        (status, body)
    }

    async fn post(&self, path: &str, credential: Option<&str>, body: Value) -> (StatusCode, Value) {
        let (status, _, body) = self.call(Method::POST, path, credential, Some(body)).await;
        (status, body)
    }
}

fn either(roles: &[&str]) -> String {
    match roles {
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
        [] => unreachable!("every capability has a role"),
    }
}

async fn setup(config: AuthConfig) -> (Client, Auth, String) {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let (base, auth) = serve(&bus, config).await;
    let password = bootstrap_admin(auth.accounts())
        .await
        .expect("bootstrap")
        .expect("a first admin");
    let client = Client {
        base,
        http: reqwest::Client::new(),
    };
    (client, auth, password)
}

async fn login(client: &Client, name: &str, password: &str) -> String {
    let (status, body) = client
        .post(
            "/v1/login",
            None,
            json!({"name": name, "password": password}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["token"].as_str().expect("token").to_owned()
}

#[tokio::test]
async fn open_paths_stay_open_and_the_rest_needs_a_credential() {
    let (client, _auth, _) = setup(AuthConfig::default()).await;
    for path in ["/healthz", "/readyz"] {
        assert_eq!(client.get(path, None).await.0, StatusCode::OK, "{path}");
    }
    for path in ["/metrics", "/needs/read", "/v1/me", "/v1/users"] {
        let (status, headers, body) = client.call(Method::GET, path, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(
            body["error"]
                .as_str()
                .expect("the JSON error shape")
                .starts_with("a credential is required: send `Authorization: Bearer"),
            "{body}"
        );
        assert_eq!(headers["www-authenticate"], "Bearer");
    }
    let (status, body) = client
        .get("/needs/read", Some("sbt_0123456789abcdef_forged"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"error": "the API token is unknown or revoked"})
    );
    let (status, body) = client.get("/needs/read", Some("forged-session")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"error": "the session is unknown or has expired: log in again"})
    );
    let (status, _) = client.get("/needs/read", Some("a.b.c")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a JWT without OIDC");

    // /metrics opens when configured so, on a second server over the same accounts.
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let config = AuthConfig {
        open_metrics: true,
        ..AuthConfig::default()
    };
    let (base, _) = serve(&bus, config).await;
    let open = Client {
        base,
        http: reqwest::Client::new(),
    };
    assert_eq!(open.get("/metrics", None).await.0, StatusCode::OK);
    assert_eq!(
        open.get("/needs/read", None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn each_role_reaches_exactly_its_capabilities() {
    let (client, _auth, password) = setup(AuthConfig::default()).await;
    let admin = login(&client, "admin", &password).await;
    for (role, holds) in TABLE {
        let (status, created) = client
            .post(
                "/v1/tokens",
                Some(&admin),
                json!({"name": format!("{role}-bot"), "role": role}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let token = created["token"].as_str().expect("the secret, once");
        for (capability, what) in CAPABILITIES {
            let (status, body) = client
                .get(&format!("/needs/{capability}"), Some(token))
                .await;
            if holds.contains(&capability) {
                assert_eq!(status, StatusCode::OK, "{role} {capability}: {body}");
                assert_eq!(body, json!(format!("{role}-bot")));
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{role} {capability}: {body}");
                let would: Vec<&str> = ["agent", "supervisor", "admin", "connector", "viewer"]
                    .into_iter()
                    .filter(|r| TABLE.iter().any(|(t, h)| t == r && h.contains(&capability)))
                    .collect();
                let expected = format!(
                    "needs role {}; {role} \"{role}-bot\" is not allowed to {what}",
                    either(&would)
                );
                assert_eq!(body, json!({"error": expected}));
            }
        }
        let (status, me) = client.get("/v1/me", Some(token)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(me["role"], role);
        assert_eq!(me["via"], "api_token");
        assert_eq!(me["capabilities"], json!(holds));
    }
}

#[tokio::test]
async fn login_sets_the_cookie_and_logout_ends_the_session() {
    let (client, _auth, password) = setup(AuthConfig::default()).await;
    let (status, headers, body) = client
        .call(
            Method::POST,
            "/v1/login",
            None,
            Some(json!({"name": "admin", "password": password})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "admin");
    assert_eq!(body["role"], "admin");
    assert!(body["expires_at_ms"].as_u64().expect("expiry") > 0);
    let token = body["token"].as_str().expect("token");
    let cookie = headers["set-cookie"].to_str().expect("cookie");
    assert_eq!(
        cookie,
        format!("sb_session={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200")
    );

    let with_cookie = |path: &str| {
        client
            .http
            .get(format!("{}{path}", client.base))
            .header("cookie", format!("sb_session={token}"))
    };
    let me: Value = with_cookie("/v1/me")
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(me["name"], "admin");
    assert_eq!(me["via"], "session");

    let response = client
        .http
        .post(format!("{}/v1/logout", client.base))
        .header("cookie", format!("sb_session={token}"))
        .send()
        .await
        .expect("logout");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .expect("cookie")
            .contains("Max-Age=0")
    );
    let response = with_cookie("/v1/me").send().await.expect("me");
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "the session ended"
    );

    // Served over HTTPS, the cookie is marked Secure.
    let config = AuthConfig {
        secure_cookie: true,
        ..AuthConfig::default()
    };
    let (secure, _auth, password) = setup(config).await;
    let (_, headers, _) = secure
        .call(
            Method::POST,
            "/v1/login",
            None,
            Some(json!({"name": "admin", "password": password})),
        )
        .await;
    let cookie = headers["set-cookie"].to_str().expect("cookie");
    assert!(cookie.ends_with("; Max-Age=43200; Secure"), "{cookie}");

    let (status, body) = client
        .post(
            "/v1/login",
            None,
            json!({"name": "admin", "password": "wrong one"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({"error": "wrong name or password"}));
    let (status, body) = client
        .post("/v1/login", None, json!({"name": "admin"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "body", "{body}");
}

#[tokio::test]
async fn failed_logins_are_limited_and_say_when_to_retry() {
    let config = AuthConfig {
        login_max_failures: 2,
        login_failure_window_secs: 120,
        ..AuthConfig::default()
    };
    let (client, _auth, password) = setup(config).await;
    for _ in 0..2 {
        let (status, _) = client
            .post(
                "/v1/login",
                None,
                json!({"name": "admin", "password": "guess 123"}),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, headers, body) = client
        .call(
            Method::POST,
            "/v1/login",
            None,
            Some(json!({"name": "admin", "password": password})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password"
    );
    let retry: u64 = headers["retry-after"]
        .to_str()
        .expect("header")
        .parse()
        .expect("seconds");
    assert!((119..=120).contains(&retry), "{retry}");
    assert_eq!(
        body,
        json!({"error": format!("too many failed logins: retry in {retry} s")})
    );
    // The client address (127.0.0.1) is used up too, for any other name.
    let (status, _) = client
        .post(
            "/v1/login",
            None,
            json!({"name": "someone", "password": "guess 123"}),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_admin_manages_users_and_tokens_and_others_may_not() {
    let (client, _auth, password) = setup(AuthConfig::default()).await;
    let admin = login(&client, "admin", &password).await;

    for (body, field) in [
        (json!({"name": "ann", "role": "boss"}), "role"),
        (json!({"name": "a n", "role": "agent"}), "name"),
        (
            json!({"name": "ann", "role": "agent", "password": "short"}),
            "password",
        ),
        (json!({"name": "ann"}), "body"),
    ] {
        let (status, reply) = client.post("/v1/users", Some(&admin), body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {reply}");
        assert_eq!(reply["field"], field, "{body}: {reply}");
    }
    let (status, reply) = client
        .post(
            "/v1/users",
            Some(&admin),
            json!({"name": "ann", "role": "agent"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(reply["role"], "agent");
    let ann_password = reply["password"]
        .as_str()
        .expect("generated, shown once")
        .to_owned();
    let (status, reply) = client
        .post(
            "/v1/users",
            Some(&admin),
            json!({"name": "ann", "role": "viewer"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(reply["field"], "name");
    let (status, users) = client.get("/v1/users", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = users
        .as_array()
        .expect("a list")
        .iter()
        .map(|u| u["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["admin", "ann"]);
    assert!(!users.to_string().contains("argon2"), "no hashes: {users}");

    let ann = login(&client, "ann", &ann_password).await;
    for (method, path) in [
        (Method::GET, "/v1/users"),
        (Method::GET, "/v1/tokens"),
        (Method::DELETE, "/v1/users/admin"),
    ] {
        let (status, _, body) = client.call(method, path, Some(&ann), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(
            body["error"],
            "needs role admin; agent \"ann\" is not allowed to administer rules, departments, \
             accounts and tokens"
        );
    }

    // Her own password with the current one; not without it, not someone else's.
    let path = "/v1/users/ann/password";
    let (status, body) = client
        .post(path, Some(&ann), json!({"password": "ann's new one"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "current_password");
    let (status, _) = client
        .post(
            path,
            Some(&ann),
            json!({"password": "ann's new one", "current_password": "not it at all"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = client
        .post(
            "/v1/users/admin/password",
            Some(&ann),
            json!({"password": "taken over", "current_password": ann_password}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = client
        .post(
            path,
            Some(&ann),
            json!({"password": "ann's new one", "current_password": ann_password}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        client.get("/v1/me", Some(&ann)).await.0,
        StatusCode::UNAUTHORIZED,
        "her session ended"
    );
    let ann = login(&client, "ann", "ann's new one").await;
    let (status, _) = client
        .post(path, Some(&admin), json!({"password": "reset by admin"}))
        .await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "an admin needs no current password"
    );
    assert_eq!(
        client.get("/v1/me", Some(&ann)).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Tokens: created once with the secret, listed without, revoked for good.
    let (status, created) = client
        .post(
            "/v1/tokens",
            Some(&admin),
            json!({"name": "gateway", "role": "connector"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let token = created["token"].as_str().expect("token").to_owned();
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(
        client.get("/needs/submit", Some(&token)).await.0,
        StatusCode::OK
    );
    let (_, listed) = client.get("/v1/tokens", Some(&admin)).await;
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0].get("token"), None, "no secret in a listing");
    let (status, _) = client
        .post(
            "/v1/tokens",
            Some(&admin),
            json!({"name": "gateway", "role": "root"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        client
            .call(
                Method::DELETE,
                &format!("/v1/tokens/{id}"),
                Some(&admin),
                None
            )
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        client
            .call(
                Method::DELETE,
                &format!("/v1/tokens/{id}"),
                Some(&admin),
                None
            )
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (status, body) = client.get("/needs/submit", Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "revoked");
    assert_eq!(body["error"], "the API token is unknown or revoked");

    assert_eq!(
        client
            .call(Method::DELETE, "/v1/users/ann", Some(&admin), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        client
            .call(Method::DELETE, "/v1/users/ann", Some(&admin), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (status, _) = client
        .post(
            "/v1/login",
            None,
            json!({"name": "ann", "password": "reset by admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[test]
fn the_openapi_document_describes_every_route_and_both_credentials() {
    let doc = serde_json::to_value(AccountsApi::openapi()).expect("json");
    let paths: Vec<&String> = doc["paths"].as_object().expect("paths").keys().collect();
    assert_eq!(
        paths,
        [
            "/v1/login",
            "/v1/logout",
            "/v1/me",
            "/v1/sso",
            "/v1/sso/callback",
            "/v1/sso/redeem",
            "/v1/sso/start",
            "/v1/tokens",
            "/v1/tokens/{id}",
            "/v1/users",
            "/v1/users/{name}",
            "/v1/users/{name}/password"
        ]
    );
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["session_cookie"]["in"], "cookie");
    assert_eq!(schemes["session_cookie"]["name"], "sb_session");
    assert_eq!(
        doc["paths"]["/v1/login"]["post"]["security"],
        json!([{}]),
        "login needs no credential"
    );
    for path in switchboard_accounts::SSO_PATHS {
        let operation = doc["paths"][path]
            .as_object()
            .and_then(|methods| methods.values().next())
            .expect("documented");
        assert_eq!(operation["security"], json!([{}]), "{path} is open");
    }
    let login = &doc["components"]["schemas"]["LoginReply"]["properties"];
    assert!(login.get("expires_at_ms").is_some(), "{login}");
    assert_eq!(
        doc["components"]["schemas"]["Role"]["enum"],
        json!(["agent", "supervisor", "admin", "connector", "viewer"])
    );
}
