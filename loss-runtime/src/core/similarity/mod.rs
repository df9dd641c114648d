//! Pairwise similarity of a batch of embeddings: the matrix `S` the pairs family of losses
//! is written over, with its forward and backward written once, by hand.
//!
//! ```text
//! similarity(E, m)         S[i][j] = m(e_i, e_j)      E: N × D  →  S: N × N
//! similarity_with(E, R, m) S[i][j] = m(e_i, r_j)      R: M × D  →  S: N × M
//! ```
//!
//! | [`Metric`] | `m(a, b)` | meaning |
//! |---|---|---|
//! | [`Cosine`](Metric::Cosine) (default) | `â·b̂`, `â = a / max(‖a‖, 1e-12)` | similarity in `[−1, 1]` |
//! | [`Dot`](Metric::Dot) | `a·b` | similarity |
//! | [`Euclidean`](Metric::Euclidean) | `‖a − b‖` | distance: larger = farther |
//! | [`SquaredEuclidean`](Metric::SquaredEuclidean) | `‖a − b‖²` | distance: larger = farther |
//!
//! # Why not `e.matmul(e.permute())`
//!
//! dfdx 0.13 panics when one tensor is both operands of a binary op: its backward pass
//! borrows the two operands' gradients mutably at once and asserts that their ids differ.
//! A tensor keeps its id through `with_empty_tape`, `retaped` and `permute` (`clone` does
//! not compile on a traced tensor), so the obvious way to write `E·Eᵀ` runs forward and
//! then fails in `backward()`; so does `e * e` written the same way:
//!
//! ```should_panic
//! use dfdx::prelude::*;
//! let dev: Cpu = Default::default();
//! let e: Tensor<Rank2<4, 3>, f64, _> = dev.sample_normal();
//! let e = e.leaky_trace();
//! let s = e.with_empty_tape().matmul(e.permute()); // the same tensor on both sides
//! let _ = s.sum().backward(); // panics: `assertion `left != right` failed`
//! ```
//!
//! [`similarity`] takes the batch once and is a single op on the tape, so the batch against
//! itself is fine; its gradient gets the contributions of both roles (row and column):
//!
//! ```
//! use dfdx::prelude::*;
//! use loss_runtime::{similarity, similarity_with, Metric};
//!
//! let dev: Cpu = Default::default();
//! let e: Tensor<Rank2<4, 3>, f64, _> = dev.sample_normal();
//! let s = similarity(e.leaky_trace(), Metric::Cosine); // 4 × 4, ones on the diagonal
//! assert!((s.array()[2][2] - 1.0).abs() < 1e-12);
//! let grads = s.square().sum().backward();
//! assert_eq!(grads.get(&e).shape(), &(Const::<4>, Const::<3>));
//!
//! // against a second set (a memory bank, class proxies): 4 × 6 distances
//! let proxies: Tensor<(usize, Const<3>), f64, _> = dev.sample_normal_like(&(6, Const));
//! let d = similarity_with(e.leaky_trace(), proxies.leaky_trace(), Metric::Euclidean);
//! assert_eq!(d.shape(), &(Const::<4>, 6));
//! let grads = d.sum().backward();
//! assert_eq!(grads.get(&proxies).shape(), &(6, Const::<3>));
//! ```
//!
//! # How it is computed
//!
//! Each call is one op on the tape. The forward pass prepares each operand once (the unit
//! rows for cosine, the squared norms for the distances) and forms `S` with one matrix
//! product through dfdx's `Cpu` matmul, which calls the `gemm` crate. The distances come
//! out of the same single product by augmenting the rows: `[a, ‖a‖², 1]·[−2b, 1, ‖b‖²]
//! = ‖a‖² + ‖b‖² − 2a·b`, clamped at zero, then square-rooted for [`Euclidean`](Metric::Euclidean).
//! Against itself, a distance matrix has an exact zero diagonal.
//!
//! The op keeps only what its backward pass needs, `O((N + M)·D)` numbers (the prepared
//! rows and their norms), plus a handle on `S` itself for Euclidean; it never holds a second
//! `N × M` matrix. With `G = ∂L/∂S` (dfdx's gradient buffer, read in place), the backward
//! pass is two more products, `G·R` and `Gᵀ·E` (one, `(G + Gᵀ)·E`, against itself), taken
//! over blocks of rows of `G` (about a million entries, at least 64 rows, copied one block at
//! a time), then the chain rule through the normalisation or the norms, row by row. The sums
//! the distances need ride along in the same products, as a column of ones. A tape-free
//! input does no backward work at all.
//!
//! # Conventions
//!
//! - **Cosine, short rows.** A row is divided by `max(‖a‖, 1e-12)`, so a zero row gives a zero
//!   row of `S`, never NaN. Its gradient is that map's own: `(g − â(â·g)) / ‖a‖` above the
//!   threshold, `g / 1e-12` below it (large, finite).
//! - **Distances.** The clamp at zero only absorbs rounding, so the gradient goes through it
//!   as if absent. Euclidean's gradient `∂L/∂S_ij / (2 S_ij)` is taken as `0` where
//!   `S_ij = 0` (the diagonal against itself, duplicate rows). The expansion
//!   `‖a‖² + ‖b‖² − 2a·b` loses relative precision for nearly equal rows: two rows closer
//!   than about `√ε·‖a‖` read as noise, and Euclidean's gradient there is large.
//! - **Tapes.** `similarity_with` merges the two inputs' tapes. A tape-free `refs` is a
//!   constant: its gradient is not computed.
//! - **Layouts.** Inputs of any strides (permuted, broadcast) are accepted; they are made
//!   contiguous first, through dfdx, so their gradients land where they belong.
//! - **Other dtypes.** The fast path covers `f32` and `f64` (the dtypes [`Real`] is
//!   implemented for); any other `Dtype + Real` falls back to plain loops.

pub mod blocks;

use std::any::Any;

use dfdx::shapes::{Axes2, Dim, Dtype, HasShape, Shape, Unit};
use dfdx::tensor::{Cpu, Merge, PutTape, SplitTape, Tape, Tensor, TensorFromVec};
use dfdx::tensor_ops::{PermuteTo, ReshapeTo, TryMatMul};

use crate::core::real::Real;

