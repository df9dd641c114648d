//! Softmax cross-entropy.

use crate::loss;

/// Softmax cross-entropy: the negative log-likelihood of the label under the softmax of
/// the logits, averaged over the batch.
///
/// ```text
/// L = (1/N) Σᵢ [ logsumexp_k z[i][k] − z[i][y[i]] ]
/// ```
///
/// The logsumexp is computed max-shifted, so logits of any magnitude are safe. Its
/// derived gradient is `(softmax(z[i]) − onehot(y[i])) / N`.
///
/// **Reference:** the standard multinomial logistic loss; agrees with dfdx's
/// `cross_entropy_with_logits_loss` given one-hot targets.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let z: Tensor<Rank2<2, 3>, f64, _> = dev.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]]);
/// let loss = SoftmaxCrossEntropy::default().forward(z.leaky_trace(), &[0, 2]);
/// assert!(loss.array() > 0.0);
/// let grads = loss.backward();
/// ```
#[loss(logits)]
pub fn softmax_cross_entropy(z: Logits, y: Labels) -> PerSample {
    logsumexp(classes, |k| z[i][k]) - z[i][y[i]]
}

#[cfg(test)]
mod tests {
    use dfdx::losses::cross_entropy_with_logits_loss;
    use dfdx::prelude::*;

    use super::*;
    use crate::testing::*;
    use crate::{Loss, Real};

    /// `(1/N) Σᵢ [ln Σ_k e^{z[i][k]} − z[i][y[i]]]`, max-shifted, with plain loops.
    fn naive(z: &[f64], c: usize, y: &[usize]) -> f64 {
        let n = y.len();
        let mut total = 0.0;
        for i in 0..n {
            let row = &z[i * c..(i + 1) * c];
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let mut s = 0.0;
            for &v in row {
                s += (v - m).exp();
            }
            total += m + s.ln() - row[y[i]];
        }
        total / n as f64
    }

    /// Random logits with a few of magnitude 50 (and one row that is all ±50).
    fn case(rng: &mut Rng, n: usize, c: usize) -> (Vec<f64>, Vec<usize>) {
        let (mut z, y) = random_logits(rng, n, c, 4.0);
        for (k, v) in z.iter_mut().take(c).enumerate() {
            *v = if k % 2 == 0 { 50.0 } else { -50.0 };
        }
        let len = z.len();
        z[len - 1] = -50.0;
        z[len / 2] = 50.0;
        (z, y)
    }

    /// Value and tape gradient against dfdx's `cross_entropy_with_logits_loss` with
    /// one-hot target probabilities, on any rank-2 shape.
    fn check_against_dfdx<S, E>(shape: S, z: &[f64], y: &[usize], tol: f64)
    where
        S: Shape,
        E: Dtype + Real,
        Cpu: Device<E>,
    {
        let dev: Cpu = Default::default();
        let dims = shape.concrete();
        let c = dims.as_ref()[1];
        let zt: Tensor<S, E, Cpu> =
            dev.tensor_from_vec(z.iter().map(|&v| <E as Real>::from_f64(v)).collect(), shape);
        let mut onehot = vec![<E as Real>::zero(); z.len()];
        for (i, &label) in y.iter().enumerate() {
            onehot[i * c + label] = <E as Real>::one();
        }
        let target: Tensor<S, E, Cpu> = dev.tensor_from_vec(onehot, shape);

        let ours = SoftmaxCrossEntropy::new().forward(zt.leaky_trace(), y);
        let theirs = cross_entropy_with_logits_loss(zt.leaky_trace(), target);
        let (v_ours, v_theirs) = (ours.array().to_f64(), theirs.array().to_f64());
        assert_close(
            v_ours,
            v_theirs,
            tol,
            tol,
            &format!("value, z={z:?} y={y:?}"),
        );

        let g_ours = ours.backward().get(&zt).as_vec();
        let g_theirs = theirs.backward().get(&zt).as_vec();
        for j in 0..z.len() {
            assert_close(
                g_ours[j].to_f64(),
                g_theirs[j].to_f64(),
                0.0,
                tol,
                &format!("gradient [{j}], z={z:?} y={y:?}"),
            );
        }

        // a NoneTape input gives the same value
        let untaped: f64 = SoftmaxCrossEntropy::new()
            .forward(zt.clone(), y)
            .array()
            .to_f64();
        assert_eq!(untaped, v_ours, "NoneTape and OwnedTape values differ");
    }

    #[test]
    fn agrees_with_dfdx_on_static_shapes() {
        let mut rng = Rng::new(41);
        for _ in 0..4 {
            let (z, y) = case(&mut rng, 4, 5);
            check_against_dfdx::<Rank2<4, 5>, f32>(Default::default(), &z, &y, 1e-5);
            check_against_dfdx::<Rank2<4, 5>, f64>(Default::default(), &z, &y, 1e-10);
        }
        let (z, y) = random_logits(&mut rng, 1, 2, 3.0);
        check_against_dfdx::<Rank2<1, 2>, f64>(Default::default(), &z, &y, 1e-10);
    }

