//! Property tests over every shipped loss: random shapes, labels and values, extremes
//! included (±80 and ±1e4 logits, probabilities 0 and 1, duplicate, antipodal, zero and
//! huge embeddings, one class only, one sample), in f32 and f64.
//!
//! Each case must give either a typed error or a finite loss with finite gradients, and
//! on moderate inputs the derived f64 gradient of every differentiable input must match
//! central finite differences wherever the loss is smooth (`losskit::check`).
//!
//! A loss with declared inputs (teacher logits, adversarial logits, likelihoods, draws)
//! gets them from its `LossInfo::declared` description: the shape from their axes, real
//! values (traced or constant) from the same distribution as the family's, 0/1 for a mask,
//! labels in range of the set they index; all evaluated by name (`dynamic::evaluate`).
//!
//! The number of cases per property is small by default so CI stays quick; set
//! `LOSSKIT_PROPTEST_CASES=2000` for a longer run.

use losskit::catalogue::{self, Entry};
use losskit::check::{compare_with_differences, Tolerance};
use losskit::family::dynamic::{Input, Precision};
use losskit::{Axis, DeclaredInfo, DeclaredRole, Family};
use proptest::prelude::*;
use proptest::test_runner::Config;

fn config() -> Config {
    let cases = std::env::var("LOSSKIT_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// The shipped losses of one family.
fn losses(family: Family) -> impl Iterator<Item = &'static Entry> {
    catalogue::all()
        .iter()
        .filter(move |e| e.info.family == family)
}

/// A batch for one family: the named inputs, the first one differentiable, the sizes of
/// its index sets, and values for whatever inputs a loss declares.
#[derive(Clone, Debug)]
struct Case {
    inputs: Vec<Input>,
    /// `(samples, classes, refs)`: `N`, `C`, `M` (`Q` and `D` in the scores family); 1
    /// for a set the family does not have.
    sizes: (usize, usize, usize),
    pool: Pool,
}

/// Values the declared inputs are cut from: each declared input reads its own stretch,
/// wrapping around.
#[derive(Clone, Debug)]
struct Pool {
    /// Real values, from the same distribution as the family's own reals.
    reals: Vec<f64>,
    /// Values in `(0, 1]`, for the declared inputs of [`UNIT_INTERVAL`].
    unit: Vec<f64>,
    /// Mask entries.
    bits: Vec<bool>,
    /// Labels, reduced modulo the size of the set they index.
    picks: Vec<usize>,
}

/// The declared inputs a loss refuses outside `(0, 1]` (a `require` in its definition),
/// by `(loss, input)`: they get values in `(0, 1]` (often exactly 1, sometimes tiny).
/// Any other real declared input gets the family's distribution.
const UNIT_INTERVAL: &[(&str, &str)] = &[("dataset_equity", "likelihood"), ("sym_face", "front")];

/// The inputs `entry` declares, made from `case`'s sizes and pool.
fn declared_inputs(entry: &Entry, case: &Case) -> Vec<Input> {
    let (n, c, m) = case.sizes;
    let size = |axis: Axis| match axis {
        Axis::Samples => n,
        Axis::Classes => c,
        Axis::Refs => m,
    };
    let pool = &case.pool;
    let mut offset = 0;
    let mut cut = |len: usize| {
        let start = offset;
        offset += len;
        (start..start + len).map(|k| k % pool.reals.len())
    };
    entry
        .info
        .declared
        .iter()
        .map(|d: &DeclaredInfo| {
            let shape: Vec<usize> = d.axes.iter().map(|a| size(a.axis)).collect();
            let slots = cut(shape.iter().product());
            let values = match d.role {
                DeclaredRole::Labels => {
                    let set = d.indexes.map_or(1, |s| size(s.axis)).max(1);
                    slots.map(|k| (pool.picks[k] % set) as f64).collect()
                }
                DeclaredRole::Mask => slots.map(|k| f64::from(u8::from(pool.bits[k]))).collect(),
                DeclaredRole::Differentiable | DeclaredRole::Constant | DeclaredRole::State => {
                    if UNIT_INTERVAL.contains(&(entry.name(), d.name)) {
                        slots.map(|k| pool.unit[k]).collect()
                    } else {
                        slots.map(|k| pool.reals[k]).collect()
                    }
                }
            };
            Input::new(d.name, shape, values)
        })
        .collect()
}

/// The family's inputs of `case`, then the ones `entry` declares.
fn inputs_for(entry: &Entry, case: &Case) -> Vec<Input> {
    let mut inputs = case.inputs.clone();
    inputs.extend(declared_inputs(entry, case));
    inputs
}

// ---------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------

/// A real value, often extreme.
fn extreme() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -3.0..3.0f64,
        1 => Just(0.0),
        1 => prop_oneof![Just(80.0), Just(-80.0), Just(1e4), Just(-1e4)],
        1 => -1e4..1e4f64,
    ]
}

