//! Losses defined outside the runtime, the way a user writes them: they compile with
//! `#[loss]`, and their derived gradients agree with central finite differences.

use losskit::prelude::*;

/// Z-loss shape (paper 09): per-row mean and standard deviation reused, then a gather.
#[loss(logits)]
pub fn z_score_margin(
    z: Logits,
    y: Labels,
    #[hyper(default = 1.0, positive)] a: f64,
    #[hyper(default = 3.0)] b: f64,
) -> PerSample {
    let mu = mean(classes, |k| z[i][k]);
    let sd = sqrt(mean(classes, |k| sq(z[i][k] - mu)) + 1e-12);
    softplus(a * (b - (z[i][y[i]] - mu) / sd)) / a
}

/// A filtered reduction, a max over a set, `select`, `detach`, `clamp` and powers.
#[loss(logits)]
pub fn hardest_margin(
    z: Logits,
    y: Labels,
    #[hyper(default = 0.5, nonnegative)] margin: f64,
) -> PerSample {
    let hardest = max(classes.filter(|k| k != y[i]), |k| z[i][k]);
    let gap = hardest - z[i][y[i]] + margin;
    let spread = sum(classes.filter(|k| z[i][k] > detach(hardest) - 1.0), |k| {
        powi(z[i][k] - hardest, 2)
    });
    select(gap > 0.0, gap, 0.1 * tanh(gap)) + clamp(spread, 0.0, 4.0) * 0.01
}

/// Focal-style loss written with `ln`, `exp` and `powf` (the compiler rewrites
/// `ln(sum(exp))` into a stable logsumexp).
#[loss(logits)]
pub fn focal_like(
    z: Logits,
    y: Labels,
    #[hyper(default = 2.0, nonnegative)] gamma: f64,
) -> PerSample {
    let log_p = z[i][y[i]] - ln(sum(classes, |k| exp(z[i][k])));
    -powf(1.0 - exp(log_p) + 1e-9, gamma) * log_p
}

/// The trigonometric primitives and `expm1`, with `acos` kept inside (−1, 1).
#[loss(logits)]
pub fn trig_mix(z: Logits, y: Labels) -> PerSample {
    let angle = acos(0.9 * tanh(z[i][y[i]]));
    0.1 * sum(classes, |k| sin(z[i][k]) * cos(2.0 * z[i][k])) + angle + expm1(0.5 * z[i][y[i]])
}

/// LDR-KL's shape (paper 13) written naturally: λ·ln(mean(exp(..)/λ)), which the compiler
/// rewrites into a max-shifted `logmeanexp`.
#[loss(logits)]
pub fn ldr_kl_like(
    z: Logits,
    y: Labels,
    #[hyper(default = 1e-3, positive)] lambda: f64,
) -> PerSample {
    lambda * ln(mean(classes, |k| exp((z[i][k] - z[i][y[i]]) / lambda)))
}

/// Z-loss's standardisation (paper 09), refusing a row without spread; `len` for the
/// class count.
#[loss(logits)]
pub fn z_standardised(z: Logits, y: Labels) -> PerSample {
    let mu = sum(classes, |k| z[i][k]) / len(classes);
    let var = mean(classes, |k| sq(z[i][k] - mu));
    require(var > 0.0, "row has zero variance");
    softplus(-(z[i][y[i]] - mu) / sqrt(var))
}

/// A binary-family loss using per-sample inputs and the batch mean.
#[loss(binary)]
pub fn weighted_bce(
    p: Probs,
    y: Targets,
    #[hyper(default = 2.0, positive)] pos_weight: f64,
) -> PerSample {
    -(pos_weight * y[i] * ln(p[i] + 1e-12) + (1.0 - y[i]) * ln(1.0 - p[i] + 1e-12))
}

fn logits_case(n: usize, c: usize, seed: u64, scale: f64) -> (Vec<f64>, Vec<usize>) {
    let mut s = seed;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    };
    let z: Vec<f64> = (0..n * c).map(|_| next() * scale).collect();
    let y: Vec<usize> = (0..n)
        .map(|_| ((next() + 1.0) * 0.5 * c as f64) as usize % c)
        .collect();
    (z, y)
}