/// How a pair of rows is compared. Larger means more similar for [`Cosine`](Metric::Cosine)
/// and [`Dot`](Metric::Dot), farther apart for the two distances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Metric {
    /// `â·b̂` with `â = a / max(‖a‖, 1e-12)`: a similarity in `[−1, 1]` (a zero row gives 0).
    #[default]
    Cosine,
    /// `a·b`: a similarity.
    Dot,
    /// `‖a − b‖`: a distance (larger = farther). Gradient `0` where the distance is `0`.
    Euclidean,
    /// `‖a − b‖²`: a distance (larger = farther).
    SquaredEuclidean,
}

impl Metric {
    /// Whether larger values mean more similar (`Cosine`, `Dot`) rather than farther apart.
    pub fn is_similarity(self) -> bool {
        matches!(self, Metric::Cosine | Metric::Dot)
    }

    fn is_distance(self) -> bool {
        !self.is_similarity()
    }
}

/// `S[i][j] = metric(e_i, e_j)`: the batch against itself (the same tensor on both sides).
///
/// One op on the tape; the gradient of `embeddings` gets the contributions of both roles.
/// Use it rather than `e.with_empty_tape().matmul(e.permute())`, which dfdx 0.13 runs
/// forward and then panics on in `backward()` (one tensor as both operands). See the
/// [module docs](crate::core::similarity) for the formulas and the conventions.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::{similarity, Metric};
/// let dev: Cpu = Default::default();
/// let e: Tensor<Rank2<3, 2>, f32, _> = dev.tensor([[3.0, 4.0], [0.0, 1.0], [3.0, 4.0]]);
/// let d = similarity(e, Metric::Euclidean).array();
/// assert_eq!(d[0][2], 0.0);
/// assert!((d[0][1] - 18f32.sqrt()).abs() < 1e-5);
/// ```
pub fn similarity<N, D, E, T>(
    embeddings: Tensor<(N, D), E, Cpu, T>,
    metric: Metric,
) -> Tensor<(N, N), E, Cpu, T>
where
    N: Dim,
    D: Dim,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    let (e, mut tape) = embeddings.contiguous().split_tape();
    let (n, d) = *e.shape();
    let dev = e.device().clone();
    let side = Side::new(metric, values(&e), n.size(), d.size());
    let dense = Dense::get();
    let s = product(
        metric,
        side.operand(metric, true, &dev),
        side.operand(metric, false, &dev),
        true,
        dense,
    );
    let out = s.clone().reshape_like(&(n, n));
    if T::OWNS_TAPE {
        let (e_ghost, out_ghost) = (e.ghost(), out.ghost());
        let backward = BackwardPass::new(metric, side, None, s, dense, dev);
        tape.add_backward_op(move |grads| {
            let (ge, _) = backward.run(grads.get_or_alloc_mut(&out_ghost)?);
            add_into(grads.get_or_alloc_mut(&e_ghost)?, &ge);
            Ok(())
        });
    }
    out.put_tape(tape)
}

/// `S[i][j] = metric(e_i, r_j)`: the batch against a second set of rows (a memory bank,
/// class proxies, the other view).
///
/// One op on the tape, which carries both inputs' tapes. A tape-free `refs` is treated as
/// a constant (no gradient is computed for it). Passing the same tensor twice works too
/// (both roles' gradients add up), though [`similarity`] does that with one product less.
///
/// Both inputs name their row length with the same type `D`: a static and a dynamic row
/// length do not mix (`reshape_like` one of them first).
///
/// # Panics
/// If the two inputs' row lengths differ (only possible with dynamic dims).
pub fn similarity_with<N, M, D, E, T1, T2>(
    embeddings: Tensor<(N, D), E, Cpu, T1>,
    refs: Tensor<(M, D), E, Cpu, T2>,
    metric: Metric,
) -> Tensor<(N, M), E, Cpu, T1>
where
    N: Dim,
    M: Dim,
    D: Dim,
    E: Dtype + Real,
    T1: Tape<E, Cpu> + Merge<T2>,
    T2: Tape<E, Cpu>,
{
    compare_with(embeddings, refs, metric, metric)
}

/// [`similarity_with`] with each side prepared by its own metric: `refs_metric` is
/// `metric` itself, or [`Metric::Dot`] against [`Metric::Cosine`] embeddings (unit rows
/// against rows used as given, `ê·r`). The two must agree on [`Metric::is_similarity`].
///
/// # Panics
/// If the two inputs' row lengths differ (only possible with dynamic dims).
pub(crate) fn compare_with<N, M, D, E, T1, T2>(
    embeddings: Tensor<(N, D), E, Cpu, T1>,
    refs: Tensor<(M, D), E, Cpu, T2>,
    metric: Metric,
    refs_metric: Metric,
) -> Tensor<(N, M), E, Cpu, T1>
where
    N: Dim,
    M: Dim,
    D: Dim,
    E: Dtype + Real,
    T1: Tape<E, Cpu> + Merge<T2>,
    T2: Tape<E, Cpu>,
{
    debug_assert_eq!(metric.is_similarity(), refs_metric.is_similarity());
    let (e, t1) = embeddings.contiguous().split_tape();
    let (r, t2) = refs.contiguous().split_tape();
    let mut tape = t1.merge(t2);
    let ((n, d), (m, d_r)) = (*e.shape(), *r.shape());
    assert_eq!(
        d.size(),
        d_r.size(),
        "similarity_with: embeddings have rows of {} but refs rows of {}",
        d.size(),
        d_r.size()
    );
    let dev = e.device().clone();
    let a = Side::new(metric, values(&e), n.size(), d.size());
    let b = Side::new(refs_metric, values(&r), m.size(), d.size());
    let dense = Dense::get();
    let s = product(
        metric,
        a.operand(metric, true, &dev),
        b.operand(metric, false, &dev),
        false,
        dense,
    );
    let out = s.clone().reshape_like(&(n, m));
    if T1::OWNS_TAPE {
        let (e_ghost, r_ghost, out_ghost) = (e.ghost(), r.ghost(), out.ghost());
        let b = Some((b, T2::OWNS_TAPE));
        let backward = BackwardPass::new(metric, a, b, s, dense, dev);
        tape.add_backward_op(move |grads| {
            let (ge, gr) = backward.run(grads.get_or_alloc_mut(&out_ghost)?);
            add_into(grads.get_or_alloc_mut(&e_ghost)?, &ge);
            if let Some(gr) = gr {
                add_into(grads.get_or_alloc_mut(&r_ghost)?, &gr);
            }
            Ok(())
        });
    }
    out.put_tape(tape)
}

