//! SimLAP against the official `multipos_ce_loss` on the SimLAP logits, as plain f64
//! loops (centred rows, exponentials, masks), from the raw features and the gate; its
//! gradient against central differences; the edge cases; the pairing utility.

use dfdx::prelude::*;
use rand::{rngs::StdRng, SeedableRng};

use super::*;
use crate::testing::*;
use crate::testing_pairs::assert_all_close;
use crate::{Loss, PairLabels, WithRefs};

fn normalise(row: &[f64]) -> Vec<f64> {
    let norm = row.iter().map(|x| x * x).sum::<f64>().sqrt();
    row.iter().map(|x| x / norm).collect()
}

/// The official computation from the gated anchors `a` `[B, D]` and the candidates `k`
/// `[N, D]`: logits `a·k/τ`, centred per row, `S = exp`, `n_i` over the negatives, and the
/// mean over positive pairs of `ln(S_ij + n_i) − ℓ'_ij` (or FastSSL's per-anchor mean).
fn official(
    a: &[f64],
    k: &[f64],
    d: usize,
    (y1, y2, y_all): (&[usize], &[usize], &[usize]),
    tau: f64,
    per_anchor: bool,
) -> f64 {
    let (b, n) = (y1.len(), y_all.len());
    let mut logits = vec![0.0; b * n];
    for i in 0..b {
        for j in 0..n {
            let dot: f64 = (0..d).map(|t| a[i * d + t] * k[j * d + t]).sum();
            logits[i * n + j] = dot / tau;
        }
        let mean = logits[i * n..(i + 1) * n].iter().sum::<f64>() / n as f64;
        for j in 0..n {
            logits[i * n + j] -= mean;
        }
    }
    let (mut total, mut count, mut anchors) = (0.0, 0.0, 0.0);
    for i in 0..b {
        let negatives: f64 = (0..n)
            .filter(|&j| y_all[j] != y1[i] && y_all[j] != y2[i])
            .map(|j| logits[i * n + j].exp())
            .sum();
        let (mut row, mut row_count) = (0.0, 0.0);
        for j in (0..n).filter(|&j| y_all[j] == y2[i]) {
            let l = logits[i * n + j];
            row += (l.exp() + negatives).ln() - l;
            row_count += 1.0;
        }
        total += row;
        count += row_count;
        anchors += row / (row_count + 1e-6) / b as f64;
    }
    if per_anchor {
        anchors
    } else {
        total / count
    }
}

/// The gated anchors `g² ⊙ ẑ` and the normalised candidates, as the model computes them.
fn model_side(z1: &[f64], gate: &[f64], k2: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let a = z1
        .chunks(d)
        .zip(gate.chunks(d))
        .flat_map(|(z, g)| {
            normalise(z)
                .into_iter()
                .zip(g)
                .map(|(z, g)| g * g * z)
                .collect::<Vec<_>>()
        })
        .collect();
    let k = k2.chunks(d).flat_map(normalise).collect();
    (a, k)
}

/// The loss's value and `[∂a, ∂k]`.
fn call(
    loss: &Simlap,
    a: &[f64],
    k: &[f64],
    d: usize,
    (y1, y2, y_all): (&[usize], &[usize], &[usize]),
) -> (f64, Vec<f64>) {
    let dev: Cpu = Default::default();
    let (b, n) = (y1.len(), y_all.len());
    let ta: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(a.to_vec(), (b, d));
    let tk: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(k.to_vec(), (n, d));
    let mask: Vec<f64> = same_class_mask(y1, y_all);
    let labels = PairLabels {
        labels: y2,
        ref_labels: y_all,
    };
    let out = loss.forward(
        (WithRefs(ta.leaky_trace(), tk.leaky_trace()), mask),
        &labels,
    );
    let value = out.array();
    let grads = out.backward();
    let mut g = grads.get(&ta).as_vec();
    g.extend(grads.get(&tk).as_vec());
    (value, g)
}

struct Batch {
    a: Vec<f64>,
    k: Vec<f64>,
    y1: Vec<usize>,
    y2: Vec<usize>,
    y_all: Vec<usize>,
}

/// The official setting: the candidates are the batch itself (`k₂ = z₁`).
fn batch(rng: &mut Rng, b: usize, d: usize, classes: usize, pairing: Pairing) -> Batch {
    let z: Vec<f64> = (0..b * d).map(|_| rng.range(-1.0, 1.0)).collect();
    let gate: Vec<f64> = (0..b * d).map(|_| rng.range(0.05, 0.95)).collect();
    let y1: Vec<usize> = (0..b).map(|_| rng.below(classes)).collect();
    let mut generator = StdRng::seed_from_u64(rng.next_u64());
    let y2 = pair_classes(&mut generator, &y1, pairing, classes);
    let (a, k) = model_side(&z, &gate, &z, d);
    Batch {
        a,
        k,
        y_all: y1.clone(),
        y1,
        y2,
    }
}

