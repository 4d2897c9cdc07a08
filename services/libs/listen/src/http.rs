//! The HTTP listener: HTTP/1.1 only (gRPC has its own port), each connection under the connection limit,
//! with a deadline for each request's head and one for its body. The client's address reaches the
//! handlers as axum's `ConnectInfo`: the login limiter counts failures per address.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::body::DeadlineBody;
use crate::connections::ConnectionLimit;

/// After a failed accept (out of file descriptors, most often), the loop waits this long: retrying at
/// once would spin while nothing has freed one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Connections open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Connections open at once from one client address; more from it are closed on accept.
    pub max_connections_per_client: usize,
    /// How long a client has to send a request's head, from when the connection opened (for its first
    /// request) or its previous response went out. A connection that misses it is closed.
    pub header_read_timeout: Duration,
    /// How long a client has to send a request's whole body once its head is in.
    pub body_read_timeout: Duration,
}

/// Serves `router` on `listener` until `stop`, then lets the requests in progress finish (the caller
/// bounds how long it waits for that).
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    stop: CancellationToken,
) {
    let connections = ConnectionLimit::new(
        "http",
        limits.max_connections,
        limits.max_connections_per_client,
    );
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    loop {
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting an HTTP connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Some(place) = connections.admit(peer.ip()) else {
            continue;
        };
        let router = router.clone();
        let body_timeout = limits.body_read_timeout;
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(|body| Body::new(DeadlineBody::new(body, body_timeout)));
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // The place is held until the connection ends, however it ends.
            let _place = place;
            if let Err(e) = connection.await {
                // Timeouts, resets and malformed requests: the client's doing, not worth a warning.
                tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
