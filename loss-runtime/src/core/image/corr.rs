//! The local correlation field of λ-PNN and Z-PNN: the correlation of two images over a
//! small window around each pixel, each pixel centred by its own window's mean.
//!
//! ```text
//! box(X)[i][j] = Σ_{r = i−w+1}^{i+w} Σ_{s = j−w+1}^{j+w} X[r][s]      (2w × 2w, not centred; 0 outside)
//! Ã = A − box(A)/(4w²),   B̃ = B − box(B)/(4w²)                         (per pixel, its own window)
//! σ_AA = box(Ã²),  σ_BB = box(B̃²),  σ_AB = box(Ã·B̃)
//! σ̂ = clip(σ, 1e-20, max σ)                                           (max over the whole tensor)
//! ρ = σ_AB / (sqrt(σ̂_AA · σ̂_BB) + 1e-20)
//! ```
//!
//! This is not the textbook windowed correlation (each pixel is centred with its own
//! window's mean, not with the window's pixels' means); it follows the official code of
//! both papers (`xcorr_torch`). Everything is computed in f64, every box sum in O(1) per
//! pixel from 2-D prefix sums. The backward pass (with respect to `A` only) is the
//! adjoint of each step; the adjoint of a box sum is the transposed box, rows and columns
//! `i−w … i+w−1`, again from prefix sums. The clip passes the gradient for
//! `1e-20 ≤ σ < max σ`: as the official gradient does, the element at the maximum gets
//! none through its `σ_AA`.

use dfdx::prelude::*;

use super::{attach, dims4, traced, Image};
use crate::core::real::Real;
use crate::error::LossError;

/// The lower clip of the local variances and the guard of the denominator.
const FLOOR: f64 = 1e-20;

/// `Σ X[r][s]` over rows `i−before ..= i+after` and the same columns, zero outside the
/// `h × w` plane, for every pixel, from prefix sums.
fn window_sums(x: &[f64], h: usize, w: usize, before: usize, after: usize) -> Vec<f64> {
    let stride = w + 1;
    let mut p = vec![0.0; (h + 1) * stride];
    for i in 0..h {
        let mut run = 0.0;
        for j in 0..w {
            run += x[i * w + j];
            p[(i + 1) * stride + j + 1] = p[i * stride + j + 1] + run;
        }
    }
    let span = |k: usize, n: usize| (k.saturating_sub(before), (k + after + 1).min(n));
    let mut out = Vec::with_capacity(h * w);
    for i in 0..h {
        let (r0, r1) = span(i, h);
        for j in 0..w {
            let (c0, c1) = span(j, w);
            out.push(
                p[r1 * stride + c1] - p[r0 * stride + c1] - p[r1 * stride + c0]
                    + p[r0 * stride + c0],
            );
        }
    }
    out
}

/// The forward box of the field, `i−w+1 ..= i+w`.
fn boxed(x: &[f64], h: usize, w: usize, half: usize) -> Vec<f64> {
    window_sums(x, h, w, half - 1, half)
}

/// Its adjoint, `i−w ..= i+w−1`.
fn boxed_adjoint(x: &[f64], h: usize, w: usize, half: usize) -> Vec<f64> {
    window_sums(x, h, w, half, half - 1)
}

/// Each pixel minus its own window's mean.
fn centred(x: &[f64], h: usize, w: usize, half: usize) -> Vec<f64> {
    let area = (4 * half * half) as f64;
    let m = boxed(x, h, w, half);
    x.iter().zip(&m).map(|(v, s)| v - s / area).collect()
}

/// The field with what its backward pass needs, plane by plane (`[B, C]` planes of
/// `H × W`, `C` the larger channel count).
pub(crate) struct Field {
    dims: [usize; 4],
    half: usize,
    rho: Vec<f64>,
    /// `Ã` per output plane.
    a: Vec<f64>,
    /// `B̃` per output plane.
    b: Vec<f64>,
    sab: Vec<f64>,
    pub(crate) saa: Vec<f64>,
    sbb: Vec<f64>,
    /// `max σ_AA` over the tensor.
    max_aa: f64,
}

