//! Multi-Similarity loss with its mining rule (Wang et al., CVPR 2019).

use crate::loss;

/// Multi-Similarity loss: each anchor weighs its hard positives and hard negatives by a
/// log-sum-exp over their similarities, after mining the pairs that violate the other
/// side's hardest similarity by a margin ε.
///
/// ```text
/// P_i = { j ∈ pos(i) : S_ij < 1 − 1e-5 }             (official; all of pos(i) with pml_style)
/// N_i = neg(i)
/// P̃_i = { j ∈ P_i : S_ij − ε < max_{k∈N_i} S_ik }     Ñ_i = { k ∈ N_i : S_ik + ε > min_{j∈P_i} S_ij }
/// l_i = (1/α)·ln(1 + Σ_{P̃_i} e^{−α(S_ij − λ)}) + (1/β)·ln(1 + Σ_{Ñ_i} e^{β(S_ik − λ)})
/// official: l_i = 0 when P̃_i or Ñ_i is empty (the anchor is skipped)
/// L = (1/N) Σ_i l_i                                    (skipped anchors count in N)
/// ```
///
/// The mining thresholds are constants to the gradient (they only select pairs). Each
/// `ln(1 + Σ e^x)` is computed as `softplus(logsumexp(x))`, stable for any similarity and
/// 0 over an empty set. An anchor without any positive is skipped (the official code
/// fails on `min` of an empty set). Its derived gradient with respect to `S` is the GPW
/// weight of each mined pair, which `pair_weights` returns.
///
/// **Defaults** follow the official code: α = 2 (`SCALE_POS`), β = 40 (`SCALE_NEG`),
/// λ = 0.5 (`thresh`), ε = 0.1 (`margin`). With `pml_style = true` the loss follows
/// pytorch-metric-learning's `MultiSimilarityMiner` + `MultiSimilarityLoss`: the self-pair
/// is dropped by index rather than by value (an exact duplicate positive with S = 1 is kept),
/// and the positive and negative terms count independently (an anchor with mined
/// positives but no mined negatives still gets its positive term). PML's default β is 50;
/// set it with `with_beta(50.0)`.
///
/// **Reference:** Wang, Han, Huang, Dong, Scott. *Multi-Similarity Loss with General Pair
/// Weighting for Deep Metric Learning.* CVPR 2019. **Official code:**
/// `MalongTech/research-ms-loss`, `ret_benchmark/losses/multi_similarity_loss.py`.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let e: Tensor<Rank2<4, 3>, f64, _> = dev.tensor([[1.0, 0.1, 0.0], [0.9, 0.3, 0.1], [0.1, 1.0, 0.2], [0.2, 0.8, 0.4]]);
/// let loss = MultiSimilarity::default().forward(e.leaky_trace(), &[0, 0, 1, 1]);
/// assert!(loss.array() >= 0.0);
/// let grads = loss.backward();
/// ```
#[loss(pairs, paper = "Multi-Similarity (Wang et al., CVPR 2019)")]
pub fn multi_similarity(
    s: Similarity,
    y: Labels,
    #[hyper(default = 2.0, positive, doc = "α: scale of the positive pairs")] alpha: f64,
    #[hyper(default = 40.0, positive, doc = "β: scale of the negative pairs")] beta: f64,
    #[hyper(default = 0.5, doc = "λ: the similarity margin")] lambda: f64,
    #[hyper(default = 0.1, nonnegative, doc = "ε: the mining margin")] epsilon: f64,
    #[hyper(
        default = false,
        doc = "follow pytorch-metric-learning's rules instead of the official code"
    )]
    pml_style: bool,
) -> PerAnchor {
    let hardest_pos = min(pos(i).filter(|j| pml_style || s[i][j] < 1.0 - 1e-5), |j| {
        s[i][j]
    });
    let hardest_neg = max(neg(i), |j| s[i][j]);
    let mined_pos = sum(
        pos(i).filter(|j| (pml_style || s[i][j] < 1.0 - 1e-5) && s[i][j] - epsilon < hardest_neg),
        |j| exp(-alpha * (s[i][j] - lambda)),
    );
    let mined_neg = sum(neg(i).filter(|j| s[i][j] + epsilon > hardest_pos), |j| {
        exp(beta * (s[i][j] - lambda))
    });
    let l = ln(1.0 + mined_pos) / alpha + ln(1.0 + mined_neg) / beta;
    // P̃ is non-empty exactly when its least element passes the test, and likewise Ñ
    select(
        pml_style || (hardest_pos - epsilon < hardest_neg && hardest_neg + epsilon > hardest_pos),
        l,
        0.0,
    )
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use super::*;
    use crate::testing::{assert_close, Rng};
    use crate::testing_pairs::*;
    use crate::{Loss, LossError, Metric, PairLabels, Similarities};

    /// The hyper-parameters of a naive reference.
    #[derive(Clone, Copy, Debug)]
    struct Ms {
        alpha: f64,
        beta: f64,
        lambda: f64,
        epsilon: f64,
        pml: bool,
    }

    /// The official code's defaults.
    const OFFICIAL: Ms = Ms {
        alpha: 2.0,
        beta: 40.0,
        lambda: 0.5,
        epsilon: 0.1,
        pml: false,
    };

    /// pytorch-metric-learning's rules and defaults (β = 50).
    const PML: Ms = Ms {
        beta: 50.0,
        pml: true,
        ..OFFICIAL
    };

    impl Ms {
        fn loss(self) -> MultiSimilarity {
            MultiSimilarity::new()
                .with_alpha(self.alpha)
                .with_beta(self.beta)
                .with_lambda(self.lambda)
                .with_epsilon(self.epsilon)
                .with_pml_style(self.pml)
        }
    }

    /// The pairs of anchor `i` the spec's pseudo-code keeps, and whether it skips the anchor.
    struct Mined {
        pos: Vec<usize>,
        neg: Vec<usize>,
        skipped: bool,
    }

    /// The spec's mining for anchor `i`, with plain loops:
    ///
    /// - official: `P_i = { j : y_j = y_i, S_ij < 1 − 1e-5 }` (by value), with the self-pair
    ///   also left out by index when the references are the batch (the same set whenever
    ///   `S_ii ≥ 1 − 1e-5`, as for normalised embeddings; see
    ///   `the_self_pair_is_left_out_by_index_even_below_the_threshold`);
    /// - pml: `P_i = { j : y_j = y_i, j ≠ i }`;
    /// - `N_i = { k : y_k ≠ y_i }`; an anchor with an empty `P_i` is skipped;
    /// - `Ñ_i = { k ∈ N_i : S_ik + ε > min P_i }`, `P̃_i = { j ∈ P_i : S_ij − ε < max N_i }`;
    /// - official: skipped when `Ñ_i` or `P̃_i` is empty.
    fn mine(p: &Pairs, i: usize, h: Ms) -> Mined {
        let mut all_pos = Vec::new();
        let mut all_neg = Vec::new();
        for j in 0..p.m {
            if p.labels[i] == p.ref_labels[j] {
                let self_pair = p.batch && i == j;
                let kept = if h.pml {
                    !self_pair
                } else {
                    !self_pair && p.at(i, j) < 1.0 - 1e-5
                };
                if kept {
                    all_pos.push(j);
                }
            } else {
                all_neg.push(j);
            }
        }
        let mut min_pos = f64::INFINITY;
        for &j in &all_pos {
            min_pos = min_pos.min(p.at(i, j));
        }
        let mut max_neg = f64::NEG_INFINITY;
        for &k in &all_neg {
            max_neg = max_neg.max(p.at(i, k));
        }
        let neg: Vec<usize> = all_neg
            .into_iter()
            .filter(|&k| p.at(i, k) + h.epsilon > min_pos)
            .collect();
        let pos: Vec<usize> = all_pos
            .iter()
            .copied()
            .filter(|&j| p.at(i, j) - h.epsilon < max_neg)
            .collect();
        let skipped = all_pos.is_empty() || (!h.pml && (neg.is_empty() || pos.is_empty()));
        Mined { pos, neg, skipped }
    }

    /// `l_i` as the official code writes it: `(1/α)·ln(1 + Σ e^{−α(S−λ)}) + (1/β)·ln(1 + Σ
    /// e^{β(S−λ)})` over the mined sets, 0 for a skipped anchor.
    fn naive_anchor(p: &Pairs, i: usize, h: Ms) -> f64 {
        let mined = mine(p, i, h);
        if mined.skipped {
            return 0.0;
        }
        let mut pos_sum = 0.0;
        for &j in &mined.pos {
            pos_sum += (-h.alpha * (p.at(i, j) - h.lambda)).exp();
        }
        let mut neg_sum = 0.0;
        for &k in &mined.neg {
            neg_sum += (h.beta * (p.at(i, k) - h.lambda)).exp();
        }
        (1.0 + pos_sum).ln() / h.alpha + (1.0 + neg_sum).ln() / h.beta
    }

    /// `L = (1/N) Σ_i l_i`, skipped anchors included in N.
    fn naive(p: &Pairs, h: Ms) -> f64 {
        let mut total = 0.0;
        for i in 0..p.n {
            total += naive_anchor(p, i, h);
        }
        total / p.n as f64
    }

    /// The limit α, β → ∞: `[max_{P̃}(λ − S)]_+ + [max_{Ñ}(S − λ)]_+` per kept anchor.
    fn naive_hinge(p: &Pairs, h: Ms) -> f64 {
        let mut total = 0.0;
        for i in 0..p.n {
            let mined = mine(p, i, h);
            if mined.skipped {
                continue;
            }
            let mut pos = 0.0f64;
            for &j in &mined.pos {
                pos = pos.max(h.lambda - p.at(i, j));
            }
            let mut neg = 0.0f64;
            for &k in &mined.neg {
                neg = neg.max(p.at(i, k) - h.lambda);
            }
            total += pos + neg;
        }
        total / p.n as f64
    }

    /// The spec's GPW weights, `∂L/∂S_ij · N`: `−w⁺_ij` on mined positives and `+w⁻_ij` on
    /// mined negatives, with the sums over the mined sets; 0 elsewhere.
    fn naive_weights(p: &Pairs, h: Ms) -> Vec<f64> {
        let mut w = vec![0.0; p.n * p.m];
        for i in 0..p.n {
            let mined = mine(p, i, h);
            if mined.skipped {
                continue;
            }
            for &j in &mined.pos {
                let s = p.at(i, j);
                let mut denom = (-h.alpha * (h.lambda - s)).exp();
                for &k in &mined.pos {
                    denom += (-h.alpha * (p.at(i, k) - s)).exp();
                }
                w[i * p.m + j] = -1.0 / denom;
            }
            for &k in &mined.neg {
                let s = p.at(i, k);
                let mut denom = (h.beta * (h.lambda - s)).exp();
                for &l in &mined.neg {
                    denom += (h.beta * (p.at(i, l) - s)).exp();
                }
                w[i * p.m + k] = 1.0 / denom;
            }
        }
        w
    }

    fn set_metric(l: &mut MultiSimilarity, metric: Metric) {
        l.metric = metric;
    }

    /// `P×K` labels (`classes` classes of `k` samples), shuffled.
    fn pk_labels(rng: &mut Rng, classes: usize, k: usize) -> Vec<usize> {
        let y: Vec<usize> = (0..classes * k).map(|i| i / k).collect();
        rng.permutation(y.len()).into_iter().map(|i| y[i]).collect()
    }

    #[test]
    fn known_value_on_a_hand_built_batch() {
        // two classes × two instances
        let s = [
            1.0, 0.7, 0.3, 0.65, //
            0.7, 1.0, 0.2, 0.9, //
            0.3, 0.2, 1.0, 0.5, //
            0.65, 0.9, 0.5, 1.0,
        ];
        let y = [0, 0, 1, 1];
        // anchor 0: P̃ = {0.7}, Ñ = {0.65}; anchor 1: P̃ = {0.7}, Ñ = {0.9};
        // anchor 2: P = {0.5} but max N = 0.3 mines nothing (skipped);
        // anchor 3: P̃ = {0.5}, Ñ = {0.65, 0.9}
        let pos = |x: f64| (1.0 + x).ln() / 2.0;
        let neg = |x: f64| (1.0 + x).ln() / 40.0;
        let l0 = pos((-2.0f64 * 0.2).exp()) + neg((40.0f64 * 0.15).exp());
        let l1 = pos((-2.0f64 * 0.2).exp()) + neg((40.0f64 * 0.4).exp());
        let l3 = pos(1.0) + neg((40.0f64 * 0.15).exp() + (40.0f64 * 0.4).exp());
        let want = (l0 + l1 + l3) / 4.0;
        let loss = MultiSimilarity::default();
        let got = sim_value::<f64, _>(&loss, &s, &y, None).unwrap();
        assert_close(got, want, 1e-14, 0.0, "official");
        assert_close(
            got,
            naive(&Pairs::batch(&s, &y), OFFICIAL),
            1e-14,
            0.0,
            "naive",
        );
        // every kept anchor mines both sides: the PML rule (same β) agrees
        let pml = loss.clone().with_pml_style(true);
        let got = sim_value::<f64, _>(&pml, &s, &y, None).unwrap();
        assert_close(got, want, 1e-14, 0.0, "pml");
        // the weights: only mined pairs of kept anchors
        let dev: Cpu = Default::default();
        let w = loss
            .pair_weights(&dev.tensor_from_vec(s.to_vec(), (4, 4)), &y)
            .unwrap()
            .as_vec();
        let nonzero: Vec<usize> = (0..16).filter(|&k| w[k] != 0.0).collect();
        assert_eq!(nonzero, vec![1, 3, 4, 7, 12, 13, 14]);
        assert!(w[1] < 0.0 && w[3] > 0.0 && w[14] < 0.0 && w[13] > 0.0);
    }

    #[test]
    fn value_matches_the_spec_pseudo_code() {
        for h in [OFFICIAL, PML, Ms { beta: 40.0, ..PML }] {
            check_pairs_values(&h.loss(), &set_metric, &|p| naive(p, h), 1e-12);
        }
    }

    #[test]
    fn gradient_through_the_similarity_matches_finite_differences() {
        for h in [OFFICIAL, PML] {
            check_pairs_gradients(&h.loss(), &set_metric, 1e-6);
        }
    }

    #[test]
    fn pair_weights_are_the_derived_gradient() {
        for h in [OFFICIAL, PML] {
            check_pairs_weights(&h.loss(), 1e-6);
        }
    }

    /// The spec's closed form: `pair_weights · N = −w⁺` on mined positives, `+w⁻` on mined
    /// negatives, 0 on every other pair and on skipped anchors.
    #[test]
    fn pair_weights_are_the_spec_gpw_weights() {
        let mut rng = Rng::new(101);
        let dev: Cpu = Default::default();
        for h in [OFFICIAL, PML] {
            let loss = h.loss();
            for &(n, m, classes) in &[(6, 5, 2), (10, 7, 3), (12, 12, 4)] {
                let y = random_labels(&mut rng, n, classes);
                let s = random_similarities(&mut rng, n, n, true);
                let w = loss
                    .pair_weights(&dev.tensor_from_vec(s.clone(), (n, n)), &y)
                    .unwrap()
                    .as_vec();
                let want = naive_weights(&Pairs::batch(&s, &y), h);
                let scaled: Vec<f64> = w.iter().map(|x| x * n as f64).collect();
                assert_all_close(&scaled, &want, 1e-12, &format!("{h:?} batch"));
                for (k, (&a, &b)) in w.iter().zip(&want).enumerate() {
                    assert_eq!(a == 0.0, b == 0.0, "{h:?}: support differs at {k}");
                }

                let ry = random_labels(&mut rng, m, classes);
                let s = random_similarities(&mut rng, n, m, false);
                let labels = PairLabels {
                    labels: &y,
                    ref_labels: &ry,
                };
                let w = loss
                    .pair_weights_with_refs(&dev.tensor_from_vec(s.clone(), (n, m)), &labels)
                    .unwrap()
                    .as_vec();
                let want = naive_weights(&Pairs::refs(&s, &y, &ry), h);
                let scaled: Vec<f64> = w.iter().map(|x| x * n as f64).collect();
                assert_all_close(&scaled, &want, 1e-12, &format!("{h:?} refs"));
            }
        }
    }

    /// `S + ε > min P` and `S − ε < max N` are strict: a negative exactly at `min P − ε`
    /// and a positive exactly at `max N + ε` are not mined; one ulp inside, they are.
    #[test]
    fn mining_boundaries_are_strict() {
        // ε = 1/8 keeps every sum exact; one anchor against four references
        let h = Ms {
            epsilon: 0.125,
            ..OFFICIAL
        };
        let y = [0];
        let ry = [0, 0, 1, 1];
        // P = {0.5, 0.875}, N = {0.375, 0.75}: min P − ε = 0.375, max N + ε = 0.875
        let s = [0.5, 0.875, 0.375, 0.75];
        let neg = |x: f64| (40.0 * (x - 0.5)).exp();
        let pos = |x: f64| (-2.0 * (x - 0.5)).exp();
        let value = |ps: &[f64], ns: &[f64]| {
            (1.0 + ps.iter().map(|&x| pos(x)).sum::<f64>()).ln() / 2.0
                + (1.0 + ns.iter().map(|&x| neg(x)).sum::<f64>()).ln() / 40.0
        };
        for pml in [false, true] {
            let h = Ms { pml, ..h };
            let loss = h.loss();
            let got = sim_value::<f64, _>(&loss, &s, &y, Some(&ry)).unwrap();
            assert_close(got, value(&[0.5], &[0.75]), 1e-14, 0.0, "at the boundaries");
            let got32 = sim_value::<f32, _>(&loss, &s, &y, Some(&ry)).unwrap();
            assert_close(got32, value(&[0.5], &[0.75]), 1e-6, 0.0, "f32");
            let w = weights::<f64, _>(&loss, &s, &y, Some(&ry)).unwrap();
            assert!(w[0] < 0.0 && w[3] > 0.0, "{w:?}");
            assert_eq!((w[1], w[2]), (0.0, 0.0), "unmined pairs carry no weight");

            // just inside each boundary (`S + ε` one ulp above `min P`, `S − ε` one ulp
            // below `max N`): both are mined
            let inside = [0.5, 0.875f64.next_down(), 0.5f64.next_up() - 0.125, 0.75];
            assert!(inside[2] + 0.125 > 0.5 && inside[1] - 0.125 < 0.75);
            let got = sim_value::<f64, _>(&loss, &inside, &y, Some(&ry)).unwrap();
            let want = value(&[0.5, inside[1]], &[inside[2], 0.75]);
            assert_close(got, want, 1e-14, 0.0, "inside the boundaries");
            assert_close(
                got,
                naive(&Pairs::refs(&inside, &y, &ry), h),
                1e-14,
                0.0,
                "naive",
            );
            let w = weights::<f64, _>(&loss, &inside, &y, Some(&ry)).unwrap();
            assert!(w[1] < 0.0 && w[2] > 0.0, "{w:?}");
        }
    }

    /// A positive at `S = 1 − 1e-5` (a duplicate) is dropped by the official rule (also
    /// from `min P`) but kept by the PML rule, which drops only the diagonal by index.
    #[test]
    fn duplicates_are_dropped_officially_and_kept_with_pml_style() {
        let dup = 1.0 - 1e-5;
        let (y, ry) = ([0], [0, 0, 1]);
        let s = [dup, 0.3, 0.95];
        let neg = (1.0 + (40.0f64 * 0.45).exp()).ln() / 40.0;
        let official = OFFICIAL.loss();
        let pml = official.clone().with_pml_style(true);
        let got = sim_value::<f64, _>(&official, &s, &y, Some(&ry)).unwrap();
        assert_close(
            got,
            (1.0 + 0.4f64.exp()).ln() / 2.0 + neg,
            1e-14,
            0.0,
            "official",
        );
        let got = sim_value::<f64, _>(&pml, &s, &y, Some(&ry)).unwrap();
        let pos = (1.0 + 0.4f64.exp() + (-2.0 * (dup - 0.5)).exp()).ln() / 2.0;
        assert_close(got, pos + neg, 1e-14, 0.0, "pml");
        assert_eq!(
            weights::<f64, _>(&official, &s, &y, Some(&ry)).unwrap()[0],
            0.0
        );
        assert!(weights::<f64, _>(&pml, &s, &y, Some(&ry)).unwrap()[0] < 0.0);
        // one ulp below the threshold the official rule keeps it too
        let below = [dup.next_down(), 0.3, 0.95];
        assert!(weights::<f64, _>(&official, &below, &y, Some(&ry)).unwrap()[0] < 0.0);

        // duplicate embeddings under cosine: anchor 0's only positive is its copy
        let e = [
            0.3, -0.2, 0.9, //
            0.3, -0.2, 0.9, //
            0.3, -0.15, 0.85, //
            -0.4, 0.5, 0.1, //
            0.6, 0.6, -0.3,
        ];
        let y = [0, 0, 1, 1, 1];
        let sim = naive_similarity(Metric::Cosine, &e, &e, 3);
        assert!(sim[1] >= dup, "the copies' cosine {}", sim[1]);
        let official_value = emb_value::<f64, _>(&official, &e, 3, &y).unwrap();
        let pml_value = emb_value::<f64, _>(&pml, &e, 3, &y).unwrap();
        let p = Pairs::batch(&sim, &y);
        assert_close(official_value, naive(&p, OFFICIAL), 1e-12, 0.0, "official");
        assert_close(
            pml_value,
            naive(&p, Ms { beta: 40.0, ..PML }),
            1e-12,
            0.0,
            "pml",
        );
        // the copies are skipped officially (no positive left), so only class 1
        // contributes; with the PML rule they mine each other and row 2
        let class1: f64 = (2..5).map(|i| naive_anchor(&p, i, OFFICIAL)).sum::<f64>() / 5.0;
        assert_close(official_value, class1, 1e-12, 0.0, "copies skipped");
        assert!(pml_value > official_value + 1e-3);
    }

    /// The self-pair is left out by index, also where `S_ii < 1 − 1e-5` (unnormalised
    /// embeddings with the dot metric), where the official code's value rule would keep it
    /// as a positive. For normalised embeddings (`S_ii = 1`) the two agree.
    #[test]
    fn the_self_pair_is_left_out_by_index_even_below_the_threshold() {
        let e = [
            0.3, 0.1, 0.2, //
            0.25, 0.2, 0.1, //
            -0.1, 0.35, 0.0, //
            0.0, 0.3, -0.2,
        ];
        let y = [0, 0, 1, 1];
        let loss = MultiSimilarity::new().with_metric(Metric::Dot);
        let got = emb_value::<f64, _>(&loss, &e, 3, &y).unwrap();
        let s = naive_similarity(Metric::Dot, &e, &e, 3);
        assert!(s[0] < 0.2, "S_00 = {}", s[0]);
        assert_close(
            got,
            naive(&Pairs::batch(&s, &y), OFFICIAL),
            1e-13,
            0.0,
            "by index",
        );
        // the literal official rule (self-pair kept by value) differs here
        let literal = naive(&Pairs::refs(&s, &y, &y), OFFICIAL);
        assert!((literal - got).abs() > 1e-3, "{literal} vs {got}");
    }

    /// Two tight clusters far apart: every negative is below `min P − ε`, nothing is mined,
    /// L = 0 with a zero gradient, under both rules.
    #[test]
    fn zero_when_there_is_nothing_to_mine() {
        let mut rng = Rng::new(102);
        let (n, d) = (8, 3);
        let y = [0, 1, 0, 1, 1, 0, 0, 1];
        let mut e = Vec::new();
        for &c in &y {
            let sign = if c == 0 { 1.0 } else { -1.0 };
            e.extend([sign, rng.range(-0.05, 0.05), rng.range(-0.05, 0.05)]);
        }
        for h in [OFFICIAL, PML] {
            let loss = h.loss();
            let (v, g) = emb_value_and_grad::<f64, _>(&loss, &e, d, &y);
            assert_eq!(v, 0.0, "{h:?}");
            assert!(g.iter().all(|&x| x == 0.0), "{h:?}: {g:?}");
            let (v, g) = emb_value_and_grad::<f32, _>(&loss, &e, d, &y);
            assert_eq!(v, 0.0, "{h:?} f32");
            assert!(g.iter().all(|&x| x == 0.0), "{h:?} f32: {g:?}");
        }
        assert_eq!(e.len(), n * d);
    }

    #[test]
    fn batches_without_valid_pairs_give_zero() {
        for h in [OFFICIAL, PML] {
            check_no_valid_pairs(&h.loss());
        }
    }

    /// `l_i ≥ 0`: every single-anchor loss (one row against references) and every batch.
    #[test]
    fn anchor_terms_are_nonnegative() {
        let mut rng = Rng::new(103);
        for h in [OFFICIAL, PML] {
            let loss = h.loss();
            for _ in 0..50 {
                let m = 2 + rng.below(8);
                let ry = random_labels(&mut rng, m, 3);
                let s = random_similarities(&mut rng, 1, m, false);
                let v = sim_value::<f64, _>(&loss, &s, &[rng.below(3)], Some(&ry)).unwrap();
                assert!(v >= 0.0, "{h:?}: {v}");
            }
            let y = random_labels(&mut rng, 9, 3);
            let s = random_similarities(&mut rng, 9, 9, true);
            assert!(sim_value::<f64, _>(&loss, &s, &y, None).unwrap() >= 0.0);
        }
    }

    /// α, β → ∞: `l_i → [max_{P̃}(λ − S)]_+ + [max_{Ñ}(S − λ)]_+`, within `ln(|set| + 1)/α`
    /// per term; the kernel stays finite where `e^{β(S−λ)}` would overflow.
    #[test]
    fn large_scales_approach_the_hinge_form() {
        let mut rng = Rng::new(104);
        let scale = 1e5;
        for rule in [OFFICIAL, PML] {
            let h = Ms {
                alpha: scale,
                beta: scale,
                ..rule
            };
            let loss = h.loss();
            for &(n, classes) in &[(6, 2), (12, 3)] {
                let y = random_labels(&mut rng, n, classes);
                let s = random_similarities(&mut rng, n, n, true);
                let p = Pairs::batch(&s, &y);
                let got = sim_value::<f64, _>(&loss, &s, &y, None).unwrap();
                let want = naive_hinge(&p, h);
                let bound = 2.0 * (n as f64 + 1.0).ln() / scale;
                assert!(
                    (got - want).abs() <= bound,
                    "{rule:?}: {got} vs hinge {want}"
                );
                assert!(want > 0.1, "the hinge form should be active: {want}");
            }
        }
    }

    /// The two rules agree when every anchor keeps mined positives and mined negatives and
    /// no off-diagonal positive has `S ≥ 1 − 1e-5` (with the same β).
    #[test]
    fn official_and_pml_agree_when_every_anchor_mines_both_sides() {
        let mut rng = Rng::new(105);
        let official = OFFICIAL.loss();
        let pml = official.clone().with_pml_style(true);
        let mut agreeing = 0;
        for _ in 0..20 {
            let y = pk_labels(&mut rng, 4, 3);
            let d = 4;
            let e = random_embeddings(&mut rng, y.len(), d);
            let s = naive_similarity(Metric::Cosine, &e, &e, d);
            let p = Pairs::batch(&s, &y);
            let both_sides = (0..p.n).all(|i| !mine(&p, i, OFFICIAL).skipped);
            let no_duplicates =
                (0..p.n).all(|i| (0..p.m).all(|j| i == j || !p.is_pos(i, j) || p.at(i, j) < 0.99));
            if !(both_sides && no_duplicates) {
                continue;
            }
            agreeing += 1;
            let (v1, g1) = emb_value_and_grad::<f64, _>(&official, &e, d, &y);
            let (v2, g2) = emb_value_and_grad::<f64, _>(&pml, &e, d, &y);
            assert_eq!(v1, v2);
            assert_eq!(g1, g2);
        }
        assert!(agreeing >= 5, "only {agreeing} batches qualified");
    }

    /// With both sets non-empty, `Ñ = ∅` and `P̃ = ∅` coincide in exact arithmetic; they
    /// part only by rounding: here `0.25 + 0.1 > 0.35` is false (no negative mined) while
    /// `0.35 − 0.1 < 0.25` is true (the positive is mined). The official rule skips the
    /// anchor; the PML rule keeps its positive term.
    #[test]
    fn pml_counts_a_one_sided_anchor() {
        let (s, y, ry) = ([0.35, 0.25], [0], [0, 1]);
        let (min_pos, max_neg) = (s[0], s[1]);
        assert!(max_neg + 0.1 <= min_pos, "no negative is mined");
        assert!(min_pos - 0.1 < max_neg, "the positive is mined");
        let official = OFFICIAL.loss();
        let pml = official.clone().with_pml_style(true);
        assert_eq!(
            sim_value::<f64, _>(&official, &s, &y, Some(&ry)).unwrap(),
            0.0
        );
        let got = sim_value::<f64, _>(&pml, &s, &y, Some(&ry)).unwrap();
        assert_close(got, (1.0 + 0.3f64.exp()).ln() / 2.0, 1e-14, 0.0, "pml");
        let h = Ms { beta: 40.0, ..PML };
        assert_close(
            got,
            naive(&Pairs::refs(&s, &y, &ry), h),
            1e-14,
            0.0,
            "naive",
        );
        let w = weights::<f64, _>(&pml, &s, &y, Some(&ry)).unwrap();
        assert!(w[0] < 0.0 && w[1] == 0.0, "{w:?}");
    }

    #[test]
    fn permutation_invariance() {
        for h in [OFFICIAL, PML] {
            check_pairs_permutation(&h.loss());
        }
    }

    #[test]
    fn f32_agrees_with_f64() {
        for h in [OFFICIAL, PML] {
            check_pairs_precisions(&h.loss(), 1e-4);
        }
    }

    #[test]
    fn input_errors() {
        check_pairs_errors(&MultiSimilarity::default());
        // hyper-parameters are checked before the input
        let err = MultiSimilarity::new()
            .with_epsilon(-0.1)
            .try_forward(Similarities(matrix::<f64>(&[1.0], 1, 1)), &[0][..])
            .unwrap_err();
        assert_eq!(
            err,
            LossError::InvalidHyper {
                loss: "multi_similarity",
                name: "epsilon",
                value: -0.1,
                constraint: "finite and >= 0",
            }
        );
    }
}
