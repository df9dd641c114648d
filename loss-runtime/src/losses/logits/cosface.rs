//! CosFace: softmax cross-entropy on scaled cosines, with an additive cosine margin on
//! the label's class.

use crate::loss;

/// CosFace (large margin cosine loss): the label's cosine must beat every other class's
/// by `m`. The margin is subtracted from the label's cosine before the scaled softmax.
///
/// The logits `z` are cosines: pass [`ClassCosines`](crate::ClassCosines)`(embeddings,
/// weights)`, or a ready cosine matrix.
///
/// ```text
/// ℓ_ik = s·(z[i][k] − m)  if k = y_i,  s·z[i][k] otherwise
/// L    = (1/N) Σ_i [ logsumexp_k ℓ_ik − s·(z[i][y_i] − m) ]
/// ```
///
/// Its gradient is CE's on the scaled margin logits: `s·(softmax(ℓ_i) − onehot(y_i))/N`
/// with respect to the cosines.
///
/// **Reference:** Hao Wang, Yitong Wang, Zheng Zhou, Xing Ji, Dihong Gong, Jingchao Zhou,
/// Zhifeng Li, Wei Liu. *CosFace: Large Margin Cosine Loss for Deep Face Recognition.*
/// CVPR 2018. **Code:** no official release; insightface's combined margin head with
/// `m3 = m` and pytorch-metric-learning's `CosFaceLoss` compute the same head.
///
/// **Defaults:** s = 64, m = 0.35 (the paper's; pytorch-metric-learning's defaults too).
/// The cosines are not clamped (no `acos` here), so any finite logits are accepted.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let cos: Tensor<Rank2<2, 3>, f64, _> = dev.tensor([[0.9, 0.1, -0.2], [0.3, 0.4, 0.0]]);
/// let loss = CosFace::default().forward(cos.leaky_trace(), &[0, 1]);
/// let g = loss.backward().get(&cos).array();
/// assert!(g[0][0] < 0.0 && g[1][1] < 0.0); // raise each label's cosine
/// ```
#[loss(
    logits,
    paper = "CosFace, additive cosine margin (Wang et al., CVPR 2018); the logits are cosines"
)]
pub fn cos_face(
    z: Logits,
    y: Labels,
    #[hyper(default = 64.0, positive, doc = "s, the scale applied to the cosines")] s: f64,
    #[hyper(
        default = 0.35,
        nonnegative,
        doc = "m, the margin subtracted from the label's cosine"
    )]
    m: f64,
) -> PerSample {
    let target = z[i][y[i]] - m;
    logsumexp(classes, |k| s * select(k == y[i], target, z[i][k])) - s * target
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use super::*;
    use crate::check::{gradient_of, Tolerance};
    use crate::testing::*;
    use crate::{ClassCosines, Loss};

    /// `s·(cos − m·onehot)` then softmax CE, with plain loops.
    pub(crate) fn naive(z: &[f64], c: usize, y: &[usize], s: f64, m: f64) -> f64 {
        let n = y.len();
        let mut total = 0.0;
        for i in 0..n {
            let row: Vec<f64> = (0..c)
                .map(|k| s * (z[i * c + k] - if k == y[i] { m } else { 0.0 }))
                .collect();
            let top = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = top + row.iter().map(|v| (v - top).exp()).sum::<f64>().ln();
            total += lse - row[y[i]];
        }
        total / n as f64
    }

    #[test]
    fn values_match_naive_loops() {
        let mut rng = Rng::new(3101);
        for (n, c) in [(1, 2), (6, 4), (20, 11)] {
            let (z, y) = random_logits(&mut rng, n, c, 1.0);
            for (s, m) in [(64.0, 0.35), (30.0, 0.0), (1.0, 0.8)] {
                let loss = CosFace::new().with_s(s).with_m(m);
                let got = logits_value::<f64, _>(&loss, &z, c, &y).unwrap();
                assert_close(
                    got,
                    naive(&z, c, &y, s, m),
                    1e-12,
                    1e-12,
                    &format!("s={s} m={m}"),
                );
            }
        }
    }

    #[test]
    fn gradient_matches_finite_differences_and_f32() {
        let mut rng = Rng::new(3102);
        let (z, y) = random_logits(&mut rng, 6, 5, 1.0);
        check_logits_gradient_fd(&CosFace::new().with_s(6.0), &z, 5, &y, 1e-6);
        check_logits_precisions(&CosFace::new(), &z, 5, &y, 1e-4);
    }

    /// The gradient with respect to the cosines is `s·(softmax − onehot)/N` of the margin
    /// logits; through the class-cosine op it reaches the embeddings.
    #[test]
    fn closed_form_gradient_and_embeddings() {
        let mut rng = Rng::new(3103);
        let (n, c) = (4, 3);
        let (z, y) = random_logits(&mut rng, n, c, 1.0);
        let (s, m) = (5.0, 0.35);
        let (_, g) = logits_value_and_grad::<f64, _>(&CosFace::new().with_s(s), &z, c, &y);
        for i in 0..n {
            let row: Vec<f64> = (0..c)
                .map(|k| s * (z[i * c + k] - if k == y[i] { m } else { 0.0 }))
                .collect();
            let total: f64 = row.iter().map(|v| v.exp()).sum();
            for k in 0..c {
                let onehot = if k == y[i] { 1.0 } else { 0.0 };
                let want = s * (row[k].exp() / total - onehot) / n as f64;
                assert_close(g[i * c + k], want, 1e-12, 1e-14, "closed form");
            }
        }
        let dev: Cpu = Default::default();
        let e: Tensor<(usize, usize), f64, Cpu> =
            dev.tensor_from_vec((0..n * 3).map(|_| rng.range(-1.0, 1.0)).collect(), (n, 3));
        let w: Tensor<(usize, usize), f64, Cpu> =
            dev.tensor_from_vec((0..c * 3).map(|_| rng.range(-1.0, 1.0)).collect(), (c, 3));
        let loss = CosFace::new().with_s(s);
        let report = gradient_of(
            |x| loss.try_forward(ClassCosines(x, w.clone()), &y),
            &e,
            Tolerance::default(),
        );
        assert!(report.unwrap().passed());
    }
}