/// A matrix with runtime dims: what the products are computed on.
type Mat<E> = Tensor<(usize, usize), E, Cpu>;

/// Below this norm a row is divided by it instead of by its norm (cosine).
const MIN_NORM: f64 = 1e-12;
/// Entries of `∂L/∂S` copied per block in the backward pass.
const BLOCK: usize = 1 << 20;
/// Fewest rows per block, so that each product stays large enough for the GEMM.
const MIN_BLOCK_ROWS: usize = 64;

fn constant<E: Real>(x: f64) -> E {
    E::from_f64(x)
}

fn dot<E: Real>(a: &[E], b: &[E]) -> E {
    a.iter().zip(b).fold(E::zero(), |s, (&x, &y)| s + x * y)
}

/// The tensor's values, row-major (`as_vec` indexes out of bounds on an empty tensor).
fn values<S: Shape, E: Unit>(t: &Tensor<S, E, Cpu>) -> Vec<E> {
    if t.shape().num_elements() == 0 {
        Vec::new()
    } else {
        t.as_vec()
    }
}

/// Divides the row `x` by `max(‖x‖, MIN_NORM)` in place and returns `‖x‖`.
///
/// The norm is taken as `m·√Σ(xₖ/m)²` with `m = max |xₖ|` (as `hypot` does), so the
/// squares neither overflow (an `f32` row of norm above `1.8e19`) nor underflow; the
/// unit row is `(x/m) / √Σ(xₖ/m)²`, finite even where the norm itself exceeds the
/// dtype's range (the norm is then `+∞`, and the row's gradient `0`).
fn normalise<E: Real>(x: &mut [E]) -> E {
    let m = x.iter().fold(E::zero(), |m, &v| m.max2(v.abs()));
    if m == E::zero() {
        return E::zero();
    }
    let scaled = x.iter().fold(E::zero(), |s, &v| {
        let r = v / m;
        s + r * r
    });
    let root = scaled.sqrt();
    let norm = m * root;
    let min_norm = constant::<E>(MIN_NORM);
    if norm > min_norm {
        for v in x.iter_mut() {
            *v = *v / m / root;
        }
    } else {
        for v in x.iter_mut() {
            *v = *v / min_norm;
        }
    }
    norm
}

/// Euclidean's weight of a pair in the products, `∂L/∂(squared distance) = ∂L/∂S / (2 S)`,
/// from `w = ∂L/∂S` and the distance `s`: `0` where `s = 0` (a row against itself,
/// duplicate rows).
fn squared_distance_weight<E: Real>(w: E, s: E) -> E {
    if s > E::zero() {
        w / (s + s)
    } else {
        E::zero()
    }
}

fn add_into<E: Real>(grad: &mut [E], delta: &[E]) {
    for (g, &x) in grad.iter_mut().zip(delta) {
        *g += x;
    }
}

/// The dense kernels: dfdx's own for `f32` and `f64` (its `Cpu` matmul calls the `gemm`
/// crate; the element-wise ops work in place on an unshared buffer), plain loops for any
/// other dtype.
///
/// dfdx's matmul is implemented per dtype, with a bound generic code cannot name, so the
/// two fast tables are picked by type at run time.
#[derive(Clone, Copy)]
struct Dense<E: Dtype> {
    /// `a · b`.
    matmul: fn(Mat<E>, Mat<E>) -> Mat<E>,
    /// `max(x, 0)` element-wise.
    relu: fn(Mat<E>) -> Mat<E>,
    /// `√x` element-wise.
    sqrt: fn(Mat<E>) -> Mat<E>,
}

const DENSE_F32: Dense<f32> = Dense {
    matmul: |a, b| a.matmul(b),
    relu: |x| x.relu(),
    sqrt: |x| x.sqrt(),
};

const DENSE_F64: Dense<f64> = Dense {
    matmul: |a, b| a.matmul(b),
    relu: |x| x.relu(),
    sqrt: |x| x.sqrt(),
};

impl<E: Dtype + Real> Dense<E> {
    fn get() -> Self {
        let fast: [&dyn Any; 2] = [&DENSE_F32, &DENSE_F64];
        fast.iter()
            .find_map(|k| k.downcast_ref::<Self>().copied())
            .unwrap_or_else(Self::loops)
    }

    fn loops() -> Self {
        Dense {
            matmul: matmul_loops,
            relu: |x| map_loops(x, <E as Real>::relu),
            sqrt: |x| map_loops(x, <E as Real>::sqrt),
        }
    }
}

fn matmul_loops<E: Dtype + Real>(a: Mat<E>, b: Mat<E>) -> Mat<E> {
    let ((m, k), (_, n)) = (*a.shape(), *b.shape());
    let (av, bv) = (values(&a), values(&b));
    let mut c = vec![E::zero(); m * n];
    for i in 0..m {
        for p in 0..k {
            let x = av[i * k + p];
            for (c, &y) in c[i * n..(i + 1) * n]
                .iter_mut()
                .zip(&bv[p * n..(p + 1) * n])
            {
                *c += x * y;
            }
        }
    }
    a.device().tensor_from_vec(c, (m, n))
}

fn map_loops<E: Dtype + Real>(x: Mat<E>, f: fn(E) -> E) -> Mat<E> {
    let v = values(&x).into_iter().map(f).collect();
    x.device().tensor_from_vec(v, *x.shape())
}

/// One operand, prepared by the forward pass and kept for the backward pass: `O(len · d)`.
struct Side<E> {
    /// How the rows were prepared: [`Metric::Cosine`] divided them by their norms.
    metric: Metric,
    /// `len × d`, row-major: the unit rows for cosine, the rows themselves otherwise.
    rows: Vec<E>,
    /// Cosine: `‖x_i‖`; distances: `‖x_i‖²`; dot: empty.
    norms: Vec<E>,
    len: usize,
    d: usize,
}

impl<E: Dtype + Real> Side<E> {
    fn new(metric: Metric, mut rows: Vec<E>, len: usize, d: usize) -> Self {
        let norms = match metric {
            Metric::Dot => Vec::new(),
            Metric::Cosine => (0..len)
                .map(|i| normalise(&mut rows[i * d..(i + 1) * d]))
                .collect(),
            Metric::Euclidean | Metric::SquaredEuclidean => (0..len)
                .map(|i| {
                    let x = &rows[i * d..(i + 1) * d];
                    dot(x, x)
                })
                .collect(),
        };
        Side {
            metric,
            rows,
            norms,
            len,
            d,
        }
    }

