//! ElasticFace: ArcFace and CosFace with a random margin per sample and per step, and
//! the "+" variants that hand the larger margins to the harder samples.

use crate::loss;

/// ElasticFace-Arc: ArcFace whose angular margin is drawn afresh for every sample at
/// every step, `m_i ~ N(m, σ²)`, so that the class boundaries are not pushed to one fixed
/// margin but spread around it.
///
/// The logits `z` are cosines: pass [`ClassCosines`](crate::ClassCosines)`(embeddings,
/// weights)` (or a ready cosine matrix), followed by the draws `eps` `[N]`, standard normal,
/// one per sample: `(ClassCosines(e, w), &eps[..])`. Make them with
/// [`standard_normal_draws`](crate::standard_normal_draws) from a generator you own, once
/// per step; the loss holds no generator, and the same seed gives the same draws, hence
/// the same loss and gradient.
///
/// ```text
/// m_i   = m + σ·ε_i                                 (no clamp: m_i may be < 0)
/// c_i   = clamp(z[i][y_i], −1 + 1e-7, 1 − 1e-7)
/// ℓ_ik  = s·cos(acos(c_i) + m_i) if k = y_i,  s·z[i][k] otherwise
/// L     = (1/N) Σ_i [ logsumexp_k ℓ_ik − ℓ_{i y_i} ]
/// ```
///
/// **"+" (`plus`).** The drawn margins are re-assigned by the label cosines `cy`, with no
/// gradient: `idx` sorts the samples by `cy` descending (`idx[r]` is the `r`-th easiest),
/// `m_sorted` the margins ascending.
/// - `plus_intended = false` (**Official**, the default): `m_i ← m_sorted[idx[i]]`, the
///   released code's gather. It hands out the same margins, but is monotone in `cy` only
///   when `idx` is its own inverse.
/// - `plus_intended = true` (**Intended**): `m_{idx[r]} ← m_sorted[r]`, the scatter the
///   code evidently meant: the `r`-th easiest sample gets the `r`-th smallest margin.
///
/// Ties (equal cosines, equal draws) are broken by sample index (a stable sort; torch's
/// is not). The ranks cost O(N²) per batch.
///
/// **Reference:** Fadi Boutros, Naser Damer, Florian Kirchbuchner, Arjan Kuijper.
/// *ElasticFace: Elastic Margin Loss for Deep Face Recognition.* CVPR Workshops 2022.
/// **Official code:** `fdbtrs/ElasticFace`, `utils/losses.py::ElasticArcFace`,
/// `config/config.py`, `train.py` (mean cross-entropy on the head's output).
///
/// **Defaults:** s = 64, m = 0.5, σ = 0.05 (ElasticFace-Arc in `config/config.py`; the
/// class default 0.0125 is overridden there). ElasticFace-Arc+ uses σ = 0.0175:
/// [`ElasticFaceArc::plus_defaults`].
///
/// **Code vs here.** The official code draws `normal(m, σ)` itself; here the caller passes
/// ε and the loss forms `m + σ·ε`, the same distribution. It clamps the cosine to
/// `[−1, 1]` before `acos`, whose derivative is infinite there; here to
/// `[−1 + 1e-7, 1 − 1e-7]`, which changes values only for a label cosine within 1e-7 of
/// ±1. Like the official code (and unlike ArcFace's insightface head) there is no
/// easy-margin or `θ + m > π` fallback. Its `label != −1` filter (partial-FC code) is
/// dropped: every label is a class.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// use rand::{rngs::StdRng, SeedableRng};
/// let dev: Cpu = Default::default();
/// let e: Tensor<Rank2<4, 3>, f64, _> = dev.sample_normal();
/// let w: Tensor<Rank2<5, 3>, f64, _> = dev.sample_normal();
/// let labels = [0, 3, 3, 1];
/// let mut rng = StdRng::seed_from_u64(1); // yours, for the whole run
/// let eps: Vec<f64> = standard_normal_draws(&mut rng, 4); // once per step
/// let loss = ElasticFaceArc::plus_defaults();
/// let out = loss.forward((ClassCosines(e.leaky_trace(), w.leaky_trace()), &eps[..]), &labels);
/// // the same draws give the same loss
/// let again = loss.forward((ClassCosines(e.clone(), w.clone()), &eps[..]), &labels);
/// assert_eq!(out.array(), again.array());
/// let grads = out.backward();
/// ```
#[loss(
    logits,
    paper = "ElasticFace-Arc, random per-sample angular margin (Boutros et al., CVPR-W 2022); \
             the logits are cosines, `eps` the N(0, 1) draws"
)]
pub fn elastic_face_arc(
    z: Logits,
    y: Labels,
    eps: Given<samples>,
    #[hyper(default = 64.0, positive, doc = "s, the scale applied to the cosines")] s: f64,
    #[hyper(default = 0.5, doc = "m, the mean angular margin in radians")] m: f64,
    #[hyper(
        default = 0.05,
        nonnegative,
        doc = "σ, the standard deviation of the margin (0.0175 for the + variant)"
    )]
    sigma: f64,
    #[hyper(
        default = false,
        doc = "ElasticFace+: re-assign the drawn margins so that harder samples (lower \
               label cosine) get larger ones"
    )]
    plus: bool,
    #[hyper(
        default = false,
        doc = "with `plus`: the ranking the official code meant (a scatter) instead of the \
               one it performs (a gather, the default)"
    )]
    plus_intended: bool,
) -> PerSample {
    // where sample i stands among the label cosines, descending (stable): rd(i)
    let easier =
        len(samples.filter(|l| z[l][y[l]] > z[i][y[i]] || (z[l][y[l]] == z[i][y[i]] && l < i)));
    // Official: idx[i], the sample whose descending rank is i (as a number)
    let position = len(samples.filter(|l| l < i));
    let gathered = sum(
        samples.filter(|j| {
            len(samples.filter(|l| z[l][y[l]] > z[j][y[j]] || (z[l][y[l]] == z[j][y[j]] && l < j)))
                == position
        }),
        |j| len(samples.filter(|l| l < j)),
    );
    let rank = select(plus_intended, easier, gathered);
    // the draw of that ascending rank (stable): m_sorted[rank] = m + σ·ε_(rank)
    let sorted = sum(
        samples.filter(|q| {
            len(samples.filter(|p| eps[p] < eps[q] || (eps[p] == eps[q] && p < q))) == rank
        }),
        |q| eps[q],
    );
    let margin = m + sigma * detach(select(plus, sorted, eps[i]));
    let target = cos(acos(clamp(z[i][y[i]], -1.0 + 1e-7, 1.0 - 1e-7)) + margin);
    logsumexp(classes, |k| s * select(k == y[i], target, z[i][k])) - s * target
}

