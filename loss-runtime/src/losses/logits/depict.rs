//! DEPICT (Dizaji et al., ICCV 2017): the clustering cross-entropy against a sharpened
//! target distribution, and that target distribution as a function.

use crate::error::LossError;
use crate::loss;
use crate::Real;

/// DEPICT clustering cross-entropy: the soft-max output is pulled towards a sharpened,
/// frequency-balanced copy of itself, so confident assignments grow more confident while
/// no cluster can take every sample.
///
/// ```text
/// pᵢₖ  = softmax_k(z[i])                                  (the batch's own predictions)
/// f_k  = Σ_j p_jk                                          (soft cluster sizes in the batch)
/// qᵢₖ  = (pᵢₖ² / f_k) / Σ_m (pᵢₘ² / f_m)                   (the official code's sharpening)
///      = (pᵢₖ / √f_k) / Σ_m (pᵢₘ / √f_m)                   (paper_target = true: the paper's)
/// L    = (1/N) Σᵢ −Σ_k detach(qᵢₖ) · ln pᵢₖ
/// ```
///
/// q is a constant (`detach`): the gradient is `∂L/∂z[i][k] = (pᵢₖ − qᵢₖ)/N`, each row
/// summing to 0. With one-hot targets this would be the ordinary cross-entropy.
///
/// **Conventions.** Everything is computed in the log domain: `ln pᵢₖ` is a max-shifted
/// log-softmax, `ln f_k` a `logsumexp` over the batch, and q a softmax over
/// `2·ln pᵢₖ − ln f_k` (or `ln pᵢₖ − ½·ln f_k`), so no probability underflows to a 0/0
/// and logits of any magnitude are safe. The loss is smooth.
///
/// **Reference:** Ghasedi Dizaji, Herandi, Deng, Cai, Huang. *Deep Clustering via Joint
/// Convolutional Autoencoder Embedding and Relative Entropy Minimization.* ICCV 2017.
/// **Official code:** `herandy/DEPICT`, `functions.py::train_depict` (the clustering loss
/// and the target update). Differences, and why:
/// - **where Q comes from.** The official Q is state: it is recomputed once per epoch from
///   the clean pathway's predictions over the whole training set, gathered by sample index,
///   and the loss is the cross-entropy of the noisy pathway against it. A loss of the
///   logits family takes only logits and labels, so here q is computed from the batch's
///   own predictions, with the cluster sizes summed over the batch (DEC-style
///   self-training). To follow the official recipe, compute Q per epoch with
///   [`depict_target_distribution`]; a loss taking it as a soft-target input needs
///   declared inputs, which the logits family does not have yet;
/// - the labels are not used (clustering is unsupervised); pass any valid labels;
/// - the official code takes the cross-entropy of the soft-max *output* without
///   clipping; here it is the log-softmax of the logits, the same value, stable;
/// - the reconstruction terms of the full DEPICT objective are ordinary MSE and are not
///   part of this loss.
///
/// **Defaults:** the official code's `p²/f` sharpening (`paper_target = false`); the
/// paper's closed form `p/√f` appears in the code only as a commented-out line.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let z: Tensor<Rank2<3, 2>, f64, _> = dev.tensor([[2.0, 0.0], [1.0, 0.5], [-1.0, 1.0]]);
/// let loss = DepictClusteringCe::default().forward(z.leaky_trace(), &[0, 0, 0]);
/// let grads = loss.backward();
/// // the target is the public function applied to the batch's predictions
/// let p = z.clone().softmax::<Axis<1>>().as_vec();
/// let q = depict_target_distribution(&p, 2, DepictTarget::Code)?;
/// let g = grads.get(&z).as_vec();
/// for k in 0..6 {
///     assert!((g[k] - (p[k] - q[k]) / 3.0).abs() < 1e-12);
/// }
/// # Ok::<(), loss_runtime::LossError>(())
/// ```
#[loss(logits, paper = "DEPICT (Ghasedi Dizaji et al., ICCV 2017)")]
pub fn depict_clustering_ce(
    z: Logits,
    y: Labels,
    #[hyper(
        default = false,
        doc = "sharpen with the paper's p/√f instead of the official code's p²/f"
    )]
    paper_target: bool,
) -> PerSample {
    let power = select(paper_target, 1.0, 2.0);
    let spread = select(paper_target, 0.5, 1.0);
    let lse = logsumexp(classes, |k| z[i][k]);
    // each `ln f_k` is read through a `let`, which keeps it one buffer over the classes
    // (computed once per batch) rather than recomputed inside every sample's loop
    let norm = logsumexp(classes, |k| {
        let log_size = logsumexp(samples, |j| z[j][k] - logsumexp(classes, |m| z[j][m]));
        let weight = power * (z[i][k] - lse) - spread * log_size;
        weight
    });
    -sum(classes, |k| {
        let log_size = logsumexp(samples, |j| z[j][k] - logsumexp(classes, |m| z[j][m]));
        let target = detach(exp(power * (z[i][k] - lse) - spread * log_size - norm));
        target * (z[i][k] - lse)
    })
}