    fn row(&self, i: usize) -> &[E] {
        &self.rows[i * self.d..(i + 1) * self.d]
    }

    /// This side's operand of the forward product `left · rightᵀ`: the rows, or for the
    /// distances the rows augmented so that the product is `‖a‖² + ‖b‖² − 2a·b`:
    /// `[a, ‖a‖², 1]` on the left, `[−2b, 1, ‖b‖²]` on the right.
    fn operand(&self, metric: Metric, left: bool, dev: &Cpu) -> Mat<E> {
        if metric.is_similarity() {
            return dev.tensor_from_vec(self.rows.clone(), (self.len, self.d));
        }
        let mut aug = Vec::with_capacity(self.len * (self.d + 2));
        for i in 0..self.len {
            if left {
                aug.extend_from_slice(self.row(i));
                aug.extend([self.norms[i], E::one()]);
            } else {
                aug.extend(self.row(i).iter().map(|&x| constant::<E>(-2.0) * x));
                aug.extend([E::one(), self.norms[i]]);
            }
        }
        dev.tensor_from_vec(aug, (self.len, self.d + 2))
    }

    /// Rows `i0..i1` of this side's operand in the backward products: the rows, with a
    /// trailing 1 for the distances so that the same product also sums the weights.
    fn backward_operand(&self, metric: Metric, i0: usize, i1: usize) -> Vec<E> {
        if metric.is_similarity() {
            return self.rows[i0 * self.d..i1 * self.d].to_vec();
        }
        let mut op = Vec::with_capacity((i1 - i0) * (self.d + 1));
        for i in i0..i1 {
            op.extend_from_slice(self.row(i));
            op.push(E::one());
        }
        op
    }

    /// `∂L/∂x` from `p = W·(the other side's backward operand)`: `∂L/∂(the rows the
    /// forward product used)`, followed for the distances by the row sums of the weights
    /// `W = ∂L/∂(squared distance)`.
    fn grad(&self, mut p: Vec<E>) -> Vec<E> {
        let d = self.d;
        match self.metric {
            Metric::Dot => p,
            Metric::Cosine => {
                let min_norm = constant::<E>(MIN_NORM);
                for (i, &norm) in self.norms.iter().enumerate() {
                    let (u, g) = (self.row(i), &mut p[i * d..(i + 1) * d]);
                    if norm > min_norm {
                        // x ↦ x / ‖x‖: (g − u (u·g)) / ‖x‖
                        let ug = dot(u, g);
                        for (g, &u) in g.iter_mut().zip(u) {
                            *g = (*g - u * ug) / norm;
                        }
                    } else {
                        // x ↦ x / MIN_NORM, linear
                        for g in g.iter_mut() {
                            *g /= min_norm;
                        }
                    }
                }
                p
            }
            Metric::Euclidean | Metric::SquaredEuclidean => {
                // q_ij = ‖x_i‖² + ‖y_j‖² − 2 x_i·y_j:  Σ_j w_ij (2 x_i − 2 y_j)
                let two = constant::<E>(2.0);
                let mut g = Vec::with_capacity(self.len * d);
                for (i, p) in p.chunks_exact(d + 1).enumerate() {
                    let (wy, sum) = (&p[..d], p[d]);
                    g.extend(
                        self.row(i)
                            .iter()
                            .zip(wy)
                            .map(|(&x, &wy)| two * (sum * x - wy)),
                    );
                }
                g
            }
        }
    }
}

/// `left · rightᵀ`, then for the distances the clamp at zero, the exact zero diagonal of a
/// set against itself, and the square root for Euclidean.
fn product<E: Dtype + Real>(
    metric: Metric,
    left: Mat<E>,
    right: Mat<E>,
    self_pairs: bool,
    dense: Dense<E>,
) -> Mat<E> {
    let mut s = (dense.matmul)(left, right.permute::<_, Axes2<1, 0>>());
    if metric.is_distance() {
        s = (dense.relu)(s);
        if self_pairs {
            for i in 0..s.shape().0 {
                s[[i, i]] = E::zero();
            }
        }
        if metric == Metric::Euclidean {
            s = (dense.sqrt)(s);
        }
    }
    s
}

/// Everything the backward pass needs, moved into the tape's closure.
struct BackwardPass<E: Dtype> {
    metric: Metric,
    a: Side<E>,
    /// The second operand and whether its gradient is wanted; `None` against itself.
    b: Option<(Side<E>, bool)>,
    /// `S`, for Euclidean: its gradient divides by the distances.
    dist: Option<Mat<E>>,
    dense: Dense<E>,
    dev: Cpu,
}

impl<E: Dtype + Real> BackwardPass<E> {
    fn new(
        metric: Metric,
        a: Side<E>,
        b: Option<(Side<E>, bool)>,
        s: Mat<E>,
        dense: Dense<E>,
        dev: Cpu,
    ) -> Self {
        let dist = (metric == Metric::Euclidean).then_some(s);
        BackwardPass {
            metric,
            a,
            b,
            dist,
            dense,
            dev,
        }
    }

    /// Rows `i0..i1` of the weights `W` of the pairs in the products (`m` columns), or of
    /// `W + Wᵀ` against itself: `W = ∂L/∂S`, or for Euclidean `∂L/∂(squared distance)
    /// = ∂L/∂S_ij / (2 S_ij)`, `0` where `S_ij = 0` (against itself, `S_ij` serves for
    /// `S_ji` too: they differ by rounding only).
    fn block(&self, g: &[E], m: usize, i0: usize, i1: usize) -> Vec<E> {
        let rows = i1 - i0;
        let mut w = g[i0 * m..i1 * m].to_vec();
        if self.b.is_none() {
            // add Gᵀ through a small square tile, so that both sides are read and written
            // along rows (a column walk with a power-of-two stride thrashes the cache)
            const T: usize = 16;
            let mut tile = [[E::zero(); T]; T];
            for j0 in (0..m).step_by(T) {
                let tj = T.min(m - j0);
                for r0 in (0..rows).step_by(T) {
                    let tr = T.min(rows - r0);
                    for (dj, tile_row) in tile.iter_mut().enumerate().take(tj) {
                        let src = &g[(j0 + dj) * m + i0 + r0..][..tr];
                        tile_row[..tr].copy_from_slice(src);
                    }
                    for dr in 0..tr {
                        let out = &mut w[(r0 + dr) * m + j0..][..tj];
                        for (dj, o) in out.iter_mut().enumerate() {
                            *o += tile[dj][dr];
                        }
                    }
                }
            }
        }
        if let Some(s) = &self.dist {
            for (i, w) in (i0..i1).zip(w.chunks_exact_mut(m.max(1))) {
                for (j, w) in w.iter_mut().enumerate() {
                    *w = squared_distance_weight(*w, s[[i, j]]);
                }
            }
        }
        w
    }

