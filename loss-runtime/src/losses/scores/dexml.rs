//! DEXML's decoupled softmax (Gupta et al., ICLR 2024), a multi-positive InfoNCE whose
//! denominator leaves out the query's other positives, and the official code's two
//! baselines: the multi-label softmax and BCE.
//!
//! All three take the **scaled** score matrix `s = ⟨x, y⟩ / τ` (queries × labels): the
//! temperature is applied by the caller, as in the official code, where the loss receives
//! `sim` already divided by τ (τ = 0.05 with normalised embeddings in the official configs,
//! τ = 1 for LF-Wikipedia-500K). The soft top-k criterion of the same paper is
//! [`DexmlSoftTopk`](crate::DexmlSoftTopk).
//!
//! **Positive sampling** (the official `loss_sample = true`) is done by the caller, who
//! draws the positives of each row and passes the mask of the *sampled* positives as the
//! relevance:
//! - for [`DexmlSoftmax`], that is all: the non-sampled positives stay in its denominator,
//!   as in the official code;
//! - for [`DexmlDecoupledSoftmax`] the official code also removes the non-sampled positives
//!   from the denominator, by overwriting their scores with −100. A 0/1 mask cannot say
//!   "positive but not sampled", so the caller does the same overwrite on `s` before the
//!   loss (see the example there); the result then equals the official loss exactly.

use crate::loss;

/// DEXML decoupled softmax: for each positive, a softmax over that positive and the row's
/// negatives only, so a query's positives do not compete with each other.
///
/// ```text
/// P_i  = relevant(i),  N_i = irrelevant(i)
/// ℓ_ij = −s_ij + ln( e^{s_ij} + Σ_{k ∈ N_i} e^{s_ik} )      j ∈ P_i
///      = softplus( logsumexp_{k ∈ N_i} s_ik − s_ij )
/// L    = (1/Q) Σ_i (1/|P_i|) Σ_{j ∈ P_i} ℓ_ij
/// ```
///
/// The row's other positives are left out of the denominator exactly (the official code
/// writes −100 there instead, an effect below e^{−100}). `logsumexp` is max-shifted and
/// `ln(1 + e^x)` is a stable `softplus`, so scores of any magnitude are safe; the loss is
/// smooth. Its derived gradient is `−(1 − p_ij)` on a positive and the softmax weight of a
/// negative in each of its row's terms, each divided by `Q·|P_i|`, where `p_ij` is the
/// softmax probability of `j` among `{j} ∪ N_i`; per row, the gradient sums to 0.
///
/// **Conventions.** A row with no negative has `ℓ_ij = 0` (the denominator is the positive
/// alone). A row with no positive contributes 0 and still counts in `Q`, as in the official
/// code without sampling (which divides by the batch size; its sampler fails on such rows);
/// the scores family only refuses a mask with no relevant entry at all. With exactly one
/// positive per row this is the ordinary softmax cross-entropy, like [`DexmlSoftmax`].
///
/// **Reference:** Gupta, Khatri, Rawat, Bhojanapalli, Jain, Dhillon. *Dual-Encoders for
/// Extreme Multi-Label Classification.* ICLR 2024. **Official code:** `nilesh2797/DEXML`,
/// `losses.py::SimLoss.compute_loss` (`'decoupled-softmax'`). Differences, and why:
/// - positive sampling is the caller's, through the relevance mask (above and in the
///   example below); with sampling off the official value is reproduced as is;
/// - the scores are already divided by τ (the loss has no hyper-parameter);
/// - `loss_weighted` (ℓ_ij times the relevance weight) is not offered: relevance is 0/1;
/// - the official code never recognises the last label column as a positive (a strict
///   `<` in `filter_non_local_yinds`, a bug); the mask is used as given here. To reproduce
///   it, zero the last column of the relevance: the label then acts as a negative, which
///   is exactly the official behaviour.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// // scaled scores ⟨x, y⟩/τ of 2 queries × 4 labels; query 0 has labels 0 and 2
/// let s: Tensor<Rank2<2, 4>, f64, _> = dev.tensor([[3.0, 0.5, 2.0, -1.0], [0.1, 2.5, 0.2, 0.0]]);
/// let all: Tensor<Rank2<2, 4>, f64, _> = dev.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0]]);
/// let loss = DexmlDecoupledSoftmax::default().forward(s.leaky_trace(), &all);
/// let grads = loss.backward();
///
/// // the official sampling: label 0 drawn for query 0, so label 2 (a positive not drawn)
/// // is overwritten with −100 before the loss, and only label 0 is passed as relevant
/// let sampled: Tensor<Rank2<2, 4>, f64, _> = dev.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]);
/// let not_drawn = all.clone() - sampled.clone(); // 1 on the positives not drawn
/// let keep = dev.ones() - not_drawn.clone();
/// let masked = s.leaky_trace() * keep + not_drawn * -100.0;
/// let loss = DexmlDecoupledSoftmax::default().forward(masked, &sampled);
/// // = the mean of −ln softmax over {positive} ∪ negatives, per query
/// let want = ((3.0f64.exp() + 0.5f64.exp() + (-1.0f64).exp()).ln() - 3.0
///     + ((0.1f64.exp() + 2.5f64.exp() + 0.2f64.exp() + 1.0).ln() - 2.5)) / 2.0;
/// assert!((loss.array() - want).abs() < 1e-12);
/// ```
#[loss(scores, paper = "DEXML (Gupta et al., ICLR 2024)")]
pub fn dexml_decoupled_softmax(s: Scores, r: Relevance) -> PerQuery {
    let negatives = logsumexp(irrelevant(i), |k| s[i][k]);
    mean(relevant(i), |j| softplus(negatives - s[i][j]))
}

