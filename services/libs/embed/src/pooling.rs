//! Turning the model's per-token states into one unit-length vector per text.

use candle_core::{D, IndexOp, Tensor};

use crate::EmbedError;

/// How token states become one sentence vector, as the model's `1_Pooling/config.json` says.
/// Using another pooling than the model was trained with gives vectors that look fine and rank
/// badly, so the choice is read from the model, not assumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pooling {
    /// The average of the real (unpadded) tokens' states: all-MiniLM-L6-v2 and most
    /// sentence-transformers models.
    Mean,
    /// The state of the first ([CLS]) token: BGE and some other BERT-family models.
    Cls,
}

impl Pooling {
    /// `hidden` is (batch, tokens, dim); `mask` is (batch, tokens) with 1 for real tokens and 0
    /// for padding. Returns (batch, dim).
    pub(crate) fn pool(self, hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Pooling::Mean => mean_pool(hidden, mask),
            Pooling::Cls => hidden.i((.., 0)),
        }
    }
}

/// Mean over the tokens the mask keeps. Padding must not count: otherwise a text's vector would
/// depend on how long the other texts in its batch were.
fn mean_pool(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let mask = mask.to_dtype(hidden.dtype())?;
    let summed = hidden.broadcast_mul(&mask.unsqueeze(D::Minus1)?)?.sum(1)?;
    // A row with no real token (never produced here: every text has [CLS] and [SEP]) divides by
    // a tiny number instead of zero, as sentence-transformers does.
    let counts = mask.sum_keepdim(1)?.clamp(1e-9f32, f32::MAX)?;
    summed.broadcast_div(&counts)
}

/// Scales `vector` to unit length in place, so dot products are cosine similarities.
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
    use candle_core::Device;

    use super::*;

    fn hidden() -> Tensor {
        // Two texts, three token positions, two dimensions.
        Tensor::new(
            &[
                [[1.0f32, 2.0], [3.0, 4.0], [100.0, 100.0]],
                [[2.0, 0.0], [0.0, 2.0], [4.0, 4.0]],
            ],
            &Device::Cpu,
        )
        .unwrap()
    }

    #[test]
    fn mean_pooling_ignores_padding() {
        let mask = Tensor::new(&[[1u32, 1, 0], [1, 1, 1]], &Device::Cpu).unwrap();
        let pooled = Pooling::Mean
            .pool(&hidden(), &mask)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(pooled, vec![vec![2.0, 3.0], vec![2.0, 2.0]]);
    }

    #[test]
    fn cls_pooling_takes_the_first_token() {
        let mask = Tensor::new(&[[1u32, 1, 0], [1, 1, 1]], &Device::Cpu).unwrap();
        let pooled = Pooling::Cls
            .pool(&hidden(), &mask)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(pooled, vec![vec![1.0, 2.0], vec![2.0, 0.0]]);
    }

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
