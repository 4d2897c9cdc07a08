//! `GET /v1/events`: the board's live feed, as server-sent events. One task per process watches the
//! work-state and decision buckets and sends each changed ticket's board row to every open stream,
//! so a new decision, a claim or a correction appears on every open board without polling.
//!
//! Authentication: a browser's `EventSource` cannot set an `Authorization` header, so the stream is
//! authenticated by the session cookie `POST /v1/login` sets beside the token. That cookie is
//! HttpOnly (page scripts, and so injected ones, cannot read it) and SameSite=Strict (another site
//! cannot open the stream with it), and unlike a token in the query string it never lands in access
//! logs, browser history or a `Referer`. A stream lasts at most [`STREAM_LIFETIME`]: the browser
//! then reconnects on its own, presenting the cookie again, so a session that ended or expired
//! stops receiving within that time.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt, stream};
use switchboard_accounts::{Capability, Principal};
use switchboard_bus::Kv;
use switchboard_runtime::BoxError;
use tokio::sync::broadcast;

use crate::desk::Desk;
use crate::error::ConsoleError;

/// How long one stream lasts before the browser must reconnect (and authenticate again).
pub const STREAM_LIFETIME: Duration = Duration::from_secs(300);

/// How long a browser waits before reconnecting after a stream ends.
const RETRY: Duration = Duration::from_secs(2);

/// Rows waiting for a slow stream; past this it is told to reload instead (`resync`).
const BACKLOG: usize = 1024;

/// The fan-out from the one bucket watch to every open stream. Rows go out as serialised JSON,
/// made once for all streams.
#[derive(Debug, Clone)]
pub struct Events {
    tx: broadcast::Sender<Arc<str>>,
}

impl Default for Events {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Events {
    /// Watches `work` and `decisions` and sends the row of every ticket either changes, for as long
    /// as the watches last (an error when they end: the supervisor then ends the process). The
    /// router moves the work state before it stores the decision, so a new ticket's row goes out
    /// twice, the second time with its text and confidence; a board keeps the latest by ticket id.
    pub async fn feed(
        self,
        desk: Desk,
        work: Arc<dyn Kv>,
        decisions: Arc<dyn Kv>,
    ) -> Result<(), BoxError> {
        let mut changes = stream::select(work.watch().await?, decisions.watch().await?);
        while let Some(change) = changes.next().await {
            let change = change?;
            // Every watch first replays each key's current value; with nobody listening (as at
            // start) there is no row worth reading.
            if self.tx.receiver_count() == 0 {
                continue;
            }
            match desk.board_row(&change.key).await {
                Ok(Some(row)) => {
                    let json = serde_json::to_string(&row)?;
                    // An error here only says every stream closed meanwhile.
                    let _ = self.tx.send(Arc::from(json));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(ticket = %change.key, error = %e, "a changed ticket's row cannot be read; the live board misses this change")
                }
            }
        }
        Err("the work-state or decision watch ended".into())
    }

    fn stream(&self) -> impl Stream<Item = Result<Event, Infallible>> + use<> {
        let hello = Event::default().event("hello").retry(RETRY).data("{}");
        let rows = stream::unfold(self.tx.subscribe(), |mut rx| async move {
            let event = match rx.recv().await {
                Ok(json) => Event::default().event("ticket").data(&*json),
                // The stream fell behind: the board reloads its page rather than show a gap.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    Event::default().event("resync").data("{}")
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            Some((Ok(event), rx))
        });
        stream::once(async { Ok(hello) })
            .chain(rows)
            .take_until(tokio::time::sleep(STREAM_LIFETIME))
    }
}

#[utoipa::path(get, path = "/v1/events", tag = "desk",
    responses((status = 200, content_type = "text/event-stream",
        description = "`hello` on connect, then `ticket` (a BoardRow) for every change and `resync` when the stream fell behind"),
        (status = 401, description = "no credential; browsers present the session cookie")))]
pub(crate) async fn events(
    State(events): State<Events>,
    principal: Principal,
) -> Result<impl IntoResponse, ConsoleError> {
    principal.require(Capability::Read)?;
    // nginx (an Ingress) would otherwise hold events back until its buffer fills.
    Ok((
        [("x-accel-buffering", "no")],
        Sse::new(events.stream()).keep_alive(KeepAlive::default()),
    ))
}
