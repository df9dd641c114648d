//! DatasetEquity (Shrivastava et al., ICCV 2023 Workshops): cross-entropy re-weighted per
//! sample by how common the sample looks, and that weight as a function.

use crate::error::LossError;
use crate::loss;

/// DatasetEquity's generalised focal cross-entropy: each sample's cross-entropy is scaled
/// by a weight that grows as the sample's *likelihood* falls, so samples from rare-looking
/// regions of the data set count more than those from its largest cluster.
///
/// ```text
/// pᵢ  ∈ (0, 1]   the scaled cluster likelihood of sample i (a declared input, data)
/// wᵢ  = (η + (1 − pᵢ)^γ) / (η + 1)                     (= dataset_equity_weight(pᵢ, η, γ))
/// L   = (1/N) Σᵢ wᵢ · (logsumexp_k z[i][k] − z[i][y[i]])
/// ```
///
/// `wᵢ` lies in `[η/(η+1), 1]`: the largest cluster (`p = 1`) gets `η/(η+1)`, a sample
/// alone in its cluster (`p → 0`) gets 1, and γ = 0 gives `w ≡ 1`, plain cross-entropy.
/// The likelihood is data: no gradient flows into it, and
/// `∂L/∂z[i][k] = wᵢ·(softmax_k(z[i]) − [k = y[i]])/N`.
///
/// **Conventions.** A likelihood outside `(0, 1]` is refused with a
/// [`LossError::Requirement`] naming the sample; a non-finite one with
/// [`LossError::NonFinite`]. `(1 − p)^0 = 1`, also at `p = 1`. The cross-entropy is the
/// max-shifted log-softmax; the loss is smooth in the logits.
///
/// **Where p comes from** (out of scope here; the official notebooks): features of every
/// training image from an ImageNet ResNet-101 without its last layer, t-SNE to 3-D,
/// DBSCAN (noise points counted together as one cluster), and
/// `pᵢ = |cluster(i)| / |largest cluster|`. It is computed once, offline, and passed with
/// each batch.
///
/// **Reference:** Shrivastava et al. *DatasetEquity: Are All Samples Created Equal? In
/// The Quest For Equity Within Datasets.* ICCV 2023 Workshops. **Official code:**
/// `towardsautonomy/DatasetEquity` (`dequity_loss_weight`), applied in the
/// `towardsautonomy/BEVFormer` fork, branch `dataset_equity`
/// (`bevformer_head.py::loss_single`). Differences: the paper's weight wraps any task
/// loss; here it wraps softmax cross-entropy, the loss of the reference experiments
/// (to weight another loss, multiply it by [`dataset_equity_weight`]); the BEVFormer fork
/// weights the batch-reduced losses with one image per GPU, the same thing per sample;
/// the dd3d fork computes the weight but never applies it.
///
/// **Defaults:** η = 1, γ = 5, the official function's defaults (the BEVFormer configs
/// use η = 0.5).
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let z: Tensor<Rank2<2, 3>, f64, _> = dev.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]]);
/// let likelihood = [1.0, 0.25]; // sample 0 from the largest cluster
/// let loss = DatasetEquity::default().forward((z.leaky_trace(), &likelihood[..]), &[0, 1]);
/// let lse = |r: [f64; 3]| r.iter().map(|v| v.exp()).sum::<f64>().ln();
/// let ce = [lse([2.0, 0.5, -1.0]) - 2.0, lse([0.0, 0.0, 3.0]) - 0.0];
/// let w0 = dataset_equity_weight(1.0, 1.0, 5.0)?;
/// let w1 = dataset_equity_weight(0.25, 1.0, 5.0)?;
/// assert!((w0 - 0.5).abs() < 1e-15);
/// assert!((loss.array() - (w0 * ce[0] + w1 * ce[1]) / 2.0).abs() < 1e-12);
/// let grads = loss.backward();
/// # Ok::<(), loss_runtime::LossError>(())
/// ```
#[loss(
    logits,
    paper = "DatasetEquity (Shrivastava et al., ICCV 2023 Workshops)"
)]
pub fn dataset_equity(
    z: Logits,
    y: Labels,
    likelihood: Given<samples>,
    #[hyper(default = 1.0, nonnegative, doc = "η: the weight floor is η/(η+1)")] eta: f64,
    #[hyper(
        default = 5.0,
        nonnegative,
        doc = "γ: how fast the weight falls with the likelihood; 0 gives plain CE"
    )]
    gamma: f64,
) -> PerSample {
    require(
        likelihood[i] > 0.0 && likelihood[i] <= 1.0,
        "the likelihood must be in (0, 1]",
    );
    let weight = (eta + powf(1.0 - likelihood[i], gamma)) / (eta + 1.0);
    weight * (logsumexp(classes, |k| z[i][k]) - z[i][y[i]])
}

