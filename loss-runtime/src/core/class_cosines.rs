//! Cosine logits against class weights: the matrix the margin heads of face recognition
//! (ArcFace, CosFace, ElasticFace, SFace, …) are written over.
//!
//! ```text
//! class_cosines(E, W)      C[i][c] = ê_i · ŵ_c      E: N × d,  W: C × d  →  N × C
//! projected_cosines(E, W)  C[i][c] = ê_i · w_c      (W's rows used as given)
//! ê = e / max(‖e‖, 1e-12)
//! ```
//!
//! `W` is a trainable tensor the caller owns (one row per class, as
//! pytorch-metric-learning's `ArcFaceLoss` keeps its `W` — there transposed); pass it
//! traced and its gradient comes back with the embeddings'. A tape-free `W` is a constant.
//! A `W` stored `[d, C]` (the Keras and official ElasticFace layout, one *column* per
//! class) is passed as `w.permute()`: any strides are accepted, and the gradient lands in
//! the tensor's own layout.
//!
//! # How it is computed
//!
//! This is the [similarity op](crate::core::similarity) of the embeddings against the
//! class weights with the cosine metric, the same code: each side normalised once,
//! `Ê·Ŵᵀ` by one GEMM, and a backward of two more GEMMs (`G·Ŵ` and `Gᵀ·Ê`, `G = ∂L/∂C`,
//! over blocks of rows) followed by the chain rule through each normalisation, row by
//! row. No `N × C × d` intermediate exists; the op keeps `O((N + C)·d)` numbers for its
//! backward. Norms are computed overflow-free (a row of `f32` norm above `1.8e19` is
//! fine).
//!
//! # Zero and tiny rows
//!
//! As in the similarity op, a row is divided by `max(‖x‖, 1e-12)`: a zero embedding (or a
//! zero class weight) gives a row (column) of zero cosines, never NaN. Its gradient is the
//! gradient of that map, `(g − x̂(x̂·g)) / ‖x‖` above the threshold and `g / 1e-12` below
//! it: large but finite. A zero row is a degenerate input; the losses built on these
//! cosines still return finite values and gradients.
//!
//! ```
//! use dfdx::prelude::*;
//! use loss_runtime::class_cosines;
//!
//! let dev: Cpu = Default::default();
//! let e: Tensor<Rank2<4, 3>, f64, _> = dev.sample_normal();
//! let w: Tensor<Rank2<10, 3>, f64, _> = dev.sample_normal(); // 10 classes
//! let c = class_cosines(e.leaky_trace(), w.leaky_trace());
//! assert!(c.array().iter().flatten().all(|c| c.abs() <= 1.0 + 1e-12));
//! let grads = c.square().sum().backward();
//! assert_eq!(grads.get(&w).shape(), &(Const::<10>, Const::<3>));
//! ```

use dfdx::shapes::Dim;
use dfdx::tensor::{Cpu, Merge, Tape, Tensor};

use crate::core::real::Real;
use crate::core::similarity::{compare_with, Metric};
use dfdx::shapes::Dtype;

/// `C[i][c] = cos(e_i, w_c)`: embeddings `[N, d]` against class weights `[C, d]`, the
/// cosine logits `[N, C]`. One op on the tape, with its backward written by hand; the
/// gradient reaches both inputs (a tape-free `weights` is a constant). See the
/// [module docs](crate::core::class_cosines).
///
/// # Panics
/// If the row lengths differ (only possible with dynamic dims); the margin losses'
/// [`ClassCosines`](crate::ClassCosines) input returns a [`LossError`](crate::LossError)
/// instead.
pub fn class_cosines<N, C, D, E, T1, T2>(
    embeddings: Tensor<(N, D), E, Cpu, T1>,
    weights: Tensor<(C, D), E, Cpu, T2>,
) -> Tensor<(N, C), E, Cpu, T1>
where
    N: Dim,
    C: Dim,
    D: Dim,
    E: Dtype + Real,
    T1: Tape<E, Cpu> + Merge<T2>,
    T2: Tape<E, Cpu>,
{
    compare_with(embeddings, weights, Metric::Cosine, Metric::Cosine)
}

