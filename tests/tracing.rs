//! One ticket is one trace across every role: spans recorded by an in-memory exporter, with the context
//! carried from role to role in bus message headers — on a real nats-server and on the embedded bus.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use opentelemetry::trace::TraceId;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use switchboard_proto::SubmitRequest;
use switchboard_proto::intake_client::IntakeClient;
use switchboard_tests::{Kind, bus, collect_decisions, eventually, grpc, settings, start};
use tracing_subscriber::layer::SubscriberExt;

const ROLES: [&str; 5] = ["parser", "sentiment", "retriever", "router", "metrics"];

async fn one_trace_per_ticket(
    kind: Kind,
    exporter: &InMemorySpanExporter,
    provider: &SdkTracerProvider,
) -> anyhow::Result<()> {
    exporter.reset();
    let data = tempfile::tempdir()?;
    let settings = settings(kind, &data);
    let bus = bus(&settings).await?;
    let decisions = collect_decisions(&settings, &bus).await?;
    let running = start(&settings, "all", bus).await?;
    let mut client = IntakeClient::new(grpc(&running).await?);
    let id = client
        .submit(SubmitRequest {
            text: "My VPN drops every ten minutes since this morning"
                .as_bytes()
                .to_vec(),
            channel: "web".into(),
            ..SubmitRequest::default()
        })
        .await?
        .into_inner()
        .ticket_id;
    eventually(Duration::from_secs(60), "the decision", || {
        let (decisions, id) = (decisions.clone(), id.clone());
        async move { decisions.lock().await.by_ticket.contains_key(&id) }
    })
    .await?;
    running.shutdown().await;
    switchboard_tests::clean_up(&settings).await?;
    provider.force_flush()?;

    let spans = exporter.get_finished_spans()?;
    let intake = spans
        .iter()
        .find(|s| s.name == "intake.submit")
        .expect("an intake span");
    let trace: TraceId = intake.span_context.trace_id();
    let mut roles_in_trace: HashMap<String, HashSet<TraceId>> = HashMap::new();
    for s in &spans {
        if let Some(role) = s.attributes.iter().find(|kv| kv.key.as_str() == "role") {
            roles_in_trace
                .entry(role.value.to_string())
                .or_default()
                .insert(s.span_context.trace_id());
        }
    }
    for role in ROLES {
        let traces = roles_in_trace
            .get(role)
            .unwrap_or_else(|| panic!("no span from {role}: {roles_in_trace:?}"));
        assert_eq!(
            traces,
            &HashSet::from([trace]),
            "{role} joined the ticket's trace"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_ticket_is_one_trace_across_roles() -> anyhow::Result<()> {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    switchboard_runtime::telemetry::install_propagator();
    let subscriber = tracing_subscriber::registry().with(
        switchboard_runtime::telemetry::otel_layer(&provider, "switchboard-test"),
    );
    // Roles run on the runtime's worker threads, so the subscriber must be global, not thread-local;
    // this test binary holds only this test.
    tracing::subscriber::set_global_default(subscriber)?;
    one_trace_per_ticket(Kind::Nats, &exporter, &provider).await?;
    one_trace_per_ticket(Kind::Memory, &exporter, &provider).await
}