    /// `(∂L/∂embeddings, ∂L/∂refs when wanted)` from `g = ∂L/∂S`, row-major.
    fn run(&self, g: &[E]) -> (Vec<E>, Option<Vec<E>>) {
        let (n, d, metric) = (self.a.len, self.a.d, self.metric);
        let (b, want_b) = match &self.b {
            Some((b, want)) => (b, *want),
            None => (&self.a, false),
        };
        let m = b.len;
        let k = d + usize::from(metric.is_distance());
        let b_op = self
            .dev
            .tensor_from_vec(b.backward_operand(metric, 0, m), (m, k));
        let mut pa = Vec::with_capacity(n * k);
        let mut pb = want_b.then(|| vec![E::zero(); m * k]);
        let block_rows = (BLOCK / m.max(1)).max(MIN_BLOCK_ROWS);
        for i0 in (0..n).step_by(block_rows) {
            let i1 = (i0 + block_rows).min(n);
            let w = self
                .dev
                .tensor_from_vec(self.block(g, m, i0, i1), (i1 - i0, m));
            if let Some(pb) = &mut pb {
                let a_op = self.a.backward_operand(metric, i0, i1);
                let a_op = self.dev.tensor_from_vec(a_op, (i1 - i0, k));
                let wt = w.clone().permute::<_, Axes2<1, 0>>();
                add_into(pb, &values(&(self.dense.matmul)(wt, a_op)));
            }
            pa.extend(values(&(self.dense.matmul)(w, b_op.clone())));
        }
        let ga = self.a.grad(pa);
        let gb = pb.map(|pb| b.grad(pb));
        (ga, gb)
    }
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::testing::finite_differences;

    const ALL: [Metric; 4] = [
        Metric::Cosine,
        Metric::Dot,
        Metric::Euclidean,
        Metric::SquaredEuclidean,
    ];

    fn dev() -> Cpu {
        Default::default()
    }

    fn random(rng: &mut StdRng, len: usize) -> Vec<f64> {
        (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect()
    }

    fn mat(v: &[f64], rows: usize, cols: usize) -> Tensor<(usize, usize), f64, Cpu> {
        dev().tensor_from_vec(v.to_vec(), (rows, cols))
    }

    /// `metric(a, b)` with plain f64 loops, straight from the definitions.
    fn naive_pair(metric: Metric, a: &[f64], b: &[f64]) -> f64 {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let norm = |x: &[f64]| x.iter().map(|v| v * v).sum::<f64>().sqrt();
        let sq: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
        match metric {
            Metric::Cosine => dot / (norm(a).max(1e-12) * norm(b).max(1e-12)),
            Metric::Dot => dot,
            Metric::Euclidean => sq.sqrt(),
            Metric::SquaredEuclidean => sq,
        }
    }

    fn naive(metric: Metric, e: &[f64], r: &[f64], d: usize) -> Vec<f64> {
        let mut s = Vec::new();
        for a in e.chunks(d) {
            for b in r.chunks(d) {
                s.push(naive_pair(metric, a, b));
            }
        }
        s
    }

    fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: lengths");
        for (k, (g, w)) in got.iter().zip(want).enumerate() {
            let err = (g - w).abs() / (1.0 + w.abs());
            assert!(
                err <= tol,
                "{what}[{k}]: got {g}, want {w} (rel err {err:e})"
            );
        }
    }

    #[test]
    fn values_match_naive_loops_dynamic_dims() {
        let mut rng = StdRng::seed_from_u64(1);
        let (n, m, d) = (7, 5, 4);
        let (e, r) = (random(&mut rng, n * d), random(&mut rng, m * d));
        for metric in ALL {
            let s = similarity(mat(&e, n, d), metric);
            assert_eq!(s.shape(), &(n, n));
            assert_close(&s.as_vec(), &naive(metric, &e, &e, d), 1e-12, "self");
            let s = similarity_with(mat(&e, n, d), mat(&r, m, d), metric);
            assert_eq!(s.shape(), &(n, m));
            assert_close(&s.as_vec(), &naive(metric, &e, &r, d), 1e-12, "with");
        }
    }

    #[test]
    fn values_match_naive_loops_static_and_mixed_dims() {
        let mut rng = StdRng::seed_from_u64(2);
        let (e, r) = (random(&mut rng, 12), random(&mut rng, 6));
        for metric in ALL {
            let et: Tensor<Rank2<4, 3>, f64, _> =
                dev().tensor_from_vec(e.clone(), Default::default());
            let rt: Tensor<Rank2<2, 3>, f64, _> =
                dev().tensor_from_vec(r.clone(), Default::default());
            let s: Tensor<Rank2<4, 4>, f64, _> = similarity(et.clone(), metric);
            assert_close(&s.as_vec(), &naive(metric, &e, &e, 3), 1e-12, "static self");
            let s: Tensor<Rank2<4, 2>, f64, _> = similarity_with(et, rt, metric);
            assert_close(&s.as_vec(), &naive(metric, &e, &r, 3), 1e-12, "static with");
            // a dynamic batch of rows of static length
            let em = dev().tensor_from_vec(e.clone(), (4, Const::<3>));
            let rm = dev().tensor_from_vec(r.clone(), (2, Const::<3>));
            let s = similarity_with(em, rm, metric);
            assert_eq!(s.shape(), &(4, 2));
            assert_close(&s.as_vec(), &naive(metric, &e, &r, 3), 1e-12, "mixed with");
        }
    }

    #[test]
    fn distances_against_itself_have_an_exact_zero_diagonal() {
        let mut rng = StdRng::seed_from_u64(3);
        let e: Vec<f64> = random(&mut rng, 40).iter().map(|x| 1e3 * x).collect();
        for metric in [Metric::Euclidean, Metric::SquaredEuclidean] {
            let s = similarity(mat(&e, 10, 4), metric).as_vec();
            assert!((0..10).all(|i| s[i * 10 + i] == 0.0));
            assert!(s.iter().all(|&x| x >= 0.0));
        }
    }