/// DEXML's multi-label softmax baseline: the negative log-softmax of every positive over
/// the whole row, positives included, summed over the row's positives.
///
/// ```text
/// L = (1/Q) Σ_i Σ_{j ∈ relevant(i)} ( logsumexp_k s_ik − s_ij )      (k over all D columns)
/// ```
///
/// Unlike [`DexmlDecoupledSoftmax`] there is no `1/|P_i|` and the other positives stay in
/// the denominator, so a query's positives compete with one another. `logsumexp` is
/// max-shifted; the loss is smooth. A row with no positive contributes 0 and counts in `Q`
/// (the official code divides by the batch size). With one positive per row this is the
/// ordinary softmax cross-entropy ([`SoftmaxCrossEntropy`](crate::SoftmaxCrossEntropy)).
///
/// **Reference:** Gupta et al., *Dual-Encoders for Extreme Multi-Label Classification*,
/// ICLR 2024. **Official code:** `nilesh2797/DEXML`, `losses.py::SimLoss.compute_loss`
/// (`'softmax'`). Differences: the scores are already divided by τ; positive sampling is
/// the caller's (pass the mask of the sampled positives; nothing else to do, the
/// non-sampled positives stay in the denominator as in the official code); no
/// `loss_weighted`; the last-label quirk is not reproduced (zero the last relevance column
/// to reproduce it).
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let s: Tensor<Rank2<2, 3>, f64, _> = dev.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]]);
/// let r: Tensor<Rank2<2, 3>, f64, _> = dev.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]);
/// let loss = DexmlSoftmax::default().forward(s.leaky_trace(), &r);
/// // one positive per row: softmax cross-entropy with labels [0, 2]
/// let ce = SoftmaxCrossEntropy::default().forward(s.clone(), &[0, 2]);
/// assert!((loss.array() - ce.array()).abs() < 1e-12);
/// let grads = loss.backward();
/// ```
#[loss(scores, paper = "DEXML (Gupta et al., ICLR 2024)")]
pub fn dexml_softmax(s: Scores, r: Relevance) -> PerQuery {
    let all = logsumexp(docs, |k| s[i][k]);
    sum(relevant(i), |j| all - s[i][j])
}

