//! The process's HTTP and gRPC listeners, hardened against clients that open connections and never
//! finish their requests: a bound on connections open at once, on HTTP a deadline for each request's
//! head and one for its body, and on gRPC the status a client expects for a message over the limit.
//! Without them, 20,000 half-sent requests stopped the server accepting connections for 30 s and held
//! 500 MB (issue 18).

mod body;
mod connections;
mod grpc;
mod http;

pub use connections::{ConnectionLimit, Limited, Place};
pub use grpc::{OversizedIsResourceExhausted, limited_incoming};
pub use http::{HttpLimits, serve_http};
