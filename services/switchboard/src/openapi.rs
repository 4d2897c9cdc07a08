//! `GET /openapi.json`: the OpenAPI 3.1 description of every HTTP route this process serves, made
//! from the code (each role's `RoleParts::openapi`, and the accounts API), not written by hand.

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;
use utoipa::openapi::OpenApi as Document;

/// The document before the roles add theirs: the title, the version and the accounts API with the
/// credentials every other route takes.
pub fn base() -> Document {
    let mut doc = switchboard_accounts::AccountsApi::openapi();
    doc.info.title = "Switchboard".into();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.description =
        Some("Intelligent ticket dispatch: intake, the desk, accounts. Every route but /healthz, /readyz and (when configured) /metrics needs a credential.".into());
    doc
}

pub fn routes(doc: Document) -> Router {
    let doc = Arc::new(doc);
    Router::new().route(
        "/openapi.json",
        get(move || {
            let doc = Arc::clone(&doc);
            async move { Json(doc.as_ref().clone()) }
        }),
    )
}
