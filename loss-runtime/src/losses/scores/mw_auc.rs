//! Mann-Whitney (MW) loss: BCE on every positive-minus-negative score difference of the
//! whole score matrix, an upper bound on the area over the ROC curve (Sheikholeslami et
//! al., 2025).

use crate::loss;

/// Mann-Whitney loss: every relevant score is compared with every irrelevant score of the
/// **whole** matrix, across queries, through a logistic loss on their difference. Unlike a
/// per-query softmax (InfoNCE), this makes scores comparable between queries, and the loss
/// bounds the area over the ROC curve of the pooled scores: `AoC ≤ L_pairs / ln 2`.
///
/// ```text
/// P = { (q, p) : r[q][p] = 1 }        (every positive entry of the matrix)
/// N = { (k, n) : r[k][n] = 0 }        (every other entry, whichever row it is in)
///
/// total = Σ_{(q,p) ∈ P} Σ_{(k,n) ∈ N} softplus( (s[k][n] − s[q][p]) / τ )
///       = Σ_{P} Σ_{N} −ln σ( (s[q][p] − s[k][n]) / τ )
///
/// L = total / |P|                      (default: the paper's Eq. 3)
/// L = total / (|P|·|N|)                (mean_over_pairs = true: the mean over pairs, Eq. 2)
/// ```
///
/// In the paper each of the B queries has exactly one positive (its own passage, one entry
/// of its row), so `|P| = B` and `N` is every other entry of the `B × B(1+H)` matrix: the
/// other queries' passages and all hard negatives, `|N| = B·(B(1+H) − 1)`. The default
/// reduction is then the paper's `(1/B) Σ_i Σ_{s⁻ ∈ S⁻}`, and it equals `mean_over_pairs`
/// times `|N|`.
///
/// **Extension: several positives per row.** Any 0/1 relevance mask is accepted. Every
/// positive entry is compared with every non-positive entry of the matrix (a query's other
/// positives are never its negatives, nor another row's), and the default reduction
/// divides by the number of positives, which is `B` with one positive per row. Rows without
/// a positive still provide negatives to everyone else.
///
/// **Conventions.** `softplus` is smooth and computed without overflow, so there is no
/// kink and any score difference is safe. A mask with no irrelevant entry gives `L = 0`
/// with a zero gradient (the pair set is empty; `mean_over_pairs` then divides by
/// `max(|N|, 1)`). A mask with no relevant entry is refused with
/// [`LossError::NoRelevant`](crate::LossError::NoRelevant).
///
/// **Cost.** The loss is four nested reductions that the compiler fuses: no `|P| × |N|`
/// pair tensor is ever formed; memory is O(1) beyond the inputs and time is
/// O(|P|·Q·D) per pass (64 × 24 512 pairs for the paper's B = 64, H = 5).
///
/// **Defaults:** τ = 0.01, the value of all of the paper's experiments; the paper's
/// reduction (`mean_over_pairs = false`). With cosine scores in `[−1, 1]` and τ = 0.01 the
/// differences reach ±200 before the softplus, which it handles exactly.
///
/// **Reference:** Sheikholeslami, Hosseini, Bechard, Daruru, Rajeswar. *Optimizing What
/// Matters: AUC-Driven Learning for Robust Neural Retrieval.* arXiv 2510.00137, 2025
/// (Eq. 2–3, Lemma 2). **Official code:** no official code (the paper links no repository);
/// this follows the paper's text. Differences: the paper defines the loss for one positive
/// per query; several positives per row is the extension above.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// // 2 queries × 4 passages: query 0's positive is passage 0, query 1's is passage 1
/// let s: Tensor<Rank2<2, 4>, f64, _> = dev.tensor([[0.9, 0.2, 0.1, 0.4], [0.3, 0.8, 0.5, 0.0]]);
/// let r: Tensor<Rank2<2, 4>, f64, _> = dev.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]);
/// let paper = MwAuc::default().forward(s.leaky_trace(), &r);
/// let pairs = MwAuc::default().with_mean_over_pairs(true).forward(s.clone(), &r);
/// // one positive per row: the paper's reduction is the pair mean times |N| = 6
/// assert!((paper.array() - 6.0 * pairs.array()).abs() < 1e-9);
/// let grads = paper.backward();
/// assert!(grads.get(&s).array()[0][0] < 0.0); // raising a positive lowers L
/// ```
#[loss(scores, paper = "MW loss (Sheikholeslami et al., 2025)")]
pub fn mw_auc(
    s: Scores,
    r: Relevance,
    #[hyper(
        default = 0.01,
        positive,
        doc = "τ: the temperature of the pairwise logistic loss"
    )]
    tau: f64,
    #[hyper(
        default = false,
        doc = "divide by |P|·|N| (the mean over pairs) instead of by |P| (the paper's Eq. 3)"
    )]
    mean_over_pairs: bool,
) -> Scalar {
    let total = sum(queries, |q| {
        sum(relevant(q), |p| {
            sum(queries, |k| {
                sum(irrelevant(k), |n| softplus((s[k][n] - s[q][p]) / tau))
            })
        })
    });
    let positives = sum(queries, |q| sum(relevant(q), |p| 1.0));
    let negatives = sum(queries, |q| sum(irrelevant(q), |n| 1.0));
    select(
        mean_over_pairs,
        total / (positives * max(negatives, 1.0)),
        total / positives,
    )
}

