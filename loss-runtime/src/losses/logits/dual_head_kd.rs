//! Dual-head knowledge distillation (Yang et al., KDD 2025): the Hinton KD-KL, the
//! per-logit BinaryKL and BinaryKL-Norm, and the DHKD total over a main and an auxiliary
//! head.
//!
//! Every loss here takes the teacher's logits as a constant declared input `t`
//! (`Given<samples, classes>`); `dhkd` also takes the auxiliary head's logits as a second
//! differentiable input `a` (`Traced<samples, classes>`). The labels are read by `dhkd`
//! only; the other three take them because the logits family does, and ignore them.

use crate::loss;

/// Knowledge-distillation KL (Hinton et al.): the KL divergence from the teacher's
/// softened class distribution to the student's, scaled by T² so that its gradient keeps
/// the same size whatever the temperature.
///
/// ```text
/// pᵢ = softmax(t[i] / T)     (teacher, a constant)
/// qᵢ = softmax(z[i] / T)     (student)
/// L  = (T² / N) Σᵢ Σ_k pᵢₖ · (ln pᵢₖ − ln qᵢₖ)
/// ∂L/∂z[i][k] = (T / N) · (qᵢₖ − pᵢₖ)
/// ```
///
/// The loss is 0 exactly when the two softened distributions agree (for example
/// `z = t`) and positive otherwise; adding a constant to a row of `z` or of `t` changes
/// nothing.
///
/// **Conventions.** Both log-softmaxes are max-shifted `logsumexp`s, so logits of any
/// size are safe, and the loss is smooth. A teacher probability that underflows to 0
/// contributes 0 (its log stays finite), as `F.kl_div` gives.
///
/// **Reference:** Hinton, Vinyals, Dean. *Distilling the Knowledge in a Neural Network.*
/// arXiv 1503.02531, 2015; used as the baseline of Yang, Zong, Huang, Feng, An.
/// *Dual-Head Knowledge Distillation: Enhancing Logits Utilization with an Auxiliary
/// Head.* KDD 2025 (arXiv 2411.08937). **Official code:** `penghui-yang/DHKD`,
/// `distiller_zoo/KD.py` (`DistillKL`): `kl_div(log_softmax(z/T), softmax(t/T))` summed,
/// times T², divided by the batch size — the same value and reduction (the batch mean of
/// the per-sample sums). No differences. The labels are not used.
///
/// **Defaults:** T = 4 (the official `--kd_T`).
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let z = dev.tensor_from_vec(vec![2.0f64, 0.5, -1.0, 0.0, 0.0, 3.0], (2, 3));
/// let t = z.clone();
/// // a student that copies its teacher pays nothing
/// let loss = KdKl::default().forward((z.leaky_trace(), t), &[0, 2]);
/// assert!(loss.array().abs() < 1e-12);
/// let grads = loss.backward();
/// assert!(grads.get(&z).as_vec().iter().all(|g| g.abs() < 1e-12));
/// ```
#[loss(logits, paper = "Dual-Head KD (Yang et al., KDD 2025)")]
pub fn kd_kl(
    z: Logits,
    y: Labels,
    t: Given<samples, classes>,
    #[hyper(default = 4.0, positive, doc = "temperature T of both softmaxes")] temperature: f64,
) -> PerSample {
    let lz = logsumexp(classes, |k| z[i][k] / temperature);
    let lt = logsumexp(classes, |k| t[i][k] / temperature);
    sq(temperature)
        * sum(classes, |k| {
            let lp = t[i][k] / temperature - lt;
            exp(lp) * (lp - (z[i][k] / temperature - lz))
        })
}

