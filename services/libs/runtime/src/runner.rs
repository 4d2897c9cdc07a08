//! Turns a [`Handler`] into a role: one durable consumer shared by every replica, bounded concurrency,
//! ack only after the outputs are published, bounded redeliveries, then a dead letter — never a silent drop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message;
use serde::Deserialize;
use switchboard_bus::{BusError, Consumer, ConsumerSpec, Delivery};
use switchboard_proto::DeadLetter;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::deadletters;
use crate::handler::{Handler, HandlerError, Inbound, Outbound};
use crate::metrics::{Metrics, outcome};
use crate::publisher::Publisher;
use crate::signing::{Rejection, Signer};
use crate::subjects::Subjects;
use crate::supervisor::Supervisor;
use crate::{error_chain, now_ms, telemetry};

/// The longest a message waits between two tries while a dependency is unavailable: it bounds how
/// long after the dependency is back the messages that waited for it move again, at the cost of one
/// call per message in hand that often.
const OUTAGE_LONGEST_PAUSE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunnerOptions {
    /// Deliveries of one message before it is dead-lettered.
    pub max_deliver: u64,
    /// Seconds an unacknowledged delivery waits before redelivery; long handlers extend it as they go.
    pub ack_wait_secs: u64,
    /// Messages one replica of a role handles at once.
    pub concurrency: usize,
    /// First retry delay in milliseconds; doubles per attempt.
    pub retry_backoff_ms: u64,
    /// Seconds between two reads of the consumer's backlog for `switchboard_consumer_pending`. Each
    /// read is one request to the bus per role and replica (JetStream's consumer info; the embedded
    /// bus counts its stored backlog), so it is kept well apart; the default reads twice per 30 s
    /// scrape, so a scrape's value is at most 15 s old.
    pub pending_poll_secs: u64,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        Self {
            max_deliver: 5,
            ack_wait_secs: 30,
            concurrency: 32,
            retry_backoff_ms: 200,
            pending_poll_secs: 15,
        }
    }
}

impl RunnerOptions {
    fn ack_wait(&self) -> Duration {
        Duration::from_secs(self.ack_wait_secs.max(1))
    }

    fn backoff(&self, attempt: u64) -> Duration {
        let exp = u32::try_from(attempt.saturating_sub(1).min(10)).unwrap_or(10);
        Duration::from_millis(self.retry_backoff_ms.saturating_mul(1 << exp))
    }
}

/// One role wired to the bus.
pub struct RoleRunner {
    pub role: &'static str,
    pub filter: String,
    /// See [`crate::RoleParts::each_replica_reads_all`].
    pub each_replica_reads_all: bool,
    pub handler: Arc<dyn Handler>,
    pub publisher: Publisher,
    pub subjects: Subjects,
    pub metrics: Metrics,
    pub options: RunnerOptions,
    /// Checks that each message on an internal subject was signed by a role; `None` takes every
    /// message (no signing key is configured).
    pub signer: Option<Signer>,
}

/// A role consuming in the background.
#[derive(Debug)]
pub struct RunningRole {
    pub role: &'static str,
    consumer: Arc<dyn Consumer>,
    task: tokio::task::JoinHandle<()>,
    stop: CancellationToken,
}

impl RunningRole {
    /// Messages for this role not yet acknowledged.
    pub async fn pending(&self) -> Result<u64, BusError> {
        self.consumer.pending().await
    }

    /// Stops pulling and waits for the messages in hand to finish.
    pub async fn stop(self) {
        self.stop.cancel();
        if let Err(e) = self.task.await {
            tracing::error!(role = self.role, error = %e, "role task failed");
        }
    }

    /// Ends the role at once, as a crash would: messages in hand are not acknowledged and will be
    /// redelivered after their ack wait.
    pub fn abort(self) {
        self.task.abort();
    }
}

/// Reads the consumer's backlog into `switchboard_consumer_pending{role}` at once and then every
/// `period`, until `stop`. A failed read is logged and leaves the last value: the bus being away is
/// what the role's own errors report.
async fn poll_pending(
    consumer: Arc<dyn Consumer>,
    metrics: Metrics,
    role: &'static str,
    period: Duration,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match consumer.pending().await {
            Ok(pending) => metrics.pending(role, pending),
            Err(e) => {
                tracing::debug!(role, error = %error_chain(&e), "consumer backlog not read")
            }
        }
    }
}

/// Where a role's deliveries come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The subjects the role consumes.
    Live,
    /// Dead letters an operator sent back (`<prefix>.replay.<role>`), each handled as the message
    /// it holds.
    Replay,
}