    #[test]
    fn non_contiguous_inputs() {
        let mut rng = StdRng::seed_from_u64(4);
        let (n, d) = (5, 3);
        let e = random(&mut rng, n * d);
        // the transpose of a d × n tensor, and one row broadcast to every row
        let et: Vec<f64> = (0..d * n).map(|k| e[(k % n) * d + k / n]).collect();
        for metric in ALL {
            let x = mat(&et, d, n).permute::<_, Axes2<1, 0>>();
            assert_close(
                &similarity(x, metric).as_vec(),
                &naive(metric, &e, &e, d),
                1e-12,
                "T",
            );
            let row = dev().tensor_from_vec(e[..d].to_vec(), (d,));
            let x: Tensor<(usize, usize), f64, _> = row.broadcast_like::<_, Axis<0>>(&(n, d));
            let rep: Vec<f64> = e[..d].repeat(n);
            assert_close(
                &similarity(x, metric).as_vec(),
                &naive(metric, &rep, &rep, d),
                1e-12,
                "b",
            );
        }
    }

    #[test]
    fn gradients_of_non_contiguous_inputs() {
        let mut rng = StdRng::seed_from_u64(14);
        let (n, d) = (4, 3);
        let (e, w) = (random(&mut rng, n * d), random(&mut rng, n * n));
        let et: Vec<f64> = (0..d * n).map(|k| e[(k % n) * d + k / n]).collect();
        for metric in ALL {
            // a transposed view: its gradient is laid out like the d × n tensor underneath
            let x = mat(&et, d, n);
            let s = similarity(x.leaky_trace().permute::<_, Axes2<1, 0>>(), metric);
            let grads = (s * mat(&w, n, n)).sum().backward();
            let fd = finite_differences(&e, |e| weighted(metric, e, None, &w, d));
            let fd_t: Vec<f64> = (0..d * n).map(|k| fd[(k % n) * d + k / n]).collect();
            assert_close(
                &grads.get(&x).as_vec(),
                &fd_t,
                1e-6,
                &format!("{metric:?} T"),
            );
            // one row broadcast to all rows, against a second set
            let r = random(&mut rng, 2 * d);
            let row = dev().tensor_from_vec(e[..d].to_vec(), (d,));
            let x = row.leaky_trace().broadcast_like::<_, Axis<0>>(&(n, d));
            let s = similarity_with(x, mat(&r, 2, d), metric);
            let grads = (s * mat(&w[..2 * n], n, 2)).sum().backward();
            let fd = finite_differences(&e[..d], |v| {
                weighted(metric, &v.repeat(n), Some(&r), &w[..2 * n], d)
            });
            assert_close(
                &grads.get(&row).as_vec(),
                &fd,
                1e-6,
                &format!("{metric:?} b"),
            );
        }
    }

    #[test]
    fn empty_inputs() {
        for metric in ALL {
            let s = similarity_with(mat(&[], 0, 3), mat(&[0.5; 6], 2, 3), metric);
            assert_eq!(s.shape(), &(0, 2));
            let s = similarity_with(mat(&[0.5; 6], 2, 3), mat(&[], 0, 3), metric);
            assert_eq!(s.shape(), &(2, 0));
            // rows of length 0: every row is the zero vector
            let x = mat(&[], 3, 0);
            let s = similarity(x.leaky_trace(), metric);
            assert_eq!(s.as_vec(), vec![0.0; 9]);
            let _ = s.sum().backward();
            // the backward pass of an empty S (dfdx's own `sum` cannot run one)
            for (n, m) in [(0, 2), (2, 0)] {
                let a = Side::new(metric, vec![0.5; n * 3], n, 3);
                let b = Side::new(metric, vec![0.5; m * 3], m, 3);
                let s = dev().tensor_from_vec(Vec::new(), (n, m));
                let backward =
                    BackwardPass::new(metric, a, Some((b, true)), s, Dense::get(), dev());
                let (ga, gb) = backward.run(&[]);
                assert_eq!((ga, gb), (vec![0.0; n * 3], Some(vec![0.0; m * 3])));
            }
        }
    }

    /// `L = Σ_ij w_ij S_ij` for embeddings (and refs) given as flat f64 rows.
    fn weighted(metric: Metric, e: &[f64], r: Option<&[f64]>, w: &[f64], d: usize) -> f64 {
        let n = e.len() / d;
        let s = match r {
            None => similarity(mat(e, n, d), metric),
            Some(r) => similarity_with(mat(e, n, d), mat(r, r.len() / d, d), metric),
        };
        s.as_vec().iter().zip(w).map(|(s, w)| s * w).sum()
    }

    #[test]
    fn gradients_match_finite_differences_against_itself() {
        let mut rng = StdRng::seed_from_u64(5);
        let (n, d) = (6, 4);
        let e = random(&mut rng, n * d);
        let w = random(&mut rng, n * n);
        for metric in ALL {
            let x = mat(&e, n, d);
            let s = similarity(x.leaky_trace(), metric);
            let grads = (s * mat(&w, n, n)).sum().backward();
            let fd = finite_differences(&e, |e| weighted(metric, e, None, &w, d));
            assert_close(&grads.get(&x).as_vec(), &fd, 1e-6, &format!("{metric:?}"));
        }
    }

    #[test]
    fn gradients_match_finite_differences_with_refs() {
        let mut rng = StdRng::seed_from_u64(6);
        let (n, m, d) = (5, 7, 3);
        let (e, r) = (random(&mut rng, n * d), random(&mut rng, m * d));
        let w = random(&mut rng, n * m);
        for metric in ALL {
            let (x, y) = (mat(&e, n, d), mat(&r, m, d));
            let s = similarity_with(x.leaky_trace(), y.leaky_trace(), metric);
            let grads = (s * mat(&w, n, m)).sum().backward();
            let fd_e = finite_differences(&e, |e| weighted(metric, e, Some(&r), &w, d));
            let fd_r = finite_differences(&r, |r| weighted(metric, &e, Some(r), &w, d));
            assert_close(
                &grads.get(&x).as_vec(),
                &fd_e,
                1e-6,
                &format!("{metric:?} e"),
            );
            assert_close(
                &grads.get(&y).as_vec(),
                &fd_r,
                1e-6,
                &format!("{metric:?} r"),
            );
        }
    }

