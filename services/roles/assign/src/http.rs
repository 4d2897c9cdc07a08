//! The assign role's HTTP JSON routes, each checking who is asking: agents read their own record and
//! set their own status; supervisors see every agent and the queue and assign by hand; admins manage
//! agents. Their OpenAPI description is [`AssignApi`].

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use switchboard_accounts::{Capability, Principal};
use switchboard_agents::{Agent, Load, Status, policy};
use switchboard_proto::WorkState;
use switchboard_runtime::now_ms;

use crate::assigner::Assigner;
use crate::error::AssignError;
use crate::extract::Body;
use crate::queue::Waiting;

pub fn routes(assigner: Assigner) -> Router {
    Router::new()
        .route("/v1/agents", get(list_agents))
        .route(
            "/v1/agents/{id}",
            get(agent).put(put_agent).delete(delete_agent),
        )
        .route("/v1/agents/{id}/status", post(set_status))
        .route("/v1/queue", get(queue))
        .route("/v1/tickets/{id}/assign", post(assign))
        .route("/v1/tickets/{id}/accept", post(accept))
        .with_state(Arc::new(assigner))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list_agents, agent, put_agent, delete_agent, set_status, queue, assign, accept),
    components(schemas(AgentView, AgentPage, StatusChange, QueuePage, Assignment)),
    tags((name = "agents", description = "Agents, their load, the departments' queues, assignment by hand"))
)]
pub struct AssignApi;

type Answer<T> = Result<Json<T>, AssignError>;

/// An agent with what they hold now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentView {
    pub agent: Agent,
    /// Open tickets (assigned or in progress), of `agent.capacity`.
    pub open: u32,
    pub load: Load,
    /// The ticket ids of `load` in the order to work them: the one in progress, then those that can
    /// still be started within their priority's target (`assign.start_within`), the soonest due
    /// first, then those already late, the longest late first.
    pub work_order: Vec<String>,
}

impl AgentView {
    fn new(agent: Agent, load: Load) -> Self {
        let work_order = policy::work_order(&load, now_ms())
            .into_iter()
            .map(str::to_owned)
            .collect();
        Self {
            open: load.open(),
            agent,
            load,
            work_order,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentPage {
    pub agents: Vec<AgentView>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// online, away or offline.
    pub status: Status,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueuePage {
    /// Tickets no agent fits yet, heaviest priority first, then longest waiting, each with why.
    pub waiting: Vec<Waiting>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    /// The agent to give the ticket to.
    pub agent: String,
    /// Why, for the ticket's history.
    pub reason: String,
}

/// Whether `principal` may act on agent `id`'s own record with `capability`, or on anyone's with
/// `anyone`.
fn own_or(
    principal: &Principal,
    id: &str,
    own: Capability,
    anyone: Capability,
) -> Result<(), AssignError> {
    if principal.name == id {
        principal.require(own)?;
    } else {
        principal.require(anyone)?;
    }
    Ok(())
}

#[utoipa::path(get, path = "/v1/agents", tag = "agents",
    responses((status = 200, body = AgentPage), (status = 403, description = "not a supervisor or admin")))]
async fn list_agents(State(a): State<Arc<Assigner>>, principal: Principal) -> Answer<AgentPage> {
    principal.require(Capability::ReadAll)?;
    let (agents, mut loads) = a.roster().await?;
    let agents = agents
        .into_values()
        .map(|agent| {
            let load = loads.remove(&agent.id).unwrap_or_default();
            AgentView::new(agent, load)
        })
        .collect();
    Ok(Json(AgentPage { agents }))
}

#[utoipa::path(get, path = "/v1/agents/{id}", tag = "agents", params(("id" = String, Path)),
    responses((status = 200, body = AgentView), (status = 404, description = "no such agent"),
        (status = 403, description = "another agent's record, asked by an agent")))]