/// A probability, often exactly 0 or 1.
fn probability() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => 0.0..=1.0f64,
        1 => Just(0.0),
        1 => Just(1.0),
        1 => prop_oneof![Just(1e-30), Just(1.0 - 1e-12)],
    ]
}

/// A value in `(0, 1]`, often exactly 1 or tiny.
fn unit(moderate: bool) -> BoxedStrategy<f64> {
    if moderate {
        (0.05..=1.0f64).boxed()
    } else {
        prop_oneof![
            4 => 1e-12..=1.0f64,
            1 => Just(1.0),
            1 => prop_oneof![Just(1e-30), Just(1.0 - 1e-12)],
        ]
        .boxed()
    }
}

fn vector(value: impl Strategy<Value = f64>, n: usize) -> impl Strategy<Value = Vec<f64>> {
    proptest::collection::vec(value, n)
}

/// Values for declared inputs: room for three `[N, width]` tensors, real values moderate
/// or extreme as the family's.
fn pool(n: usize, width: usize, moderate: bool) -> impl Strategy<Value = Pool> {
    let len = 3 * n * width.max(1);
    let reals = if moderate {
        vector(-3.0..3.0f64, len).boxed()
    } else {
        vector(extreme(), len).boxed()
    };
    (
        reals,
        vector(unit(moderate), len),
        proptest::collection::vec(any::<bool>(), len),
        proptest::collection::vec(any::<usize>(), len),
    )
        .prop_map(|(reals, unit, bits, picks)| Pool {
            reals,
            unit,
            bits,
            picks,
        })
}

/// Labels in `0..classes`, as the case files give them.
fn labels(n: usize, classes: usize) -> impl Strategy<Value = Vec<f64>> {
    proptest::collection::vec((0..classes).prop_map(|l| l as f64), n)
}

// ---------------------------------------------------------------------------------------
// Batches, one strategy per family; `moderate` keeps values where finite differences
// are meaningful
// ---------------------------------------------------------------------------------------

fn binary_case(moderate: bool) -> impl Strategy<Value = Case> {
    (1usize..8, any::<bool>()).prop_flat_map(move |(n, logits)| {
        let values = match (logits, moderate) {
            (true, true) => vector(-3.0..3.0f64, n).boxed(),
            (true, false) => vector(extreme(), n).boxed(),
            (false, true) => vector(0.05..0.95f64, n).boxed(),
            (false, false) => vector(probability(), n).boxed(),
        };
        (values, labels(n, 2), pool(n, 1, moderate)).prop_map(move |(x, y, pool)| Case {
            inputs: vec![
                Input::new(if logits { "logits" } else { "probs" }, vec![n], x),
                Input::new("targets", vec![n], y),
            ],
            sizes: (n, 1, 1),
            pool,
        })
    })
}

fn logits_case(moderate: bool) -> impl Strategy<Value = Case> {
    (1usize..6, 1usize..5).prop_flat_map(move |(n, c)| {
        let values = if moderate {
            vector(-3.0..3.0f64, n * c).boxed()
        } else {
            vector(extreme(), n * c).boxed()
        };
        (values, labels(n, c), pool(n, c, moderate)).prop_map(move |(z, y, pool)| Case {
            inputs: vec![
                Input::new("logits", vec![n, c], z),
                Input::new("labels", vec![n], y),
            ],
            sizes: (n, c, 1),
            pool,
        })
    })
}

/// How a row of a pairs batch is made from the rows before it.
#[derive(Clone, Copy, Debug)]
enum Row {
    Fresh,
    Duplicate(usize),
    Antipodal(usize),
    Zero,
    Huge,
}

fn row_kind(moderate: bool) -> impl Strategy<Value = Row> {
    if moderate {
        Just(Row::Fresh).boxed()
    } else {
        prop_oneof![
            4 => Just(Row::Fresh),
            1 => any::<usize>().prop_map(Row::Duplicate),
            1 => any::<usize>().prop_map(Row::Antipodal),
            1 => Just(Row::Zero),
            1 => Just(Row::Huge),
        ]
        .boxed()
    }
}

