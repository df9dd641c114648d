//! Test support shared by the loss and family tests.
//!
//! - [`Rng`]: a small deterministic generator (SplitMix64, no global state).
//! - Random cases for both families, with extreme inputs on request.
//! - Naive f64 references for the binary family: the amplification and the soft
//!   confusion matrix computed with plain loops, each cell summed on its own.
//! - Gradient checks through the real dfdx path: `forward` on a `leaky_trace()` input,
//!   `backward()`, `grads.get(&x).as_vec()`, against central finite differences in f64
//!   (one-sided at the ends of `[0, 1]` for probabilities), and f32 against f64.
//! - Suites the binary losses share: each takes the loss and a naive f64 formula of its
//!   value over a [`Confusion`].

use dfdx::prelude::*;

use crate::core::kernel::Kernel;
use crate::core::real::Real;
use crate::{FromLogits, Loss, LossError};

// ---------------------------------------------------------------------------------------
// Deterministic random numbers
// ---------------------------------------------------------------------------------------

/// SplitMix64 (Steele, Lea & Flood): a 64-bit state and one mixing function.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub(crate) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A uniformly random permutation of `0..n` (Fisher–Yates).
    pub(crate) fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            p.swap(i, self.below(i + 1));
        }
        p
    }
}

// ---------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------

/// Asserts `|got − want| ≤ abs + rel·|want|`, naming `what` on failure.
#[track_caller]
pub(crate) fn assert_close(got: f64, want: f64, rel: f64, abs: f64, what: &str) {
    assert!(
        got.is_finite() && (got - want).abs() <= abs + rel * want.abs(),
        "{what}: got {got:e}, want {want:e} (diff {:e}, rel {rel:e}, abs {abs:e})",
        (got - want).abs()
    );
}

/// The largest absolute value (0 for an empty slice).
pub(crate) fn max_abs(xs: &[f64]) -> f64 {
    xs.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// The Display message of a `forward` that must fail, caught from its panic.
pub(crate) fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let err = std::panic::catch_unwind(f).expect_err("forward was expected to panic");
    if let Some(s) = err.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = err.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        panic!("panic payload is not a string")
    }
}

// ---------------------------------------------------------------------------------------
// The binary family: naive references
// ---------------------------------------------------------------------------------------

/// How binary predictions are passed to the loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pred {
    /// Probabilities in `[0, 1]`.
    Probs,
    /// Logits, wrapped in `FromLogits`.
    Logits,
}

/// The family's amplification settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Amp {
    pub(crate) amplify: bool,
    pub(crate) scale: f64,
}

/// Every combination the binary suites run: amplification on (moderate and the default
/// scale) and off, probabilities and logits.
pub(crate) const SETTINGS: [(Amp, Pred); 6] = [
    (AMP5, Pred::Probs),
    (AMP73, Pred::Probs),
    (PURE, Pred::Probs),
    (AMP5, Pred::Logits),
    (AMP73, Pred::Logits),
    (PURE, Pred::Logits),
];

/// Amplification with a moderate scale, so gradients are not negligible.
pub(crate) const AMP5: Amp = Amp {
    amplify: true,
    scale: 5.0,
};
/// Amplification with the paper's default scale.
pub(crate) const AMP73: Amp = Amp {
    amplify: true,
    scale: 73.0,
};
/// The un-amplified "pure" variant.
pub(crate) const PURE: Amp = Amp {
    amplify: false,
    scale: 73.0,
};

/// The loss with the family's hyper-parameters set to `amp`.
pub(crate) fn with_amp<L: Kernel>(mut loss: L, amp: Amp) -> L {
    loss.set_hyper("amplify", if amp.amplify { 1.0 } else { 0.0 })
        .expect("a binary loss with amplification has `amplify`");
    loss.set_hyper("amplification", amp.scale)
        .expect("a binary loss with amplification has `amplification`");
    loss
}