/// DEXML's BCE baseline: the mean binary cross-entropy with logits over every entry of the
/// score matrix, with target 1 on the relevant entries.
///
/// ```text
/// L = (1/(Q·D)) Σ_{i,k} [ softplus(s_ik) − r_ik·s_ik ]
///   = (1/(Q·D)) [ Σ_{r_ik = 1} softplus(−s_ik) + Σ_{r_ik = 0} softplus(s_ik) ]
/// ```
///
/// Each entry is computed in the second form, which is exact for any score (the first
/// form cancels for large relevant scores). Smooth; rows without positives contribute
/// their negatives as usual.
///
/// **Reference:** Gupta et al., *Dual-Encoders for Extreme Multi-Label Classification*,
/// ICLR 2024. **Official code:** `nilesh2797/DEXML`, `losses.py::SimLoss.compute_loss`
/// (`'bce'`). Differences: the scores are already divided by τ; the official divides by
/// `Q·numy` (all labels), here by `Q·D` (the columns passed), the same when all labels
/// are scored; the last-label quirk is not reproduced.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let s: Tensor<Rank2<2, 3>, f64, _> = dev.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]]);
/// let r: Tensor<Rank2<2, 3>, f64, _> = dev.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]);
/// let loss = DexmlBce::default().forward(s.leaky_trace(), &r);
/// let bce = dfdx::losses::binary_cross_entropy_with_logits_loss(s.clone(), r.clone());
/// assert!((loss.array() - bce.array()).abs() < 1e-12);
/// let grads = loss.backward();
/// ```
#[loss(scores, paper = "DEXML (Gupta et al., ICLR 2024)")]
pub fn dexml_bce(s: Scores, r: Relevance) -> PerQuery {
    mean(docs, |k| {
        select(r[i][k] > 0.5, softplus(-s[i][k]), softplus(s[i][k]))
    })
}

#[cfg(test)]
mod tests {
    use dfdx::losses::binary_cross_entropy_with_logits_loss;
    use dfdx::prelude::*;

    use super::*;
    use crate::testing::{assert_close, Rng};
    use crate::{Loss, SoftmaxCrossEntropy};

    type Matrix<T = NoneTape> = Tensor<(usize, usize), f64, Cpu, T>;
    type Owned = OwnedTape<f64, Cpu>;

    /// A scores-family loss in f64, with and without a tape.
    trait ScoresLoss:
        Loss<Matrix, Matrix, Output = Tensor<(), f64, Cpu>>
        + Loss<Matrix<Owned>, Matrix, Output = Tensor<(), f64, Cpu, Owned>>
    {
    }
    impl<L> ScoresLoss for L where
        L: Loss<Matrix, Matrix, Output = Tensor<(), f64, Cpu>>
            + Loss<Matrix<Owned>, Matrix, Output = Tensor<(), f64, Cpu, Owned>>
    {
    }

    fn value<L: ScoresLoss>(loss: &L, s: &[f64], r: &[f64], d: usize) -> f64 {
        let dev: Cpu = Default::default();
        let st: Matrix = dev.tensor_from_vec(s.to_vec(), (s.len() / d, d));
        let rt: Matrix = dev.tensor_from_vec(r.to_vec(), (s.len() / d, d));
        loss.forward(st, &rt).array()
    }

    fn value_and_grad<L: ScoresLoss>(loss: &L, s: &[f64], r: &[f64], d: usize) -> (f64, Vec<f64>) {
        let dev: Cpu = Default::default();
        let st: Matrix = dev.tensor_from_vec(s.to_vec(), (s.len() / d, d));
        let rt: Matrix = dev.tensor_from_vec(r.to_vec(), (s.len() / d, d));
        let out = loss.forward(st.leaky_trace(), &rt);
        let v = out.array();
        (v, out.backward().get(&st).as_vec())
    }

    fn softplus(x: f64) -> f64 {
        x.max(0.0) + (-x.abs()).exp().ln_1p()
    }

    fn lse(xs: impl Iterator<Item = f64> + Clone) -> f64 {
        let m = xs.clone().fold(f64::NEG_INFINITY, f64::max);
        if m == f64::NEG_INFINITY {
            return m;
        }
        m + xs.map(|x| (x - m).exp()).sum::<f64>().ln()
    }

    /// Plain loops, following the spec.
    fn naive_decoupled(s: &[f64], r: &[f64], d: usize) -> f64 {
        let q = s.len() / d;
        let mut total = 0.0;
        for i in 0..q {
            let (row, rel) = (&s[i * d..(i + 1) * d], &r[i * d..(i + 1) * d]);
            let pos: Vec<usize> = (0..d).filter(|&j| rel[j] == 1.0).collect();
            let mut row_loss = 0.0;
            for &j in &pos {
                // −s_ij + ln(e^{s_ij} + Σ_{k ∉ P_i} e^{s_ik})
                let denom = lse((0..d).filter(|&k| k == j || rel[k] == 0.0).map(|k| row[k]));
                row_loss += denom - row[j];
            }
            if !pos.is_empty() {
                total += row_loss / pos.len() as f64;
            }
        }
        total / q as f64
    }

