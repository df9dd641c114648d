//! Tests of the contrastive losses: values against naive f64 loops over explicit pairs,
//! derived gradients against central finite differences, and the paper's invariants.

use dfdx::prelude::*;

use super::*;
use crate::core::kernel::{Kernel, RowBlocks};
use crate::testing::{assert_close, Rng};
use crate::testing_pairs::*;
use crate::{with_pairs_path, Loss, LossError, Metric, PairLabels, PairsPath, WithRefs};

// ---------------------------------------------------------------------------------------
// Naive values, with plain loops over explicit pairs
// ---------------------------------------------------------------------------------------

/// The positives and the negatives of anchor `i`, in reference order.
fn sets(p: &Pairs, i: usize) -> (Vec<usize>, Vec<usize>) {
    let pos = (0..p.m).filter(|&j| p.is_pos(i, j)).collect();
    let neg = (0..p.m).filter(|&j| p.is_neg(i, j)).collect();
    (pos, neg)
}

/// The `k` most similar of `negs` for anchor `i`, ties to the lower index: sorted by
/// `(−S, index)`, the first `k`.
fn hardest(p: &Pairs, i: usize, negs: &[usize], k: usize) -> Vec<usize> {
    let mut sorted = negs.to_vec();
    sorted.sort_by(|&a, &b| p.at(i, b).partial_cmp(&p.at(i, a)).unwrap().then(a.cmp(&b)));
    sorted.truncate(k);
    sorted
}

/// `−ln(e^{a/τ} / (e^{a/τ} + Σ_n e^{S_in/τ}))`, as the textbook writes it (no shift: the
/// tests keep `|S/τ|` small enough).
fn softmax_term(p: &Pairs, i: usize, positive: usize, negs: &[usize], tau: f64) -> f64 {
    let num = (p.at(i, positive) / tau).exp();
    let mut den = num;
    for &n in negs {
        den += (p.at(i, n) / tau).exp();
    }
    -(num / den).ln()
}

/// NT-Xent as PML reduces it: the mean over every positive pair (0 without any).
fn naive_nt_xent(p: &Pairs, tau: f64) -> f64 {
    let (mut total, mut pairs) = (0.0, 0usize);
    for i in 0..p.n {
        let (pos, neg) = sets(p, i);
        for &j in &pos {
            total += softmax_term(p, i, j, &neg, tau);
            pairs += 1;
        }
    }
    if pairs == 0 {
        0.0
    } else {
        total / pairs as f64
    }
}

/// Which of anchor `i`'s negatives a naive loss keeps: `keep(p, i, negatives)`.
type Keep<'a> = &'a dyn Fn(&Pairs, usize, &[usize]) -> Vec<usize>;

/// The per-anchor contrastive loss over the negatives `keep(i, negs)`: the mean over the
/// anchor's positives, then over all `n` anchors.
fn naive_per_anchor(p: &Pairs, tau: f64, keep: Keep) -> f64 {
    let mut total = 0.0;
    for i in 0..p.n {
        let (pos, neg) = sets(p, i);
        if pos.is_empty() {
            continue;
        }
        let negs = keep(p, i, &neg);
        let mut l = 0.0;
        for &j in &pos {
            l += softmax_term(p, i, j, &negs, tau);
        }
        total += l / pos.len() as f64;
    }
    total / p.n as f64
}

fn naive_info_nce(p: &Pairs, tau: f64) -> f64 {
    naive_per_anchor(p, tau, &|_, _, negs| negs.to_vec())
}

fn naive_hard(p: &Pairs, tau: f64, k: usize) -> f64 {
    naive_per_anchor(p, tau, &|p, i, negs| hardest(p, i, negs, k))
}

