//! The smooth adversarial comp-sum loss (Mao, Mohri & Zhong, ICML 2023), EXPERIMENTAL: a
//! reconstruction from the paper's abstract and the project's spec, not checked against
//! the paper's text.

use crate::loss;

/// Experimental (an unverified reconstruction): a comp-sum loss on the clean logits plus
/// a smooth penalty on how far an adversarial example moves the logit gaps, for robust
/// training with clean and adversarial logits.
///
/// ```text
/// z = h(x)    clean logits (traced),  a = h(x')   adversarial logits (traced, `adv_logits`)
/// Δ(v)ₖ = v[y] − v[k]                               (the label's gap to class k; Δ_y = 0)
/// dᵢₖ   = Δ(a[i])ₖ − Δ(z[i])ₖ = (a[i][y[i]] − a[i][k]) − (z[i][y[i]] − z[i][k])
/// regᵢ  = sqrt( Σ_k dᵢₖ² + 1e-12 )
/// ℓᵢ    = comp_sum_τ(z[i] / ρ, y[i]) + ν · regᵢ
/// L     = (1/N) Σᵢ ℓᵢ
///
/// comp_sum_τ(h, y) with lp = h[y] − logsumexp_k h[k]:
///       = −lp                                      |τ − 1| < 1e-8 (cross-entropy)
///       = expm1((τ − 1)·lp) / (1 − τ)              otherwise      (see CompSum)
/// ```
///
/// The inner supremum of the paper's loss, `sup_{‖x − x'‖ ≤ γ}` of the regulariser, is
/// the caller's job: an attack on the model (PGD, TRADES-style) finds `x'`, and this loss
/// takes the logits `h(x')` it produced. The gradient reaches both logit tensors from the
/// one derived backward: the clean logits get the comp-sum gradient of [`CompSum`]
/// (scaled by `1/ρ`) plus `−ν·∂reg/∂d`, the adversarial logits `ν·∂reg/∂d`, with
/// `∂regᵢ/∂dᵢₖ = dᵢₖ / regᵢ`. Adding a constant to a row of either tensor changes nothing
/// (the gaps and the softmax are shift-invariant), so each gradient row sums to 0.
///
/// **Conventions.** The regulariser is smooth everywhere: at `x' = x` (`d = 0`) it is
/// `1e-6` with gradient exactly 0. The comp-sum term is computed as [`CompSum`] computes
/// it (max-shifted, with its `expm1` form); for τ < 1 it overflows on badly wrong
/// predictions the same way, reported as a [`LossError`](crate::LossError).
///
/// **Deliberate deviation:** the `+ 1e-12` under the square root. The exact Euclidean
/// norm `‖d‖₂` has no derivative at `d = 0`, which is where every attack starts (and where
/// a weak attack ends); the guard makes the gradient exist there (it is 0) and changes
/// the value by at most `1e-6`.
///
/// **Reference:** Mao, Mohri, Zhong. *Cross-Entropy Loss Functions: Theoretical Analysis
/// and Applications.* ICML 2023 (arXiv 2304.07288), the ADV-COMP-SUM algorithm.
/// **Official code:** none known (the paper links no code).
///
/// **What was verified, and what was not.** Only the paper's abstract could be read here.
/// It says that the smooth adversarial comp-sum losses are derived from their comp-sum
/// counterparts by adding a related smooth term, and that ADV-COMP-SUM minimises a
/// regularised smooth adversarial comp-sum loss. That much this loss does: a comp-sum
/// term plus a smooth, non-negative term. Everything else is the project spec's
/// reconstruction and was *not* checked against the paper's text:
/// - where ρ enters: here it divides the clean logits inside the comp-sum term only, not
///   the regulariser;
/// - the regulariser: the Euclidean norm of the change of the gap vector `Δ`, not
///   squared, with `Δ` over all classes (its label component is 0); the paper may use
///   another norm, its square, or another smooth term;
/// - ν's role: here a plain weight on the regulariser; whether "regularised" in the
///   abstract means this weight or something else (such as weight decay) is unknown;
/// - the values of τ, ρ, ν and of the attack radius γ in the paper's experiments (the
///   robust experiments are said to use τ = 1, the logistic case, by secondary summaries
///   only).
///
/// Treat its results as those of this formula, not as a reproduction of the paper.
///
/// **Defaults:** τ = 1 (cross-entropy), ρ = 1, ν = 1; ρ and ν are unverified guesses.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let z = dev.tensor_from_vec(vec![2.0f64, 0.5, -1.0, 0.0, 0.0, 3.0], (2, 3));
/// let a = dev.tensor_from_vec(vec![1.0f64, 0.5, 0.0, 0.0, 0.5, 2.0], (2, 3));
/// let y = [0, 2];
/// let loss = SmoothAdvCompSum::default().forward((z.leaky_trace(), a.leaky_trace()), &y);
/// // ν = 1: cross-entropy on the clean logits plus the mean norm of the gap changes
/// let ce = SoftmaxCrossEntropy::default().forward(z.clone(), &y).array();
/// let reg0 = (0.0f64 + 1.0 + 4.0 + 1e-12).sqrt(); // d = [0, −1, −2]
/// let reg1 = (1.0f64 + 2.25 + 0.0 + 1e-12).sqrt(); // d = [−1, −1.5, 0]
/// assert!((loss.array() - (ce + (reg0 + reg1) / 2.0)).abs() < 1e-12);
/// let grads = loss.backward();
/// assert_eq!(grads.get(&a).as_vec().len(), 6); // both logit tensors get a gradient
/// ```
#[loss(
    logits,
    paper = "smooth adversarial comp-sum (Mao, Mohri & Zhong, ICML 2023), EXPERIMENTAL: an unverified reconstruction"
)]
pub fn smooth_adv_comp_sum(
    z: Logits,
    y: Labels,
    adv_logits: Traced<samples, classes>,
    #[hyper(
        default = 1.0,
        nonnegative,
        doc = "τ of the comp-sum term: 0 sum-exponential, 1 cross-entropy, 2 MAE / 2"
    )]
    tau: f64,
    #[hyper(
        default = 1.0,
        positive,
        doc = "ρ: the clean logits are divided by ρ in the comp-sum term (unverified)"
    )]
    rho: f64,
    #[hyper(
        default = 1.0,
        nonnegative,
        doc = "ν: weight of the smooth adversarial regulariser (unverified)"
    )]
    nu: f64,
) -> PerSample {
    let lp = z[i][y[i]] / rho - logsumexp(classes, |k| z[i][k] / rho);
    let x = (tau - 1.0) * lp;
    let t = tanh(0.5 * x);
    let expm1 = select(x > 0.5, exp(x) - 1.0, 2.0 * t / (1.0 - t));
    let denominator = select(abs(tau - 1.0) < 1e-8, 1.0, 1.0 - tau);
    let comp = select(abs(tau - 1.0) < 1e-8, -lp, expm1 / denominator);
    let reg = sqrt(
        sum(classes, |k| {
            sq((adv_logits[i][y[i]] - adv_logits[i][k]) - (z[i][y[i]] - z[i][k]))
        }) + 1e-12,
    );
    comp + nu * reg
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use super::*;
    use crate::check::{gradient_of, Tolerance};
    use crate::testing::*;
    use crate::{CompSum, Loss, LossError, Real};

    type Matrix<E, T = NoneTape> = Tensor<(usize, usize), E, Cpu, T>;
    type Owned<E> = OwnedTape<E, Cpu>;

    fn tensor<E: Dtype + Real>(x: &[f64], c: usize) -> Matrix<E> {
        let dev: Cpu = Default::default();
        let values = x.iter().map(|&v| <E as Real>::from_f64(v)).collect();
        dev.tensor_from_vec(values, (x.len() / c, c))
    }

    fn to_f64<E: Real>(x: &[E]) -> Vec<f64> {
        x.iter().map(|v| v.to_f64()).collect()
    }

    /// The value and the gradients with respect to the clean and the adversarial logits.
    fn run<E>(
        loss: &SmoothAdvCompSum,
        z: &[f64],
        a: &[f64],
        c: usize,
        y: &[usize],
    ) -> (f64, Vec<f64>, Vec<f64>)
    where
        E: Dtype + Real,
        SmoothAdvCompSum: Loss<
            (Matrix<E, Owned<E>>, Matrix<E, Owned<E>>),
            [usize],
            Output = Tensor<(), E, Cpu, Owned<E>>,
        >,
    {
        let (zt, at) = (tensor::<E>(z, c), tensor::<E>(a, c));
        let out = loss.forward((zt.leaky_trace(), at.leaky_trace()), y);
        let value = out.array().to_f64();
        let grads = out.backward();
        (
            value,
            to_f64(&grads.get(&zt).as_vec()),
            to_f64(&grads.get(&at).as_vec()),
        )
    }

    /// The spec's formula with plain loops: `Φ^τ(Σ_{k≠y} exp(h_k − h_y))` on `h = z/ρ`,
    /// plus `ν·sqrt(Σ_k d_k² + 1e-12)`, averaged.
    fn naive(z: &[f64], a: &[f64], c: usize, y: &[usize], [tau, rho, nu]: [f64; 3]) -> f64 {
        let n = y.len();
        let mut total = 0.0;
        for i in 0..n {
            let (zr, ar, l) = (&z[i * c..(i + 1) * c], &a[i * c..(i + 1) * c], y[i]);
            let mut u = 0.0;
            for k in 0..c {
                if k != l {
                    u += ((zr[k] - zr[l]) / rho).exp();
                }
            }
            let comp = if tau == 1.0 {
                u.ln_1p()
            } else {
                ((1.0 + u).powf(1.0 - tau) - 1.0) / (1.0 - tau)
            };
            let mut squares = 0.0;
            for k in 0..c {
                let d = (ar[l] - ar[k]) - (zr[l] - zr[k]);
                squares += d * d;
            }
            total += comp + nu * (squares + 1e-12).sqrt();
        }
        total / n as f64
    }

    /// Clean logits and adversarial ones near them (an attack moves logits a little),
    /// with labels.
    fn case(seed: u64, n: usize, c: usize, scale: f64) -> (Vec<f64>, Vec<f64>, Vec<usize>) {
        let mut rng = Rng::new(seed);
        let (z, y) = random_logits(&mut rng, n, c, scale);
        let a = z.iter().map(|v| v + rng.range(-1.0, 1.0)).collect();
        (z, a, y)
    }

    fn loss([tau, rho, nu]: [f64; 3]) -> SmoothAdvCompSum {
        SmoothAdvCompSum::new()
            .with_tau(tau)
            .with_rho(rho)
            .with_nu(nu)
    }

    const SHAPES: [(usize, usize); 3] = [(1, 2), (4, 3), (7, 6)];
    const SETTINGS: [[f64; 3]; 7] = [
        [1.0, 1.0, 1.0],
        [1.0, 0.5, 0.3],
        [0.0, 1.0, 1.0],
        [0.5, 2.0, 0.0],
        [1.5, 0.7, 2.0],
        [2.0, 1.0, 0.1],
        [1.0 + 1e-6, 3.0, 1.0],
    ];

    #[test]
    fn value_matches_the_spec_formula() {
        for (seed, &(n, c)) in SHAPES.iter().enumerate() {
            let (z, a, y) = case(500 + seed as u64, n, c, 3.0);
            for setting in SETTINGS {
                let (got, _, _) = run::<f64>(&loss(setting), &z, &a, c, &y);
                let want = naive(&z, &a, c, &y, setting);
                assert_close(got, want, 1e-10, 1e-14, &format!("{setting:?} n={n} c={c}"));
            }
        }
    }

    /// The spec's test idea: adversarial logits equal to the clean ones give `reg = 1e-6`
    /// exactly (`d = 0` exactly, and `sqrt(1e-12)` is `1e-6` in f64), so the loss is the
    /// comp-sum term plus `ν·1e-6`, and the adversarial logits get a zero gradient.
    #[test]
    fn no_attack_gives_the_guard_alone() {
        assert_eq!(1e-12f64.sqrt(), 1e-6);
        let (z, _, y) = case(510, 5, 4, 3.0);
        for [tau, rho, _] in SETTINGS {
            let with = run::<f64>(&loss([tau, rho, 1.0]), &z, &z, 4, &y);
            let without = run::<f64>(&loss([tau, rho, 0.0]), &z, &z, 4, &y);
            // up to the rounding of the sums, a few ulps of the value
            let ulps = 4.0 * f64::EPSILON * without.0.max(1.0);
            assert_close(
                with.0 - without.0,
                1e-6,
                0.0,
                ulps,
                &format!("τ={tau} ρ={rho}"),
            );
            assert!(with.2.iter().all(|&g| g == 0.0), "{:?}", with.2);
            assert_eq!(with.1, without.1, "the clean gradient is the comp-sum one");
        }
    }

    /// The spec's test idea: ν = 0 and ρ = 1 give exactly [`CompSum`], value and clean
    /// gradient; with ν = 0 and any ρ the comp-sum of `z/ρ`.
    #[test]
    fn without_the_regulariser_it_is_comp_sum() {
        for (seed, &(n, c)) in SHAPES.iter().enumerate() {
            let (z, a, y) = case(520 + seed as u64, n, c, 4.0);
            for tau in [0.0, 0.5, 1.0, 1.5, 2.0] {
                let comp = CompSum::new().with_tau(tau);
                let (want, want_grad) = logits_value_and_grad::<f64, _>(&comp, &z, c, &y);
                let (got, grad, grad_a) = run::<f64>(&loss([tau, 1.0, 0.0]), &z, &a, c, &y);
                assert_close(got, want, 1e-15, 0.0, &format!("τ={tau}"));
                for (g, w) in grad.iter().zip(&want_grad) {
                    assert_close(*g, *w, 1e-13, 1e-16, &format!("τ={tau} gradient"));
                }
                assert!(grad_a.iter().all(|&g| g == 0.0));
                let rho = 2.5;
                let scaled: Vec<f64> = z.iter().map(|v| v / rho).collect();
                let want = logits_value::<f64, _>(&comp, &scaled, c, &y).unwrap();
                let (got, _, _) = run::<f64>(&loss([tau, rho, 0.0]), &z, &a, c, &y);
                assert_close(got, want, 1e-13, 0.0, &format!("τ={tau} ρ={rho}"));
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let tol = Tolerance::default();
        for (seed, &(n, c)) in SHAPES.iter().enumerate() {
            let (z, a, y) = case(530 + seed as u64, n, c, 3.0);
            let (z, a) = (tensor::<f64>(&z, c), tensor::<f64>(&a, c));
            for setting in SETTINGS {
                let l = loss(setting);
                let wrt_z = gradient_of(|x| l.try_forward((x, a.clone()), &y), &z, tol).unwrap();
                assert!(
                    wrt_z.passed() && wrt_z.kinks == 0,
                    "{setting:?} clean: {wrt_z}"
                );
                let wrt_a =
                    gradient_of(|x| l.try_forward((z.leaky_trace(), x), &y), &a, tol).unwrap();
                assert!(
                    wrt_a.passed() && wrt_a.kinks == 0,
                    "{setting:?} adv: {wrt_a}"
                );
            }
        }
    }

    /// The closed form of the regulariser's gradient, `±(ν/N)·(dₖ − [k = y]·Σ_j d_j)/reg`
    /// on the adversarial logits (ν = 1, no comp-sum gradient reaches them), and the two
    /// tensors' regulariser gradients cancel.
    #[test]
    fn the_regulariser_gradient_has_its_closed_form() {
        let (n, c) = (4, 5);
        let (z, a, y) = case(540, n, c, 2.0);
        let (_, gz, ga) = run::<f64>(&loss([1.0, 1.0, 1.0]), &z, &a, c, &y);
        let (_, gz0, _) = run::<f64>(&loss([1.0, 1.0, 0.0]), &z, &a, c, &y);
        for i in 0..n {
            let l = y[i];
            let d: Vec<f64> = (0..c)
                .map(|k| (a[i * c + l] - a[i * c + k]) - (z[i * c + l] - z[i * c + k]))
                .collect();
            let reg = (d.iter().map(|v| v * v).sum::<f64>() + 1e-12).sqrt();
            let total: f64 = d.iter().sum();
            for (k, dk) in d.iter().enumerate() {
                // ∂reg/∂a[k] = Σ_j (d_j/reg)·∂d_j/∂a[k], ∂d_j/∂a[k] = [k = l] − [k = j]
                let want = ((if k == l { total } else { 0.0 }) - dk) / reg / n as f64;
                let j = i * c + k;
                assert_close(ga[j], want, 1e-12, 1e-15, &format!("adv [{i}][{k}]"));
                assert_close(
                    gz[j] - gz0[j],
                    -want,
                    1e-10,
                    1e-14,
                    &format!("clean [{i}][{k}]"),
                );
            }
        }
    }

    /// Adding a constant to a row of either tensor changes nothing; each gradient row sums
    /// to 0; the value is at least the comp-sum term, which is non-negative.
    #[test]
    fn invariances() {
        let (n, c) = (5, 4);
        let (z, a, y) = case(550, n, c, 3.0);
        let shift = |x: &[f64], s: f64| -> Vec<f64> {
            x.iter()
                .enumerate()
                .map(|(j, v)| v + s * (j / c) as f64 - 1.5)
                .collect()
        };
        for setting in SETTINGS {
            let l = loss(setting);
            let (v, gz, ga) = run::<f64>(&l, &z, &a, c, &y);
            let (vz, _, _) = run::<f64>(&l, &shift(&z, 0.7), &a, c, &y);
            let (va, _, _) = run::<f64>(&l, &z, &shift(&a, -2.0), c, &y);
            assert_close(vz, v, 1e-12, 1e-14, &format!("{setting:?} clean shift"));
            assert_close(va, v, 1e-12, 1e-14, &format!("{setting:?} adv shift"));
            for i in 0..n {
                let row = i * c..(i + 1) * c;
                assert!(gz[row.clone()].iter().sum::<f64>().abs() < 1e-13);
                assert!(ga[row].iter().sum::<f64>().abs() < 1e-13);
            }
            let (comp, _, _) = run::<f64>(&loss([setting[0], setting[1], 0.0]), &z, &a, c, &y);
            assert!(comp >= 0.0 && v >= comp);
        }
    }

    #[test]
    fn f32_agrees_with_f64() {
        for (seed, &(n, c)) in SHAPES.iter().enumerate() {
            let (z, a, y) = case(560 + seed as u64, n, c, 3.0);
            let round = |x: &[f64]| -> Vec<f64> { x.iter().map(|&v| v as f32 as f64).collect() };
            let (z, a) = (round(&z), round(&a));
            for setting in SETTINGS {
                let l = loss(setting);
                let (v32, gz32, ga32) = run::<f32>(&l, &z, &a, c, &y);
                let (v64, gz64, ga64) = run::<f64>(&l, &z, &a, c, &y);
                assert_close(v32, v64, 1e-5, 1e-6, &format!("{setting:?} value"));
                for (g32, g64) in [(gz32, gz64), (ga32, ga64)] {
                    let tol = 1e-4 * max_abs(&g64) + 1e-6;
                    for (j, (a, b)) in g32.iter().zip(&g64).enumerate() {
                        assert_close(*a, *b, 0.0, tol, &format!("{setting:?} gradient [{j}]"));
                    }
                }
            }
        }
    }

    /// ρ ≤ 0 and ν < 0 are refused; adversarial logits of another shape name both inputs.
    #[test]
    fn bad_hyper_parameters_and_shapes_are_errors() {
        let (z, a, y) = case(570, 3, 4, 1.0);
        let (zt, at) = (tensor::<f64>(&z, 4), tensor::<f64>(&a, 4));
        for l in [
            SmoothAdvCompSum::new().with_rho(0.0),
            SmoothAdvCompSum::new().with_rho(-1.0),
            SmoothAdvCompSum::new().with_nu(-0.5),
            SmoothAdvCompSum::new().with_tau(-0.1),
        ] {
            let got = l.try_forward((zt.clone(), at.clone()), &y[..]);
            assert!(
                matches!(got, Err(LossError::InvalidHyper { .. })),
                "{got:?}"
            );
        }
        let narrow = tensor::<f64>(&a[..9], 3);
        let got = SmoothAdvCompSum::new().try_forward((zt.clone(), narrow), &y[..]);
        assert!(
            matches!(
                got,
                Err(LossError::AxisMismatch {
                    axis: "classes",
                    found_in: "adv_logits",
                    ..
                })
            ),
            "{got:?}"
        );
        let mut bad = a.clone();
        bad[5] = f64::NAN;
        let got = SmoothAdvCompSum::new().try_forward((zt, tensor::<f64>(&bad, 4)), &y[..]);
        assert!(matches!(got, Err(LossError::NonFinite { .. })), "{got:?}");
    }
}