/// BinaryKL: every logit read as its own binary problem, `σ(z/T)` against the teacher's
/// `σ(t/T)`, with the Bernoulli KL summed over the classes.
///
/// ```text
/// ln q = clamp(ln σ(z/T), ln ε, ln(1 − ε)),   ln(1 − q) = clamp(ln σ(−z/T), ln ε, ln(1 − ε))
/// ln p = the same with t (teacher, a constant)
/// L = (T² / N) Σᵢ Σ_k [ p·(ln p − ln q) + (1 − p)·(ln(1 − p) − ln(1 − q)) ]
/// ∂L/∂z[i][k] = (T / N) · (q − p)           where the clamp is not active
/// ```
///
/// The loss is 0 when `z = t` and positive otherwise. Unlike KD-KL it is not invariant
/// to shifting a row: each logit is compared on its own, not through a softmax.
///
/// **Conventions.** `ln σ(x) = −softplus(−x)` is computed without overflow, and the
/// official clamp of `σ` to `[ε, 1 − ε]` is applied to the logarithms (`ln` is increasing,
/// so the values are the same). Where `|z/T| > ln((1 − ε)/ε)` (≈ 18.42 for ε = 1e-8) the
/// student's term saturates and its gradient is exactly 0; at the bound itself the
/// derivative is taken from inside (the language's `clamp` convention). `clamp_eps = 0`
/// gives the exact, unclamped form, whose gradient never vanishes. In f32 the upper
/// bound `ln(1 − ε)` is computed as `ln_1p(−ε)`, so it does not round to 0.
///
/// **Reference:** Yang, Zong, Huang, Feng, An. *Dual-Head Knowledge Distillation:
/// Enhancing Logits Utilization with an Auxiliary Head.* KDD 2025 (arXiv 2411.08937).
/// **Official code:** `penghui-yang/DHKD`, `distiller_zoo/BinaryKL.py`. Differences:
/// the official module clamps `σ` and then takes `ln`, and in float32 `1 − 1e-8` rounds
/// to 1, so `ln(1 − q)` becomes −∞ once `σ` rounds to 1; here the log-domain clamp stays
/// finite (the saturated value) in both precisions. In f64 the values are the same. The
/// labels are not used.
///
/// **Defaults:** T = 2, ε = 1e-8 (the official module's).
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let z = dev.tensor_from_vec(vec![1.0f64, -1.0], (1, 2));
/// let t = dev.tensor_from_vec(vec![1.0f64, 1.0], (1, 2));
/// let loss = BinaryKl::default().forward((z.leaky_trace(), t), &[0]);
/// let g = loss.backward().get(&z).as_vec();
/// // the first logit already matches; the second is pulled up by T·(σ(1/2) − σ(−1/2))
/// let s = |x: f64| 1.0 / (1.0 + (-x).exp());
/// assert!(g[0].abs() < 1e-12);
/// assert!((g[1] - 2.0 * (s(-0.5) - s(0.5))).abs() < 1e-12);
/// ```
#[loss(logits, paper = "Dual-Head KD (Yang et al., KDD 2025)")]
pub fn binary_kl(
    z: Logits,
    y: Labels,
    t: Given<samples, classes>,
    #[hyper(default = 2.0, positive, doc = "temperature T of the sigmoids")] temperature: f64,
    #[hyper(
        default = 1e-8,
        range(0.0, 0.1),
        doc = "ε: the sigmoids are clamped to [ε, 1 − ε]; 0 for the exact form"
    )]
    clamp_eps: f64,
) -> PerSample {
    sq(temperature)
        * sum(classes, |k| {
            let lq = clamp(
                -softplus(-z[i][k] / temperature),
                ln(clamp_eps),
                ln_1p(-clamp_eps),
            );
            let lq1 = clamp(
                -softplus(z[i][k] / temperature),
                ln(clamp_eps),
                ln_1p(-clamp_eps),
            );
            let lp = clamp(
                -softplus(-t[i][k] / temperature),
                ln(clamp_eps),
                ln_1p(-clamp_eps),
            );
            let lp1 = clamp(
                -softplus(t[i][k] / temperature),
                ln(clamp_eps),
                ln_1p(-clamp_eps),
            );
            exp(lp) * (lp - lq) + exp(lp1) * (lp1 - lq1)
        })
}

/// BinaryKL-Norm, the paper's logit-level loss: every student–teacher logit difference
/// is read as a binary problem whose target is ½, so the student matches the teacher's
/// logits themselves (not only their softmax) while the loss stays bounded in the
/// difference's growth rate.
///
/// ```text
/// u  = (z[i][k] − t[i][k]) / T
/// ln d = clamp(ln σ(u), ln ε, ln(1 − ε)),   ln(1 − d) = clamp(ln σ(−u), ln ε, ln(1 − ε))
/// L  = (T² / N) Σᵢ Σ_k [ ½·(ln ½ − ln d) + ½·(ln ½ − ln(1 − d)) ]
///    = (T² / N) Σᵢ Σ_k [ ½·softplus(u) + ½·softplus(−u) − ln 2 ]      (no clamp active)
/// ∂L/∂z[i][k] = (T / N) · (σ(u) − ½)                                (no clamp active)
/// ```
///
/// The loss is 0 exactly when `z = t` and positive otherwise, even in `u` (swapping the
/// student and the teacher changes nothing), unchanged when the same constant is added to
/// a row of both, and for small differences close to `(1/(8N)) Σ (z − t)²`, whatever T.
///
/// **Conventions.** As for [`BinaryKl`]: the clamp is applied to `ln σ` computed without
/// overflow. Where `|u| > ln((1 − ε)/ε)` (≈ 18.42 for ε = 1e-8) the per-logit value
/// saturates at `½ln(½/ε) + ½ln(½/(1 − ε))` ≈ 8.517 (times T²/N) and its gradient is
/// exactly 0, as in the official code; at the bound the derivative is taken from inside.
/// `clamp_eps = 0` gives the exact softplus form, unbounded, whose gradient never
/// vanishes.
///
/// **Reference:** Yang, Zong, Huang, Feng, An. *Dual-Head Knowledge Distillation:
/// Enhancing Logits Utilization with an Auxiliary Head.* KDD 2025 (arXiv 2411.08937).
/// **Official code:** `penghui-yang/DHKD`, `distiller_zoo/BinaryKLNorm.py`. Differences:
/// the official module computes `1 − d` after the clamp, which in float32 rounds to 0
/// once `σ(u)` rounds to 1 (`|u|` above about 17), giving an infinite loss; the
/// log-domain clamp here gives the saturated value in both precisions. In f64 the values
/// are the same. The labels are not used.
///
/// **Defaults:** T = 2 (the official `--BinaryKL_T`), ε = 1e-8.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let z = dev.tensor_from_vec(vec![0.5f64, -0.25, 2.0, 0.0], (2, 2));
/// let t = dev.tensor_from_vec(vec![0.0f64, 0.0, 2.0, 1.0], (2, 2));
/// let loss = BinaryKlNorm::default().forward((z.leaky_trace(), t), &[0, 0]);
/// // ½softplus(u) + ½softplus(−u) − ln 2, times T² = 4, averaged over 2 samples
/// let term = |u: f64| 0.5 * (u.exp().ln_1p() + (-u).exp().ln_1p()) - 2f64.ln();
/// let want = 4.0 * (term(0.25) + term(-0.125) + term(0.0) + term(-0.5)) / 2.0;
/// assert!((loss.array() - want).abs() < 1e-12);
/// ```
#[loss(logits, paper = "Dual-Head KD (Yang et al., KDD 2025)")]
pub fn binary_kl_norm(
    z: Logits,
    y: Labels,
    t: Given<samples, classes>,
    #[hyper(default = 2.0, positive, doc = "temperature T of the logit difference")]
    temperature: f64,
    #[hyper(
        default = 1e-8,
        range(0.0, 0.1),
        doc = "ε: σ(u) is clamped to [ε, 1 − ε]; 0 for the exact softplus form"
    )]
    clamp_eps: f64,
) -> PerSample {
    sq(temperature)
        * sum(classes, |k| {
            let u = (z[i][k] - t[i][k]) / temperature;
            let ld = clamp(-softplus(-u), ln(clamp_eps), ln_1p(-clamp_eps));
            let ld1 = clamp(-softplus(u), ln(clamp_eps), ln_1p(-clamp_eps));
            0.5 * (ln(0.5) - ld) + 0.5 * (ln(0.5) - ld1)
        })
}