/// `1 / (1 + e^{−x})`, without overflow.
pub(crate) fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `σ'(x) = σ(x)·σ(−x)`, accurate in both tails.
pub(crate) fn sigmoid_slope(x: f64) -> f64 {
    sigmoid(x) * sigmoid(-x)
}

/// The probability a prediction stands for.
pub(crate) fn probability(x: f64, pred: Pred) -> f64 {
    match pred {
        Pred::Probs => x,
        Pred::Logits => sigmoid(x),
    }
}

/// `A(p) = σ(L·(p − ½))`, or `p` without amplification.
pub(crate) fn amplified(p: f64, amp: Amp) -> f64 {
    if amp.amplify {
        sigmoid(amp.scale * (p - 0.5))
    } else {
        p
    }
}

/// `∂a/∂x` for one prediction: `L·σ'(L(p − ½))` (or 1) times `σ'(z)` (or 1).
pub(crate) fn chain_factor(x: f64, pred: Pred, amp: Amp) -> f64 {
    let p = probability(x, pred);
    let da_dp = if amp.amplify {
        amp.scale * sigmoid_slope(amp.scale * (p - 0.5))
    } else {
        1.0
    };
    let dp_dx = match pred {
        Pred::Probs => 1.0,
        Pred::Logits => sigmoid_slope(x),
    };
    da_dp * dp_dx
}

/// The amplified predictions of a batch.
pub(crate) fn amplified_batch(x: &[f64], pred: Pred, amp: Amp) -> Vec<f64> {
    x.iter()
        .map(|&x| amplified(probability(x, pred), amp))
        .collect()
}

/// A soft confusion matrix with every cell summed on its own, plus the class counts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Confusion {
    pub(crate) tp: f64,
    pub(crate) fp: f64,
    pub(crate) fn_: f64,
    pub(crate) tn: f64,
    /// `Σ a_i`.
    pub(crate) sum_a: f64,
    /// `Σ y_i`.
    pub(crate) y1: f64,
    /// `Σ (1 − y_i)`.
    pub(crate) y0: f64,
    /// The batch size.
    pub(crate) n: f64,
}

/// `TP = Σ y·a`, `FP = Σ (1−y)·a`, `FN = Σ y·(1−a)`, `TN = Σ (1−y)·(1−a)`, by loops.
pub(crate) fn confusion(a: &[f64], y: &[f64]) -> Confusion {
    let mut c = Confusion {
        tp: 0.0,
        fp: 0.0,
        fn_: 0.0,
        tn: 0.0,
        sum_a: 0.0,
        y1: 0.0,
        y0: 0.0,
        n: 0.0,
    };
    for (&a, &y) in a.iter().zip(y) {
        c.tp += y * a;
        c.fp += (1.0 - y) * a;
        c.fn_ += y * (1.0 - a);
        c.tn += (1.0 - y) * (1.0 - a);
        c.sum_a += a;
        c.y1 += y;
        c.y0 += 1.0 - y;
        c.n += 1.0;
    }
    c
}

/// A naive loss: its value from the soft confusion matrix.
pub(crate) type Metric = fn(&Confusion) -> f64;

/// The naive value of a binary loss on a batch.
pub(crate) fn naive_binary(metric: Metric, x: &[f64], y: &[f64], pred: Pred, amp: Amp) -> f64 {
    metric(&confusion(&amplified_batch(x, pred, amp), y))
}

/// `∂loss/∂a_i` of the naive formula, by central differences in `a` with one Richardson
/// step (error O(h⁴)). The formula is a smooth rational function of `a` whose curvature
/// scale is at least ~ε (MCC's square root) and whose derivatives do not depend on how
/// small `∂a/∂x` is, so this is accurate to ~1e-8 absolutely even where the gradient
/// with respect to the input is 1e-36.
pub(crate) fn naive_grad_wrt_a(metric: Metric, a: &[f64], y: &[f64]) -> Vec<f64> {
    let central = |i: usize, h: f64| {
        let (mut up, mut down) = (a.to_vec(), a.to_vec());
        up[i] += h;
        down[i] -= h;
        (metric(&confusion(&up, y)) - metric(&confusion(&down, y))) / (2.0 * h)
    };
    let h = 1e-7;
    (0..a.len())
        .map(|i| (4.0 * central(i, h / 2.0) - central(i, h)) / 3.0)
        .collect()
}