fn check_logits_gradient<L>(loss: &L, n: usize, c: usize, scale: f64)
where
    L: Loss<
            Tensor<(usize, usize), f64, Cpu, OwnedTape<f64, Cpu>>,
            [usize],
            Output = Tensor<(), f64, Cpu, OwnedTape<f64, Cpu>>,
        > + Loss<Tensor<(usize, usize), f64, Cpu>, [usize], Output = Tensor<(), f64, Cpu>>,
{
    let dev: Cpu = Default::default();
    for seed in 1..4 {
        let (z, y) = logits_case(n, c, seed, scale);
        let x = dev.tensor_from_vec(z.clone(), (n, c));
        let out = loss.forward(x.leaky_trace(), &y);
        let grad = out.backward().get(&x).as_vec();
        let value = |v: &Vec<f64>| {
            loss.forward(dev.tensor_from_vec(v.clone(), (n, c)), &y)
                .array()
        };
        for j in 0..z.len() {
            let h = 1e-6;
            let (mut a, mut b) = (z.clone(), z.clone());
            a[j] += h;
            b[j] -= h;
            let fd = (value(&a) - value(&b)) / (2.0 * h);
            approx::assert_abs_diff_eq!(grad[j], fd, epsilon = 1e-6 * (1.0 + fd.abs()));
        }
    }
}

#[test]
fn z_score_margin_gradient_matches_finite_differences() {
    check_logits_gradient(&ZScoreMargin::default(), 4, 5, 2.0);
}

#[test]
fn z_score_margin_is_shift_and_scale_invariant() {
    let dev: Cpu = Default::default();
    let (z, y) = logits_case(3, 4, 7, 1.0);
    let base = ZScoreMargin::default()
        .forward(dev.tensor_from_vec(z.clone(), (3, 4)), &y)
        .array();
    let moved: Vec<f64> = z.iter().map(|v| 3.0 * v + 10.0).collect();
    let other = ZScoreMargin::default()
        .forward(dev.tensor_from_vec(moved, (3, 4)), &y)
        .array();
    approx::assert_abs_diff_eq!(base, other, epsilon = 1e-9);
}

#[test]
fn hardest_margin_gradient_matches_finite_differences() {
    check_logits_gradient(&HardestMargin::default(), 4, 5, 1.5);
}

#[test]
fn focal_like_gradient_matches_finite_differences() {
    check_logits_gradient(&FocalLike::default(), 3, 4, 2.0);
    // large logits: the rewritten logsumexp keeps it finite
    let dev: Cpu = Default::default();
    let z = dev.tensor_from_vec(vec![500.0f64, -500.0, 0.0, 800.0, 0.0, -800.0], (2, 3));
    let v: f64 = FocalLike::default().forward(z, &[0, 2]).array();
    assert!(v.is_finite(), "{v}");
}

#[test]
fn trig_mix_matches_a_naive_loop_and_finite_differences() {
    let (n, c) = (3, 4);
    let (z, y) = logits_case(n, c, 11, 1.5);
    let naive: f64 = (0..n)
        .map(|i| {
            let row = &z[i * c..(i + 1) * c];
            let zy = row[y[i]];
            let waves: f64 = row.iter().map(|v| v.sin() * (2.0 * v).cos()).sum();
            0.1 * waves + (0.9 * zy.tanh()).acos() + (0.5 * zy).exp_m1()
        })
        .sum::<f64>()
        / n as f64;
    let dev: Cpu = Default::default();
    let got: f64 = TrigMix::default()
        .forward(dev.tensor_from_vec(z, (n, c)), &y)
        .array();
    approx::assert_abs_diff_eq!(got, naive, epsilon = 1e-12);
    check_logits_gradient(&TrigMix::default(), n, c, 1.5);
}

/// The naive stable value of `ldr_kl_like`: λ·(m + ln((1/C) Σ e^(x − m))) in f64.
fn ldr_kl_naive(z: &[f64], y: &[usize], c: usize, lambda: f64) -> f64 {
    let n = y.len();
    let per_sample = |i: usize| {
        let row = &z[i * c..(i + 1) * c];
        let x: Vec<f64> = row.iter().map(|v| (v - row[y[i]]) / lambda).collect();
        let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mean: f64 = x.iter().map(|v| (v - m).exp()).sum::<f64>() / c as f64;
        lambda * (m + mean.ln())
    };
    (0..n).map(per_sample).sum::<f64>() / n as f64
}

