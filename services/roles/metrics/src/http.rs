//! `GET /v1/stats`: the cockpit's figures as JSON, for whoever holds `Read`; the same figures as the
//! `Stats` gRPC service. Its OpenAPI description is [`MetricsApi`].

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use switchboard_accounts::{AuthError, Capability, Principal};
use switchboard_proto::{
    DepartmentHandling, HourDecisions, Incident, IssueCount, ReasonCount, RisingIssue, StatsReply,
};

use crate::service::figures;
use crate::tally::Tally;

pub fn routes(tally: Arc<Mutex<Tally>>) -> Router {
    Router::new()
        .route("/v1/stats", get(stats))
        .with_state(tally)
}

/// The metrics API's OpenAPI description, for the binary to merge into `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(stats),
    components(schemas(
        StatsReply,
        IssueCount,
        ReasonCount,
        DepartmentHandling,
        RisingIssue,
        Incident,
        HourDecisions
    )),
    tags((name = "stats", description = "The data cockpit's figures"))
)]
pub struct MetricsApi;

#[utoipa::path(get, path = "/v1/stats", tag = "stats",
    responses((status = 200, body = StatsReply),
        (status = 401, description = "no credential"), (status = 403, description = "the role lacks read")))]
async fn stats(
    State(tally): State<Arc<Mutex<Tally>>>,
    principal: Principal,
) -> Result<Json<StatsReply>, AuthError> {
    principal.require(Capability::Read)?;
    Ok(Json(figures(&tally)))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use futures::TryStreamExt;
    use reqwest::StatusCode;
    use serde_json::Value;
    use switchboard_accounts::{Auth, AuthConfig, Role};
    use switchboard_bus::Bus;
    use switchboard_bus::memory::MemoryBus;
    use switchboard_bus::nats::{NatsBus, NatsConfig};

    use super::*;

    fn nats_url() -> String {
        std::env::var("SWITCHBOARD_TEST_NATS_URL")
            .unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
    }

    /// `GET /v1/stats` behind the auth layer on `bus`: 401, 403 naming the roles, and the figures.
    async fn stats_over_http(bus: Arc<dyn Bus>) {
        let auth = Auth::new(&bus, AuthConfig::default()).await.expect("auth");
        let viewer = auth.accounts().create_token("wall", Role::Viewer).await;
        let connector = auth
            .accounts()
            .create_token("mailgw", Role::Connector)
            .await;
        let (viewer, connector) = (
            viewer.expect("token").token,
            connector.expect("token").token,
        );
        let tally = Arc::new(Mutex::new(Tally::default()));
        {
            let mut t = tally.lock().unwrap();
            t.received("t-1", 1_000);
            t.decided("t-1", true, "auth", "password reset", 1_000);
        }
        let app = routes(tally.clone())
            .merge(auth.router())
            .layer(auth.layer());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/v1/stats", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .expect("serve");
        });
        let http = reqwest::Client::new();
        let get = |credential: Option<&str>| {
            let mut request = http.get(&url);
            if let Some(credential) = credential {
                request = request.bearer_auth(credential);
            }
            async move {
                let response = request.send().await.expect("send");
                let status = response.status();
                (
                    status,
                    response.json::<Value>().await.unwrap_or(Value::Null),
                )
            }
        };
        assert_eq!(get(None).await.0, StatusCode::UNAUTHORIZED);
        let (status, body) = get(Some(&connector)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(body["error"].as_str().unwrap().contains("viewer"), "{body}");
        let (status, body) = get(Some(&viewer)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let expected = serde_json::to_value(figures(&tally)).expect("json");
        assert_eq!(body, expected, "the gRPC service's figures");
        assert_eq!(
            (body["received"].as_u64(), body["routed"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(body["hot_issues"][0]["problem_type"], "password reset");
    }

    #[test]
    fn the_openapi_document_describes_the_route() {
        use utoipa::OpenApi as _;
        let doc = serde_json::to_value(MetricsApi::openapi()).expect("json");
        assert!(doc["paths"]["/v1/stats"]["get"].is_object(), "{doc}");
        assert!(doc["components"]["schemas"]["StatsReply"].is_object());
    }

    #[tokio::test]
    async fn stats_need_read_on_the_in_process_bus() {
        stats_over_http(Arc::new(MemoryBus::new())).await;
    }

    #[tokio::test]
    async fn stats_need_read_on_nats() {
        let run = format!("mt{}x{}", std::process::id(), switchboard_runtime::now_ms());
        let config = NatsConfig {
            url: nats_url(),
            credentials: None,
            stream: run.clone(),
            subjects: vec![format!("{run}.>")],
            kv_prefix: run.clone(),
            replicas: 1,
            max_age: Duration::from_secs(3600),
            duplicate_window: Duration::from_secs(120),
        };
        let bus = NatsBus::connect(config)
            .await
            .expect("a NATS JetStream server");
        stats_over_http(Arc::new(bus)).await;
        let js =
            async_nats::jetstream::new(async_nats::connect(nats_url()).await.expect("connect"));
        let names: Vec<String> = js.stream_names().try_collect().await.expect("streams");
        for name in names
            .iter()
            .filter(|n| **n == run || n.starts_with(&format!("KV_{run}_")))
        {
            js.delete_stream(name).await.expect("delete stream");
        }
    }
}
