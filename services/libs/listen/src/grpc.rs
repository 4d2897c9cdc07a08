//! The gRPC listener's part: connections under the connection limit, and the status a client expects
//! for a request over the size limit.

use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{HeaderValue, Request, Response};
use futures::{Stream, TryFutureExt};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::server::{Connected, TcpConnectInfo};
use tower::{Layer, Service};

use crate::connections::{ConnectionLimit, Limited};

/// After a failed accept (out of file descriptors, most often), wait before the next: see the HTTP
/// listener.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The connections `listener` accepts, at most `max_connections` open at once and `per_client` from
/// one address: one past either is closed as soon as it is accepted. For tonic's
/// `serve_with_incoming_shutdown`. Failed accepts are logged and retried, never passed on, so one
/// never stops the server.
pub fn limited_incoming(
    listener: TcpListener,
    max_connections: usize,
    per_client: usize,
) -> impl Stream<Item = Result<Limited<TcpStream>, std::io::Error>> {
    let limit = ConnectionLimit::new("grpc", max_connections, per_client);
    futures::stream::unfold((listener, limit), |(listener, limit)| async move {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let Some(place) = limit.admit(peer.ip()) else {
                        continue;
                    };
                    // As tonic's own incoming does: small gRPC frames must not wait for Nagle.
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(error = %e, "TCP_NODELAY not set on a gRPC connection");
                    }
                    return Some((Ok(Limited::new(stream, place)), (listener, limit)));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a gRPC connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    })
}

impl Connected for Limited<TcpStream> {
    type ConnectInfo = TcpConnectInfo;

    /// The TCP addresses, as tonic's own incoming gives them: the auth layer reads the client's.
    fn connect_info(&self) -> TcpConnectInfo {
        let addr = |a: std::io::Result<SocketAddr>| a.ok();
        TcpConnectInfo {
            local_addr: addr(self.io.local_addr()),
            remote_addr: addr(self.io.peer_addr()),
        }
    }
}

/// tonic answers a request message over `max_decoding_message_size` with `OUT_OF_RANGE`; gRPC's status
/// code guide and other servers say `RESOURCE_EXHAUSTED`, which is what clients retry-classify as "too
/// big", so this layer rewrites that one answer. It sees tonic's trailers-only error responses (unary
/// calls, where the message is decoded before the handler runs).
#[derive(Debug, Clone, Copy, Default)]
pub struct OversizedIsResourceExhausted;

impl<S> Layer<S> for OversizedIsResourceExhausted {
    type Service = Oversized<S>;

    fn layer(&self, inner: S) -> Oversized<S> {
        Oversized(inner)
    }
}

#[derive(Debug, Clone)]
pub struct Oversized<S>(S);

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Oversized<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = futures::future::MapOk<S::Future, fn(Response<ResBody>) -> Response<ResBody>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        self.0
            .call(request)
            .map_ok(resource_exhausted_when_oversized)
    }
}

/// tonic's words for the case, from its decoder; any other `OUT_OF_RANGE` is left alone.
const OVERSIZED: &str = "decoded message length too large";

fn resource_exhausted_when_oversized<B>(mut response: Response<B>) -> Response<B> {
    // Decoded by tonic itself: the message travels percent-encoded.
    let oversized = tonic::Status::from_header_map(response.headers()).is_some_and(|status| {
        status.code() == tonic::Code::OutOfRange && status.message().contains(OVERSIZED)
    });
    if oversized {
        let code = tonic::Code::ResourceExhausted as i32;
        response
            .headers_mut()
            .insert("grpc-status", HeaderValue::from(code));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: tonic::Status) -> Response<tonic::body::Body> {
        resource_exhausted_when_oversized(status.into_http())
    }

    fn code(response: &Response<tonic::body::Body>) -> &str {
        response.headers()["grpc-status"].to_str().unwrap()
    }

    #[test]
    fn only_the_oversized_message_answer_changes() {
        let oversized = tonic::Status::out_of_range(
            "Error, decoded message length too large: found 70000 bytes, the limit is: 65536 bytes",
        );
        let response = answer(oversized);
        assert_eq!(code(&response), "8");
        let status = tonic::Status::from_header_map(response.headers()).unwrap();
        assert!(status.message().contains("found 70000 bytes"), "{status:?}");
        assert_eq!(
            code(&answer(tonic::Status::out_of_range("page 9 of 3"))),
            "11"
        );
        assert_eq!(
            code(&answer(tonic::Status::invalid_argument(OVERSIZED))),
            "3"
        );
    }
}
