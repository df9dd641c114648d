//! DEXML soft top-k (Gupta et al., ICLR 2024): the log-probability that each relevant
//! document lies in a differentiable top-K set.

use crate::loss;

/// DEXML soft top-k: maximise the log-probability that each positive is among a soft
/// top-K of its query's scores.
///
/// ```text
/// t_i   solves Σ_d σ(α·(s_id + t_i)) = K        (bisection in the runtime core, no gradient)
/// z_id  = α·(s_id + t̃_i)
/// L     = (1/Q) Σ_i (1/|P_i|) Σ_{d ∈ P_i} −ln σ(z_id)        P_i = relevant(i)
///
/// t̃_i  = t_i − Σ_d w_id·(s_id − detach(s_id)),   w_id = detach(v_id / Σ_m v_im),
/// v_id  = σ(α(s_id + t_i))·σ(−α(s_id + t_i))
/// ```
///
/// The weights are computed as a softmax of `ln v_id = −softplus(−z) − softplus(z)`, so
/// they stay a distribution where every `v_id` underflows (scores far from the threshold,
/// in units of `1/α`): the limit of `v_id / Σ_m v_im`, not `0/0`. With the bisection's
/// precision relative to `1/α` (see [`topk_threshold`](crate::core::foreign::topk_threshold)),
/// value and gradient are finite over the whole finite range of the scores, and invariant
/// under `s → c·s, α → α/c` (the gradient scaling by `1/c`) and under a shift of a row.
///
/// `t̃_i` equals `t_i` (the added term is identically zero), but its derived gradient is
/// the implicit-function one, `∂t_i/∂s_id = −v_id / Σ_m v_im`; so the compiler's chain rule
/// gives exactly the official custom backward `∂L/∂s_ik = u_ik − v_ik·Σ_m u_im / Σ_m v_im`.
/// `−ln σ(z)` is computed as `softplus(−z)`.
///
/// **Defaults** (the official configs): K = 5, α = 2, 32 bisection iterations. A root
/// exists only for `0 < K < D` (the number of documents); with `K ≥ D` the bisection
/// only reaches the end of its bracket, where the implicit gradient does not hold, so such
/// a batch is refused (`LossError::Requirement`). The official code never meets this case
/// (its K is far below the number of labels). Queries without a relevant document contribute 0 but
/// count in the mean (the official sampler fails on them; the scores family only refuses a
/// mask with no relevant entry at all).
///
/// **Reference:** Gupta, Khatri, Rawat, Bhojanapalli, Jain, Dhillon. *Dual-Encoders for
/// Extreme Multi-Label Classification.* ICLR 2024. **Official code:** `nilesh2797/DEXML`,
/// `utils/topk_utils.py` (`DistLogTopK`, `_dist_find_ts`) and `losses.py` (`'topk'`).
/// Differences: positive sampling and the per-row `K = 'num_pos'` option are left to the
/// caller (pass the relevance mask of the sampled positives); the official code's
/// "last label never positive" quirk is not reproduced.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let s: Tensor<Rank2<2, 4>, f64, _> = dev.tensor([[2.0, 0.5, -1.0, 0.3], [0.1, 0.2, 1.5, -0.4]]);
/// let r: Tensor<Rank2<2, 4>, f64, _> = dev.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]);
/// let loss = DexmlSoftTopk::default().with_k(2.0).forward(s.leaky_trace(), &r);
/// assert!(loss.array() > 0.0);
/// let grads = loss.backward();
/// ```
#[loss(scores, paper = "DEXML (Gupta et al., ICLR 2024)")]
pub fn dexml_soft_topk(
    s: Scores,
    r: Relevance,
    #[hyper(default = 5.0, positive, doc = "K: the size of the soft top-k set")] k: f64,
    #[hyper(default = 2.0, positive, doc = "α: the sharpness of the soft top-k")] alpha: f64,
    #[hyper(default = 32.0, range(1.0, 200.0), doc = "bisection iterations")] iterations: f64,
) -> PerQuery {
    require(
        k < len(docs),
        "K must be smaller than the number of documents: the soft top-K threshold has no root otherwise",
    );
    let t = detach(topk_threshold(docs, |d| s[i][d], k, alpha, iterations));
    // ln v_id = ln σ(z) + ln σ(−z) = −softplus(−z) − softplus(z), z = α(s_id + t):
    // the weights v_id / Σ_m v_im are a softmax of these, never 0/0
    let ln_v_total = detach(logsumexp(docs, |d| {
        -softplus(-alpha * (s[i][d] + t)) - softplus(alpha * (s[i][d] + t))
    }));
    let implicit = sum(docs, |d| {
        detach(exp(-softplus(-alpha * (s[i][d] + t))
            - softplus(alpha * (s[i][d] + t))
            - ln_v_total))
            * (s[i][d] - detach(s[i][d]))
    });
    let t_implicit = t - implicit;
    mean(relevant(i), |d| softplus(-alpha * (s[i][d] + t_implicit)))
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use super::*;
    use crate::core::foreign::topk_threshold;
    use crate::Loss;

    fn sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// Plain loops, following the spec: value, and the official custom backward.
    fn naive(s: &[f64], r: &[f64], q: usize, d: usize, k: f64, alpha: f64) -> (f64, Vec<f64>) {
        let mut loss = 0.0;
        let mut grad = vec![0.0; q * d];
        for i in 0..q {
            let row = &s[i * d..(i + 1) * d];
            let t = topk_threshold(row, k, alpha, 32.0);
            let pos: Vec<usize> = (0..d).filter(|&j| r[i * d + j] == 1.0).collect();
            if pos.is_empty() {
                continue;
            }
            let np = pos.len() as f64;
            let mut u = vec![0.0; d];
            for &j in &pos {
                let z = alpha * (row[j] + t);
                loss += -sigmoid(z).ln() / np / q as f64;
                // g = ∂L/∂log p = −1/(np·q); u = g·α·(1 − σ(z))
                u[j] = -1.0 / (np * q as f64) * alpha * (1.0 - sigmoid(z));
            }
            let v: Vec<f64> = row
                .iter()
                .map(|x| {
                    let z = alpha * (x + t);
                    alpha * sigmoid(z) * (1.0 - sigmoid(z))
                })
                .collect();
            let (su, sv): (f64, f64) = (u.iter().sum(), v.iter().sum());
            for m in 0..d {
                grad[i * d + m] = u[m] - v[m] * su / sv;
            }
        }
        (loss, grad)
    }

    fn case() -> (Vec<f64>, Vec<f64>, usize, usize) {
        let (q, d) = (3, 7);
        let s: Vec<f64> = (0..q * d)
            .map(|n| ((n * 37 % 23) as f64 / 23.0 - 0.5) * 3.0)
            .collect();
        let mut r = vec![0.0; q * d];
        r[1] = 1.0;
        r[4] = 1.0;
        r[d + 6] = 1.0;
        r[2 * d] = 1.0;
        r[2 * d + 3] = 1.0;
        r[2 * d + 5] = 1.0;
        (s, r, q, d)
    }

    /// With `K ≥ D` the threshold has no root and the implicit gradient is wrong (the
    /// finite difference of the value is 0 there): refused, whatever the scores.
    #[test]
    fn k_not_below_the_number_of_documents_is_refused() {
        let dev: Cpu = Default::default();
        let s: Tensor<Rank2<1, 2>, f64, _> = dev.tensor([[-0.63, 0.0]]);
        let r: Tensor<Rank2<1, 2>, f64, _> = dev.tensor([[1.0, 0.0]]);
        for k in [2.0, 5.0] {
            let err = DexmlSoftTopk::default()
                .with_k(k)
                .try_forward(s.clone(), &r)
                .expect_err("K ≥ D is refused");
            assert!(
                matches!(
                    err,
                    crate::LossError::Requirement {
                        loss: "dexml_soft_topk",
                        ..
                    }
                ),
                "{err:?}"
            );
            assert!(err.to_string().contains("K must be smaller"), "{err}");
        }
        assert!(DexmlSoftTopk::default()
            .with_k(1.5)
            .try_forward(s, &r)
            .is_ok());
    }

    #[test]
    fn value_and_gradient_match_the_official_custom_backward() {
        let dev: Cpu = Default::default();
        let (s, r, q, d) = case();
        for (k, alpha) in [(2.0, 2.0), (3.0, 0.7), (1.5, 5.0)] {
            let loss = DexmlSoftTopk::default().with_k(k).with_alpha(alpha);
            let st = dev.tensor_from_vec(s.clone(), (q, d));
            let rt = dev.tensor_from_vec(r.clone(), (q, d));
            let out = loss.forward(st.leaky_trace(), &rt);
            let value = out.array();
            let grad = out.backward().get(&st).as_vec();
            let (nv, ng) = naive(&s, &r, q, d, k, alpha);
            approx::assert_abs_diff_eq!(value, nv, epsilon = 1e-12);
            for (a, b) in grad.iter().zip(&ng) {
                approx::assert_abs_diff_eq!(a, b, epsilon = 1e-12);
            }
        }
    }

    #[test]
    fn implicit_gradient_matches_finite_differences_through_the_bisection() {
        let dev: Cpu = Default::default();
        let (s, r, q, d) = case();
        let loss = DexmlSoftTopk::default().with_k(2.0).with_iterations(120.0);
        let rt = dev.tensor_from_vec(r.clone(), (q, d));
        let st = dev.tensor_from_vec(s.clone(), (q, d));
        let grad = loss
            .forward(st.leaky_trace(), &rt)
            .backward()
            .get(&st)
            .as_vec();
        let value = |v: &Vec<f64>| {
            loss.forward(dev.tensor_from_vec(v.clone(), (q, d)), &rt)
                .array()
        };
        for j in 0..s.len() {
            let h = 1e-5;
            let (mut a, mut b) = (s.clone(), s.clone());
            a[j] += h;
            b[j] -= h;
            let fd = (value(&a) - value(&b)) / (2.0 * h);
            approx::assert_abs_diff_eq!(grad[j], fd, epsilon = 1e-7);
        }
    }

    #[test]
    fn row_shift_leaves_value_unchanged_and_gradient_rows_sum_to_zero() {
        let dev: Cpu = Default::default();
        let (s, r, q, d) = case();
        let loss = DexmlSoftTopk::default().with_k(2.0).with_iterations(100.0);
        let rt = dev.tensor_from_vec(r.clone(), (q, d));
        let st = dev.tensor_from_vec(s.clone(), (q, d));
        let out = loss.forward(st.leaky_trace(), &rt);
        let base = out.array();
        let grad = out.backward().get(&st).as_vec();
        for i in 0..q {
            let row_sum: f64 = grad[i * d..(i + 1) * d].iter().sum();
            approx::assert_abs_diff_eq!(row_sum, 0.0, epsilon = 1e-12);
        }
        let shifted: Vec<f64> = s
            .iter()
            .enumerate()
            .map(|(n, x)| x + (n / d) as f64 * 1.7)
            .collect();
        let moved = loss
            .forward(dev.tensor_from_vec(shifted, (q, d)), &rt)
            .array();
        approx::assert_abs_diff_eq!(base, moved, epsilon = 1e-9);
    }

    /// The threshold with an f64 bisection run until no float lies inside its bracket.
    fn precise_threshold(row: &[f64], k: f64, alpha: f64) -> f64 {
        let (lo_x, hi_x) = row
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), &x| (l.min(x), h.max(x)));
        let (mut lo, mut hi) = (-hi_x - 50.0 / alpha, -lo_x + 50.0 / alpha);
        for _ in 0..5000 {
            let mid = 0.5 * lo + 0.5 * hi;
            if !(mid > lo && mid < hi) {
                break;
            }
            let total: f64 = row.iter().map(|x| sigmoid(alpha * (x + mid))).sum();
            if total < k {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * lo + 0.5 * hi
    }

    /// The spec in plain f64 loops with a precise threshold; the implicit weights
    /// `v / Σv` taken as their limit (a softmax of `ln v`) where every `v` underflows.
    fn reference(s: &[f64], r: &[f64], q: usize, d: usize, k: f64, alpha: f64) -> (f64, Vec<f64>) {
        let ln_sigmoid = |z: f64| -> f64 { -((-z).max(0.0) + (-z.abs()).exp().ln_1p()) };
        let mut loss = 0.0;
        let mut grad = vec![0.0; q * d];
        for i in 0..q {
            let row = &s[i * d..(i + 1) * d];
            let t = precise_threshold(row, k, alpha);
            let pos: Vec<usize> = (0..d).filter(|&j| r[i * d + j] == 1.0).collect();
            if pos.is_empty() {
                continue;
            }
            let np = pos.len() as f64;
            let mut u = vec![0.0; d];
            for &j in &pos {
                let z = alpha * (row[j] + t);
                loss += -ln_sigmoid(z) / np / q as f64;
                u[j] = -1.0 / (np * q as f64) * alpha * (1.0 - sigmoid(z));
            }
            let ln_v: Vec<f64> = row
                .iter()
                .map(|x| {
                    let z = alpha * (x + t);
                    ln_sigmoid(z) + ln_sigmoid(-z)
                })
                .collect();
            let top = ln_v.iter().copied().fold(f64::MIN, f64::max);
            let total: f64 = ln_v.iter().map(|l| (l - top).exp()).sum();
            let su: f64 = u.iter().sum();
            for m in 0..d {
                grad[i * d + m] = u[m] - (ln_v[m] - top).exp() / total * su;
            }
        }
        (loss, grad)
    }

    fn run<E: Dtype + crate::Real>(
        loss: &DexmlSoftTopk,
        s: &[f64],
        r: &[f64],
        q: usize,
        d: usize,
    ) -> (f64, Vec<f64>)
    where
        Cpu: Device<E>,
    {
        let dev: Cpu = Default::default();
        let to = |v: &[f64]| v.iter().map(|&x| <E as crate::Real>::from_f64(x)).collect();
        let st: Tensor<(usize, usize), E, Cpu> = dev.tensor_from_vec(to(s), (q, d));
        let rt = dev.tensor_from_vec(to(r), (q, d));
        let out = loss
            .try_forward(st.leaky_trace(), &rt)
            .unwrap_or_else(|e| panic!("{e}"));
        let value = crate::Real::to_f64(out.array());
        let grad = out.backward().get(&st).as_vec();
        (value, grad.into_iter().map(crate::Real::to_f64).collect())
    }

    /// `s → c·s, α → α/c` leaves every `α(s + t)` unchanged: the same value, and the
    /// gradient times `1/c`, for c from 1e-3 to 1e30, in f32 and f64.
    #[test]
    fn scale_invariance_from_1e_minus_3_to_1e30() {
        let (s, r, q, d) = case();
        let (k, alpha) = (2.0, 2.0);
        let (v0, g0) = run::<f64>(&DexmlSoftTopk::default().with_k(k), &s, &r, q, d);
        let (rv, rg) = reference(&s, &r, q, d, k, alpha);
        approx::assert_abs_diff_eq!(v0, rv, epsilon = 1e-9);
        for (a, b) in g0.iter().zip(&rg) {
            approx::assert_abs_diff_eq!(a, b, epsilon = 1e-9);
        }
        for c in [1e-3, 0.1, 1e3, 1e11, 1e12, 1e14, 1e20, 1e25, 1e30] {
            let loss = DexmlSoftTopk::default().with_k(k).with_alpha(alpha / c);
            let scaled: Vec<f64> = s.iter().map(|x| x * c).collect();
            for (v, g, tol) in [
                {
                    let (v, g) = run::<f64>(&loss, &scaled, &r, q, d);
                    (v, g, 1e-9)
                },
                {
                    let (v, g) = run::<f32>(&loss, &scaled, &r, q, d);
                    (v, g, 2e-4)
                },
            ] {
                assert!((v - v0).abs() < tol, "c = {c}: {v} vs {v0}");
                for (j, (a, b)) in g.iter().zip(&g0).enumerate() {
                    assert!(
                        (a * c - b).abs() < 10.0 * tol,
                        "c = {c}, grad[{j}]: {} vs {b}",
                        a * c
                    );
                }
            }
        }
    }

    /// One score far above (or below) the rest of its row (1e12 in f32 and 1e14 in f64 gave NaN,
    /// and the threshold drifted from 1e11): value and gradient equal the f64
    /// reference, computed on the same (rounded) scores.
    #[test]
    fn a_far_outlier_score_matches_the_reference() {
        let (q, d) = (2, 6);
        let mut r = vec![0.0; q * d];
        r[0] = 1.0;
        r[2] = 1.0;
        r[d + 1] = 1.0;
        for big in [1e3, 1e11, 1e12, 1e14, 1e20, 1e30] {
            let s = vec![
                big, 0.4, -0.2, 0.1, 0.7, -1.3, //
                0.3, -big, 1.1, 0.2, -0.5, 0.0,
            ];
            let loss = DexmlSoftTopk::default().with_k(2.0);
            let s32: Vec<f64> = s.iter().map(|&x| f64::from(x as f32)).collect();
            for (precision, (v, g), (rv, rg)) in [
                (
                    "f64",
                    run::<f64>(&loss, &s, &r, q, d),
                    reference(&s, &r, q, d, 2.0, 2.0),
                ),
                (
                    "f32",
                    run::<f32>(&loss, &s32, &r, q, d),
                    reference(&s32, &r, q, d, 2.0, 2.0),
                ),
            ] {
                let tol = if precision == "f64" { 1e-9 } else { 1e-5 };
                assert!(
                    v.is_finite() && g.iter().all(|x| x.is_finite()),
                    "{precision} {big}"
                );
                assert!(
                    (v - rv).abs() < tol * (1.0 + rv.abs()),
                    "{precision} {big}: {v} vs {rv}"
                );
                for (j, (a, b)) in g.iter().zip(&rg).enumerate() {
                    assert!(
                        (a - b).abs() < tol * (1.0 + b.abs()),
                        "{precision} {big}, grad[{j}]: {a} vs {b}"
                    );
                }
            }
        }
    }
}