    #[test]
    fn agrees_with_dfdx_on_dynamic_shapes() {
        let mut rng = Rng::new(42);
        for (n, c) in [(1, 3), (2, 2), (5, 7), (16, 10), (3, 1)] {
            let (z, y) = if c > 1 {
                case(&mut rng, n, c)
            } else {
                random_logits(&mut rng, n, c, 4.0)
            };
            check_against_dfdx::<(usize, usize), f32>((n, c), &z, &y, 1e-5);
            check_against_dfdx::<(usize, usize), f64>((n, c), &z, &y, 1e-10);
        }
        // a mixed static/dynamic shape works too
        let (z, y) = case(&mut rng, 3, 4);
        check_against_dfdx::<(usize, Const<4>), f64>((3, Const), &z, &y, 1e-10);
    }

    #[test]
    fn value_matches_a_naive_loop() {
        let mut rng = Rng::new(43);
        let loss = SoftmaxCrossEntropy::new();
        for (n, c, scale) in [(1, 2, 1.0), (4, 3, 3.0), (9, 6, 50.0), (3, 4, 1000.0)] {
            let (z, y) = random_logits(&mut rng, n, c, scale);
            let got = logits_value::<f64, _>(&loss, &z, c, &y).unwrap();
            assert_close(
                got,
                naive(&z, c, &y),
                1e-13,
                1e-13,
                &format!("z={z:?} y={y:?}"),
            );
            assert!(got >= 0.0);
        }
        // uniform logits: ln C exactly
        let got = logits_value::<f64, _>(&loss, &[0.7; 12], 4, &[0, 1, 3]).unwrap();
        assert_close(got, 4.0f64.ln(), 1e-15, 0.0, "uniform logits");
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = Rng::new(44);
        let loss = SoftmaxCrossEntropy::new();
        for (n, c) in [(1, 2), (3, 4), (6, 5)] {
            let (z, y) = random_logits(&mut rng, n, c, 3.0);
            check_logits_gradient_fd(&loss, &z, c, &y, 1e-7);
            let (z, y) = case(&mut rng, n, c);
            check_logits_gradient_fd(&loss, &z, c, &y, 1e-6);
        }
    }

    /// The doc: the gradient is `(softmax(z[i]) − onehot(y[i])) / N`; each row of it sums
    /// to zero and adding a constant to a row changes nothing.
    #[test]
    fn gradient_is_softmax_minus_onehot_and_rows_are_shift_invariant() {
        let mut rng = Rng::new(45);
        let loss = SoftmaxCrossEntropy::new();
        let (n, c) = (5, 6);
        let (z, y) = case(&mut rng, n, c);
        let (v, g) = logits_value_and_grad::<f64, _>(&loss, &z, c, &y);
        for i in 0..n {
            let row = &z[i * c..(i + 1) * c];
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
            let mut row_sum = 0.0;
            for k in 0..c {
                let want = ((row[k] - m).exp() / s - if k == y[i] { 1.0 } else { 0.0 }) / n as f64;
                assert_close(g[i * c + k], want, 1e-12, 1e-16, &format!("[{i}][{k}]"));
                row_sum += g[i * c + k];
            }
            assert!(row_sum.abs() < 1e-15, "row {i} sums to {row_sum}");
        }
        let shifted: Vec<f64> = z
            .iter()
            .enumerate()
            .map(|(j, v)| v + 10.0 * (j / c) as f64 - 7.0)
            .collect();
        let (vs, gs) = logits_value_and_grad::<f64, _>(&loss, &shifted, c, &y);
        assert_close(vs, v, 1e-13, 1e-13, "shifted value");
        for j in 0..z.len() {
            assert_close(gs[j], g[j], 1e-9, 1e-15, "shifted gradient");
        }
    }

    #[test]
    fn f32_agrees_with_f64() {
        let mut rng = Rng::new(46);
        let loss = SoftmaxCrossEntropy::new();
        for (n, c) in [(2, 3), (8, 10)] {
            let (z, y) = random_logits(&mut rng, n, c, 5.0);
            check_logits_precisions(&loss, &z, c, &y, 1e-4);
            let (z, y) = case(&mut rng, n, c);
            check_logits_precisions(&loss, &z, c, &y, 1e-4);
        }
    }

    /// The doc: logits of any magnitude are safe.
    #[test]
    fn huge_logits_stay_finite() {
        let z = [1e4, -1e4, 0.0, 3e4, 3e4, -3e4];
        for y in [[0usize, 2], [1, 0]] {
            let (v, g) = logits_value_and_grad::<f64, _>(&SoftmaxCrossEntropy::new(), &z, 3, &y);
            assert_close(v, naive(&z, 3, &y), 1e-15, 0.0, "f64 value");
            assert!(g.iter().all(|g| g.is_finite()), "{g:?}");
            let (v, g) = logits_value_and_grad::<f32, _>(&SoftmaxCrossEntropy::new(), &z, 3, &y);
            assert!(
                v.is_finite() && g.iter().all(|g| g.is_finite()),
                "{v} {g:?}"
            );
        }
    }
}