/// Integer confusion counts `(TP, FP, FN, TN)` of hard 0/1 predictions, by comparison.
pub(crate) fn hard_counts(p: &[f64], y: &[f64]) -> (f64, f64, f64, f64) {
    let (mut tp, mut fp, mut fn_, mut tn) = (0.0, 0.0, 0.0, 0.0);
    for (&p, &y) in p.iter().zip(y) {
        match (p == 1.0, y == 1.0) {
            (true, true) => tp += 1.0,
            (true, false) => fp += 1.0,
            (false, true) => fn_ += 1.0,
            (false, false) => tn += 1.0,
        }
    }
    (tp, fp, fn_, tn)
}

// ---------------------------------------------------------------------------------------
// The binary family: random cases
// ---------------------------------------------------------------------------------------

/// `n ≥ 2` targets with both classes present.
pub(crate) fn mixed_targets(rng: &mut Rng, n: usize) -> Vec<f64> {
    assert!(n >= 2);
    let mut y: Vec<f64> = (0..n)
        .map(|_| if rng.uniform() < 0.5 { 1.0 } else { 0.0 })
        .collect();
    let (i, j) = (rng.below(n), rng.below(n - 1));
    let j = if j >= i { j + 1 } else { j };
    y[i] = 1.0;
    y[j] = 0.0;
    y
}

/// Predictions: probabilities spread over `[0, 1]`, or logits in `[−6, 6]`.
pub(crate) fn random_preds(rng: &mut Rng, n: usize, pred: Pred) -> Vec<f64> {
    (0..n)
        .map(|_| match pred {
            Pred::Probs => rng.uniform(),
            Pred::Logits => rng.range(-6.0, 6.0),
        })
        .collect()
}

/// Predictions including the extremes: probabilities exactly 0, 1 and ½ (and values
/// near ½), or logits of magnitude 50 and 0, mixed with ordinary values.
pub(crate) fn extreme_preds(rng: &mut Rng, n: usize, pred: Pred) -> Vec<f64> {
    let specials: &[f64] = match pred {
        Pred::Probs => &[0.0, 1.0, 0.5, 0.47, 0.53],
        Pred::Logits => &[50.0, -50.0, 0.0, 49.5, -48.0],
    };
    let mut x = random_preds(rng, n, pred);
    for (k, &s) in specials.iter().enumerate() {
        if k < n {
            x[k] = s;
        }
    }
    let order = rng.permutation(n);
    order.into_iter().map(|i| x[i]).collect()
}

// ---------------------------------------------------------------------------------------
// The binary family through dfdx
// ---------------------------------------------------------------------------------------

type Vector<E, T = NoneTape> = Tensor<(usize,), E, Cpu, T>;
type Scalar<E, T = NoneTape> = Tensor<(), E, Cpu, T>;
type Owned<E> = OwnedTape<E, Cpu>;

/// A binary-family loss in precision `E`, with and without a tape, on probabilities and
/// on logits (every shipped binary loss is one).
pub(crate) trait BinaryLoss<E: Dtype>:
    Kernel
    + Loss<Vector<E>, Vector<E>, Output = Scalar<E>>
    + Loss<Vector<E, Owned<E>>, Vector<E>, Output = Scalar<E, Owned<E>>>
    + Loss<FromLogits<Vector<E>>, Vector<E>, Output = Scalar<E>>
    + Loss<FromLogits<Vector<E, Owned<E>>>, Vector<E>, Output = Scalar<E, Owned<E>>>
{
}

