//! The department catalog in the `departments` bucket ([`crate::buckets::DEPARTMENTS`]): key = department
//! id, value = its duty description as plain text, which LLM parsers put into their prompt.
//!
//! Two writers share it. The retriever announces the departments its knowledge base knows each time
//! it starts, and admins describe them. An announcement only creates what is missing, and a
//! description overwrites, so a description survives every later announcement, and one written
//! before the knowledge base ever knew the department is kept too.

use bytes::Bytes;
use switchboard_bus::{BusError, Kv, validate_key};

use crate::error_chain;

/// One department as the catalog holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Department {
    pub id: String,
    /// Empty when nobody described it.
    pub description: String,
}

/// Adds each of `ids` not yet in the catalog, undescribed; leaves the others (and their descriptions)
/// as they are. Best effort: parsers still have the departments the rules name, so a failure is
/// logged, not returned.
pub async fn announce(kv: &dyn Kv, ids: impl IntoIterator<Item = String>) {
    for department in ids {
        if validate_key(&department).is_err() {
            tracing::warn!(%department, "department id is not a valid key; not published");
            continue;
        }
        if let Err(e) = kv.create(&department, Bytes::new()).await {
            tracing::warn!(%department, error = %error_chain(&e), "cannot publish a department");
        }
    }
}

/// Sets the description of department `id`, adding it to the catalog when missing. Returns the
/// bucket revision of the write.
pub async fn describe(kv: &dyn Kv, id: &str, description: &str) -> Result<u64, BusError> {
    kv.put(id, Bytes::copy_from_slice(description.as_bytes()))
        .await
}

/// The whole catalog, by id.
pub async fn catalog(kv: &dyn Kv) -> Result<Vec<Department>, BusError> {
    let mut departments: Vec<Department> = kv
        .entries()
        .await?
        .into_iter()
        .map(|(id, entry)| Department {
            id,
            description: String::from_utf8_lossy(&entry.value).into_owned(),
        })
        .collect();
    departments.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(departments)
}
