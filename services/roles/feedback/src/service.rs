//! The `Decisions` gRPC service: what the decision board reads, and how agents correct and resolve.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use switchboard_accounts::{Capability, Principal};
use switchboard_bus::Kv;
use switchboard_proto::decisions_server::Decisions;
use switchboard_proto::{
    Corrected, CorrectionReason, FeedbackReply, GetDecisionRequest, Resolved, Ticket,
};
use switchboard_runtime::{Outbound, Publisher, Subjects, now_ms};
use tonic::{Request, Response, Status};

use crate::error::{FeedbackError, load_ticket};

#[derive(Debug)]
pub struct DecisionsService {
    decisions: Arc<dyn Kv>,
    publisher: Publisher,
    subjects: Subjects,
}

impl DecisionsService {
    pub fn new(decisions: Arc<dyn Kv>, publisher: Publisher, subjects: Subjects) -> Self {
        Self {
            decisions,
            publisher,
            subjects,
        }
    }

    async fn publish(
        &self,
        subject: String,
        msg_id: String,
        payload: Vec<u8>,
    ) -> Result<(), FeedbackError> {
        let out = Outbound {
            subject,
            msg_id: Some(msg_id),
            payload: Bytes::from(payload),
        };
        Ok(self.publisher.publish(out).await?)
    }
}

#[tonic::async_trait]
impl Decisions for DecisionsService {
    async fn get(&self, request: Request<GetDecisionRequest>) -> Result<Response<Ticket>, Status> {
        Principal::from_grpc(&request)?.require(Capability::Read)?;
        let id = request.into_inner().ticket_id;
        Ok(Response::new(
            load_ticket(self.decisions.as_ref(), &id).await?,
        ))
    }

    async fn correct(
        &self,
        request: Request<Corrected>,
    ) -> Result<Response<FeedbackReply>, Status> {
        let agent = working(&request)?;
        let mut c = request.into_inner();
        c.agent = agent;
        if c.to_department.trim().is_empty() {
            return Err(invalid("to_department", "is required"));
        }
        if c.reason() == CorrectionReason::Unspecified {
            return Err(invalid(
                "reason",
                "is required: say why the decision was wrong",
            ));
        }
        let ticket = load_ticket(self.decisions.as_ref(), &c.ticket_id).await?;
        if c.from_department.is_empty() {
            c.from_department = ticket.decision.map(|d| d.department).unwrap_or_default();
        }
        if c.at_ms == 0 {
            c.at_ms = now_ms();
        }
        let msg_id = format!("{}.corrected.{}", c.ticket_id, c.at_ms);
        self.publish(self.subjects.corrected(), msg_id, c.encode_to_vec())
            .await?;
        Ok(Response::new(FeedbackReply {}))
    }

    async fn resolve(&self, request: Request<Resolved>) -> Result<Response<FeedbackReply>, Status> {
        let agent = working(&request)?;
        let mut r = request.into_inner();
        r.agent = agent;
        load_ticket(self.decisions.as_ref(), &r.ticket_id).await?;
        if r.resolved_at_ms == 0 {
            r.resolved_at_ms = now_ms();
        }
        let msg_id = format!("{}.resolved", r.ticket_id);
        self.publish(self.subjects.resolved(), msg_id, r.encode_to_vec())
            .await?;
        Ok(Response::new(FeedbackReply {}))
    }
}

/// The name of a caller allowed to work tickets: the agent the event records, whatever the request
/// says, so no one acts in another's name.
fn working<T>(request: &Request<T>) -> Result<String, Status> {
    let principal = Principal::from_grpc(request)?;
    principal.require(Capability::Work)?;
    Ok(principal.name.clone())
}

fn invalid(field: &'static str, problem: &str) -> Status {
    FeedbackError::Invalid {
        field,
        problem: problem.to_owned(),
    }
    .into()
}
