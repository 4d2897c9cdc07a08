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
    /// The width of the band the projected gradients lay in, the widest of the problems still being
    /// solved; a problem stops once its band is within [`Solver::tolerance`].
    pub spread: f32,
    /// The samples still in play in some problem after the pass: all of them at first, fewer once
    /// those sure to stay outside the margin are shrunk away, and all again on the pass that ends a fit.
    pub active: usize,
}

/// Several problems over the same samples, each one class against the rest, solved together: what a
/// one-against-the-rest model fits. Each sample is read once per pass for all of them, and its margins
/// and updates are a short contiguous vector per feature. Solved one by one, every problem read every
/// sample from memory again: a knowledge base's vectors with their embeddings do not fit in a cache,
/// and those reads were most of a fit's time.
pub struct Block<'a> {
    /// The positive class of each problem, as the samples' labels name classes.
    pub classes: &'a [usize],
    /// Row-major `dim × classes.len()`: feature r's weight in problem j is at `r * classes.len() + j`.
    pub weights: &'a mut [f32],
    pub bias: &'a mut [f32],
    /// Each problem's dual, by sample: `model = Σ αᵢ yᵢ xᵢ`.
    pub alphas: &'a mut [Vec<f32>],
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
        let labels: Vec<usize> = positive.iter().map(|&p| usize::from(p)).collect();
        let mut weights = vec![0.0; dim];
        let mut bias = [0.0];
        let mut alphas = [vec![0.0; xs.len()]];
        let block = Block {
            classes: &[1],
            weights: &mut weights,
            bias: &mut bias,
            alphas: &mut alphas,
        };
        self.resume(xs, &labels, costs, order, block, progress);
        Linear {
            weights,
            bias: bias[0],
        }
    }

    /// Goes on from the block's models and duals (as a fit left them, or any duals at or above zero
    /// with the models they give) to the optimum of each problem for the samples and costs as they are
    /// now. Dual coordinate descent converges from any feasible point, so after a few samples were
    /// added (at dual 0), removed (their part taken out of the models) or given another cost, a few
    /// passes reach the optimum a fit from zero would reach, for a fraction of its passes. Returns the
    /// passes taken.
    pub fn resume(
        &self,
        xs: &[Vec<(u32, f32)>],
        labels: &[usize],
        costs: &[f32],
        order: &[usize],
        block: Block<'_>,
        progress: &mut dyn FnMut(Pass),
    ) -> u32 {
        let Block {
            classes,
            weights: w,
            bias,
            alphas,
        } = block;
        let b = classes.len();
        let n = order.len();
        let norms: Vec<f32> = order.iter().map(|&i| squared_norm(&xs[i])).collect();
        // Positions into `order`, shuffled each pass, so each sample keeps its norm.
        let mut turns: Vec<usize> = (0..n).collect();
        // liblinear's shrinking, per problem: a sample at dual 0 whose gradient lies above the largest
        // projected gradient of the problem's last pass would stay at 0, and in one class against the
        // rest most samples are far outside the margin, so later passes skip it. Once a problem's
        // active samples converge, every sample is checked again before it stops, so it stops where
        // it would without shrinking. `shrunk[t * b + j]`: position t is out of problem j.
        let mut shrunk = vec![false; n * b];
        let mut shrunk_count = vec![0usize; b];
        // Problems a position is still in; a position out of all of them is not even read.
        let mut live = vec![b; n];
        let mut shrink_above = vec![f32::INFINITY; b];
        let mut done = vec![false; b];
        let (mut margins, mut steps) = (vec![0.0f32; b], vec![0.0f32; b]);
        let (mut low, mut high) = (vec![0.0f32; b], vec![0.0f32; b]);
        let mut rng = SplitMix64::new(self.seed);
        for number in 1..=self.max_passes {
            rng.shuffle(&mut turns);
            low.fill(f32::INFINITY);
            high.fill(f32::NEG_INFINITY);
            for &t in &turns {
                if live[t] == 0 {
                    continue;
                }
                let i = order[t];
                let x = &xs[i];
                margins.copy_from_slice(bias);
                for &(r, v) in x {
                    let row = &w[r as usize * b..(r as usize + 1) * b];
                    for (m, w) in margins.iter_mut().zip(row) {
                        *m += w * v;
                    }
                }
                let mut moved = false;
                for j in 0..b {
                    steps[j] = 0.0;
                    if done[j] || shrunk[t * b + j] {
                        continue;
                    }
                    let y = if labels[i] == classes[j] { 1.0 } else { -1.0 };
                    let alpha = &mut alphas[j][i];
                    let margin = y * margins[j];
                    let gradient = margin - 1.0 + *alpha * diag(costs[i]);
                    // The projected gradient: at the bound 0 only a descent into the feasible side
                    // counts towards convergence.
                    let projected = if *alpha == 0.0 {
                        if gradient > shrink_above[j] {
                            shrunk[t * b + j] = true;
                            shrunk_count[j] += 1;
                            live[t] -= 1;
                            continue;
                        }
                        gradient.min(0.0)
                    } else {
                        gradient
                    };
                    low[j] = low[j].min(projected);
                    high[j] = high[j].max(projected);
                    if let Some(step) = coordinate_step(margin, *alpha, costs[i], norms[t]) {
                        *alpha += step;
                        steps[j] = step * y;
                        bias[j] += step * y;
                        moved = true;
                    }
                }
                if moved {
                    for &(r, v) in x {
                        let row = &mut w[r as usize * b..(r as usize + 1) * b];
                        for (w, d) in row.iter_mut().zip(&steps) {
                            *w += d * v;
                        }
                    }
                }
            }
            let active = live.iter().filter(|&&l| l > 0).count();
            let mut spread = f32::NEG_INFINITY;
            for j in 0..b {
                if done[j] {
                    continue;
                }
                let band = high[j] - low[j];
                spread = spread.max(band);
                if band > self.tolerance {
                    shrink_above[j] = if high[j] > 0.0 {
                        high[j]
                    } else {
                        f32::INFINITY
                    };
                } else if shrunk_count[j] == 0 {
                    done[j] = true;
                    live.iter_mut().for_each(|l| *l -= 1);
                } else {
                    // Converged on what is left: every sample comes back for the pass that checks.
                    for t in 0..n {
                        if std::mem::take(&mut shrunk[t * b + j]) {
                            live[t] += 1;
                        }
                    }
                    shrunk_count[j] = 0;
                    shrink_above[j] = f32::INFINITY;
                }
            }
            progress(Pass {
                number,
                spread,
                active,
            });
            if done.iter().all(|&d| d) {
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
    /// For tests that compare fits with each other or with the optimum: close to exact.
    const TIGHT: Solver = Solver {
        tolerance: 1e-4,
        max_passes: 5000,
        ..SOLVER
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
        // The fit ends on a pass over every sample, whatever was shrunk away before it.
        assert!(passes.last().is_some_and(|p| p.active == xs.len()));
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
        let model = TIGHT.fit(4, &xs, &positive, &costs, &order, &mut |_| {});
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
        let mut costs = vec![1.0; xs.len()];
        let first: Vec<usize> = (0..30).collect();
        let labels: Vec<usize> = positive.iter().map(|&p| usize::from(p)).collect();
        let resume = |order: &[usize], costs: &[f32], model: &mut Linear, alpha: &mut Vec<f32>| {
            let block = Block {
                classes: &[1],
                weights: &mut model.weights,
                bias: std::slice::from_mut(&mut model.bias),
                alphas: std::slice::from_mut(alpha),
            };
            TIGHT.resume(&xs, &labels, costs, order, block, &mut |_| {})
        };
        let from_zero = |order: &[usize], costs: &[f32]| {
            let mut model = Linear {
                weights: vec![0.0; 4],
                bias: 0.0,
            };
            let mut alpha = vec![0.0; xs.len()];
            resume(order, costs, &mut model, &mut alpha);
            (model, alpha)
        };
        let (mut model, mut alpha) = from_zero(&first, &costs);
        // Ten samples join, and one of the first gets a tenth of its cost.
        costs[3] = 0.1;
        let all: Vec<usize> = (0..xs.len()).collect();
        let passes = resume(&all, &costs, &mut model, &mut alpha);
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
            TIGHT.fit(4, &xs, &positive, &costs, &all, &mut |_| n += 1);
            n
        };
        assert!(
            passes < from_zero,
            "{passes} passes resumed, {from_zero} from zero"
        );
    }

    #[test]
    fn problems_solved_together_reach_what_each_reaches_alone() {
        // Three classes in a row along feature 0, each with a feature of its own: class c against the
        // rest, for each c, in one block and one at a time.
        let mut rng = SplitMix64::new(5);
        let mut noise = move || (rng.next_u64() % 1000) as f32 / 4000.0;
        let (xs, labels): (Vec<Vec<(u32, f32)>>, Vec<usize>) = (0..60)
            .map(|i| {
                let class = i % 3;
                let x = vec![(0, class as f32 - 1.0 + noise()), (1 + class as u32, 1.0)];
                (x, class)
            })
            .unzip();
        let costs = vec![1.0; xs.len()];
        let order: Vec<usize> = (0..xs.len()).collect();
        let classes = [0, 1, 2];
        let mut weights = vec![0.0; 4 * 3];
        let mut bias = vec![0.0; 3];
        let mut alphas = vec![vec![0.0; xs.len()]; 3];
        let block = Block {
            classes: &classes,
            weights: &mut weights,
            bias: &mut bias,
            alphas: &mut alphas,
        };
        TIGHT.resume(&xs, &labels, &costs, &order, block, &mut |_| {});
        for class in classes {
            let positive: Vec<bool> = labels.iter().map(|&l| l == class).collect();
            let alone = TIGHT.fit(4, &xs, &positive, &costs, &order, &mut |_| {});
            for r in 0..4 {
                let (together, alone) = (weights[r * 3 + class], alone.weights[r]);
                assert!(
                    (together - alone).abs() < 1e-2,
                    "class {class} feature {r}: {together} against {alone}"
                );
            }
            assert!((bias[class] - alone.bias).abs() < 1e-2, "class {class}");
        }
    }

    #[test]
    fn samples_far_outside_the_margin_are_shrunk_away_without_moving_the_optimum() {
        // The clusters, and many negatives far out along feature 0: after a pass or two they are
        // skipped, and the fit is the one every pass over every sample reaches.
        let (mut xs, mut positive) = clusters();
        for i in 0..400 {
            xs.push(vec![(0, -3.0 - (i % 7) as f32), (2, 0.5)]);
            positive.push(false);
        }
        let costs = vec![1.0; xs.len()];
        let order: Vec<usize> = (0..xs.len()).collect();
        let mut passes = Vec::new();
        let model = TIGHT.fit(4, &xs, &positive, &costs, &order, &mut |p| passes.push(p));
        assert!(passes.iter().any(|p| p.active < xs.len() / 2), "{passes:?}");
        // The clusters are still told apart, and the far negatives, shrunk or not, lie outside the
        // margin, where the optimum leaves them.
        for (x, &p) in xs.iter().zip(&positive).take(40) {
            assert_eq!(decision(&model, x) > 0.0, p, "{x:?}");
        }
        for x in &xs[40..] {
            assert!(decision(&model, x) < -1.0, "{x:?}");
        }
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