impl ElasticFaceArc {
    /// ElasticFace-Arc+ as configured in the official `config/config.py`: `plus` on,
    /// σ = 0.0175, the Official assignment.
    pub fn plus_defaults() -> Self {
        Self::new().with_plus(true).with_sigma(0.0175)
    }
}

/// ElasticFace-Cos: CosFace whose cosine margin is drawn afresh for every sample at every
/// step, `m_i ~ N(m, σ²)`; with `plus`, harder samples get the larger margins.
///
/// Inputs as for [`ElasticFaceArc`]: `(ClassCosines(e, w), &eps[..])` with standard
/// normal draws `eps` `[N]` from
/// [`standard_normal_draws`](crate::standard_normal_draws).
///
/// ```text
/// m_i   = m + σ·ε_i       (re-assigned by rank under `plus`, as in ElasticFaceArc)
/// ℓ_ik  = s·(z[i][y_i] − m_i) if k = y_i,  s·z[i][k] otherwise
/// L     = (1/N) Σ_i [ logsumexp_k ℓ_ik − ℓ_{i y_i} ]
/// ```
///
/// **Reference:** Boutros et al., *ElasticFace*, CVPR Workshops 2022. **Official code:**
/// `fdbtrs/ElasticFace`, `utils/losses.py::ElasticCosFace`, `config/config.py`.
///
/// **Defaults:** s = 64, m = 0.35, σ = 0.05 (ElasticFace-Cos); ElasticFace-Cos+ uses
/// σ = 0.02: [`ElasticFaceCos::plus_defaults`].
///
/// **Code vs here.** As for [`ElasticFaceArc`]: ε is an input, ties are broken by index,
/// and the official clamp of the cosines to `[−1, 1]` is not applied (there is no `acos`
/// here, and cosines from [`ClassCosines`](crate::ClassCosines) lie in `[−1, 1]`).
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let cos: Tensor<Rank2<2, 3>, f64, _> = dev.tensor([[0.9, 0.1, -0.2], [0.3, 0.4, 0.0]]);
/// // σ = 0: CosFace with margin m
/// let elastic = ElasticFaceCos::default().with_sigma(0.0).forward((cos.clone(), &[0.7, -1.3][..]), &[0, 1]);
/// let cosface = CosFace::default().forward(cos, &[0, 1]);
/// assert!((elastic.array() - cosface.array()).abs() < 1e-12);
/// ```
#[loss(
    logits,
    paper = "ElasticFace-Cos, random per-sample cosine margin (Boutros et al., CVPR-W 2022); \
             the logits are cosines, `eps` the N(0, 1) draws"
)]
pub fn elastic_face_cos(
    z: Logits,
    y: Labels,
    eps: Given<samples>,
    #[hyper(default = 64.0, positive, doc = "s, the scale applied to the cosines")] s: f64,
    #[hyper(default = 0.35, doc = "m, the mean cosine margin")] m: f64,
    #[hyper(
        default = 0.05,
        nonnegative,
        doc = "σ, the standard deviation of the margin (0.02 for the + variant)"
    )]
    sigma: f64,
    #[hyper(
        default = false,
        doc = "ElasticFace+: re-assign the drawn margins so that harder samples (lower \
               label cosine) get larger ones"
    )]
    plus: bool,
    #[hyper(
        default = false,
        doc = "with `plus`: the ranking the official code meant (a scatter) instead of the \
               one it performs (a gather, the default)"
    )]
    plus_intended: bool,
) -> PerSample {
    let easier =
        len(samples.filter(|l| z[l][y[l]] > z[i][y[i]] || (z[l][y[l]] == z[i][y[i]] && l < i)));
    let position = len(samples.filter(|l| l < i));
    let gathered = sum(
        samples.filter(|j| {
            len(samples.filter(|l| z[l][y[l]] > z[j][y[j]] || (z[l][y[l]] == z[j][y[j]] && l < j)))
                == position
        }),
        |j| len(samples.filter(|l| l < j)),
    );
    let rank = select(plus_intended, easier, gathered);
    let sorted = sum(
        samples.filter(|q| {
            len(samples.filter(|p| eps[p] < eps[q] || (eps[p] == eps[q] && p < q))) == rank
        }),
        |q| eps[q],
    );
    let margin = m + sigma * detach(select(plus, sorted, eps[i]));
    let target = z[i][y[i]] - margin;
    logsumexp(classes, |k| s * select(k == y[i], target, z[i][k])) - s * target
}