#[cfg(test)]
mod tests {
    use dfdx::losses::binary_cross_entropy_with_logits_loss;
    use dfdx::prelude::*;

    use super::*;
    use crate::testing::{assert_close, Rng};
    use crate::{Loss, LossError, SoftmaxCrossEntropy};

    type Matrix<E = f64, T = NoneTape> = Tensor<(usize, usize), E, Cpu, T>;
    type Owned = OwnedTape<f64, Cpu>;

    fn softplus(x: f64) -> f64 {
        x.max(0.0) + (-x.abs()).exp().ln_1p()
    }

    /// Plain loops over every (positive, negative) pair of the matrix.
    fn naive(s: &[f64], r: &[f64], tau: f64, mean_over_pairs: bool) -> f64 {
        let (mut total, mut np, mut nn) = (0.0, 0.0, 0.0);
        for a in 0..s.len() {
            if r[a] == 1.0 {
                np += 1.0;
                for b in 0..s.len() {
                    if r[b] == 0.0 {
                        total += softplus((s[b] - s[a]) / tau);
                    }
                }
            } else {
                nn += 1.0;
            }
        }
        if mean_over_pairs {
            total / (np * f64::max(nn, 1.0))
        } else {
            total / np
        }
    }

    fn value(loss: &MwAuc, s: &[f64], r: &[f64], d: usize) -> f64 {
        let dev: Cpu = Default::default();
        let st: Matrix = dev.tensor_from_vec(s.to_vec(), (s.len() / d, d));
        let rt: Matrix = dev.tensor_from_vec(r.to_vec(), (s.len() / d, d));
        loss.forward(st, &rt).array()
    }

    fn value_and_grad(loss: &MwAuc, s: &[f64], r: &[f64], d: usize) -> (f64, Vec<f64>) {
        let dev: Cpu = Default::default();
        let st: Matrix = dev.tensor_from_vec(s.to_vec(), (s.len() / d, d));
        let rt: Matrix = dev.tensor_from_vec(r.to_vec(), (s.len() / d, d));
        let out: Tensor<(), f64, Cpu, Owned> = loss.forward(st.leaky_trace(), &rt);
        let v = out.array();
        (v, out.backward().get(&st).as_vec())
    }

    /// A `q × d` case: scores in `[−1, 1]`, relevance with ~`density` ones (at least one).
    fn case(rng: &mut Rng, q: usize, d: usize, density: f64) -> (Vec<f64>, Vec<f64>) {
        let s = (0..q * d).map(|_| rng.range(-1.0, 1.0)).collect();
        let mut r: Vec<f64> = (0..q * d)
            .map(|_| if rng.uniform() < density { 1.0 } else { 0.0 })
            .collect();
        r[rng.below(q * d)] = 1.0;
        (s, r)
    }

    /// The paper's layout: one positive per row, at column `i` of a `q × d` matrix.
    fn one_per_row(rng: &mut Rng, q: usize, d: usize) -> (Vec<f64>, Vec<f64>) {
        let s = (0..q * d).map(|_| rng.range(-1.0, 1.0)).collect();
        let mut r = vec![0.0; q * d];
        for i in 0..q {
            r[i * d + i] = 1.0;
        }
        (s, r)
    }

