//! The L2-regularised, squared-hinge (L2-loss) linear SVM over sparse vectors, solved by dual coordinate
//! descent (Hsieh et al. 2008, the method of liblinear behind scikit-learn's `LinearSVC`): no learning rate
//! to tune, it converges to the exact optimum of its objective in a few passes where stochastic gradient
//! steps stop short of it, and with a fixed seed the same samples always give the same model.
//!
//! The bias is the weight of a constant feature 1 appended to every vector (liblinear's `-B 1`),
//! regularised like the others.

use crate::SplitMix64;

/// How a fit runs. The costs are per sample: liblinear's C, how much a margin violation costs against
/// the weights' size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Solver {
    /// Passes stop when the projected gradients of one pass all lie within a band this wide (liblinear's
    /// stopping rule; its default is 0.1), or after [`Solver::max_passes`].
    pub tolerance: f32,
    pub max_passes: u32,
    /// Seeds the order of the samples in each pass.
    pub seed: u64,
}

/// A fitted hyperplane: the decision for x is `weights · x + bias`.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    pub weights: Vec<f32>,
    pub bias: f32,
}

/// One pass done, for progress lines on long fits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pass {
    /// From 1.
    pub number: u32,
    /// The width of the band the projected gradients lay in; the fit stops once it is within
    /// [`Solver::tolerance`].
    pub spread: f32,
}

impl Solver {
    /// Fits the samples `order` names (each at most once; the others are left out): `xs[i]` with entries
    /// below `dim`, on the positive side when `positive[i]`, at cost `costs[i]`.
    pub fn fit(
        &self,
        dim: usize,
        xs: &[Vec<(u32, f32)>],
        positive: &[bool],
        costs: &[f32],
        order: &[usize],
        progress: &mut dyn FnMut(Pass),
    ) -> Linear {
        let mut model = Linear {
            weights: vec![0.0; dim],
            bias: 0.0,
        };
        let mut alpha = vec![0.0; xs.len()];
        self.resume(xs, positive, costs, order, &mut model, &mut alpha, progress);
        model
    }

    /// Goes on from `model` and its dual `alpha` (`model` = Σ αᵢ yᵢ xᵢ, as a fit left them) to the
    /// optimum for the samples and costs as they are now. Dual coordinate descent converges from any
    /// feasible point, so after a few samples were added (at `alpha` 0), removed (their part taken out
    /// of `model`) or given another cost, a few passes reach the optimum a fit from zero would reach,
    /// for a fraction of its passes. Returns the passes taken.
    #[allow(clippy::too_many_arguments)]
    pub fn resume(
        &self,
        xs: &[Vec<(u32, f32)>],
        positive: &[bool],
        costs: &[f32],
        order: &[usize],
        model: &mut Linear,
        alpha: &mut [f32],
        progress: &mut dyn FnMut(Pass),
    ) -> u32 {
        let Linear { weights: w, bias } = model;
        let norms: Vec<f32> = order.iter().map(|&i| squared_norm(&xs[i])).collect();
        // Positions into `order`, shuffled each pass, so each sample keeps its norm.
        let mut turns: Vec<usize> = (0..order.len()).collect();
        let mut rng = SplitMix64::new(self.seed);
        for number in 1..=self.max_passes {
            rng.shuffle(&mut turns);
            let (mut low, mut high) = (f32::INFINITY, f32::NEG_INFINITY);
            for &t in &turns {
                let i = order[t];
                let x = &xs[i];
                let y = if positive[i] { 1.0 } else { -1.0 };
                let margin = y * (x.iter().map(|&(r, v)| w[r as usize] * v).sum::<f32>() + *bias);
                let gradient = margin - 1.0 + alpha[i] * diag(costs[i]);
                // The projected gradient: at the bound alpha = 0 only a descent into the feasible side
                // counts towards convergence.
                let projected = if alpha[i] == 0.0 {
                    gradient.min(0.0)
                } else {
                    gradient
                };
                low = low.min(projected);
                high = high.max(projected);
                if let Some(step) = coordinate_step(margin, alpha[i], costs[i], norms[t]) {
                    alpha[i] += step;
                    let d = step * y;
                    for &(r, v) in x {
                        w[r as usize] += d * v;
                    }
                    *bias += d;
                }
            }
            let spread = high - low;
            progress(Pass { number, spread });
            if spread <= self.tolerance {
                return number;
            }
        }
        self.max_passes
    }
}

