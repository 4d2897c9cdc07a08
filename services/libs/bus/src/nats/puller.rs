//! One pull request at a time on a JetStream pull consumer, tracked here rather than by async-nats's
//! `messages()` stream. That stream counts a request's publication and the request's message
//! separately; when the message is read before the publication is counted (a busy machine), it
//! believes a message is still owed, sends no new request, and the consumer sits idle for
//! the stream's own 10 s timer with work waiting. Here a request is live from its publication until
//! its message, its expiry notice, or its presumed loss, and nothing else is counted.

use std::time::Duration;

use async_nats::{Client, StatusCode, Subscriber};
use futures::StreamExt;
use tokio::time::Instant;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long one pull request waits at the server for a message; then the server ends it (408) and
/// another is sent.
const EXPIRES: Duration = Duration::from_secs(5);
/// How long past its expiry a request that got no answer at all is given before it is presumed lost
/// (the server restarted, or a competing replica died holding it) and replaced.
const GRACE: Duration = Duration::from_secs(2);

pub(super) struct Puller {
    client: Client,
    /// `$JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>`.
    next_subject: String,
    /// Request `n` is answered on `<inbox>.<n>`, so an answer to an earlier request is told apart.
    inbox: String,
    subscriber: Subscriber,
    /// The number of the last request sent.
    sent: u64,
    /// When the live request, if any, is presumed lost.
    live_until: Option<Instant>,
}

impl Puller {
    pub(super) async fn open(
        client: Client,
        stream: &str,
        durable: &str,
    ) -> Result<Self, BoxError> {
        let inbox = client.new_inbox();
        let subscriber = client.subscribe(format!("{inbox}.*")).await?;
        Ok(Self {
            client,
            next_subject: format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"),
            inbox,
            subscriber,
            sent: 0,
            live_until: None,
        })
    }

    /// The next message of the consumer, waiting as long as it takes. Cancel-safe: a message that
    /// arrives after a cancelled call stays in the subscription for the next one.
    pub(super) async fn next(&mut self) -> Result<async_nats::Message, BoxError> {
        loop {
            let deadline = match self.live_until {
                Some(deadline) => deadline,
                None => self.request().await?,
            };
            let Ok(answer) = tokio::time::timeout_at(deadline, self.subscriber.next()).await else {
                tracing::debug!(
                    request = self.sent,
                    "a pull request got no answer; sending another"
                );
                self.live_until = None;
                continue;
            };
            let message = answer.ok_or("the pull subscription ended")?;
            match message.status {
                None | Some(StatusCode::OK) => {
                    // One message per request: this one's request is done, whichever it was.
                    self.live_until = None;
                    return Ok(message);
                }
                // An answer for an earlier request than the live one changes nothing.
                Some(_) if !self.answers_live(&message) => {}
                Some(StatusCode::TIMEOUT) => self.live_until = None,
                Some(StatusCode::IDLE_HEARTBEAT) => {}
                Some(status) => {
                    self.live_until = None;
                    let description = message.description.unwrap_or_default();
                    // The request ended, not the consumer: ask again.
                    if description.contains("Leadership Change") {
                        continue;
                    }
                    return Err(format!("pull request refused: {status} {description}").into());
                }
            }
        }
    }

    fn answers_live(&self, message: &async_nats::Message) -> bool {
        self.live_until.is_some()
            && message.subject.as_str() == format!("{}.{}", self.inbox, self.sent)
    }

    /// Sends a request for one message and returns when it is presumed lost.
    async fn request(&mut self) -> Result<Instant, BoxError> {
        self.sent += 1;
        let body = format!(r#"{{"batch":1,"expires":{}}}"#, EXPIRES.as_nanos());
        let deadline = Instant::now() + EXPIRES + GRACE;
        // Live before the publication is awaited: a call cancelled after the request went out must
        // not send a second one.
        self.live_until = Some(deadline);
        let reply = format!("{}.{}", self.inbox, self.sent);
        let published = self
            .client
            .publish_with_reply(self.next_subject.clone(), reply, body.into())
            .await;
        if let Err(err) = published {
            self.live_until = None;
            return Err(err.into());
        }
        Ok(deadline)
    }
}
