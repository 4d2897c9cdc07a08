//! A bound on the connections a listener holds open at once, in all and per client address. A
//! connection past either is closed as soon as it is accepted, rather than left waiting in the kernel's
//! backlog: the client learns at once that it must come back, and the listener keeps accepting, so a
//! connection freed by a timeout is usable immediately. The bound per address is what keeps one client
//! that opens connections and never finishes a request from taking every place from everyone else.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How often a listener at its limit says so: a flood would otherwise log one line per refusal.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Connections open per client address.
type Clients = Arc<std::sync::Mutex<HashMap<IpAddr, usize>>>;

#[derive(Debug)]
pub struct ConnectionLimit {
    /// Which listener, in its log lines.
    listener: &'static str,
    max: usize,
    per_client: usize,
    permits: Arc<Semaphore>,
    clients: Clients,
    /// Refusals since the last report, and when that was.
    refused: std::sync::Mutex<(u64, Option<Instant>)>,
}

/// Why a connection was refused, in the report.
#[derive(Debug, Clone, Copy)]
enum Full {
    Listener,
    Client(IpAddr),
}

impl ConnectionLimit {
    /// At most `max` connections open at once, and at most `per_client` of them from one address.
    pub fn new(listener: &'static str, max: usize, per_client: usize) -> Self {
        Self {
            listener,
            max,
            per_client,
            permits: Arc::new(Semaphore::new(max)),
            clients: Clients::default(),
            refused: std::sync::Mutex::new((0, None)),
        }
    }

    /// A place for one more connection from `client`, held until the [`Place`] is dropped; `None`
    /// (and the refusal counted) when every place is taken, or `client` holds its share.
    pub fn admit(&self, client: IpAddr) -> Option<Place> {
        let mut clients = lock(&self.clients);
        let held = clients.get(&client).copied().unwrap_or(0);
        if held >= self.per_client {
            drop(clients);
            self.refused(Full::Client(client));
            return None;
        }
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            drop(clients);
            self.refused(Full::Listener);
            return None;
        };
        clients.insert(client, held + 1);
        Some(Place {
            _permit: permit,
            client,
            clients: Arc::clone(&self.clients),
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max - self.permits.available_permits()
    }

    fn refused(&self, full: Full) {
        let mut refused = lock(&self.refused);
        refused.0 += 1;
        let now = Instant::now();
        if refused
            .1
            .is_none_or(|at| now.duration_since(at) >= REPORT_EVERY)
        {
            match full {
                Full::Listener => tracing::warn!(
                    listener = self.listener,
                    max_connections = self.max,
                    refused = refused.0,
                    "connection limit reached; closing new connections until some end"
                ),
                Full::Client(client) => tracing::warn!(
                    listener = self.listener,
                    %client,
                    max_connections_per_client = self.per_client,
                    refused = refused.0,
                    "a client holds its share of the connections; closing its new ones until some end"
                ),
            }
            *refused = (0, Some(now));
        }
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One connection's place under a [`ConnectionLimit`], given back when dropped.
#[derive(Debug)]
pub struct Place {
    _permit: OwnedSemaphorePermit,
    client: IpAddr,
    clients: Clients,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut clients = lock(&self.clients);
        if let Some(held) = clients.get_mut(&self.client) {
            *held -= 1;
            if *held == 0 {
                clients.remove(&self.client);
            }
        }
    }
}

/// A connection that holds its place under a [`ConnectionLimit`] for as long as it lives.
#[derive(Debug)]
pub struct Limited<IO> {
    pub(crate) io: IO,
    _place: Place,
}

impl<IO> Limited<IO> {
    pub fn new(io: IO, place: Place) -> Self {
        Self { io, _place: place }
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

    const ONE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const TWO: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn places_are_freed_when_they_drop() {
        let limit = ConnectionLimit::new("test", 2, 2);
        let a = limit.admit(ONE).unwrap();
        let _b = limit.admit(TWO).unwrap();
        assert_eq!(limit.open(), 2);
        assert!(limit.admit(TWO).is_none());
        drop(a);
        assert_eq!(limit.open(), 1);
        assert!(limit.admit(ONE).is_some());
    }

    #[test]
    fn one_client_holds_at_most_its_share_and_others_still_get_in() {
        let limit = ConnectionLimit::new("test", 10, 3);
        let mine: Vec<Place> = (0..3).map(|_| limit.admit(ONE).unwrap()).collect();
        assert!(limit.admit(ONE).is_none(), "a fourth from the same address");
        let theirs = limit.admit(TWO).expect("another address still gets in");
        drop(mine);
        assert_eq!(limit.open(), 1);
        assert!(
            lock(&limit.clients).get(&ONE).is_none(),
            "nothing left counted"
        );
        let again: Vec<Place> = (0..3).map(|_| limit.admit(ONE).unwrap()).collect();
        assert_eq!(limit.open(), 4);
        drop((again, theirs));
        assert_eq!(limit.open(), 0);
    }
}
