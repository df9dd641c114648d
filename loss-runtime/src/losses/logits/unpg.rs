//! UNPG: a margin head (ArcFace or CosFace) whose softmax also sees the batch's negative
//! pairs, filtered by a box-and-whisker rule.

use dfdx::prelude::*;

use crate::core::real::Real;
use crate::core::similarity::{similarity, Metric};
use crate::error::LossError;
use crate::loss;

/// UNPG (unified negative pair generation): an ArcFace or CosFace head whose every row
/// also competes against the cosines of the batch's *negative pairs* (two samples of
/// different identities). Those extra logits make the softmax see the pair structure a
/// metric loss would see, with no extra hyper-parameter but the whisker; outlying pairs
/// are dropped by a box-and-whisker rule.
///
/// Inputs: [`ClassCosines`](crate::ClassCosines)`(embeddings, weights)` (or a ready
/// cosine matrix), then the batch's pair cosines `sn` `[N, N]` and the 0/1 mask `keep`
/// `[N, N]` of the pairs that survive the filter, both made by [`unpg_negative_pairs`]:
///
/// ```text
/// target_i = cos(acos(clamp(z[i][y_i], −1 + 1e-7, 1 − 1e-7)) + m)   (ArcFace, no fallback)
///          = z[i][y_i] − m                                           (CosFace, `cosface`)
/// sn'      = { sn[p][q] : p < q, y_p ≠ y_q, keep[p][q] = 1 }          (K values, every row)
/// L        = (1/N) Σ_i [ ln( Σ_k e^{s·ℓ_ik} + Σ_{x ∈ sn'} e^{s·x} ) − s·target_i ]
///            ℓ_ik = target_i if k = y_i, else z[i][k]
/// ```
///
/// The pair logits are **not** detached: gradients reach the embeddings through each kept
/// pair's cosine, which sits in the softmax denominator of every row. Which pairs are kept
/// is decided with no gradient ([`unpg_box_and_whisker`]: sort the negative-pair cosines,
/// `Q1 = x[⌊l/4⌋]`, `Q3 = x[⌊3l/4⌋]`, keep `Q1 − wisk·IQR ≤ x ≤ Q3 + wisk·IQR`, both
/// ends included). The loss itself only counts pairs with `p < q` and different labels,
/// whatever the mask says. With no pair kept (one identity in the batch) it is the plain
/// margin loss, and it is never below it.
///
/// **Reference:** Junuk Jung, Seonhoon Lee, Heung-Seon Oh, Yongjun Park, Joochan Park,
/// Sungbin Son. *Unified Negative Pair Generation toward Well-discriminative Feature
/// Space for Face Recognition.* 2022 (arXiv 2203.11593). **Official code:**
/// `Jung-Jun-Uk/UNPG`, `recognition/models/build.py` (`box_and_whisker_algorithm`,
/// `convert_label_to_similarity`, `HeadAndLoss.forward`), `recognition/models/head.py`
/// (`ArcFace`, `CosFace`, `UNPG`), `recognition/data/head.zoo.yaml`.
///
/// **Defaults:** s = 64, m = 0.5 (the yaml's ArcFace and CosFace values; `head.py`'s
/// CosFace class default is 0.35), `wisk` = 1.5 in [`unpg_negative_pairs`] (the README's
/// K-FACE checkpoint name suggests 1.0).
///
/// **Code vs here.** The official ArcFace takes `acos` of unclamped cosines (NaN and an
/// infinite derivative past ±1); here they are clamped to `[−1 + 1e-7, 1 − 1e-7]`. The
/// official code stacks the pair logits once per GPU (and fails on a CPU-only machine);
/// here they are used once. With no negative pair the official code fails indexing an
/// empty list; here K = 0. Negatives are batch-local (no gathering across devices, as
/// the authors leave it). The MagFace head of the code is not provided. The filter is a
/// runtime step outside the loss because the compiler's runtime reductions range over one
/// index, not over pairs.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let e: Tensor<Rank2<6, 4>, f64, _> = dev.sample_normal();
/// let w: Tensor<Rank2<3, 4>, f64, _> = dev.sample_normal();
/// let labels = [0, 0, 1, 1, 2, 2];
/// let e = e.leaky_trace();
/// // the pair cosines share the embeddings' gradient through a tape-less copy
/// let (pairs, keep) = unpg_negative_pairs(e.with_empty_tape(), &labels, 1.5)?;
/// let loss = Unpg::default().forward((ClassCosines(e, w.leaky_trace()), pairs, &keep[..]), &labels);
/// let grads = loss.backward();
/// assert_eq!(grads.get(&w).shape(), &(Const::<3>, Const::<4>));
/// # Ok::<(), LossError>(())
/// ```
#[loss(
    logits,
    paper = "UNPG, unified negative pair generation (Jung et al., 2022); the logits are \
             cosines, `sn`/`keep` from unpg_negative_pairs"
)]
pub fn unpg(
    z: Logits,
    y: Labels,
    sn: Traced<samples, samples>,
    keep: Mask<samples, samples>,
    #[hyper(default = 64.0, positive, doc = "s, the scale of every logit")] s: f64,
    #[hyper(default = 0.5, doc = "m, the margin of the head")] m: f64,
    #[hyper(
        default = false,
        doc = "use the CosFace head (cos − m) instead of ArcFace's cos(θ + m)"
    )]
    cosface: bool,
) -> Scalar {
    // the kept negative pairs' logits, max-shifted (−∞ and an empty sum when none);
    // computed once per batch (the rows share them), so the loss costs O(N² + N·C)
    let top = detach(max(samples, |p| {
        max(
            samples.filter(|q| p < q && y[p] != y[q] && keep[p][q] > 0.5),
            |q| sn[p][q],
        )
    }));
    let total = sum(samples, |p| {
        sum(
            samples.filter(|q| p < q && y[p] != y[q] && keep[p][q] > 0.5),
            |q| exp(s * (sn[p][q] - top)),
        )
    });
    let pairs = s * top + ln(total);
    mean(samples, |i| {
        let c = clamp(z[i][y[i]], -1.0 + 1e-7, 1.0 - 1e-7);
        let target = select(cosface, z[i][y[i]] - m, cos(acos(c) + m));
        let row = logsumexp(classes, |k| s * select(k == y[i], target, z[i][k]));
        row + softplus(pairs - row) - s * target
    })
}

