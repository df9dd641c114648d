//! Contrastive (InfoNCE-type) losses over the pairs of a batch: the NT-Xent baseline of
//! SimCLR, the standard contrastive loss with temperature (InfoNCE), and the losses and
//! metrics of "Understanding the Behaviour of Contrastive Loss" (Wang & Liu, CVPR 2021):
//! the simple, hard and hard-simple contrastive losses, uniformity and tolerance.
//!
//! All of them are pairs losses: the positives of an anchor are the references that share
//! its label and its negatives those that do not. Two views of an item share a label, as
//! in pytorch-metric-learning: stack the views as the batch (`[2B, d]`, labels
//! `[0..B, 0..B]`), or pass the queries against their keys and a queue, `WithRefs(q, keys ++
//! queue)` with `PairLabels` (the keys labelled `0..B`, each queue entry a label of its
//! own); a queue or memory bank is a reference tensor without a tape.
//!
//! The hard variants keep the `k_hard` most similar negatives of each anchor; the language
//! has no top-k, so the rank of a negative is counted with a nested sum over the anchor's
//! negatives, `O(M)` per pair and `O(N·M²)` per batch (refused above `max_work`).

use crate::loss;

/// NT-Xent (normalised temperature-scaled cross-entropy), SimCLR's loss, as
/// pytorch-metric-learning's `NTXentLoss`: every positive pair is a softmax
/// classification of its positive against the anchor's negatives.
///
/// ```text
/// l_ap = −ln( e^{S_ap/τ} / (e^{S_ap/τ} + Σ_{n∈neg(a)} e^{S_an/τ}) )
///      = softplus( logsumexp_{n∈neg(a)}(S_an/τ) − S_ap/τ )
/// P    = { (a, p) : p ∈ pos(a) }                     (every positive pair)
/// L    = (1/|P|) Σ_{(a,p)∈P} l_ap                     (L = 0 when P is empty)
/// ```
///
/// The softplus form is exact and stable for any τ: the log-sum-exp is max-shifted, and
/// an anchor without negatives gives `softplus(−∞) = 0` for its pairs (which still count
/// in `|P|`, as in PML, where its terms are `ln(1 + tiny) ≈ 0`).
///
/// **Reduction: the mean over all positive pairs, as PML.** PML's `NTXentLoss` returns one
/// loss per positive pair (`reduction_type = "pos_pair"`) and its default `MeanReducer`
/// takes their plain mean, so an anchor with three positives weighs three times one with
/// a single positive; anchors without a positive do not count. With two views of each
/// item (each anchor has exactly one positive) this is the mean over anchors, and the loss
/// equals [`InfoNce`] at the same τ. Because `|P|` is a sum over the whole batch, this
/// loss is not a mean of per-anchor terms and does not take the row-block path of large
/// batches: it always builds the whole similarity matrix (see `BENCHMARKS.md`).
///
/// **Defaults:** τ = 0.07 (PML's default; SimCLR's paper uses 0.1 to 1.0 and its code 0.1
/// or 0.5), cosine similarity (PML's default distance).
///
/// **Reference:** Chen, Kornblith, Norouzi, Hinton. *A Simple Framework for Contrastive
/// Learning of Visual Representations.* ICML 2020 (the loss is Sohn's N-pair loss with a
/// temperature, NeurIPS 2016). **Reference code:** `KevinMusgrave/pytorch-metric-learning`,
/// `src/pytorch_metric_learning/losses/ntxent_loss.py::NTXentLoss` (on `GenericPairLoss`,
/// with `get_all_pairs_indices`: the self-pair is not a positive of the batch, but is one
/// against a separate reference set). Differences: PML computes `−ln(e^a/(e^a + Σ) +
/// tiny)` with `tiny` the dtype's smallest normal number, which caps a pair's loss at
/// `−ln(tiny)` (≈ 87.3 in f32, 708.4 in f64); the softplus form here has no cap. Below the
/// cap the two agree to rounding.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// // two views of two items: rows 0 and 2 are item 0, rows 1 and 3 item 1
/// let e: Tensor<Rank2<4, 3>, f64, _> =
///     dev.tensor([[1.0, 0.1, 0.0], [0.0, 1.0, 0.2], [0.9, 0.3, 0.1], [0.1, 0.8, 0.4]]);
/// let loss = NtXent::default().forward(e.leaky_trace(), &[0, 1, 0, 1]);
/// assert!(loss.array() > 0.0);
/// let grads = loss.backward();
/// ```
#[loss(
    pairs,
    paper = "NT-Xent (Chen et al., SimCLR, ICML 2020), as pytorch-metric-learning's NTXentLoss"
)]
pub fn nt_xent(
    s: Similarity,
    y: Labels,
    #[hyper(default = 0.07, positive, doc = "τ: the temperature")] tau: f64,
) -> Scalar {
    let total = sum(samples, |i| {
        sum(pos(i), |j| {
            softplus(logsumexp(neg(i), |k| s[i][k] / tau) - s[i][j] / tau)
        })
    });
    let pairs = sum(samples, |i| len(pos(i)));
    select(pairs > 0.0, total / max(pairs, 1.0), 0.0)
}