#[test]
fn ldr_kl_like_is_finite_at_a_small_lambda_and_matches_a_stable_loop() {
    let (n, c) = (4, 5);
    let (z, y) = logits_case(n, c, 5, 3.0);
    let dev: Cpu = Default::default();
    for lambda in [1e-3, 0.5, 2.0] {
        let loss = LdrKlLike::default().with_lambda(lambda);
        let got: f64 = loss
            .try_forward(dev.tensor_from_vec(z.clone(), (n, c)), &y)
            .expect("a finite loss")
            .array();
        let naive = ldr_kl_naive(&z, &y, c, lambda);
        assert!(got.is_finite(), "λ = {lambda}: {got}");
        approx::assert_abs_diff_eq!(got, naive, epsilon = 1e-9 * (1.0 + naive.abs()));
    }
    check_logits_gradient(&LdrKlLike::default().with_lambda(0.5), n, c, 1.0);
}

#[test]
fn z_standardised_matches_a_naive_loop_and_finite_differences() {
    let (n, c) = (3, 4);
    let (z, y) = logits_case(n, c, 9, 2.0);
    let naive: f64 = (0..n)
        .map(|i| {
            let row = &z[i * c..(i + 1) * c];
            let mu = row.iter().sum::<f64>() / c as f64;
            let var = row.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / c as f64;
            let t = -(row[y[i]] - mu) / var.sqrt();
            t.max(0.0) + (-t.abs()).exp().ln_1p()
        })
        .sum::<f64>()
        / n as f64;
    let dev: Cpu = Default::default();
    let got: f64 = ZStandardised::default()
        .forward(dev.tensor_from_vec(z, (n, c)), &y)
        .array();
    approx::assert_abs_diff_eq!(got, naive, epsilon = 1e-12);
    check_logits_gradient(&ZStandardised::default(), n, c, 2.0);
}

#[test]
fn z_standardised_refuses_a_constant_row_naming_the_sample() {
    let dev: Cpu = Default::default();
    // sample 1 is constant: zero variance
    let z = vec![0.5, -1.0, 2.0, 3.0, 3.0, 3.0, 1.0, 0.0, -1.0];
    let err = ZStandardised::default()
        .try_forward(dev.tensor_from_vec(z.clone(), (3, 3)), &[0, 1, 2])
        .expect_err("a constant row has no standardisation");
    assert_eq!(
        err,
        LossError::Requirement {
            loss: "z_standardised",
            message: "row has zero variance",
            sample: Some(1),
        }
    );
    assert_eq!(
        err.to_string(),
        "`z_standardised` cannot be computed for sample 1: row has zero variance"
    );
    // with a tape too
    let traced = dev.tensor_from_vec(z, (3, 3)).leaky_trace();
    assert!(ZStandardised::default()
        .try_forward(traced, &[0, 1, 2])
        .is_err());
}

#[test]
fn weighted_bce_matches_a_naive_loop() {
    let dev: Cpu = Default::default();
    let p = [0.9, 0.2, 0.6, 0.3];
    let y = [1.0, 0.0, 0.0, 1.0];
    let naive: f64 = p
        .iter()
        .zip(&y)
        .map(|(p, y)| -(2.0 * y * (p + 1e-12f64).ln() + (1.0 - y) * (1.0 - p + 1e-12f64).ln()))
        .sum::<f64>()
        / 4.0;
    let pt: Tensor<Rank1<4>, f64, _> = dev.tensor(p);
    let yt: Tensor<Rank1<4>, f64, _> = dev.tensor(y);
    let ours = WeightedBce::default().forward(pt.leaky_trace(), &yt);
    approx::assert_abs_diff_eq!(ours.array(), naive, epsilon = 1e-12);
    let g = ours.backward().get(&pt).array();
    for j in 0..4 {
        let d = if y[j] == 1.0 {
            -2.0 / (p[j] + 1e-12)
        } else {
            1.0 / (1.0 - p[j] + 1e-12)
        } / 4.0;
        approx::assert_abs_diff_eq!(g[j], d, epsilon = 1e-9);
    }
}

/// A filter written as a block (as rustfmt wraps long conditions) is a condition.
#[loss(pairs)]
pub fn positive_negatives(s: Similarity, y: Labels) -> PerAnchor {
    sum(
        neg(i).filter(|j| {
            let shifted = s[i][j] - 0.25;
            shifted > 0.0
        }),
        |j| s[i][j],
    )
}

