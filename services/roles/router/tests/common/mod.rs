//! What the HTTP tests share: the router's routes behind the real auth layer on a bus, tokens for each
//! role, and the buses to run on (the in-process one and the nats-server at
//! `SWITCHBOARD_TEST_NATS_URL`).
#![allow(dead_code)] // each test binary uses its own part

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::TryStreamExt;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use switchboard_accounts::{Auth, AuthConfig, Role};
use switchboard_bus::Bus;
use switchboard_bus::Kv;
use switchboard_bus::memory::MemoryBus;
use switchboard_bus::nats::{NatsBus, NatsConfig};
use switchboard_knowledge::KnowledgeBase;
use switchboard_router::{
    MinedHistory, RULE_HISTORY_BUCKET, RouterApiState, RouterConfig, RuleEditor,
};
use switchboard_runtime::buckets;

/// Runs `test` on the in-process bus and on NATS, each in a test of its own.
macro_rules! on_both_buses {
    ($test:ident) => {
        mod $test {
            #[tokio::test]
            async fn memory() {
                super::$test(crate::common::OnBus::Memory).await;
            }
            #[tokio::test]
            async fn nats() {
                super::$test(crate::common::OnBus::Nats).await;
            }
        }
    };
}

#[derive(Debug, Clone, Copy)]
pub enum OnBus {
    Memory,
    Nats,
}

/// The routes served on 127.0.0.1 and what a test needs around them. Dropping it removes the NATS
/// stream and buckets the test made.
pub struct Served {
    base: String,
    http: reqwest::Client,
    pub admin: String,
    pub other_admin: String,
    pub agent: String,
    pub viewer: String,
    pub connector: String,
    pub rules: Arc<dyn Kv>,
    pub decisions: Arc<dyn Kv>,
    pub departments: Arc<dyn Kv>,
    run: Option<String>,
}

pub async fn serve(bus: OnBus) -> Served {
    serve_with_history(bus, None).await
}

/// A knowledge base and the directory that holds it.
pub struct History {
    pub kb: KnowledgeBase,
    pub dir: tempfile::TempDir,
}

/// [`serve`], mining `history` for the rule suggestions and hot keywords.
pub async fn serve_with_history(bus: OnBus, history: Option<History>) -> Served {
    let (bus, run): (Arc<dyn Bus>, Option<String>) = match bus {
        OnBus::Memory => (Arc::new(MemoryBus::new()), None),
        OnBus::Nats => {
            let run = unique("rt");
            (nats_bus(&run).await, Some(run))
        }
    };
    let auth = Auth::new(&bus, AuthConfig::default()).await.expect("auth");
    let mut tokens = Vec::new();
    for (name, role) in [
        ("alice", Role::Admin),
        ("bob", Role::Admin),
        ("ann", Role::Agent),
        ("wall", Role::Viewer),
        ("mailgw", Role::Connector),
    ] {
        let token = auth.accounts().create_token(name, role).await;
        tokens.push(token.expect("token").token);
    }
    let [admin, other_admin, agent, viewer, connector] =
        <[String; 5]>::try_from(tokens).expect("five tokens");
    let rules = bus.kv(buckets::RULES).await.expect("rules");
    let decisions = bus.kv(buckets::DECISIONS).await.expect("decisions");
    let departments = bus.kv(buckets::DEPARTMENTS).await.expect("departments");
    let state = RouterApiState {
        editor: RuleEditor::new(
            rules.clone(),
            bus.kv(RULE_HISTORY_BUCKET).await.expect("history"),
        ),
        decisions: decisions.clone(),
        departments: departments.clone(),
        config: RouterConfig::default(),
        history: history.as_ref().map(|h| MinedHistory::new(h.kb.clone())),
    };
    let dir = history.map(|h| h.dir);
    let app = switchboard_router::http_routes(state)
        .merge(auth.router())
        .layer(auth.layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        // Declared first, so dropped last: the knowledge base in the routes writes its files when it
        // closes, at the end of the test's runtime, and its directory must still be there.
        let _dir = dir;
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    Served {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        admin,
        other_admin,
        agent,
        viewer,
        connector,
        rules,
        decisions,
        departments,
        run,
    }
}

impl Served {
    /// The status and the JSON body (a string when it is not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        credential: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(credential) = credential {
            request = request.bearer_auth(credential);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("send");
        let status = response.status();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str, credential: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(credential), None).await
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        credential: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        self.call(method, path, Some(credential), Some(body)).await
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(run) = self.run.take() {
            // Drop cannot wait on the runtime the test is ending; a thread of its own can.
            std::thread::spawn(move || {
                tokio::runtime::Runtime::new()
                    .expect("runtime")
                    .block_on(clean_up(&run));
            })
            .join()
            .expect("clean up");
        }
    }
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}{}x{nanos}", std::process::id())
}

fn nats_url() -> String {
    std::env::var("SWITCHBOARD_TEST_NATS_URL")
        .unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

async fn nats_bus(run: &str) -> Arc<dyn Bus> {
    let url = nats_url();
    let config = NatsConfig {
        url: url.clone(),
        credentials: None,
        stream: run.to_owned(),
        subjects: vec![format!("{run}.>")],
        kv_prefix: run.to_owned(),
        replicas: 1,
        max_age: Duration::from_secs(3600),
        duplicate_window: Duration::from_secs(120),
    };
    let bus = NatsBus::connect(config).await.unwrap_or_else(|err| {
        panic!("no NATS JetStream server at {url} ({err}): start one with scripts/ensure-nats.sh")
    });
    Arc::new(bus)
}

/// Deletes the stream and buckets of `run`.
async fn clean_up(run: &str) {
    let js = async_nats::jetstream::new(async_nats::connect(nats_url()).await.expect("connect"));
    let buckets = format!("KV_{run}_");
    let names: Vec<String> = js.stream_names().try_collect().await.expect("streams");
    for name in names {
        if name == run || name.starts_with(&buckets) {
            js.delete_stream(&name).await.expect("delete stream");
        }
    }
}