impl<E: Dtype, L> BinaryLoss<E> for L where
    L: Kernel
        + Loss<Vector<E>, Vector<E>, Output = Scalar<E>>
        + Loss<Vector<E, Owned<E>>, Vector<E>, Output = Scalar<E, Owned<E>>>
        + Loss<FromLogits<Vector<E>>, Vector<E>, Output = Scalar<E>>
        + Loss<FromLogits<Vector<E, Owned<E>>>, Vector<E>, Output = Scalar<E, Owned<E>>>
{
}

pub(crate) fn to_e<E: Real>(xs: &[f64]) -> Vec<E> {
    xs.iter().map(|&x| E::from_f64(x)).collect()
}

fn to_f64<E: Real>(xs: &[E]) -> Vec<f64> {
    xs.iter().map(|&x| x.to_f64()).collect()
}

/// The loss value without a tape (`NoneTape` input).
pub(crate) fn binary_value<E, L>(
    loss: &L,
    x: &[f64],
    y: &[f64],
    pred: Pred,
) -> Result<f64, LossError>
where
    E: Dtype + Real,
    L: BinaryLoss<E>,
{
    let dev: Cpu = Default::default();
    let xt: Vector<E> = dev.tensor_from_vec(to_e(x), (x.len(),));
    let yt: Vector<E> = dev.tensor_from_vec(to_e(y), (y.len(),));
    let out = match pred {
        Pred::Probs => <L as Loss<Vector<E>, Vector<E>>>::try_forward(loss, xt, &yt)?,
        Pred::Logits => {
            <L as Loss<FromLogits<Vector<E>>, Vector<E>>>::try_forward(loss, FromLogits(xt), &yt)?
        }
    };
    Ok(out.array().to_f64())
}

/// The f64 value of the un-amplified ("pure") variant on probabilities.
pub(crate) fn pure_value<L: BinaryLoss<f64>>(loss: &L, p: &[f64], y: &[f64]) -> f64 {
    binary_value::<f64, _>(&with_amp(loss.clone(), PURE), p, y, Pred::Probs).unwrap()
}

/// The loss value and its gradient with respect to the predictions, through the tape:
/// `forward(x.leaky_trace())`, `backward()`, `grads.get(&x)`.
pub(crate) fn binary_value_and_grad<E, L>(
    loss: &L,
    x: &[f64],
    y: &[f64],
    pred: Pred,
) -> (f64, Vec<f64>)
where
    E: Dtype + Real,
    L: BinaryLoss<E>,
{
    let dev: Cpu = Default::default();
    let xt: Vector<E> = dev.tensor_from_vec(to_e(x), (x.len(),));
    let yt: Vector<E> = dev.tensor_from_vec(to_e(y), (y.len(),));
    let out = match pred {
        Pred::Probs => {
            <L as Loss<Vector<E, Owned<E>>, Vector<E>>>::forward(loss, xt.leaky_trace(), &yt)
        }
        Pred::Logits => <L as Loss<FromLogits<Vector<E, Owned<E>>>, Vector<E>>>::forward(
            loss,
            FromLogits(xt.leaky_trace()),
            &yt,
        ),
    };
    let value = out.array().to_f64();
    let grads = out.backward();
    (value, to_f64(&grads.get(&xt).as_vec()))
}

