//! The NATS bus against a real server at `SWITCHBOARD_TEST_NATS_URL` (default
//! `nats://127.0.0.1:4222`). A missing server fails the test: start one with
//! `scripts/ensure-nats.sh`.

use std::error::Error;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{FutureExt, TryStreamExt};
use switchboard_bus::nats::{NatsBus, NatsConfig};
use switchboard_bus::{Bus, BusError, conformance};

fn server_url() -> String {
    std::env::var("SWITCHBOARD_TEST_NATS_URL")
        .unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A name no other run uses, so runs sharing one server never meet.
fn run_name() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis());
    format!("sbtest_{}_{millis}", std::process::id())
}

fn causes(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_bus_passes_the_conformance_suite() {
    let url = server_url();
    let run = run_name();
    let config = NatsConfig {
        url: url.clone(),
        credentials: None,
        stream: run.clone(),
        subjects: vec![format!("{run}.>")],
        kv_prefix: run.clone(),
        replicas: 1,
        max_age: Duration::from_secs(3600),
        duplicate_window: Duration::from_secs(120),
    };
    let bus = NatsBus::connect(config).await.unwrap_or_else(|err| {
        panic!(
            "no usable NATS JetStream server at {url} ({}); start one with scripts/ensure-nats.sh \
             or point SWITCHBOARD_TEST_NATS_URL at one",
            causes(&err)
        )
    });
    assert!(bus.durable());

    let outcome = AssertUnwindSafe(conformance::run_all(Arc::new(bus), &run))
        .catch_unwind()
        .await;
    let cleaned = clean_up(&url, &run).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    cleaned.expect("deleting the test stream and buckets");
}

/// Deletes the run's stream and its `KV_<run>_*` buckets.
async fn clean_up(url: &str, run: &str) -> Result<(), async_nats::Error> {
    let js = async_nats::jetstream::new(async_nats::connect(url).await?);
    let bucket_prefix = format!("KV_{run}_");
    let names: Vec<String> = js.stream_names().try_collect().await?;
    for name in names {
        if name == run || name.starts_with(&bucket_prefix) {
            js.delete_stream(&name).await?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn an_unreachable_server_is_named_in_the_error() {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let url = "nats://127.0.0.1:1".to_owned();
    let config = NatsConfig {
        url: url.clone(),
        ..NatsConfig::default()
    };
    match NatsBus::connect(config).await {
        Err(err @ BusError::Connect { .. }) => {
            assert!(err.to_string().contains(&url), "{err}");
            assert!(err.source().is_some(), "the cause is kept");
        }
        other => panic!("expected a connect error, got {other:?}"),
    }
}
