//! A request body with a deadline for all of it, counted from when its head arrived. A per-read idle
//! timeout (tower-http's `RequestBodyTimeout`) lets a client that sends one byte just inside each
//! timeout hold a connection for days; a deadline for the whole body does not.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

/// What a handler reading the body gets once the deadline passed; its message reaches the client in the
/// body-read rejection.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} s", .0.as_secs())]
pub(crate) struct BodyTimedOut(Duration);

#[derive(Debug)]
pub(crate) struct DeadlineBody<B> {
    inner: B,
    timeout: Duration,
    /// Boxed so the body stays `Unpin` whatever `Sleep` is.
    deadline: Pin<Box<Sleep>>,
}

impl<B> DeadlineBody<B> {
    pub(crate) fn new(inner: B, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        // What has arrived is read first: a body complete in time is never refused for the clock.
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimedOut(self.timeout).into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use futures::StreamExt;

    use super::*;

    /// A body that sends one chunk, then nothing more: a client that stalled.
    fn stalled() -> axum::body::Body {
        let first = futures::stream::once(async { Ok::<_, Infallible>(Bytes::from_static(b"{")) });
        axum::body::Body::from_stream(first.chain(futures::stream::pending()))
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_at_the_deadline_naming_it() {
        let body = DeadlineBody::new(stalled(), Duration::from_secs(30));
        let started = tokio::time::Instant::now();
        let e = axum::body::to_bytes(axum::body::Body::new(body), usize::MAX)
            .await
            .unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        assert!(
            std::error::Error::source(&e)
                .is_some_and(|c| c.to_string() == "the request body did not arrive within 30 s"),
            "{e:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_in_time_is_read_whole() {
        let body = DeadlineBody::new(
            axum::body::Body::from("{\"text\": \"hi\"}"),
            Duration::from_secs(1),
        );
        let bytes = axum::body::to_bytes(axum::body::Body::new(body), usize::MAX)
            .await
            .unwrap();
        assert_eq!(bytes, "{\"text\": \"hi\"}");
    }
}