/// Asserts the loss value equals the naive one, in every [`SETTINGS`] combination, on
/// random and extreme batches of several sizes.
pub(crate) fn check_binary_values<L: BinaryLoss<f64>>(loss: &L, metric: Metric) {
    let mut rng = Rng::new(0x5eed_0001);
    for (amp, pred) in SETTINGS {
        let loss = with_amp(loss.clone(), amp);
        for &n in &[2usize, 3, 8, 33] {
            for extreme in [false, true] {
                let x = if extreme {
                    extreme_preds(&mut rng, n, pred)
                } else {
                    random_preds(&mut rng, n, pred)
                };
                let y = mixed_targets(&mut rng, n);
                let got = binary_value::<f64, _>(&loss, &x, &y, pred).unwrap();
                let want = naive_binary(metric, &x, &y, pred, amp);
                assert_close(
                    got,
                    want,
                    1e-12,
                    1e-13,
                    &format!("value {amp:?} {pred:?} x={x:?} y={y:?}"),
                );
                // the taped path computes the same value
                let (taped, _) = binary_value_and_grad::<f64, _>(&loss, &x, &y, pred);
                assert_eq!(taped, got, "taped and untaped values differ");
            }
        }
    }
}

/// Central finite difference of `f` at `x[j]`; at the ends of `[0, 1]` (when `bounded`)
/// a one-sided second-order stencil, so every evaluation stays inside the domain.
fn finite_difference(f: &dyn Fn(&[f64]) -> f64, x: &[f64], j: usize, h: f64, bounded: bool) -> f64 {
    let at = |d: f64| {
        let mut v = x.to_vec();
        v[j] += d;
        f(&v)
    };
    if bounded && x[j] - h < 0.0 {
        (-3.0 * f(x) + 4.0 * at(h) - at(2.0 * h)) / (2.0 * h)
    } else if bounded && x[j] + h > 1.0 {
        (3.0 * f(x) - 4.0 * at(-h) + at(-2.0 * h)) / (2.0 * h)
    } else {
        (at(h) - at(-h)) / (2.0 * h)
    }
}

/// Central differences of `f` at `x`, one coordinate at a time, step 1e-6.
pub(crate) fn finite_differences(x: &[f64], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    (0..x.len())
        .map(|j| finite_difference(&f, x, j, 1e-6, false))
        .collect()
}

/// Asserts the derived f64 gradient (through the tape) matches finite differences of
/// the loss value, element by element: `|g − fd| ≤ tol·(1 + |fd|)`.
pub(crate) fn check_binary_gradient_fd<L: BinaryLoss<f64>>(
    loss: &L,
    x: &[f64],
    y: &[f64],
    pred: Pred,
    tol: f64,
) {
    let (_, grad) = binary_value_and_grad::<f64, _>(loss, x, y, pred);
    let f = |v: &[f64]| binary_value::<f64, _>(loss, v, y, pred).unwrap();
    for (j, &g) in grad.iter().enumerate() {
        let fd = finite_difference(&f, x, j, 1e-6, pred == Pred::Probs);
        assert_close(
            g,
            fd,
            tol,
            tol,
            &format!("gradient [{j}] vs finite differences, {pred:?} x={x:?} y={y:?}"),
        );
    }
}

/// Asserts the derived f64 gradient matches `∂loss/∂a_i · ∂a_i/∂x_i` from the naive
/// formula, *relatively*: the derived gradient divided by the exact chain factor must
/// equal the naive `∂loss/∂a_i`. This holds where the gradient is as small as 1e-36
/// (logits of magnitude 50, probabilities 0 and 1 at L = 73), which finite differences
/// of the value cannot see.
pub(crate) fn check_binary_gradient_chain<L: BinaryLoss<f64>>(
    loss: &L,
    metric: Metric,
    x: &[f64],
    y: &[f64],
    pred: Pred,
    amp: Amp,
) {
    let (_, grad) = binary_value_and_grad::<f64, _>(loss, x, y, pred);
    let a = amplified_batch(x, pred, amp);
    let da = naive_grad_wrt_a(metric, &a, y);
    for j in 0..x.len() {
        let chain = chain_factor(x[j], pred, amp);
        assert!(
            chain > 0.0,
            "test case too extreme: chain factor underflows at {}",
            x[j]
        );
        assert_close(
            grad[j] / chain,
            da[j],
            1e-6,
            1e-7,
            &format!(
                "gradient [{j}] = {:e} over chain factor {chain:e}, {amp:?} {pred:?} x={x:?} y={y:?}",
                grad[j]
            ),
        );
    }
}

