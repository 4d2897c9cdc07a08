//! What the tests share: buses to run on, and headers carrying a credential.
#![allow(dead_code)] // each test binary uses its own part

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, header};
use futures::TryStreamExt;
use switchboard_bus::Bus;
use switchboard_bus::nats::{NatsBus, NatsConfig};

pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}{}x{nanos}", std::process::id())
}

pub fn nats_url() -> String {
    std::env::var("SWITCHBOARD_TEST_NATS_URL")
        .unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// `n` connections to the nats-server, sharing buckets under the fresh prefix `run`.
pub async fn nats_buses(run: &str, n: usize) -> Vec<Arc<dyn Bus>> {
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
    let mut buses: Vec<Arc<dyn Bus>> = Vec::new();
    for _ in 0..n {
        let bus = NatsBus::connect(config.clone()).await.unwrap_or_else(|err| {
            panic!("no NATS JetStream server at {url} ({err}): start one with scripts/ensure-nats.sh")
        });
        buses.push(Arc::new(bus));
    }
    buses
}

/// Deletes the stream and buckets of `run`.
pub async fn clean_up(run: &str) {
    let js = async_nats::jetstream::new(async_nats::connect(nats_url()).await.expect("connect"));
    let buckets = format!("KV_{run}_");
    let names: Vec<String> = js.stream_names().try_collect().await.expect("streams");
    for name in names {
        if name == run || name.starts_with(&buckets) {
            js.delete_stream(&name).await.expect("delete stream");
        }
    }
}

pub fn bearer(credential: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::try_from(format!("Bearer {credential}")).expect("header value"),
    );
    headers
}

pub fn cookie(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::COOKIE,
        HeaderValue::try_from(format!("theme=dark; sb_session={token}")).expect("header value"),
    );
    headers
}
