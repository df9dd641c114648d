//! Random per-sample quantities as explicit inputs: the seeded helper that makes them.
//!
//! A loss that needs randomness (EnsLoss's random derivative, ElasticFace's random
//! margins) holds no generator and touches nothing global: it declares the draws as an
//! input (`eps: Given<samples>`), and the caller makes them once per training step with
//! [`standard_normal_draws`] from a generator the caller owns. A test, or a second run,
//! passes the same draws and gets the same loss and gradient.
//!
//! ```
//! use loss_runtime::standard_normal_draws;
//! use rand::{rngs::StdRng, SeedableRng};
//!
//! let mut rng = StdRng::seed_from_u64(42); // the run's generator, owned by the caller
//! let step1: Vec<f32> = standard_normal_draws(&mut rng, 128);
//! let step2: Vec<f32> = standard_normal_draws(&mut rng, 128); // fresh draws each step
//! assert_ne!(step1, step2);
//! // the same seed replays the same sequence of steps
//! let mut again = StdRng::seed_from_u64(42);
//! assert_eq!(step1, standard_normal_draws::<f32, _>(&mut again, 128));
//! assert_eq!(step2, standard_normal_draws::<f32, _>(&mut again, 128));
//! ```

use crate::core::real::Real;

/// `n` independent standard normal draws N(0, 1), from `rng`: call it once per training
/// step. Two generators seeded alike give the same draws, so a run is reproducible;
/// nothing global is touched.
///
/// Box–Muller on `rng`'s uniforms, in f64, then rounded to `E`: each pair of uniforms
/// gives two draws (an odd `n` discards the last), so `n` draws consume `2·⌈n/2⌉`
/// uniforms of `rng`.
pub fn standard_normal_draws<E: Real, R: rand::Rng + ?Sized>(rng: &mut R, n: usize) -> Vec<E> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        // 1 − U lies in (0, 1], so the logarithm is finite
        let radius = (-2.0 * (1.0 - rng.gen::<f64>()).ln()).sqrt();
        let angle = core::f64::consts::TAU * rng.gen::<f64>();
        out.push(<E as Real>::from_f64(radius * angle.cos()));
        out.push(<E as Real>::from_f64(radius * angle.sin()));
    }
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn draws_are_reproducible_and_standard_normal() {
        let a: Vec<f64> = standard_normal_draws(&mut StdRng::seed_from_u64(3), 7);
        assert_eq!(
            a,
            standard_normal_draws::<f64, _>(&mut StdRng::seed_from_u64(3), 7)
        );
        assert_ne!(
            a,
            standard_normal_draws::<f64, _>(&mut StdRng::seed_from_u64(4), 7)
        );
        assert!(standard_normal_draws::<f32, _>(&mut StdRng::seed_from_u64(3), 0).is_empty());
        let many: Vec<f64> = standard_normal_draws(&mut StdRng::seed_from_u64(9), 40_001);
        let n = many.len() as f64;
        let mean = many.iter().sum::<f64>() / n;
        let var = many.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let tail = many.iter().filter(|x| x.abs() > 1.96).count() as f64 / n;
        assert!(
            mean.abs() < 0.02 && (var - 1.0).abs() < 0.03,
            "{mean} {var}"
        );
        assert!((tail - 0.05).abs() < 0.006, "{tail}");
    }
}
