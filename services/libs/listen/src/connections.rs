//! A bound on the connections a listener holds open at once. A connection past it is closed as soon as
//! it is accepted, rather than left waiting in the kernel's backlog: the client learns at once that it
//! must come back, and the listener keeps accepting, so a connection freed by a timeout is usable
//! immediately.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How often a listener at its limit says so: a flood would otherwise log one line per refusal.
const REPORT_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct ConnectionLimit {
    /// Which listener, in its log lines.
    listener: &'static str,
    max: usize,
    permits: Arc<Semaphore>,
    /// Refusals since the last report, and when that was.
    refused: std::sync::Mutex<(u64, Option<Instant>)>,
}

impl ConnectionLimit {
    pub fn new(listener: &'static str, max: usize) -> Self {
        Self {
            listener,
            max,
            permits: Arc::new(Semaphore::new(max)),
            refused: std::sync::Mutex::new((0, None)),
        }
    }

    /// A place for one more connection, held until the permit is dropped; `None` (and the refusal
    /// counted) when every place is taken.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                self.refused();
                None
            }
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max - self.permits.available_permits()
    }

    fn refused(&self) {
        let mut refused = self
            .refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        refused.0 += 1;
        let now = Instant::now();
        if refused
            .1
            .is_none_or(|at| now.duration_since(at) >= REPORT_EVERY)
        {
            tracing::warn!(
                listener = self.listener,
                max_connections = self.max,
                refused = refused.0,
                "connection limit reached; closing new connections until some end"
            );
            *refused = (0, Some(now));
        }
    }
}

/// A connection that holds its place under a [`ConnectionLimit`] for as long as it lives.
#[derive(Debug)]
pub struct Limited<IO> {
    pub(crate) io: IO,
    _permit: OwnedSemaphorePermit,
}

impl<IO> Limited<IO> {
    pub fn new(io: IO, permit: OwnedSemaphorePermit) -> Self {
        Self {
            io,
            _permit: permit,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Limited<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Limited<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_freed_when_their_permits_drop() {
        let limit = ConnectionLimit::new("test", 2);
        let a = limit.admit().unwrap();
        let _b = limit.admit().unwrap();
        assert_eq!(limit.open(), 2);
        assert!(limit.admit().is_none());
        drop(a);
        assert_eq!(limit.open(), 1);
        assert!(limit.admit().is_some());
    }
}