fn embeddings_case(moderate: bool) -> impl Strategy<Value = Case> {
    (1usize..7, 1usize..4, 1usize..4).prop_flat_map(move |(n, d, classes)| {
        (
            vector(-2.0..2.0f64, n * d),
            proptest::collection::vec(row_kind(moderate), n),
            labels(n, classes),
            pool(n, n, moderate),
        )
            .prop_map(move |(mut e, kinds, y, pool)| {
                for (i, kind) in kinds.into_iter().enumerate() {
                    for k in 0..d {
                        e[i * d + k] = match kind {
                            Row::Fresh => e[i * d + k],
                            Row::Duplicate(j) if i > 0 => e[(j % i) * d + k],
                            Row::Antipodal(j) if i > 0 => -e[(j % i) * d + k],
                            Row::Duplicate(_) | Row::Antipodal(_) => e[i * d + k],
                            Row::Zero => 0.0,
                            Row::Huge => 1e4 * e[i * d + k],
                        };
                    }
                }
                Case {
                    inputs: vec![
                        Input::new("embeddings", vec![n, d], e),
                        Input::new("labels", vec![n], y),
                    ],
                    sizes: (n, 1, n),
                    pool,
                }
            })
    })
}

fn similarities_case(moderate: bool) -> impl Strategy<Value = Case> {
    (1usize..7, 1usize..4).prop_flat_map(move |(n, classes)| {
        let values = if moderate {
            vector(-1.0..1.0f64, n * n).boxed()
        } else {
            vector(extreme(), n * n).boxed()
        };
        (values, labels(n, classes), pool(n, n, moderate)).prop_map(move |(s, y, pool)| Case {
            inputs: vec![
                Input::new("similarities", vec![n, n], s),
                Input::new("labels", vec![n], y),
            ],
            sizes: (n, 1, n),
            pool,
        })
    })
}

fn scores_case(moderate: bool) -> impl Strategy<Value = Case> {
    (1usize..4, 1usize..6).prop_flat_map(move |(q, d)| {
        let values = if moderate {
            vector(-3.0..3.0f64, q * d).boxed()
        } else {
            vector(extreme(), q * d).boxed()
        };
        (values, labels(q * d, 2), pool(q, d, moderate)).prop_map(move |(s, r, pool)| Case {
            inputs: vec![
                Input::new("scores", vec![q, d], s),
                Input::new("relevance", vec![q, d], r),
            ],
            sizes: (q, 1, d),
            pool,
        })
    })
}

// ---------------------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------------------

/// A typed error, or a finite loss with finite gradients, in both precisions.
fn finite_or_refused(entry: &Entry, case: &Case) -> Result<(), TestCaseError> {
    let inputs = inputs_for(entry, case);
    for precision in Precision::ALL {
        if let Ok(out) = entry.evaluate(&inputs, &[], precision) {
            prop_assert!(
                out.loss.is_finite(),
                "{} ({}) gave loss {} on {:?}",
                entry.name(),
                precision.name(),
                out.loss,
                inputs
            );
            for g in &out.grads {
                let bad = g.values.iter().position(|v| !v.is_finite());
                prop_assert!(
                    bad.is_none(),
                    "{} ({}) gave a non-finite gradient for `{}` at {:?} on {:?}",
                    entry.name(),
                    precision.name(),
                    g.input,
                    bad,
                    inputs
                );
            }
        }
    }
    Ok(())
}

/// Losses whose gradient, by their definition, holds part of the value constant, so it
/// is not the derivative of the value; their own tests check it against differences with
/// that part fixed: a target computed from the predictions under `detach` (DEPICT), or
/// slopes from ranks and random draws under `detach`, whose value is only a surrogate
/// (EnsLoss), or sigmoid re-weightings of the angles under `detach`, as the official code
/// computes them without gradient (SFace), or the weights of iSogCLR's surrogate (its own
/// tests hold them fixed).
const GRADIENT_WITH_A_DETACHED_TARGET: &[&str] = &[
    "depict_clustering_ce",
    "ens_loss",
    "s_face",
    "isogclr_unimodal",
    "isogclr_bimodal",
    "isogclr_libauc_v1",
    "aldr_kl",
];

/// The derived f64 gradient of every differentiable input (the family's and the traced
/// declared ones) against central finite differences, where the loss accepts the case
/// and is smooth.
fn matches_differences(entry: &Entry, case: &Case) -> Result<(), TestCaseError> {
    if GRADIENT_WITH_A_DETACHED_TARGET.contains(&entry.name()) {
        return Ok(());
    }
    let inputs = inputs_for(entry, case);
    let Ok(out) = entry.evaluate(&inputs, &[], Precision::F64) else {
        return Ok(());
    };
    let tolerance = Tolerance {
        abs: 1e-5,
        rel: 1e-4,
        ..Tolerance::default()
    };
    for grad in &out.grads {
        let k = inputs
            .iter()
            .position(|x| x.name == grad.input)
            .expect("a gradient belongs to an input given");
        let x = &inputs[k];
        let value_at = |v: &[f64]| {
            let mut moved = inputs.clone();
            moved[k].values = v.to_vec();
            entry
                .evaluate(&moved, &[], Precision::F64)
                .ok()
                .map(|o| o.loss)
        };
        let report = compare_with_differences(
            &x.values,
            &x.shape,
            out.loss,
            &grad.values,
            value_at,
            tolerance,
        );
        prop_assert!(
            report.passed(),
            "{} (gradient of `{}`): {report} on {:?}",
            entry.name(),
            grad.input,
            inputs
        );
    }
    Ok(())
}

