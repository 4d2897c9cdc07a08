//! JSON bodies read so that a malformed one is answered like every other error, `{"error", "field"}`,
//! with the field at fault named by its path (`skills.账户`), not axum's plain-text rejection.

use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::AssignError;

pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = AssignError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|e| AssignError::invalid("body", e.body_text()))?;
        let mut json = serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(&mut json)
            .map(Body)
            .map_err(|e| {
                let path = e.path().to_string();
                let source = e.into_inner();
                let problem = source.to_string();
                // serde names a missing field only in its message; the path is the object's.
                let missing = problem
                    .strip_prefix("missing field `")
                    .and_then(|rest| rest.split_once('`'))
                    .map(|(name, _)| name);
                let field = match (path.as_str(), missing) {
                    (".", Some(name)) => name.to_owned(),
                    (".", None) => "body".to_owned(),
                    (path, Some(name)) => format!("{path}.{name}"),
                    (path, None) => path.to_owned(),
                };
                AssignError::invalid(field, problem)
            })
    }
}