impl ElasticFaceCos {
    /// ElasticFace-Cos+ as configured in the official `config/config.py`: `plus` on,
    /// σ = 0.02, the Official assignment.
    pub fn plus_defaults() -> Self {
        Self::new().with_plus(true).with_sigma(0.02)
    }
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::check::{gradient_of, Tolerance};
    use crate::testing::*;
    use crate::{standard_normal_draws, ArcFace, ClassCosines, CosFace, Loss, LossError};

    /// The margins the official code hands out, step by step: draw, sort ascending,
    /// argsort the label cosines descending (stable), then gather (`Official`) or
    /// scatter (`Intended`).
    fn assigned(
        cy: &[f64],
        eps: &[f64],
        m: f64,
        sigma: f64,
        plus: bool,
        intended: bool,
    ) -> Vec<f64> {
        let margin: Vec<f64> = eps.iter().map(|e| m + sigma * e).collect();
        if !plus {
            return margin;
        }
        let mut sorted = margin.clone();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let mut idx: Vec<usize> = (0..cy.len()).collect();
        idx.sort_by(|&a, &b| cy[b].partial_cmp(&cy[a]).unwrap());
        let mut out = vec![0.0; cy.len()];
        for i in 0..cy.len() {
            if intended {
                out[idx[i]] = sorted[i];
            } else {
                out[i] = sorted[idx[i]];
            }
        }
        out
    }

