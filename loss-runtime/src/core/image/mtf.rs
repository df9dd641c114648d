//! The sensors' MTF-matched low-pass kernels: one 41×41 kernel per band, a Gaussian
//! frequency response whose gain at the MS Nyquist frequency is the band's measured
//! value, turned into a finite impulse response by an inverse DFT and a Kaiser window.
//!
//! ```text
//! σ_b = ((N−1)·fcut/2) / sqrt(−2 ln G_b)          N = 41, fcut = 1/r = 1/4  (σ_b = 5/sqrt(−2 ln G_b))
//! Hd  = exp(−(u² + v²)/(2σ_b²)), u, v ∈ −20..20   (entries below ε·max set to 0, scaled to peak 1)
//! h   = rot180( fftshift( ifft2( ifftshift(Hd) ) ) )
//! h[i][j] ·= kaiser₄₁,₀.₅[j]                      (a 1-D window along the columns only)
//! h   = max(h, 0) / Σ max(h, 0)
//! ```
//!
//! The window is the 1-D one the official PyTorch code of Z-PNN and λ-PNN broadcasts (the
//! MATLAB toolbox uses a 2-D window); the kernels are therefore 180°-symmetric but not
//! 90°-symmetric. They are generated in f64 on first use and cached.

use std::sync::OnceLock;

/// The side of every MTF kernel.
pub const MTF_SIZE: usize = 41;
/// The PAN-to-MS resolution ratio the kernels are designed for.
pub const RATIO: usize = 4;

/// A multispectral sensor: selects the bands' Nyquist gains (and Z-PNN's default β).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sensor {
    /// GeoEye-1: 4 bands.
    Ge1,
    /// WorldView-2: 8 bands.
    Wv2,
    /// WorldView-3: 8 bands.
    Wv3,
    /// QuickBird: 4 bands.
    Qb,
    /// IKONOS: 4 bands.
    Ikonos,
}

impl Sensor {
    /// Every sensor, in declaration order.
    pub const ALL: [Sensor; 5] = [
        Sensor::Ge1,
        Sensor::Wv2,
        Sensor::Wv3,
        Sensor::Qb,
        Sensor::Ikonos,
    ];

    /// The MTF gain of each band at the MS Nyquist frequency.
    pub fn nyquist_gains(self) -> &'static [f64] {
        match self {
            Sensor::Ge1 => &[0.23, 0.23, 0.23, 0.23],
            Sensor::Wv2 => &[0.35, 0.35, 0.35, 0.35, 0.35, 0.35, 0.35, 0.27],
            Sensor::Wv3 => &[0.325, 0.355, 0.360, 0.350, 0.365, 0.360, 0.335, 0.315],
            Sensor::Qb => &[0.34, 0.32, 0.30, 0.22],
            Sensor::Ikonos => &[0.26, 0.28, 0.29, 0.28],
        }
    }

    /// The number of MS bands.
    pub fn bands(self) -> usize {
        self.nyquist_gains().len()
    }

    /// Z-PNN's default weight of the structural term (`sensor.py`): 0.25 for GE1, 0.36
    /// otherwise (the paper tunes WV2 and WV3; the others take that value).
    pub fn zpnn_beta(self) -> f64 {
        match self {
            Sensor::Ge1 => 0.25,
            _ => 0.36,
        }
    }

    fn index(self) -> usize {
        Sensor::ALL.iter().position(|&s| s == self).unwrap_or(0)
    }
}

/// The sensor's MTF kernels, one per band, each `41 × 41` row-major, non-negative and
/// summing to 1 (see the [module docs](self) for the recipe). Computed once per sensor.
///
/// ```
/// use loss_runtime::{mtf_kernels, Sensor};
/// let k = mtf_kernels(Sensor::Wv3);
/// assert_eq!((k.len(), k[0].len()), (8, 41 * 41));
/// assert!((k[0].iter().sum::<f64>() - 1.0).abs() < 1e-12);
/// ```
pub fn mtf_kernels(sensor: Sensor) -> &'static [Vec<f64>] {
    static CACHE: [OnceLock<Vec<Vec<f64>>>; 5] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    CACHE[sensor.index()].get_or_init(|| {
        sensor
            .nyquist_gains()
            .iter()
            .map(|&g| mtf_kernel(g))
            .collect()
    })
}

