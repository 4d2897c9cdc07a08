//! The desk's HTTP JSON routes, each checking the caller's role, and their OpenAPI description.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use switchboard_accounts::{Capability, Principal};
use switchboard_proto::{Transition, WorkState};

use crate::assets;
use crate::board::{BoardFilter, BoardPage, BoardRow};
use crate::desk::{Desk, TicketView};
use crate::error::ConsoleError;
use crate::events::Events;
use crate::query::{ReviewFilter, TicketFilter};

/// The routes, over one [`Desk`] and its live [`Events`], and the console's files. The auth layer in
/// front of them identifies the caller; each handler checks what the caller's role allows. Every
/// answer carries the console's Content-Security-Policy.
pub fn routes(desk: Desk, events: Events) -> Router {
    Router::new()
        .route("/v1/board", get(board))
        .route("/v1/tickets", get(list_tickets))
        .route("/v1/tickets/{id}", get(ticket))
        .route("/v1/tickets/{id}/history", get(history))
        .route("/v1/tickets/{id}/confirm", post(confirm))
        .route("/v1/tickets/{id}/correction", post(correct))
        .route("/v1/tickets/{id}/resolution", post(resolve))
        .route("/v1/tickets/{id}/reopen", post(reopen))
        .route("/v1/reviews", get(reviews))
        .route("/v1/reviews/{id}/claim", post(claim))
        .with_state(Arc::new(desk))
        .merge(
            Router::new()
                .route("/v1/events", get(crate::events::events))
                .with_state(events),
        )
        .merge(assets::routes())
        .layer(axum::middleware::map_response(assets::secure))
}

/// The desk API's OpenAPI description; the binary merges it with the other roles' into
/// `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(board, crate::events::events, list_tickets, ticket, history, confirm, correct, resolve, reopen, reviews, claim),
    components(schemas(BoardPage, BoardRow, TicketPage, TicketView, History, ReviewPage, Note, Correction, Resolution, Reopening)),
    tags((name = "desk", description = "Tickets, the review queue, corrections and resolutions"))
)]
pub struct ConsoleApi;

type Answer<T> = Result<Json<T>, ConsoleError>;

/// One page of tickets, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TicketPage {
    pub tickets: Vec<WorkState>,
    /// The `cursor` of the next page; absent on the last.
    pub next: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct History {
    pub ticket_id: String,
    /// Every move, oldest first: decisions with their evidence ids, model and rule versions, and each
    /// person's act with their name, reason and note.
    pub transitions: Vec<Transition>,
    /// How many of the oldest moves no longer fit the stored history (the bus's event log has them).
    pub dropped: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReviewPage {
    /// Most urgent first, then longest waiting.
    pub reviews: Vec<WorkState>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Note {
    pub note: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Correction {
    /// The department that should handle the ticket.
    pub department: String,
    /// wrong_department, policy_updated, system_upgraded, responsibility_changed or other: how the
    /// knowledge base weighs the correction.
    pub reason: String,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Resolution {
    /// The department that solved it; left out, the one it is in.
    pub department: String,
    pub note: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reopening {
    /// Why the resolution did not hold.
    pub reason: String,
}

#[utoipa::path(get, path = "/v1/board", tag = "desk", params(BoardFilter),
    responses((status = 200, body = BoardPage), (status = 400, description = "a bad filter, named")))]
async fn board(
    State(desk): State<Arc<Desk>>,
    principal: Principal,
    Query(filter): Query<BoardFilter>,
) -> Answer<BoardPage> {
    principal.require(Capability::Read)?;
    Ok(Json(desk.board(filter).await?))
}

#[utoipa::path(get, path = "/v1/tickets", tag = "desk", params(TicketFilter),
    responses((status = 200, body = TicketPage), (status = 400, description = "a bad filter, named")))]
async fn list_tickets(
    State(desk): State<Arc<Desk>>,
    principal: Principal,
    Query(filter): Query<TicketFilter>,
) -> Answer<TicketPage> {
    principal.require(Capability::Read)?;
    let (tickets, next) = desk.tickets(filter).await?;
    Ok(Json(TicketPage { tickets, next }))
}

#[utoipa::path(get, path = "/v1/tickets/{id}", tag = "desk", params(("id" = String, Path)),
    responses((status = 200, body = TicketView), (status = 404, description = "no such ticket")))]
