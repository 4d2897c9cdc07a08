//! The same layer in front of a tonic server on 127.0.0.1 (the Stats service, whose handler here
//! requires `Read` the way the real one will): UNAUTHENTICATED without a credential or with a bad
//! one, PERMISSION_DENIED naming the roles for a role without the capability, the caller handed to
//! the handler otherwise; and the refusal's wire form, a trailers-only answer.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use switchboard_accounts::{Auth, AuthConfig, Capability, Principal, Role};
use switchboard_bus::Bus;
use switchboard_bus::memory::MemoryBus;
use switchboard_proto::stats_client::StatsClient;
use switchboard_proto::stats_server::{Stats, StatsServer};
use switchboard_proto::{IssueCount, StatsReply, StatsRequest};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Server};
use tonic::{Code, Response, Status};
use tower::ServiceExt;

/// Answers with the caller's name, so the test sees the principal reached the handler.
struct WhoAsks;

#[tonic::async_trait]
impl Stats for WhoAsks {
    async fn get(
        &self,
        request: tonic::Request<StatsRequest>,
    ) -> Result<Response<StatsReply>, Status> {
        let principal = Principal::from_grpc(&request)?;
        principal.require(Capability::Read)?;
        Ok(Response::new(StatsReply {
            hot_issues: vec![IssueCount {
                problem_type: principal.name.clone(),
                count: 1,
            }],
            ..StatsReply::default()
        }))
    }
}

async fn serve(auth: &Auth) -> Channel {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = Server::builder()
        .layer(auth.layer())
        .add_service(StatsServer::new(WhoAsks));
    tokio::spawn(async move {
        server
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .expect("serve");
    });
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

fn request(credential: Option<&str>) -> tonic::Request<StatsRequest> {
    let mut request = tonic::Request::new(StatsRequest {});
    if let Some(credential) = credential {
        let value = MetadataValue::try_from(format!("Bearer {credential}")).expect("metadata");
        request.metadata_mut().insert("authorization", value);
    }
    request
}

#[tokio::test]
async fn the_layer_guards_a_tonic_server() {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let auth = Auth::new(&bus, AuthConfig::default()).await.expect("auth");
    let viewer = auth
        .accounts()
        .create_token("wallboard", Role::Viewer)
        .await
        .expect("token");
    let connector = auth
        .accounts()
        .create_token("mail-gateway", Role::Connector)
        .await
        .expect("token");
    let mut client = StatsClient::new(serve(&auth).await);

    let status = client.get(request(None)).await.expect_err("no credential");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().starts_with("a credential is required: "),
        "{status:?}"
    );

    let status = client
        .get(request(Some("sbt_0123456789abcdef_forged")))
        .await
        .expect_err("forged");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "the API token is unknown or revoked");

    let status = client
        .get(request(Some(&connector.token)))
        .await
        .expect_err("a connector does not read");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(
        status.message(),
        "needs role agent, supervisor, admin or viewer; connector \"mail-gateway\" is not allowed \
         to read tickets"
    );

    let reply = client
        .get(request(Some(&viewer.token)))
        .await
        .expect("a viewer reads")
        .into_inner();
    assert_eq!(reply.hot_issues[0].problem_type, "wallboard");

    auth.accounts()
        .revoke_token(&viewer.info.id)
        .await
        .expect("revoke");
    let status = client
        .get(request(Some(&viewer.token)))
        .await
        .expect_err("revoked");
    assert_eq!(status.code(), Code::Unauthenticated);
}

/// What goes on the wire for a gRPC request without a credential: HTTP 200, `content-type:
/// application/grpc` and the status in the headers, which gRPC clients read as the trailers of an
/// answer without messages.
#[tokio::test]
async fn a_grpc_refusal_is_trailers_only() {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let auth = Auth::new(&bus, AuthConfig::default()).await.expect("auth");
    let app = axum::Router::new()
        .route_service("/switchboard.v1.Stats/Get", StatsServer::new(WhoAsks))
        .layer(auth.layer());
    let response = app
        .oneshot(
            Request::post("/switchboard.v1.Stats/Get")
                .header("content-type", "application/grpc+proto")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "application/grpc");
    assert_eq!(headers["grpc-status"], "16");
    let message = headers["grpc-message"].to_str().expect("ascii");
    assert!(
        message.starts_with("a%20credential%20is%20required"),
        "{message}"
    );
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    assert!(body.is_empty(), "no message, only the status");
}

/// A credential's requests are limited across both doors together: past its burst it gets 429 with
/// `Retry-After` on HTTP and RESOURCE_EXHAUSTED on gRPC, while another credential and the open paths
/// still pass.
#[tokio::test]
async fn each_credential_has_one_request_budget_across_both_doors() {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let config = AuthConfig {
        requests_per_second: 1,
        request_burst: 3,
        ..AuthConfig::default()
    };
    let auth = Auth::new(&bus, config).await.expect("auth");
    let wallboard = auth
        .accounts()
        .create_token("wallboard", Role::Viewer)
        .await
        .expect("token");
    let other = auth
        .accounts()
        .create_token("tv-screen", Role::Viewer)
        .await
        .expect("token");
    let mut grpc = StatsClient::new(serve(&auth).await);
    let http = axum::Router::new()
        .route(
            "/whoami",
            axum::routing::get(|p: Principal| async move { p.name }),
        )
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .layer(auth.layer());
    let http_get = |path: &str, token: Option<&str>| {
        let mut request = Request::get(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        http.clone()
            .oneshot(request.body(Body::empty()).expect("request"))
    };

    for _ in 0..2 {
        let answer = http_get("/whoami", Some(&wallboard.token))
            .await
            .expect("answer");
        assert_eq!(answer.status(), StatusCode::OK);
    }
    grpc.get(request(Some(&wallboard.token)))
        .await
        .expect("the third request of the burst");

    let refused = http_get("/whoami", Some(&wallboard.token))
        .await
        .expect("answer");
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body = axum::body::to_bytes(refused.into_body(), usize::MAX)
        .await
        .expect("body");
    let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        body["error"],
        "too many requests from \"wallboard\": retry in 1 s"
    );
    let status = grpc
        .get(request(Some(&wallboard.token)))
        .await
        .expect_err("over the budget");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    let answer = http_get("/whoami", Some(&other.token))
        .await
        .expect("answer");
    assert_eq!(answer.status(), StatusCode::OK, "another credential");
    for _ in 0..10 {
        let answer = http_get("/healthz", None).await.expect("answer");
        assert_eq!(
            answer.status(),
            StatusCode::OK,
            "open paths are not limited"
        );
    }

    // The bucket refills at one request a second: asked until it answers, within a deadline.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    while let Err(status) = grpc.get(request(Some(&wallboard.token))).await {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "not refilled within 3 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
