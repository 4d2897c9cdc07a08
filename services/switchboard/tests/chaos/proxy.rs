//! A TCP proxy between intake and nats-server that now and then cuts the connection right after a
//! ticket's publish has gone through to the server, before the server's acknowledgement can come
//! back: the fault where a publish is stored and its answer is lost. It reads the client's half of the
//! NATS protocol only as far as it must to find whole `PUB`/`HPUB` frames; everything else passes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy counted: publishes on the watched subject, and the connections cut after one.
#[derive(Default)]
pub struct Counts {
    pub publishes: AtomicUsize,
    pub cut: AtomicUsize,
}

/// Listens on a free port and forwards to `upstream`, cutting the connection after every
/// `cut_every`-th publish on `subject`. Returns the URL to give intake and the counts.
pub async fn start(
    upstream: SocketAddr,
    subject: String,
    cut_every: usize,
) -> (String, Arc<Counts>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let url = format!("nats://{}", listener.local_addr().expect("proxy address"));
    let counts = Arc::new(Counts::default());
    let shared = counts.clone();
    let subject: Arc<str> = subject.into();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (counts, subject) = (shared.clone(), subject.clone());
            tokio::spawn(async move {
                // The server may be down (the chaos run restarts it): the client then reconnects.
                if let Ok(server) = TcpStream::connect(upstream).await {
                    forward(client, server, &subject, cut_every, &counts).await;
                }
            });
        }
    });
    (url, counts)
}

async fn forward(
    client: TcpStream,
    server: TcpStream,
    subject: &str,
    every: usize,
    counts: &Counts,
) {
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (from_client, to_client) = client.into_split();
    let (from_server, to_server) = server.into_split();
    let cutting = AtomicBool::new(false);
    // Whichever half ends first ends the connection: both sockets are dropped here.
    tokio::select! {
        () = client_to_server(from_client, to_server, subject, every, counts, &cutting) => {}
        () = server_to_client(from_server, to_client, &cutting) => {}
    }
}

async fn server_to_client(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, cutting: &AtomicBool) {
    let mut buf = vec![0; 64 * 1024];
    loop {
        let Ok(n @ 1..) = from.read(&mut buf).await else {
            return;
        };
        // Set before the cut publish was sent on, so its acknowledgement can only come after.
        if cutting.load(Ordering::SeqCst) || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn client_to_server(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    subject: &str,
    every: usize,
    counts: &Counts,
    cutting: &AtomicBool,
) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    loop {
        let Ok(n @ 1..) = from.read(&mut buf).await else {
            return;
        };
        pending.extend_from_slice(&buf[..n]);
        while let Some(frame) = next_frame(&pending) {
            let len = frame.len;
            let cut = frame.subject == Some(subject) && {
                let seen = counts.publishes.fetch_add(1, Ordering::SeqCst) + 1;
                seen.is_multiple_of(every)
            };
            if cut {
                cutting.store(true, Ordering::SeqCst);
            }
            if to.write_all(&pending[..len]).await.is_err() {
                return;
            }
            if cut {
                counts.cut.fetch_add(1, Ordering::SeqCst);
                return;
            }
            pending.drain(..len);
        }
    }
}

/// A whole client protocol frame at the start of the buffer: its length, and its subject when it is
/// a publish.
struct Frame<'a> {
    len: usize,
    subject: Option<&'a str>,
}

fn next_frame(buf: &[u8]) -> Option<Frame<'_>> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&buf[..line_end]).ok();
    let words: Vec<&str> = line
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    let op = words.first().map(|w| w.to_ascii_uppercase());
    // `PUB subject [reply] size` and `HPUB subject [reply] header-size total-size`: the last word is
    // the size of what follows the line, itself ended by CRLF.
    let payload = match op.as_deref() {
        Some("PUB" | "HPUB") => words.last().and_then(|w| w.parse::<usize>().ok()),
        _ => None,
    };
    match payload {
        Some(size) => {
            let len = line_end + 2 + size + 2;
            (buf.len() >= len).then_some(Frame {
                len,
                subject: words.get(1).copied(),
            })
        }
        None => Some(Frame {
            len: line_end + 2,
            subject: None,
        }),
    }
}