/// Runs both gradient checks on random and extreme batches: finite differences with
/// L = 5 and without amplification, the chain-rule reference in every setting.
pub(crate) fn check_binary_gradients<L: BinaryLoss<f64>>(loss: &L, metric: Metric) {
    let mut rng = Rng::new(0x5eed_0002);
    for (amp, pred) in SETTINGS {
        let loss = with_amp(loss.clone(), amp);
        for &n in &[2usize, 5, 9] {
            for extreme in [false, true] {
                let x = if extreme {
                    extreme_preds(&mut rng, n, pred)
                } else {
                    random_preds(&mut rng, n, pred)
                };
                let y = mixed_targets(&mut rng, n);
                if amp.scale <= 5.0 || !amp.amplify {
                    check_binary_gradient_fd(&loss, &x, &y, pred, 1e-6);
                }
                check_binary_gradient_chain(&loss, metric, &x, &y, pred, amp);
            }
        }
    }
}

/// Asserts f32 values and gradients agree with f64 on the same (f32-representable)
/// inputs: values within `rel` relatively, gradients within `rel` of the largest
/// gradient component.
pub(crate) fn check_binary_precisions<L: BinaryLoss<f32> + BinaryLoss<f64>>(loss: &L, rel: f64) {
    let mut rng = Rng::new(0x5eed_0003);
    for (amp, pred) in [
        (AMP5, Pred::Probs),
        (AMP73, Pred::Probs),
        (PURE, Pred::Probs),
        (AMP5, Pred::Logits),
        (AMP73, Pred::Logits),
        (PURE, Pred::Logits),
    ] {
        let loss = with_amp(loss.clone(), amp);
        for &n in &[2usize, 7, 32] {
            let x: Vec<f64> = random_preds(&mut rng, n, pred)
                .into_iter()
                .map(|v| v as f32 as f64)
                .collect();
            let y = mixed_targets(&mut rng, n);
            let (v64, g64) = binary_value_and_grad::<f64, _>(&loss, &x, &y, pred);
            let (v32, g32) = binary_value_and_grad::<f32, _>(&loss, &x, &y, pred);
            assert_close(v32, v64, rel, 1e-6, &format!("f32 value {amp:?} {pred:?}"));
            let scale = max_abs(&g64);
            assert!(scale > 0.0, "the f64 gradient vanishes on a random batch");
            for j in 0..n {
                assert_close(
                    g32[j],
                    g64[j],
                    0.0,
                    rel * scale,
                    &format!("f32 gradient [{j}] {amp:?} {pred:?}"),
                );
            }
        }
    }
}

/// Asserts value and gradient are invariant under a joint permutation of the samples.
pub(crate) fn check_binary_permutation<L: BinaryLoss<f64>>(loss: &L) {
    let mut rng = Rng::new(0x5eed_0004);
    for (amp, pred) in SETTINGS {
        let loss = with_amp(loss.clone(), amp);
        let n = 11;
        let x = random_preds(&mut rng, n, pred);
        let y = mixed_targets(&mut rng, n);
        let order = rng.permutation(n);
        let xp: Vec<f64> = order.iter().map(|&i| x[i]).collect();
        let yp: Vec<f64> = order.iter().map(|&i| y[i]).collect();
        let (v, g) = binary_value_and_grad::<f64, _>(&loss, &x, &y, pred);
        let (vp, gp) = binary_value_and_grad::<f64, _>(&loss, &xp, &yp, pred);
        assert_close(vp, v, 1e-13, 1e-14, "permuted value");
        for (k, &i) in order.iter().enumerate() {
            assert_close(gp[k], g[i], 1e-12, 1e-15, "permuted gradient");
        }
    }
}