/// `(1/N) Σ_i (λ Σ_{kept negatives} S − mean_{pos} S)`, `k = None` keeping them all.
fn naive_simple(p: &Pairs, lambda: f64, k: Option<usize>) -> f64 {
    let mut total = 0.0;
    for i in 0..p.n {
        let (pos, neg) = sets(p, i);
        let kept = match k {
            Some(k) => hardest(p, i, &neg, k),
            None => neg,
        };
        let mut l = 0.0;
        for &n in &kept {
            l += lambda * p.at(i, n);
        }
        if !pos.is_empty() {
            let mut sp = 0.0;
            for &j in &pos {
                sp += p.at(i, j);
            }
            l -= sp / pos.len() as f64;
        }
        total += l;
    }
    total / p.n as f64
}

/// `ln mean_{pairs} e^{−t(2 − 2S)}` over every (anchor, reference) pair but the self-pairs
/// of the batch.
fn naive_uniformity(p: &Pairs, t: f64) -> f64 {
    let (mut total, mut pairs) = (0.0, 0usize);
    for i in 0..p.n {
        for j in 0..p.m {
            if p.batch && i == j {
                continue;
            }
            total += (-t * (2.0 - 2.0 * p.at(i, j))).exp();
            pairs += 1;
        }
    }
    (total / pairs as f64).ln()
}

/// The mean of `S` over the same-label pairs (0 without any).
fn naive_tolerance(p: &Pairs) -> f64 {
    let (mut total, mut pairs) = (0.0, 0usize);
    for i in 0..p.n {
        for j in 0..p.m {
            if p.is_pos(i, j) {
                total += p.at(i, j);
                pairs += 1;
            }
        }
    }
    if pairs == 0 {
        0.0
    } else {
        total / pairs as f64
    }
}

// ---------------------------------------------------------------------------------------
// The suites every pairs loss shares
// ---------------------------------------------------------------------------------------

macro_rules! shared_suites {
    ($module:ident, $loss:expr, $naive:expr) => {
        mod $module {
            use super::*;

            #[test]
            fn value_matches_naive_loops() {
                check_pairs_values(&$loss, &|l, m| l.metric = m, &$naive, 1e-12);
            }

            #[test]
            fn gradient_through_the_similarity_matches_finite_differences() {
                check_pairs_gradients(&$loss, &|l, m| l.metric = m, 1e-6);
            }

            #[test]
            fn pair_weights_are_the_derived_gradient() {
                check_pairs_weights(&$loss, 1e-6);
            }

            #[test]
            fn permutation_invariance() {
                check_pairs_permutation(&$loss);
            }

            #[test]
            fn f32_agrees_with_f64() {
                check_pairs_precisions(&$loss, 1e-4);
            }

            #[test]
            fn input_errors() {
                check_pairs_errors(&$loss);
            }
        }
    };
}

// τ = 0.5 keeps the naive exponentials far from overflow on dot products of the suites'
// embeddings; the defaults get their own value tests below
shared_suites!(nt_xent, NtXent::new().with_tau(0.5), |p: &Pairs| {
    naive_nt_xent(p, 0.5)
});
shared_suites!(nt_xent_default, NtXent::default(), |p: &Pairs| {
    naive_nt_xent(p, 0.07)
});
shared_suites!(info_nce, InfoNce::default(), |p: &Pairs| naive_info_nce(
    p, 0.2
));
shared_suites!(
    simple,
    SimpleContrastive::new().with_lambda(0.3),
    |p: &Pairs| { naive_simple(p, 0.3, None) }
);
shared_suites!(
    hard,
    HardContrastive::new().with_k_hard(2.0),
    |p: &Pairs| naive_hard(p, 0.2, 2)
);
shared_suites!(
    hard_simple,
    HardSimpleContrastive::new()
        .with_k_hard(2.0)
        .with_lambda(0.5),
    |p: &Pairs| naive_simple(p, 0.5, Some(2))
);
shared_suites!(uniformity, Uniformity::default(), |p: &Pairs| {
    naive_uniformity(p, 2.0)
});
shared_suites!(tolerance, Tolerance::default(), naive_tolerance);

// ---------------------------------------------------------------------------------------
// NT-Xent
// ---------------------------------------------------------------------------------------

