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
            let lq = clamp(-softplus(-z[i][k] / temperature), ln(clamp_eps), ln_1p(-clamp_eps));
            let lq1 = clamp(-softplus(z[i][k] / temperature), ln(clamp_eps), ln_1p(-clamp_eps));
            let lp = clamp(-softplus(-t[i][k] / temperature), ln(clamp_eps), ln_1p(-clamp_eps));
            let lp1 = clamp(-softplus(t[i][k] / temperature), ln(clamp_eps), ln_1p(-clamp_eps));
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
    #[hyper(default = 1.0, nonnegative, doc = "γ: weight of the main head's cross-entropy")]
    gamma: f64,
    #[hyper(default = 1.0, nonnegative, doc = "α: weight of BinaryKL-Norm on the auxiliary head")]
    alpha: f64,
    #[hyper(default = 2.0, positive, doc = "temperature T of BinaryKL-Norm")] temperature: f64,
    #[hyper(
        default = 1e-8,
        range(0.0, 0.1),
        doc = "ε of BinaryKL-Norm's clamp; 0 for the exact softplus form"
    )]
    clamp_eps: f64,
    #[hyper(default = 0.0, nonnegative, doc = "weight of KD-KL on the main head")]
    kd_weight: f64,
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