/// The message a replayed dead letter holds, delivered as itself: its subject and payload, on the
/// replay's acknowledgement and attempt count, so it gets the role's full redeliveries again. A
/// replay that holds no dead letter is acknowledged and logged: there is nothing to handle.
async fn replayed(delivery: Delivery) -> Option<Delivery> {
    match DeadLetter::decode(delivery.payload.clone()) {
        Ok(letter) => Some(Delivery {
            subject: letter.subject,
            payload: Bytes::from(letter.payload),
            ..delivery
        }),
        Err(e) => {
            tracing::error!(subject = %delivery.subject, error = %e, "a replay that is not a dead letter; dropped");
            if let Err(e) = delivery.acker.ack().await {
                tracing::warn!(error = %error_chain(&e), "ack failed");
            }
            None
        }
    }
}

impl RoleRunner {
    /// Binds the durable consumer and starts consuming, under `supervisor`: the role ending for any
    /// reason but [`RunningRole::stop`] is a failure of the process.
    pub async fn start(self, supervisor: &Supervisor) -> Result<RunningRole, BusError> {
        let spec = ConsumerSpec {
            durable: self.role.to_owned(),
            filter: self.filter.clone(),
            ack_wait: self.options.ack_wait(),
        };
        let bus = self.publisher.bus();
        let consumer = if self.each_replica_reads_all {
            bus.replica_consumer(spec).await?
        } else {
            bus.consumer(spec).await?
        };
        // Its own durable: a replayed letter is for this role alone, not for every role that
        // consumed the original subject.
        let replays = self
            .publisher
            .bus()
            .consumer(ConsumerSpec {
                durable: format!("{}-replay", self.role),
                filter: self.subjects.replay(self.role),
                ack_wait: self.options.ack_wait(),
            })
            .await?;
        self.metrics.role_started(self.role);
        let stop = CancellationToken::new();
        let role = self.role;
        let polling = poll_pending(
            consumer.clone(),
            self.metrics.clone(),
            role,
            Duration::from_secs(self.options.pending_poll_secs.max(1)),
            stop.clone(),
        );
        let this = Arc::new(self);
        let consuming = this
            .clone()
            .consume(consumer.clone(), Source::Live, stop.clone());
        let replaying = this.consume(replays, Source::Replay, stop.clone());
        // One task: the backlog is read for exactly as long as the role consumes.
        let task = supervisor.spawn(format!("role {role}"), async move {
            tokio::join!(consuming, replaying, polling);
            Ok(())
        });
        Ok(RunningRole {
            role,
            consumer,
            task,
            stop,
        })
    }

    async fn consume(
        self: Arc<Self>,
        consumer: Arc<dyn Consumer>,
        source: Source,
        stop: CancellationToken,
    ) {
        let permits = Arc::new(Semaphore::new(self.options.concurrency.max(1)));
        let mut in_hand = JoinSet::new();
        if source == Source::Live {
            tracing::info!(role = self.role, filter = %self.filter, "role started");
        }
        loop {
            let permit = tokio::select! {
                () = stop.cancelled() => break,
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let delivery = tokio::select! {
                () = stop.cancelled() => break,
                d = consumer.next() => d,
            };
            match delivery {
                Ok(delivery) => {
                    if let Err(why) = self.check(&delivery, source) {
                        let this = self.clone();
                        in_hand.spawn(async move {
                            this.reject(delivery, why).await;
                            drop(permit);
                        });
                        continue;
                    }
                    let delivery = match source {
                        Source::Live => delivery,
                        Source::Replay => match replayed(delivery).await {
                            Some(delivery) => delivery,
                            None => continue,
                        },
                    };
                    let (this, stop) = (self.clone(), stop.clone());
                    in_hand.spawn(async move {
                        this.process(delivery, &stop).await;
                        drop(permit);
                    });
                }
                Err(BusError::Closed) => break,
                Err(e) => {
                    tracing::warn!(role = self.role, error = %error_chain(&e), "fetch failed; retrying");
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(self.options.backoff(1)) => {}
                    }
                }
            }
            while in_hand.try_join_next().is_some() {}
        }
        while in_hand.join_next().await.is_some() {}
        if source == Source::Live {
            tracing::info!(role = self.role, "role stopped");
        }
    }

    /// Whether the delivery came from a Switchboard role, checked before anything reads it (a replay
    /// by its envelope, which `switchboard deadletter replay` signs). Connectors' subjects are open.
    fn check(&self, delivery: &Delivery, source: Source) -> Result<(), Rejection> {
        let Some(signer) = &self.signer else {
            return Ok(());
        };
        if source == Source::Live && self.subjects.is_inbound(&delivery.subject) {
            return Ok(());
        }
        signer.verify(&delivery.subject, &delivery.headers, &delivery.payload)
    }

