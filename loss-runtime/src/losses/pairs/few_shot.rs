//! Few-shot metric-learning losses over a query × prototype distance matrix: the
//! Proto-Triplet loss of "SuSana Distancia" (Mendez-Ruiz et al., 2023).
//!
//! The paper's second loss, the ICNN loss, is in [`icnn`](super::icnn) (its kNN selection
//! is written in the DSL as a rank computed by a nested reduction).

use crate::loss;

/// Proto-Triplet loss: a triplet loss between each query, its own class prototype and the
/// nearest prototype of another class, on Euclidean distances.
///
/// ```text
/// input  S_ij = ‖q_i − c_j‖²             (squared Euclidean: queries × prototypes)
/// d_ij   = sqrt(max(S_ij, 0) + 1e-6)
/// dpos_i = max_{j ∈ pos(i)} d_ij          (its own prototype; the farthest if it has several)
/// dneg_i = min_{j ∈ neg(i)} d_ij          (the hardest other prototype)
/// L      = (1/|Q|) Σ_i max(dpos_i − dneg_i + margin, 0)
/// ```
///
/// **Input: squared Euclidean distances.** The loss takes the squared distances and
/// takes their square root itself, as the official code does (the `1e-6` keeps the
/// gradient finite for a query on a prototype), so its `metric` defaults to
/// [`Metric::SquaredEuclidean`](crate::Metric::SquaredEuclidean) (declared with
/// `#[loss(pairs, metric = SquaredEuclidean)]`); changing it makes the loss read other
/// values as distances. Pass the queries
/// and the prototypes with their classes, `WithRefs(queries, prototypes)` with
/// `PairLabels { labels: query_classes, ref_labels: prototype_classes }`. A ready matrix of
/// squared distances can be passed as `Similarities(s)` instead (the metric is then not
/// used). Negative entries, rounding in a caller's matrix, are read as 0.
///
/// **Conventions.** At the hinge (`dpos − dneg + margin = 0` exactly) the gradient is that
/// of the first argument, as in the official `torch.max` over `(x, 0)`. A query without a
/// prototype of its class has `dpos = −∞` and contributes 0 (the official code would take
/// `dpos = 0` there); one without another class has `dneg = +∞` and contributes 0, as in
/// the official code. Both still count in `|Q|`. The gradient reaches, for each query
/// inside the margin, only its own prototype and its hardest negative one (the first of
/// tied ones).
///
/// **Defaults:** margin = 0.5 (the official `proto_triplet_loss` default and the paper's
/// runs). In training the paper averages it with the prototypical cross-entropy on logits
/// `−‖q − c_w‖²` (the `cross,prototriplet` configuration).
///
/// **Reference:** Mendez-Ruiz, Gonzalez-Zapata, Reyes-Amezcua, Flores-Araiza, Lopez-Tiro,
/// Ochoa-Ruiz, Hinojosa. *SuSana Distancia is all you need: Enforcing class separability in
/// metric learning via two novel distance-based loss functions for few-shot image
/// classification.* 2023. **Official code:** `maumruiz/FSL-Loss`,
/// `algorithms/icnn_loss.py::proto_triplet_loss`. Differences: the official code finds
/// the distances through a top-k over the `way` prototypes (all of them, in order); here
/// every prototype is visited, which is the same set. The query without a prototype of its
/// class (above) is the only case where the values differ.
///
/// ```
/// use dfdx::prelude::*;
/// use loss_runtime::*;
/// let dev: Cpu = Default::default();
/// // a 2-way episode: prototypes of classes 0 and 1, three queries
/// let protos: Tensor<Rank2<2, 2>, f64, _> = dev.tensor([[0.0, 0.0], [1.0, 0.0]]);
/// let queries: Tensor<Rank2<3, 2>, f64, _> = dev.tensor([[0.1, 0.0], [0.6, 0.1], [0.9, 0.2]]);
/// let loss = ProtoTriplet::default().with_metric(Metric::SquaredEuclidean);
/// let labels = PairLabels { labels: &[0, 0, 1], ref_labels: &[0, 1] };
/// let out = loss.forward(WithRefs(queries.leaky_trace(), protos.leaky_trace()), &labels);
/// assert!(out.array() > 0.0); // query 1 is nearer to the wrong prototype
/// let grads = out.backward();
/// assert_eq!(grads.get(&protos).shape(), &(Const::<2>, Const::<2>));
/// ```
#[loss(pairs, metric = SquaredEuclidean, paper = "Proto-Triplet (Mendez-Ruiz et al., 2023)")]
pub fn proto_triplet(
    s: Similarity,
    y: Labels,
    #[hyper(
        default = 0.5,
        nonnegative,
        doc = "the margin between the own prototype's and the nearest other prototype's distance"
    )]
    margin: f64,
) -> PerAnchor {
    let dpos = max(pos(i), |j| sqrt(max(s[i][j], 0.0) + 1e-6));
    let dneg = min(neg(i), |j| sqrt(max(s[i][j], 0.0) + 1e-6));
    max(dpos - dneg + margin, 0.0)
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use super::*;
    use crate::testing::{assert_close, Rng};
    use crate::{Loss, Metric, PairLabels, Similarities, WithRefs};

    type Matrix<T = NoneTape> = Tensor<(usize, usize), f64, Cpu, T>;

    fn dist(a: &[f64], b: &[f64]) -> f64 {
        let sq: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
        (sq + 1e-6).sqrt()
    }

    /// Plain loops over the embeddings, as the official code.
    fn naive(q: &[f64], yq: &[usize], c: &[f64], yc: &[usize], dim: usize, margin: f64) -> f64 {
        let mut total = 0.0;
        for (i, &y) in yq.iter().enumerate() {
            let qi = &q[i * dim..(i + 1) * dim];
            let (mut dpos, mut dneg) = (f64::NEG_INFINITY, f64::INFINITY);
            for (j, &w) in yc.iter().enumerate() {
                let d = dist(qi, &c[j * dim..(j + 1) * dim]);
                if w == y {
                    dpos = dpos.max(d);
                } else {
                    dneg = dneg.min(d);
                }
            }
            total += f64::max(dpos - dneg + margin, 0.0);
        }
        total / yq.len() as f64
    }

    fn loss() -> ProtoTriplet {
        ProtoTriplet::default().with_metric(Metric::SquaredEuclidean)
    }

    /// Value and the gradients with respect to the queries and the prototypes.
    fn run(
        loss: &ProtoTriplet,
        q: &[f64],
        yq: &[usize],
        c: &[f64],
        yc: &[usize],
        dim: usize,
    ) -> (f64, Vec<f64>, Vec<f64>) {
        let dev: Cpu = Default::default();
        let qt: Matrix = dev.tensor_from_vec(q.to_vec(), (yq.len(), dim));
        let ct: Matrix = dev.tensor_from_vec(c.to_vec(), (yc.len(), dim));
        let labels = PairLabels {
            labels: yq,
            ref_labels: yc,
        };
        let out = loss.forward(WithRefs(qt.leaky_trace(), ct.leaky_trace()), &labels);
        let v = out.array();
        let grads = out.backward();
        (v, grads.get(&qt).as_vec(), grads.get(&ct).as_vec())
    }

    /// A `way`-way episode with `per` queries per class in `dim` dimensions, queries
    /// scattered around their prototype so that some violate the margin.
    fn episode(
        rng: &mut Rng,
        way: usize,
        per: usize,
        dim: usize,
    ) -> (Vec<f64>, Vec<usize>, Vec<f64>, Vec<usize>) {
        let c: Vec<f64> = (0..way * dim).map(|_| rng.range(-1.0, 1.0)).collect();
        let yc: Vec<usize> = (0..way).collect();
        let mut q = Vec::new();
        let mut yq = Vec::new();
        for w in 0..way {
            for _ in 0..per {
                for k in 0..dim {
                    q.push(c[w * dim + k] + rng.range(-0.8, 0.8));
                }
                yq.push(w);
            }
        }
        (q, yq, c, yc)
    }

    #[test]
    fn value_matches_plain_loops() {
        let mut rng = Rng::new(31);
        for (way, per, dim) in [(2, 1, 2), (3, 2, 4), (5, 3, 3)] {
            let (q, yq, c, yc) = episode(&mut rng, way, per, dim);
            for margin in [0.0, 0.5, 2.0] {
                let (v, _, _) = run(&loss().with_margin(margin), &q, &yq, &c, &yc, dim);
                let want = naive(&q, &yq, &c, &yc, dim, margin);
                assert_close(v, want, 1e-10, 1e-12, &format!("{way}-way margin {margin}"));
            }
        }
    }

    #[test]
    fn gradient_matches_finite_differences_through_the_distances() {
        let mut rng = Rng::new(32);
        let (way, per, dim) = (3, 2, 3);
        let (q, yq, c, yc) = episode(&mut rng, way, per, dim);
        let l = loss();
        let (_, gq, gc) = run(&l, &q, &yq, &c, &yc, dim);
        assert!(
            gq.iter().any(|&g| g != 0.0),
            "some query is inside the margin"
        );
        let h = 1e-6;
        for j in 0..q.len() {
            let (mut up, mut down) = (q.clone(), q.clone());
            up[j] += h;
            down[j] -= h;
            let fd = (naive(&up, &yq, &c, &yc, dim, 0.5) - naive(&down, &yq, &c, &yc, dim, 0.5))
                / (2.0 * h);
            assert_close(gq[j], fd, 1e-5, 1e-7, &format!("∂L/∂query[{j}]"));
        }
        for j in 0..c.len() {
            let (mut up, mut down) = (c.clone(), c.clone());
            up[j] += h;
            down[j] -= h;
            let fd = (naive(&q, &yq, &up, &yc, dim, 0.5) - naive(&q, &yq, &down, &yc, dim, 0.5))
                / (2.0 * h);
            assert_close(gc[j], fd, 1e-5, 1e-7, &format!("∂L/∂prototype[{j}]"));
        }
    }

    #[test]
    fn zero_when_every_query_is_separated_by_the_margin() {
        // prototypes 10 apart, queries within 0.5 of their own
        let c = [0.0, 0.0, 10.0, 0.0, 0.0, 10.0];
        let q = [0.3, 0.1, 9.8, 0.4, 0.2, 9.6, -0.4, 0.2];
        let (v, gq, gc) = run(
            &loss().with_margin(2.0),
            &q,
            &[0, 1, 2, 0],
            &c,
            &[0, 1, 2],
            2,
        );
        assert_eq!(v, 0.0);
        assert!(gq.iter().chain(&gc).all(|&g| g == 0.0));
    }

    #[test]
    fn gradient_reaches_only_the_own_and_the_hardest_other_prototype() {
        // one query of class 0, inside the margin; prototype 2 is the nearest other one
        let c = [0.0, 0.0, 3.0, 0.0, 0.0, 1.5, -4.0, -4.0];
        let q = [0.2, 0.6];
        let (v, _, gc) = run(&loss(), &q, &[0], &c, &[0, 1, 2, 3], 2);
        assert!(v > 0.0);
        for (p, g) in gc.chunks(2).enumerate() {
            let touched = g.iter().any(|&x| x != 0.0);
            assert_eq!(touched, p == 0 || p == 2, "prototype {p}: {g:?}");
        }
    }

    #[test]
    fn the_metric_is_squared_euclidean_by_default() {
        let mut rng = Rng::new(33);
        let (q, yq, c, yc) = episode(&mut rng, 3, 2, 3);
        let want = naive(&q, &yq, &c, &yc, 3, 0.5);
        assert_eq!(ProtoTriplet::default().metric, Metric::SquaredEuclidean);
        let (default, _, _) = run(&ProtoTriplet::default(), &q, &yq, &c, &yc, 3);
        assert_close(default, want, 1e-10, 1e-12, "default metric");
        // another metric makes the loss read similarities as distances: not the loss
        let cosine_loss = ProtoTriplet::default().with_metric(Metric::Cosine);
        let (cosine, _, _) = run(&cosine_loss, &q, &yq, &c, &yc, 3);
        assert!((cosine - want).abs() > 1e-3, "{cosine} vs {want}");
        let (squared, _, _) = run(&loss(), &q, &yq, &c, &yc, 3);
        assert_close(squared, want, 1e-10, 1e-12, "SquaredEuclidean");
    }

    #[test]
    fn a_ready_distance_matrix_gives_the_same_loss() {
        let dev: Cpu = Default::default();
        let mut rng = Rng::new(34);
        let (q, yq, c, yc) = episode(&mut rng, 4, 2, 3);
        let (nq, nc) = (yq.len(), yc.len());
        let mut s = Vec::new();
        for i in 0..nq {
            for j in 0..nc {
                let d = dist(&q[i * 3..i * 3 + 3], &c[j * 3..j * 3 + 3]);
                s.push(d * d - 1e-6);
            }
        }
        let st: Matrix = dev.tensor_from_vec(s, (nq, nc));
        let labels = PairLabels {
            labels: &yq,
            ref_labels: &yc,
        };
        let v = ProtoTriplet::default()
            .forward(Similarities(st), &labels)
            .array();
        assert_close(
            v,
            naive(&q, &yq, &c, &yc, 3, 0.5),
            1e-10,
            1e-12,
            "Similarities",
        );
    }

    #[test]
    fn at_the_hinge_the_gradient_is_the_active_side() {
        // dpos − dneg + margin = 0 exactly: the gradient is that of the first argument
        let dev: Cpu = Default::default();
        let (s_pos, s_neg) = (0.3, 1.1);
        let (dpos, dneg) = ((s_pos + 1e-6f64).sqrt(), (s_neg + 1e-6f64).sqrt());
        let loss = ProtoTriplet::default().with_margin(dneg - dpos);
        let st: Matrix = dev.tensor_from_vec(vec![s_pos, s_neg], (1, 2));
        let labels = PairLabels {
            labels: &[0],
            ref_labels: &[0, 1],
        };
        let out = loss.forward(Similarities(st.leaky_trace()), &labels);
        assert_eq!(out.array(), 0.0);
        let g = out.backward().get(&st).as_vec();
        assert_close(g[0], 0.5 / dpos, 1e-14, 0.0, "∂L/∂s_pos");
        assert_close(g[1], -0.5 / dneg, 1e-14, 0.0, "∂L/∂s_neg");
    }

    #[test]
    fn queries_without_an_own_or_another_prototype_contribute_zero() {
        // query 1 has class 7 (no prototype), query 2 class 0 with only class-0 prototypes
        // seen as positives... every prototype is of class 0 or 1
        let c = [0.0, 0.0, 1.0, 0.0];
        let q = [0.7, 0.0, 0.5, 0.5];
        let (v, gq, _) = run(&loss(), &q, &[0, 7], &c, &[0, 1], 2);
        let own = naive(&q[..2], &[0], &c, &[0, 1], 2, 0.5);
        assert_close(
            v,
            own / 2.0,
            1e-10,
            1e-12,
            "the class-7 query adds 0, counts in |Q|",
        );
        assert_eq!(&gq[2..], &[0.0, 0.0]);
        // a single-class episode: no negatives at all
        let (v, gq, gc) = run(&loss(), &q, &[0, 0], &c, &[0, 0], 2);
        assert_eq!(v, 0.0);
        assert!(gq.iter().chain(&gc).all(|&g| g == 0.0 && g.is_finite()));
    }
}