/// The box-and-whisker bounds of `values` (UNPG's filter): with `x` sorted ascending,
/// `Q1 = x[⌊l/4⌋]`, `Q3 = x[⌊3l/4⌋]` and `IQR = Q3 − Q1`, the bounds are
/// `(Q1 − wisk·IQR, Q3 + wisk·IQR)`; a value is kept when it lies within them, both
/// ends included. `None` for an empty list.
///
/// ```
/// use loss_runtime::unpg_box_and_whisker;
/// let xs = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 9.0];
/// let (lo, hi) = unpg_box_and_whisker(&xs, 1.5).unwrap();
/// // Q1 = x[2] = 0.3, Q3 = x[6] = 0.7: the far outlier 9.0 is dropped
/// assert!((lo + 0.3).abs() < 1e-12 && (hi - 1.3).abs() < 1e-12);
/// ```
pub fn unpg_box_and_whisker(values: &[f64], wisk: f64) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut x = values.to_vec();
    x.sort_by(f64::total_cmp);
    let l = x.len();
    let (q1, q3) = (x[l / 4], x[3 * l / 4]);
    let iqr = q3 - q1;
    Some((q1 - wisk * iqr, q3 + wisk * iqr))
}

/// The pair cosines `[N, N]` (traced like the embeddings) and the row-major 0/1 mask of
/// the kept negative pairs, as [`unpg_negative_pairs`] returns them.
pub type NegativePairs<N, E, T> = (Tensor<(N, N), E, Cpu, T>, Vec<E>);