/// The standard contrastive loss with temperature (InfoNCE), per anchor: the anchor's
/// positive is classified against every reference of another label, in-batch or queued.
///
/// ```text
/// l_i = (1/|pos(i)|) Σ_{p∈pos(i)} −ln( e^{S_ip/τ} / (e^{S_ip/τ} + Σ_{k∈neg(i)} e^{S_ik/τ}) )
///     = mean_{p∈pos(i)} softplus( logsumexp_{k∈neg(i)}(S_ik/τ) − S_ip/τ )
/// L   = (1/N) Σ_i l_i                     (an anchor without a positive has l_i = 0)
/// ```
///
/// With one positive per anchor — the other view, `S_ii` in the paper's notation — this is
/// the paper's `L(x_i) = −ln( e^{s_ii/τ} / (e^{s_ii/τ} + Σ_{k≠i} e^{s_ik/τ}) )`, averaged over
/// the anchors. Its gradient is hardness-aware: `∂l_i/∂S_ii = −(1 − P_ii)/τ` and
/// `∂l_i/∂S_ik = P_ik/τ` with `P_ik` the softmax of `S_i·/τ` over the positive and the
/// negatives, so every row of `∂l_i/∂S` sums to 0.
///
/// **Positives and negatives.** The positive is the reference sharing the anchor's label;
/// every reference of another label is a negative, a queue's entries included (give each a
/// label no anchor has). An anchor with several positives averages one term per positive
/// (each against the same negatives, as NT-Xent does); unlike [`NtXent`], the mean is then
/// taken over the anchors, so this loss is a mean of per-anchor terms and runs on large
/// batches in row blocks (neither `S` nor `∂L/∂S` whole). An anchor without a positive
/// contributes 0 and still counts in N; one without negatives contributes 0.
///
/// **Defaults:** τ = 0.2, the value the paper recommends as the compromise between
/// uniformity and tolerance (it studies 0.07, 0.2, 0.3, 0.7 and 1.0; 0.2 is also MoCo v2's);
/// cosine similarity (the paper's features are L2-normalised). Use [`NtXent`] for PML's
/// default τ = 0.07 and reduction.
///
/// **Reference:** van den Oord, Li, Vinyals. *Representation Learning with Contrastive
/// Predictive Coding.* arXiv 1807.03748, 2018; with the temperature as in Wu et al.
/// (CVPR 2018) and He et al. (MoCo, CVPR 2020); written as above in Wang & Liu,
/// *Understanding the Behaviour of Contrastive Loss*, CVPR 2021 (its first equation, as the
/// summaries we could read quote it). No official code for that paper is known.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// // MoCo-style: two queries against their two keys and a queue of three entries
/// let q: Tensor<Rank2<2, 2>, f64, _> = dev.tensor([[1.0, 0.1], [0.0, 1.0]]);
/// let keys_and_queue: Tensor<Rank2<5, 2>, f64, _> =
///     dev.tensor([[0.9, 0.2], [0.1, 1.0], [-1.0, 0.3], [0.5, 0.5], [0.2, -1.0]]);
/// let labels = PairLabels { labels: &[0, 1], ref_labels: &[0, 1, 2, 3, 4] };
/// let loss = InfoNce::default().forward(WithRefs(q.leaky_trace(), keys_and_queue), &labels);
/// let grads = loss.backward();
/// assert_eq!(grads.get(&q).shape(), &(Const::<2>, Const::<2>));
/// ```
#[loss(
    pairs,
    paper = "InfoNCE with temperature, the standard contrastive loss (as written by Wang & Liu, CVPR 2021)"
)]
pub fn info_nce(
    s: Similarity,
    y: Labels,
    #[hyper(default = 0.2, positive, doc = "τ: the temperature")] tau: f64,
) -> PerAnchor {
    mean(pos(i), |j| {
        softplus(logsumexp(neg(i), |k| s[i][k] / tau) - s[i][j] / tau)
    })
}

