//! The synthetic batch `losskit gpw` weighs: embeddings around Gaussian cluster centres,
//! from a small seeded generator (the same seed, the same batch, on every platform).

/// The spread of each synthetic cluster around its centre (the centres are standard
/// normal): close enough that some negatives are harder than some positives.
const CLUSTER_SPREAD: f64 = 0.9;

/// SplitMix64: a small, seeded, reproducible generator (std has none).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in the open interval (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller, one of the pair).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// `n` embeddings `[n, dim]` (row-major) around `classes` standard-normal centres, each
/// `CLUSTER_SPREAD` away in every coordinate on average; embedding `i` is in cluster
/// `i mod classes`, which is its label.
pub fn synthetic(n: usize, classes: usize, dim: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = SplitMix64(seed);
    let centres: Vec<f64> = (0..classes * dim).map(|_| rng.normal()).collect();
    let mut embeddings = Vec::with_capacity(n * dim);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % classes;
        labels.push(c as f64);
        for x in &centres[c * dim..(c + 1) * dim] {
            embeddings.push(x + CLUSTER_SPREAD * rng.normal());
        }
    }
    (embeddings, labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_its_reference_sequence() {
        // the first outputs for seed 0 of the published SplitMix64
        let mut rng = SplitMix64(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn the_batch_has_its_shape_labels_and_seed() {
        let (e, y) = synthetic(7, 3, 2, 5);
        assert_eq!(e.len(), 14);
        assert_eq!(y, [0.0, 1.0, 2.0, 0.0, 1.0, 2.0, 0.0]);
        assert_eq!(synthetic(7, 3, 2, 5), (e.clone(), y));
        assert_ne!(synthetic(7, 3, 2, 6).0, e);
    }

    #[test]
    fn normal_draws_have_mean_zero_and_unit_variance() {
        let mut rng = SplitMix64(42);
        let xs: Vec<f64> = (0..20_000).map(|_| rng.normal()).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        // standard errors: 1/√20000 ≈ 0.007 for the mean, ≈ 0.01 for the variance
        assert!(mean.abs() < 0.03, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
    }
}