/// The DHKD training loss: cross-entropy on the main head, BinaryKL-Norm to the teacher on
/// an auxiliary head that shares the backbone, and optionally the KD-KL on the main head.
/// Giving the logit-level loss its own head keeps it from collapsing the classifier that
/// is used at inference.
///
/// ```text
/// z = g₁(h)   main head (used at inference),  a = g₂(h)   auxiliary head,  t   teacher
/// L = γ · (1/N) Σᵢ (logsumexp_k z[i][k] − z[i][y[i]])
///   + α · BinaryKL-Norm(a, t; T, ε)
///   + kd_weight · KD-KL(z, t; T_kd)
/// ```
///
/// The gradient reaches both heads from one backward: the main head gets the
/// cross-entropy (and KD-KL) gradient, the auxiliary head only
/// `α·(T/N)·(σ((a − t)/T) − ½)` (where the clamp is not active).
///
/// **Conventions.** As for [`BinaryKlNorm`] and [`KdKl`]; the cross-entropy is a
/// max-shifted log-softmax. The loss is smooth except at the clamp's bounds.
///
/// **Reference:** Yang, Zong, Huang, Feng, An. *Dual-Head Knowledge Distillation:
/// Enhancing Logits Utilization with an Auxiliary Head.* KDD 2025 (arXiv 2411.08937).
/// **Official code:** `penghui-yang/DHKD`, `helper/loops.py::train_distill` with
/// `--distill dhkd`: `γ·CE(main, y) + α·BinaryKLNorm(aux, teacher)`. Differences: the
/// paper describes the main head as receiving "the probability-level loss", but in the
/// official `dhkd` mode that is only the ground-truth cross-entropy; the softened KL to
/// the teacher appears only in the plain `kd` mode. This follows the code
/// (`kd_weight = 0`) and keeps the KL available for the paper's wording. The
/// gradient-alignment step of the official optimiser (`--ga`, a projection between the
/// CE and KD gradients) acts on parameters, not on the loss, and is not part of it.
///
/// **Defaults:** γ = 1, α = 1 (CIFAR-100; the official ImageNet run uses 0.1), T = 2,
/// ε = 1e-8, `kd_weight` = 0, T_kd = 4.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let z = dev.tensor_from_vec(vec![1.0f64, 0.0, -1.0, 0.5, 0.5, 2.0], (2, 3));
/// let a = dev.tensor_from_vec(vec![0.0f64, 1.0, 0.0, 1.0, -1.0, 0.0], (2, 3));
/// let t = dev.tensor_from_vec(vec![2.0f64, 0.0, -2.0, 0.0, 0.0, 3.0], (2, 3));
/// let y = [0, 2];
/// let loss = Dhkd::default().forward((z.leaky_trace(), a.leaky_trace(), t.clone()), &y);
/// let ce = SoftmaxCrossEntropy::default().forward(z.clone(), &y).array();
/// let bkl = BinaryKlNorm::default().forward((a.clone(), t), &y).array();
/// assert!((loss.array() - (ce + bkl)).abs() < 1e-12);
/// let grads = loss.backward();
/// assert_eq!(grads.get(&a).as_vec().len(), 6); // both heads get a gradient
/// ```
#[loss(logits, paper = "Dual-Head KD (Yang et al., KDD 2025)")]
pub fn dhkd(
    z: Logits,
    y: Labels,
    a: Traced<samples, classes>,
    t: Given<samples, classes>,
    #[hyper(
        default = 1.0,
        nonnegative,
        doc = "γ: weight of the main head's cross-entropy"
    )]
    gamma: f64,
    #[hyper(
        default = 1.0,
        nonnegative,
        doc = "α: weight of BinaryKL-Norm on the auxiliary head"
    )]
    alpha: f64,
    #[hyper(default = 2.0, positive, doc = "temperature T of BinaryKL-Norm")] temperature: f64,
    #[hyper(
        default = 1e-8,
        range(0.0, 0.1),
        doc = "ε of BinaryKL-Norm's clamp; 0 for the exact softplus form"
    )]
    clamp_eps: f64,
    #[hyper(default = 0.0, nonnegative, doc = "weight of KD-KL on the main head")] kd_weight: f64,
    #[hyper(default = 4.0, positive, doc = "temperature T_kd of KD-KL")] kd_temperature: f64,
) -> PerSample {
    let ce = logsumexp(classes, |k| z[i][k]) - z[i][y[i]];
    let norm = sq(temperature)
        * sum(classes, |k| {
            let u = (a[i][k] - t[i][k]) / temperature;
            let ld = clamp(-softplus(-u), ln(clamp_eps), ln_1p(-clamp_eps));
            let ld1 = clamp(-softplus(u), ln(clamp_eps), ln_1p(-clamp_eps));
            0.5 * (ln(0.5) - ld) + 0.5 * (ln(0.5) - ld1)
        });
    let lz = logsumexp(classes, |k| z[i][k] / kd_temperature);
    let lt = logsumexp(classes, |k| t[i][k] / kd_temperature);
    let kd = sq(kd_temperature)
        * sum(classes, |k| {
            let lp = t[i][k] / kd_temperature - lt;
            exp(lp) * (lp - (z[i][k] / kd_temperature - lz))
        });
    gamma * ce + alpha * norm + kd_weight * kd
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use super::*;
    use crate::check::{gradient_of, GradientReport, Tolerance};
    use crate::testing::sigmoid;
    use crate::testing::*;
    use crate::{Loss, LossError, Real};

    type Matrix<E, T = NoneTape> = Tensor<(usize, usize), E, Cpu, T>;
    type Owned<E> = OwnedTape<E, Cpu>;
    type Traced<E> = Tensor<(), E, Cpu, Owned<E>>;

    /// A loss of the student's logits and the teacher's, in precision `E`, traced.
    trait TeacherLoss<E: Dtype>:
        Loss<(Matrix<E, Owned<E>>, Matrix<E>), [usize], Output = Traced<E>>
    {
    }
    impl<E: Dtype, L> TeacherLoss<E> for L where
        L: Loss<(Matrix<E, Owned<E>>, Matrix<E>), [usize], Output = Traced<E>>
    {
    }

    /// A loss of two traced heads and the teacher's logits, in precision `E`.
    trait TwoHeadLoss<E: Dtype>:
        Loss<(Matrix<E, Owned<E>>, Matrix<E, Owned<E>>, Matrix<E>), [usize], Output = Traced<E>>
    {
    }
    impl<E: Dtype, L> TwoHeadLoss<E> for L where
        L: Loss<(Matrix<E, Owned<E>>, Matrix<E, Owned<E>>, Matrix<E>), [usize], Output = Traced<E>>
    {
    }

    fn tensor<E: Dtype + Real>(x: &[f64], c: usize) -> Matrix<E> {
        let dev: Cpu = Default::default();
        let values = x.iter().map(|&v| <E as Real>::from_f64(v)).collect();
        dev.tensor_from_vec(values, (x.len() / c, c))
    }

    fn to_f64<E: Real>(x: &[E]) -> Vec<f64> {
        x.iter().map(|v| v.to_f64()).collect()
    }

    /// The value and the gradient with respect to the student's logits.
    fn with_teacher<E: Dtype + Real, L: TeacherLoss<E>>(
        loss: &L,
        z: &[f64],
        t: &[f64],
        c: usize,
        y: &[usize],
    ) -> (f64, Vec<f64>) {
        let zt = tensor::<E>(z, c);
        let out = loss.forward((zt.leaky_trace(), tensor::<E>(t, c)), y);
        let value = out.array().to_f64();
        (value, to_f64(&out.backward().get(&zt).as_vec()))
    }

    /// The value and the gradients with respect to both heads.
    fn with_two_heads<E: Dtype + Real, L: TwoHeadLoss<E>>(
        loss: &L,
        [z, a, t]: [&[f64]; 3],
        c: usize,
        y: &[usize],
    ) -> (f64, Vec<f64>, Vec<f64>) {
        let (zt, at) = (tensor::<E>(z, c), tensor::<E>(a, c));
        let out = loss.forward((zt.leaky_trace(), at.leaky_trace(), tensor::<E>(t, c)), y);
        let value = out.array().to_f64();
        let grads = out.backward();
        (
            value,
            to_f64(&grads.get(&zt).as_vec()),
            to_f64(&grads.get(&at).as_vec()),
        )
    }

    // ----- naive f64 references, written as the official modules compute -----

    fn log_softmax(row: &[f64], temperature: f64) -> Vec<f64> {
        let scaled: Vec<f64> = row.iter().map(|v| v / temperature).collect();
        let m = scaled.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = scaled.iter().map(|v| (v - m).exp()).sum();
        scaled.iter().map(|v| v - m - s.ln()).collect()
    }

    fn naive_kd_kl(z: &[f64], t: &[f64], c: usize, temperature: f64) -> f64 {
        let n = z.len() / c;
        let mut total = 0.0;
        for i in 0..n {
            let lq = log_softmax(&z[i * c..(i + 1) * c], temperature);
            let lp = log_softmax(&t[i * c..(i + 1) * c], temperature);
            for k in 0..c {
                total += lp[k].exp() * (lp[k] - lq[k]);
            }
        }
        temperature * temperature * total / n as f64
    }

    fn clamped(x: f64, eps: f64) -> f64 {
        x.clamp(eps, 1.0 - eps)
    }

    fn naive_binary_kl(z: &[f64], t: &[f64], c: usize, temperature: f64, eps: f64) -> f64 {
        let mut total = 0.0;
        for (&zs, &zt) in z.iter().zip(t) {
            let q = clamped(sigmoid(zs / temperature), eps);
            let p = clamped(sigmoid(zt / temperature), eps);
            total += p * (p.ln() - q.ln()) + (1.0 - p) * ((1.0 - p).ln() - (1.0 - q).ln());
        }
        temperature * temperature * total / (z.len() / c) as f64
    }

    fn naive_binary_kl_norm(z: &[f64], t: &[f64], c: usize, temperature: f64, eps: f64) -> f64 {
        let mut total = 0.0;
        for (&zs, &zt) in z.iter().zip(t) {
            let d = clamped(sigmoid((zs - zt) / temperature), eps);
            total += 0.5 * (0.5f64.ln() - d.ln()) + 0.5 * (0.5f64.ln() - (1.0 - d).ln());
        }
        temperature * temperature * total / (z.len() / c) as f64
    }

    fn naive_ce(z: &[f64], c: usize, y: &[usize]) -> f64 {
        let mut total = 0.0;
        for (i, &label) in y.iter().enumerate() {
            total -= log_softmax(&z[i * c..(i + 1) * c], 1.0)[label];
        }
        total / y.len() as f64
    }

    /// Student, auxiliary and teacher logits with labels, uniform in `[−scale, scale]`.
    fn case(seed: u64, n: usize, c: usize, scale: f64) -> ([Vec<f64>; 3], Vec<usize>) {
        let mut rng = Rng::new(seed);
        let (z, y) = random_logits(&mut rng, n, c, scale);
        let (a, _) = random_logits(&mut rng, n, c, scale);
        let (t, _) = random_logits(&mut rng, n, c, scale);
        ([z, a, t], y)
    }

    const SHAPES: [(usize, usize); 3] = [(1, 2), (4, 3), (7, 10)];

    // ----- values -----

    #[test]
    fn kd_kl_matches_the_official_formula() {
        for (seed, &(n, c)) in SHAPES.iter().enumerate() {
            let ([z, _, t], y) = case(400 + seed as u64, n, c, 4.0);
            for temperature in [0.5, 1.0, 4.0, 10.0] {
                let loss = KdKl::new().with_temperature(temperature);
                let (got, _) = with_teacher::<f64, _>(&loss, &z, &t, c, &y);
                let want = naive_kd_kl(&z, &t, c, temperature);
                assert_close(got, want, 1e-11, 1e-14, &format!("T={temperature}"));
            }
        }
    }

    /// Moderate logits, and logits large enough that the clamp is active (scale 60, T = 2:
    /// |u| up to 60); ε = 0 only where the official literal form stays finite.
    #[test]
    fn binary_kls_match_the_official_formula() {
        for (seed, &(n, c)) in SHAPES.iter().enumerate() {
            for (scale, epsilons) in [(4.0, &[1e-8, 1e-3, 0.0][..]), (60.0, &[1e-8, 1e-3][..])] {
                let ([z, _, t], y) = case(410 + seed as u64, n, c, scale);
                for temperature in [0.5, 2.0, 5.0] {
                    for &eps in epsilons {
                        let what = format!("scale={scale} T={temperature} ε={eps}");
                        let bkl = BinaryKl::new()
                            .with_temperature(temperature)
                            .with_clamp_eps(eps);
                        let (got, _) = with_teacher::<f64, _>(&bkl, &z, &t, c, &y);
                        let want = naive_binary_kl(&z, &t, c, temperature, eps);
                        assert_close(got, want, 1e-7, 1e-12, &format!("binary_kl {what}"));
                        let norm = BinaryKlNorm::new()
                            .with_temperature(temperature)
                            .with_clamp_eps(eps);
                        let (got, _) = with_teacher::<f64, _>(&norm, &z, &t, c, &y);
                        let want = naive_binary_kl_norm(&z, &t, c, temperature, eps);
                        assert_close(got, want, 1e-7, 1e-12, &format!("norm {what}"));
                    }
                }
            }
        }
    }

    #[test]
    fn dhkd_is_the_weighted_sum_of_its_parts() {
        let settings = [
            (1.0, 1.0, 2.0, 1e-8, 0.0, 4.0),
            (0.5, 0.1, 1.0, 1e-8, 0.7, 3.0),
            (2.0, 0.0, 4.0, 0.0, 1.0, 1.0),
            (0.0, 3.0, 0.5, 1e-3, 0.0, 4.0),
        ];
        for (seed, &(n, c)) in SHAPES.iter().enumerate() {
            let ([z, a, t], y) = case(420 + seed as u64, n, c, 5.0);
            for (gamma, alpha, temperature, eps, kd_weight, kd_temperature) in settings {
                let loss = Dhkd::new()
                    .with_gamma(gamma)
                    .with_alpha(alpha)
                    .with_temperature(temperature)
                    .with_clamp_eps(eps)
                    .with_kd_weight(kd_weight)
                    .with_kd_temperature(kd_temperature);
                let (got, _, _) = with_two_heads::<f64, _>(&loss, [&z, &a, &t], c, &y);
                let want = gamma * naive_ce(&z, c, &y)
                    + alpha * naive_binary_kl_norm(&a, &t, c, temperature, eps)
                    + kd_weight * naive_kd_kl(&z, &t, c, kd_temperature);
                assert_close(got, want, 1e-10, 1e-13, &format!("γ={gamma} α={alpha}"));
            }
        }
    }

    // ----- gradients -----

    fn assert_passed(report: Result<GradientReport, LossError>, what: &str) {
        let report = report.expect("the loss runs");
        assert!(report.passed() && report.kinks == 0, "{what}: {report}");
    }

    #[test]
    fn gradients_match_finite_differences() {
        let tol = Tolerance::default();
        for (seed, &(n, c)) in SHAPES.iter().enumerate() {
            let ([z, a, t], y) = case(430 + seed as u64, n, c, 3.0);
            let (z, a, t) = (
                tensor::<f64>(&z, c),
                tensor::<f64>(&a, c),
                tensor::<f64>(&t, c),
            );
            for temperature in [0.5, 2.0, 4.0] {
                let kd = KdKl::new().with_temperature(temperature);
                let report = gradient_of(|x| kd.try_forward((x, t.clone()), &y), &z, tol);
                assert_passed(report, &format!("kd_kl T={temperature}"));
                for eps in [1e-8, 0.0] {
                    let bkl = BinaryKl::new()
                        .with_temperature(temperature)
                        .with_clamp_eps(eps);
                    let report = gradient_of(|x| bkl.try_forward((x, t.clone()), &y), &z, tol);
                    assert_passed(report, &format!("binary_kl T={temperature} ε={eps}"));
                    let norm = BinaryKlNorm::new()
                        .with_temperature(temperature)
                        .with_clamp_eps(eps);
                    let report = gradient_of(|x| norm.try_forward((x, t.clone()), &y), &z, tol);
                    assert_passed(report, &format!("norm T={temperature} ε={eps}"));
                }
            }
            let dhkd = Dhkd::new().with_alpha(0.5).with_kd_weight(0.3);
            let wrt_z = gradient_of(|x| dhkd.try_forward((x, a.clone(), t.clone()), &y), &z, tol);
            assert_passed(wrt_z, "dhkd main head");
            let wrt_a = gradient_of(
                |x| dhkd.try_forward((z.leaky_trace(), x, t.clone()), &y),
                &a,
                tol,
            );
            assert_passed(wrt_a, "dhkd auxiliary head");
        }
    }

    /// The closed forms of the docs: KD-KL `(T/N)(q − p)` over the softmaxes, BinaryKL
    /// `(T/N)(σ(z/T) − σ(t/T))`, BinaryKL-Norm `(T/N)(σ(u) − ½)`; DHKD's auxiliary head gets
    /// only α times the last.
    #[test]
    fn gradients_have_their_closed_forms() {
        let (n, c, temperature) = (5, 4, 3.0);
        let ([z, a, t], y) = case(440, n, c, 4.0);
        let scale = temperature / n as f64;
        let (_, g) =
            with_teacher::<f64, _>(&KdKl::new().with_temperature(temperature), &z, &t, c, &y);
        for i in 0..n {
            let lq = log_softmax(&z[i * c..(i + 1) * c], temperature);
            let lp = log_softmax(&t[i * c..(i + 1) * c], temperature);
            for k in 0..c {
                let want = scale * (lq[k].exp() - lp[k].exp());
                assert_close(g[i * c + k], want, 1e-10, 1e-15, "kd_kl");
            }
        }
        let (_, g) = with_teacher::<f64, _>(
            &BinaryKl::new().with_temperature(temperature),
            &z,
            &t,
            c,
            &y,
        );
        for j in 0..n * c {
            let want = scale * (sigmoid(z[j] / temperature) - sigmoid(t[j] / temperature));
            assert_close(g[j], want, 1e-10, 1e-15, "binary_kl");
        }
        let norm = BinaryKlNorm::new().with_temperature(temperature);
        let (_, g) = with_teacher::<f64, _>(&norm, &z, &t, c, &y);
        for j in 0..n * c {
            let want = scale * (sigmoid((z[j] - t[j]) / temperature) - 0.5);
            assert_close(g[j], want, 1e-10, 1e-15, "binary_kl_norm");
        }
        let dhkd = Dhkd::new().with_alpha(0.25).with_temperature(temperature);
        let (_, _, ga) = with_two_heads::<f64, _>(&dhkd, [&z, &a, &t], c, &y);
        for j in 0..n * c {
            let want = 0.25 * scale * (sigmoid((a[j] - t[j]) / temperature) - 0.5);
            assert_close(ga[j], want, 1e-10, 1e-15, "dhkd auxiliary head");
        }
    }

    /// Past `|u| = ln((1 − ε)/ε)` the official clamp saturates BinaryKL-Norm: the value is
    /// the constant `½ln(½/ε) + ½ln(½/(1 − ε))` per logit and the gradient exactly 0, in
    /// both precisions; with ε = 0 the gradient does not vanish.
    #[test]
    fn the_clamp_saturates_and_zero_eps_does_not() {
        let eps = 1e-8;
        let saturated = 0.5 * (0.5 / eps).ln() + 0.5 * (0.5 / (1.0 - eps)).ln();
        let (z, t, y) = ([40.0, -40.0, 0.0], [0.0, 0.0, 0.0], [0]);
        let norm = BinaryKlNorm::new();
        let (v64, g64) = with_teacher::<f64, _>(&norm, &z, &t, 3, &y);
        let (v32, g32) = with_teacher::<f32, _>(&norm, &z, &t, 3, &y);
        assert_close(v64, 4.0 * 2.0 * saturated, 1e-9, 0.0, "f64 saturated value");
        assert_close(v32, 4.0 * 2.0 * saturated, 1e-5, 0.0, "f32 saturated value");
        assert_eq!(g64, [0.0; 3]);
        assert_eq!(g32, [0.0; 3]);
        let exact = BinaryKlNorm::new().with_clamp_eps(0.0);
        let (v, g) = with_teacher::<f64, _>(&exact, &z, &t, 3, &y);
        // ½softplus(u) + ½softplus(−u) − ln 2 at u = ±20, times T² = 4
        let term =
            0.5 * (20.0 + (-20.0f64).exp().ln_1p()) + 0.5 * (-20.0f64).exp().ln_1p() - 2f64.ln();
        assert_close(v, 4.0 * 2.0 * term, 1e-12, 0.0, "ε = 0 value");
        assert_close(
            g[0],
            2.0 * (sigmoid(20.0) - 0.5),
            1e-12,
            0.0,
            "ε = 0 gradient",
        );
        assert_close(
            g[1],
            2.0 * (sigmoid(-20.0) - 0.5),
            1e-12,
            0.0,
            "ε = 0 gradient",
        );
        // BinaryKL saturates on the student's own sigmoid the same way
        let (_, g) = with_teacher::<f64, _>(&BinaryKl::new(), &[50.0, 1.0], &[0.0, 0.0], 2, &y);
        assert_eq!(g[0], 0.0);
        assert!(g[1] != 0.0);
    }

    #[test]
    fn f32_agrees_with_f64() {
        for (seed, &(n, c)) in SHAPES.iter().enumerate() {
            let ([z, a, t], y) = case(450 + seed as u64, n, c, 4.0);
            let round = |x: &[f64]| -> Vec<f64> { x.iter().map(|&v| v as f32 as f64).collect() };
            let (z, a, t) = (round(&z), round(&a), round(&t));
            let compare = |(v32, g32): (f64, Vec<f64>), (v64, g64): (f64, Vec<f64>), what: &str| {
                assert_close(v32, v64, 1e-4, 1e-6, &format!("{what} value"));
                let tol = 1e-4 * max_abs(&g64);
                for (j, (g32, g64)) in g32.iter().zip(&g64).enumerate() {
                    assert_close(*g32, *g64, 0.0, tol, &format!("{what} gradient [{j}]"));
                }
            };
            let kd = KdKl::new();
            compare(
                with_teacher::<f32, _>(&kd, &z, &t, c, &y),
                with_teacher::<f64, _>(&kd, &z, &t, c, &y),
                "kd_kl",
            );
            let bkl = BinaryKl::new();
            compare(
                with_teacher::<f32, _>(&bkl, &z, &t, c, &y),
                with_teacher::<f64, _>(&bkl, &z, &t, c, &y),
                "binary_kl",
            );
            let norm = BinaryKlNorm::new();
            compare(
                with_teacher::<f32, _>(&norm, &z, &t, c, &y),
                with_teacher::<f64, _>(&norm, &z, &t, c, &y),
                "binary_kl_norm",
            );
            let dhkd = Dhkd::new().with_kd_weight(0.5);
            let (v32, gz32, ga32) = with_two_heads::<f32, _>(&dhkd, [&z, &a, &t], c, &y);
            let (v64, gz64, ga64) = with_two_heads::<f64, _>(&dhkd, [&z, &a, &t], c, &y);
            compare((v32, gz32), (v64, gz64), "dhkd main head");
            compare((v32, ga32), (v64, ga64), "dhkd auxiliary head");
        }
    }

    // ----- invariances -----

    /// Adds `shift[i]` to every logit of row `i`.
    fn shifted(x: &[f64], c: usize, shift: &[f64]) -> Vec<f64> {
        x.iter()
            .enumerate()
            .map(|(j, v)| v + shift[j / c])
            .collect()
    }

    #[test]
    fn kd_kl_is_zero_at_the_teacher_and_shift_invariant_per_row() {
        let (n, c) = (6, 5);
        let ([z, _, t], y) = case(460, n, c, 5.0);
        let shift: Vec<f64> = (0..n).map(|i| 3.0 * i as f64 - 7.5).collect();
        for temperature in [1.0, 4.0] {
            let kd = KdKl::new().with_temperature(temperature);
            let (v, g) = with_teacher::<f64, _>(&kd, &t, &t, c, &y);
            assert!(v.abs() < 1e-12 && max_abs(&g) < 1e-12, "{v} {g:?}");
            let (v, g) = with_teacher::<f64, _>(&kd, &shifted(&t, c, &shift), &t, c, &y);
            assert!(
                v.abs() < 1e-12 && max_abs(&g) < 1e-12,
                "shifted student: {v}"
            );
            let (base, g0) = with_teacher::<f64, _>(&kd, &z, &t, c, &y);
            assert!(base > 0.0);
            let (moved, g1) = with_teacher::<f64, _>(&kd, &shifted(&z, c, &shift), &t, c, &y);
            assert_close(moved, base, 1e-12, 0.0, "student shifted per row");
            let (moved_t, _) = with_teacher::<f64, _>(&kd, &z, &shifted(&t, c, &shift), c, &y);
            assert_close(moved_t, base, 1e-12, 0.0, "teacher shifted per row");
            for j in 0..n * c {
                assert_close(g1[j], g0[j], 1e-9, 1e-14, "gradient after a shift");
            }
        }
    }

    /// BinaryKL-Norm: zero exactly at `z = t`; even in u (swap student and teacher);
    /// unchanged by a common per-row shift of both, changed by a shift of one; close to
    /// `(1/(8N)) Σ (z − t)²` for small differences, whatever T.
    #[test]
    fn binary_kl_norm_invariances() {
        let (n, c) = (5, 4);
        let ([z, _, t], y) = case(470, n, c, 3.0);
        let norm = BinaryKlNorm::new();
        let value = |z: &[f64], t: &[f64]| with_teacher::<f64, _>(&norm, z, t, c, &y).0;
        assert_eq!(value(&t, &t), 0.0);
        let base = value(&z, &t);
        assert!(base > 0.0);
        assert_close(value(&t, &z), base, 1e-12, 0.0, "swap");
        let shift: Vec<f64> = (0..n).map(|i| i as f64 - 2.0).collect();
        let (zs, ts) = (shifted(&z, c, &shift), shifted(&t, c, &shift));
        assert_close(value(&zs, &ts), base, 1e-12, 0.0, "common shift");
        assert!(
            (value(&zs, &t) - base).abs() > 1e-3,
            "a student shift is not invariant"
        );
        let small: Vec<f64> = t.iter().zip(&z).map(|(t, z)| t + 1e-3 * (z - t)).collect();
        let quadratic: f64 = small
            .iter()
            .zip(&t)
            .map(|(s, t)| (s - t).powi(2))
            .sum::<f64>()
            / (8.0 * n as f64);
        for temperature in [0.5, 2.0, 8.0] {
            let got = with_teacher::<f64, _>(
                &norm.clone().with_temperature(temperature),
                &small,
                &t,
                c,
                &y,
            )
            .0;
            assert_close(
                got,
                quadratic,
                1e-4,
                1e-15,
                &format!("small limit T={temperature}"),
            );
        }
    }

    /// BinaryKL: zero at `z = t` and positive elsewhere; not invariant to a row shift.
    #[test]
    fn binary_kl_zero_set_and_shift() {
        let (n, c) = (4, 6);
        let ([z, _, t], y) = case(480, n, c, 4.0);
        let bkl = BinaryKl::new();
        let value = |z: &[f64]| with_teacher::<f64, _>(&bkl, z, &t, c, &y).0;
        assert!(value(&t).abs() < 1e-15);
        let base = value(&z);
        assert!(base > 0.0);
        assert!((value(&shifted(&z, c, &[1.0; 4])) - base).abs() > 1e-3);
    }

    /// DHKD: the main head's terms are shift-invariant per row; the auxiliary term is
    /// invariant to shifting the auxiliary and teacher rows together.
    #[test]
    fn dhkd_shift_invariances() {
        let (n, c) = (5, 3);
        let ([z, a, t], y) = case(490, n, c, 3.0);
        let dhkd = Dhkd::new().with_kd_weight(0.5);
        let value =
            |z: &[f64], a: &[f64], t: &[f64]| with_two_heads::<f64, _>(&dhkd, [z, a, t], c, &y).0;
        let base = value(&z, &a, &t);
        let shift: Vec<f64> = (0..n).map(|i| 2.0 * i as f64 - 4.0).collect();
        let (zs, as_, ts) = (
            shifted(&z, c, &shift),
            shifted(&a, c, &shift),
            shifted(&t, c, &shift),
        );
        assert_close(value(&zs, &a, &t), base, 1e-12, 0.0, "main head shifted");
        assert_close(
            value(&z, &as_, &ts),
            base,
            1e-12,
            0.0,
            "auxiliary and teacher shifted",
        );
    }

    #[test]
    fn a_teacher_of_the_wrong_shape_is_refused() {
        let ([z, _, t], y) = case(495, 3, 4, 1.0);
        let (z, t_short) = (tensor::<f64>(&z, 4), tensor::<f64>(&t[..9], 3));
        let err = KdKl::new()
            .try_forward((z.clone(), t_short.clone()), &y)
            .expect_err("refused");
        assert!(
            matches!(
                err,
                LossError::AxisMismatch {
                    axis: "classes",
                    found_in: "t",
                    found: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        let err = Dhkd::new()
            .try_forward((z.clone(), z.clone(), t_short), &y)
            .expect_err("refused");
        assert!(
            matches!(err, LossError::AxisMismatch { found_in: "t", .. }),
            "{err:?}"
        );
    }
}