/// Checks two images' shapes for the field; returns the output's dims.
fn check(da: [usize; 4], db: [usize; 4], half: usize) -> Result<[usize; 4], LossError> {
    if half == 0 {
        return Err(LossError::InvalidHyper {
            loss: "local_corr_field",
            name: "w",
            value: 0.0,
            constraint: "at least 1",
        });
    }
    let [ba, ca, h, w] = da;
    let c = ca.max(db[1]);
    if ba == 0 || ca == 0 || h == 0 || w == 0 {
        return Err(LossError::BadShape {
            input: "a",
            shape: da.to_vec(),
            expected: "[B, C, H, W], not empty",
        });
    }
    if db[0] != ba || db[2] != h || db[3] != w || (db[1] != c && db[1] != 1) || (ca != c && ca != 1)
    {
        return Err(LossError::BadShape {
            input: "b",
            shape: db.to_vec(),
            expected: "[B, C, H, W] like `a`, or one channel (broadcast over the other's)",
        });
    }
    Ok([ba, c, h, w])
}

pub(crate) fn field(
    a: &[f64],
    da: [usize; 4],
    b: &[f64],
    db: [usize; 4],
    half: usize,
) -> Result<Field, LossError> {
    let dims = check(da, db, half)?;
    let [n, c, h, w] = dims;
    let plane = h * w;
    let centre = |x: &[f64], channels: usize| -> Vec<Vec<f64>> {
        x.chunks(plane)
            .take(n * channels)
            .map(|p| centred(p, h, w, half))
            .collect()
    };
    let (ac, bc) = (centre(a, da[1]), centre(b, db[1]));
    let pick = |channels: usize, k: usize| -> usize {
        if channels == 1 {
            k / c
        } else {
            k
        }
    };
    let mut f = Field {
        dims,
        half,
        rho: Vec::with_capacity(n * c * plane),
        a: Vec::with_capacity(n * c * plane),
        b: Vec::with_capacity(n * c * plane),
        sab: Vec::with_capacity(n * c * plane),
        saa: Vec::with_capacity(n * c * plane),
        sbb: Vec::with_capacity(n * c * plane),
        max_aa: f64::NEG_INFINITY,
    };
    for k in 0..n * c {
        let pa = &ac[pick(da[1], k)];
        let pb = &bc[pick(db[1], k)];
        let sq =
            |x: &[f64], y: &[f64]| -> Vec<f64> { x.iter().zip(y).map(|(u, v)| u * v).collect() };
        f.saa.extend(boxed(&sq(pa, pa), h, w, half));
        f.sbb.extend(boxed(&sq(pb, pb), h, w, half));
        f.sab.extend(boxed(&sq(pa, pb), h, w, half));
        f.a.extend_from_slice(pa);
        f.b.extend_from_slice(pb);
    }
    let top = |v: &[f64]| v.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x));
    f.max_aa = top(&f.saa);
    let max_bb = top(&f.sbb);
    let clip = |s: f64, top: f64| s.max(FLOOR).min(top.max(FLOOR));
    for k in 0..f.sab.len() {
        let (aa, bb) = (clip(f.saa[k], f.max_aa), clip(f.sbb[k], max_bb));
        f.sbb[k] = bb;
        f.rho.push(f.sab[k] / ((aa * bb).sqrt() + FLOOR));
    }
    Ok(f)
}

