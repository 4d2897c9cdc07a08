//! Switchboard's bus messages and gRPC services, generated from `proto/switchboard/v1`.

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("switchboard.v1");
}

mod json;

pub use v1::*;