/// Asserts a batch with only class `class` gives exactly 1 with an all-zero gradient (and
/// no NaN), in f32 and f64, in every setting, extremes included.
pub(crate) fn check_single_class<L: BinaryLoss<f32> + BinaryLoss<f64>>(loss: &L, class: f64) {
    let mut rng = Rng::new(0x5eed_0005);
    for (amp, pred) in SETTINGS {
        let loss = with_amp(loss.clone(), amp);
        for &n in &[1usize, 4, 9] {
            let x = extreme_preds(&mut rng, n, pred);
            let y = vec![class; n];
            let (v64, g64) = binary_value_and_grad::<f64, _>(&loss, &x, &y, pred);
            let (v32, g32) = binary_value_and_grad::<f32, _>(&loss, &x, &y, pred);
            let what = format!("single class {class}, {amp:?} {pred:?} x={x:?}");
            assert_eq!(v64, 1.0, "f64 value, {what}");
            assert_eq!(v32, 1.0, "f32 value, {what}");
            assert!(
                g64.iter().all(|&g| g == 0.0),
                "f64 gradient {g64:?}, {what}"
            );
            assert!(
                g32.iter().all(|&g| g == 0.0),
                "f32 gradient {g32:?}, {what}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// The logits family
// ---------------------------------------------------------------------------------------

type Matrix<E, T = NoneTape> = Tensor<(usize, usize), E, Cpu, T>;

/// A logits-family loss in precision `E`, with and without a tape, on dynamic shapes.
pub(crate) trait LogitsLoss<E: Dtype>:
    Kernel
    + Loss<Matrix<E>, [usize], Output = Scalar<E>>
    + Loss<Matrix<E, Owned<E>>, [usize], Output = Scalar<E, Owned<E>>>
{
}

impl<E: Dtype, L> LogitsLoss<E> for L where
    L: Kernel
        + Loss<Matrix<E>, [usize], Output = Scalar<E>>
        + Loss<Matrix<E, Owned<E>>, [usize], Output = Scalar<E, Owned<E>>>
{
}

/// `n × c` logits uniform in `[−scale, scale]` and labels in `0..c`.
pub(crate) fn random_logits(
    rng: &mut Rng,
    n: usize,
    c: usize,
    scale: f64,
) -> (Vec<f64>, Vec<usize>) {
    let z = (0..n * c).map(|_| rng.range(-scale, scale)).collect();
    let y = (0..n).map(|_| rng.below(c)).collect();
    (z, y)
}

/// The loss value without a tape.
pub(crate) fn logits_value<E, L>(
    loss: &L,
    z: &[f64],
    c: usize,
    y: &[usize],
) -> Result<f64, LossError>
where
    E: Dtype + Real,
    L: LogitsLoss<E>,
{
    let dev: Cpu = Default::default();
    let zt: Matrix<E> = dev.tensor_from_vec(to_e(z), (z.len() / c, c));
    let out = <L as Loss<Matrix<E>, [usize]>>::try_forward(loss, zt, y)?;
    Ok(out.array().to_f64())
}

/// The loss value and its gradient through the tape.
pub(crate) fn logits_value_and_grad<E, L>(
    loss: &L,
    z: &[f64],
    c: usize,
    y: &[usize],
) -> (f64, Vec<f64>)
where
    E: Dtype + Real,
    L: LogitsLoss<E>,
{
    let dev: Cpu = Default::default();
    let zt: Matrix<E> = dev.tensor_from_vec(to_e(z), (z.len() / c, c));
    let out = <L as Loss<Matrix<E, Owned<E>>, [usize]>>::forward(loss, zt.leaky_trace(), y);
    let value = out.array().to_f64();
    let grads = out.backward();
    (value, to_f64(&grads.get(&zt).as_vec()))
}

/// Asserts the derived f64 gradient matches central finite differences:
/// `|g − fd| ≤ tol·(1 + |fd|)`.
pub(crate) fn check_logits_gradient_fd<L: LogitsLoss<f64>>(
    loss: &L,
    z: &[f64],
    c: usize,
    y: &[usize],
    tol: f64,
) {
    let (_, grad) = logits_value_and_grad::<f64, _>(loss, z, c, y);
    let f = |v: &[f64]| logits_value::<f64, _>(loss, v, c, y).unwrap();
    for (j, &g) in grad.iter().enumerate() {
        let fd = finite_difference(&f, z, j, 1e-6, false);
        assert_close(
            g,
            fd,
            tol,
            tol,
            &format!("gradient [{j}] vs finite differences, z={z:?} y={y:?}"),
        );
    }
}

/// Asserts f32 value and gradient agree with f64 on the same inputs (values within `rel`
/// relatively, gradients within `rel` of the largest component).
pub(crate) fn check_logits_precisions<L: LogitsLoss<f32> + LogitsLoss<f64>>(
    loss: &L,
    z: &[f64],
    c: usize,
    y: &[usize],
    rel: f64,
) {
    let z: Vec<f64> = z.iter().map(|&v| v as f32 as f64).collect();
    let (v64, g64) = logits_value_and_grad::<f64, _>(loss, &z, c, y);
    let (v32, g32) = logits_value_and_grad::<f32, _>(loss, &z, c, y);
    assert_close(v32, v64, rel, 1e-6, "f32 value");
    let scale = max_abs(&g64);
    for j in 0..z.len() {
        assert_close(
            g32[j],
            g64[j],
            0.0,
            rel * scale,
            &format!("f32 gradient [{j}]"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_spread() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let xs: Vec<f64> = (0..1000).map(|_| a.uniform()).collect();
        let ys: Vec<f64> = (0..1000).map(|_| b.uniform()).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().all(|&x| (0.0..1.0).contains(&x)));
        let mean = xs.iter().sum::<f64>() / 1000.0;
        assert!((mean - 0.5).abs() < 0.05, "{mean}");
        assert_ne!(Rng::new(8).next_u64(), Rng::new(7).next_u64());
        let mut p = Rng::new(3).permutation(20);
        p.sort_unstable();
        assert_eq!(p, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn naive_confusion_satisfies_the_identities() {
        let mut rng = Rng::new(11);
        for n in [2, 5, 40] {
            let a: Vec<f64> = (0..n).map(|_| rng.uniform()).collect();
            let y = mixed_targets(&mut rng, n);
            let c = confusion(&a, &y);
            assert!((c.tp + c.fn_ - c.y1).abs() < 1e-12);
            assert!((c.fp + c.tn - c.y0).abs() < 1e-12);
            assert!((c.tp + c.fp + c.fn_ + c.tn - c.n).abs() < 1e-12);
            assert!((c.tp + c.fp - c.sum_a).abs() < 1e-12);
        }
    }

    #[test]
    fn finite_differences_are_exact_on_a_quadratic() {
        // f(x) = x0² + 3·x0·x1: ∂f/∂x0 = 2x0 + 3x1, including one-sided at the bounds
        let f = |v: &[f64]| v[0] * v[0] + 3.0 * v[0] * v[1];
        for x in [[0.0, 0.5], [1.0, 0.25], [0.4, 0.9]] {
            let fd = finite_difference(&f, &x, 0, 1e-4, true);
            assert!((fd - (2.0 * x[0] + 3.0 * x[1])).abs() < 1e-8, "{x:?}: {fd}");
        }
    }

    #[test]
    fn sigmoid_slope_is_accurate_in_the_tails() {
        // σ'(50) = e^{-50}/(1+e^{-50})²
        let want = (-50.0f64).exp() / (1.0 + (-50.0f64).exp()).powi(2);
        assert!((sigmoid_slope(50.0) / want - 1.0).abs() < 1e-14);
        assert!((sigmoid_slope(-50.0) / want - 1.0).abs() < 1e-14);
        assert_eq!(sigmoid(0.0), 0.5);
    }
}