impl Field {
    /// `∂L/∂A` from `∂L/∂ρ` (`A` with the output's channels).
    fn backward(&self, g: &[f64]) -> Vec<f64> {
        let [_, _, h, w] = self.dims;
        let (plane, half) = (h * w, self.half);
        let area = (4 * half * half) as f64;
        let mut out = Vec::with_capacity(g.len());
        for (k, gp) in g.chunks(plane).enumerate() {
            let r = k * plane..(k + 1) * plane;
            let (aa, bb, ab) = (
                &self.saa[r.clone()],
                &self.sbb[r.clone()],
                &self.sab[r.clone()],
            );
            let (a, b) = (&self.a[r.clone()], &self.b[r]);
            let mut g_aa = vec![0.0; plane];
            let mut g_ab = vec![0.0; plane];
            for p in 0..plane {
                let aa_hat = aa[p].max(FLOOR).min(self.max_aa.max(FLOOR));
                let s = (aa_hat * bb[p]).sqrt();
                let d = s + FLOOR;
                g_ab[p] = gp[p] / d;
                if aa[p] >= FLOOR && aa[p] < self.max_aa {
                    g_aa[p] = -gp[p] * ab[p] / (d * d) * bb[p] / (2.0 * s);
                }
            }
            let t_aa = boxed_adjoint(&g_aa, h, w, half);
            let t_ab = boxed_adjoint(&g_ab, h, w, half);
            let g_c: Vec<f64> = (0..plane)
                .map(|p| 2.0 * a[p] * t_aa[p] + b[p] * t_ab[p])
                .collect();
            let t_c = boxed_adjoint(&g_c, h, w, half);
            out.extend(g_c.iter().zip(&t_c).map(|(g, t)| g - t / area));
        }
        out
    }
}

/// The local correlation field of `a` and `b` as plain values (row-major in and out):
/// `[B, C, H, W]` from `a` and `b` of dims `dims_a`, `dims_b`, either of which may have
/// one channel, broadcast over the other's `C`. `half` is the window's half-width `w`
/// (the window is `2w × 2w`).
///
/// Dims that do not match are [`LossError::BadShape`]; `half = 0` is
/// [`LossError::InvalidHyper`].
pub fn local_corr_field_values(
    a: &[f64],
    dims_a: [usize; 4],
    b: &[f64],
    dims_b: [usize; 4],
    half: usize,
) -> Result<Vec<f64>, LossError> {
    for (input, v, d) in [("a", a, dims_a), ("b", b, dims_b)] {
        if v.len() != d.iter().product::<usize>() {
            return Err(LossError::BadShape {
                input,
                shape: vec![v.len()],
                expected: "as many values as its dims hold",
            });
        }
    }
    Ok(field(a, dims_a, b, dims_b, half)?.rho)
}

/// The local correlation field `ρ` of `a` (`[B, C, H, W]`, traced) with `b` (`[B, C, H, W]`
/// or `[B, 1, H, W]`, a constant such as the PAN image, broadcast over the bands), over
/// `2w × 2w` windows: one op on the tape, differentiable with respect to `a`. See the
/// [module docs](self) for the formula.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::local_corr_field;
/// let dev: Cpu = Default::default();
/// let pan: Tensor<Rank4<1, 1, 8, 8>, f64, _> = dev.sample_normal();
/// let out = pan.clone() * 2.0; // one band: the PAN, scaled
/// let rho = local_corr_field(out.leaky_trace(), &pan, 2).unwrap();
/// assert!(rho.as_vec().iter().all(|r| (r - 1.0).abs() < 1e-9));
/// ```
pub fn local_corr_field<S, S2, E, T, T2>(
    a: Tensor<S, E, Cpu, T>,
    b: &Tensor<S2, E, Cpu, T2>,
    half: usize,
) -> Result<Image<E, T>, LossError>
where
    S: Shape,
    S2: Shape,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    let a = traced("a", a, "[B, C, H, W]")?;
    let db = dims4(
        "b",
        b.shape().concrete().as_ref(),
        "[B, C, H, W] or [B, 1, H, W]",
    )?;
    let bv: Vec<f64> = crate::core::tape::read(b)
        .iter()
        .map(|&v| Real::to_f64(v))
        .collect();
    let mut f = field(&a.values, a.dims, &bv, db, half)?;
    if f.dims[1] != a.dims[1] {
        return Err(LossError::BadShape {
            input: "b",
            shape: db.to_vec(),
            expected: "[B, C, H, W] like `a`, or [B, 1, H, W]",
        });
    }
    let (rho, dims) = (std::mem::take(&mut f.rho), f.dims);
    Ok(attach(a, dims, &rho, move |g| f.backward(g)))
}

#[cfg(test)]
mod tests;
