//! Scoring a binary classifier against gold labels.

/// Counts of a binary classifier's answers against gold labels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Confusion {
    pub true_positive: usize,
    pub true_negative: usize,
    pub false_positive: usize,
    pub false_negative: usize,
}

impl Confusion {
    pub fn add(&mut self, predicted: bool, gold: bool) {
        match (predicted, gold) {
            (true, true) => self.true_positive += 1,
            (false, false) => self.true_negative += 1,
            (true, false) => self.false_positive += 1,
            (false, true) => self.false_negative += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.true_positive + self.true_negative + self.false_positive + self.false_negative
    }

    pub fn accuracy(&self) -> f64 {
        ratio(self.true_positive + self.true_negative, self.total())
    }

    /// The mean of both classes' F1, so a model that always answers the majority class scores badly even
    /// on a skewed set.
    pub fn macro_f1(&self) -> f64 {
        let f1 = |tp: usize, fp: usize, fn_: usize| ratio(2 * tp, 2 * tp + fp + fn_);
        let positive = f1(self.true_positive, self.false_positive, self.false_negative);
        let negative = f1(self.true_negative, self.false_negative, self.false_positive);
        (positive + negative) / 2.0
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_and_macro_f1() {
        let mut c = Confusion::default();
        for (p, g) in [(true, true), (true, true), (false, false), (true, false)] {
            c.add(p, g);
        }
        assert_eq!(c.total(), 4);
        assert!((c.accuracy() - 0.75).abs() < 1e-12);
        // Positive F1 = 4/5, negative F1 = 2/3.
        assert!((c.macro_f1() - (0.8 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert!(Confusion::default().macro_f1().abs() < f64::EPSILON);
    }
}