/// DatasetEquity's per-sample weight `(η + (1 − p)^γ) / (η + 1)` for a scaled cluster
/// likelihood `p ∈ (0, 1]`; multiply any per-sample loss by it.
///
/// The weight lies in `[η/(η+1), 1]`, does not increase with `p` (for γ > 0), is 1 for
/// every `p` when γ = 0, and tends to 1 for every `p` as η grows. [`DatasetEquity`] is
/// softmax cross-entropy weighted by it.
///
/// # Errors
/// [`LossError::InvalidHyper`] for `p` outside `(0, 1]` (or NaN), or a negative or
/// non-finite η or γ.
///
/// ```
/// use loss_runtime::dataset_equity_weight;
/// assert_eq!(dataset_equity_weight(1.0, 1.0, 5.0)?, 0.5);
/// assert_eq!(dataset_equity_weight(0.3, 1.0, 0.0)?, 1.0);
/// assert!(dataset_equity_weight(0.0, 1.0, 5.0).is_err());
/// # Ok::<(), loss_runtime::LossError>(())
/// ```
pub fn dataset_equity_weight(p: f64, eta: f64, gamma: f64) -> Result<f64, LossError> {
    let refuse = |name, value, constraint| LossError::InvalidHyper {
        loss: "dataset_equity_weight",
        name,
        value,
        constraint,
    };
    if !(p > 0.0 && p <= 1.0) {
        return Err(refuse("p", p, "in (0, 1]"));
    }
    if !(eta >= 0.0 && eta.is_finite()) {
        return Err(refuse("eta", eta, ">= 0 and finite"));
    }
    if !(gamma >= 0.0 && gamma.is_finite()) {
        return Err(refuse("gamma", gamma, ">= 0 and finite"));
    }
    Ok((eta + (1.0 - p).powf(gamma)) / (eta + 1.0))
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use super::*;
    use crate::check::{gradient_of, Tolerance};
    use crate::testing::*;
    use crate::{Loss, SoftmaxCrossEntropy};

    type Matrix = Tensor<(usize, usize), f64, Cpu>;

    fn tensor(z: &[f64], c: usize) -> Matrix {
        let dev: Cpu = Default::default();
        dev.tensor_from_vec(z.to_vec(), (z.len() / c, c))
    }

    /// The weighted cross-entropy with plain loops, the weight written out.
    fn naive(z: &[f64], c: usize, y: &[usize], p: &[f64], eta: f64, gamma: f64) -> f64 {
        let n = y.len();
        let mut total = 0.0;
        for i in 0..n {
            let row = &z[i * c..(i + 1) * c];
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
            let ce = m + s.ln() - row[y[i]];
            let w = (eta + (1.0 - p[i]).powf(gamma)) / (eta + 1.0);
            total += w * ce;
        }
        total / n as f64
    }

    fn likelihoods(rng: &mut Rng, n: usize) -> Vec<f64> {
        let mut p: Vec<f64> = (0..n).map(|_| rng.range(0.01, 1.0)).collect();
        p[0] = 1.0;
        p
    }

    fn value<E: Dtype + crate::Real>(
        loss: &DatasetEquity,
        z: &[f64],
        c: usize,
        y: &[usize],
        p: &[f64],
    ) -> Result<f64, LossError> {
        let dev: Cpu = Default::default();
        let z: Vec<E> = to_e(z);
        let p: Vec<E> = to_e(p);
        let zt = dev.tensor_from_vec(z, (y.len(), c));
        let out = loss.try_forward((zt, &p[..]), y)?;
        Ok(out.array().to_f64())
    }

    const SETTINGS: [(f64, f64); 5] = [(1.0, 5.0), (0.5, 5.0), (1.0, 0.0), (0.0, 2.0), (3.0, 1.5)];

    #[test]
    fn value_matches_a_naive_loop() {
        let mut rng = Rng::new(1401);
        for (n, c, scale) in [(1, 2, 1.0), (5, 3, 3.0), (9, 6, 8.0)] {
            let (z, y) = random_logits(&mut rng, n, c, scale);
            let p = likelihoods(&mut rng, n);
            for (eta, gamma) in SETTINGS {
                let loss = DatasetEquity::new().with_eta(eta).with_gamma(gamma);
                let got = value::<f64>(&loss, &z, c, &y, &p).unwrap();
                let want = naive(&z, c, &y, &p, eta, gamma);
                assert_close(got, want, 1e-12, 1e-15, &format!("η={eta} γ={gamma}"));
            }
        }
    }

    /// γ = 0 is plain cross-entropy; so is a very large η.
    #[test]
    fn reduces_to_cross_entropy() {
        let mut rng = Rng::new(1402);
        let (n, c) = (6, 4);
        let (z, y) = random_logits(&mut rng, n, c, 3.0);
        let p = likelihoods(&mut rng, n);
        let ce = logits_value::<f64, _>(&SoftmaxCrossEntropy::new(), &z, c, &y).unwrap();
        let plain = DatasetEquity::new().with_gamma(0.0);
        assert_close(
            value::<f64>(&plain, &z, c, &y, &p).unwrap(),
            ce,
            1e-14,
            0.0,
            "γ = 0",
        );
        let flat = DatasetEquity::new().with_eta(1e12);
        assert_close(
            value::<f64>(&flat, &z, c, &y, &p).unwrap(),
            ce,
            1e-10,
            0.0,
            "η → ∞",
        );
    }

    /// The weight's range, ends and monotonicity, as the paper states them.
    #[test]
    fn weight_range_and_monotonicity() {
        for (eta, gamma) in SETTINGS {
            let at = |p| dataset_equity_weight(p, eta, gamma).unwrap();
            let floor = eta / (eta + 1.0);
            assert_close(
                at(1.0),
                if gamma == 0.0 { 1.0 } else { floor },
                1e-15,
                0.0,
                "p = 1",
            );
            assert_close(at(1e-12), 1.0, 1e-10, 0.0, "p → 0");
            let mut last = f64::INFINITY;
            for k in 1..=100 {
                let w = at(k as f64 / 100.0);
                assert!(
                    w <= last && w >= floor - 1e-15 && w <= 1.0,
                    "η={eta} γ={gamma}"
                );
                last = w;
            }
        }
        for bad in [0.0, -0.1, 1.0 + 1e-12, f64::NAN] {
            assert!(dataset_equity_weight(bad, 1.0, 5.0).is_err(), "p = {bad}");
        }
        assert!(dataset_equity_weight(0.5, -1.0, 5.0).is_err());
        assert!(dataset_equity_weight(0.5, 1.0, f64::INFINITY).is_err());
    }

    #[test]
    fn gradient_matches_finite_differences_and_the_weighted_ce_gradient() {
        let mut rng = Rng::new(1403);
        for (n, c) in [(1, 2), (4, 3), (6, 5)] {
            let (z, y) = random_logits(&mut rng, n, c, 3.0);
            let p = likelihoods(&mut rng, n);
            for (eta, gamma) in SETTINGS {
                let loss = DatasetEquity::new().with_eta(eta).with_gamma(gamma);
                let report = gradient_of(
                    |x| loss.try_forward((x, &p[..]), &y[..]),
                    &tensor(&z, c),
                    Tolerance::default(),
                )
                .unwrap();
                assert!(report.passed() && report.kinks == 0, "{report}");
                // the doc: wᵢ times the cross-entropy gradient
                let x = tensor(&z, c);
                let g = loss
                    .forward((x.leaky_trace(), &p[..]), &y[..])
                    .backward()
                    .get(&x)
                    .as_vec();
                let (_, ce) =
                    logits_value_and_grad::<f64, _>(&SoftmaxCrossEntropy::new(), &z, c, &y);
                for (i, &pi) in p.iter().enumerate() {
                    let w = dataset_equity_weight(pi, eta, gamma).unwrap();
                    for k in 0..c {
                        let j = i * c + k;
                        assert_close(g[j], w * ce[j], 1e-12, 1e-16, &format!("[{i}][{k}]"));
                    }
                }
            }
        }
    }

    #[test]
    fn f32_agrees_with_f64() {
        let mut rng = Rng::new(1404);
        for (n, c) in [(2, 3), (8, 10)] {
            let (z, y) = random_logits(&mut rng, n, c, 4.0);
            let p = likelihoods(&mut rng, n);
            for (eta, gamma) in SETTINGS {
                let loss = DatasetEquity::new().with_eta(eta).with_gamma(gamma);
                let v64 = value::<f64>(&loss, &z, c, &y, &p).unwrap();
                let v32 = value::<f32>(&loss, &z, c, &y, &p).unwrap();
                assert_close(v32, v64, 1e-5, 1e-6, &format!("η={eta} γ={gamma}"));
            }
        }
    }

    /// Shuffling the samples (logits, labels and likelihoods together) changes nothing;
    /// adding a constant to a row of logits changes nothing.
    #[test]
    fn permutation_and_shift_invariance() {
        let mut rng = Rng::new(1405);
        let (n, c) = (7, 4);
        let (z, y) = random_logits(&mut rng, n, c, 3.0);
        let p = likelihoods(&mut rng, n);
        let loss = DatasetEquity::new();
        let base = value::<f64>(&loss, &z, c, &y, &p).unwrap();
        let order = rng.permutation(n);
        let zs: Vec<f64> = order
            .iter()
            .flat_map(|&i| z[i * c..(i + 1) * c].to_vec())
            .collect();
        let ys: Vec<usize> = order.iter().map(|&i| y[i]).collect();
        let ps: Vec<f64> = order.iter().map(|&i| p[i]).collect();
        assert_close(
            value::<f64>(&loss, &zs, c, &ys, &ps).unwrap(),
            base,
            1e-13,
            0.0,
            "permuted",
        );
        let shifted: Vec<f64> = z
            .iter()
            .enumerate()
            .map(|(j, v)| v + (j / c) as f64 * 5.0)
            .collect();
        assert_close(
            value::<f64>(&loss, &shifted, c, &y, &p).unwrap(),
            base,
            1e-12,
            0.0,
            "shifted",
        );
    }

    #[test]
    fn bad_likelihoods_are_refused() {
        let mut rng = Rng::new(1406);
        let (n, c) = (4, 3);
        let (z, y) = random_logits(&mut rng, n, c, 1.0);
        let loss = DatasetEquity::new();
        for bad in [0.0, -0.5, 1.5] {
            let p = [0.5, 1.0, bad, 0.2];
            let err = value::<f64>(&loss, &z, c, &y, &p).unwrap_err();
            assert!(
                matches!(
                    err,
                    LossError::Requirement {
                        sample: Some(2),
                        ..
                    }
                ),
                "p = {bad}: {err:?}"
            );
        }
        let err = value::<f64>(&loss, &z, c, &y, &[0.5, f64::NAN, 1.0, 1.0]).unwrap_err();
        assert!(
            matches!(
                err,
                LossError::NonFinite {
                    input: "likelihood",
                    ..
                }
            ),
            "{err:?}"
        );
        let err = value::<f64>(&loss, &z, c, &y, &[0.5; 3]).unwrap_err();
        assert!(
            matches!(
                err,
                LossError::AxisMismatch {
                    axis: "samples",
                    found_in: "likelihood",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