/// The simple contrastive loss of Wang & Liu: a linear loss, the positive similarity
/// against λ times the sum of the negative ones, which weighs every negative alike (it is
/// not hardness-aware).
///
/// ```text
/// l_i = −(1/|pos(i)|) Σ_{p∈pos(i)} S_ip + λ Σ_{k∈neg(i)} S_ik          (paper: −s_ii + λ Σ_{k≠i} s_ik)
/// L   = (1/N) Σ_i l_i
/// ```
///
/// Its gradient is constant: `∂L/∂S_ip = −1/(N·|pos(i)|)` on each positive and `λ/N` on
/// each negative, whatever the similarities. The loss is unbounded below on unnormalised
/// embeddings; use it with the cosine metric (the default).
///
/// **λ is UNVERIFIED.** The paper defines the loss with a weight λ on the negatives, but we
/// could not retrieve its text through our tools (only the abstract and third-party
/// summaries, which do not give λ), so the default λ = 1 is the spec's placeholder, not the
/// paper's value; set it with `with_lambda`.
///
/// **Reference:** Wang, Liu. *Understanding the Behaviour of Contrastive Loss.* CVPR 2021
/// (arXiv 2012.09740), where it serves as a loss without hardness-awareness. No official
/// code is known.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let s: Tensor<Rank2<2, 2>, f64, _> = dev.tensor([[1.0, 0.5], [0.5, 1.0]]);
/// let labels = PairLabels { labels: &[0, 1], ref_labels: &[0, 1] };
/// // l_0 = −1 + 0.5, l_1 = −1 + 0.5
/// let loss = SimpleContrastive::default().forward(Similarities(s), &labels);
/// assert_eq!(loss.array(), -0.5);
/// ```
#[loss(pairs, paper = "simple contrastive loss (Wang & Liu, CVPR 2021)")]
pub fn simple_contrastive(
    s: Similarity,
    y: Labels,
    #[hyper(
        default = 1.0,
        nonnegative,
        doc = "λ: the weight of the negative similarities (UNVERIFIED: the paper's value was not found)"
    )]
    lambda: f64,
) -> PerAnchor {
    lambda * sum(neg(i), |k| s[i][k]) - mean(pos(i), |j| s[i][j])
}

