//! How typical a ticket is of a department: the cosine between the ticket's feature vector and the
//! centre of the department's known tickets, set against the same cosine for every record in the
//! knowledge base. A ticket about something no department handles still gets a confident answer from
//! the classifier, whose probabilities only compare the departments with each other; its distance from
//! the chosen department's tickets is what gives it away. Ranked among the records' own distances it
//! becomes a share that means the same in any knowledge base: a typicality of 0.03 says only 3% of the
//! known tickets lie as far from their own department's centre.

use rustc_hash::FxHashMap;
use switchboard_learn::squared_norm;

/// Each department's sum of its records' feature vectors, and where the records themselves lie.
#[derive(Clone, Debug, Default)]
pub(crate) struct Centroids {
    /// By class: row to summed value. Looked up once per entry of a ticket's vector for each class
    /// it is scored against: a fast hash, as the keys are rows, not anything a client chooses.
    sums: Vec<FxHashMap<u32, f32>>,
    /// By class: the squared norm of the sum.
    squared_norms: Vec<f32>,
    /// Every record's cosine to its department's centre without itself, ascending: the reference a
    /// ticket's cosine is ranked in. Records alone in their department have no centre to lie from.
    reference: Vec<f32>,
}

impl Centroids {
    /// The centres of `xs`, each record of class `classes[i]`, and the reference cosines. Each record's
    /// own cosine leaves the record out of its centre, as a new ticket is not in it: otherwise the
    /// records of a small department would look closer to it than any new ticket can.
    pub(crate) fn fit(xs: &[Vec<(u32, f32)>], classes: &[usize], k: usize) -> Self {
        let mut centroids = Self {
            sums: vec![FxHashMap::default(); k],
            squared_norms: vec![0.0; k],
            reference: Vec::with_capacity(xs.len()),
        };
        for (x, &class) in xs.iter().zip(classes) {
            accumulate(&mut centroids.sums[class], x);
        }
        for (sum, norm) in centroids.sums.iter().zip(&mut centroids.squared_norms) {
            *norm = sum.values().map(|v| v * v).sum();
        }
        for (x, &class) in xs.iter().zip(classes) {
            let dot = centroids.dot(x, class);
            let own = squared_norm(x);
            // |S − x|² = |S|² − 2 S·x + |x|², and (S − x)·x = S·x − |x|².
            let rest = centroids.squared_norms[class] - 2.0 * dot + own;
            if rest > 1e-6 {
                centroids.reference.push((dot - own) / rest.sqrt());
            }
        }
        centroids.reference.sort_by(f32::total_cmp);
        centroids
    }

    /// Moves the centre of `class` by a record learnt online. The reference stays as trained: one
    /// record barely moves where the known tickets lie, and the next retrain ranks it in.
    pub(crate) fn add(&mut self, x: &[(u32, f32)], class: usize) {
        // |S + x|² = |S|² + 2 S·x + |x|²: no pass over the whole department.
        self.squared_norms[class] += 2.0 * self.dot(x, class) + squared_norm(x);
        accumulate(&mut self.sums[class], x);
    }

    /// The typicality of `x` for `class`: the share of the knowledge base's records that lie no closer
    /// to their own department's centre than `x` lies to this one's, counting `x` among them (a
    /// conformal p-value), so it is never 0. 1 when there is no reference to rank in.
    pub(crate) fn typicality(&self, x: &[(u32, f32)], class: usize) -> f32 {
        if self.reference.is_empty() || self.squared_norms[class] <= 0.0 {
            return 1.0;
        }
        let cosine = self.dot(x, class) / self.squared_norms[class].sqrt();
        let no_closer = self.reference.partition_point(|&r| r <= cosine);
        (no_closer + 1) as f32 / (self.reference.len() + 1) as f32
    }

    fn dot(&self, x: &[(u32, f32)], class: usize) -> f32 {
        let sum = &self.sums[class];
        x.iter()
            .filter_map(|(row, v)| sum.get(row).map(|s| s * v))
            .sum()
    }
}

fn accumulate(sum: &mut FxHashMap<u32, f32>, x: &[(u32, f32)]) {
    for &(row, v) in x {
        *sum.entry(row).or_insert(0.0) += v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit vector along row `a` tilted a little towards row `b`.
    fn tilted(a: u32, b: u32, tilt: f32) -> Vec<(u32, f32)> {
        let n = (1.0 + tilt * tilt).sqrt();
        vec![(a, 1.0 / n), (b, tilt / n)]
    }

    fn two_departments() -> Centroids {
        // Class 0 lies along row 0, class 1 along row 1, each spread a little towards rows of its own.
        let xs: Vec<_> = (0..20)
            .map(|i| tilted(i % 2, 10 + i, 0.1 + 0.02 * i as f32))
            .collect();
        let classes: Vec<usize> = (0..20).map(|i| (i % 2) as usize).collect();
        Centroids::fit(&xs, &classes, 2)
    }

    #[test]
    fn a_ticket_like_the_department_is_typical_and_one_unlike_it_is_not() {
        let centroids = two_departments();
        assert_eq!(centroids.reference.len(), 20);
        let like = tilted(0, 99, 0.05);
        assert!(centroids.typicality(&like, 0) > 0.9);
        // The same ticket against the other department lies far from every record's own centre.
        assert!(centroids.typicality(&like, 1) < 0.05);
        // A ticket between the two is unlike both.
        let between = tilted(0, 1, 1.0);
        assert!(centroids.typicality(&between, 0) < 0.1);
    }

    #[test]
    fn a_record_alone_in_its_department_has_no_reference_and_leaves_itself_out() {
        let xs = vec![tilted(0, 5, 0.1), tilted(0, 6, 0.1), tilted(1, 7, 0.1)];
        let centroids = Centroids::fit(&xs, &[0, 0, 1], 2);
        // The two of class 0 each see only the other: cosine 1/(1 + 0.01), not their own 1.
        assert_eq!(centroids.reference.len(), 2);
        assert!((centroids.reference[0] - 1.0 / 1.01).abs() < 1e-5);
    }

    #[test]
    fn learning_moves_the_centre() {
        let mut centroids = two_departments();
        let new = vec![(42, 1.0)];
        let before = centroids.typicality(&new, 0);
        for _ in 0..20 {
            centroids.add(&new, 0);
        }
        assert!(centroids.typicality(&new, 0) > before);
    }
}