#[test]
fn defaults_are_the_documented_ones() {
    assert_eq!(NtXent::default().tau, 0.07);
    assert_eq!(NtXent::default().metric, Metric::Cosine);
    assert_eq!(InfoNce::default().tau, 0.2);
    assert_eq!(SimpleContrastive::default().lambda, 1.0);
    let h = HardContrastive::default();
    assert_eq!((h.tau, h.k_hard, h.max_work), (0.2, 1e18, 2e10));
    let h = HardSimpleContrastive::default();
    assert_eq!((h.lambda, h.k_hard, h.max_work), (1.0, 1e18, 2e10));
    assert_eq!(Uniformity::default().t, 2.0);
    assert_eq!(Tolerance::default().metric, Metric::Cosine);
}

/// PML's reduction is the mean over positive pairs, not over anchors: an anchor with
/// three positives weighs three times one with a single positive.
#[test]
fn nt_xent_averages_over_positive_pairs() {
    // class 0 has four members (three positives each), class 1 two (one each)
    let y = [0, 0, 0, 0, 1, 1];
    let mut rng = Rng::new(0xc0de_0001);
    let s = random_similarities(&mut rng, 6, 6, true);
    let p = Pairs::batch(&s, &y);
    let tau = 0.5;
    let loss = NtXent::new().with_tau(tau);
    let got = sim_value::<f64, _>(&loss, &s, &y, None).unwrap();
    // by hand: 4·3 + 2·1 = 14 positive pairs
    let mut total = 0.0;
    for i in 0..6 {
        let (pos, neg) = sets(&p, i);
        for &j in &pos {
            total += softmax_term(&p, i, j, &neg, tau);
        }
    }
    assert_close(got, total / 14.0, 1e-14, 0.0, "mean over 14 pairs");
    let per_anchor = sim_value::<f64, _>(&InfoNce::new().with_tau(tau), &s, &y, None).unwrap();
    assert!((got - per_anchor).abs() > 1e-3, "{got} vs {per_anchor}");

    // two views of each item: one positive per anchor, and the two reductions agree
    let y = [0, 1, 2, 0, 1, 2];
    let nt = sim_value::<f64, _>(&loss, &s, &y, None).unwrap();
    let info = sim_value::<f64, _>(&InfoNce::new().with_tau(tau), &s, &y, None).unwrap();
    assert_close(nt, info, 1e-14, 0.0, "two views");
}

/// Values of pytorch-metric-learning's `NTXentLoss` in float64 (pytorch-metric-learning 2.9.0, torch 2.15, computed once;
/// `benches/pytorch_nt_xent.py --check` prints them) on the batch below: three members of
/// class 0, three of class 1 (six positive pairs each) and a singleton, at τ = 0.07 (the
/// default) and τ = 0.5.
#[test]
fn nt_xent_matches_pml_values() {
    let e = [
        0.5, -0.25, 1.0, //
        -1.0, 0.75, 0.125, //
        0.25, 0.5, -0.5, //
        0.625, -0.125, 0.875, //
        -0.75, 1.0, 0.0, //
        0.0, 0.375, -0.625, //
        1.0, 0.25, 0.5,
    ];
    let y = [0, 1, 0, 1, 0, 1, 2];
    for (tau, pml) in [(0.07, 17.56721274200849), (0.5, 2.960994943069965)] {
        let loss = NtXent::new().with_tau(tau);
        let got = emb_value::<f64, _>(&loss, &e, 3, &y).unwrap();
        let s = naive_similarity(Metric::Cosine, &e, &e, 3);
        let want = naive_nt_xent(&Pairs::batch(&s, &y), tau);
        assert_close(got, want, 1e-13, 0.0, &format!("naive, τ = {tau}"));
        assert_close(got, pml, 1e-12, 0.0, &format!("pml, τ = {tau}"));
    }
}