/// The exact minimisation of the dual along one sample's coordinate: the change to its `alpha`, kept at
/// or above zero, or `None` when it is already optimal. `margin` is y·(w·x + bias), `cost` the sample's
/// C and `squared_norm` that of x without the bias feature. Whoever takes the step adds step·y·x to the
/// weights and step·y to the bias.
fn coordinate_step(margin: f32, alpha: f32, cost: f32, squared_norm: f32) -> Option<f32> {
    let diag = diag(cost);
    let gradient = margin - 1.0 + alpha * diag;
    let next = (alpha - gradient / (squared_norm + 1.0 + diag)).max(0.0);
    let step = next - alpha;
    (step.abs() > 1e-12).then_some(step)
}

/// The squared hinge's 1/(2C), added to the dual's diagonal.
fn diag(cost: f32) -> f32 {
    0.5 / cost
}

pub fn squared_norm(x: &[(u32, f32)]) -> f32 {
    x.iter().map(|(_, v)| v * v).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOLVER: Solver = Solver {
        tolerance: 0.01,
        max_passes: 500,
        seed: 1,
    };

    fn decision(model: &Linear, x: &[(u32, f32)]) -> f32 {
        x.iter()
            .map(|&(r, v)| model.weights[r as usize] * v)
            .sum::<f32>()
            + model.bias
    }

    /// Two clusters apart along feature 0, each with a feature of its own and some shared noise.
    fn clusters() -> (Vec<Vec<(u32, f32)>>, Vec<bool>) {
        let mut rng = SplitMix64::new(9);
        let mut noise = move || (rng.next_u64() % 1000) as f32 / 2000.0;
        (0..40)
            .map(|i| {
                let positive = i % 2 == 0;
                let x = vec![
                    (0, if positive { 1.0 } else { -1.0 } + noise() - 0.25),
                    (if positive { 1 } else { 2 }, noise()),
                    (3, noise()),
                ];
                (x, positive)
            })
            .unzip()
    }

    #[test]
    fn separates_separable_data_and_reports_its_passes() {
        let (xs, positive) = clusters();
        let costs = vec![1.0; xs.len()];
        let order: Vec<usize> = (0..xs.len()).collect();
        let mut passes = Vec::new();
        let model = SOLVER.fit(4, &xs, &positive, &costs, &order, &mut |p| passes.push(p));
        for (x, &p) in xs.iter().zip(&positive) {
            assert_eq!(decision(&model, x) > 0.0, p, "{x:?}");
        }
        assert!(!passes.is_empty() && passes.len() < 500, "{passes:?}");
        assert!(
            passes
                .iter()
                .enumerate()
                .all(|(i, p)| p.number as usize == i + 1)
        );
        assert!(passes.last().is_some_and(|p| p.spread <= SOLVER.tolerance));
        // The same seed, the same model.
        assert_eq!(
            model,
            SOLVER.fit(4, &xs, &positive, &costs, &order, &mut |_| {})
        );
    }

    #[test]
    fn reaches_the_optimum_of_the_objective() {
        // At the optimum, w = Σ αᵢ yᵢ xᵢ with the dual's gradient zero wherever α > 0: perturbing the
        // weights in any direction cannot lower the primal ½|w|² + ½b² + Σ C·max(0, 1 − y(w·x + b))².
        let (xs, positive) = clusters();
        let costs = vec![0.5; xs.len()];
        let order: Vec<usize> = (0..xs.len()).collect();
        let tight = Solver {
            tolerance: 1e-4,
            max_passes: 5000,
            ..SOLVER
        };
        let model = tight.fit(4, &xs, &positive, &costs, &order, &mut |_| {});
        let primal = |m: &Linear| {
            let reg = 0.5 * (m.weights.iter().map(|w| w * w).sum::<f32>() + m.bias * m.bias);
            let loss: f32 = xs
                .iter()
                .zip(&positive)
                .zip(&costs)
                .map(|((x, &p), c)| {
                    let y = if p { 1.0 } else { -1.0 };
                    c * (1.0 - y * decision(m, x)).max(0.0).powi(2)
                })
                .sum();
            reg + loss
        };
        let best = primal(&model);
        for dim in 0..5 {
            for delta in [-0.01, 0.01] {
                let mut moved = model.clone();
                if dim == 4 {
                    moved.bias += delta;
                } else {
                    moved.weights[dim] += delta;
                }
                assert!(primal(&moved) >= best - 1e-4, "dim {dim} by {delta}");
            }
        }
    }

    #[test]
    fn resuming_after_samples_join_or_change_cost_reaches_the_fit_from_zero() {
        let (xs, positive) = clusters();
        let tight = Solver {
            tolerance: 1e-4,
            max_passes: 5000,
            ..SOLVER
        };
        let mut costs = vec![1.0; xs.len()];
        let first: Vec<usize> = (0..30).collect();
        let from_zero = |order: &[usize], costs: &[f32]| {
            let mut model = Linear {
                weights: vec![0.0; 4],
                bias: 0.0,
            };
            let mut alpha = vec![0.0; xs.len()];
            tight.resume(
                &xs,
                &positive,
                costs,
                order,
                &mut model,
                &mut alpha,
                &mut |_| {},
            );
            (model, alpha)
        };
        let (mut model, mut alpha) = from_zero(&first, &costs);
        // Ten samples join, and one of the first gets a tenth of its cost.
        costs[3] = 0.1;
        let all: Vec<usize> = (0..xs.len()).collect();
        let passes = tight.resume(
            &xs,
            &positive,
            &costs,
            &all,
            &mut model,
            &mut alpha,
            &mut |_| {},
        );
        let (scratch, scratch_alpha) = from_zero(&all, &costs);
        for (x, _) in xs.iter().zip(&positive) {
            let (a, b) = (decision(&model, x), decision(&scratch, x));
            assert!((a - b).abs() < 1e-2, "{a} against {b} from zero");
        }
        for (a, b) in alpha.iter().zip(&scratch_alpha) {
            assert!((a - b).abs() < 1e-2, "alpha {a} against {b}");
        }
        let from_zero = {
            let mut n = 0;
            tight.fit(4, &xs, &positive, &costs, &all, &mut |_| n += 1);
            n
        };
        assert!(
            passes < from_zero,
            "{passes} passes resumed, {from_zero} from zero"
        );
    }

    #[test]
    fn costlier_samples_and_the_order_count() {
        // One positive and one negative at the same point: the costlier one wins it.
        let xs = vec![vec![(0, 1.0)], vec![(0, 1.0)], vec![(1, 1.0)]];
        let positive = [true, false, false];
        let all = [0, 1, 2];
        let heavy_positive = SOLVER.fit(2, &xs, &positive, &[10.0, 1.0, 1.0], &all, &mut |_| {});
        assert!(decision(&heavy_positive, &xs[0]) > 0.0);
        let heavy_negative = SOLVER.fit(2, &xs, &positive, &[1.0, 10.0, 1.0], &all, &mut |_| {});
        assert!(decision(&heavy_negative, &xs[0]) < 0.0);
        // A sample left out of the order is not learnt: only the positive at feature 0 is seen there.
        let without = SOLVER.fit(2, &xs, &positive, &[1.0; 3], &[0, 2], &mut |_| {});
        assert!(decision(&without, &xs[0]) > 0.0);
    }

    #[test]
    fn a_coordinate_step_is_exact_and_stops_at_the_optimum() {
        // From zero, margin 0: the step solves the one-variable dual exactly.
        // Numbers exact in binary, so the second step sees a gradient of exactly zero.
        let (norm, cost) = (2.5, 1.0);
        let step = coordinate_step(0.0, 0.0, cost, norm).expect("moves");
        assert_eq!(step, 1.0 / (norm + 1.0 + 0.5));
        // Taken, the margin becomes step·(|x|² + 1), and the gradient there is zero: no further step.
        let margin = step * (norm + 1.0);
        assert_eq!(coordinate_step(margin, step, cost, norm), None);
        // Well outside the margin at alpha 0, it stays at the bound.
        assert_eq!(coordinate_step(5.0, 0.0, cost, norm), None);
    }
}
