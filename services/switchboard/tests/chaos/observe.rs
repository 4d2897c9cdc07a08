//! Reads the deployment's stream from the side, straight from nats-server, as it fills: which
//! tickets each idempotency key made, how many decisions each ticket got, and which tickets a role
//! gave up on. The stream keeps every event (limits retention), so this is the record of what the
//! pipeline did, whatever the roles told anyone.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;

pub use crate::tally::Observed;

pub type Shared = Arc<Mutex<Observed>>;

/// Starts reading `stream`'s events under `prefix` from its first, on a connection of its own that
/// survives the server's restarts: after any error it reads on from where it was.
pub fn start(url: String, stream: String, prefix: String) -> Shared {
    let observed = Shared::default();
    let shared = observed.clone();
    tokio::spawn(async move {
        loop {
            // Errors are expected here (the run kills nats-server); a lasting one shows as a
            // reader that never catches up with the stream's last sequence.
            let Err(_) = read(&url, &stream, &prefix, &shared).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    observed
}

async fn read(
    url: &str,
    stream: &str,
    prefix: &str,
    observed: &Shared,
) -> anyhow::Result<std::convert::Infallible> {
    let js = jetstream::new(async_nats::connect(url).await?);
    let stream = js.get_stream(stream).await?;
    let from = observed.lock().expect("observed").next_sequence.max(1);
    // An ordered consumer: it checks every delivery's consumer sequence and starts again after the
    // last message it handed over whenever one went missing (a delivery in flight when nats-server
    // was killed is never redelivered to a consumer without acks, and would leave a silent gap).
    let reader = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            filter_subject: format!("{prefix}.>"),
            ..Default::default()
        })
        .await?;
    let mut messages = reader.messages().await?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| anyhow::anyhow!(e))?;
        let sequence = message
            .info()
            .map_err(|e| anyhow::anyhow!(e))?
            .stream_sequence;
        let mut observed = observed.lock().expect("observed");
        if sequence < observed.next_sequence {
            continue;
        }
        observed.next_sequence = sequence + 1;
        observed.take(prefix, &message.subject, &message.payload);
    }
    anyhow::bail!("the ordered consumer ended")
}
