//! One tower layer for both doors: every request but those to an open path must authenticate; the
//! caller goes into the request's extensions, a refusal goes back as JSON on HTTP and as a
//! trailers-only gRPC status on gRPC.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Extensions, Request, Response, header};
use axum::response::IntoResponse;
use tower::{Layer, Service};

use crate::authenticator::Authenticator;
use crate::error::AuthError;
use crate::rate::RequestLimiter;

/// Paths open to anyone: probes, and the logins that hand out credentials.
pub const ALWAYS_OPEN: [&str; 7] = [
    "/healthz",
    "/readyz",
    crate::http::LOGIN_PATH,
    crate::http::SSO_PATHS[0],
    crate::http::SSO_PATHS[1],
    crate::http::SSO_PATHS[2],
    crate::http::SSO_PATHS[3],
];

/// Authenticates requests for an axum `Router::layer` or a tonic `Server::builder().layer`.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    authenticator: Arc<Authenticator>,
    open: Arc<BTreeSet<String>>,
    /// Shared by every clone, so the HTTP and gRPC servers draw on one budget per caller.
    requests: Arc<RequestLimiter>,
}

impl AuthLayer {
    /// A layer leaving [`ALWAYS_OPEN`] and `extra_open` (exact paths, `/metrics` when configured
    /// so) open.
    pub fn new<I, P>(authenticator: Arc<Authenticator>, extra_open: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        let open = ALWAYS_OPEN
            .into_iter()
            .map(str::to_owned)
            .chain(extra_open.into_iter().map(Into::into))
            .collect();
        Self {
            requests: Arc::new(RequestLimiter::new(authenticator.accounts().clone(), 0, 1)),
            authenticator,
            open: Arc::new(open),
        }
    }

    /// Limits each authenticated caller to `per_second` requests, `burst` at once (0: no limit),
    /// across every replica on the same bus. Open paths are not limited: probes must answer under
    /// any load.
    pub fn with_request_limit(mut self, per_second: u32, burst: u32) -> Self {
        self.requests = Arc::new(RequestLimiter::new(
            self.authenticator.accounts().clone(),
            per_second,
            burst,
        ));
        self
    }

    /// The same layer leaving `paths` (exact) open too: what the roles serve to anyone, such as the
    /// console's static files.
    pub fn with_open<I, P>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        let mut open = (*self.open).clone();
        open.extend(paths.into_iter().map(Into::into));
        self.open = Arc::new(open);
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S, B, ResBody> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    // One body type for both doors' answers and refusals: axum's, which boxes any body.
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The clone that was made ready is the one to call; a fresh clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            if !layer.open.contains(request.uri().path()) {
                let checked = match layer.authenticator.authenticate(request.headers()).await {
                    Ok(principal) => layer.requests.check(&principal).await.map(|()| principal),
                    Err(err) => Err(err),
                };
                match checked {
                    Ok(principal) => {
                        request.extensions_mut().insert(principal);
                    }
                    Err(err) => return Ok(refusal(err, is_grpc(&request))),
                }
            }
            Ok(inner.call(request).await?.map(Body::new))
        })
    }
}

fn is_grpc<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// A gRPC client reads the status from `grpc-status` in a 200 answer, not from the HTTP status.
fn refusal(err: AuthError, grpc: bool) -> Response<Body> {
    if grpc {
        tonic::Status::from(err).into_http()
    } else {
        err.into_response()
    }
}

/// The client's address where the server recorded it: axum's `ConnectInfo` (served with
/// `into_make_service_with_connect_info`) or tonic's TCP connect info.
pub fn client_addr(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .or_else(|| {
            extensions
                .get::<tonic::transport::server::TcpConnectInfo>()
                .and_then(|info| info.remote_addr())
                .map(|addr| addr.ip())
        })
}