async fn agent(
    State(a): State<Arc<Assigner>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Answer<AgentView> {
    own_or(&principal, &id, Capability::Read, Capability::ReadAll)?;
    let agent = a
        .agents()
        .get(&id)
        .await?
        .ok_or_else(|| AssignError::UnknownAgent(id.clone()))?;
    let load = a.loads().get(&id).await?;
    Ok(Json(AgentView::new(agent, load)))
}

#[utoipa::path(put, path = "/v1/agents/{id}", tag = "agents", params(("id" = String, Path)),
    request_body = Agent,
    responses((status = 200, body = Agent), (status = 400, description = "a bad field, named"),
        (status = 403, description = "not an admin")))]
async fn put_agent(
    State(a): State<Arc<Assigner>>,
    principal: Principal,
    Path(id): Path<String>,
    Body(agent): Body<Agent>,
) -> Answer<Agent> {
    principal.require(Capability::Admin)?;
    if agent.id != id {
        return Err(AssignError::invalid(
            "id",
            format!("{:?} is not the agent of the path, {id:?}", agent.id),
        ));
    }
    a.agents().put(&agent).await?;
    Ok(Json(agent))
}

#[utoipa::path(delete, path = "/v1/agents/{id}", tag = "agents", params(("id" = String, Path)),
    responses((status = 204, description = "deleted; what they held is reassigned"),
        (status = 404, description = "no such agent"), (status = 403, description = "not an admin")))]
async fn delete_agent(
    State(a): State<Arc<Assigner>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, AssignError> {
    principal.require(Capability::Admin)?;
    if a.agents().delete(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AssignError::UnknownAgent(id))
    }
}

#[utoipa::path(post, path = "/v1/agents/{id}/status", tag = "agents", params(("id" = String, Path)),
    request_body = StatusChange,
    responses((status = 200, body = Agent), (status = 400, description = "not online, away or offline"),
        (status = 403, description = "another agent's status, set by an agent"), (status = 404, description = "no such agent")))]
async fn set_status(
    State(a): State<Arc<Assigner>>,
    principal: Principal,
    Path(id): Path<String>,
    Body(change): Body<StatusChange>,
) -> Answer<Agent> {
    own_or(&principal, &id, Capability::Work, Capability::Reassign)?;
    a.agents()
        .set_status(&id, change.status)
        .await?
        .map(Json)
        .ok_or(AssignError::UnknownAgent(id))
}

#[utoipa::path(get, path = "/v1/queue", tag = "agents",
    responses((status = 200, body = QueuePage)))]
async fn queue(State(a): State<Arc<Assigner>>, principal: Principal) -> Answer<QueuePage> {
    principal.require(Capability::Read)?;
    Ok(Json(QueuePage {
        waiting: a.queue().all().await?,
    }))
}

#[utoipa::path(post, path = "/v1/tickets/{id}/assign", tag = "agents", params(("id" = String, Path)),
    request_body = Assignment,
    responses((status = 200, body = WorkState), (status = 403, description = "not a supervisor"),
        (status = 404, description = "no such ticket or agent"),
        (status = 409, description = "the agent is at capacity, or the ticket moved on")))]
async fn assign(
    State(a): State<Arc<Assigner>>,
    principal: Principal,
    Path(id): Path<String>,
    Body(assignment): Body<Assignment>,
) -> Answer<WorkState> {
    principal.require(Capability::Reassign)?;
    if assignment.reason.trim().is_empty() {
        return Err(AssignError::invalid(
            "reason",
            "say why, for the ticket's history",
        ));
    }
    let state = a
        .assign_by_hand(
            &id,
            &assignment.agent,
            &principal.name,
            assignment.reason.trim(),
        )
        .await?;
    Ok(Json(state))
}

#[utoipa::path(post, path = "/v1/tickets/{id}/accept", tag = "agents", params(("id" = String, Path)),
    responses((status = 200, body = WorkState, description = "in progress"),
        (status = 403, description = "the ticket is someone else's")))]
async fn accept(
    State(a): State<Arc<Assigner>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Answer<WorkState> {
    principal.require(Capability::Work)?;
    Ok(Json(a.accept(&id, &principal.name).await?))
}