    #[test]
    fn gradients_over_several_blocks() {
        // more rows than one block of the backward pass holds
        let mut rng = StdRng::seed_from_u64(7);
        let (n, m, d) = (150, 1 << 14, 2);
        let (e, r) = (random(&mut rng, n * d), random(&mut rng, m * d));
        let w = random(&mut rng, n * m);
        for metric in ALL {
            let (x, y) = (mat(&e, n, d), mat(&r, m, d));
            let s = similarity_with(x.leaky_trace(), y.leaky_trace(), metric);
            let grads = (s * mat(&w, n, m)).sum().backward();
            // the same gradient from one small call per row of embeddings
            let mut ge = Vec::new();
            let mut gr = vec![0.0; m * d];
            for i in 0..n {
                let xi = mat(&e[i * d..(i + 1) * d], 1, d);
                let s = similarity_with(xi.leaky_trace(), y.leaky_trace(), metric);
                let g = (s * mat(&w[i * m..(i + 1) * m], 1, m)).sum().backward();
                ge.extend(g.get(&xi).as_vec());
                add_into(&mut gr, &g.get(&y).as_vec());
            }
            assert_close(
                &grads.get(&x).as_vec(),
                &ge,
                1e-10,
                &format!("{metric:?} e"),
            );
            assert_close(
                &grads.get(&y).as_vec(),
                &gr,
                1e-10,
                &format!("{metric:?} r"),
            );
        }
    }

    #[test]
    fn f32_agrees_with_f64() {
        let mut rng = StdRng::seed_from_u64(8);
        let (n, m, d) = (9, 6, 5);
        let (e, r, w) = (
            random(&mut rng, n * d),
            random(&mut rng, m * d),
            random(&mut rng, n * m),
        );
        let single = |v: &[f64], rows, cols| -> Tensor<(usize, usize), f32, Cpu> {
            dev().tensor_from_vec(v.iter().map(|&x| x as f32).collect(), (rows, cols))
        };
        let widen = |v: Vec<f32>| -> Vec<f64> { v.into_iter().map(f64::from).collect() };
        for metric in ALL {
            let (x, y) = (mat(&e, n, d), mat(&r, m, d));
            let s = similarity_with(x.leaky_trace(), y.leaky_trace(), metric);
            let s64 = s.as_vec();
            let g64 = (s * mat(&w, n, m)).sum().backward();
            let (x32, y32) = (single(&e, n, d), single(&r, m, d));
            let s = similarity_with(x32.leaky_trace(), y32.leaky_trace(), metric);
            assert_close(&widen(s.as_vec()), &s64, 1e-5, "value");
            let g32 = (s * single(&w, n, m)).sum().backward();
            assert_close(
                &widen(g32.get(&x32).as_vec()),
                &g64.get(&x).as_vec(),
                1e-4,
                "e",
            );
            assert_close(
                &widen(g32.get(&y32).as_vec()),
                &g64.get(&y).as_vec(),
                1e-4,
                "r",
            );
        }
    }

    #[test]
    fn tape_free_inputs() {
        let mut rng = StdRng::seed_from_u64(9);
        let (e, r) = (random(&mut rng, 12), random(&mut rng, 9));
        for metric in ALL {
            let s: Tensor<(usize, usize), f64, Cpu, NoneTape> = similarity(mat(&e, 4, 3), metric);
            assert_close(&s.as_vec(), &naive(metric, &e, &e, 3), 1e-12, "self");
            let s = similarity_with(mat(&e, 4, 3), mat(&r, 3, 3), metric);
            assert_close(&s.as_vec(), &naive(metric, &e, &r, 3), 1e-12, "with");
        }
    }

    #[test]
    fn tape_free_refs_are_constants() {
        let mut rng = StdRng::seed_from_u64(10);
        let (e, r, w) = (
            random(&mut rng, 12),
            random(&mut rng, 9),
            random(&mut rng, 12),
        );
        for metric in ALL {
            let x = mat(&e, 4, 3);
            let s = similarity_with(x.leaky_trace(), mat(&r, 3, 3), metric);
            let grads = (s * mat(&w, 4, 3)).sum().backward();
            let fd = finite_differences(&e, |e| weighted(metric, e, Some(&r), &w, 3));
            assert_close(&grads.get(&x).as_vec(), &fd, 1e-6, &format!("{metric:?}"));
        }
    }

    #[test]
    fn cosine_norms_do_not_overflow_or_underflow_in_f32() {
        // rows whose squares overflow f32 (norm ≳ 1.8e19, up to near f32::MAX) or
        // underflow it, next to an ordinary row
        let rows: [[f64; 3]; 5] = [
            [3e19, -4e19, 1e19],
            [1e38, -2e38, 5e37],
            [2.0, 1.0, -3.0],
            [3e-25, 4e-25, 0.0],
            [1e30, 1e30, 1e30],
        ];
        let e: Vec<f64> = rows.iter().flatten().copied().collect();
        let want = naive(Metric::Cosine, &e, &e, 3);
        let x: Tensor<(usize, usize), f32, Cpu> =
            dev().tensor_from_vec(e.iter().map(|&v| v as f32).collect(), (5, 3));
        let s = similarity(x.leaky_trace(), Metric::Cosine);
        let got: Vec<f64> = s.as_vec().into_iter().map(f64::from).collect();
        // row 3 is below the 1e-12 norm threshold: its similarities are tiny, as in f64
        assert_close(&got, &want, 1e-6, "f32 cosine of huge rows");
        assert!((got[0] - 1.0).abs() < 1e-6 && (got[6] - 1.0).abs() < 1e-6);
        let grads = s.sum().backward();
        assert!(grads.get(&x).as_vec().iter().all(|g| g.is_finite()));
    }

