//! The hyperspherical (normalised-softmax) classifier of Pereira et al., with its two
//! utilities: the projection of the class weights onto the unit sphere, and the
//! analytic weight of a novel class.

use dfdx::prelude::*;

use crate::core::real::Real;
use crate::loss;

/// Normalised-softmax cross-entropy: a cosine classifier at scale `s`. The embedding is
/// projected onto the sphere of radius `s`, the class weights have unit norm and no bias,
/// so the logits are `s` times the cosines. New classes can then be added without
/// training, by [`novel_class_weight`].
///
/// ```text
/// L = (1/N) Σ_i [ logsumexp_k s·z[i][k] − s·z[i][y_i] ]       z[i][k] = ê_i · ŵ_k
/// ```
///
/// The logits `z` are cosines. The paper keeps the weights on the sphere in one of two
/// ways; pass the input that matches:
///
/// - **Projected** (the official code): [`ProjectedCosines`](crate::ProjectedCosines)
///   `(embeddings, weights)` uses the weight rows as given, and after every optimiser step
///   [`project_unit_rows`] sets `w_c ← w_c / (‖w_c‖ + 1e-7)` (the Keras kernel constraint
///   `min_max_norm(1, 1)`). Call it after each step: the loss does not.
/// - **Reparameterized**: [`ClassCosines`](crate::ClassCosines)`(embeddings, weights)`
///   normalises the weights inside the op. With unit rows the values are the same; the
///   gradient reaching `W` is then projected onto the sphere's tangent.
///
/// **Reference:** Rafael S. Pereira, Alexis Joly, Patrick Valduriez, Fabio Porto.
/// *Hyperspherical embedding for novel class classification.* 2021 (arXiv 2102.03243).
/// **Official code:** `R-S-P-MODELS/pyopenset`, `pyopenset/keras.py`
/// (`ModuleNormalization`, `AddNewClass`) and its tutorial notebook.
///
/// **Defaults:** s = 10 (the layer's default, used in the tutorial's training; another
/// tutorial cell shows 20).
///
/// **Code vs here.** The official normalisation is `z / √max(Σz², 1e-12)`, i.e. a floor
/// of `1e-6` on the norm; the [class-cosine op](crate::core::class_cosines) floors it at
/// `1e-12`: only embeddings of norm below `1e-6` differ. The official weights are
/// `[D, C]` (Keras, one column per class): pass `w.permute()` of such a tensor, and
/// project its columns. The reparameterised normalisation divides by `max(‖w‖, 1e-12)`,
/// not by `‖w‖ + 1e-7` (a relative difference of `1e-7/‖w‖`).
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let e: Tensor<Rank2<3, 2>, f64, _> = dev.tensor([[1.0, 0.1], [0.2, 2.0], [-1.0, 0.0]]);
/// let mut w: Tensor<Rank2<2, 2>, f64, _> = dev.tensor([[2.0, 0.0], [0.0, 0.5]]);
/// project_unit_rows(&mut w); // the official head: unit rows, used as given
/// let loss = NormalizedSoftmaxCe::default();
/// let projected = loss.forward(ProjectedCosines(e.leaky_trace(), w.leaky_trace()), &[0, 1, 0]);
/// let reparameterized = loss.forward(ClassCosines(e.clone(), w.clone()), &[0, 1, 0]);
/// assert!((projected.array() - reparameterized.array()).abs() < 1e-6);
/// let grads = projected.backward(); // then an optimiser step, then project_unit_rows again
/// # let _ = grads;
/// ```
#[loss(
    logits,
    paper = "hyperspherical embedding, normalised-softmax classifier (Pereira et al., 2021); \
             the logits are cosines"
)]
pub fn normalized_softmax_ce(
    z: Logits,
    y: Labels,
    #[hyper(
        default = 10.0,
        positive,
        doc = "s, the radius of the embedding sphere"
    )]
    s: f64,
) -> PerSample {
    logsumexp(classes, |k| s * z[i][k]) - s * z[i][y[i]]
}

/// Projects each row of the class weights `[C, d]` onto the unit sphere in place,
/// `w_c ← w_c / (‖w_c‖ + 1e-7)`, as the official hyperspherical classifier's kernel
/// constraint does after every optimiser step. A zero row stays zero.
///
/// For weights stored `[d, C]` (one column per class), transpose them first.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::project_unit_rows;
/// let dev: Cpu = Default::default();
/// let mut w: Tensor<Rank2<2, 2>, f32, _> = dev.tensor([[3.0, 4.0], [0.0, 0.0]]);
/// project_unit_rows(&mut w);
/// let w = w.array();
/// assert!((w[0][0] - 0.6).abs() < 1e-6 && w[1] == [0.0, 0.0]);
/// ```
pub fn project_unit_rows<C: Dim, D: Dim, E: Dtype + Real>(weights: &mut Tensor<(C, D), E, Cpu>) {
    let d = weights.shape().1.size();
    if weights.shape().num_elements() == 0 {
        return;
    }
    let mut w = weights.as_vec();
    let eps = <E as Real>::from_f64(1e-7);
    for row in w.chunks_mut(d) {
        let norm = row.iter().fold(E::zero(), |s, &x| s + x * x).sqrt();
        for x in row.iter_mut() {
            *x /= norm + eps;
        }
    }
    weights.copy_from(&w);
}