/// The hard contrastive loss of Wang & Liu: the standard contrastive loss whose
/// denominator keeps only each anchor's `k_hard` most similar negatives.
///
/// ```text
/// r_ik = |{ m ∈ neg(i) : S_im > S_ik, or S_im = S_ik and m < k }|   (the rank of k among i's negatives)
/// H_i  = { k ∈ neg(i) : r_ik < ⌊k_hard⌋ }                           (the min(k_hard, |neg(i)|) hardest)
/// l_i  = mean_{p∈pos(i)} softplus( logsumexp_{k∈H_i}(S_ik/τ) − S_ip/τ )
/// L    = (1/N) Σ_i l_i
/// ```
///
/// The selection is a constant to the gradient (a selected negative gets the standard
/// loss's weight `P_ik/τ`, the others 0). Ties are broken by the lower reference index, so
/// exactly `min(k_hard, |neg(i)|)` negatives are kept; with `k_hard ≥ |neg(i)|` for every
/// anchor the loss is [`InfoNce`]. The value jumps where two negatives swap ranks at the
/// boundary (the selection changes), so it is piecewise smooth.
///
/// **Cost.** The language has no top-k, so `r_ik` is counted with a nested sum over the
/// anchor's negatives: `O(M)` per pair, `O(N·M²)` per batch (8.6·10⁹ comparisons at
/// N = M = 2048; not measured here). A batch with `N·M²` above `max_work` (default 2e10)
/// is refused with `LossError::TooMuchWork` before any work.
///
/// **The threshold is UNVERIFIED.** The paper writes the denominator over the negatives with
/// `s_ik ≥ s_α^(i)`, a per-anchor threshold that keeps the most similar negatives (its
/// "informative interval"); we could not retrieve the paper's text through our tools to
/// learn whether `s_α^(i)` is a count, a fraction or a quantile, or its value. It is a
/// count here, `k_hard`, which has no sound default: the default keeps every negative
/// (`k_hard = 1e18`, so the loss is [`InfoNce`] until `with_k_hard` is called). Set it for
/// the size of your negative pool.
///
/// **Defaults:** τ = 0.2 (as [`InfoNce`]), `k_hard` = all (see above), cosine similarity.
///
/// **Reference:** Wang, Liu. *Understanding the Behaviour of Contrastive Loss.* CVPR 2021
/// (arXiv 2012.09740), where it tests explicit hard-negative sampling. No official code
/// is known.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let e: Tensor<Rank2<6, 2>, f64, _> = dev.tensor([
///     [1.0, 0.0], [0.0, 1.0], [-1.0, 0.2], [0.9, 0.1], [0.1, 0.9], [-0.9, 0.3],
/// ]);
/// let labels = [0, 1, 2, 0, 1, 2];
/// let all = HardContrastive::default().forward(e.clone(), &labels).array();
/// let hard = HardContrastive::default().with_k_hard(1.0).forward(e, &labels).array();
/// assert!(hard < all); // fewer negatives in each denominator
/// ```
#[loss(pairs, paper = "hard contrastive loss (Wang & Liu, CVPR 2021)")]
pub fn hard_contrastive(
    s: Similarity,
    y: Labels,
    #[hyper(default = 0.2, positive, doc = "τ: the temperature")] tau: f64,
    #[hyper(
        default = 1e18,
        positive,
        doc = "k_hard: the hardest negatives kept per anchor (a count, rounded down; \
               UNVERIFIED, no sound default: the default keeps them all)"
    )]
    k_hard: f64,
    #[hyper(
        default = 2e10,
        positive,
        doc = "the largest N·M² (anchors × references²) a batch may have: the ranks cost \
               O(N·M²) time; larger batches are refused"
    )]
    max_work: f64,
) -> PerAnchor {
    let kept = detach(floor(k_hard));
    mean(pos(i), |j| {
        softplus(
            logsumexp(
                neg(i).filter(|k| {
                    len(neg(i).filter(|m| s[i][m] > s[i][k] || (s[i][m] == s[i][k] && m < k)))
                        < kept
                }),
                |k| s[i][k] / tau,
            ) - s[i][j] / tau,
        )
    })
}