fn for_each(
    family: Family,
    case: &Case,
    property: fn(&Entry, &Case) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    for entry in losses(family) {
        property(entry, case)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn binary_losses_are_finite_or_refuse(case in binary_case(false)) {
        for_each(Family::Binary, &case, finite_or_refused)?;
    }

    #[test]
    fn binary_gradients_match_differences(case in binary_case(true)) {
        for_each(Family::Binary, &case, matches_differences)?;
    }

    #[test]
    fn logits_losses_are_finite_or_refuse(case in logits_case(false)) {
        for_each(Family::Logits, &case, finite_or_refused)?;
    }

    #[test]
    fn logits_gradients_match_differences(case in logits_case(true)) {
        for_each(Family::Logits, &case, matches_differences)?;
    }

    #[test]
    fn pairs_losses_on_embeddings_are_finite_or_refuse(case in embeddings_case(false)) {
        for_each(Family::Pairs, &case, finite_or_refused)?;
    }

    #[test]
    fn pairs_gradients_on_embeddings_match_differences(case in embeddings_case(true)) {
        for_each(Family::Pairs, &case, matches_differences)?;
    }

    #[test]
    fn pairs_losses_on_similarities_are_finite_or_refuse(case in similarities_case(false)) {
        for_each(Family::Pairs, &case, finite_or_refused)?;
    }

    #[test]
    fn pairs_gradients_on_similarities_match_differences(case in similarities_case(true)) {
        for_each(Family::Pairs, &case, matches_differences)?;
    }

    #[test]
    fn scores_losses_are_finite_or_refuse(case in scores_case(false)) {
        for_each(Family::Scores, &case, finite_or_refused)?;
    }

    #[test]
    fn scores_gradients_match_differences(case in scores_case(true)) {
        for_each(Family::Scores, &case, matches_differences)?;
    }
}

/// The generated declared inputs are ones the losses accept: on a moderate two-class
/// batch (EnsLoss is binary) every loss with declared inputs evaluates, and every entry of
/// [`UNIT_INTERVAL`] names a declared input of a shipped loss.
#[test]
fn declared_inputs_are_generated_as_the_losses_take_them() {
    let (n, c) = (3, 2);
    let case = Case {
        inputs: vec![
            Input::new("logits", vec![n, c], vec![0.5, -1.0, 2.0, 0.3, -0.4, 1.1]),
            Input::new("labels", vec![n], vec![0.0, 1.0, 1.0]),
        ],
        sizes: (n, c, 1),
        pool: Pool {
            reals: (0..18).map(|k| (k as f64 * 0.37).sin() * 2.0).collect(),
            unit: (0..18).map(|k| 1.0 / (1.0 + k as f64)).collect(),
            bits: (0..18).map(|k| k % 3 == 0).collect(),
            picks: (0..18).map(|k| k * 7).collect(),
        },
    };
    // the logits losses' declared inputs (a loss with state takes it as declared inputs
    // only through `losskit eval`; the pairs and scores losses with declared inputs refuse
    // most generated batches by design — AMCL's temperatures must be positive with one
    // positive per row, NCE's rows need data and noise — and are checked against naive
    // loops in their own tests)
    let declaring: Vec<&Entry> = catalogue::all()
        .iter()
        .filter(|e| e.info.family == Family::Logits)
        .filter(|e| {
            e.info
                .declared
                .iter()
                .any(|d| d.role != DeclaredRole::State)
        })
        .collect();
    assert!(!declaring.is_empty());
    for entry in declaring {
        assert_eq!(
            entry.info.family,
            Family::Logits,
            "a case of another family"
        );
        let inputs = inputs_for(entry, &case);
        assert_eq!(inputs.len(), 2 + entry.info.declared.len());
        for precision in Precision::ALL {
            let out = entry.evaluate(&inputs, &[], precision);
            assert!(out.is_ok(), "{}: {out:?}", entry.name());
        }
    }
    for (loss, input) in UNIT_INTERVAL {
        let entry = catalogue::find(loss).expect("a shipped loss");
        assert!(entry.info.declared.iter().any(|d| d.name == *input));
    }
}
