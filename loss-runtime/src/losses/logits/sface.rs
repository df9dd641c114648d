//! SFace: the sigmoid-constrained hypersphere loss, with no softmax.

use crate::loss;

/// SFace: pull each sample towards its class centre and push it away from the others
/// directly on the cosines, with each push re-scaled by a *detached* sigmoid of the angle,
/// so that easy positives and far negatives get little gradient and noisy outliers are not
/// pushed hard.
///
/// The logits `z` are cosines: pass [`ClassCosines`](crate::ClassCosines)`(embeddings,
/// weights)` (or a ready cosine matrix).
///
/// ```text
/// θ_ik  = acos(clamp(z[i][k], −1, 1))                       (no gradient)
/// w_i   = σ( k_intra·(θ_{i y_i} − a))                        (detached: intra re-scale)
/// v_ik  = σ(−k_inter·(θ_ik − b))                             (detached: inter re-scale, k ≠ y_i)
/// L     = (1/N) Σ_i [ −w_i·s·z[i][y_i] + Σ_{k ≠ y_i} v_ik·s·z[i][k] ]
/// ⇒ ∂L/∂z[i][y_i] = −s·w_i/N,   ∂L/∂z[i][k] = s·v_ik/N
/// ```
///
/// The value is not a likelihood: only the gradient's scale, set by the two sigmoids, is
/// the method. The intra weight grows with the angle to the own centre (a sample far from
/// it is pulled, up to the slope k around `a`); the inter weight vanishes once a class is
/// farther than `b`.
///
/// **Reference:** Yaoyao Zhong, Weihong Deng, Jiani Hu, Dongyue Zhao, Xian Li, Dongchao
/// Wen. *SFace: Sigmoid-Constrained Hypersphere Loss for Robust Face Recognition.* IEEE
/// Transactions on Image Processing, 2021. **Official code:** `zhongyy/SFace`,
/// `SFace_torch/head/metrics.py::SFaceLoss.forward` (PyTorch, one slope `k`) and
/// `SFace_mxnet/train_SFace.py` (two slopes).
///
/// **Defaults:** s = 64, k_intra = k_inter = 80, a = 0.80, b = 1.23 (the PyTorch
/// argparse defaults). The README's scripts use a = 0.87, b = 1.2 (CASIA-WebFace, R50),
/// a = 0.88, b = 1.25 (VGGFace2) and a = 0.9, b = 1.2 (MS1MV2, R100).
///
/// **Code vs here.** The weights are under `detach`, as the official code computes them
/// under `torch.no_grad()`, so the derived gradient is the official one (the closed form
/// above; tested). The official `acos(WyiX/s)` has no clamp and is NaN if rounding puts a
/// cosine past ±1; here the cosine is clamped inside the (detached) weight, which changes
/// nothing where the official value is finite. The paper writes the re-scaling as
/// `s/(1 + e^{∓k(θ − ·)})`; the code (and this loss) keeps s on the cosine term instead,
/// the same value. The official head also returns the logits and the two parts for
/// logging; this loss returns the total.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let cos: Tensor<Rank2<2, 3>, f64, _> = dev.tensor([[0.2, 0.9, -0.1], [0.1, 0.0, 0.95]]);
/// let loss = SFace::default().forward(cos.leaky_trace(), &[0, 2]);
/// let g = loss.backward().get(&cos).array();
/// // sample 0 is far from its centre (θ ≈ 1.37 > a): pulled with w ≈ 1
/// assert!((g[0][0] + 64.0 / 2.0).abs() < 1e-3);
/// // sample 1 is close (θ ≈ 0.32 < a): hardly pulled
/// assert!(g[1][2] > -1e-6);
/// ```
#[loss(
    logits,
    paper = "SFace, sigmoid-constrained hypersphere loss (Zhong et al., IEEE TIP 2021); the \
             logits are cosines"
)]
pub fn s_face(
    z: Logits,
    y: Labels,
    #[hyper(default = 64.0, positive, doc = "s, the scale applied to the cosines")] s: f64,
    #[hyper(
        default = 80.0,
        nonnegative,
        doc = "k_intra, the slope of the intra-class re-scaling sigmoid"
    )]
    k_intra: f64,
    #[hyper(
        default = 80.0,
        nonnegative,
        doc = "k_inter, the slope of the inter-class re-scaling sigmoid"
    )]
    k_inter: f64,
    #[hyper(
        default = 0.8,
        doc = "a, the angle (radians) where the intra-class weight is ½"
    )]
    a: f64,
    #[hyper(
        default = 1.23,
        doc = "b, the angle (radians) where the inter-class weight is ½"
    )]
    b: f64,
) -> PerSample {
    let pull = detach(sigmoid(k_intra * (acos(clamp(z[i][y[i]], -1.0, 1.0)) - a)));
    let push = sum(classes.filter(|k| k != y[i]), |k| {
        detach(sigmoid(-k_inter * (acos(clamp(z[i][k], -1.0, 1.0)) - b))) * s * z[i][k]
    });
    push - pull * s * z[i][y[i]]
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use super::*;
    use crate::check::{gradient_of, Tolerance};
    use crate::testing::*;
    use crate::{ClassCosines, Loss};

    fn sig(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// The official forward, with plain loops: `WyiX = s·cos_y`, the two no-grad
    /// weights `1/(1 + exp(·))`, the means of the intra and inter terms; and its
    /// gradient with respect to the cosines (the weights held fixed).
    fn official(z: &[f64], c: usize, y: &[usize], p: [f64; 5]) -> (f64, Vec<f64>) {
        let [s, k_intra, k_inter, a, b] = p;
        let n = y.len() as f64;
        let (mut intra, mut inter) = (0.0, 0.0);
        let mut grad = vec![0.0; z.len()];
        for (i, &yi) in y.iter().enumerate() {
            let wyix = s * z[i * c + yi];
            let theta = (wyix / s).acos();
            let w = 1.0 / (1.0 + (-k_intra * (theta - a)).exp());
            intra += -w * wyix;
            grad[i * c + yi] = -s * w / n;
            for k in (0..c).filter(|&k| k != yi) {
                let wj = s * z[i * c + k];
                let v = 1.0 / (1.0 + (k_inter * ((wj / s).acos() - b)).exp());
                inter += v * wj;
                grad[i * c + k] = s * v / n;
            }
        }
        (intra / n + inter / n, grad)
    }

    fn params(loss: &SFace) -> [f64; 5] {
        [loss.s, loss.k_intra, loss.k_inter, loss.a, loss.b]
    }

    #[test]
    fn value_and_gradient_equal_the_official_ones() {
        let mut rng = Rng::new(2901);
        for (n, c) in [(1, 2), (7, 4), (20, 9)] {
            let (z, y) = random_logits(&mut rng, n, c, 1.0);
            for loss in [
                SFace::new(),
                SFace::new().with_a(0.87).with_b(1.2).with_k_inter(40.0),
                SFace::new().with_s(1.0).with_k_intra(3.0).with_k_inter(2.0),
            ] {
                let (want, want_grad) = official(&z, c, &y, params(&loss));
                let (got, grad) = logits_value_and_grad::<f64, _>(&loss, &z, c, &y);
                assert_close(got, want, 1e-12, 1e-12, "value");
                for (k, (g, w)) in grad.iter().zip(&want_grad).enumerate() {
                    assert_close(*g, *w, 1e-12, 1e-15, &format!("gradient [{k}]"));
                }
            }
        }
    }

    /// The derived gradient through the class-cosine op is the chain rule applied to
    /// the closed form: against finite differences of a surrogate whose weights are
    /// frozen at the point (the loss itself is not its gradient's integral).
    #[test]
    fn gradient_to_the_embeddings_is_the_chain_rule_of_the_closed_form() {
        let mut rng = Rng::new(2902);
        let (n, c, d) = (5, 4, 3);
        let e: Vec<f64> = (0..n * d).map(|_| rng.range(-1.0, 1.0)).collect();
        let w: Vec<f64> = (0..c * d).map(|_| rng.range(-1.0, 1.0)).collect();
        let y: Vec<usize> = (0..n).map(|_| rng.below(c)).collect();
        let dev: Cpu = Default::default();
        let et: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(e, (n, d));
        let wt: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(w, (c, d));
        let loss = SFace::new().with_k_intra(2.0).with_k_inter(2.0);
        let cos = crate::class_cosines(et.clone(), wt.clone()).as_vec();
        let (_, g_cos) = official(&cos, c, &y, params(&loss));
        // the closed form's gradient, held fixed: L̃(x) = Σ g_cos · cos(x)
        let gz: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(g_cos, (n, c));
        let surrogate = |x: crate::check::Traced<(usize, usize)>| {
            let cos = crate::class_cosines(x, wt.clone());
            Ok((cos * gz.clone()).sum())
        };
        let report = gradient_of(surrogate, &et, Tolerance::default()).unwrap();
        assert!(report.passed(), "{report}");
        let derived = loss
            .forward(ClassCosines(et.leaky_trace(), wt.clone()), &y)
            .backward();
        let want = (crate::class_cosines(et.leaky_trace(), wt.clone()) * gz.clone())
            .sum()
            .backward();
        let (a, b) = (derived.get(&et).as_vec(), want.get(&et).as_vec());
        for (x, w) in a.iter().zip(&b) {
            assert_close(*x, *w, 1e-12, 1e-14, "embeddings");
        }
    }

    /// k → ∞: the weights become steps, `1[θ_y > a]` and `1[θ_k < b]`: easy positives
    /// and far negatives get no gradient.
    #[test]
    fn large_slopes_are_steps() {
        let z = [0.95, 0.9, -0.5, 0.1, 0.2, 0.0];
        let y = [0, 1];
        let loss = SFace::new().with_k_intra(1e4).with_k_inter(1e4).with_s(1.0);
        let (_, g) = logits_value_and_grad::<f64, _>(&loss, &z, 3, &y);
        // sample 0: θ_y = 0.32 < a → no pull; class 1 at θ = 0.45 < b → pushed; class 2
        // at θ = 2.09 > b → not
        assert_eq!(g[0], 0.0);
        assert_close(g[1], 0.5, 1e-12, 0.0, "near negative");
        assert_eq!(g[2], 0.0);
        // sample 1: θ_y = 1.37 > a → pulled; θ = 1.47 and 1.57 > b → not pushed
        assert_close(g[4], -0.5, 1e-12, 0.0, "far positive");
        assert_eq!((g[3], g[5]), (0.0, 0.0));
    }

    /// Orthogonal centres (θ = π/2 > b) contribute nothing; the loss is invariant under
    /// a permutation of the batch; f32 agrees.
    #[test]
    fn orthogonal_centres_permutations_and_f32() {
        let z = [0.7, 0.0, 0.0, 0.0, 0.3, 0.0];
        let y = [0, 1];
        let (v, g) = logits_value_and_grad::<f64, _>(&SFace::new(), &z, 3, &y);
        let pull = |cy: f64| sig(80.0 * (cy.acos() - 0.8)) * 64.0 * cy;
        assert_close(
            v,
            (-pull(0.7) - pull(0.3)) / 2.0,
            1e-12,
            1e-12,
            "orthogonal",
        );
        // the push on an orthogonal centre: s·σ(−80(π/2 − 1.23))/N ≈ 5e-11
        for k in [1, 2, 3, 5] {
            assert!(g[k] > 0.0 && g[k] < 1e-9, "{k}: {}", g[k]);
        }
        let mut rng = Rng::new(2903);
        let (z, y) = random_logits(&mut rng, 9, 4, 1.0);
        let base = logits_value::<f64, _>(&SFace::new(), &z, 4, &y).unwrap();
        let order = rng.permutation(9);
        let zp: Vec<f64> = order
            .iter()
            .flat_map(|&i| z[i * 4..i * 4 + 4].to_vec())
            .collect();
        let yp: Vec<usize> = order.iter().map(|&i| y[i]).collect();
        let permuted = logits_value::<f64, _>(&SFace::new(), &zp, 4, &yp).unwrap();
        assert_close(permuted, base, 1e-12, 1e-12, "permutation");
        check_logits_precisions(
            &SFace::new().with_k_intra(5.0).with_k_inter(5.0),
            &z,
            4,
            &y,
            1e-4,
        );
    }
}