/// The hard simple contrastive loss of Wang & Liu: the simple (linear) loss over each
/// anchor's `k_hard` most similar negatives only.
///
/// ```text
/// H_i = the min(k_hard, |neg(i)|) most similar negatives of i   (as in HardContrastive)
/// l_i = −(1/|pos(i)|) Σ_{p∈pos(i)} S_ip + λ Σ_{k∈H_i} S_ik
/// L   = (1/N) Σ_i l_i
/// ```
///
/// The selection is a constant to the gradient: `−1/(N·|pos(i)|)` on each positive, `λ/N`
/// on each kept negative and 0 on the others. Cost and tie-breaking as
/// [`HardContrastive`]; with every negative kept (the default) it is [`SimpleContrastive`].
///
/// **UNVERIFIED:** λ and the threshold `s_α^(i)` (here the count `k_hard`), as in
/// [`SimpleContrastive`] and [`HardContrastive`]: we could not retrieve the paper's values.
/// **Defaults:** λ = 1 (the spec's placeholder), `k_hard` = all, cosine similarity.
///
/// **Reference:** Wang, Liu. *Understanding the Behaviour of Contrastive Loss.* CVPR 2021
/// (arXiv 2012.09740). No official code is known.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let s: Tensor<Rank2<1, 4>, f64, _> = dev.tensor([[0.9, 0.5, -0.25, 0.75]]);
/// let labels = PairLabels { labels: &[0], ref_labels: &[0, 1, 2, 3] };
/// // the two hardest negatives are 0.75 and 0.5: −0.9 + 1.25
/// let loss = HardSimpleContrastive::default().with_k_hard(2.0);
/// let value = loss.forward(Similarities(s), &labels).array();
/// assert!((value - 0.35).abs() < 1e-12);
/// ```
#[loss(pairs, paper = "hard simple contrastive loss (Wang & Liu, CVPR 2021)")]
pub fn hard_simple_contrastive(
    s: Similarity,
    y: Labels,
    #[hyper(
        default = 1.0,
        nonnegative,
        doc = "λ: the weight of the kept negative similarities (UNVERIFIED: the paper's value was not found)"
    )]
    lambda: f64,
    #[hyper(
        default = 1e18,
        positive,
        doc = "k_hard: the hardest negatives kept per anchor (a count, rounded down; \
               UNVERIFIED, no sound default: the default keeps them all)"
    )]
    k_hard: f64,
    #[hyper(
        default = 2e10,
        positive,
        doc = "the largest N·M² (anchors × references²) a batch may have: the ranks cost \
               O(N·M²) time; larger batches are refused"
    )]
    max_work: f64,
) -> PerAnchor {
    let kept = detach(floor(k_hard));
    lambda
        * sum(
            neg(i).filter(|k| {
                len(neg(i).filter(|m| s[i][m] > s[i][k] || (s[i][m] == s[i][k] && m < k))) < kept
            }),
            |k| s[i][k],
        )
        - mean(pos(i), |j| s[i][j])
}

