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
/// use losskit::prelude::*;
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