/// The standard deviation, in frequency bins, of the Gaussian response whose value at
/// the MS Nyquist frequency (`(N−1)·fcut/2` bins from DC) is `gain`.
fn frequency_sigma(gain: f64) -> f64 {
    let nyquist = (MTF_SIZE - 1) as f64 / RATIO as f64 / 2.0;
    (nyquist * nyquist / (-2.0 * gain.ln())).sqrt()
}

/// The desired frequency response `Hd`, DC at the centre, peak 1.
fn gaussian_response(gain: f64) -> Vec<f64> {
    let n = MTF_SIZE;
    let c = (n / 2) as f64;
    let s = frequency_sigma(gain);
    let mut h: Vec<f64> = (0..n * n)
        .map(|k| {
            let (u, v) = ((k / n) as f64 - c, (k % n) as f64 - c);
            (-(u * u + v * v) / (2.0 * s * s)).exp()
        })
        .collect();
    let peak = h.iter().fold(0.0f64, |m, &v| m.max(v));
    for v in h.iter_mut() {
        if *v < f64::EPSILON * peak {
            *v = 0.0;
        }
    }
    // normalising to sum 1 and then to peak 1 is one scaling: to peak 1
    let peak = h.iter().fold(0.0f64, |m, &v| m.max(v));
    h.iter_mut().for_each(|v| *v /= peak);
    h
}

/// The modified Bessel function of the first kind, order 0, by its power series.
fn bessel_i0(x: f64) -> f64 {
    let q = x * x / 4.0;
    let (mut term, mut sum) = (1.0, 1.0);
    for k in 1..60 {
        term *= q / (k * k) as f64;
        sum += term;
        if term < 1e-18 * sum {
            break;
        }
    }
    sum
}

/// The Kaiser window of `len` points and shape `beta`.
fn kaiser(len: usize, beta: f64) -> Vec<f64> {
    let m = (len - 1) as f64;
    (0..len)
        .map(|k| {
            let t = 2.0 * k as f64 / m - 1.0;
            bessel_i0(beta * (1.0 - t * t).max(0.0).sqrt()) / bessel_i0(beta)
        })
        .collect()
}

/// The centred inverse 2-D DFT of a centred `N × N` response: `fftshift(ifft2(ifftshift(H)))`
/// for odd `N`, written with offsets from the centre, by rows then columns. Returns the
/// real and imaginary parts.
fn centred_inverse_dft(hd: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let n = MTF_SIZE;
    let c = (n / 2) as isize;
    let phase = |u: usize, p: usize| {
        let k = ((u as isize - c) * (p as isize - c)).rem_euclid(n as isize);
        let a = 2.0 * std::f64::consts::PI * k as f64 / n as f64;
        (a.cos(), a.sin())
    };
    // along the columns: T[u][q] = Σ_v Hd[u][v] e^{2πi v' q'/N}
    let (mut tr, mut ti) = (vec![0.0; n * n], vec![0.0; n * n]);
    for u in 0..n {
        for q in 0..n {
            for v in 0..n {
                let (co, si) = phase(v, q);
                tr[u * n + q] += hd[u * n + v] * co;
                ti[u * n + q] += hd[u * n + v] * si;
            }
        }
    }
    // along the rows: h[p][q] = (1/N²) Σ_u T[u][q] e^{2πi u' p'/N}
    let (mut hr, mut hi) = (vec![0.0; n * n], vec![0.0; n * n]);
    let scale = 1.0 / (n * n) as f64;
    for p in 0..n {
        for q in 0..n {
            let (mut re, mut im) = (0.0, 0.0);
            for u in 0..n {
                let (co, si) = phase(u, p);
                let (a, b) = (tr[u * n + q], ti[u * n + q]);
                re += a * co - b * si;
                im += a * si + b * co;
            }
            hr[p * n + q] = re * scale;
            hi[p * n + q] = im * scale;
        }
    }
    (hr, hi)
}