#[test]
fn a_block_can_end_in_a_condition() {
    let dev: Cpu = Default::default();
    let s = dev.tensor_from_vec(
        vec![1.0f64, 0.5, 0.1, 0.5, 1.0, 0.3, 0.1, 0.3, 1.0],
        (3usize, 3usize),
    );
    let v: f64 = PositiveNegatives::default()
        .forward(Similarities(s), &[0usize, 1, 0][..])
        .array();
    // anchor 0: negatives {1} with s = 0.5 > 0.25; anchor 1: {0: 0.5, 2: 0.3}; anchor 2: {1: 0.3}
    approx::assert_abs_diff_eq!(v, (0.5 + 0.8 + 0.3) / 3.0, epsilon = 1e-12);
}

// ----- declared inputs: a user loss over two logits inputs and a per-sample weight -----

/// Distillation with a per-sample weight, no packing: `w[i] · (KL(softmax(t/T) ‖
/// softmax(z/T)) + CE(z/T, y))`, the teacher `t` and the weight `w` declared inputs.
#[loss(logits)]
fn weighted_distill(
    z: Logits,
    y: Labels,
    t: Given<samples, classes>,
    w: Given<samples>,
    #[hyper(default = 2.0, positive)] temp: f64,
) -> PerSample {
    let lz = logsumexp(classes, |k| z[i][k] / temp);
    let lt = logsumexp(classes, |k| t[i][k] / temp);
    let kl = sum(classes, |k| {
        exp(t[i][k] / temp - lt) * ((t[i][k] / temp - lt) - (z[i][k] / temp - lz))
    });
    w[i] * (kl + lz - z[i][y[i]] / temp)
}

/// Two differentiable heads: CE of `z` at `y`, CE of `a` at `g`, and a masked squared
/// difference between them.
#[loss(logits)]
fn two_heads(
    z: Logits,
    y: Labels,
    a: Traced<samples, classes>,
    m: Mask<samples, classes>,
    g: Index<samples, classes>,
) -> PerSample {
    let lz = logsumexp(classes, |k| z[i][k]);
    let la = logsumexp(classes, |k| a[i][k]);
    lz - z[i][y[i]] + la - a[i][g[i]] + sum(classes, |k| m[i][k] * sq(z[i][k] - a[i][k]))
}