/// The weight of a novel class, built without training from some of its embeddings
/// `[n, d]`: the unit vector along the mean of their unit vectors,
/// `normalize(mean_i ê_i)` (norms floored at `1e-6`, as the official code does).
/// Append it to the class weights as a new row. A single example gives its own direction.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::novel_class_weight;
/// let dev: Cpu = Default::default();
/// let e: Tensor<Rank2<2, 2>, f64, _> = dev.tensor([[2.0, 0.0], [0.0, 5.0]]);
/// let w = novel_class_weight(&e);
/// let h = std::f64::consts::FRAC_1_SQRT_2;
/// assert!((w[0] - h).abs() < 1e-12 && (w[1] - h).abs() < 1e-12);
/// ```
pub fn novel_class_weight<N: Dim, D: Dim, E: Dtype + Real, T>(
    embeddings: &Tensor<(N, D), E, Cpu, T>,
) -> Vec<E> {
    let d = embeddings.shape().1.size();
    let mut mean = vec![E::zero(); d];
    if embeddings.shape().num_elements() == 0 {
        return mean;
    }
    let floor = |x: &[E]| {
        x.iter()
            .fold(E::zero(), |s, &v| s + v * v)
            .max2(<E as Real>::from_f64(1e-12))
            .sqrt()
    };
    for row in embeddings.as_vec().chunks(d) {
        let norm = floor(row);
        for (m, &x) in mean.iter_mut().zip(row) {
            *m += x / norm;
        }
    }
    let norm = floor(&mean);
    mean.iter().map(|&m| m / norm).collect()
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use super::*;
    use crate::testing::*;
    use crate::{ClassCosines, Loss, ProjectedCosines};

    fn dev() -> Cpu {
        Default::default()
    }

    fn mat(v: &[f64], rows: usize, cols: usize) -> Tensor<(usize, usize), f64, Cpu> {
        dev().tensor_from_vec(v.to_vec(), (rows, cols))
    }

    /// The official Keras model, with plain loops: `ẑ = s·z/√max(Σz², 1e-12)`, the dense
    /// layer `ẑ·W` (unit columns, no bias), softmax CE.
    fn naive(e: &[f64], w: &[f64], d: usize, y: &[usize], s: f64) -> f64 {
        let c = w.len() / d;
        let mut total = 0.0;
        for (i, row) in e.chunks(d).enumerate() {
            let norm = row.iter().map(|v| v * v).sum::<f64>().max(1e-12).sqrt();
            let logits: Vec<f64> = (0..c)
                .map(|k| {
                    (0..d)
                        .map(|j| s * row[j] / norm * w[k * d + j])
                        .sum::<f64>()
                })
                .collect();
            let lse = logits.iter().map(|v| v.exp()).sum::<f64>().ln();
            total += lse - logits[y[i]];
        }
        total / y.len() as f64
    }

    fn unit_rows(rng: &mut Rng, c: usize, d: usize) -> Vec<f64> {
        let mut w = mat(
            &(0..c * d).map(|_| rng.range(-1.0, 1.0)).collect::<Vec<_>>(),
            c,
            d,
        );
        project_unit_rows(&mut w);
        w.as_vec()
    }

    #[test]
    fn values_match_the_official_model_in_both_modes() {
        let mut rng = Rng::new(1901);
        let (n, c, d) = (7, 4, 5);
        let e: Vec<f64> = (0..n * d).map(|_| rng.range(-2.0, 2.0)).collect();
        let w = unit_rows(&mut rng, c, d);
        let y: Vec<usize> = (0..n).map(|_| rng.below(c)).collect();
        for s in [10.0, 20.0, 1.0] {
            let loss = NormalizedSoftmaxCe::new().with_s(s);
            let want = naive(&e, &w, d, &y, s);
            let p = loss.forward(ProjectedCosines(mat(&e, n, d), mat(&w, c, d)), &y);
            assert_close(p.array(), want, 1e-12, 1e-12, "projected");
            let r = loss.forward(ClassCosines(mat(&e, n, d), mat(&w, c, d)), &y);
            assert_close(r.array(), want, 1e-6, 1e-6, "reparameterized");
        }
    }

    /// Scaling an embedding changes nothing; every logit lies in [−s, s]; the gradient
    /// with respect to the cosines is `s·(softmax − onehot)/N` (checked numerically).
    #[test]
    fn scale_invariance_bound_and_gradient() {
        let mut rng = Rng::new(1902);
        let (n, c, d) = (5, 3, 4);
        let e: Vec<f64> = (0..n * d).map(|_| rng.range(-2.0, 2.0)).collect();
        let w = unit_rows(&mut rng, c, d);
        let y: Vec<usize> = (0..n).map(|_| rng.below(c)).collect();
        let loss = NormalizedSoftmaxCe::new();
        let base = loss
            .forward(ClassCosines(mat(&e, n, d), mat(&w, c, d)), &y)
            .array();
        let mut scaled = e.clone();
        scaled[..d].iter_mut().for_each(|v| *v *= 37.0);
        let other = loss
            .forward(ClassCosines(mat(&scaled, n, d), mat(&w, c, d)), &y)
            .array();
        assert_close(other, base, 1e-12, 1e-12, "scale invariance");
        let cos = crate::class_cosines(mat(&e, n, d), mat(&w, c, d)).as_vec();
        assert!(cos.iter().all(|v| v.abs() <= 1.0 + 1e-12));
        let (z, y) = random_logits(&mut rng, 6, 4, 1.0);
        check_logits_gradient_fd(&loss, &z, 4, &y, 1e-6);
        check_logits_precisions(&loss, &z, 4, &y, 1e-5);
    }

    /// As s grows the loss tends to 0 when each sample's own class has the largest
    /// cosine, and grows without bound otherwise.
    #[test]
    fn large_scale_limit() {
        let right = [0.9, 0.1, -0.3, 0.2, 0.8, 0.0];
        let wrong = [0.1, 0.9, -0.3, 0.2, 0.8, 0.0];
        let y = [0, 1];
        let at = |z: &[f64], s: f64| {
            logits_value::<f64, _>(&NormalizedSoftmaxCe::new().with_s(s), z, 3, &y).unwrap()
        };
        assert!(at(&right, 200.0) < 1e-30 && at(&right, 200.0) < at(&right, 10.0));
        assert!(at(&wrong, 200.0) > 50.0 && at(&wrong, 200.0) > at(&wrong, 10.0));
    }

    #[test]
    fn projection_and_novel_class() {
        let mut rng = Rng::new(1903);
        let w = unit_rows(&mut rng, 6, 3);
        for row in w.chunks(3) {
            let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!((norm - 1.0).abs() < 1e-6, "{norm}");
        }
        // one example: its own direction, cosine 1 with it
        let x = [0.3, -1.2, 2.0];
        let w = novel_class_weight(&mat(&x, 1, 3));
        let cos = crate::class_cosines(mat(&x, 1, 3), mat(&w, 1, 3)).as_vec();
        assert!((cos[0] - 1.0).abs() < 1e-12);
        // the mean of unit vectors, not of the raw embeddings
        let w = novel_class_weight(&mat(&[10.0, 0.0, 0.0, 1.0], 2, 2));
        assert!((w[0] - w[1]).abs() < 1e-12);
        // f32, and an empty set gives zeros
        let e32: Tensor<Rank2<0, 2>, f32, _> = dev().zeros();
        assert_eq!(novel_class_weight(&e32), vec![0.0; 2]);
    }

    /// Projected mode: the gradient reaching W is `Σ_i g_ic ê_i`, not projected onto
    /// the sphere (checked against finite differences of the projected pipeline).
    #[test]
    fn projected_gradient_reaches_the_weights_unprojected() {
        let mut rng = Rng::new(1904);
        let (n, c, d) = (4, 3, 3);
        let e = mat(
            &(0..n * d).map(|_| rng.range(-1.0, 1.0)).collect::<Vec<_>>(),
            n,
            d,
        );
        let w = mat(&unit_rows(&mut rng, c, d), c, d);
        let y: Vec<usize> = (0..n).map(|_| rng.below(c)).collect();
        let loss = NormalizedSoftmaxCe::new().with_s(3.0);
        let report = crate::check::gradient_of(
            |x| loss.try_forward(ProjectedCosines(e.leaky_trace(), x), &y),
            &w,
            crate::check::Tolerance::default(),
        )
        .unwrap();
        assert!(report.passed(), "{report}");
        // a radial change of w changes the projected loss (it would not the cosine one)
        let grads = loss
            .forward(ProjectedCosines(e.leaky_trace(), w.leaky_trace()), &y)
            .backward();
        let g = grads.get(&w).as_vec();
        let radial: f64 = g.iter().zip(w.as_vec()).map(|(g, w)| g * w).sum();
        assert!(radial.abs() > 1e-6, "{radial}");
    }
}