/// The batch's pair cosines `[N, N]` through the [similarity op](crate::similarity)
/// (traced: gradients reach `embeddings`), and the 0/1 mask `[N, N]` of the negative pairs
/// (`p < q`, different labels) that survive UNPG's box-and-whisker filter with whisker
/// `wisk` ([`unpg_box_and_whisker`]). Pass both to [`Unpg`] after the cosines.
///
/// Give it a copy of the embeddings that shares their gradient, `e.with_empty_tape()`,
/// and pass `e` itself to [`ClassCosines`](crate::ClassCosines): both paths add into
/// the same gradient.
///
/// # Errors
/// Empty or non-finite embeddings, a label count other than N, or a negative or
/// non-finite `wisk`.
pub fn unpg_negative_pairs<N, D, E, T>(
    embeddings: Tensor<(N, D), E, Cpu, T>,
    labels: &[usize],
    wisk: f64,
) -> Result<NegativePairs<N, E, T>, LossError>
where
    N: Dim,
    D: Dim,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    if !(wisk >= 0.0 && wisk.is_finite()) {
        return Err(LossError::InvalidHyper {
            loss: "unpg",
            name: "wisk",
            value: wisk,
            constraint: "finite and >= 0",
        });
    }
    let (n, d) = (embeddings.shape().0.size(), embeddings.shape().1.size());
    if n == 0 || d == 0 {
        return Err(LossError::EmptyBatch {
            input: "embeddings",
        });
    }
    if labels.len() != n {
        return Err(LossError::BatchSizeMismatch {
            expected_by: "embeddings",
            expected: n,
            found_in: "labels",
            found: labels.len(),
        });
    }
    let values = crate::core::tape::try_read("a copy of `embeddings`", &embeddings)?;
    crate::family::check_finite("embeddings", &[n, d], &values)?;
    let sn = similarity(embeddings, Metric::Cosine);
    let s = sn.as_vec();
    let negatives = |p: usize, q: usize| p < q && labels[p] != labels[q];
    let list: Vec<f64> = (0..n * n)
        .filter(|&k| negatives(k / n, k % n))
        .map(|k| s[k].to_f64())
        .collect();
    let mut keep = vec![E::zero(); n * n];
    if let Some((lo, hi)) = unpg_box_and_whisker(&list, wisk) {
        for (k, x) in keep.iter_mut().enumerate() {
            let v = s[k].to_f64();
            if negatives(k / n, k % n) && lo <= v && v <= hi {
                *x = E::one();
            }
        }
    }
    Ok((sn, keep))
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use super::*;
    use crate::check::{gradient_of, Tolerance};
    use crate::testing::*;
    use crate::{class_cosines, ClassCosines, Loss};

    type M = Tensor<(usize, usize), f64, Cpu>;

    fn dev() -> Cpu {
        Default::default()
    }

    fn mat(v: &[f64], r: usize, c: usize) -> M {
        dev().tensor_from_vec(v.to_vec(), (r, c))
    }

    /// The official head and filter with plain loops: normalise, cosines, the margin on
    /// the label's column, the negative-pair list (upper triangle, different labels),
    /// the box-and-whisker filter, the K extra columns on every row, mean CE.
    #[allow(clippy::too_many_arguments)] // reason: the official head's parameters, as they are
    fn official(
        e: &[f64],
        w: &[f64],
        d: usize,
        y: &[usize],
        s: f64,
        m: f64,
        cosface: bool,
        wisk: f64,
    ) -> f64 {
        let unit = |x: &[f64]| {
            let n = x.iter().map(|v| v * v).sum::<f64>().sqrt();
            x.iter().map(|v| v / n).collect::<Vec<_>>()
        };
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let ue: Vec<Vec<f64>> = e.chunks(d).map(unit).collect();
        let uw: Vec<Vec<f64>> = w.chunks(d).map(unit).collect();
        let n = y.len();
        let mut sn = Vec::new();
        for p in 0..n {
            for q in p + 1..n {
                if y[p] != y[q] {
                    sn.push(dot(&ue[p], &ue[q]));
                }
            }
        }
        let mut kept = Vec::new();
        if !sn.is_empty() {
            let mut sorted = sn.clone();
            sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let l = sorted.len();
            let (q1, q3) = (
                sorted[(0.25 * l as f64) as usize],
                sorted[(0.75 * l as f64) as usize],
            );
            let iqr = q3 - q1;
            kept = sn
                .into_iter()
                .filter(|&x| q1 - wisk * iqr <= x && x <= q3 + wisk * iqr)
                .collect();
        }
        let mut total = 0.0;
        for i in 0..n {
            let mut row: Vec<f64> = uw.iter().map(|wc| dot(&ue[i], wc)).collect();
            let cy = row[y[i]];
            row[y[i]] = if cosface {
                cy - m
            } else {
                (cy.acos() + m).cos()
            };
            row.extend(&kept);
            let scaled: Vec<f64> = row.iter().map(|v| s * v).collect();
            let top = scaled.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = top + scaled.iter().map(|v| (v - top).exp()).sum::<f64>().ln();
            total += lse - scaled[y[i]];
        }
        total / n as f64
    }

    fn value(e: &[f64], w: &[f64], d: usize, y: &[usize], loss: &Unpg, wisk: f64) -> f64 {
        let n = y.len();
        let (pairs, keep) = unpg_negative_pairs(mat(e, n, d), y, wisk).unwrap();
        let cos = class_cosines(mat(e, n, d), mat(w, w.len() / d, d));
        loss.forward((cos, pairs, &keep[..]), y).array()
    }

    fn case(rng: &mut Rng, n: usize, c: usize, d: usize) -> (Vec<f64>, Vec<f64>, Vec<usize>) {
        let e = (0..n * d).map(|_| rng.range(-1.0, 1.0)).collect();
        let w = (0..c * d).map(|_| rng.range(-1.0, 1.0)).collect();
        let y = (0..n).map(|_| rng.below(c)).collect();
        (e, w, y)
    }

    #[test]
    fn values_match_the_official_head() {
        let mut rng = Rng::new(701);
        for (n, c, d) in [(2, 2, 3), (8, 3, 4), (24, 6, 5)] {
            let (e, w, y) = case(&mut rng, n, c, d);
            for cosface in [false, true] {
                for (s, m, wisk) in [(64.0, 0.5, 1.5), (10.0, 0.35, 0.0), (5.0, 0.2, 100.0)] {
                    let loss = Unpg::new().with_s(s).with_m(m).with_cosface(cosface);
                    let got = value(&e, &w, d, &y, &loss, wisk);
                    let want = official(&e, &w, d, &y, s, m, cosface, wisk);
                    assert_close(
                        got,
                        want,
                        1e-10,
                        1e-10,
                        &format!("n={n} cosface={cosface} wisk={wisk}"),
                    );
                }
            }
        }
    }

    /// One identity: K = 0 and the loss is the plain margin head; otherwise it is never
    /// below it; a huge whisker keeps every negative pair.
    #[test]
    fn no_pairs_lower_bound_and_no_filtering() {
        let mut rng = Rng::new(702);
        let (e, w, _) = case(&mut rng, 6, 3, 4);
        let same = [1; 6];
        let (pairs, keep) = unpg_negative_pairs(mat(&e, 6, 4), &same, 1.5).unwrap();
        assert!(keep.iter().all(|&k| k == 0.0));
        let cos = class_cosines(mat(&e, 6, 4), mat(&w, 3, 4));
        let loss = Unpg::new().with_s(8.0);
        let v = loss
            .forward((cos.clone(), pairs.clone(), &keep[..]), &same)
            .array();
        let arc = crate::ElasticFaceArc::new().with_s(8.0).with_sigma(0.0);
        let plain = arc.forward((cos.clone(), vec![0.0; 6]), &same).array();
        assert_close(v, plain, 1e-12, 1e-12, "K = 0");
        // its gradient is finite, and zero on the pairs
        let grads = loss
            .forward((cos.leaky_trace(), pairs.leaky_trace(), &keep[..]), &same)
            .backward();
        let st = pairs;
        assert!(grads.get(&st).as_vec().iter().all(|&g| g == 0.0));
        let y = [0, 1, 2, 0, 1, 2];
        let (pairs, keep) = unpg_negative_pairs(mat(&e, 6, 4), &y, 1e9).unwrap();
        let negatives = (0..36)
            .filter(|&k| k / 6 < k % 6 && y[k / 6] != y[k % 6])
            .count();
        assert_eq!(keep.iter().filter(|&&k| k == 1.0).count(), negatives);
        let v = loss.forward((cos.clone(), pairs, &keep[..]), &y).array();
        let plain = arc.forward((cos, vec![0.0; 6]), &y).array();
        assert!(v > plain, "{v} {plain}");
    }

    #[test]
    fn box_and_whisker_on_a_hand_made_list() {
        let xs = [0.5, 0.1, 0.4, 0.2, 0.3, 0.8, 0.6, 0.7, -5.0];
        // sorted: −5, .1, .2, .3, .4, .5, .6, .7, .8; Q1 = x[2] = .2, Q3 = x[6] = .6
        let (lo, hi) = unpg_box_and_whisker(&xs, 1.0).unwrap();
        assert!((lo - (0.2 - 0.4)).abs() < 1e-12 && (hi - 1.0).abs() < 1e-12);
        let kept: Vec<f64> = xs.iter().copied().filter(|&x| lo <= x && x <= hi).collect();
        assert_eq!(kept.len(), 8);
        // both ends are included
        let (lo, hi) = unpg_box_and_whisker(&[1.0, 2.0, 3.0, 4.0], 0.0).unwrap();
        assert_eq!((lo, hi), (2.0, 4.0));
        assert_eq!(unpg_box_and_whisker(&[], 1.5), None);
    }

    /// Permuting the batch leaves the loss unchanged (the negative pairs are the same
    /// multiset).
    #[test]
    fn permutation_invariance() {
        let mut rng = Rng::new(703);
        let (n, c, d) = (10, 4, 3);
        let (e, w, y) = case(&mut rng, n, c, d);
        let loss = Unpg::new().with_s(16.0);
        let base = value(&e, &w, d, &y, &loss, 1.5);
        let order = rng.permutation(n);
        let ep: Vec<f64> = order
            .iter()
            .flat_map(|&i| e[i * d..i * d + d].to_vec())
            .collect();
        let yp: Vec<usize> = order.iter().map(|&i| y[i]).collect();
        assert_close(
            value(&ep, &w, d, &yp, &loss, 1.5),
            base,
            1e-12,
            1e-12,
            "permuted",
        );
    }

    /// Gradients against finite differences: through the cosines and the pair cosines
    /// (W frozen, the embeddings still get gradient through the pairs), and end to end
    /// to the embeddings (the kept set held fixed near the point).
    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = Rng::new(704);
        let (n, c, d) = (6, 3, 4);
        let (e, w, y) = case(&mut rng, n, c, d);
        let (pairs, keep) = unpg_negative_pairs(mat(&e, n, d), &y, 1.5).unwrap();
        let cos = class_cosines(mat(&e, n, d), mat(&w, c, d));
        for cosface in [false, true] {
            let loss = Unpg::new().with_s(6.0).with_cosface(cosface);
            let report = gradient_of(
                |x| loss.try_forward((x, pairs.clone(), &keep[..]), &y),
                &cos,
                Tolerance::default(),
            );
            assert!(report.unwrap().passed(), "cosines");
            let report = gradient_of(
                |x| loss.try_forward((cos.leaky_trace(), x, &keep[..]), &y),
                &pairs,
                Tolerance::default(),
            );
            assert!(report.unwrap().passed(), "pairs");
            let wt = mat(&w, c, d);
            let report = gradient_of(
                |x| {
                    let (p, _) = unpg_negative_pairs(x.with_empty_tape(), &y, 1.5)?;
                    loss.try_forward((ClassCosines(x, wt.clone()), p, &keep[..]), &y)
                },
                &mat(&e, n, d),
                Tolerance::default(),
            );
            assert!(report.unwrap().passed(), "embeddings");
        }
        // with W frozen, the pairs alone still move the embeddings
        let loss = Unpg::new().with_s(6.0);
        let et = mat(&e, n, d);
        let x = et.leaky_trace();
        let (p, k) = unpg_negative_pairs(x.with_empty_tape(), &y, 1e9).unwrap();
        let with = loss
            .forward((ClassCosines(x, mat(&w, c, d)), p, &k[..]), &y)
            .backward();
        let x = et.leaky_trace();
        let (p, _) = unpg_negative_pairs(x.with_empty_tape(), &y, 1e9).unwrap();
        let without = loss
            .forward((ClassCosines(x, mat(&w, c, d)), p, vec![0.0; n * n]), &y)
            .backward();
        assert_ne!(with.get(&et).as_vec(), without.get(&et).as_vec());
    }

    #[test]
    fn errors() {
        let e = mat(&[1.0, 0.0, 0.0, 1.0], 2, 2);
        assert!(matches!(
            unpg_negative_pairs(e.clone(), &[0], 1.5),
            Err(LossError::BatchSizeMismatch { .. })
        ));
        assert!(matches!(
            unpg_negative_pairs(e.clone(), &[0, 1], -1.0),
            Err(LossError::InvalidHyper { name: "wisk", .. })
        ));
        assert!(matches!(
            unpg_negative_pairs(mat(&[1.0, f64::NAN, 0.0, 1.0], 2, 2), &[0, 1], 1.5),
            Err(LossError::NonFinite {
                input: "embeddings",
                ..
            })
        ));
        let (pairs, _) = unpg_negative_pairs(e.clone(), &[0, 1], 1.5).unwrap();
        let cos = mat(&[0.5, 0.1, 0.2, 0.3], 2, 2);
        let err = Unpg::new()
            .try_forward((cos, pairs, vec![0.5; 4]), &[0, 1][..])
            .unwrap_err();
        assert!(
            matches!(err, LossError::NotAMask { input: "keep", .. }),
            "{err:?}"
        );
    }
}