    /// The official header then mean cross-entropy, with plain loops.
    fn naive(z: &[f64], c: usize, y: &[usize], s: f64, margins: &[f64], arc: bool) -> f64 {
        let n = y.len();
        let mut total = 0.0;
        for i in 0..n {
            let mut row: Vec<f64> = z[i * c..(i + 1) * c].to_vec();
            let cy = row[y[i]];
            row[y[i]] = if arc {
                (cy.clamp(-1.0 + 1e-7, 1.0 - 1e-7).acos() + margins[i]).cos()
            } else {
                cy - margins[i]
            };
            let scaled: Vec<f64> = row.iter().map(|v| s * v).collect();
            let top = scaled.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = top + scaled.iter().map(|v| (v - top).exp()).sum::<f64>().ln();
            total += lse - scaled[y[i]];
        }
        total / n as f64
    }

    fn case(rng: &mut Rng, n: usize, c: usize) -> (Vec<f64>, Vec<usize>, Vec<f64>) {
        let (z, y) = random_logits(rng, n, c, 0.99);
        let eps = standard_normal_draws(&mut StdRng::seed_from_u64(rng.next_u64()), n);
        (z, y, eps)
    }

    fn value<L>(loss: &L, z: &[f64], c: usize, y: &[usize], eps: &[f64]) -> f64
    where
        L: Loss<
            (Tensor<(usize, usize), f64, Cpu>, Vec<f64>),
            [usize],
            Output = Tensor<(), f64, Cpu>,
        >,
    {
        let dev: Cpu = Default::default();
        let zt = dev.tensor_from_vec(z.to_vec(), (z.len() / c, c));
        loss.try_forward((zt, eps.to_vec()), y).unwrap().array()
    }

    const MODES: [(bool, bool); 3] = [(false, false), (true, false), (true, true)];

    #[test]
    fn values_match_the_official_header() {
        let mut rng = Rng::new(2401);
        for (n, c) in [(1, 3), (3, 2), (9, 5), (24, 7)] {
            let (z, y, eps) = case(&mut rng, n, c);
            let cy: Vec<f64> = (0..n).map(|i| z[i * c + y[i]]).collect();
            for (plus, intended) in MODES {
                for (s, m, sigma) in [(64.0, 0.5, 0.05), (10.0, 0.3, 0.5)] {
                    let what = format!("n={n} plus={plus} intended={intended} σ={sigma}");
                    let margins = assigned(&cy, &eps, m, sigma, plus, intended);
                    let arc = ElasticFaceArc::new()
                        .with_s(s)
                        .with_m(m)
                        .with_sigma(sigma)
                        .with_plus(plus)
                        .with_plus_intended(intended);
                    let want = naive(&z, c, &y, s, &margins, true);
                    assert_close(value(&arc, &z, c, &y, &eps), want, 1e-12, 1e-12, &what);
                    let cos = ElasticFaceCos::new()
                        .with_s(s)
                        .with_m(m)
                        .with_sigma(sigma)
                        .with_plus(plus)
                        .with_plus_intended(intended);
                    let want = naive(&z, c, &y, s, &margins, false);
                    assert_close(value(&cos, &z, c, &y, &eps), want, 1e-12, 1e-12, &what);
                }
            }
        }
    }