    fn naive_softmax(s: &[f64], r: &[f64], d: usize) -> f64 {
        let q = s.len() / d;
        let mut total = 0.0;
        for i in 0..q {
            let row = &s[i * d..(i + 1) * d];
            let all = lse(row.iter().copied());
            for j in 0..d {
                if r[i * d + j] == 1.0 {
                    total += all - row[j];
                }
            }
        }
        total / q as f64
    }

    fn naive_bce(s: &[f64], r: &[f64]) -> f64 {
        // the official form: Σ ln(1 + e^s) − Σ_{positives} s, over Q·D
        let all: f64 = s.iter().map(|&x| softplus(x)).sum();
        let pos: f64 = s.iter().zip(r).map(|(&x, &y)| x * y).sum();
        (all - pos) / s.len() as f64
    }

    /// `q × d` scaled scores in `[−4, 4]`, relevance with ~`density` ones, row 0 with two
    /// positives, row 1 (if any) with none.
    fn case(rng: &mut Rng, q: usize, d: usize, density: f64) -> (Vec<f64>, Vec<f64>) {
        let s = (0..q * d).map(|_| rng.range(-4.0, 4.0)).collect();
        let mut r: Vec<f64> = (0..q * d)
            .map(|_| if rng.uniform() < density { 1.0 } else { 0.0 })
            .collect();
        r[0] = 1.0;
        r[d - 1] = 1.0;
        if q > 1 {
            r[d..2 * d].iter_mut().for_each(|x| *x = 0.0);
        }
        (s, r)
    }

    fn one_per_row(rng: &mut Rng, q: usize, d: usize) -> (Vec<f64>, Vec<f64>, Vec<usize>) {
        let s = (0..q * d).map(|_| rng.range(-4.0, 4.0)).collect();
        let labels: Vec<usize> = (0..q).map(|_| rng.below(d)).collect();
        let mut r = vec![0.0; q * d];
        for (i, &y) in labels.iter().enumerate() {
            r[i * d + y] = 1.0;
        }
        (s, r, labels)
    }

    fn check_fd<L: ScoresLoss>(loss: &L, s: &[f64], r: &[f64], d: usize, what: &str) {
        let (_, g) = value_and_grad(loss, s, r, d);
        for j in 0..s.len() {
            let h = 1e-6;
            let (mut up, mut down) = (s.to_vec(), s.to_vec());
            up[j] += h;
            down[j] -= h;
            let fd = (value(loss, &up, r, d) - value(loss, &down, r, d)) / (2.0 * h);
            assert_close(g[j], fd, 1e-6, 1e-8, &format!("{what}: ∂L/∂s[{j}]"));
        }
    }