/// PML's `NTXentLoss` with a reference set (`ref_emb`, `ref_labels`: three keys and a
/// queue of two), float64: NT-Xent, and InfoNCE at the same τ (one positive per anchor),
/// against the values `benches/pytorch_nt_xent.py --check` prints.
#[test]
fn nt_xent_and_info_nce_with_a_queue_match_pml_values() {
    let q = [0.5, -0.25, 1.0, -1.0, 0.75, 0.125, 0.25, 0.5, -0.5];
    let r = [
        0.625, -0.125, 0.875, //
        -0.75, 1.0, 0.0, //
        0.0, 0.375, -0.625, //
        1.0, 0.25, 0.5, //
        0.125, -1.0, 0.25,
    ];
    let labels = PairLabels {
        labels: &[0, 1, 2],
        ref_labels: &[0, 1, 2, 3, 4],
    };
    for (tau, pml) in [(0.07, 0.007448096953340815), (0.2, 0.13154004606446867)] {
        let nt = refs_value::<f64, _>(&NtXent::new().with_tau(tau), &q, &r, 3, &labels).unwrap();
        assert_close(nt, pml, 1e-12, 0.0, &format!("nt_xent, τ = {tau}"));
        let info = refs_value::<f64, _>(&InfoNce::new().with_tau(tau), &q, &r, 3, &labels).unwrap();
        assert_close(info, pml, 1e-12, 0.0, &format!("info_nce, τ = {tau}"));
    }
}

/// Batches without a positive pair give 0; a single class (no negative anywhere) gives 0,
/// as PML's zero loss; both with a zero gradient.
#[test]
fn nt_xent_and_info_nce_without_valid_pairs_are_zero() {
    check_no_valid_pairs(&NtXent::default());
    check_no_valid_pairs(&InfoNce::default());
    check_no_valid_pairs(&HardContrastive::default().with_k_hard(1.0));
}

/// A temperature far below the spread of the similarities does not overflow: the
/// log-sum-exp is shifted and the softplus linear there, in f32 too.
#[test]
fn nt_xent_is_stable_at_small_temperatures() {
    let loss = NtXent::new().with_tau(1e-3);
    let (s, y, ry) = ([0.2, 0.9, -0.5], [0], [0, 1, 2]);
    for (v, g) in [
        sim_value_and_grad::<f64, _>(&loss, &s, &y, Some(&ry)),
        sim_value_and_grad::<f32, _>(&loss, &s, &y, Some(&ry)),
    ] {
        assert_close(v, 700.0, 1e-5, 0.0, "(0.9 − 0.2)/τ");
        assert_close(g[0], -1000.0, 1e-5, 0.0, "positive");
        assert_close(g[1], 1000.0, 1e-5, 0.0, "hardest negative");
        assert!(g[2].abs() < 1e-6, "{g:?}");
    }
}

// ---------------------------------------------------------------------------------------
// InfoNCE: the paper's gradient identities
// ---------------------------------------------------------------------------------------

/// One positive per anchor (the reference with the anchor's label, here the diagonal of a
/// reference set with a queue): `∂L/∂S_ii = −(1 − P_ii)/(τN)`, `∂L/∂S_ik = P_ik/(τN)`, each
/// row of the gradient sums to 0, and the positive's weight equals the sum of the
/// negatives' (the paper's "the magnitude of the positive gradient is the sum of the
/// negative ones").
#[test]
fn info_nce_gradient_identities() {
    let mut rng = Rng::new(0xc0de_0002);
    let (n, m, tau) = (5, 9, 0.2);
    let y: Vec<usize> = (0..n).collect();
    let ry: Vec<usize> = (0..m).collect(); // keys 0..5, then a queue of four
    let s = random_similarities(&mut rng, n, m, false);
    let loss = InfoNce::default();
    let w = weights::<f64, _>(&loss, &s, &y, Some(&ry)).unwrap();
    for i in 0..n {
        let row = &s[i * m..(i + 1) * m];
        let z: f64 = row.iter().map(|x| (x / tau).exp()).sum();
        let p: Vec<f64> = row.iter().map(|x| (x / tau).exp() / z).collect();
        for (k, &pk) in p.iter().enumerate() {
            let want = if k == i {
                -(1.0 - pk) / (tau * n as f64)
            } else {
                pk / (tau * n as f64)
            };
            assert_close(w[i * m + k], want, 1e-12, 1e-15, &format!("w[{i}][{k}]"));
        }
        let sum: f64 = w[i * m..(i + 1) * m].iter().sum();
        assert!(sum.abs() < 1e-14, "row {i} sums to {sum}");
    }
    let (v, _) = sim_value_and_grad::<f64, _>(&loss, &s, &y, Some(&ry));
    assert_close(
        v,
        naive_info_nce(&Pairs::refs(&s, &y, &ry), tau),
        1e-13,
        0.0,
        "value",
    );
}