    /// Takes a message that did not come from a role off the consumer, unhandled and counted. It is
    /// kept as a dead letter, so a genuine message refused for a misconfigured key can be replayed
    /// once the keys agree; a role that only watches drops it, the owning role keeps it.
    async fn reject(&self, delivery: Delivery, why: Rejection) {
        let started = Instant::now();
        tracing::warn!(role = self.role, subject = %delivery.subject, reason = why.as_str(), "message rejected: {why}");
        let kept = if self.handler.observes() {
            self.ack(&delivery).await;
            outcome::REJECTED
        } else {
            self.dead_letter(&delivery, &format!("rejected: {why}"))
                .await
        };
        let counted = if kept == outcome::DEAD_LETTER {
            outcome::REJECTED
        } else {
            kept
        };
        self.metrics
            .handled(self.role, counted, started.elapsed().as_secs_f64());
    }

    async fn process(&self, delivery: Delivery, stop: &CancellationToken) {
        let started = Instant::now();
        let span = tracing::info_span!(
            "handle",
            otel.name = %format!("{} {}", self.role, delivery.subject),
            role = self.role,
            subject = %delivery.subject,
            attempt = delivery.attempt,
        );
        telemetry::set_parent_from_headers(&span, &delivery.headers);
        let result = self.process_in_span(&delivery, stop).instrument(span).await;
        self.metrics
            .handled(self.role, result, started.elapsed().as_secs_f64());
    }

