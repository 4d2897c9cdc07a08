//! What a knowledge record becomes in a vector store, on every backend: a point with a stable id, the
//! record's facts as JSON payload, its BM25 vector and, with an embedder, its dense vector; and the way
//! back from a stored payload to a record or a search result.

use qdrant_edge::SparseVector;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use switchboard_proto::{KnowledgeRecord, SimilarTicket};
use uuid::{Builder, Uuid};

use crate::bm25;

/// The source of imported history, and of records that do not name one.
pub(crate) const HISTORY_SOURCE: &str = "history";

/// One record as a store writes it.
#[derive(Debug, Clone)]
pub(crate) struct Point {
    pub id: Uuid,
    pub payload: Map<String, Value>,
    pub sparse: SparseVector,
    pub dense: Option<Vec<f32>>,
}

impl Point {
    /// The point for a record that passed the knowledge base's checks. An empty `source` becomes
    /// "history" and a zero `weight` becomes 1.0 (proto3 cannot tell unset from zero, and a zero weight
    /// would silence the evidence). Tokenises the text: CPU work, for a blocking thread in bulk.
    pub(crate) fn new(record: KnowledgeRecord, dense: Option<Vec<f32>>) -> Self {
        let weight = if record.weight == 0.0 {
            1.0
        } else {
            record.weight
        };
        let source = match record.source.trim() {
            "" => HISTORY_SOURCE,
            s => s,
        };
        let mut payload = Map::new();
        payload.insert("id".to_owned(), json!(record.id));
        payload.insert("text".to_owned(), json!(record.text));
        payload.insert("department".to_owned(), json!(record.department.trim()));
        payload.insert("created_at_ms".to_owned(), json!(record.created_at_ms));
        payload.insert("source".to_owned(), json!(source));
        payload.insert("weight".to_owned(), json!(weight));
        payload.insert("problem_type".to_owned(), json!(record.problem_type.trim()));
        if let Some(minutes) = record.resolution_minutes {
            payload.insert("resolution_minutes".to_owned(), json!(minutes));
        }
        Self {
            id: point_id(&record.id),
            sparse: bm25::document_vector(&record.text),
            payload,
            dense,
        }
    }
}

/// A stable point id for a record id: re-importing the same record overwrites it. A UUID from SHA-256
/// rather than a 64-bit hash, so that distinct records practically never collide and silently replace
/// each other.
pub(crate) fn point_id(record_id: &str) -> Uuid {
    let digest = Sha256::digest(record_id.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Builder::from_custom_bytes(bytes).into_uuid()
}

/// The search result for a stored payload. Stores only hold points written by [`Point::new`], so every
/// field is present; a missing one reads as its proto default rather than failing the whole search.
pub(crate) fn similar_ticket(score: f32, payload: &Map<String, Value>) -> SimilarTicket {
    let text = |key: &str| {
        payload
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    SimilarTicket {
        id: text("id"),
        text: text("text"),
        department: text("department"),
        score,
        created_at_ms: payload
            .get("created_at_ms")
            .and_then(Value::as_i64)
            .unwrap_or_default(),
        resolution_minutes: payload.get("resolution_minutes").and_then(Value::as_i64),
        // f32 went in, so the round trip through JSON's f64 is exact.
        weight: payload.get("weight").and_then(Value::as_f64).unwrap_or(1.0) as f32,
        source: text("source"),
        // Records stored before problem types existed have none, which reads as unknown.
        problem_type: text("problem_type"),
    }
}

/// The record a stored payload holds, defaults applied as they were written.
pub(crate) fn knowledge_record(payload: &Map<String, Value>) -> KnowledgeRecord {
    record_of(similar_ticket(0.0, payload))
}

/// The record a search hit was read from: every field but the score.
pub(crate) fn record_of(s: SimilarTicket) -> KnowledgeRecord {
    KnowledgeRecord {
        id: s.id,
        text: s.text,
        department: s.department,
        created_at_ms: s.created_at_ms,
        resolution_minutes: s.resolution_minutes,
        source: s.source,
        weight: s.weight,
        problem_type: s.problem_type,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_ids_are_stable_and_distinct() {
        assert_eq!(point_id("t-1"), point_id("t-1"));
        assert_ne!(point_id("t-1"), point_id("t-2"));
        // Pinned: a change would orphan every stored record instead of overwriting it on re-import.
        // SHA-256("t-1"), first 16 bytes, with UUIDv8 version and variant bits.
        assert_eq!(
            point_id("t-1"),
            "46e9bc34-76c9-8ea2-8fb1-7adac6cd9cda"
                .parse::<Uuid>()
                .expect("uuid")
        );
    }

    #[test]
    fn a_record_round_trips_through_its_payload_with_defaults_applied() {
        let record = KnowledgeRecord {
            id: "r-1".into(),
            text: "card declined".into(),
            department: " cards ".into(),
            created_at_ms: -5,
            resolution_minutes: Some(42),
            source: String::new(),
            weight: 0.0,
            problem_type: " login failure ".into(),
        };
        let point = Point::new(record.clone(), None);
        assert_eq!(point.id, point_id("r-1"));
        assert!(!point.sparse.indices.is_empty());
        let back = knowledge_record(&point.payload);
        assert_eq!(
            back,
            KnowledgeRecord {
                department: "cards".into(),
                source: HISTORY_SOURCE.into(),
                weight: 1.0,
                problem_type: "login failure".into(),
                ..record
            }
        );
        let weighted = Point::new(
            KnowledgeRecord {
                id: "r-2".into(),
                weight: 2.5,
                resolution_minutes: None,
                ..back
            },
            None,
        );
        let back = knowledge_record(&weighted.payload);
        assert_eq!((back.weight, back.resolution_minutes), (2.5, None));
    }
}