/// τ → 0: `τ·L → mean_i max(0, max_k S_ik − S_ii)`, a hinge on the hardest negative,
/// within `τ·ln(M)`.
#[test]
fn info_nce_at_small_temperature_is_a_hinge() {
    let mut rng = Rng::new(0xc0de_0003);
    let (n, m) = (6, 10);
    let y: Vec<usize> = (0..n).collect();
    let ry: Vec<usize> = (0..m).collect();
    let s = random_similarities(&mut rng, n, m, false);
    let mut hinge = 0.0;
    for i in 0..n {
        let hardest = (0..m)
            .filter(|&k| k != i)
            .map(|k| s[i * m + k])
            .fold(f64::NEG_INFINITY, f64::max);
        hinge += (hardest - s[i * m + i]).max(0.0);
    }
    hinge /= n as f64;
    for tau in [1e-2, 1e-3, 1e-4] {
        let v = sim_value::<f64, _>(&InfoNce::new().with_tau(tau), &s, &y, Some(&ry)).unwrap();
        assert!(
            (tau * v - hinge).abs() <= tau * (m as f64).ln(),
            "τ = {tau}: τ·L = {} vs hinge {hinge}",
            tau * v
        );
    }
}

/// A queue is a reference tensor without a tape: the gradient reaches the queries and the
/// keys, and the value is the naive one over keys and queue.
#[test]
fn info_nce_with_a_queue_without_a_tape() {
    let mut rng = Rng::new(0xc0de_0004);
    let (b, k, d) = (4, 6, 3);
    let q = random_embeddings(&mut rng, b, d);
    let refs = random_embeddings(&mut rng, b + k, d);
    let y: Vec<usize> = (0..b).collect();
    let ry: Vec<usize> = (0..b + k).collect();
    let labels = PairLabels {
        labels: &y,
        ref_labels: &ry,
    };
    let dev: Cpu = Default::default();
    let qt = dev.tensor_from_vec(q.clone(), (b, d));
    let rt = dev.tensor_from_vec(refs.clone(), (b + k, d));
    let out = InfoNce::default().forward(WithRefs(qt.leaky_trace(), rt), &labels);
    let want = naive_info_nce(
        &Pairs::refs(&naive_similarity(Metric::Cosine, &q, &refs, d), &y, &ry),
        0.2,
    );
    assert_close(out.array(), want, 1e-12, 0.0, "value");
    let g = out.backward().get(&qt).as_vec();
    let fd = central_differences(
        &|q| refs_value::<f64, _>(&InfoNce::default(), q, &refs, d, &labels).unwrap(),
        &q,
        1e-6,
    );
    assert_all_close(&g, &fd, 1e-6, "queries");
}