    #[test]
    fn values_match_plain_loops() {
        let mut rng = Rng::new(21);
        for (q, d, density) in [
            (1, 1, 1.0),
            (1, 4, 0.5),
            (3, 5, 0.3),
            (4, 8, 0.2),
            (2, 3, 1.0),
        ] {
            let (s, r) = case(&mut rng, q, d, density);
            let what = format!("q={q} d={d} r={r:?}");
            let dc = value(&DexmlDecoupledSoftmax::default(), &s, &r, d);
            assert_close(
                dc,
                naive_decoupled(&s, &r, d),
                1e-12,
                1e-13,
                &format!("decoupled {what}"),
            );
            let sm = value(&DexmlSoftmax::default(), &s, &r, d);
            assert_close(
                sm,
                naive_softmax(&s, &r, d),
                1e-12,
                1e-13,
                &format!("softmax {what}"),
            );
            let bce = value(&DexmlBce::default(), &s, &r, d);
            assert_close(bce, naive_bce(&s, &r), 1e-12, 1e-13, &format!("bce {what}"));
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = Rng::new(22);
        for (q, d) in [(3, 4), (2, 6)] {
            let (s, r) = case(&mut rng, q, d, 0.35);
            check_fd(&DexmlDecoupledSoftmax::default(), &s, &r, d, "decoupled");
            check_fd(&DexmlSoftmax::default(), &s, &r, d, "softmax");
            check_fd(&DexmlBce::default(), &s, &r, d, "bce");
        }
        // a row whose entries are all positive: ℓ = 0, gradient 0, no NaN
        let loss = DexmlDecoupledSoftmax::default();
        let (v, g) = value_and_grad(&loss, &[1.0, -2.0, 0.5, 3.0], &[1.0, 1.0, 0.0, 1.0], 2);
        // row 1: ℓ = softplus(0.5 − 3); mean over Q = 2 rows
        assert_close(
            v,
            softplus(0.5 - 3.0) / 2.0,
            1e-12,
            0.0,
            "all-positive row 0",
        );
        assert_eq!(&g[..2], &[0.0, 0.0]);
        assert!(g.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn one_positive_per_row_is_softmax_cross_entropy() {
        let dev: Cpu = Default::default();
        let mut rng = Rng::new(23);
        for (q, d) in [(1, 3), (4, 6), (7, 2)] {
            let (s, r, labels) = one_per_row(&mut rng, q, d);
            let st: Matrix = dev.tensor_from_vec(s.clone(), (q, d));
            let out = SoftmaxCrossEntropy::default().forward(st.leaky_trace(), labels.as_slice());
            let ce = out.array();
            let ce_grad = out.backward().get(&st).as_vec();
            let (dv, dg) = value_and_grad(&DexmlDecoupledSoftmax::default(), &s, &r, d);
            let (sv, sg) = value_and_grad(&DexmlSoftmax::default(), &s, &r, d);
            assert_close(dv, ce, 1e-12, 1e-14, "decoupled = CE");
            assert_close(sv, ce, 1e-12, 1e-14, "softmax = CE");
            for k in 0..s.len() {
                assert_close(dg[k], ce_grad[k], 1e-10, 1e-14, "decoupled gradient");
                assert_close(sg[k], ce_grad[k], 1e-10, 1e-14, "softmax gradient");
            }
        }
    }

    #[test]
    fn other_positives_do_not_enter_a_positives_term() {
        // row 0: positives {0, 2, 5}; moving s_02 changes only ℓ_02: the gradient at the
        // other positives is unchanged, and the value moves by ℓ_02's change alone
        let d = 6;
        let s = vec![
            1.0, -0.5, 0.3, 2.0, -1.0, 0.7, 0.2, 0.1, -0.3, 1.5, 0.0, -2.0,
        ];
        let r = vec![1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        let loss = DexmlDecoupledSoftmax::default();
        let (v0, g0) = value_and_grad(&loss, &s, &r, d);
        let negs = [1usize, 3, 4];
        let term = |s: &[f64], j: usize| {
            lse(std::iter::once(s[j]).chain(negs.iter().map(|&k| s[k]))) - s[j]
        };
        for delta in [-3.0, 0.8, 5.0] {
            let mut moved = s.clone();
            moved[2] += delta;
            let (v1, g1) = value_and_grad(&loss, &moved, &r, d);
            assert_eq!(g1[0], g0[0], "∂L/∂s_00");
            assert_eq!(g1[5], g0[5], "∂L/∂s_05");
            let want = (term(&moved, 2) - term(&s, 2)) / (2.0 * 3.0);
            assert_close(v1 - v0, want, 1e-12, 1e-14, "value change");
        }
        // the softmax baseline, in contrast, couples them
        let (_, h0) = value_and_grad(&DexmlSoftmax::default(), &s, &r, d);
        let mut moved = s.clone();
        moved[2] += 1.0;
        let (_, h1) = value_and_grad(&DexmlSoftmax::default(), &moved, &r, d);
        assert!((h1[0] - h0[0]).abs() > 1e-3);
    }

    #[test]
    fn row_shifts_leave_the_value_unchanged_and_gradient_rows_sum_to_zero() {
        let mut rng = Rng::new(24);
        let (q, d) = (4, 7);
        let (s, r) = case(&mut rng, q, d, 0.3);
        let shifted: Vec<f64> = s
            .iter()
            .enumerate()
            .map(|(n, x)| x + 1.7 * (n / d) as f64 - 2.0)
            .collect();
        for which in 0..2 {
            let (v, g, v1) = if which == 0 {
                let l = DexmlDecoupledSoftmax::default();
                let (v, g) = value_and_grad(&l, &s, &r, d);
                (v, g, value(&l, &shifted, &r, d))
            } else {
                let l = DexmlSoftmax::default();
                let (v, g) = value_and_grad(&l, &s, &r, d);
                (v, g, value(&l, &shifted, &r, d))
            };
            assert_close(v1, v, 1e-12, 1e-13, &format!("shifted value ({which})"));
            for i in 0..q {
                let row: f64 = g[i * d..(i + 1) * d].iter().sum();
                assert!(row.abs() < 1e-14, "row {i} sums to {row} ({which})");
            }
        }
    }

    #[test]
    fn bce_is_the_mean_bce_with_logits() {
        let dev: Cpu = Default::default();
        let mut rng = Rng::new(25);
        let (q, d) = (3, 5);
        let (mut s, r) = case(&mut rng, q, d, 0.4);
        s[0] = 60.0; // a large relevant score: exact in the softplus(−s) form
        s[1] = -60.0;
        let st: Matrix = dev.tensor_from_vec(s.clone(), (q, d));
        let rt: Matrix = dev.tensor_from_vec(r.clone(), (q, d));
        let out = binary_cross_entropy_with_logits_loss(st.leaky_trace(), rt);
        let want = out.array();
        let want_grad = out.backward().get(&st).as_vec();
        let (v, g) = value_and_grad(&DexmlBce::default(), &s, &r, d);
        assert_close(v, want, 1e-12, 1e-14, "value");
        for k in 0..s.len() {
            assert_close(g[k], want_grad[k], 1e-10, 1e-15, "gradient");
        }
    }

    #[test]
    fn overwriting_the_positives_not_drawn_reproduces_official_sampling() {
        // official, sampling on: each row's drawn positive j against {j} ∪ (non-positives),
        // the other positives set to −100
        let d = 5;
        let s = vec![2.0, 0.4, 1.2, -0.6, 0.9, 0.3, 1.1, -0.2, 0.8, 1.4];
        let all = vec![1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0];
        let drawn = [2usize, 8]; // one per row (flat indices)
        let mut sampled = vec![0.0; s.len()];
        let mut masked = s.clone();
        for k in 0..s.len() {
            if drawn.contains(&k) {
                sampled[k] = 1.0;
            } else if all[k] == 1.0 {
                masked[k] = -100.0;
            }
        }
        let official = |i: usize, j: usize| {
            let row = &s[i * d..(i + 1) * d];
            let negs = (0..d).filter(|&k| all[i * d + k] == 0.0).map(|k| row[k]);
            let others = (0..d)
                .filter(|&k| all[i * d + k] == 1.0 && i * d + k != j)
                .map(|_| -100.0);
            lse(std::iter::once(s[j]).chain(negs).chain(others)) - s[j]
        };
        let want = (official(0, 2) + official(1, 8)) / 2.0;
        let got = value(&DexmlDecoupledSoftmax::default(), &masked, &sampled, d);
        assert_close(got, want, 1e-14, 0.0, "decoupled with sampling");
        // without the overwrite the positives not drawn would be negatives
        let unmasked = value(&DexmlDecoupledSoftmax::default(), &s, &sampled, d);
        assert!(unmasked > got + 1e-3);
    }

    #[test]
    fn extreme_scores_stay_finite() {
        let s = [300.0, -300.0, 0.0, -300.0, 300.0, 1e-3];
        let r = [1.0, 0.0, 0.0, 0.0, 1.0, 1.0];
        for (v, g) in [
            value_and_grad(&DexmlDecoupledSoftmax::default(), &s, &r, 3),
            value_and_grad(&DexmlSoftmax::default(), &s, &r, 3),
            value_and_grad(&DexmlBce::default(), &s, &r, 3),
        ] {
            assert!(
                v.is_finite() && g.iter().all(|x| x.is_finite()),
                "{v} {g:?}"
            );
        }
        assert_close(
            value(&DexmlDecoupledSoftmax::default(), &s, &r, 3),
            naive_decoupled(&s, &r, 3),
            1e-12,
            1e-12,
            "decoupled",
        );
    }
}