    #[test]
    fn value_matches_plain_loops() {
        let mut rng = Rng::new(1);
        for (q, d, density) in [
            (1, 1, 1.0),
            (1, 5, 0.3),
            (3, 4, 0.3),
            (4, 7, 0.5),
            (5, 3, 0.1),
        ] {
            let (s, r) = case(&mut rng, q, d, density);
            for tau in [0.01, 0.3, 2.0] {
                for mop in [false, true] {
                    let loss = MwAuc::default().with_tau(tau).with_mean_over_pairs(mop);
                    let what = format!("q={q} d={d} tau={tau} mean_over_pairs={mop}");
                    assert_close(
                        value(&loss, &s, &r, d),
                        naive(&s, &r, tau, mop),
                        1e-12,
                        1e-12,
                        &what,
                    );
                }
            }
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = Rng::new(2);
        for (q, d) in [(2, 3), (3, 5)] {
            let (s, r) = case(&mut rng, q, d, 0.3);
            for (tau, mop) in [(0.5, false), (0.5, true), (0.05, false)] {
                let loss = MwAuc::default().with_tau(tau).with_mean_over_pairs(mop);
                let (_, g) = value_and_grad(&loss, &s, &r, d);
                for j in 0..s.len() {
                    let h = 1e-6;
                    let (mut up, mut down) = (s.clone(), s.clone());
                    up[j] += h;
                    down[j] -= h;
                    let fd = (naive(&up, &r, tau, mop) - naive(&down, &r, tau, mop)) / (2.0 * h);
                    assert_close(
                        g[j],
                        fd,
                        1e-6,
                        1e-7,
                        &format!("∂L/∂s[{j}], tau={tau} mop={mop}"),
                    );
                }
            }
        }
    }

    #[test]
    fn equals_bce_with_logits_on_the_pair_differences() {
        // dfdx's mean BCE with logits over every (s⁺ − s⁻)/τ with target 1 is the pair mean
        let dev: Cpu = Default::default();
        let mut rng = Rng::new(3);
        let (q, d) = (3, 5);
        let (s, r) = case(&mut rng, q, d, 0.25);
        let tau = 0.2;
        let mut diffs = Vec::new();
        for a in (0..s.len()).filter(|&a| r[a] == 1.0) {
            for b in (0..s.len()).filter(|&b| r[b] == 0.0) {
                diffs.push((s[a] - s[b]) / tau);
            }
        }
        let pairs = diffs.len();
        let logits: Tensor<(usize,), f64, _> = dev.tensor_from_vec(diffs, (pairs,));
        let bce = binary_cross_entropy_with_logits_loss(logits, dev.ones_like(&(pairs,))).array();
        let positives = r.iter().sum::<f64>();
        let negatives = s.len() as f64 - positives;
        let mean = MwAuc::default().with_tau(tau).with_mean_over_pairs(true);
        let paper = MwAuc::default().with_tau(tau);
        assert_close(
            value(&mean, &s, &r, d),
            bce,
            1e-12,
            1e-12,
            "mean over pairs",
        );
        assert_close(
            value(&paper, &s, &r, d),
            bce * negatives,
            1e-12,
            1e-12,
            "paper",
        );
    }

    #[test]
    fn pair_mean_over_ln2_bounds_the_empirical_area_over_the_curve() {
        let mut rng = Rng::new(4);
        for _ in 0..20 {
            let (q, d) = (1 + rng.below(4), 1 + rng.below(6));
            let (mut s, r) = case(&mut rng, q, d, 0.4);
            // ties count as errors in the AoC; make some
            s[0] = s[s.len() - 1];
            let (mut bad, mut pairs) = (0.0, 0.0);
            for a in (0..s.len()).filter(|&a| r[a] == 1.0) {
                for b in (0..s.len()).filter(|&b| r[b] == 0.0) {
                    pairs += 1.0;
                    if s[b] >= s[a] {
                        bad += 1.0;
                    }
                }
            }
            let aoc = if pairs > 0.0 { bad / pairs } else { 0.0 };
            for tau in [0.01, 0.1, 1.0] {
                let loss = MwAuc::default().with_tau(tau).with_mean_over_pairs(true);
                let bound = value(&loss, &s, &r, d) / std::f64::consts::LN_2;
                assert!(
                    bound >= aoc - 1e-12,
                    "L/ln2 = {bound} < AoC = {aoc} (tau {tau})"
                );
            }
        }
    }

    #[test]
    fn invariant_to_a_shift_of_all_scores() {
        let mut rng = Rng::new(5);
        let (s, r) = case(&mut rng, 4, 6, 0.3);
        let loss = MwAuc::default().with_tau(0.1);
        let shifted: Vec<f64> = s.iter().map(|x| x + 3.25).collect();
        assert_close(
            value(&loss, &shifted, &r, 6),
            value(&loss, &s, &r, 6),
            1e-12,
            1e-12,
            "shift",
        );
        // so the gradient sums to 0 over the whole matrix
        let (_, g) = value_and_grad(&loss, &s, &r, 6);
        assert!(g.iter().sum::<f64>().abs() < 1e-12);
    }

    #[test]
    fn scaling_the_scores_by_c_divides_tau_by_c() {
        let mut rng = Rng::new(6);
        let (s, r) = case(&mut rng, 3, 5, 0.3);
        for c in [0.5, 4.0] {
            let scaled: Vec<f64> = s.iter().map(|x| c * x).collect();
            let a = value(&MwAuc::default().with_tau(0.2), &scaled, &r, 5);
            let b = value(&MwAuc::default().with_tau(0.2 / c), &s, &r, 5);
            assert_close(a, b, 1e-12, 1e-12, &format!("c = {c}"));
        }
    }

    #[test]
    fn tau_times_loss_tends_to_the_mean_hinge() {
        // 0 ≤ τ·softplus(x/τ) − max(x, 0) ≤ τ·ln 2 for every pair
        let mut rng = Rng::new(7);
        let (s, r) = case(&mut rng, 3, 5, 0.3);
        let (mut hinge, mut pairs) = (0.0, 0.0);
        for a in (0..s.len()).filter(|&a| r[a] == 1.0) {
            for b in (0..s.len()).filter(|&b| r[b] == 0.0) {
                hinge += f64::max(s[b] - s[a], 0.0);
                pairs += 1.0;
            }
        }
        hinge /= pairs;
        for tau in [1e-2, 1e-3, 1e-4] {
            let loss = MwAuc::default().with_tau(tau).with_mean_over_pairs(true);
            let gap = tau * value(&loss, &s, &r, 5) - hinge;
            assert!(
                gap >= -1e-12 && gap <= tau * std::f64::consts::LN_2 + 1e-12,
                "tau {tau}: gap {gap}"
            );
        }
    }

    #[test]
    fn paper_reduction_is_the_pair_mean_times_the_negatives_with_one_positive_per_row() {
        let mut rng = Rng::new(8);
        // B = 4 queries, H = 2 hard negatives each: B(1 + H) = 12 columns
        let (b, d) = (4, 12);
        let (s, r) = one_per_row(&mut rng, b, d);
        let negatives = (b * (d - 1)) as f64; // |S⁻| = B·(B(1+H) − 1)
        let paper = value(&MwAuc::default(), &s, &r, d);
        let mean = value(&MwAuc::default().with_mean_over_pairs(true), &s, &r, d);
        assert_close(
            paper,
            mean * negatives,
            1e-12,
            1e-12,
            "Paper = MeanOverPairs × |S⁻|",
        );
        // and the paper's (1/B) Σ_i Σ_{s⁻} written out
        // S⁻ = the off-diagonal entries s[k][j], j ≠ k (query k against the other queries'
        // passages and all hard negatives); the other queries' own positives are not in it
        let tau = 0.01;
        let mut want = 0.0;
        for i in 0..b {
            for k in 0..b {
                for j in (0..d).filter(|&j| j != k) {
                    want += softplus((s[k * d + j] - s[i * d + i]) / tau);
                }
            }
        }
        assert_close(paper, want / b as f64, 1e-12, 1e-12, "Eq. 3");
    }

    #[test]
    fn pairs_are_global_across_rows() {
        // a negative of row 1 changes the gradient of row 0's positive; with a per-row
        // softmax (InfoNCE) it does not
        let mut rng = Rng::new(9);
        let (q, d) = (3, 4);
        let (s, r) = one_per_row(&mut rng, q, d);
        let labels: Vec<usize> = (0..q).collect();
        let loss = MwAuc::default().with_tau(0.3);
        let ce_grad = |s: &[f64]| {
            let dev: Cpu = Default::default();
            let st: Matrix = dev.tensor_from_vec(s.to_vec(), (q, d));
            let out = SoftmaxCrossEntropy::default().forward(st.leaky_trace(), labels.as_slice());
            out.backward().get(&st).as_vec()
        };
        let (_, g0) = value_and_grad(&loss, &s, &r, d);
        let ce0 = ce_grad(&s);
        let mut moved = s.clone();
        moved[d + 3] += 0.5; // s[1][3], a negative of row 1
        let (_, g1) = value_and_grad(&loss, &moved, &r, d);
        let ce1 = ce_grad(&moved);
        assert!((g1[0] - g0[0]).abs() > 1e-4, "MW: {} vs {}", g1[0], g0[0]);
        assert!(
            g0[3] > 0.0,
            "row 0's negatives get gradient from every positive"
        );
        assert_eq!(ce1[0], ce0[0], "InfoNCE: rows are independent");
    }

    #[test]
    fn several_positives_per_row_are_never_negatives() {
        // row 0 has two positives; each is compared with the 0-entries only
        let s = [0.5, 0.1, 0.9, -0.2, 0.4, 0.3];
        let r = [1.0, 0.0, 1.0, 0.0, 0.0, 1.0];
        let tau = 0.25;
        let negs = [s[1], s[3], s[4]];
        let mut want = 0.0;
        for p in [s[0], s[2], s[5]] {
            for n in negs {
                want += softplus((n - p) / tau);
            }
        }
        let got = value(&MwAuc::default().with_tau(tau), &s, &r, 3);
        assert_close(
            got,
            want / 3.0,
            1e-12,
            1e-12,
            "three positives, three negatives",
        );
    }

    #[test]
    fn no_negatives_gives_zero_without_nan() {
        for mop in [false, true] {
            let loss = MwAuc::default().with_mean_over_pairs(mop);
            let (v, g) = value_and_grad(&loss, &[0.3, -0.2, 0.9, 0.0], &[1.0; 4], 2);
            assert_eq!(v, 0.0);
            assert!(g.iter().all(|&x| x == 0.0), "{g:?}");
        }
    }

    #[test]
    fn extreme_scores_stay_finite() {
        let s = [50.0, -50.0, -50.0, 50.0, 0.0, 1e-3];
        let r = [1.0, 0.0, 1.0, 0.0, 0.0, 1.0];
        let (v, g) = value_and_grad(&MwAuc::default(), &s, &r, 3);
        assert_close(v, naive(&s, &r, 0.01, false), 1e-12, 0.0, "value");
        assert!(g.iter().all(|x| x.is_finite()), "{g:?}");
    }

    #[test]
    fn f32_agrees_with_f64() {
        let dev: Cpu = Default::default();
        let mut rng = Rng::new(10);
        let (q, d) = (3, 6);
        let (s, r) = case(&mut rng, q, d, 0.3);
        let s: Vec<f64> = s.iter().map(|&x| x as f32 as f64).collect();
        let loss = MwAuc::default().with_tau(0.1);
        let (v64, g64) = value_and_grad(&loss, &s, &r, d);
        let st: Matrix<f32> = dev.tensor_from_vec(s.iter().map(|&x| x as f32).collect(), (q, d));
        let rt: Matrix<f32> = dev.tensor_from_vec(r.iter().map(|&x| x as f32).collect(), (q, d));
        let out = loss.forward(st.leaky_trace(), &rt);
        assert_close(out.array() as f64, v64, 1e-5, 1e-6, "value");
        let g32 = out.backward().get(&st).as_vec();
        let scale = g64.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        for (a, b) in g32.iter().zip(&g64) {
            assert_close(*a as f64, *b, 0.0, 1e-5 * scale, "gradient");
        }
    }

    #[test]
    fn refuses_bad_scores_input() {
        let dev: Cpu = Default::default();
        let loss = MwAuc::default();
        let s: Matrix = dev.tensor_from_vec(vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6], (2, 3));
        let try_with = |s: &Matrix, r: Vec<f64>, shape: (usize, usize)| {
            let rt: Matrix = dev.tensor_from_vec(r, shape);
            loss.try_forward(s.clone(), &rt).map(|v| v.array())
        };
        // relevance of another shape
        assert_eq!(
            try_with(&s, vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0], (3, 2)),
            Err(LossError::BadShape {
                input: "relevance",
                shape: vec![3, 2],
                expected: "the shape of `scores`",
            })
        );
        // relevance other than 0/1
        assert_eq!(
            try_with(&s, vec![1.0, 0.0, 0.5, 0.0, 0.0, 0.0], (2, 3)),
            Err(LossError::RelevanceNotBinary {
                index: 2,
                position: vec![0, 2],
                value: 0.5
            })
        );
        // nothing relevant
        assert_eq!(
            try_with(&s, vec![0.0; 6], (2, 3)),
            Err(LossError::NoRelevant { input: "relevance" })
        );
        // non-finite scores
        let bad: Matrix = dev.tensor_from_vec(vec![0.1, f64::NAN, 0.3, 0.4, 0.5, 0.6], (2, 3));
        assert!(matches!(
            try_with(&bad, vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0], (2, 3)),
            Err(LossError::NonFinite {
                input: "scores",
                index: 1,
                ..
            })
        ));
        // a non-positive τ
        let err = MwAuc::default()
            .with_tau(0.0)
            .try_forward(s.clone(), &dev.ones_like(&(2, 3)));
        assert!(
            matches!(err, Err(LossError::InvalidHyper { name: "tau", .. })),
            "{err:?}"
        );
    }
}
