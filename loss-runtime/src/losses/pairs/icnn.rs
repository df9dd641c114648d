//! ICNN loss of "SuSana Distancia" (Mendez-Ruiz et al., 2023): −ln of a score of how well
//! the k-nearest-neighbour graph of a few-shot episode separates its classes, the official
//! `modified_score`.
//!
//! The kNN selection is written in the DSL itself: the rank of a reference among an
//! anchor's neighbours is a count (a nested reduction) of the references nearer to it,
//! ties broken by index, and "the first k neighbours" is a condition on that rank. It costs
//! `O(N·M²)` time for `N` anchors and `M` references, and no extra memory: fine for the
//! episodes of a few-shot task (a hundred embeddings or so).

use crate::loss;

/// ICNN loss: −ln of a score of the neighbourhoods of an episode's embeddings. The score
/// is high when each point's nearest neighbours are of its own class, lie well inside its
/// nearest other-class neighbour, and other-class neighbours are few and far. Costs
/// `O(N·M²)` time for `N` anchors and `M` references; a batch with `N·M²` above
/// `max_work` is refused.
///
/// ```text
/// input   S_ij = ‖x_i − r_j‖²   (squared Euclidean: N anchors × M references)
/// d_ij    = sqrt(max(S_ij, 0) + 1e-6)
/// O_i     = others(i): every reference but i itself when the references are the batch
/// rank_ij = #{q ∈ O_i : S_iq < S_ij, or S_iq = S_ij and q < j}      (0 = the nearest)
/// k ← M − 2 if k + 2 ≥ M;   ipc ← k + 1 if ipc < 1                   (after the clamp)
/// o       = 1 with drop_nearest and a separate reference set, else 0
/// list(i) = {j ∈ O_i : o ≤ rank_ij < o + ipc}           the kNN list (official columns 1..ipc)
/// head(i) = {j ∈ O_i : o ≤ rank_ij < o + min(k, ipc)}   its first k
/// SC = same label (pos(i)), DC = other label (neg(i))
/// nn_dc_i = min_{j ∈ list(i) ∩ DC} d_ij                  (+∞ if none)
/// ND_ij   = d_ij / (nn_dc_i + 1e-7),  then  ND_ij ← ND_ij / max(1, max_{j ∈ head(i)} ND_ij)
/// sc_i    = Σ_{j ∈ head(i) ∩ SC} ND_ij / (|head(i) ∩ SC| + 1e-7)
/// λ_sc    = 1 − Σ_i sc_i / (#{i : head(i) ∩ SC ≠ ∅} + 1e-7)
/// G       = max(0, max_i max_{j ∈ head(i) ∩ DC} d_ij)                (one global maximum)
/// dc_i    = Σ_{j ∈ head(i) ∩ DC} (d_ij / (G + 1e-7)) / (|head(i) ∩ DC| + 1e-7)
/// λ_dc    = |Σ_i dc_i / (#{i : head(i) ∩ DC ≠ ∅} + 1e-7) + op|
///           op = −1 if every head(i) ∩ DC is empty, else 0
/// γ       = (1/N) Σ_i |head(i) ∩ SC| / k   if k + 2 < M,   else 1
/// score   = ((λ_sc + λ_dc)/2 + γ)/2  ∈ (0, 1]
/// L       = −ln(score)
/// ```
///
/// `1/(nn_dc_i + 1e-7)` is computed as the largest `1/(d_ij + 1e-7)` over `list(i) ∩ DC`
/// (0 when that set is empty, the official `d/∞ = 0`): the same value, the same selected
/// element and the same gradient, without writing `+∞` in the DSL.
///
/// **Cost.** Each neighbour rank is a count over the references, so the loss runs in
/// `O(N·M²)` time (in O(N + M) memory besides `S`): about 15 ns of CPU time per unit of
/// `N·M²` for the forward and backward passes together (measured with `losskit eval` on
/// 300 and 600 embeddings), so 2 s for an episode of 500, but days for 20,000 embeddings.
/// A batch with `N·M²` above `max_work` (default `2e10`, about five CPU-minutes) is
/// refused with [`LossError::TooMuchWork`](crate::LossError::TooMuchWork) before any
/// work; raise it to run a larger batch anyway.
///
/// **Gradient.** The ranks, the sets, the counts, `op` and γ are constant to the gradient
/// (γ only counts same-class neighbours); it flows through the distance values only,
/// including the values of `nn_dc_i`, of each row maximum of `ND` and of `G`, each to its
/// selected element (the first of tied ones), as in the official autograd.
///
/// **Inputs and the official variants** (the `--losses` strings of the official code):
///
/// | official | here |
/// |---|---|
/// | `suppicnn` | `forward(support, &support_labels)` |
/// | `fullicnn` | `with_ipc((shot + query) as f64)`, `forward(support ∪ queries, &labels)` |
/// | `queryicnn` | `with_drop_nearest(true)`, `forward(WithRefs(queries, support), &pair_labels)` |
/// | `queryicnn`, corrected | the same with `drop_nearest = false` (the default) |
/// | `--query_protos` | `WithRefs(queries, prototypes)` with the prototypes' classes |
///
/// The metric defaults to [`Metric::SquaredEuclidean`](crate::Metric::SquaredEuclidean)
/// (declared with `#[loss(pairs, metric = SquaredEuclidean)]`); the loss takes the square
/// root itself, as the official code does. A ready matrix of squared distances can be
/// passed as `Similarities(s)`; negative entries (rounding) read as 0 in `d`, while the
/// ranks compare the raw entries.
///
/// **`drop_nearest` and the official bug.** The official code takes the `ipc + 1` nearest
/// references and drops column 0, assuming it is the anchor itself. For the batch that is
/// true, and here the self-pair is left out by index (`others(i)`), so `drop_nearest`
/// changes nothing there. For `queryicnn` the references are the support set, and column 0
/// is each query's true nearest support point, which the official code discards: a bug.
/// `drop_nearest = true` reproduces it (`o = 1`: the nearest reference is skipped and the
/// list is the next `ipc`); the default `false` keeps the `ipc` nearest references
/// (the "Corrected" mode).
///
/// **Defaults:** `k = 4` (the official default), `ipc = 0` meaning `k + 1` (the official
/// `ipc=None`; any value below 1 does), `drop_nearest = false`. `k` and `ipc` are counts:
/// fractional values are rounded down. `M` (for the clamp of `k`) counts the references
/// and `N` (for γ) the anchors, as the official `target.shape[0]` and `y_orig.shape[0]`.
///
/// **Reference:** Mendez-Ruiz, Gonzalez-Zapata, Reyes-Amezcua, Flores-Araiza, Lopez-Tiro,
/// Ochoa-Ruiz, Hinojosa. *SuSana Distancia is all you need: Enforcing class separability in
/// metric learning via two novel distance-based loss functions for few-shot image
/// classification.* 2023. **Official code:** `maumruiz/FSL-Loss`,
/// `algorithms/icnn_loss.py::modified_score` (and `get_icnn_loss` for the variants).
/// Differences:
/// - the official `topk` drops column 0 as "self"; here the self-pair is left out by index.
///   They differ only when a point has an exact duplicate that `topk` happens to order
///   first (the duplicate is then dropped and the point itself kept as a neighbour);
/// - ties between distances go to the lower reference index (`topk` leaves their order
///   unspecified);
/// - where the official code fails, this loss gives a value: with more requested
///   neighbours than references (`ipc + 1 > M`, or `ipc > M` without the drop) the list
///   holds all the references there are; with `M = 2` (`k ← 0`) every head is empty and
///   the loss is 0 (the official `max` of an empty tensor raises);
/// - the unused original ICNN score (the `ω` variance term) is not shipped.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// // a 2-way 2-shot support set on a line: k = 4 is clamped to 2, γ = 1
/// let support: Tensor<Rank2<4, 2>, f64, _> =
///     dev.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [5.5, 0.0]]);
/// let out = Icnn::default().forward(support.leaky_trace(), &[0, 0, 1, 1]);
/// // λ_sc = 29/72, λ_dc = 23/36: score = 73/96 (up to the 1e-6 and 1e-7 guards)
/// assert!((out.array() + (73.0f64 / 96.0).ln()).abs() < 1e-6);
/// let grads = out.backward();
/// assert_eq!(grads.get(&support).shape(), &(Const::<4>, Const::<2>));
///
/// // queryicnn: queries against the support, with the official drop of the nearest
/// let queries: Tensor<Rank2<2, 2>, f64, _> = dev.tensor([[0.4, 0.1], [4.0, 0.2]]);
/// let labels = PairLabels { labels: &[0, 1], ref_labels: &[0, 0, 1, 1] };
/// let official = Icnn::default().with_drop_nearest(true);
/// let q = official.forward(WithRefs(queries.clone(), support.clone()), &labels);
/// let corrected = Icnn::default().forward(WithRefs(queries, support), &labels);
/// assert!(q.array() > corrected.array()); // each query lost its nearest (same-class) point
/// ```
#[loss(pairs, metric = SquaredEuclidean, paper = "ICNN loss (Mendez-Ruiz et al., 2023)")]
pub fn icnn(
    s: Similarity,
    y: Labels,
    #[hyper(
        default = 4.0,
        positive,
        doc = "k: the neighbours scored per point (k ← M − 2 when k + 2 ≥ M references)"
    )]
    k: f64,
    #[hyper(
        default = 0.0,
        nonnegative,
        doc = "ipc: the length of each kNN list, where the nearest other-class distance is \
               looked for; below 1 means k + 1 (the `full` variant passes shot + query)"
    )]
    ipc: f64,
    #[hyper(
        default = false,
        doc = "skip each anchor's nearest reference of a separate reference set, as the \
               official `queryicnn` does (a bug); no effect when the references are the batch"
    )]
    drop_nearest: bool,
    #[hyper(
        default = 2e10,
        positive,
        doc = "the largest N·M² (anchors × references²) a batch may have: the loss costs \
               O(N·M²) time, about 15 ns per unit; larger batches are refused"
    )]
    max_work: f64,
) -> Scalar {
    // sizes, the clamped k, the list length and the head length (constants)
    let m = sum(refs, |j| 1.0);
    let n = sum(samples, |i| 1.0);
    let kk = detach(select(floor(k) + 2.0 >= m, m - 2.0, floor(k)));
    let list = detach(select(floor(ipc) >= 1.0, floor(ipc), kk + 1.0));
    let head = detach(min(kk, list));
    // o: 1 when drop_nearest skips the nearest of a separate reference set (for the
    // batch, others(i) has one reference less than refs and o stays 0)
    let pairs = sum(samples, |i| sum(others(i), |j| 1.0));
    let lo = detach(select(drop_nearest, 1.0 - (n * m - pairs) / n, 0.0));
    // rank_ij is the count r below, recomputed where it is needed; each body selects on
    // it (a filter cannot be a block, and rustfmt makes a long filter one)
    // G: the largest other-class distance of any head (0 if none)
    let far = max(
        max(samples, |i| {
            max(neg(i), |j| {
                let r = sum(
                    others(i).filter(|q| s[i][q] < s[i][j] || (s[i][q] == s[i][j] && q < j)),
                    |q| 1.0,
                );
                select(
                    r >= lo && r < lo + head,
                    sqrt(max(s[i][j], 0.0) + 1e-6),
                    0.0,
                )
            })
        }),
        0.0,
    );
    // λ_sc: the same-class head distances, relative to the nearest other-class one
    let sc = sum(samples, |i| {
        // 1 / (nn_dc_i + 1e-7), 0 when the list holds no other class
        let inv = max(
            max(neg(i), |j| {
                let r = sum(
                    others(i).filter(|q| s[i][q] < s[i][j] || (s[i][q] == s[i][j] && q < j)),
                    |q| 1.0,
                );
                select(
                    r >= lo && r < lo + list,
                    1.0 / (sqrt(max(s[i][j], 0.0) + 1e-6) + 1e-7),
                    0.0,
                )
            }),
            0.0,
        );
        // max(1, the largest ND_ij of the head)
        let scale = max(
            max(others(i), |j| {
                let r = sum(
                    others(i).filter(|q| s[i][q] < s[i][j] || (s[i][q] == s[i][j] && q < j)),
                    |q| 1.0,
                );
                select(
                    r >= lo && r < lo + head,
                    sqrt(max(s[i][j], 0.0) + 1e-6) * inv,
                    0.0,
                )
            }),
            1.0,
        );
        let count = detach(sum(pos(i), |j| {
            let r = sum(
                others(i).filter(|q| s[i][q] < s[i][j] || (s[i][q] == s[i][j] && q < j)),
                |q| 1.0,
            );
            select(r >= lo && r < lo + head, 1.0, 0.0)
        }));
        sum(pos(i), |j| {
            let r = sum(
                others(i).filter(|q| s[i][q] < s[i][j] || (s[i][q] == s[i][j] && q < j)),
                |q| 1.0,
            );
            select(
                r >= lo && r < lo + head,
                sqrt(max(s[i][j], 0.0) + 1e-6) * inv / scale,
                0.0,
            )
        }) / (count + 1e-7)
    });
    let sc_rows = sum(samples, |i| {
        min(
            sum(pos(i), |j| {
                let r = sum(
                    others(i).filter(|q| s[i][q] < s[i][j] || (s[i][q] == s[i][j] && q < j)),
                    |q| 1.0,
                );
                detach(select(r >= lo && r < lo + head, 1.0, 0.0))
            }),
            1.0,
        )
    });
    let sc_pairs = sum(samples, |i| {
        sum(pos(i), |j| {
            let r = sum(
                others(i).filter(|q| s[i][q] < s[i][j] || (s[i][q] == s[i][j] && q < j)),
                |q| 1.0,
            );
            detach(select(r >= lo && r < lo + head, 1.0, 0.0))
        })
    });
    // λ_dc: the other-class head distances, relative to G
    let dc = sum(samples, |i| {
        let count = detach(sum(neg(i), |j| {
            let r = sum(
                others(i).filter(|q| s[i][q] < s[i][j] || (s[i][q] == s[i][j] && q < j)),
                |q| 1.0,
            );
            select(r >= lo && r < lo + head, 1.0, 0.0)
        }));
        sum(neg(i), |j| {
            let r = sum(
                others(i).filter(|q| s[i][q] < s[i][j] || (s[i][q] == s[i][j] && q < j)),
                |q| 1.0,
            );
            select(
                r >= lo && r < lo + head,
                sqrt(max(s[i][j], 0.0) + 1e-6) / (far + 1e-7),
                0.0,
            )
        }) / (count + 1e-7)
    });
    let dc_rows = sum(samples, |i| {
        min(
            sum(neg(i), |j| {
                let r = sum(
                    others(i).filter(|q| s[i][q] < s[i][j] || (s[i][q] == s[i][j] && q < j)),
                    |q| 1.0,
                );
                detach(select(r >= lo && r < lo + head, 1.0, 0.0))
            }),
            1.0,
        )
    });
    let op = detach(select(dc_rows > 0.0, 0.0, -1.0));
    let lambda_sc = 1.0 - sc / (sc_rows + 1e-7);
    let lambda_dc = abs(dc / (dc_rows + 1e-7) + op);
    let gamma = detach(select(kk + 2.0 < m, sc_pairs / max(kk, 1.0) / n, 1.0));
    -ln(((lambda_sc + lambda_dc) / 2.0 + gamma) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, max_abs, Rng};
    use crate::testing_pairs::*;
    use crate::{LossError, Metric, PairLabels};

    /// The parts of the official score.
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Parts {
        lambda_sc: f64,
        lambda_dc: f64,
        gamma: f64,
        score: f64,
    }

    /// `modified_score` as the spec writes it, with plain loops: each anchor sorts every
    /// reference by distance (ties by index), drops the first one when the references
    /// are the batch (itself) or when `drop_nearest`, and keeps `ipc` of them.
    fn naive_parts(p: &Pairs, k: usize, ipc: Option<usize>, drop_nearest: bool) -> Parts {
        let (n, m) = (p.n, p.m);
        let k = if k + 2 >= m { m.saturating_sub(2) } else { k };
        let ipc = ipc.unwrap_or(k + 1);
        let skip = usize::from(p.batch || drop_nearest);
        // the kNN lists: (distance, same class)
        let lists: Vec<Vec<(f64, bool)>> = (0..n)
            .map(|i| {
                let mut order: Vec<(f64, usize)> = (0..m)
                    .map(|j| ((p.at(i, j).max(0.0) + 1e-6).sqrt(), j))
                    .collect();
                order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                order
                    .into_iter()
                    .skip(skip)
                    .take(ipc)
                    .map(|(d, j)| (d, p.labels[i] == p.ref_labels[j]))
                    .collect()
            })
            .collect();
        let head = |l: &Vec<(f64, bool)>| l.iter().take(k).copied().collect::<Vec<_>>();

        let (mut sc_sum, mut sc_rows, mut sc_pairs) = (0.0, 0.0, 0.0);
        for list in &lists {
            let nn_dc = list
                .iter()
                .filter(|x| !x.1)
                .map(|x| x.0)
                .fold(f64::INFINITY, f64::min);
            let nd: Vec<f64> = head(list).iter().map(|x| x.0 / (nn_dc + 1e-7)).collect();
            let scale = nd.iter().copied().fold(1.0, f64::max);
            let count = head(list).iter().filter(|x| x.1).count() as f64;
            let sum: f64 = head(list)
                .iter()
                .zip(&nd)
                .filter(|(x, _)| x.1)
                .map(|(_, v)| v / scale)
                .sum();
            sc_sum += sum / (count + 1e-7);
            sc_rows += f64::from(u8::from(count > 0.0));
            sc_pairs += count / k as f64;
        }
        let lambda_sc = 1.0 - sc_sum / (sc_rows + 1e-7);

        let far = lists
            .iter()
            .flat_map(head)
            .filter(|x| !x.1)
            .map(|x| x.0)
            .fold(0.0, f64::max);
        let (mut dc_sum, mut dc_rows, mut dc_all) = (0.0, 0.0, 0.0);
        for list in &lists {
            let count = head(list).iter().filter(|x| !x.1).count() as f64;
            let sum: f64 = head(list)
                .iter()
                .filter(|x| !x.1)
                .map(|x| x.0 / (far + 1e-7))
                .sum();
            dc_sum += sum / (count + 1e-7);
            dc_rows += f64::from(u8::from(count > 0.0));
            dc_all += count;
        }
        let op = if dc_all == 0.0 { -1.0 } else { 0.0 };
        let lambda_dc = (dc_sum / (dc_rows + 1e-7) + op).abs();
        let gamma = if k + 2 < m { sc_pairs / n as f64 } else { 1.0 };
        let score = ((lambda_sc + lambda_dc) / 2.0 + gamma) / 2.0;
        Parts {
            lambda_sc,
            lambda_dc,
            gamma,
            score,
        }
    }

    fn naive(p: &Pairs, k: usize, ipc: Option<usize>, drop_nearest: bool) -> f64 {
        -naive_parts(p, k, ipc, drop_nearest).score.ln()
    }

    fn sq(e: &[f64], r: &[f64], d: usize) -> Vec<f64> {
        naive_similarity(Metric::SquaredEuclidean, e, r, d)
    }

    /// A few-shot episode: a class-major support set and queries, `way` classes scattered
    /// ±0.8 around random centres in `[−1, 1)ᵈ`, so that neighbourhoods mix classes.
    struct Episode {
        dim: usize,
        shot: usize,
        query: usize,
        sup: Vec<f64>,
        ys: Vec<usize>,
        qry: Vec<f64>,
        yq: Vec<usize>,
    }

    impl Episode {
        fn random(rng: &mut Rng, way: usize, shot: usize, query: usize, dim: usize) -> Self {
            let centres = random_embeddings(rng, way, dim);
            let mut points = |per: usize| {
                let mut x = Vec::new();
                let mut y = Vec::new();
                for w in 0..way {
                    for _ in 0..per {
                        x.extend((0..dim).map(|c| centres[w * dim + c] + rng.range(-0.8, 0.8)));
                        y.push(w);
                    }
                }
                (x, y)
            };
            let (sup, ys) = points(shot);
            let (qry, yq) = points(query);
            Self {
                dim,
                shot,
                query,
                sup,
                ys,
                qry,
                yq,
            }
        }

        /// Support ∪ queries, with their labels.
        fn full(&self) -> (Vec<f64>, Vec<usize>) {
            let x = [self.sup.clone(), self.qry.clone()].concat();
            let y = [self.ys.clone(), self.yq.clone()].concat();
            (x, y)
        }

        fn pair_labels(&self) -> PairLabels<'_> {
            PairLabels {
                labels: &self.yq,
                ref_labels: &self.ys,
            }
        }
    }

    /// The official variants.
    #[derive(Clone, Copy, Debug)]
    enum Variant {
        /// `suppicnn`: the support set against itself.
        Support,
        /// `fullicnn`: support ∪ queries against itself, `ipc = shot + query`.
        Full,
        /// `queryicnn`: queries against the support; `true` drops the nearest (official).
        Query(bool),
    }

    const VARIANTS: [Variant; 4] = [
        Variant::Support,
        Variant::Full,
        Variant::Query(true),
        Variant::Query(false),
    ];

    impl Variant {
        fn loss(self, ep: &Episode, k: usize) -> Icnn {
            let loss = Icnn::new().with_k(k as f64);
            match self {
                Variant::Support => loss,
                Variant::Full => loss.with_ipc((ep.shot + ep.query) as f64),
                Variant::Query(drop) => loss.with_drop_nearest(drop),
            }
        }

        /// The naive loss of the episode, from its embeddings.
        fn naive(self, ep: &Episode, k: usize) -> f64 {
            let d = ep.dim;
            match self {
                Variant::Support => naive(
                    &Pairs::batch(&sq(&ep.sup, &ep.sup, d), &ep.ys),
                    k,
                    None,
                    false,
                ),
                Variant::Full => {
                    let (x, y) = ep.full();
                    let ipc = Some(ep.shot + ep.query);
                    naive(&Pairs::batch(&sq(&x, &x, d), &y), k, ipc, false)
                }
                Variant::Query(drop) => {
                    let s = sq(&ep.qry, &ep.sup, d);
                    naive(&Pairs::refs(&s, &ep.yq, &ep.ys), k, None, drop)
                }
            }
        }

        /// The loss through the similarity op: its value and its gradients with respect
        /// to the anchors' embeddings and (for the queries) the support's.
        fn run(self, ep: &Episode, k: usize) -> (f64, Vec<f64>, Vec<f64>) {
            let (loss, d) = (self.loss(ep, k), ep.dim);
            match self {
                Variant::Support => {
                    let (v, g) = emb_value_and_grad::<f64, _>(&loss, &ep.sup, d, &ep.ys);
                    (v, g, Vec::new())
                }
                Variant::Full => {
                    let (x, y) = ep.full();
                    let (v, g) = emb_value_and_grad::<f64, _>(&loss, &x, d, &y);
                    (v, g, Vec::new())
                }
                Variant::Query(_) => {
                    refs_value_and_grads::<f64, _>(&loss, &ep.qry, &ep.sup, d, &ep.pair_labels())
                }
            }
        }
    }

    /// The smallest gap between two distances of one anchor in a squared-distance matrix
    /// (`n × m`): how far the embeddings can move before the kNN lists change.
    fn min_gap(s: &[f64], m: usize) -> f64 {
        s.chunks(m)
            .map(|row| {
                let mut d: Vec<f64> = row.iter().map(|&x| (x.max(0.0) + 1e-6).sqrt()).collect();
                d.sort_by(f64::total_cmp);
                d.windows(2)
                    .map(|w| w[1] - w[0])
                    .fold(f64::INFINITY, f64::min)
            })
            .fold(f64::INFINITY, f64::min)
    }

    fn variant_gap(v: Variant, ep: &Episode) -> f64 {
        match v {
            Variant::Support => min_gap(&sq(&ep.sup, &ep.sup, ep.dim), ep.ys.len()),
            Variant::Full => {
                let (x, y) = ep.full();
                min_gap(&sq(&x, &x, ep.dim), y.len())
            }
            Variant::Query(_) => min_gap(&sq(&ep.qry, &ep.sup, ep.dim), ep.ys.len()),
        }
    }

    /// (way, shot, query, dim): support sets of 4 to 30, full episodes of 6 to 30.
    const EPISODES: [(usize, usize, usize, usize); 7] = [
        (2, 2, 1, 2),
        (2, 3, 2, 3),
        (3, 2, 3, 4),
        (4, 3, 2, 3),
        (5, 2, 4, 5),
        (3, 5, 5, 4),
        (5, 6, 0, 6),
    ];

    #[test]
    fn values_match_the_spec_on_random_episodes() {
        let mut rng = Rng::new(0x1c22_0001);
        for &(way, shot, query, dim) in &EPISODES {
            for _ in 0..3 {
                let ep = Episode::random(&mut rng, way, shot, query, dim);
                for variant in VARIANTS {
                    if query == 0 && !matches!(variant, Variant::Support) {
                        continue;
                    }
                    for k in [1, 2, 4, 7] {
                        let (got, _, _) = variant.run(&ep, k);
                        let want = variant.naive(&ep, k);
                        let what = format!("{variant:?} {way}-way {shot}-shot {query}-query k={k}");
                        assert_close(got, want, 1e-10, 1e-12, &what);
                        let score = (-got).exp();
                        assert!(score > 0.0 && score <= 1.0, "{what}: score {score}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_ready_distance_matrix_gives_the_same_loss() {
        let mut rng = Rng::new(0x1c22_0002);
        let ep = Episode::random(&mut rng, 3, 4, 3, 3);
        let d = ep.dim;
        let loss = Icnn::default();
        let s = sq(&ep.sup, &ep.sup, d);
        let got = sim_value::<f64, _>(&loss, &s, &ep.ys, None).unwrap();
        let want = emb_value::<f64, _>(&loss, &ep.sup, d, &ep.ys).unwrap();
        assert_close(got, want, 1e-12, 1e-14, "support");
        let s = sq(&ep.qry, &ep.sup, d);
        let official = loss.clone().with_drop_nearest(true);
        let got = sim_value::<f64, _>(&official, &s, &ep.yq, Some(&ep.ys)).unwrap();
        let want = refs_value::<f64, _>(&official, &ep.qry, &ep.sup, d, &ep.pair_labels());
        assert_close(got, want.unwrap(), 1e-12, 1e-14, "queries");
    }

    #[test]
    fn a_batch_over_max_work_is_refused_before_any_work() {
        let mut rng = Rng::new(0x1c22_0003);
        let ep = Episode::random(&mut rng, 2, 3, 2, 3);
        let (n, m) = (ep.yq.len(), ep.ys.len()); // 4 queries, 6 support points
        let work = (n * m * m) as f64;
        let s = sq(&ep.qry, &ep.sup, ep.dim);
        let tight = Icnn::default().with_max_work(work - 1.0);
        let err = sim_value::<f64, _>(&tight, &s, &ep.yq, Some(&ep.ys)).unwrap_err();
        assert_eq!(
            err,
            LossError::TooMuchWork {
                loss: "icnn",
                work,
                measure: "N·M² (anchors × references²)",
                limit_name: "max_work",
                limit: work - 1.0,
            }
        );
        assert!(err.to_string().contains("raise `max_work`"), "{err}");
        let err = emb_value::<f64, _>(&tight, &ep.sup, ep.dim, &ep.ys).unwrap_err();
        assert!(matches!(err, LossError::TooMuchWork { .. }), "{err:?}");
        // at the limit it runs, and gives what the default gives
        let at = Icnn::default().with_max_work(work);
        let got = sim_value::<f64, _>(&at, &s, &ep.yq, Some(&ep.ys)).unwrap();
        let want = sim_value::<f64, _>(&Icnn::default(), &s, &ep.yq, Some(&ep.ys)).unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn the_hand_built_two_way_two_shot_episode() {
        // points 0, 1 (class 0) and 3, 5.5 (class 1) on a line: n = 4, so k = 4 ← 2,
        // ipc = 3 (every other point) and γ = 1
        let e = [0.0, 0.0, 1.0, 0.0, 3.0, 0.0, 5.5, 0.0];
        let y = [0, 0, 1, 1];
        let s = sq(&e, &e, 2);
        let parts = naive_parts(&Pairs::batch(&s, &y), 4, None, false);
        // heads: 0 → {1 (1), 2 (3)}, 1 → {0 (1), 2 (2)}, 2 → {1 (2), 3 (2.5)},
        // 3 → {2 (2.5), 1 (4.5)}; nn_dc = 3, 2, 2, 4.5; row maxima 1, 1, 1.25, 1
        // sc = 1/3, 1/2, 1, 5/9;  G = 4.5, dc = 3/4.5, 2/4.5, 2/4.5, 1
        assert_close(parts.lambda_sc, 29.0 / 72.0, 1e-6, 0.0, "λ_sc");
        assert_close(parts.lambda_dc, 23.0 / 36.0, 1e-6, 0.0, "λ_dc");
        assert_eq!(parts.gamma, 1.0);
        assert_close(parts.score, 73.0 / 96.0, 1e-6, 0.0, "score");
        let got = emb_value::<f64, _>(&Icnn::default(), &e, 2, &y).unwrap();
        assert_close(got, -(73.0f64 / 96.0).ln(), 1e-6, 0.0, "loss by hand");
        assert_close(
            got,
            -parts.score.ln(),
            1e-12,
            1e-14,
            "loss by the naive loops",
        );
    }

    #[test]
    fn tied_distances_go_to_the_lower_index() {
        // anchor 0: reference 2 (other class) at 1, then 1 (same class) and 3 (other
        // class) tied at 4; with k ← 2 the head keeps 2 and the lower index, 1
        let y = [0, 0, 1, 1];
        #[rustfmt::skip]
        let s = [
            0.0, 4.0, 1.0, 4.0,
            4.0, 0.0, 2.0, 5.0,
            1.0, 2.0, 0.0, 3.0,
            4.0, 5.0, 3.0, 0.0,
        ];
        let loss = Icnn::default();
        let tied = sim_value::<f64, _>(&loss, &s, &y, None).unwrap();
        assert_close(
            tied,
            naive(&Pairs::batch(&s, &y), 4, None, false),
            1e-12,
            1e-14,
            "tie",
        );
        let (mut one_first, mut three_first) = (s, s);
        one_first[1] -= 1e-9;
        three_first[3] -= 1e-9;
        let one = sim_value::<f64, _>(&loss, &one_first, &y, None).unwrap();
        let three = sim_value::<f64, _>(&loss, &three_first, &y, None).unwrap();
        assert_close(tied, one, 1e-8, 0.0, "the tie goes to reference 1");
        assert!((tied - three).abs() > 1e-3, "{tied} vs {three}");
    }

    #[test]
    fn gradients_match_finite_differences_through_the_similarity_op() {
        let mut rng = Rng::new(0x1c22_0003);
        let h = 1e-6;
        let mut checked = 0;
        for &(way, shot, query, dim) in &EPISODES[..5] {
            let ep = Episode::random(&mut rng, way, shot, query, dim);
            for variant in VARIANTS {
                if variant_gap(variant, &ep) < 1e-4 {
                    continue; // a near tie: the kNN lists could change within h
                }
                checked += 1;
                let what = format!("{variant:?} {way}-way {shot}-shot {query}-query");
                let (_, ga, gr) = variant.run(&ep, 4);
                assert!(max_abs(&ga) > 0.0, "{what}: the gradient vanishes");
                let d = ep.dim;
                match variant {
                    Variant::Support | Variant::Full => {
                        let (x, y) = if matches!(variant, Variant::Full) {
                            ep.full()
                        } else {
                            (ep.sup.clone(), ep.ys.clone())
                        };
                        let ipc = matches!(variant, Variant::Full).then_some(shot + query);
                        let f = |x: &[f64]| naive(&Pairs::batch(&sq(x, x, d), &y), 4, ipc, false);
                        assert_all_close(&ga, &central_differences(&f, &x, h), 1e-6, &what);
                    }
                    Variant::Query(drop) => {
                        let fq = |q: &[f64]| {
                            naive(
                                &Pairs::refs(&sq(q, &ep.sup, d), &ep.yq, &ep.ys),
                                4,
                                None,
                                drop,
                            )
                        };
                        let fs = |r: &[f64]| {
                            naive(
                                &Pairs::refs(&sq(&ep.qry, r, d), &ep.yq, &ep.ys),
                                4,
                                None,
                                drop,
                            )
                        };
                        let (fdq, fds) = (
                            central_differences(&fq, &ep.qry, h),
                            central_differences(&fs, &ep.sup, h),
                        );
                        assert_all_close(&ga, &fdq, 1e-6, &format!("{what}, queries"));
                        assert_all_close(&gr, &fds, 1e-6, &format!("{what}, support"));
                    }
                }
            }
        }
        assert!(checked >= 12, "only {checked} episodes without near ties");
    }

    #[test]
    fn pair_weights_are_the_gradient_in_the_distances() {
        let mut rng = Rng::new(0x1c22_0004);
        let ep = Episode::random(&mut rng, 3, 3, 2, 3);
        let loss = Icnn::default();
        let (x, y) = ep.full();
        let s = sq(&x, &x, ep.dim);
        assert!(min_gap(&s, y.len()) > 1e-5);
        let w = weights::<f64, _>(&loss, &s, &y, None).unwrap();
        let fd = central_differences(&|s| naive(&Pairs::batch(s, &y), 4, None, false), &s, 1e-7);
        assert_all_close(&w, &fd, 1e-5, "batch");
        let s = sq(&ep.qry, &ep.sup, ep.dim);
        let official = loss.with_drop_nearest(true);
        let w = weights::<f64, _>(&official, &s, &ep.yq, Some(&ep.ys)).unwrap();
        let f = |s: &[f64]| naive(&Pairs::refs(s, &ep.yq, &ep.ys), 4, None, true);
        assert_all_close(&w, &central_differences(&f, &s, 1e-7), 1e-5, "refs");
    }

    /// `way` tight clusters (spread 0.01) of `per` points, 100 apart.
    fn separated(way: usize, per: usize, dim: usize) -> (Vec<f64>, Vec<usize>) {
        let mut rng = Rng::new(0x1c22_0005);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for w in 0..way {
            for _ in 0..per {
                x.extend((0..dim).map(|c| {
                    let centre = if c == w % dim {
                        100.0 * (1 + w / dim) as f64
                    } else {
                        0.0
                    };
                    centre + rng.range(-0.01, 0.01)
                }));
                y.push(w);
            }
        }
        (x, y)
    }

    #[test]
    fn perfect_separation_scores_one() {
        // 3 classes of 6: each point's ipc = 5 nearest are its own class
        let (x, y) = separated(3, 6, 3);
        let (v, g) = emb_value_and_grad::<f64, _>(&Icnn::default(), &x, 3, &y);
        let parts = naive_parts(&Pairs::batch(&sq(&x, &x, 3), &y), 4, None, false);
        assert_eq!(
            (parts.lambda_sc, parts.lambda_dc, parts.gamma),
            (1.0, 1.0, 1.0)
        );
        assert_eq!(v, 0.0);
        // nothing selects a distance: the counts, op and γ give no gradient
        assert!(g.iter().all(|&g| g == 0.0), "{g:?}");
        // the full variant's longer lists reach the nearest other class, 100 away
        let full = Icnn::default().with_ipc(6.0);
        let (v, g) = emb_value_and_grad::<f64, _>(&full, &x, 3, &y);
        let want = naive(&Pairs::batch(&sq(&x, &x, 3), &y), 4, Some(6), false);
        // (the similarity op's ‖a‖² + ‖b‖² − 2a·b loses ~1e-12 of 1e4 norms)
        assert_close(v, want, 1e-8, 1e-14, "full");
        assert!(v > 0.0 && v < 1e-3, "{v}");
        assert!(g.iter().all(|g| g.is_finite()) && max_abs(&g) > 0.0);
    }

    #[test]
    fn gamma_is_constant_under_small_perturbations() {
        let mut rng = Rng::new(0x1c22_0006);
        let ep = Episode::random(&mut rng, 4, 4, 0, 3);
        let (x, y, d) = (&ep.sup, &ep.ys, ep.dim);
        assert!(min_gap(&sq(x, x, d), y.len()) > 1e-4);
        let parts = |x: &[f64]| naive_parts(&Pairs::batch(&sq(x, x, d), y), 4, None, false);
        let base = parts(x);
        assert!(base.gamma > 0.0 && base.gamma < 1.0, "γ = {}", base.gamma);
        let loss = Icnn::default();
        let (v, g) = emb_value_and_grad::<f64, _>(&loss, x, d, y);
        for _ in 0..5 {
            let delta: Vec<f64> = (0..x.len()).map(|_| rng.range(-1e-6, 1e-6)).collect();
            let moved: Vec<f64> = x.iter().zip(&delta).map(|(a, b)| a + b).collect();
            let p = parts(&moved);
            assert_eq!(p.gamma, base.gamma);
            assert_ne!(p.lambda_sc, base.lambda_sc);
            // to first order, the change is the gradient (which has no γ term)
            let dv = emb_value::<f64, _>(&loss, &moved, d, y).unwrap() - v;
            let linear: f64 = g.iter().zip(&delta).map(|(a, b)| a * b).sum();
            assert_close(dv, linear, 1e-4, 1e-13, "first-order change");
        }
    }

    #[test]
    fn drop_nearest_drops_each_querys_nearest_support_point() {
        let mut rng = Rng::new(0x1c22_0007);
        let dim = 2;
        // support: point 0 at the origin (class 0), eight more 0.5 to 2 away; the
        // queries lie within 0.05 of the origin, so point 0 is every query's nearest
        let mut sup = vec![0.0, 0.0];
        let mut ys = vec![0];
        for w in 0..3 {
            for t in 0..3 {
                if w == 0 && t == 0 {
                    continue;
                }
                let angle = rng.range(0.0, std::f64::consts::TAU);
                let radius = rng.range(0.5, 2.0);
                sup.extend([radius * angle.cos(), radius * angle.sin()]);
                ys.push(w);
            }
        }
        let qry: Vec<f64> = (0..6 * dim).map(|_| rng.range(-0.035, 0.035)).collect();
        let yq = [0, 0, 1, 1, 2, 2];
        let labels = PairLabels {
            labels: &yq,
            ref_labels: &ys,
        };
        let official = Icnn::default().with_drop_nearest(true);
        let (v, gq, gs) = refs_value_and_grads::<f64, _>(&official, &qry, &sup, dim, &labels);
        // the same as keeping every neighbour of the support without point 0 (9 and 8
        // references: k = 4 is clamped in neither)
        let rest = PairLabels {
            labels: &yq,
            ref_labels: &ys[1..],
        };
        let corrected = Icnn::default();
        let (want, wq, ws) =
            refs_value_and_grads::<f64, _>(&corrected, &qry, &sup[dim..], dim, &rest);
        assert_close(
            v,
            want,
            1e-12,
            1e-14,
            "official = corrected without point 0",
        );
        assert_all_close(&gq, &wq, 1e-10, "query gradients");
        assert_all_close(&gs[dim..], &ws, 1e-10, "support gradients");
        // point 0 is in no list: no gradient reaches it
        assert_eq!(&gs[..dim], &[0.0, 0.0]);
        // kept, it changes the loss and gets a gradient
        let (kept, _, gk) = refs_value_and_grads::<f64, _>(&corrected, &qry, &sup, dim, &labels);
        assert!((kept - v).abs() > 1e-3, "{kept} vs {v}");
        assert!(gk[..dim].iter().any(|&g| g != 0.0));
        // against the batch itself, the nearest is the anchor, already left out
        let (x, y) = (&sup, &ys);
        let (a, ga) = emb_value_and_grad::<f64, _>(&official, x, dim, y);
        let (b, gb) = emb_value_and_grad::<f64, _>(&corrected, x, dim, y);
        assert_eq!((a, &ga), (b, &gb));
    }

    #[test]
    fn no_nan_without_other_classes_or_with_a_clamped_k() {
        let mut rng = Rng::new(0x1c22_0008);
        let d = 3;
        let cases: [&[usize]; 8] = [
            &[4, 4, 4, 4, 4],             // one class, k clamped: op = −1
            &[1, 1, 1, 1, 1, 1, 1, 1, 1], // one class, k = 4
            &[0, 1, 2, 3, 4, 5],          // no same-class neighbour
            &[0, 0, 1],                   // k ← 1
            &[0, 1],                      // k ← 0: empty heads
            &[3],                         // k ← −1
            &[0, 0, 0, 1],
            &[2, 2, 0, 0, 1, 1, 5],
        ];
        for y in cases {
            let e = random_embeddings(&mut rng, y.len(), d);
            let what = format!("y={y:?}");
            for loss in [Icnn::default(), Icnn::default().with_ipc(9.0)] {
                let (v, g) = emb_value_and_grad::<f64, _>(&loss, &e, d, y);
                let ipc = (loss.ipc > 0.0).then_some(9);
                let want = naive(&Pairs::batch(&sq(&e, &e, d), y), 4, ipc, false);
                assert_close(v, want, 1e-10, 1e-14, &what);
                assert!(
                    v >= 0.0 && g.iter().all(|g| g.is_finite()),
                    "{what}: {v} {g:?}"
                );
                let (v32, g32) = emb_value_and_grad::<f32, _>(&loss, &e, d, y);
                assert!(
                    v32.is_finite() && g32.iter().all(|g| g.is_finite()),
                    "{what} f32"
                );
            }
        }
        // a single class everywhere scores 1
        let e = random_embeddings(&mut rng, 9, d);
        let (v, g) = emb_value_and_grad::<f64, _>(&Icnn::default(), &e, d, &[1; 9]);
        assert_eq!(v, 0.0);
        assert!(g.iter().all(|&g| g == 0.0));
        // reference sets of one and two points, with and without the drop
        for (m, ry) in [(1, &[0][..]), (2, &[0, 1][..])] {
            let (q, r) = (
                random_embeddings(&mut rng, 3, d),
                random_embeddings(&mut rng, m, d),
            );
            let yq = [0, 1, 1];
            let labels = PairLabels {
                labels: &yq,
                ref_labels: ry,
            };
            for drop in [false, true] {
                let loss = Icnn::default().with_drop_nearest(drop);
                let (v, gq, gr) = refs_value_and_grads::<f64, _>(&loss, &q, &r, d, &labels);
                let want = naive(&Pairs::refs(&sq(&q, &r, d), &yq, ry), 4, None, drop);
                assert_close(v, want, 1e-10, 1e-14, &format!("refs m={m} drop={drop}"));
                assert!(gq.iter().chain(&gr).all(|g| g.is_finite()));
            }
        }
        // negative entries of a ready matrix read as distance 0
        let s = [0.0, -1e-9, 0.3, -1e-9, 0.0, 0.2, 0.3, 0.2, 0.0];
        let y = [0, 0, 1];
        let (v, g) = sim_value_and_grad::<f64, _>(&Icnn::default(), &s, &y, None);
        assert_close(
            v,
            naive(&Pairs::batch(&s, &y), 4, None, false),
            1e-12,
            1e-14,
            "negative",
        );
        assert!(g.iter().all(|g| g.is_finite()));
    }

    #[test]
    fn defaults_and_whole_number_hyper_parameters() {
        let loss = Icnn::default();
        assert_eq!((loss.k, loss.ipc, loss.drop_nearest), (4.0, 0.0, false));
        assert_eq!(loss.metric, Metric::SquaredEuclidean);
        assert_eq!(Icnn::NAME, "icnn");
        let mut rng = Rng::new(0x1c22_0009);
        let ep = Episode::random(&mut rng, 3, 4, 2, 3);
        let (x, y) = ep.full();
        let v = |l: Icnn| emb_value::<f64, _>(&l, &x, 3, &y).unwrap();
        assert_eq!(v(Icnn::new().with_k(4.7)), v(Icnn::new()));
        assert_eq!(v(Icnn::new().with_ipc(6.5)), v(Icnn::new().with_ipc(6.0)));
        assert_eq!(v(Icnn::new().with_ipc(0.5)), v(Icnn::new().with_ipc(5.0)));
        let want = naive(&Pairs::batch(&sq(&x, &x, 3), &y), 4, Some(6), false);
        assert_close(
            v(Icnn::new().with_ipc(6.5)),
            want,
            1e-10,
            1e-14,
            "ipc 6.5 → 6",
        );
    }

    #[test]
    fn shared_pairs_suites() {
        let loss = Icnn::default();
        check_pairs_permutation(&loss);
        check_pairs_precisions(&loss, 1e-4);
        check_pairs_errors(&loss);
    }
}