#[test]
fn value_and_gradient_match_the_official_computation() {
    let mut rng = Rng::new(2001);
    let d = 4;
    for pairing in [Pairing::Arbitrary, Pairing::Identical, Pairing::Distinct] {
        for (b, classes) in [(6, 3), (9, 4)] {
            for (tau, per_anchor) in [(0.1, false), (0.5, false), (0.1, true)] {
                let t = batch(&mut rng, b, d, classes, pairing);
                let ys = (&t.y1[..], &t.y2[..], &t.y_all[..]);
                let loss = Simlap::new().with_tau(tau).with_per_anchor(per_anchor);
                let (value, grad) = call(&loss, &t.a, &t.k, d, ys);
                let what = format!("{pairing:?} B={b} τ={tau} per_anchor={per_anchor}");
                let want = official(&t.a, &t.k, d, ys, tau, per_anchor);
                assert_close(value, want, 1e-12, 1e-14, &what);
                let x = [t.a.clone(), t.k.clone()].concat();
                let fd = finite_differences(&x, |x| {
                    let (a, k) = x.split_at(b * d);
                    official(a, k, d, ys, tau, per_anchor)
                });
                assert_all_close(&grad, &fd, 1e-6, &format!("{what}: gradient"));
            }
        }
    }
}

/// Every candidate shares the anchor's class or its paired one: no negatives, loss 0.
/// No candidate has any anchor's paired class: no positives, loss 0 (not 0/0), and no
/// gradient.
#[test]
fn no_negatives_or_no_positives_give_zero() {
    let mut rng = Rng::new(2002);
    let d = 3;
    let t = batch(&mut rng, 4, d, 1, Pairing::Identical);
    let ys = (&t.y1[..], &t.y2[..], &t.y_all[..]);
    let (value, grad) = call(&Simlap::new(), &t.a, &t.k, d, ys);
    assert_eq!(value, 0.0);
    assert!(grad.iter().all(|g| *g == 0.0), "{grad:?}");
    let (y1, y2, y_all) = (vec![0, 1, 0, 1], vec![2, 2, 3, 3], vec![0, 1, 0, 1]);
    let (value, grad) = call(&Simlap::new(), &t.a, &t.k, d, (&y1, &y2, &y_all));
    assert_eq!(value, 0.0);
    assert!(grad.iter().all(|g| *g == 0.0), "{grad:?}");
}

/// With the same number of positives for every anchor, the per-anchor mean equals the
/// global one (up to FastSSL's 1e-6).
#[test]
fn per_anchor_equals_global_with_equal_positive_counts() {
    let mut rng = Rng::new(2003);
    let d = 3;
    let mut t = batch(&mut rng, 6, d, 3, Pairing::Identical);
    t.y1 = vec![0, 0, 1, 1, 2, 2];
    t.y_all = t.y1.clone();
    t.y2 = vec![1, 2, 0, 2, 0, 1];
    let ys = (&t.y1[..], &t.y2[..], &t.y_all[..]);
    let global = call(&Simlap::new(), &t.a, &t.k, d, ys).0;
    let anchors = call(&Simlap::new().with_per_anchor(true), &t.a, &t.k, d, ys).0;
    assert_close(anchors, global, 1e-5, 0.0, "per anchor vs global");
}

#[test]
fn pairings_follow_their_rules_and_seeds() {
    let labels: Vec<usize> = (0..50).map(|i| i % 7).collect();
    let draw = |seed, pairing| pair_classes(&mut StdRng::seed_from_u64(seed), &labels, pairing, 7);
    let distinct = draw(1, Pairing::Distinct);
    assert!(distinct.iter().zip(&labels).all(|(a, b)| a != b && *a < 7));
    let arbitrary = draw(2, Pairing::Arbitrary);
    let (mut sorted, mut want) = (arbitrary.clone(), labels.clone());
    sorted.sort_unstable();
    want.sort_unstable();
    assert_eq!(sorted, want, "a permutation of the labels");
    assert_ne!(arbitrary, labels, "shuffled");
    assert_eq!(draw(2, Pairing::Arbitrary), arbitrary, "the same seed");
    assert_eq!(draw(3, Pairing::Identical), labels);
    assert_eq!(
        pair_classes(&mut StdRng::seed_from_u64(4), &[0, 0], Pairing::Distinct, 1),
        vec![0, 0]
    );
}