/// Uniformity (Wang & Isola, ICML 2020), the metric Wang & Liu use to measure how evenly
/// the embeddings spread over the hypersphere: the log of the mean Gaussian potential
/// between every two of them. Lower is more uniform; labels are not read.
///
/// ```text
/// L_u = ln( mean_{i≠j} e^{−t·‖f_i − f_j‖²} ),   f = e/‖e‖
///     = ln( mean_i mean_{j∈others(i)} e^{2t(S_ij − 1)} )   (‖f_i − f_j‖² = 2 − 2·S_ij for cosine S)
/// ```
///
/// Computed as two nested max-shifted log-mean-exps (every anchor has the same number of
/// references, so the mean of the anchors' means is the mean over pairs); over `i ≠ j`,
/// which for the batch is the paper's `i < j` counted twice. Against a reference set it
/// is the mean over every (anchor, reference) pair. Known values: 0 when all embeddings
/// coincide (its maximum), `−4t = −8` for two antipodal ones. A batch of one embedding has
/// no pair: the loss is `−∞`, refused as `LossError::NonFiniteLoss`.
///
/// **Metric:** cosine (the default) gives the paper's normalised features; with
/// `Metric::SquaredEuclidean` the formula above would read distances as similarities, so
/// keep cosine. Being written with `#[loss]`, it is differentiable and can be trained on
/// (Wang & Isola's uniformity loss).
///
/// **Defaults:** t = 2 (Wang & Isola's and Wang & Liu's value).
///
/// **Reference:** Wang, Isola. *Understanding Contrastive Representation Learning through
/// Alignment and Uniformity on the Hypersphere.* ICML 2020; used as a metric in Wang, Liu.
/// *Understanding the Behaviour of Contrastive Loss.* CVPR 2021.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let e: Tensor<Rank2<2, 2>, f64, _> = dev.tensor([[1.0, 0.0], [-2.0, 0.0]]);
/// let u = Uniformity::default().forward(e, &[0, 1]).array();
/// assert!((u + 8.0).abs() < 1e-12); // antipodal: −4t
/// ```
#[loss(
    pairs,
    paper = "uniformity metric (Wang & Isola, ICML 2020; as used by Wang & Liu, CVPR 2021)"
)]
pub fn uniformity(
    s: Similarity,
    y: Labels,
    #[hyper(
        default = 2.0,
        positive,
        doc = "t: the scale of the Gaussian potential"
    )]
    t: f64,
) -> Scalar {
    logmeanexp(samples, |i| {
        logmeanexp(others(i), |j| 2.0 * t * (s[i][j] - 1.0))
    })
}

/// Tolerance (Wang & Liu), the mean similarity of the pairs of embeddings that share a
/// label: how close the contrastive loss lets semantically similar samples stay.
///
/// ```text
/// T = (1/|P|) Σ_{(i,j)∈P} S_ij,   P = { (i, j) : j ∈ pos(i) }   (T = 0 when P is empty)
/// ```
///
/// With cosine similarity (the default) `S_ij = f_iᵀf_j` of the normalised features. For
/// the batch, `pos(i)` leaves out `j = i`, so `P` is every ordered pair `i ≠ j` of the same
/// class; 1 when every class's embeddings coincide. The labels are the evaluation's class
/// labels, not the views' item ids (tolerance is an evaluation metric).
///
/// **Normalisation is UNVERIFIED.** We average over the same-class pairs only (the
/// paper's words, as far as the summaries we could read go: "the mean similarities of
/// samples belonging to the same class"; a third-party reimplementation,
/// `shanwangshan/uniformity_tolerance`, does the same). If the paper's expectation runs
/// over all pairs with an indicator of the same class, its T is ours times the fraction of
/// same-class pairs; we could not retrieve the paper's text to settle it.
///
/// The struct is `Tolerance`, not to be confused with [`check::Tolerance`](crate::check::Tolerance),
/// the tolerance of a gradient check.
///
/// **Reference:** Wang, Liu. *Understanding the Behaviour of Contrastive Loss.* CVPR 2021
/// (arXiv 2012.09740). No official code is known.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// let e: Tensor<Rank2<4, 2>, f64, _> = dev.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]]);
/// let t = Tolerance::default().forward(e, &[0, 0, 1, 1]).array();
/// assert!((t - 1.0).abs() < 1e-12); // each class's embeddings point the same way
/// ```
#[loss(pairs, paper = "tolerance metric (Wang & Liu, CVPR 2021)")]
pub fn tolerance(s: Similarity, y: Labels) -> Scalar {
    let total = sum(samples, |i| sum(pos(i), |j| s[i][j]));
    let pairs = sum(samples, |i| len(pos(i)));
    select(pairs > 0.0, total / max(pairs, 1.0), 0.0)
}

#[cfg(test)]
mod tests;
