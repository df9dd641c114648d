//! ArcFace: softmax cross-entropy on scaled cosines, with an additive angular margin on
//! the label's class.

use crate::loss;

/// ArcFace: the label's class must win by an *angle* `m`. The cosine between a sample's
/// embedding and its class weight is replaced by the cosine of the angle plus `m`, so the
/// softmax over the scaled cosines asks for every sample to sit at least `m` radians
/// closer to its class centre than the decision boundary.
///
/// The logits `z` are cosines: pass [`ClassCosines`](crate::ClassCosines)`(embeddings,
/// weights)` (the class weights `[C, d]` a trainable tensor), or a ready cosine matrix.
///
/// ```text
/// c_i   = clamp(z[i][y_i], −1 + 1e-7, 1 − 1e-7)
/// φ_i   = cos(acos(c_i) + m)                                    if c_i > cos(π − m)
///       = c_i − m·sin(π − m)                                    otherwise (θ + m would pass π)
///   easy_margin:  φ_i = cos(acos(c_i) + m) if c_i > 0, else c_i
/// ℓ_ik  = s·φ_i if k = y_i, else s·z[i][k]
/// L     = (1/N) Σ_i [ logsumexp_k ℓ_ik − s·φ_i ]
/// ```
///
/// Without the fallback, `cos(θ + m)` would rise again once `θ + m > π`, rewarding a
/// sample for moving *away* from its class; insightface replaces it there by the cosine
/// minus a constant (`threshold`/`mm` in its code), so the target logit keeps decreasing
/// with θ. `easy_margin` applies the margin only where the cosine is positive.
///
/// **Reference:** Jiankang Deng, Jia Guo, Niannan Xue, Stefanos Zafeiriou. *ArcFace:
/// Additive Angular Margin Loss for Deep Face Recognition.* CVPR 2019.
/// **Official code:** `deepinsight/insightface` (`recognition/`, the margin head of its
/// training scripts: `cos_m`, `sin_m`, `threshold = cos(π − m)`, `mm = sin(π − m)·m`,
/// `easy_margin`).
///
/// **Defaults:** s = 64, m = 0.5, `easy_margin = false` (the paper's and insightface's).
///
/// **Code vs here.** insightface computes `cos(θ + m)` as `c·cos m − √(1 − c²)·sin m`;
/// here it is `cos(acos(c) + m)`, the same value. The cosine is clamped to
/// `[−1 + 1e-7, 1 − 1e-7]` before `acos`, whose derivative is infinite at ±1: values
/// differ from insightface's only for a label cosine within 1e-7 of ±1 (by at most
/// `sin(m)·√(2e-7) ≈ 2e-4`), and the gradient through the clamp is 0 there. At the
/// switch `c = cos(π − m)` the target logit jumps (as in insightface); the gradient
/// follows the branch taken. The embedding and weight normalisation (`max(‖x‖, 1e-12)`)
/// is the [class-cosine op](crate::core::class_cosines)'s.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let e: Tensor<Rank2<3, 4>, f64, _> = dev.tensor([[1.0, 0.2, 0.0, -0.3], [0.1, 0.9, 0.4, 0.0], [0.0, 0.0, 1.0, 1.0]]);
/// let w: Tensor<Rank2<2, 4>, f64, _> = dev.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0]]);
/// let labels = [0, 1, 1];
/// let arc = ArcFace::default().forward(ClassCosines(e.leaky_trace(), w.leaky_trace()), &labels);
/// // the margin only makes the task harder: above plain softmax CE on s·cos
/// let plain = ArcFace::default().with_m(0.0).forward(ClassCosines(e.clone(), w.clone()), &labels);
/// assert!(arc.array() > plain.array());
/// let grads = arc.backward();
/// assert_eq!(grads.get(&w).shape(), &(Const::<2>, Const::<4>));
/// ```
#[loss(
    logits,
    paper = "ArcFace, additive angular margin (Deng et al., CVPR 2019); the logits are cosines"
)]
pub fn arc_face(
    z: Logits,
    y: Labels,
    #[hyper(default = 64.0, positive, doc = "s, the scale applied to the cosines")] s: f64,
    #[hyper(
        default = 0.5,
        range(0.0, 3.141592653589793),
        doc = "m, the additive angular margin in radians"
    )]
    m: f64,
    #[hyper(
        default = false,
        doc = "apply the margin only where the label's cosine is positive (insightface's \
               `easy_margin`), instead of the `cos(π − m)` threshold fallback"
    )]
    easy_margin: bool,
) -> PerSample {
    let c = clamp(z[i][y[i]], -1.0 + 1e-7, 1.0 - 1e-7);
    let margin = cos(acos(c) + m);
    let target = select(
        easy_margin,
        select(c > 0.0, margin, c),
        select(
            c > cos(3.141592653589793 - m),
            margin,
            c - m * sin(3.141592653589793 - m),
        ),
    );
    logsumexp(classes, |k| s * select(k == y[i], target, z[i][k])) - s * target
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use super::*;
    use crate::check::{gradient_of, Tolerance};
    use crate::testing::*;
    use crate::{ClassCosines, Loss};

    /// insightface's head, with plain loops: `c·cos m − √(1 − c²)·sin m`, the threshold
    /// (or easy-margin) fallback, then softmax CE of the scaled row.
    fn naive(z: &[f64], c: usize, y: &[usize], s: f64, m: f64, easy: bool) -> f64 {
        let n = y.len();
        let (cos_m, sin_m) = (m.cos(), m.sin());
        let th = (std::f64::consts::PI - m).cos();
        let mm = (std::f64::consts::PI - m).sin() * m;
        let mut total = 0.0;
        for i in 0..n {
            let mut row: Vec<f64> = z[i * c..(i + 1) * c].to_vec();
            let cy = row[y[i]];
            let sine = (1.0 - cy * cy).clamp(0.0, 1.0).sqrt();
            let phi = cy * cos_m - sine * sin_m;
            row[y[i]] = if easy {
                if cy > 0.0 {
                    phi
                } else {
                    cy
                }
            } else if cy > th {
                phi
            } else {
                cy - mm
            };
            let scaled: Vec<f64> = row.iter().map(|v| s * v).collect();
            let top = scaled.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = top + scaled.iter().map(|v| (v - top).exp()).sum::<f64>().ln();
            total += lse - scaled[y[i]];
        }
        total / n as f64
    }

    /// Cosines uniform in [−1, 1], the label's column spread over both branches.
    fn cosines(rng: &mut Rng, n: usize, c: usize) -> (Vec<f64>, Vec<usize>) {
        random_logits(rng, n, c, 0.999)
    }

    #[test]
    fn values_match_insightface() {
        let mut rng = Rng::new(3001);
        for (n, c) in [(1, 2), (5, 3), (16, 10)] {
            let (z, y) = cosines(&mut rng, n, c);
            for (s, m) in [(64.0, 0.5), (30.0, 0.3), (1.0, 0.0), (10.0, 1.2)] {
                for easy in [false, true] {
                    let loss = ArcFace::new().with_s(s).with_m(m).with_easy_margin(easy);
                    let got = logits_value::<f64, _>(&loss, &z, c, &y).unwrap();
                    let want = naive(&z, c, &y, s, m, easy);
                    assert_close(got, want, 1e-12, 1e-12, &format!("s={s} m={m} easy={easy}"));
                }
            }
        }
    }

    /// The fallback branch: a label cosine of −0.95 is below `cos(π − 0.5) ≈ −0.878`.
    #[test]
    fn threshold_and_easy_margin_branches() {
        let z = [-0.95, 0.2, 0.3, -0.1];
        let y = [0, 0];
        for easy in [false, true] {
            let loss = ArcFace::new().with_s(2.0).with_easy_margin(easy);
            let got = logits_value::<f64, _>(&loss, &z, 2, &y).unwrap();
            assert_close(
                got,
                naive(&z, 2, &y, 2.0, 0.5, easy),
                1e-12,
                1e-12,
                "branches",
            );
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = Rng::new(3002);
        let (z, y) = cosines(&mut rng, 6, 4);
        for easy in [false, true] {
            let loss = ArcFace::new().with_s(8.0).with_easy_margin(easy);
            check_logits_gradient_fd(&loss, &z, 4, &y, 1e-6);
        }
    }

    /// Through the class-cosine op: the gradient reaching the embeddings and the class
    /// weights, each against finite differences of the whole pipeline.
    #[test]
    fn gradients_to_embeddings_and_weights() {
        let mut rng = Rng::new(3003);
        let (n, c, d) = (5, 4, 3);
        let e: Vec<f64> = (0..n * d).map(|_| rng.range(-1.0, 1.0)).collect();
        let w: Vec<f64> = (0..c * d).map(|_| rng.range(-1.0, 1.0)).collect();
        let y: Vec<usize> = (0..n).map(|_| rng.below(c)).collect();
        let dev: Cpu = Default::default();
        let et: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(e, (n, d));
        let wt: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(w, (c, d));
        let loss = ArcFace::new().with_s(4.0);
        let report = gradient_of(
            |x| loss.try_forward(ClassCosines(x, wt.clone()), &y),
            &et,
            Tolerance::default(),
        )
        .unwrap();
        assert!(report.passed(), "embeddings: {report}");
        let report = gradient_of(
            |x| {
                // the weights traced (the embeddings too: the output carries their tape)
                loss.try_forward(ClassCosines(et.leaky_trace(), x), &y)
            },
            &wt,
            Tolerance::default(),
        );
        assert!(report.unwrap().passed(), "weights");
    }

    /// m = 0 is softmax cross-entropy of the scaled cosines.
    #[test]
    fn zero_margin_is_scaled_softmax_ce() {
        let mut rng = Rng::new(3004);
        let (z, y) = cosines(&mut rng, 8, 5);
        let got = logits_value::<f64, _>(&ArcFace::new().with_m(0.0).with_s(3.0), &z, 5, &y);
        let scaled: Vec<f64> = z.iter().map(|v| 3.0 * v).collect();
        let ce = logits_value::<f64, _>(&crate::SoftmaxCrossEntropy::new(), &scaled, 5, &y);
        assert_close(got.unwrap(), ce.unwrap(), 1e-12, 1e-12, "m = 0");
    }

    #[test]
    fn f32_agrees_with_f64() {
        let mut rng = Rng::new(3005);
        let (z, y) = cosines(&mut rng, 12, 7);
        check_logits_precisions(&ArcFace::new(), &z, 7, &y, 1e-4);
    }

    /// Cosines at ±1 exactly (and a rounding past 1) stay finite, value and gradient.
    #[test]
    fn cosines_at_the_ends_stay_finite() {
        let z = [1.0, 0.5, -1.0, 0.0, 1.0 + 1e-9, -0.2];
        let y = [0, 0, 0];
        let (v, g) = logits_value_and_grad::<f64, _>(&ArcFace::new(), &z, 2, &y);
        assert!(
            v.is_finite() && g.iter().all(|g| g.is_finite()),
            "{v} {g:?}"
        );
    }
}