    #[test]
    fn zero_rows_stay_finite() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut e = random(&mut rng, 12);
        e[3..6].fill(0.0);
        let w = random(&mut rng, 16);
        for metric in ALL {
            let x = mat(&e, 4, 3);
            let s = similarity(x.leaky_trace(), metric);
            let values = s.as_vec();
            assert!(
                values.iter().all(|v| v.is_finite()),
                "{metric:?}: {values:?}"
            );
            let grads = (s * mat(&w, 4, 4)).sum().backward();
            let g = grads.get(&x).as_vec();
            assert!(g.iter().all(|v| v.is_finite()), "{metric:?}: {g:?}");
            if metric == Metric::Cosine {
                assert!(values[4..8].iter().all(|&v| v == 0.0));
                // below the threshold the row is scaled by 1/1e-12: g = (G + Gᵀ)_1· n̂ / 1e-12
                let unit = Side::new(metric, e.clone(), 4, 3);
                for k in 0..3 {
                    let p: f64 = (0..4)
                        .map(|j| (w[4 + j] + w[j * 4 + 1]) * unit.row(j)[k])
                        .sum();
                    assert_close(&[g[3 + k] * 1e-12], &[p], 1e-9, "zero row");
                }
            }
        }
    }

    #[test]
    fn identical_rows_get_a_zero_euclidean_gradient_between_them() {
        // rows 0 and 2 coincide: their distance is 0 and so is its weight in the gradient
        let e = [1.0, 2.0, -1.0, 0.5, 1.0, 2.0];
        let mut w = [0.0; 9];
        w[2] = 1.0;
        w[6] = 1.0;
        let x = mat(&e, 3, 2);
        let s = similarity(x.leaky_trace(), Metric::Euclidean);
        assert_eq!(s.as_vec()[2], 0.0);
        let grads = (s * mat(&w, 3, 3)).sum().backward();
        assert_eq!(grads.get(&x).as_vec(), vec![0.0; 6]);
    }

    /// The dfdx hazard the module docs describe: the same tensor on both sides of a matmul.
    #[test]
    #[should_panic(expected = "left != right")]
    fn dfdx_matmul_with_itself_panics_in_backward() {
        let x = mat(&[1.0, 2.0, 3.0, 4.0], 2, 2).leaky_trace();
        let s = x.with_empty_tape().matmul(x.permute::<_, Axes2<1, 0>>());
        let _ = s.sum().backward();
    }

    /// …and the same product through `similarity` works, with the right gradient.
    #[test]
    fn the_batch_against_itself_is_one_safe_op() {
        let e = [1.0, 2.0, 3.0, 4.0, -1.0, 0.5];
        let x = mat(&e, 3, 2);
        let s = similarity(x.leaky_trace(), Metric::Dot);
        assert_close(&s.as_vec(), &naive(Metric::Dot, &e, &e, 2), 1e-15, "value");
        let grads = s.sum().backward();
        let fd = finite_differences(&e, |e| naive(Metric::Dot, e, e, 2).iter().sum());
        assert_close(&grads.get(&x).as_vec(), &fd, 1e-8, "gradient");
        // the same tensor passed twice to `similarity_with`: both roles add up
        let s = similarity_with(x.leaky_trace(), x.leaky_trace(), Metric::Dot);
        let grads = s.sum().backward();
        assert_close(&grads.get(&x).as_vec(), &fd, 1e-8, "twice");
    }

    #[test]
    fn loops_agree_with_the_dfdx_kernels() {
        let mut rng = StdRng::seed_from_u64(12);
        let (a, b) = (random(&mut rng, 12), random(&mut rng, 20));
        let fast = Dense::<f64>::get();
        let loops = Dense::<f64>::loops();
        let (a, b) = (mat(&a, 3, 4), mat(&b, 4, 5));
        let want = (fast.matmul)(a.clone(), b.clone()).as_vec();
        assert_close(
            &(loops.matmul)(a.clone(), b.clone()).as_vec(),
            &want,
            1e-14,
            "matmul",
        );
        let bv = b.as_vec();
        let b_t: Vec<f64> = (0..20).map(|k| bv[(k % 4) * 5 + k / 4]).collect();
        let bt = mat(&b_t, 5, 4).permute::<_, Axes2<1, 0>>();
        assert_close(
            &(loops.matmul)(a.clone(), bt).as_vec(),
            &want,
            1e-14,
            "strided",
        );
        let x = mat(&[-1.0, 4.0, 0.0, 2.25], 2, 2);
        assert_eq!(
            (loops.relu)(x.clone()).as_vec(),
            (fast.relu)(x.clone()).as_vec()
        );
        let y = (fast.relu)(x);
        assert_eq!((loops.sqrt)(y.clone()).as_vec(), (fast.sqrt)(y).as_vec());
    }

    /// `cargo test --release -p loss-runtime similarity_timing -- --ignored --nocapture`
    #[test]
    #[ignore = "timing, run by hand in release"]
    fn similarity_timing() {
        use std::time::{Duration, Instant};
        fn best(mut f: impl FnMut() -> Duration) -> Duration {
            (0..3).map(|_| f()).min().unwrap_or_default()
        }
        let (n, d) = (4096, 128);
        let mut rng = StdRng::seed_from_u64(13);
        let mut random32 =
            |len: usize| -> Vec<f32> { (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect() };
        let x = dev().tensor_from_vec(random32(n * d), (n, d));
        let y = dev().tensor_from_vec(random32(n * d), (n, d));
        let w = dev().tensor_from_vec(random32(n * n), (n, n));
        let s0 = dev().tensor_from_vec(random32(n * n), (n, n));
        let wv = w.as_vec();
        println!("N = M = {n}, D = {d}, f32, best of 3");
        for metric in ALL {
            let fwd = best(|| {
                let t = Instant::now();
                let _ = similarity(x.leaky_trace(), metric);
                t.elapsed()
            });
            let bwd = best(|| {
                let side = Side::new(metric, x.as_vec(), n, d);
                let s = similarity(x.clone(), metric).reshape_like(&(n, n));
                let pass = BackwardPass::new(metric, side, None, s, Dense::get(), dev());
                let t = Instant::now();
                let _ = pass.run(&wv);
                t.elapsed()
            });
            let with = best(|| {
                let t = Instant::now();
                let s = similarity_with(x.leaky_trace(), y.leaky_trace(), metric);
                let _ = (s * w.clone()).sum().backward();
                t.elapsed()
            });
            println!(
                "{metric:?}: similarity forward {fwd:?}, its backward op {bwd:?}; \
                 similarity_with, forward + (S*W).sum() + backward {with:?}"
            );
        }
        // for scale: the dfdx ops downstream alone, and dfdx's matmul of two tensors
        let downstream = best(|| {
            let t = Instant::now();
            let _ = (s0.leaky_trace() * w.clone()).sum().backward();
            t.elapsed()
        });
        let yt = y.clone().permute::<_, Axes2<1, 0>>().contiguous();
        let matmul = best(|| {
            let t = Instant::now();
            let s = x.leaky_trace().matmul(yt.leaky_trace());
            let _ = (s * w.clone()).sum().backward();
            t.elapsed()
        });
        println!("(S*W).sum() + backward alone {downstream:?}; dfdx E·Rᵀ + the same {matmul:?}");
    }
}