/// InfoNCE (a mean of per-anchor terms) runs in row blocks and gives the whole-matrix
/// value and gradient; NT-Xent (a mean over pairs) and the metrics do not split.
#[test]
fn which_losses_split_by_anchors() {
    assert_eq!(<InfoNce as Kernel>::ROW_BLOCKS, RowBlocks::Mean);
    assert_eq!(<SimpleContrastive as Kernel>::ROW_BLOCKS, RowBlocks::Mean);
    assert_eq!(<HardContrastive as Kernel>::ROW_BLOCKS, RowBlocks::Mean);
    assert_eq!(
        <HardSimpleContrastive as Kernel>::ROW_BLOCKS,
        RowBlocks::Mean
    );
    assert_eq!(<NtXent as Kernel>::ROW_BLOCKS, RowBlocks::No);
    assert_eq!(<Uniformity as Kernel>::ROW_BLOCKS, RowBlocks::No);
    assert_eq!(<Tolerance as Kernel>::ROW_BLOCKS, RowBlocks::No);

    let mut rng = Rng::new(0xc0de_0005);
    let (n, d) = (13, 4);
    let e = random_embeddings(&mut rng, n, d);
    let y: Vec<usize> = (0..n).map(|i| i % 5).collect();
    let loss = InfoNce::default();
    let whole = with_pairs_path(PairsPath::Materialised, || {
        emb_value_and_grad::<f64, _>(&loss, &e, d, &y)
    });
    let blocks = with_pairs_path(PairsPath::RowBlocks { rows: 4 }, || {
        emb_value_and_grad::<f64, _>(&loss, &e, d, &y)
    });
    assert_close(blocks.0, whole.0, 1e-13, 0.0, "value");
    assert_all_close(&blocks.1, &whole.1, 1e-12, "gradient");
}

// ---------------------------------------------------------------------------------------
// The hard variants
// ---------------------------------------------------------------------------------------

/// With `k_hard` at least the number of negatives of every anchor nothing is dropped: the
/// hard loss is the standard one and the hard simple loss the simple one.
#[test]
fn hard_equals_standard_when_nothing_is_dropped() {
    let mut rng = Rng::new(0xc0de_0006);
    for &(n, m, classes) in &[(6, 6, 2), (9, 7, 3)] {
        let y = random_labels(&mut rng, n, classes);
        let ry = random_labels(&mut rng, m, classes);
        let s = random_similarities(&mut rng, n, m, false);
        for k in [m as f64, m as f64 + 0.5, 1e18] {
            let hard = HardContrastive::new().with_k_hard(k);
            let (v, g) = sim_value_and_grad::<f64, _>(&hard, &s, &y, Some(&ry));
            let (vs, gs) = sim_value_and_grad::<f64, _>(&InfoNce::default(), &s, &y, Some(&ry));
            assert_close(v, vs, 1e-15, 0.0, "hard = standard");
            assert_all_close(&g, &gs, 1e-15, "hard = standard, gradient");
            let hs = HardSimpleContrastive::new().with_k_hard(k);
            let v = sim_value::<f64, _>(&hs, &s, &y, Some(&ry)).unwrap();
            let vs = sim_value::<f64, _>(&SimpleContrastive::default(), &s, &y, Some(&ry)).unwrap();
            assert_close(v, vs, 1e-15, 0.0, "hard simple = simple");
        }
    }
}

/// The selection: only the `k_hard` most similar negatives get a gradient, every other
/// negative exactly 0; fewer kept negatives give a smaller loss; `k_hard` is rounded down.
#[test]
fn hard_keeps_the_k_most_similar_negatives() {
    // one anchor (label 0): positive 0.5; negatives 0.75, −0.25, 0.25, 0.625
    let (s, y, ry) = ([0.5, 0.75, -0.25, 0.25, 0.625], [0], [0, 1, 2, 3, 4]);
    let mut last = f64::INFINITY;
    for (k, kept) in [
        (4.0, vec![1, 2, 3, 4]),
        (3.0, vec![1, 3, 4]),
        (2.9, vec![1, 4]),
        (1.0, vec![1]),
    ] {
        let loss = HardContrastive::new().with_k_hard(k);
        let (v, g) = sim_value_and_grad::<f64, _>(&loss, &s, &y, Some(&ry));
        for (j, &gj) in g.iter().enumerate().skip(1) {
            assert_eq!(gj != 0.0, kept.contains(&j), "k = {k}: g = {g:?}");
            assert!(gj >= 0.0);
        }
        assert!(g[0] < 0.0);
        assert!(v < last, "k = {k}: {v} ≥ {last}");
        last = v;
        let p = Pairs::refs(&s, &y, &ry);
        let want = softmax_term(&p, 0, 0, &kept, 0.2);
        assert_close(v, want, 1e-14, 0.0, &format!("k = {k}"));
    }
}

