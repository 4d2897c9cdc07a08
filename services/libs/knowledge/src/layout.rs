//! The schema of a knowledge base, the same on every backend: which vectors its points carry and which
//! payload fields it indexes. A store is created with the layout its embedder needs and checked against
//! it when opened, so a store written with another embedder fails at start, naming both layouts, instead
//! of at the first search.

use std::collections::BTreeMap;
use std::fmt;

use crate::bm25;

/// The name of the dense vector in the store.
pub(crate) const DENSE_VECTOR_NAME: &str = "dense";

/// The distance of the dense vector: embedders return unit vectors, for which cosine is the dot product.
pub(crate) const DENSE_DISTANCE: &str = "Cosine";

/// How a payload field is indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldIndex {
    Keyword,
    Integer,
}

/// Payload fields every store indexes: department for filtering and faceting evidence by department
/// (a Qdrant server facets only indexed fields), creation time for time-window filters.
pub(crate) const INDEXED_FIELDS: [(&str, FieldIndex); 2] = [
    ("department", FieldIndex::Keyword),
    ("created_at_ms", FieldIndex::Integer),
];

/// A dense vector's shape: what a store fixes when it is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dense {
    pub dimension: usize,
    /// The engine's name for the distance, as both backends spell it ("Cosine").
    pub distance: String,
}

/// The vectors of a store, by name. Built from each backend's own configuration, so one comparison
/// serves both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Layout {
    pub dense: BTreeMap<String, Dense>,
    /// Sparse vectors, each with whether the engine weighs its terms by IDF.
    pub sparse: BTreeMap<String, bool>,
}

impl Layout {
    /// What the knowledge base writes: BM25 with the engine's IDF and, with an embedder of
    /// `dense_dimension`, one cosine dense vector.
    pub(crate) fn expected(dense_dimension: Option<usize>) -> Self {
        Self {
            dense: dense_dimension
                .map(|dimension| {
                    let dense = Dense {
                        dimension,
                        distance: DENSE_DISTANCE.to_owned(),
                    };
                    (DENSE_VECTOR_NAME.to_owned(), dense)
                })
                .into_iter()
                .collect(),
            sparse: [(bm25::VECTOR_NAME.to_owned(), true)].into(),
        }
    }

    /// The dimension of the knowledge base's dense vector, when the layout has one.
    pub(crate) fn dense_dimension(&self) -> Option<usize> {
        self.dense.get(DENSE_VECTOR_NAME).map(|d| d.dimension)
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self
            .dense
            .iter()
            .map(|(name, d)| format!("{}-dimension {} vectors {name:?}", d.dimension, d.distance))
            .collect();
        if parts.is_empty() {
            parts.push("no dense vectors".to_owned());
        }
        parts.extend(self.sparse.iter().map(|(name, idf)| {
            let weighting = if *idf { "with IDF" } else { "without IDF" };
            format!("sparse vectors {name:?} {weighting}")
        }));
        f.write_str(&parts.join(" and "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_dimension_or_its_absence() {
        assert_eq!(
            Layout::expected(Some(384)).to_string(),
            "384-dimension Cosine vectors \"dense\" and sparse vectors \"bm25\" with IDF"
        );
        assert_eq!(
            Layout::expected(None).to_string(),
            "no dense vectors and sparse vectors \"bm25\" with IDF"
        );
        assert_eq!(Layout::expected(Some(8)).dense_dimension(), Some(8));
        assert_ne!(Layout::expected(Some(8)), Layout::expected(Some(16)));
    }
}