    /// σ = 0: ArcFace without its fallback (a cosine above the threshold) and CosFace;
    /// m = σ = 0: scaled softmax CE.
    #[test]
    fn zero_sigma_is_arcface_and_cosface() {
        let mut rng = Rng::new(2402);
        let (n, c) = (8, 4);
        // label cosines above cos(π − 0.5) so that ArcFace's fallback stays off
        let (mut z, y, eps) = case(&mut rng, n, c);
        for i in 0..n {
            z[i * c + y[i]] = z[i * c + y[i]].abs();
        }
        let dev: Cpu = Default::default();
        let zt: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(z.clone(), (n, c));
        let arc = ArcFace::new().forward(zt.clone(), &y).array();
        let el = value(&ElasticFaceArc::new().with_sigma(0.0), &z, c, &y, &eps);
        assert_close(el, arc, 1e-12, 1e-12, "arc");
        let cos = CosFace::new().forward(zt.clone(), &y).array();
        let el = value(&ElasticFaceCos::new().with_sigma(0.0), &z, c, &y, &eps);
        assert_close(el, cos, 1e-12, 1e-12, "cos");
        let ce = ArcFace::new().with_m(0.0).forward(zt, &y).array();
        let el = value(
            &ElasticFaceCos::new().with_m(0.0).with_sigma(0.0),
            &z,
            c,
            &y,
            &eps,
        );
        assert_close(el, ce, 1e-12, 1e-12, "m = σ = 0");
    }

    /// A batch of 3 whose argsort is not an involution: the two modes differ; both hand
    /// out the drawn multiset; Intended is monotone (an easier sample never gets a larger
    /// margin).
    #[test]
    fn official_and_intended_assignments() {
        // cy descending order: sample 1, 2, 0 → idx = [1, 2, 0], a 3-cycle
        let cy = [0.1, 0.9, 0.5];
        let eps = [-1.0, 0.0, 1.0];
        let official = assigned(&cy, &eps, 0.0, 1.0, true, false);
        let intended = assigned(&cy, &eps, 0.0, 1.0, true, true);
        assert_eq!(official, vec![0.0, 1.0, -1.0]);
        assert_eq!(intended, vec![1.0, -1.0, 0.0]);
        // the loss applies exactly these margins: recover each by its effect on the value
        let (c, y) = (2, [0, 0, 0]);
        let z = [cy[0], 0.0, cy[1], 0.0, cy[2], 0.0];
        for (intended_mode, margins) in [(false, &official), (true, &intended)] {
            let loss = ElasticFaceCos::new()
                .with_m(0.0)
                .with_sigma(1.0)
                .with_s(1.0)
                .with_plus(true)
                .with_plus_intended(intended_mode);
            let want = naive(&z, c, &y, 1.0, margins, false);
            assert_close(value(&loss, &z, c, &y, &eps), want, 1e-14, 1e-14, "mode");
        }
        let mut rng = Rng::new(2403);
        for _ in 0..20 {
            let n = 2 + rng.below(10);
            let cy: Vec<f64> = (0..n).map(|_| rng.range(-1.0, 1.0)).collect();
            let eps: Vec<f64> = (0..n).map(|_| rng.range(-2.0, 2.0)).collect();
            let mut drawn = eps.clone();
            drawn.sort_by(|a, b| a.partial_cmp(b).unwrap());
            for intended in [false, true] {
                let mut got = assigned(&cy, &eps, 0.0, 1.0, true, intended);
                if intended {
                    for a in 0..n {
                        for b in 0..n {
                            if cy[a] > cy[b] {
                                assert!(got[a] <= got[b]);
                            }
                        }
                    }
                }
                got.sort_by(|a, b| a.partial_cmp(b).unwrap());
                assert_eq!(got, drawn);
            }
        }
    }