/// Tied negatives at the boundary: the lower reference index is kept, so exactly
/// `k_hard` negatives are, as in the naive sort.
#[test]
fn hard_ties_go_to_the_lower_index() {
    let (s, y, ry) = ([0.5, 0.25, 0.75, 0.25, 0.25], [0], [0, 1, 2, 3, 4]);
    let loss = HardSimpleContrastive::new().with_k_hard(2.0);
    let w = weights::<f64, _>(&loss, &s, &y, Some(&ry)).unwrap();
    assert_eq!(w, [-1.0, 1.0, 1.0, 0.0, 0.0]);
    let p = Pairs::refs(&s, &y, &ry);
    assert_eq!(hardest(&p, 0, &[1, 2, 3, 4], 2), [2, 1]);
    let hard = HardContrastive::new().with_k_hard(2.0);
    let v = sim_value::<f64, _>(&hard, &s, &y, Some(&ry)).unwrap();
    assert_close(v, naive_hard(&p, 0.2, 2), 1e-14, 0.0, "value");
}

/// The simple losses' gradients are constant: `−1/(N·|pos(i)|)` on each positive, `λ/N`
/// on each (kept) negative, 0 elsewhere, whatever the similarities.
#[test]
fn simple_gradients_are_constant() {
    let mut rng = Rng::new(0xc0de_0007);
    let (n, lambda) = (8, 0.75);
    let y = random_labels(&mut rng, n, 3);
    for k in [None, Some(2)] {
        let mut first: Option<Vec<f64>> = None;
        for _ in 0..2 {
            let s = random_similarities(&mut rng, n, n, true);
            let p = Pairs::batch(&s, &y);
            let w = match k {
                None => {
                    let l = SimpleContrastive::new().with_lambda(lambda);
                    weights::<f64, _>(&l, &s, &y, None).unwrap()
                }
                Some(k) => {
                    let l = HardSimpleContrastive::new()
                        .with_lambda(lambda)
                        .with_k_hard(k as f64);
                    weights::<f64, _>(&l, &s, &y, None).unwrap()
                }
            };
            for i in 0..n {
                let (pos, neg) = sets(&p, i);
                let kept = match k {
                    Some(k) => hardest(&p, i, &neg, k),
                    None => neg.clone(),
                };
                for j in 0..n {
                    let want = if pos.contains(&j) {
                        -1.0 / (n * pos.len()) as f64
                    } else if kept.contains(&j) {
                        lambda / n as f64
                    } else {
                        0.0
                    };
                    assert_close(w[i * n + j], want, 1e-15, 1e-17, &format!("w[{i}][{j}]"));
                }
            }
            // without selection the weights do not depend on S at all
            if k.is_none() {
                if let Some(f) = &first {
                    assert_eq!(f, &w);
                }
                first = Some(w);
            }
        }
    }
}

/// The ranks cost `O(N·M²)`: a batch over `max_work` is refused before any work.
#[test]
fn hard_over_max_work_is_refused() {
    let mut rng = Rng::new(0xc0de_0008);
    let (n, m) = (4, 6);
    let y = random_labels(&mut rng, n, 2);
    let ry = random_labels(&mut rng, m, 2);
    let s = random_similarities(&mut rng, n, m, false);
    let work = (n * m * m) as f64;
    let tight = HardContrastive::new()
        .with_k_hard(2.0)
        .with_max_work(work - 1.0);
    let err = sim_value::<f64, _>(&tight, &s, &y, Some(&ry)).unwrap_err();
    assert!(
        matches!(
            err,
            LossError::TooMuchWork {
                loss: "hard_contrastive",
                ..
            }
        ),
        "{err:?}"
    );
    let tight = HardSimpleContrastive::new().with_max_work(work - 1.0);
    let err = sim_value::<f64, _>(&tight, &s, &y, Some(&ry)).unwrap_err();
    assert!(matches!(err, LossError::TooMuchWork { .. }), "{err:?}");
    let at = HardContrastive::new().with_k_hard(2.0).with_max_work(work);
    assert!(sim_value::<f64, _>(&at, &s, &y, Some(&ry)).is_ok());
}