/// `C[i][c] = ê_i · w_c`: unit embeddings against class weights used as given.
///
/// This is the official hyperspherical classifier's head (`Projected` in its spec): the
/// weights are kept unit-norm by projecting them after each optimiser step
/// ([`project_unit_rows`](crate::project_unit_rows)), not by the loss, so the gradient
/// reaching `W` is `Σ_i g_ic ê_i`, not projected onto the sphere. With unit rows the
/// values equal [`class_cosines`]'.
///
/// # Panics
/// If the row lengths differ (only possible with dynamic dims).
pub fn projected_cosines<N, C, D, E, T1, T2>(
    embeddings: Tensor<(N, D), E, Cpu, T1>,
    weights: Tensor<(C, D), E, Cpu, T2>,
) -> Tensor<(N, C), E, Cpu, T1>
where
    N: Dim,
    C: Dim,
    D: Dim,
    E: Dtype + Real,
    T1: Tape<E, Cpu> + Merge<T2>,
    T2: Tape<E, Cpu>,
{
    compare_with(embeddings, weights, Metric::Cosine, Metric::Dot)
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use super::*;
    use crate::testing::{finite_differences, Rng};
    use crate::testing_pairs::assert_all_close;

    fn dev() -> Cpu {
        Default::default()
    }

    fn mat(v: &[f64], rows: usize, cols: usize) -> Tensor<(usize, usize), f64, Cpu> {
        dev().tensor_from_vec(v.to_vec(), (rows, cols))
    }

    fn random(rng: &mut Rng, len: usize) -> Vec<f64> {
        (0..len).map(|_| rng.range(-1.0, 1.0)).collect()
    }

    /// `ê_i · ŵ_c` (or `ê_i · w_c`) with plain f64 loops.
    fn naive(e: &[f64], w: &[f64], d: usize, normalise_w: bool) -> Vec<f64> {
        let norm = |x: &[f64]| x.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
        let mut out = Vec::new();
        for a in e.chunks(d) {
            for b in w.chunks(d) {
                let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
                let wn = if normalise_w { norm(b) } else { 1.0 };
                out.push(dot / (norm(a) * wn));
            }
        }
        out
    }

    /// `L = Σ_ic g_ic C_ic` from plain loops.
    fn weighted(e: &[f64], w: &[f64], g: &[f64], d: usize, normalise_w: bool) -> f64 {
        naive(e, w, d, normalise_w)
            .iter()
            .zip(g)
            .map(|(c, g)| c * g)
            .sum()
    }

    type Op = fn(
        Tensor<(usize, usize), f64, Cpu, OwnedTape<f64, Cpu>>,
        Tensor<(usize, usize), f64, Cpu, OwnedTape<f64, Cpu>>,
    ) -> Tensor<(usize, usize), f64, Cpu, OwnedTape<f64, Cpu>>;

    const OPS: [(Op, bool, &str); 2] = [
        (class_cosines, true, "class_cosines"),
        (projected_cosines, false, "projected_cosines"),
    ];

    #[test]
    fn values_and_gradients_to_both_inputs() {
        let mut rng = Rng::new(901);
        let (n, c, d) = (5, 7, 4);
        let (e, w, g) = (
            random(&mut rng, n * d),
            random(&mut rng, c * d),
            random(&mut rng, n * c),
        );
        for (op, normalise_w, name) in OPS {
            let (x, y) = (mat(&e, n, d), mat(&w, c, d));
            let out = op(x.leaky_trace(), y.leaky_trace());
            assert_eq!(out.shape(), &(n, c));
            assert_all_close(&out.as_vec(), &naive(&e, &w, d, normalise_w), 1e-12, name);
            let grads = (out * mat(&g, n, c)).sum().backward();
            let fd_e = finite_differences(&e, |e| weighted(e, &w, &g, d, normalise_w));
            let fd_w = finite_differences(&w, |w| weighted(&e, w, &g, d, normalise_w));
            assert_all_close(&grads.get(&x).as_vec(), &fd_e, 1e-6, name);
            assert_all_close(&grads.get(&y).as_vec(), &fd_w, 1e-6, name);
        }
    }

    #[test]
    fn tape_free_weights_are_constants_and_static_shapes_work() {
        let dev = dev();
        let e: Tensor<Rank2<3, 2>, f64, _> = dev.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, -2.0]]);
        let w: Tensor<Rank2<2, 2>, f64, _> = dev.tensor([[1.0, 0.0], [0.0, 5.0]]);
        let out = class_cosines(e.leaky_trace(), w.clone());
        assert_eq!(
            out.array(),
            [[0.6, 0.8], [1.0, 0.0], [0.0, -1.0]].map(|r| r.map(|v: f64| v))
        );
        let grads = out.sum().backward();
        assert_eq!(grads.get(&e).shape(), &(Const::<3>, Const::<2>));
        // ê·w with w as given: the second class's weight has norm 5
        let p = projected_cosines(e.clone(), w).array();
        assert!((p[0][1] - 4.0).abs() < 1e-12 && (p[2][1] + 5.0).abs() < 1e-12);
    }

    /// Zero rows, on either side, give zero cosines and a finite gradient: the map
    /// `x ↦ x / 1e-12` below the threshold, as in the similarity op.
    #[test]
    fn zero_rows_give_zero_cosines_and_finite_gradients() {
        let mut rng = Rng::new(902);
        let (n, c, d) = (4, 3, 3);
        let mut e = random(&mut rng, n * d);
        let mut w = random(&mut rng, c * d);
        e[3..6].fill(0.0);
        w[6..9].fill(0.0);
        let g = random(&mut rng, n * c);
        let (x, y) = (mat(&e, n, d), mat(&w, c, d));
        let out = class_cosines(x.leaky_trace(), y.leaky_trace());
        let v = out.as_vec();
        assert!(v[3..6].iter().all(|&v| v == 0.0), "zero embedding: {v:?}");
        assert!((0..n).all(|i| v[i * c + 2] == 0.0), "zero class: {v:?}");
        let grads = (out * mat(&g, n, c)).sum().backward();
        let (ge, gw) = (grads.get(&x).as_vec(), grads.get(&y).as_vec());
        assert!(ge.iter().chain(&gw).all(|v| v.is_finite()));
        // row 1 of E: ∂/∂e = Σ_c g_1c ŵ_c / 1e-12
        let unit = |r: &[f64]| {
            let nr = r.iter().map(|v| v * v).sum::<f64>().sqrt();
            r.iter().map(|v| v / nr).collect::<Vec<_>>()
        };
        for k in 0..d {
            let want: f64 = (0..2)
                .map(|cc| g[c + cc] * unit(&w[cc * d..][..d])[k])
                .sum();
            assert!((ge[d + k] * 1e-12 - want).abs() < 1e-9, "{k}");
        }
        // elsewhere the gradient is the finite-difference one
        let fd_e = finite_differences(&e, |e| weighted(e, &w, &g, d, true));
        assert_all_close(&ge[..3], &fd_e[..3], 1e-6, "row 0");
        assert_all_close(&ge[6..], &fd_e[6..], 1e-6, "rows 2, 3");
    }

    /// Permuted inputs (`W` stored `[d, C]`, embeddings transposed) and permuted rows:
    /// the same values, permuted, and each gradient in its tensor's own layout.
    #[test]
    fn permuted_inputs() {
        let mut rng = Rng::new(903);
        let (n, c, d) = (4, 5, 3);
        let (e, w, g) = (
            random(&mut rng, n * d),
            random(&mut rng, c * d),
            random(&mut rng, n * c),
        );
        let (x, y) = (mat(&e, n, d), mat(&w, c, d));
        let out = class_cosines(x.leaky_trace(), y.leaky_trace());
        let want = out.as_vec();
        let grads = (out * mat(&g, n, c)).sum().backward();
        let (ge, gw) = (grads.get(&x).as_vec(), grads.get(&y).as_vec());
        // the transposes, stored [d, N] and [d, C], passed through `permute`
        let transpose = |v: &[f64], rows: usize, cols: usize| -> Vec<f64> {
            (0..rows * cols)
                .map(|k| v[(k % rows) * cols + k / rows])
                .collect()
        };
        let (xt, yt) = (
            mat(&transpose(&e, n, d), d, n),
            mat(&transpose(&w, c, d), d, c),
        );
        let out = class_cosines(
            xt.leaky_trace().permute::<_, Axes2<1, 0>>(),
            yt.leaky_trace().permute::<_, Axes2<1, 0>>(),
        );
        assert_all_close(&out.as_vec(), &want, 1e-14, "permuted values");
        let grads = (out * mat(&g, n, c)).sum().backward();
        assert_all_close(
            &grads.get(&xt).as_vec(),
            &transpose(&ge, n, d),
            1e-12,
            "embeddings' gradient, transposed",
        );
        assert_all_close(
            &grads.get(&yt).as_vec(),
            &transpose(&gw, c, d),
            1e-12,
            "weights' gradient, transposed",
        );
        // shuffling the classes shuffles the columns and the weights' gradient rows
        let order = Rng::new(904).permutation(c);
        let wp: Vec<f64> = order
            .iter()
            .flat_map(|&k| w[k * d..(k + 1) * d].to_vec())
            .collect();
        let gp: Vec<f64> = (0..n)
            .flat_map(|i| order.iter().map(move |&k| (i, k)))
            .map(|(i, k)| g[i * c + k])
            .collect();
        let (x, yp) = (mat(&e, n, d), mat(&wp, c, d));
        let out = class_cosines(x.leaky_trace(), yp.leaky_trace());
        let v = out.as_vec();
        for i in 0..n {
            for (col, &k) in order.iter().enumerate() {
                assert!((v[i * c + col] - want[i * c + k]).abs() < 1e-14);
            }
        }
        let grads = (out * mat(&gp, n, c)).sum().backward();
        assert_all_close(
            &grads.get(&x).as_vec(),
            &ge,
            1e-12,
            "embeddings, classes shuffled",
        );
        let gwp = grads.get(&yp).as_vec();
        for (row, &k) in order.iter().enumerate() {
            assert_all_close(&gwp[row * d..][..d], &gw[k * d..][..d], 1e-12, "weights");
        }
    }

    #[test]
    fn f32_agrees_with_f64() {
        let mut rng = Rng::new(905);
        let (n, c, d) = (6, 9, 5);
        let (e, w, g) = (
            random(&mut rng, n * d),
            random(&mut rng, c * d),
            random(&mut rng, n * c),
        );
        let single = |v: &[f64], r, k| -> Tensor<(usize, usize), f32, Cpu> {
            dev().tensor_from_vec(v.iter().map(|&x| x as f32).collect(), (r, k))
        };
        let (x, y) = (single(&e, n, d), single(&w, c, d));
        let out = class_cosines(x.leaky_trace(), y.leaky_trace());
        let v: Vec<f64> = out.as_vec().into_iter().map(f64::from).collect();
        assert_all_close(&v, &naive(&e, &w, d, true), 1e-5, "f32 values");
        let grads = (out * single(&g, n, c)).sum().backward();
        let fd = finite_differences(&w, |w| weighted(&e, w, &g, d, true));
        let gw: Vec<f64> = grads.get(&y).as_vec().into_iter().map(f64::from).collect();
        assert_all_close(&gw, &fd, 1e-4, "f32 weights' gradient");
    }
}
