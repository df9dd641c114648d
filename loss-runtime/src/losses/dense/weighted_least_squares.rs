//! Weighted least squares with optimal (inverse-Christoffel) weights, the estimator whose
//! sampling designs Nouy & Michel (2023) analyse. The paper contributes samplers and
//! bounds, not a loss; this is the risk they minimise.

use crate::loss;

#[cfg(test)]
mod tests;

/// Weighted MSE: each sample's squared error (summed over its elements) times its weight,
/// averaged over the samples.
///
/// ```text
/// L(v) = (1/n) Σᵢ wᵢ · ‖ v(xᵢ) − f(xᵢ) ‖²
/// ```
///
/// With the optimal weights `w(x) = m / k_m(x)`, `k_m(x) = Σⱼ φⱼ(x)²` (see
/// [`christoffel_weights`]) and points drawn from `(k_m/m)·dμ` (i.i.d., a projection DPP
/// or volume sampling), the minimiser over `V_m = span{φ₁ … φ_m}` is the quasi-optimal
/// weighted least-squares projection the paper studies. The gradient is `2wᵢ(vᵢ − fᵢ)/n`.
///
/// **Call:** `loss.forward((prediction, weights), &target)` with `prediction` and
/// `target` `[n]` (or `[n, E]`) and `weights` `[n]`, non-negative (a negative weight is a
/// [`LossError::Requirement`](crate::LossError::Requirement)).
///
/// **Reference:** Nouy, Michel. *Weighted least-squares approximation with determinantal
/// point processes and generalized volume sampling*, 2023. No official code; the estimator
/// is the classical one the paper takes as given. The samplers are out of scope: they are
/// not differentiable and not part of a loss.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let v: Tensor<Rank1<3>, f64, _> = dev.tensor([1.0, 2.0, 0.5]);
/// let f: Tensor<Rank1<3>, f64, _> = dev.tensor([0.0, 2.5, 0.5]);
/// let loss = WeightedMse::default().forward((v.leaky_trace(), vec![2.0, 4.0, 1.0]), &f);
/// assert!((loss.array() - (2.0 * 1.0 + 4.0 * 0.25) / 3.0).abs() < 1e-12);
/// ```
#[loss(
    dense,
    paper = "Weighted least-squares approximation with determinantal point processes and generalized volume sampling (Nouy & Michel, 2023)"
)]
pub fn weighted_mse(x: Prediction, t: Target, w: Given<samples>) -> PerSample {
    require(w[i] >= 0.0, "each sample's weight must be non-negative");
    w[i] * sum(elements, |e| sq(x[i][e] - t[i][e]))
}

/// The optimal weighted-least-squares weights `w(xᵢ) = m / Σⱼ φⱼ(xᵢ)²` of `n` points,
/// from `phi`, the `m` basis functions (orthonormal in L²(μ)) evaluated at the points,
/// row-major `[n, m]`. `m/k_m` is the inverse of the Christoffel function times `m`; under
/// the optimal sampling density `(k_m/m)·dμ` the weights have mean 1.
///
/// `phi` whose length is not a multiple of `m`, a non-finite entry, or a point where
/// every basis function vanishes (`k_m = 0`, no weight) is an error.
pub fn christoffel_weights(phi: &[f64], m: usize) -> Result<Vec<f64>, crate::LossError> {
    if m == 0 || phi.is_empty() || phi.len() % m != 0 {
        return Err(crate::LossError::BadShape {
            input: "phi",
            shape: vec![phi.len()],
            expected: "[n, m]: the m basis functions at each of n points, row-major",
        });
    }
    if let Some(index) = phi.iter().position(|v| !v.is_finite()) {
        return Err(crate::LossError::NonFinite {
            input: "phi",
            index,
            position: vec![index / m, index % m],
            value: phi[index],
        });
    }
    phi.chunks(m)
        .enumerate()
        .map(|(i, row)| {
            let k: f64 = row.iter().map(|v| v * v).sum();
            if k > 0.0 {
                Ok(m as f64 / k)
            } else {
                Err(crate::LossError::Requirement {
                    loss: "christoffel_weights",
                    message:
                        "every basis function vanishes at this point (k_m = 0): it has no weight",
                    sample: Some(i),
                })
            }
        })
        .collect()
}