/// One band's kernel from its Nyquist gain.
fn mtf_kernel(gain: f64) -> Vec<f64> {
    let n = MTF_SIZE;
    let (h, _imaginary) = centred_inverse_dft(&gaussian_response(gain));
    let window = kaiser(n, 0.5);
    // rotate by 180° and window along the columns
    let mut h: Vec<f64> = (0..n * n)
        .map(|k| h[n * n - 1 - k] * window[k % n])
        .collect();
    let top = h.iter().fold(0.0f64, |m, &v| m.max(v));
    h.iter_mut().for_each(|v| *v = v.clamp(0.0, top));
    let total: f64 = h.iter().sum();
    h.iter_mut().for_each(|v| *v /= total);
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_close;

    #[test]
    fn kernels_are_non_negative_normalised_and_point_symmetric() {
        let n = MTF_SIZE;
        for sensor in Sensor::ALL {
            let ks = mtf_kernels(sensor);
            assert_eq!(ks.len(), sensor.bands());
            for k in ks {
                assert_eq!(k.len(), n * n);
                assert!(k.iter().all(|&v| v >= 0.0 && v.is_finite()));
                assert_close(k.iter().sum(), 1.0, 1e-13, 0.0, "kernel sum");
                for i in 0..n {
                    for j in 0..n {
                        let (a, b) = (k[i * n + j], k[(n - 1 - i) * n + (n - 1 - j)]);
                        assert_close(a, b, 0.0, 1e-15, "180° symmetry");
                    }
                }
                // the peak is at the centre
                let top = k.iter().fold(0.0f64, |m, &v| m.max(v));
                assert_eq!(k[n * n / 2], top);
            }
        }
    }

    #[test]
    fn the_gaussian_stage_has_the_gain_at_the_ms_nyquist_frequency() {
        for sensor in Sensor::ALL {
            for &g in sensor.nyquist_gains() {
                let s = frequency_sigma(g);
                assert_close(s, 5.0 / (-2.0 * g.ln()).sqrt(), 1e-14, 0.0, "σ_b");
                let hd = gaussian_response(g);
                // 5 bins from DC along either axis, and DC itself
                assert_close(hd[20 * 41 + 25], g, 1e-13, 0.0, "Hd at Nyquist (column)");
                assert_close(hd[15 * 41 + 20], g, 1e-13, 0.0, "Hd at Nyquist (row)");
                assert_eq!(hd[20 * 41 + 20], 1.0);
            }
        }
    }

    /// An independent check of the whole recipe: the finished kernel's own frequency
    /// response (a direct DFT of it) is close to the designed gain at the MS Nyquist
    /// frequency. The window and the clipping move it a little, so the tolerance is loose.
    #[test]
    fn the_kernels_frequency_response_meets_the_gain() {
        let n = MTF_SIZE;
        for sensor in Sensor::ALL {
            for (k, &g) in mtf_kernels(sensor).iter().zip(sensor.nyquist_gains()) {
                let response = |fu: f64, fv: f64| {
                    let (mut re, mut im) = (0.0, 0.0);
                    for p in 0..n {
                        for q in 0..n {
                            let a = -2.0
                                * std::f64::consts::PI
                                * (fu * (p as f64 - 20.0) + fv * (q as f64 - 20.0));
                            re += k[p * n + q] * a.cos();
                            im += k[p * n + q] * a.sin();
                        }
                    }
                    (re * re + im * im).sqrt()
                };
                assert_close(response(0.0, 0.0), 1.0, 1e-12, 0.0, "DC gain");
                let bin = 5.0 / n as f64;
                assert_close(response(bin, 0.0), g, 0.0, 0.01, "gain along the rows");
                assert_close(response(0.0, bin), g, 0.0, 0.01, "gain along the columns");
            }
        }
    }

    #[test]
    fn the_window_and_the_bessel_series() {
        assert_close(bessel_i0(0.0), 1.0, 0.0, 0.0, "I0(0)");
        // I0(1) = 1.2660658777520082 (Abramowitz & Stegun, table 9.8)
        assert_close(bessel_i0(1.0), 1.266_065_877_752_008_2, 1e-15, 0.0, "I0(1)");
        let w = kaiser(41, 0.5);
        assert_close(w[20], 1.0, 1e-15, 0.0, "window centre");
        assert_close(w[0], 1.0 / bessel_i0(0.5), 1e-15, 0.0, "window end");
        assert_close(w[3], w[37], 1e-15, 0.0, "window symmetry");
    }

    #[test]
    fn gains_and_betas() {
        assert_eq!(Sensor::Wv2.bands(), 8);
        assert_eq!(Sensor::Ikonos.bands(), 4);
        assert_eq!(Sensor::Ge1.zpnn_beta(), 0.25);
        assert_eq!(Sensor::Wv3.zpnn_beta(), 0.36);
    }
}
