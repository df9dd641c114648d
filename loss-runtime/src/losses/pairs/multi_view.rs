//! Multi-view contrastive losses (Koromilas et al., 2025): MV-InfoNCE and MV-DHEL over
//! `K` views of `N` items, in log space.
//!
//! Both take [`Views`](crate::Views)`([K, N, d])` with [`SelfSupervised`](crate::SelfSupervised)
//! (or the flat rows `[K·N, d]` with item ids as labels). Rows are L2-normalised inside
//! the loss (the cosine metric), as in the official code.

use crate::loss;

#[cfg(test)]
mod tests;

/// MV-InfoNCE: one InfoNCE term per item, with every ordered pair of its views in the
/// numerator and every other row of the batch in the denominator.
///
/// ```text
/// u_{n,l}  = view l of item n, L2-normalised; s = u·u'
/// pos_n    = Σ_{l ≠ l'} exp(s(u_{n,l}, u_{n,l'})/τ)             (ordered pairs)
/// neg_n    = Σ_l Σ_{(m,l') ≠ (n,l)} exp(s(u_{n,l}, u_{m,l'})/τ) (every other row)
/// L        = (1/N) Σ_n −log(pos_n / neg_n)
/// ```
///
/// Written per row `i` as `logsumexp` over the rows `q` of `i`'s item of a `logsumexp`
/// over `others(q)` (resp. `pos(q)`), so it is finite for any τ > 0: the official code
/// exponentiates directly and overflows in f32 below τ ≈ 0.012. Every row of an item
/// carries the item's term, and the mean over the `K·N` rows is the mean over items.
/// `pos_n ≤ neg_n`, so `L ≥ 0`.
///
/// **Differences from the paper:** as the official code, whose README formula's
/// denominator has only the pairs across views: the code (followed here) also counts the
/// other items in the same view, and minimises `−log(pos/neg)` (the README writes `+`).
/// Under item labels (supervised), an "item" is every row of the class.
///
/// **Defaults:** τ = 0.5 (the official CIFAR-10/100 and ImageNet-100 configs; ImageNet-1k
/// uses 0.1). Cost: O(K·N·M) on top of the similarity matrix; it reads other anchors' rows,
/// so it runs on the whole matrix, never in row blocks.
///
/// **Reference:** Koromilas, Bouritsas, Giannakopoulos, Nicolaou, Panagakis. *A
/// Principled Framework for Multi-View Contrastive Learning*, 2025; official code
/// `pakoromilas/Multi-View-CL`, `models/losses.py::MVINFONCE`.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let z: Tensor<Rank3<3, 4, 8>, f64, _> = dev.sample_normal();
/// let loss = MvInfonce::default().forward(Views(z), &SelfSupervised);
/// assert!(loss.array() >= 0.0);
/// ```
#[loss(
    pairs,
    metric = Cosine,
    paper = "A Principled Framework for Multi-View Contrastive Learning (Koromilas et al., 2025)"
)]
pub fn mv_infonce(
    s: Similarity,
    y: Labels,
    #[hyper(default = 0.5, positive, doc = "τ, the temperature")] tau: f64,
) -> PerAnchor {
    let negatives = logsumexp(samples.filter(|q| y[q] == y[i]), |q| {
        logsumexp(others(q), |j| s[q][j] / tau)
    });
    let positives = logsumexp(samples.filter(|q| y[q] == y[i]), |q| {
        logsumexp(pos(q), |j| s[q][j] / tau)
    });
    negatives - positives
}

/// MV-DHEL: decoupled alignment of each item's views, and uniformity inside each view.
///
/// ```text
/// pos_n    = Σ_{l < l'} exp(s(u_{n,l}, u_{n,l'})/τ)             (unordered pairs)
/// neg_{n,l} = Σ_{m ≠ n} exp(s(u_{n,l}, u_{m,l})/τ)               (the other items, same view)
/// L        = (1/N) Σ_n [ −log pos_n + Σ_l log neg_{n,l} ]
/// ```
///
/// Per row `i`: `K·logsumexp(same_view(i), s/τ)` minus the item's `log pos`, which is a
/// `logsumexp` over the rows of the item of a `logsumexp` over `pos(q)`, less `ln 2` (each
/// unordered pair counted twice). `K = 1 + |pos(i)|`. The product of the K denominators in
/// the official code becomes a sum of logs, so it neither overflows for small τ nor for
/// large K. With K = 2 it is DHEL (`pakoromilas/DHEL-KCL`, `include_augs=True`).
///
/// **Differences from the paper:** the README's denominator includes `m = n` (a constant
/// `e^{1/τ}` per view); the code (followed here) leaves it out; the sign is the code's.
/// Under item labels (supervised), an "item" is every row of the class and `K` counts
/// them.
///
/// **Defaults:** τ = 0.5 (as [`MvInfonce`]). Runs on the whole similarity matrix.
///
/// **Reference:** Koromilas et al., 2025 (as [`MvInfonce`]);
/// `models/losses.py::MVDHEL`.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let z: Tensor<Rank3<2, 5, 8>, f64, _> = dev.sample_normal();
/// let loss = MvDhel::default().forward(Views(z), &SelfSupervised);
/// assert!(loss.array().is_finite());
/// ```
#[loss(
    pairs,
    metric = Cosine,
    paper = "A Principled Framework for Multi-View Contrastive Learning (Koromilas et al., 2025)"
)]
pub fn mv_dhel(
    s: Similarity,
    y: Labels,
    #[hyper(default = 0.5, positive, doc = "τ, the temperature")] tau: f64,
) -> PerAnchor {
    let views = 1.0 + len(pos(i));
    let uniformity = logsumexp(same_view(i), |j| s[i][j] / tau);
    let alignment = logsumexp(samples.filter(|q| y[q] == y[i]), |q| {
        logsumexp(pos(q), |j| s[q][j] / tau)
    }) - ln(2.0);
    views * uniformity - alignment
}