/// How [`depict_target_distribution`] sharpens the predictions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DepictTarget {
    /// `qᵢₖ ∝ pᵢₖ² / f_k`, the official code's (DEC-style) sharpening.
    #[default]
    Code,
    /// `qᵢₖ ∝ pᵢₖ / √f_k`, the paper's closed form.
    Paper,
}

/// DEPICT's target distribution Q from the predictions P of a whole data set, the
/// per-epoch update of the official training loop.
///
/// `probs` holds P row-major, `N × clusters`, one row of cluster probabilities per sample
/// (the clean pathway's soft-max outputs). With `f_k = Σᵢ pᵢₖ`:
///
/// ```text
/// Code:   qᵢₖ = (pᵢₖ² / f_k) / Σ_m (pᵢₘ² / f_m)
/// Paper:  qᵢₖ = (pᵢₖ / √f_k) / Σ_m (pᵢₘ / √f_m)
/// ```
///
/// Each row of Q is on the simplex. Within a row, `qᵢₖ·f_k / pᵢₖ²` (Code) or
/// `qᵢₖ·√f_k / pᵢₖ` (Paper) is the same for every k. When all clusters have the same size
/// `Paper` returns P and `Code` squares and renormalises each row. Q is only an
/// approximate stationary point of the paper's relative-entropy objective (the paper
/// treats the per-row normalisers as equal).
///
/// **Conventions.** A cluster no sample gives any mass (`f_k = 0`) gets `qᵢₖ = 0`; a row of
/// zeros stays a row of zeros (that sample then carries no target). Computed in f64.
///
/// # Errors
/// [`LossError::EmptyBatch`] for no clusters or no samples, [`LossError::BadShape`] when
/// the length is not a multiple of `clusters`, [`LossError::NonFinite`] and
/// [`LossError::ProbabilityOutOfRange`] for an entry that is not a probability.
///
/// ```
/// use loss_runtime::{depict_target_distribution, DepictTarget};
/// let p: [f64; 6] = [0.9, 0.1, 0.6, 0.4, 0.2, 0.8];
/// let q = depict_target_distribution(&p, 2, DepictTarget::Code)?;
/// assert!(q[0] > p[0]); // a confident assignment becomes more confident
/// assert!((q[0] + q[1] - 1.0).abs() < 1e-15);
/// # Ok::<(), loss_runtime::LossError>(())
/// ```
pub fn depict_target_distribution<E: Real>(
    probs: &[E],
    clusters: usize,
    mode: DepictTarget,
) -> Result<Vec<E>, LossError> {
    if clusters == 0 || probs.is_empty() {
        return Err(LossError::EmptyBatch { input: "probs" });
    }
    if probs.len() % clusters != 0 {
        return Err(LossError::BadShape {
            input: "probs",
            shape: vec![probs.len()],
            expected: "N × clusters values, row-major",
        });
    }
    crate::family::check_finite("probs", &[probs.len() / clusters, clusters], probs)?;
    let p: Vec<f64> = probs.iter().map(|v| v.to_f64()).collect();
    for (index, &value) in p.iter().enumerate() {
        if !(0.0..=1.0).contains(&value) {
            return Err(LossError::ProbabilityOutOfRange { index, value });
        }
    }
    let mut sizes = vec![0.0; clusters];
    for row in p.chunks(clusters) {
        for (f, &v) in sizes.iter_mut().zip(row) {
            *f += v;
        }
    }
    let sharpen = |v: f64, f: f64| match (f > 0.0, mode) {
        (false, _) => 0.0,
        (true, DepictTarget::Code) => v * v / f,
        (true, DepictTarget::Paper) => v / f.sqrt(),
    };
    let mut q = Vec::with_capacity(p.len());
    for row in p.chunks(clusters) {
        let weights: Vec<f64> = row
            .iter()
            .zip(&sizes)
            .map(|(&v, &f)| sharpen(v, f))
            .collect();
        let total: f64 = weights.iter().sum();
        q.extend(
            weights
                .iter()
                .map(|&w| E::from_f64(if total > 0.0 { w / total } else { 0.0 })),
        );
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use super::*;
    use crate::check::{gradient, Tolerance};
    use crate::testing::*;
    use crate::{Loss, SoftmaxCrossEntropy};

    /// Softmax of every row, max-shifted, with plain loops.
    fn softmax(z: &[f64], c: usize) -> Vec<f64> {
        let mut p = Vec::with_capacity(z.len());
        for row in z.chunks(c) {
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
            p.extend(row.iter().map(|v| (v - m).exp() / s));
        }
        p
    }

    /// The batch target with plain loops, straight from the formula (no log domain).
    fn naive_target(p: &[f64], c: usize, paper: bool) -> Vec<f64> {
        let n = p.len() / c;
        let mut f = vec![0.0; c];
        for i in 0..n {
            for k in 0..c {
                f[k] += p[i * c + k];
            }
        }
        let mut q = vec![0.0; p.len()];
        for i in 0..n {
            let mut total = 0.0;
            for k in 0..c {
                let v = p[i * c + k];
                q[i * c + k] = if paper { v / f[k].sqrt() } else { v * v / f[k] };
                total += q[i * c + k];
            }
            for k in 0..c {
                q[i * c + k] /= total;
            }
        }
        q
    }

    /// `(1/N) Σᵢ −Σ_k qᵢₖ ln pᵢₖ` with plain loops.
    fn naive(z: &[f64], c: usize, paper: bool) -> f64 {
        let p = softmax(z, c);
        let q = naive_target(&p, c, paper);
        let n = z.len() / c;
        let mut total = 0.0;
        for j in 0..z.len() {
            total -= q[j] * p[j].ln();
        }
        total / n as f64
    }

    fn tensor(z: &[f64], c: usize) -> Tensor<(usize, usize), f64, Cpu> {
        let dev: Cpu = Default::default();
        dev.tensor_from_vec(z.to_vec(), (z.len() / c, c))
    }

    fn loss(paper: bool) -> DepictClusteringCe {
        DepictClusteringCe::new().with_paper_target(paper)
    }

    #[test]
    fn value_matches_a_naive_loop() {
        let mut rng = Rng::new(1201);
        for (n, c, scale) in [(1, 2, 1.0), (4, 3, 3.0), (9, 6, 8.0), (16, 10, 2.0)] {
            let (z, y) = random_logits(&mut rng, n, c, scale);
            for paper in [false, true] {
                let got = logits_value::<f64, _>(&loss(paper), &z, c, &y).unwrap();
                let want = naive(&z, c, paper);
                assert_close(got, want, 1e-12, 1e-14, &format!("paper={paper} z={z:?}"));
            }
        }
    }

    /// The labels play no part.
    #[test]
    fn labels_do_not_matter() {
        let mut rng = Rng::new(1202);
        let (z, y) = random_logits(&mut rng, 5, 4, 3.0);
        let a = logits_value::<f64, _>(&loss(false), &z, 4, &y).unwrap();
        let b = logits_value::<f64, _>(&loss(false), &z, 4, &[3, 2, 1, 0, 0]).unwrap();
        assert_eq!(a, b);
    }

    /// q is a constant: the gradient is `(p − q)/N`, with q from the public function
    /// applied to the batch's predictions; rows sum to 0.
    #[test]
    fn gradient_is_predictions_minus_target() {
        let mut rng = Rng::new(1203);
        let (n, c) = (7, 5);
        let (z, y) = random_logits(&mut rng, n, c, 4.0);
        let p = softmax(&z, c);
        for (paper, mode) in [(false, DepictTarget::Code), (true, DepictTarget::Paper)] {
            let q = depict_target_distribution(&p, c, mode).unwrap();
            let (_, g) = logits_value_and_grad::<f64, _>(&loss(paper), &z, c, &y);
            for j in 0..z.len() {
                let want = (p[j] - q[j]) / n as f64;
                assert_close(g[j], want, 1e-10, 1e-15, &format!("paper={paper} [{j}]"));
            }
            for i in 0..n {
                let s: f64 = g[i * c..(i + 1) * c].iter().sum();
                assert!(s.abs() < 1e-15, "row {i} sums to {s}");
            }
        }
    }

    /// The derived gradient is that of the loss with q held fixed: finite differences of
    /// the cross-entropy against that fixed q.
    #[test]
    fn gradient_matches_finite_differences_with_the_target_fixed() {
        let mut rng = Rng::new(1204);
        for (n, c) in [(2, 2), (4, 3), (6, 5)] {
            let (z, y) = random_logits(&mut rng, n, c, 3.0);
            for paper in [false, true] {
                let x = tensor(&z, c);
                let derived = {
                    let out = loss(paper).forward(x.leaky_trace(), &y[..]);
                    out.backward().get(&x).as_vec()
                };
                let q = naive_target(&softmax(&z, c), c, paper);
                let fixed = |v: &[f64]| {
                    let p = softmax(v, c);
                    -(0..v.len()).map(|j| q[j] * p[j].ln()).sum::<f64>() / n as f64
                };
                let value = fixed(&z);
                let report = crate::check::compare_with_differences(
                    &z,
                    &[n, c],
                    value,
                    &derived,
                    |v| Some(fixed(v)),
                    Tolerance::default(),
                );
                assert!(
                    report.passed() && report.kinks == 0,
                    "paper={paper}: {report}"
                );
            }
        }
        // and the value's own finite differences differ: q is not differentiated
        let (z, y) = random_logits(&mut rng, 4, 3, 3.0);
        let report = gradient(&loss(false), &tensor(&z, 3), &y[..], Tolerance::default()).unwrap();
        assert!(!report.passed(), "the target must be detached: {report}");
    }

    #[test]
    fn f32_agrees_with_f64() {
        let mut rng = Rng::new(1205);
        for (n, c) in [(2, 3), (8, 10)] {
            let (z, y) = random_logits(&mut rng, n, c, 5.0);
            check_logits_precisions(&loss(false), &z, c, &y, 1e-4);
            check_logits_precisions(&loss(true), &z, c, &y, 1e-4);
        }
    }

    /// Logits of magnitude 1e4: every probability but one per row underflows, yet the
    /// log-domain target has no 0/0.
    #[test]
    fn huge_logits_stay_finite() {
        let z = [1e4, -1e4, 0.0, 3e4, 3e4, -3e4];
        for paper in [false, true] {
            let (v, g) = logits_value_and_grad::<f64, _>(&loss(paper), &z, 3, &[0, 0]);
            assert!(
                v.is_finite() && g.iter().all(|g| g.is_finite()),
                "{v} {g:?}"
            );
        }
    }

    /// A batch of one confident sample per cluster is its own target: the loss is then
    /// the cross-entropy with the argmax labels, up to the remaining mass.
    #[test]
    fn one_confident_sample_per_cluster_is_close_to_cross_entropy() {
        let z = [12.0, 0.0, 0.0, 0.0, 12.0, 0.0, 0.0, 0.0, 12.0];
        let ce = logits_value::<f64, _>(&SoftmaxCrossEntropy::new(), &z, 3, &[0, 1, 2]).unwrap();
        let got = logits_value::<f64, _>(&loss(false), &z, 3, &[0, 0, 0]).unwrap();
        assert_close(got, ce, 1e-6, 1e-9, "near-one-hot targets");
    }

    #[test]
    fn target_rows_are_on_the_simplex_with_constant_ratios() {
        let mut rng = Rng::new(1206);
        let (z, _) = random_logits(&mut rng, 12, 4, 3.0);
        let p = softmax(&z, 4);
        let mut f = [0.0; 4];
        for row in p.chunks(4) {
            for k in 0..4 {
                f[k] += row[k];
            }
        }
        for mode in [DepictTarget::Code, DepictTarget::Paper] {
            let q = depict_target_distribution(&p, 4, mode).unwrap();
            for (qr, pr) in q.chunks(4).zip(p.chunks(4)) {
                assert!(qr.iter().all(|&v| v >= 0.0));
                assert_close(qr.iter().sum(), 1.0, 0.0, 1e-15, "row sum");
                let ratio = |k: usize| match mode {
                    DepictTarget::Code => qr[k] * f[k] / (pr[k] * pr[k]),
                    DepictTarget::Paper => qr[k] * f[k].sqrt() / pr[k],
                };
                for k in 1..4 {
                    assert_close(ratio(k), ratio(0), 1e-12, 0.0, &format!("{mode:?} ratio"));
                }
            }
            let naive = naive_target(&p, 4, mode == DepictTarget::Paper);
            for j in 0..q.len() {
                assert_close(q[j], naive[j], 1e-14, 1e-16, "against the naive loop");
            }
        }
    }

    /// Equal cluster sizes: `Paper` returns P, `Code` squares and renormalises rows.
    #[test]
    fn uniform_cluster_sizes() {
        let p = [0.7f32, 0.3, 0.3, 0.7];
        let paper = depict_target_distribution(&p, 2, DepictTarget::Paper).unwrap();
        for (a, b) in paper.iter().zip(&p) {
            assert!((a - b).abs() < 1e-7, "{paper:?}");
        }
        let code = depict_target_distribution(&p, 2, DepictTarget::Code).unwrap();
        let want = 0.49f32 / (0.49 + 0.09);
        assert!(
            (code[0] - want).abs() < 1e-6 && (code[3] - want).abs() < 1e-6,
            "{code:?}"
        );
    }

    #[test]
    fn target_edge_cases_and_errors() {
        // an empty cluster gets no target; a zero row stays zero
        let q = depict_target_distribution(&[1.0, 0.0, 0.0, 0.0], 2, DepictTarget::Code).unwrap();
        assert_eq!(q, vec![1.0, 0.0, 0.0, 0.0]);
        let q = depict_target_distribution(&[0.5, 0.5, 0.0, 0.0], 2, DepictTarget::Paper).unwrap();
        assert_eq!(q, vec![0.5, 0.5, 0.0, 0.0]);

        let err = |p: &[f64], c: usize| depict_target_distribution(p, c, DepictTarget::Code);
        assert_eq!(err(&[], 2), Err(LossError::EmptyBatch { input: "probs" }));
        assert_eq!(
            err(&[0.5, 0.5], 0),
            Err(LossError::EmptyBatch { input: "probs" })
        );
        assert!(matches!(
            err(&[0.5, 0.5, 1.0], 2),
            Err(LossError::BadShape { .. })
        ));
        assert!(matches!(
            err(&[0.5, f64::NAN], 2),
            Err(LossError::NonFinite { index: 1, .. })
        ));
        assert_eq!(
            err(&[1.5, -0.5], 2),
            Err(LossError::ProbabilityOutOfRange {
                index: 0,
                value: 1.5
            })
        );
    }
}
