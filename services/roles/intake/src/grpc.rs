//! The gRPC door: `switchboard.v1.Intake/Submit`.

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_accounts::{Capability, Principal};
use switchboard_proto::intake_server::{Intake as IntakeRpc, IntakeServer};
use switchboard_proto::{SubmitReply, SubmitRequest};
use switchboard_runtime::metrics::submission;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::intake::Intake;
use crate::trace;
use crate::validate::Submission;

#[derive(Debug, Clone)]
pub struct IntakeService {
    intake: Arc<Intake>,
}

impl IntakeService {
    pub fn new(intake: Arc<Intake>) -> Self {
        Self { intake }
    }

    /// The tonic service, with requests bounded like HTTP bodies rather than by tonic's 4 MiB default:
    /// this door is public.
    pub fn into_server(self) -> IntakeServer<Self> {
        let limit = self.intake.config().max_body_bytes();
        IntakeServer::new(self).max_decoding_message_size(limit)
    }
}

#[async_trait]
impl IntakeRpc for IntakeService {
    async fn submit(
        &self,
        request: Request<SubmitRequest>,
    ) -> Result<Response<SubmitReply>, Status> {
        Principal::from_grpc(&request)?.require(Capability::Submit)?;
        let span = trace::request_span("grpc", &request.metadata().clone().into_headers());
        let submitted = self
            .intake
            .submit(request.into_inner().into())
            .instrument(span)
            .await;
        self.intake.count(submission::GRPC, &submitted);
        let submitted = submitted?;
        Ok(Response::new(SubmitReply {
            ticket_id: submitted.ticket_id,
            duplicate: submitted.duplicate,
        }))
    }
}

impl From<SubmitRequest> for Submission {
    fn from(r: SubmitRequest) -> Self {
        Self {
            text: r.text,
            channel: r.channel,
            customer_id: r.customer_id,
            thread_id: r.thread_id,
            idempotency_key: r.idempotency_key,
            customer_tier: r.customer_tier,
            attributes: r.attributes,
        }
    }
}