    async fn process_in_span(&self, delivery: &Delivery, stop: &CancellationToken) -> &'static str {
        let inbound = Inbound {
            subject: delivery.subject.clone(),
            payload: delivery.payload.clone(),
            attempt: delivery.attempt,
        };
        if delivery.attempt > self.options.max_deliver {
            // A message that crashed the process on its last allowed attempt comes back once more.
            let why = format!("gave up after {} deliveries", self.options.max_deliver);
            return self.dead_letter(delivery, &why).await;
        }
        match self.handle_through_outages(delivery, &inbound, stop).await {
            Ok(outputs) => self.publish_and_ack(delivery, outputs, stop).await,
            Err(e @ HandlerError::Permanent(_)) => {
                self.dead_letter(delivery, &error_chain(&e)).await
            }
            // The role is stopping during an outage: another replica, or this one restarted, takes
            // the message again.
            Err(HandlerError::Unavailable(_)) => self.retry(delivery).await,
            Err(e) if delivery.attempt >= self.options.max_deliver => {
                self.dead_letter(delivery, &error_chain(&e)).await
            }
            Err(e) => {
                tracing::warn!(role = self.role, error = %error_chain(&e), "handler failed; will retry");
                self.retry(delivery).await
            }
        }
    }

    /// Runs the handler; while it says a dependency is unavailable, runs it again in place after a
    /// growing pause (at most [`OUTAGE_LONGEST_PAUSE`] and half the ack wait, the delivery kept alive
    /// meanwhile), so that an outage however long costs the message no delivery. Ends with the
    /// handler's first other answer, or with the outage when the role stops.
    async fn handle_through_outages(
        &self,
        delivery: &Delivery,
        inbound: &Inbound,
        stop: &CancellationToken,
    ) -> Result<Vec<Outbound>, HandlerError> {
        let mut tries: u64 = 0;
        loop {
            let result = self.handle_keeping_alive(delivery, inbound).await;
            let Err(e @ HandlerError::Unavailable(_)) = &result else {
                return result;
            };
            tries += 1;
            // Every message in hand waits out the same outage: a line at 1, 2, 4, 8… tries is enough.
            if tries.is_power_of_two() {
                tracing::warn!(role = self.role, error = %error_chain(e), tries, "a dependency is unavailable; trying again in place");
            }
            if !self.wait_out(delivery, tries, stop).await {
                return result;
            }
        }
    }

    /// The pause after the `tries`-th try in place found something away (a dependency, the bus):
    /// growing, at most [`OUTAGE_LONGEST_PAUSE`] and half the ack wait, then the delivery is kept this
    /// replica's. `false` when the role stops meanwhile.
    async fn wait_out(&self, delivery: &Delivery, tries: u64, stop: &CancellationToken) -> bool {
        let pause = self
            .options
            .backoff(tries)
            .min(OUTAGE_LONGEST_PAUSE)
            .min(self.options.ack_wait() / 2);
        tokio::select! {
            () = stop.cancelled() => return false,
            () = tokio::time::sleep(pause) => {}
        }
        // While the bus itself is away this fails too; the outage is what the caller logs.
        if let Err(e) = delivery.acker.in_progress().await {
            tracing::debug!(role = self.role, error = %error_chain(&e), "extending ack wait failed");
        }
        true
    }

    /// Runs the handler, telling the bus every half ack-wait that the message is still being worked on,
    /// so a slow dependency does not cause a redelivery to another replica.
    async fn handle_keeping_alive(
        &self,
        delivery: &Delivery,
        inbound: &Inbound,
    ) -> Result<Vec<Outbound>, HandlerError> {
        let handling = self.handler.handle(inbound);
        tokio::pin!(handling);
        let mut tick = tokio::time::interval(self.options.ack_wait() / 2);
        tick.tick().await;
        loop {
            tokio::select! {
                result = &mut handling => return result,
                _ = tick.tick() => {
                    if let Err(e) = delivery.acker.in_progress().await {
                        tracing::warn!(role = self.role, error = %error_chain(&e), "extending ack wait failed");
                    }
                }
            }
        }
    }

    async fn publish_and_ack(
        &self,
        delivery: &Delivery,
        outputs: Vec<Outbound>,
        stop: &CancellationToken,
    ) -> &'static str {
        for out in outputs {
            if let Err(e) = self.publish_through_outages(delivery, out, stop).await {
                tracing::warn!(role = self.role, error = %error_chain(&e), "publishing output failed; will retry");
                return self.retry(delivery).await;
            }
        }
        self.ack(delivery).await;
        outcome::OK
    }

    /// Publishes `out`; while the bus does not answer, publishes it again in place after a growing pause
    /// (at most [`OUTAGE_LONGEST_PAUSE`]), so a message whose work is done goes on within seconds of
    /// the bus's return instead of waiting out its ack wait for a redelivery (a nak cannot reach a bus
    /// that is down either). Ends with the first other error, or with the outage when the role stops.
    async fn publish_through_outages(
        &self,
        delivery: &Delivery,
        out: Outbound,
        stop: &CancellationToken,
    ) -> Result<(), BusError> {
        let mut tries: u64 = 0;
        loop {
            let result = self.publisher.publish(out.clone()).await;
            let Err(e) = &result else {
                return result;
            };
            if !e.is_outage() {
                return result;
            }
            tries += 1;
            if tries.is_power_of_two() {
                tracing::warn!(role = self.role, error = %error_chain(e), tries, "the bus does not answer; publishing again in place");
            }
            if !self.wait_out(delivery, tries, stop).await {
                return result;
            }
        }
    }

    async fn retry(&self, delivery: &Delivery) -> &'static str {
        if let Err(e) = delivery
            .acker
            .nak(self.options.backoff(delivery.attempt))
            .await
        {
            // The ack wait will redeliver it anyway.
            tracing::warn!(role = self.role, error = %error_chain(&e), "nak failed");
        }
        outcome::RETRY
    }

    async fn dead_letter(&self, delivery: &Delivery, error: &str) -> &'static str {
        tracing::error!(role = self.role, subject = %delivery.subject, attempt = delivery.attempt, error, "dead-lettering message");
        let letter = DeadLetter {
            role: self.role.to_owned(),
            subject: delivery.subject.clone(),
            error: error.to_owned(),
            deliveries: delivery.attempt,
            payload: delivery.payload.to_vec(),
            at_ms: now_ms(),
        };
        match self.keep(&letter).await {
            Ok(()) => {
                self.ack(delivery).await;
                outcome::DEAD_LETTER
            }
            // Never ack a message whose dead letter is not stored: it stays on the stream.
            Err(e) => {
                tracing::error!(role = self.role, error = %error_chain(&e), "dead letter not stored; will retry");
                self.retry(delivery).await
            }
        }
    }

    /// Stores `letter` for `switchboard deadletter`, then publishes it for the metrics.
    async fn keep(&self, letter: &DeadLetter) -> Result<(), BusError> {
        deadletters::store(self.publisher.bus().as_ref(), letter).await?;
        self.publisher
            .publish(Outbound {
                subject: self.subjects.deadletter(self.role),
                msg_id: None,
                payload: Bytes::from(letter.encode_to_vec()),
            })
            .await
    }

    async fn ack(&self, delivery: &Delivery) {
        if let Err(e) = delivery.acker.ack().await {
            // Outputs are de-duplicated by message id, so the redelivery this causes is harmless.
            tracing::warn!(role = self.role, error = %error_chain(&e), "ack failed");
        }
    }
}
