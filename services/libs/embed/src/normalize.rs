//! Every vector an embedder returns has unit length, so a dot product is the cosine similarity.

use crate::EmbedError;

/// Scales `vector` to unit length in place.
pub(crate) fn normalize(vector: &mut [f32]) -> Result<(), EmbedError> {
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    if !norm.is_finite() || norm == 0.0 {
        return Err(EmbedError::Degenerate);
    }
    vector.iter_mut().for_each(|v| *v /= norm);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_gives_unit_length_and_keeps_direction() {
        let mut v = vec![3.0f32, -4.0];
        normalize(&mut v).unwrap();
        assert_eq!(v, vec![0.6, -0.8]);
    }

    #[test]
    fn normalize_refuses_vectors_without_direction() {
        assert!(matches!(
            normalize(&mut [0.0, 0.0]),
            Err(EmbedError::Degenerate)
        ));
        assert!(matches!(
            normalize(&mut [f32::NAN, 1.0]),
            Err(EmbedError::Degenerate)
        ));
    }
}
