//! Every role in a process of its own, as the chart deploys them, on a real nats-server and the
//! Qdrant server in `../shared/tools`, each exporting its traces over OTLP gRPC to a receiver this
//! test runs. A submitted ticket is decided, and is one trace: the spans of every role on its path
//! carry its trace id, each exported under its own role's `service.name` (`switchboard-router`, …).
//! Skips, saying so, where there is no Qdrant server (processes cannot share an embedded store).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::{Cluster, decided};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;

#[path = "support/cluster.rs"]
mod cluster;

/// Every role, each started alone.
fn roles() -> [&'static str; 9] {
    switchboard::Role::ALL.map(switchboard::Role::name)
}
/// The roles a ticket passes through on its way to a decision, each of which must join its trace.
const ON_THE_PATH: [&str; 6] = [
    "parser",
    "sentiment",
    "retriever",
    "router",
    "assign",
    "metrics",
];

/// One span as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    trace: Vec<u8>,
    /// The `role` attribute the runner puts on a role's handling span.
    role: Option<String>,
}

fn text_attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    })
}

/// An OTLP trace collector keeping every span it is sent.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Received>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut kept = self.0.lock().expect("spans");
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .as_ref()
                .and_then(|r| text_attribute(&r.attributes, "service.name"))
                .unwrap_or_default();
            for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                kept.push(Received {
                    service: service.clone(),
                    role: text_attribute(&span.attributes, "role"),
                    name: span.name,
                    trace: span.trace_id,
                });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Receiver {
    async fn start(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(switchboard_listen::limited_incoming(listener, 64, 64)),
        );
        addr
    }

    fn spans(&self) -> Vec<Received> {
        self.0.lock().expect("spans").clone()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_role_in_its_own_process_decides_a_ticket_in_one_trace() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some((_qdrant, qdrant)) = cluster::qdrant(dir.path()) else {
        eprintln!("skipped: no Qdrant server at ../shared/tools/qdrant");
        return;
    };
    let receiver = Receiver::default();
    let endpoint = format!("http://{}", receiver.start().await);
    let cluster = Cluster {
        id: format!("dist{}", std::process::id()),
        nats: cluster::nats_url(),
        qdrant,
        data: dir.path(),
    };
    cluster.import_demo_history();
    let token = cluster.admin_token();

    let mut processes = Vec::new();
    let mut grpc = BTreeMap::new();
    for role in roles() {
        let env = [("SWITCHBOARD__TELEMETRY__OTLP_ENDPOINT", endpoint.as_str())];
        let (process, addr) = cluster.run(role, &dir.path().join(role), &env);
        processes.push(process);
        grpc.insert(role, addr);
    }

    let ticket = decided(
        grpc["intake"],
        grpc["feedback"],
        &token,
        "VPN 每隔十分钟就断一次，从今天早上开始",
    )
    .await;
    let decision = ticket.decision.as_ref().expect("a decision");
    assert!(!decision.explanation.is_empty(), "{decision:?}");

    // The exporters send in batches every few seconds.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (trace, spans) = loop {
        let spans = receiver.spans();
        let trace = spans
            .iter()
            .find(|s| s.name == "intake.submit")
            .map(|s| s.trace.clone());
        let joined: BTreeSet<&str> = spans
            .iter()
            .filter(|s| Some(&s.trace) == trace.as_ref())
            .filter_map(|s| s.role.as_deref())
            .collect();
        if let Some(trace) = &trace
            && ON_THE_PATH.iter().all(|role| joined.contains(role))
        {
            break (trace.clone(), spans);
        }
        assert!(
            Instant::now() < deadline,
            "within 60 s, the ticket's trace {trace:?} was joined only by {joined:?}; spans: {spans:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let submit = spans
        .iter()
        .find(|s| s.name == "intake.submit")
        .expect("the intake span");
    assert_eq!(submit.service, "switchboard-intake");
    for span in spans.iter().filter(|s| s.role.is_some()) {
        let role = span.role.as_deref().expect("a role");
        assert_eq!(
            span.service,
            format!("switchboard-{role}"),
            "exported by its own role's process: {span:?}"
        );
        if ON_THE_PATH.contains(&role) {
            assert_eq!(span.trace, trace, "one ticket is one trace: {span:?}");
        }
    }
    let services: BTreeSet<&str> = spans.iter().map(|s| s.service.as_str()).collect();
    eprintln!(
        "{} spans from {services:?}; the ticket went to {:?}",
        spans.len(),
        decision.department
    );

    drop(processes);
    cluster.clean_up().await;
}