fn lse(xs: &[f64]) -> f64 {
    let m = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    m + xs.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

fn weighted_distill_naive(
    z: &[f64],
    y: &[usize],
    t: &[f64],
    w: &[f64],
    c: usize,
    temp: f64,
) -> f64 {
    let n = y.len();
    let mut total = 0.0;
    for i in 0..n {
        let zs: Vec<f64> = z[i * c..(i + 1) * c].iter().map(|v| v / temp).collect();
        let ts: Vec<f64> = t[i * c..(i + 1) * c].iter().map(|v| v / temp).collect();
        let (lz, lt) = (lse(&zs), lse(&ts));
        let mut kl = 0.0;
        for k in 0..c {
            let (lp, lq) = (ts[k] - lt, zs[k] - lz);
            kl += lp.exp() * (lp - lq);
        }
        total += w[i] * (kl + lz - zs[y[i]]);
    }
    total / n as f64
}

fn two_heads_naive(z: &[f64], y: &[usize], a: &[f64], m: &[f64], g: &[usize], c: usize) -> f64 {
    let n = y.len();
    let mut total = 0.0;
    for i in 0..n {
        let row = |x: &[f64]| x[i * c..(i + 1) * c].to_vec();
        let (zr, ar) = (row(z), row(a));
        total += lse(&zr) - zr[y[i]] + lse(&ar) - ar[g[i]];
        for k in 0..c {
            total += m[i * c + k] * (zr[k] - ar[k]).powi(2);
        }
    }
    total / n as f64
}

type Matrix = Tensor<(usize, usize), f64, Cpu>;

fn declared_case(n: usize, c: usize) -> (Matrix, Vec<usize>, Matrix, Vec<f64>) {
    let dev: Cpu = Default::default();
    let (z, y) = logits_case(n, c, 7, 2.0);
    let (t, _) = logits_case(n, c, 8, 3.0);
    let w: Vec<f64> = (0..n).map(|i| 0.5 + i as f64 * 0.25).collect();
    (
        dev.tensor_from_vec(z, (n, c)),
        y,
        dev.tensor_from_vec(t, (n, c)),
        w,
    )
}

#[test]
fn declared_teacher_and_weight_match_a_naive_loop_and_finite_differences() {
    let (n, c) = (5, 4);
    let (z, y, t, w) = declared_case(n, c);
    let loss = WeightedDistill::default();
    let got = loss.forward((z.clone(), t.clone(), w.clone()), &y).array();
    let want = weighted_distill_naive(&z.as_vec(), &y, &t.as_vec(), &w, c, 2.0);
    approx::assert_abs_diff_eq!(got, want, epsilon = 1e-12);
    // a slice works as well as a vector for the weight
    let got_slice = loss.forward((z.clone(), &t, &w[..]), &y).array();
    assert_eq!(got, got_slice);
    let report = losskit::check::gradient_of(
        |x| loss.try_forward((x, t.clone(), w.clone()), &y),
        &z,
        losskit::check::Tolerance::default(),
    )
    .expect("runs");
    assert!(report.passed(), "{report}");
}

fn two_heads_case(n: usize, c: usize) -> (Matrix, Vec<usize>, Matrix, Matrix, Vec<usize>) {
    let dev: Cpu = Default::default();
    let (z, y) = logits_case(n, c, 3, 2.0);
    let (a, g) = logits_case(n, c, 4, 2.0);
    let m: Vec<f64> = (0..n * c)
        .map(|k| ((k * 7) % 3 == 0) as u8 as f64)
        .collect();
    let a = dev.tensor_from_vec(a, (n, c));
    (
        dev.tensor_from_vec(z, (n, c)),
        y,
        a,
        dev.tensor_from_vec(m, (n, c)),
        g,
    )
}

#[test]
fn traced_declared_input_gets_its_gradient_from_the_one_backward() {
    let (n, c) = (4, 3);
    let (z, y, a, m, g) = two_heads_case(n, c);
    let loss = TwoHeads::default();
    let got = loss
        .forward((z.clone(), a.clone(), m.clone(), g.clone()), &y)
        .array();
    let want = two_heads_naive(&z.as_vec(), &y, &a.as_vec(), &m.as_vec(), &g, c);
    approx::assert_abs_diff_eq!(got, want, epsilon = 1e-12);
    let tol = losskit::check::Tolerance::default();
    // each differentiable input against finite differences, closing over the other
    let wrt_z = losskit::check::gradient_of(
        |x| loss.try_forward((x, a.clone(), m.clone(), g.clone()), &y),
        &z,
        tol,
    )
    .expect("runs");
    assert!(wrt_z.passed(), "{wrt_z}");
    let wrt_a = losskit::check::gradient_of(
        |x| loss.try_forward((z.leaky_trace(), x, m.clone(), g.clone()), &y),
        &a,
        tol,
    )
    .expect("runs");
    assert!(wrt_a.passed(), "{wrt_a}");
    // both gradients from one backward: the tapes merge into one graph
    let out = loss.forward((z.leaky_trace(), a.leaky_trace(), m.clone(), g.clone()), &y);
    let grads = out.backward();
    assert_eq!(grads.get(&z).as_vec().len(), n * c);
    // ∂L/∂a sums to 0 over the classes of a row but for the masked term: check one row
    // against a hand derivative
    let (zv, av, mv) = (z.as_vec(), a.as_vec(), m.as_vec());
    let ga = grads.get(&a).as_vec();
    for i in 0..n {
        let row: Vec<f64> = av[i * c..(i + 1) * c].to_vec();
        let l = lse(&row);
        for k in 0..c {
            let p = (row[k] - l).exp();
            let d = p
                - f64::from(u8::from(g[i] == k))
                - 2.0 * mv[i * c + k] * (zv[i * c + k] - av[i * c + k]);
            approx::assert_abs_diff_eq!(ga[i * c + k], d / n as f64, epsilon = 1e-12);
        }
    }
}

#[test]
fn permuted_and_broadcast_declared_inputs_match_contiguous_ones() {
    let dev: Cpu = Default::default();
    let (y, g) = (vec![0usize, 2, 1, 2], vec![1usize, 0, 2, 2]);
    let z: Tensor<Rank2<4, 3>, f64, _> = dev.sample_normal();
    let m: Tensor<Rank2<4, 3>, f64, _> =
        dev.tensor([[1., 0., 1.], [0., 0., 1.], [1., 1., 1.], [0., 1., 0.]]);
    let loss = TwoHeads::default();
    // permuted: `a` stored transposed
    let at: Tensor<Rank2<3, 4>, f64, _> = dev.sample_normal();
    let a_contig: Tensor<Rank2<4, 3>, f64, _> = dev.tensor_from_vec(
        (0..12).map(|k| at.as_vec()[(k % 3) * 4 + k / 3]).collect(),
        Rank2::<4, 3>::default(),
    );
    let out = loss.forward(
        (
            z.leaky_trace(),
            at.leaky_trace().permute::<Rank2<4, 3>, _>(),
            m.clone(),
            g.clone(),
        ),
        &y,
    );
    let value = out.array();
    let ga = out.backward().get(&at).as_vec();
    let out = loss.forward(
        (
            z.leaky_trace(),
            a_contig.leaky_trace(),
            m.clone(),
            g.clone(),
        ),
        &y,
    );
    approx::assert_abs_diff_eq!(value, out.array(), epsilon = 1e-12);
    let gc = out.backward().get(&a_contig).as_vec();
    let want: Vec<f64> = (0..12).map(|k| gc[(k % 4) * 3 + k / 4]).collect();
    for (got, want) in ga.iter().zip(&want) {
        approx::assert_abs_diff_eq!(got, want, epsilon = 1e-12);
    }
    // broadcast: one row of `a` for every sample; its gradient sums over the samples
    let row: Tensor<Rank1<3>, f64, _> = dev.tensor([0.3, -1.0, 2.0]);
    let out = loss.forward(
        (
            z.leaky_trace(),
            row.leaky_trace().broadcast::<Rank2<4, 3>, _>(),
            m.clone(),
            g.clone(),
        ),
        &y,
    );
    let value = out.array();
    let gr = out.backward().get(&row).as_vec();
    let full: Tensor<Rank2<4, 3>, f64, _> = dev.tensor([[0.3, -1.0, 2.0]; 4]);
    let out = loss.forward((z.leaky_trace(), full.leaky_trace(), m, g), &y);
    approx::assert_abs_diff_eq!(value, out.array(), epsilon = 1e-12);
    let gf = out.backward().get(&full).as_vec();
    for k in 0..3 {
        let want: f64 = (0..4).map(|i| gf[i * 3 + k]).sum();
        approx::assert_abs_diff_eq!(gr[k], want, epsilon = 1e-12);
    }
}

#[test]
fn declared_inputs_are_validated() {
    let dev: Cpu = Default::default();
    let (n, c) = (4, 3);
    let (z, y, a, m, g) = two_heads_case(n, c);
    let loss = TwoHeads::default();
    // a shared axis of another size names both inputs and the axis
    let short: Matrix = dev.zeros_like(&(n, c + 1));
    let err = loss
        .try_forward((z.clone(), short, m.clone(), g.clone()), &y)
        .expect_err("refused");
    assert_eq!(
        err,
        LossError::AxisMismatch {
            axis: "classes",
            expected_by: "logits",
            expected: c,
            found_in: "a",
            found: c + 1,
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains("`a`") && msg.contains("`logits`") && msg.contains("`classes`"),
        "{msg}"
    );
    // finiteness, per input
    let mut bad = a.as_vec();
    bad[5] = f64::NAN;
    let err = loss
        .try_forward(
            (
                z.clone(),
                dev.tensor_from_vec(bad, (n, c)),
                m.clone(),
                g.clone(),
            ),
            &y,
        )
        .expect_err("refused");
    assert!(
        matches!(
            err,
            LossError::NonFinite {
                input: "a",
                index: 5,
                ..
            }
        ),
        "{err:?}"
    );
    // a label out of its set
    let err = loss
        .try_forward((z.clone(), a.clone(), m.clone(), vec![0, 3, 0, 0]), &y)
        .expect_err("refused");
    assert_eq!(
        err,
        LossError::IndexOutOfRange {
            input: "g",
            index: 1,
            label: 3,
            set: "classes",
            size: c
        }
    );
    // a mask that is not 0/1
    let mut half = m.as_vec();
    half[2] = 0.5;
    let err = loss
        .try_forward(
            (
                z.clone(),
                a.clone(),
                dev.tensor_from_vec(half, (n, c)),
                g.clone(),
            ),
            &y,
        )
        .expect_err("refused");
    assert_eq!(
        err,
        LossError::NotAMask {
            input: "m",
            index: 2,
            value: 0.5
        }
    );
    // a per-sample weight of the wrong length
    let (z, y, t, _) = declared_case(n, c);
    let err = WeightedDistill::default()
        .try_forward((z, t, vec![1.0; n + 2]), &y)
        .expect_err("refused");
    assert!(
        matches!(
            err,
            LossError::AxisMismatch {
                axis: "samples",
                found_in: "w",
                found: 6,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn declared_inputs_are_described() {
    use losskit::Kernel;
    let info = TwoHeads::INFO;
    let described: Vec<(&str, &str, &str)> = info
        .declared
        .iter()
        .map(|d| (d.name, d.shape, d.role.name()))
        .collect();
    assert_eq!(
        described,
        [
            ("a", "[N, C]", "differentiable"),
            ("m", "[N, C]", "mask"),
            ("g", "[N]", "labels")
        ]
    );
    assert_eq!(info.declared[2].indexes.map(|s| s.name), Some("classes"));
}

/// A pairs loss over declared inputs: a constant weight per anchor, a constant
/// temperature per pair and a traced bias per reference.
#[loss(pairs)]
pub fn tempered_pairs(
    s: Similarity,
    y: Labels,
    w: Given<samples>,
    t: Given<samples, refs>,
    b: Traced<refs>,
) -> PerAnchor {
    w[i] * mean(others(i), |j| softplus((s[i][j] + b[j]) / t[i][j]))
}

/// [`tempered_pairs`] in plain loops: the mean over anchors of the weighted mean over the
/// references `j ≠ i` (all of them against a reference set).
fn tempered_pairs_naive(s: &[f64], m: usize, w: &[f64], t: &[f64], b: &[f64], itself: bool) -> f64 {
    let n = w.len();
    let mut total = 0.0;
    for i in 0..n {
        let js: Vec<usize> = (0..m).filter(|&j| !(itself && j == i)).collect();
        let mean = js
            .iter()
            .map(|&j| {
                let x = (s[i * m + j] + b[j]) / t[i * m + j];
                (1.0 + x.exp()).ln()
            })
            .sum::<f64>()
            / js.len() as f64;
        total += w[i] * mean;
    }
    total / n as f64
}

/// Cosine similarities of the rows of `a` `[n, d]` with those of `r` `[m, d]`.
fn cosines(a: &[f64], r: &[f64], d: usize) -> Vec<f64> {
    let norm = |x: &[f64]| x.iter().map(|v| v * v).sum::<f64>().sqrt();
    let mut out = Vec::new();
    for x in a.chunks(d) {
        for z in r.chunks(d) {
            let dot: f64 = x.iter().zip(z).map(|(p, q)| p * q).sum();
            out.push(dot / (norm(x) * norm(z)));
        }
    }
    out
}

#[test]
fn a_pairs_loss_takes_declared_inputs_in_every_form() {
    let dev: Cpu = Default::default();
    let (n, m, d) = (4, 3, 3);
    let (e, y) = logits_case(n, d, 11, 1.0);
    let (r, _) = logits_case(m, d, 12, 1.0);
    let labels = y.iter().map(|&l| l % 2).collect::<Vec<_>>();
    let ref_labels = vec![0, 1, 1];
    let w: Vec<f64> = (0..n).map(|i| 0.5 + 0.25 * i as f64).collect();
    let t_of =
        |cols: usize| -> Vec<f64> { (0..n * cols).map(|k| 0.5 + 0.1 * (k % 5) as f64).collect() };
    let bias = |cols: usize| -> Tensor<(usize,), f64, Cpu> {
        dev.tensor_from_vec((0..cols).map(|j| 0.2 * j as f64 - 0.1).collect(), (cols,))
    };
    let loss = TemperedPairs::default();
    let tol = losskit::check::Tolerance::default();
    // embeddings against the batch itself
    let emb: Matrix = dev.tensor_from_vec(e.clone(), (n, d));
    let (t, b) = (dev.tensor_from_vec(t_of(n), (n, n)), bias(n));
    let got = loss
        .forward((emb.clone(), w.clone(), t.clone(), b.clone()), &labels[..])
        .array();
    let s = cosines(&e, &e, d);
    let want = tempered_pairs_naive(&s, n, &w, &t.as_vec(), &b.as_vec(), true);
    approx::assert_abs_diff_eq!(got, want, epsilon = 1e-12);
    let wrt_e = losskit::check::gradient_of(
        |x| loss.try_forward((x, w.clone(), t.clone(), b.clone()), &labels[..]),
        &emb,
        tol,
    )
    .expect("runs");
    assert!(wrt_e.passed(), "{wrt_e}");
    let wrt_b = losskit::check::gradient_of(
        |x| loss.try_forward((emb.leaky_trace(), w.clone(), t.clone(), x), &labels[..]),
        &b,
        tol,
    )
    .expect("runs");
    assert!(wrt_b.passed(), "{wrt_b}");
    // a reference set, both sides traced
    let refs: Matrix = dev.tensor_from_vec(r.clone(), (m, d));
    let pair_labels = PairLabels {
        labels: &labels,
        ref_labels: &ref_labels,
    };
    let (t, b) = (dev.tensor_from_vec(t_of(m), (n, m)), bias(m));
    let out = loss.forward(
        (
            WithRefs(emb.leaky_trace(), refs.leaky_trace()),
            w.clone(),
            t.clone(),
            b.leaky_trace(),
        ),
        &pair_labels,
    );
    let s = cosines(&e, &r, d);
    let want = tempered_pairs_naive(&s, m, &w, &t.as_vec(), &b.as_vec(), false);
    approx::assert_abs_diff_eq!(out.array(), want, epsilon = 1e-12);
    let grads = out.backward();
    let wrt_r = losskit::check::gradient_of(
        |x| {
            loss.try_forward(
                (
                    WithRefs(emb.leaky_trace(), x),
                    w.clone(),
                    t.clone(),
                    b.clone(),
                ),
                &pair_labels,
            )
        },
        &refs,
        tol,
    )
    .expect("runs");
    assert!(wrt_r.passed(), "{wrt_r}");
    // the one backward gave every traced input its gradient
    assert!(grads.get(&refs).as_vec().iter().any(|&g| g != 0.0));
    assert!(grads.get(&b).as_vec().iter().any(|&g| g != 0.0));
    // a similarity matrix: the same value as the naive loop
    let sim: Matrix = dev.tensor_from_vec(s.clone(), (n, m));
    let got = loss
        .forward(
            (Similarities(sim), w.clone(), t.clone(), b.clone()),
            &pair_labels,
        )
        .array();
    approx::assert_abs_diff_eq!(got, want, epsilon = 1e-12);
    // a temperature of the wrong shape names both inputs and the set
    let wide = dev.tensor_from_vec(vec![1.0; n * (m + 1)], (n, m + 1));
    let err = loss
        .try_forward(
            (
                WithRefs(emb.clone(), refs.clone()),
                w.clone(),
                wide,
                b.clone(),
            ),
            &pair_labels,
        )
        .unwrap_err();
    assert_eq!(
        err,
        LossError::AxisMismatch {
            axis: "refs",
            expected_by: "similarities",
            expected: m,
            found_in: "t",
            found: m + 1,
        }
    );
}

#[test]
fn a_pairs_loss_with_declared_inputs_evaluates_by_name() {
    use losskit::family::dynamic::{evaluate, Input, Precision};
    let dev: Cpu = Default::default();
    let (n, d) = (4, 3);
    let (e, y) = logits_case(n, d, 21, 1.0);
    let labels: Vec<usize> = y.iter().map(|&l| l % 2).collect();
    let w = vec![1.0, 0.5, 2.0, 1.5];
    let t: Vec<f64> = (0..n * n).map(|k| 0.4 + 0.05 * k as f64).collect();
    let b: Vec<f64> = (0..n).map(|j| 0.1 * j as f64).collect();
    let emb: Matrix = dev.tensor_from_vec(e.clone(), (n, d));
    let bt: Tensor<(usize,), f64, Cpu> = dev.tensor_from_vec(b.clone(), (n,));
    let tt: Matrix = dev.tensor_from_vec(t.clone(), (n, n));
    let out = TemperedPairs::default().forward(
        (emb.leaky_trace(), w.clone(), tt, bt.leaky_trace()),
        &labels[..],
    );
    let want = out.array();
    let grads = out.backward();
    let inputs = [
        Input::new("embeddings", vec![n, d], e),
        Input::new(
            "labels",
            vec![n],
            labels.iter().map(|&l| l as f64).collect(),
        ),
        Input::new("w", vec![n], w),
        Input::new("t", vec![n, n], t),
        Input::new("b", vec![n], b),
    ];
    let got = evaluate::<TemperedPairs>(&inputs, &[], Precision::F64).expect("evaluates");
    assert_eq!(got.loss, want);
    let names: Vec<&str> = got.grads.iter().map(|g| g.input).collect();
    assert_eq!(names, ["embeddings", "b"]);
    assert_eq!(got.grads[0].values, grads.get(&emb).as_vec());
    assert_eq!(got.grads[1].values, grads.get(&bt).as_vec());
}