async fn ticket(
    State(desk): State<Arc<Desk>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Answer<TicketView> {
    principal.require(Capability::Read)?;
    Ok(Json(desk.ticket(&id).await?))
}

#[utoipa::path(get, path = "/v1/tickets/{id}/history", tag = "desk", params(("id" = String, Path)),
    responses((status = 200, body = History), (status = 404, description = "no such ticket")))]
async fn history(
    State(desk): State<Arc<Desk>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Answer<History> {
    principal.require(Capability::Read)?;
    let state = desk
        .ticket(&id)
        .await?
        .state
        .ok_or_else(|| ConsoleError::UnknownTicket(id.clone()))?;
    Ok(Json(History {
        ticket_id: id,
        transitions: state.history,
        dropped: state.dropped,
    }))
}

#[utoipa::path(get, path = "/v1/reviews", tag = "desk", params(ReviewFilter),
    responses((status = 200, body = ReviewPage), (status = 400, description = "a bad filter, named")))]
async fn reviews(
    State(desk): State<Arc<Desk>>,
    principal: Principal,
    Query(filter): Query<ReviewFilter>,
) -> Answer<ReviewPage> {
    principal.require(Capability::Read)?;
    Ok(Json(ReviewPage {
        reviews: desk.reviews(filter).await?,
    }))
}

#[utoipa::path(post, path = "/v1/reviews/{id}/claim", tag = "desk", params(("id" = String, Path)),
    responses((status = 200, body = WorkState, description = "claimed until `claim_expires_at_ms`"),
        (status = 409, description = "another reviewer holds it, or it is not in review")))]
async fn claim(
    State(desk): State<Arc<Desk>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Answer<WorkState> {
    principal.require(Capability::Work)?;
    Ok(Json(desk.claim(&id, &principal.name).await?))
}

#[utoipa::path(post, path = "/v1/tickets/{id}/confirm", tag = "desk", params(("id" = String, Path)),
    request_body(content = Note, description = "optional"),
    responses((status = 200, body = WorkState), (status = 409, description = "another reviewer holds it")))]
async fn confirm(
    State(desk): State<Arc<Desk>>,
    principal: Principal,
    Path(id): Path<String>,
    body: Option<Json<Note>>,
) -> Answer<WorkState> {
    principal.require(Capability::Work)?;
    let note = body.map(|Json(n)| n.note).unwrap_or_default();
    Ok(Json(desk.confirm(&id, &principal.name, &note).await?))
}

#[utoipa::path(post, path = "/v1/tickets/{id}/correction", tag = "desk", params(("id" = String, Path)),
    request_body = Correction,
    responses((status = 200, body = WorkState), (status = 400, description = "a bad field, named"),
        (status = 409, description = "another reviewer holds it, or it is resolved")))]
async fn correct(
    State(desk): State<Arc<Desk>>,
    principal: Principal,
    Path(id): Path<String>,
    Json(c): Json<Correction>,
) -> Answer<WorkState> {
    principal.require(Capability::Work)?;
    let state = desk
        .correct(&id, &principal.name, &c.department, &c.reason, &c.note)
        .await?;
    Ok(Json(state))
}

#[utoipa::path(post, path = "/v1/tickets/{id}/resolution", tag = "desk", params(("id" = String, Path)),
    request_body(content = Resolution, description = "optional"),
    responses((status = 200, body = WorkState), (status = 409, description = "the ticket cannot be resolved from its state")))]
async fn resolve(
    State(desk): State<Arc<Desk>>,
    principal: Principal,
    Path(id): Path<String>,
    body: Option<Json<Resolution>>,
) -> Answer<WorkState> {
    principal.require(Capability::Work)?;
    let r = body.map(|Json(r)| r).unwrap_or_default();
    Ok(Json(
        desk.resolve(&id, &principal.name, &r.department, &r.note)
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/tickets/{id}/reopen", tag = "desk", params(("id" = String, Path)),
    request_body = Reopening,
    responses((status = 200, body = WorkState), (status = 400, description = "no reason given"),
        (status = 409, description = "the ticket is not resolved")))]
async fn reopen(
    State(desk): State<Arc<Desk>>,
    principal: Principal,
    Path(id): Path<String>,
    Json(r): Json<Reopening>,
) -> Answer<WorkState> {
    principal.require(Capability::Work)?;
    Ok(Json(desk.reopen(&id, &principal.name, &r.reason).await?))
}