// ---------------------------------------------------------------------------------------
// The metrics
// ---------------------------------------------------------------------------------------

/// The spec's known values: 0 for identical embeddings (the maximum), `−4t` for two
/// antipodal ones, whatever their norms; and the value from the distances of the
/// normalised embeddings themselves, over `i < j`.
#[test]
fn uniformity_known_values() {
    let u = Uniformity::default();
    let v = emb_value::<f64, _>(&u, &[0.3, -0.4, 0.6, -0.8, 0.3, -0.4], 2, &[0, 1, 2]).unwrap();
    assert_eq!(v, 0.0, "identical directions");
    let v = emb_value::<f64, _>(&u, &[0.6, 0.8, -1.2, -1.6], 2, &[0, 0]).unwrap();
    assert_close(v, -8.0, 1e-15, 0.0, "antipodal");
    let v =
        emb_value::<f64, _>(&u.clone().with_t(0.5), &[0.6, 0.8, -1.2, -1.6], 2, &[0, 1]).unwrap();
    assert_close(v, -2.0, 1e-15, 0.0, "antipodal, t = 0.5");

    // ln mean_{i<j} e^{−t‖f_i − f_j‖²} from the normalised embeddings
    let mut rng = Rng::new(0xc0de_0009);
    let (n, d) = (9, 4);
    let e = random_embeddings(&mut rng, n, d);
    let f: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            let row = &e[i * d..(i + 1) * d];
            let norm = row.iter().map(|x| x * x).sum::<f64>().sqrt();
            row.iter().map(|x| x / norm).collect()
        })
        .collect();
    let (mut total, mut pairs) = (0.0, 0.0);
    for (i, fi) in f.iter().enumerate() {
        for fj in &f[i + 1..] {
            let d2: f64 = fi.iter().zip(fj).map(|(a, b)| (a - b).powi(2)).sum();
            total += (-2.0 * d2).exp();
            pairs += 1.0;
        }
    }
    let y = vec![0; n];
    let got = emb_value::<f64, _>(&u, &e, d, &y).unwrap();
    assert_close(got, (total / pairs).ln(), 1e-13, 0.0, "pairwise distances");
    // a single embedding has no pair
    let err = emb_value::<f64, _>(&u, &[1.0, 2.0], 2, &[0]).unwrap_err();
    assert!(matches!(err, LossError::NonFiniteLoss { .. }), "{err:?}");
}

/// Tolerance: 1 when each class's embeddings coincide (in direction), the mean over
/// same-class pairs only (the other pairs do not dilute it), 0 without a same-class pair.
#[test]
fn tolerance_known_values() {
    let t = Tolerance::default();
    let e = [1.0, 0.0, 2.0, 0.0, 0.0, 1.0, 0.0, 0.5, 0.0, 3.0];
    let v = emb_value::<f64, _>(&t, &e, 2, &[0, 0, 1, 1, 1]).unwrap();
    assert_close(v, 1.0, 1e-15, 0.0, "coinciding classes");
    // class 0: cos = 0.6 (pair counted twice), class 1 one member: T = 0.6
    let e = [1.0, 0.0, 0.6, 0.8, -1.0, 0.0];
    let v = emb_value::<f64, _>(&t, &e, 2, &[0, 0, 1]).unwrap();
    assert_close(v, 0.6, 1e-15, 0.0, "one pair");
    let v = emb_value::<f64, _>(&t, &e, 2, &[0, 1, 2]).unwrap();
    assert_eq!(v, 0.0, "no same-class pair");
}