    /// The gradient holds the margins fixed (the re-assignment is detached): against
    /// finite differences, with the "+" ranks away from ties, through the cosines and
    /// through the class-cosine op to the embeddings and the weights.
    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = Rng::new(2404);
        let (n, c) = (6, 4);
        let (z, y, eps) = case(&mut rng, n, c);
        let dev: Cpu = Default::default();
        let zt: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(z, (n, c));
        for (plus, intended) in MODES {
            let arc = ElasticFaceArc::new()
                .with_s(8.0)
                .with_sigma(0.3)
                .with_plus(plus)
                .with_plus_intended(intended);
            let report = gradient_of(
                |x| arc.try_forward((x, &eps[..]), &y),
                &zt,
                Tolerance::default(),
            );
            assert!(
                report.unwrap().passed(),
                "arc plus={plus} intended={intended}"
            );
            let cos = ElasticFaceCos::new()
                .with_s(8.0)
                .with_sigma(0.3)
                .with_plus(plus)
                .with_plus_intended(intended);
            let report = gradient_of(
                |x| cos.try_forward((x, &eps[..]), &y),
                &zt,
                Tolerance::default(),
            );
            assert!(
                report.unwrap().passed(),
                "cos plus={plus} intended={intended}"
            );
        }
        let d = 3;
        let e: Tensor<(usize, usize), f64, Cpu> =
            dev.tensor_from_vec((0..n * d).map(|_| rng.range(-1.0, 1.0)).collect(), (n, d));
        let w: Tensor<(usize, usize), f64, Cpu> =
            dev.tensor_from_vec((0..c * d).map(|_| rng.range(-1.0, 1.0)).collect(), (c, d));
        let loss = ElasticFaceArc::plus_defaults().with_s(4.0);
        let report = gradient_of(
            |x| loss.try_forward((ClassCosines(x, w.clone()), &eps[..]), &y),
            &e,
            Tolerance::default(),
        );
        assert!(report.unwrap().passed(), "embeddings");
        let report = gradient_of(
            |x| loss.try_forward((ClassCosines(e.leaky_trace(), x), &eps[..]), &y),
            &w,
            Tolerance::default(),
        );
        assert!(report.unwrap().passed(), "weights");
    }

    /// The same seed gives the same draws, loss and gradient; another seed another loss.
    #[test]
    fn explicit_draws_are_reproducible() {
        let mut rng = Rng::new(2405);
        let (n, c) = (16, 5);
        let (z, y, _) = case(&mut rng, n, c);
        let dev: Cpu = Default::default();
        let zt: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(z, (n, c));
        let loss = ElasticFaceArc::plus_defaults();
        let step = |seed: u64| {
            let eps: Vec<f64> = standard_normal_draws(&mut StdRng::seed_from_u64(seed), n);
            let out = loss.forward((zt.leaky_trace(), &eps[..]), &y);
            (out.array(), out.backward().get(&zt).as_vec())
        };
        assert_eq!(step(11), step(11));
        assert_ne!(step(11).0, step(12).0);
    }

    #[test]
    fn f32_agrees_with_f64_and_draws_are_checked() {
        let mut rng = Rng::new(2406);
        let (z, y, eps) = case(&mut rng, 10, 6);
        let z32: Vec<f64> = z.iter().map(|&v| v as f32 as f64).collect();
        let eps32: Vec<f64> = eps.iter().map(|&v| v as f32 as f64).collect();
        let dev: Cpu = Default::default();
        let loss = ElasticFaceArc::plus_defaults();
        let t64: Tensor<(usize, usize), f64, Cpu> = dev.tensor_from_vec(z32.clone(), (10, 6));
        let t32: Tensor<(usize, usize), f32, Cpu> =
            dev.tensor_from_vec(z32.iter().map(|&v| v as f32).collect(), (10, 6));
        let e32: Vec<f32> = eps32.iter().map(|&v| v as f32).collect();
        let v64 = loss.forward((t64, &eps32[..]), &y).array();
        let v32 = loss.forward((t32.clone(), &e32[..]), &y).array();
        assert_close(f64::from(v32), v64, 1e-5, 1e-5, "f32");
        let err = loss.try_forward((t32.clone(), &e32[..9]), &y).unwrap_err();
        assert!(
            matches!(
                err,
                LossError::AxisMismatch {
                    found_in: "eps",
                    ..
                }
            ),
            "{err:?}"
        );
        let mut bad = e32.clone();
        bad[2] = f32::NAN;
        let err = loss.try_forward((t32, &bad[..]), &y).unwrap_err();
        assert!(
            matches!(err, LossError::NonFinite { input: "eps", .. }),
            "{err:?}"
        );
    }
}
