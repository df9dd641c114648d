//! Property tests over every shipped loss: random shapes, labels and values, extremes
//! included (±80 and ±1e4 logits, probabilities 0 and 1, duplicate, antipodal, zero and
//! huge embeddings, one class only, one sample), in f32 and f64.
//!
//! Each case must give either a typed error or a finite loss with finite gradients, and
//! on moderate inputs the derived f64 gradient must match central finite differences
//! wherever the loss is smooth (`losskit::check`).
//!
//! The number of cases per property is small by default so CI stays quick; set
//! `LOSSKIT_PROPTEST_CASES=2000` for a longer run.

use losskit::catalogue::{self, Entry};
use losskit::check::{compare_with_differences, Tolerance};
use losskit::family::dynamic::{Input, Precision};
use losskit::Family;
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
        // the batches generated here carry the family's inputs only; losses with declared
        // inputs (teacher logits, likelihoods, draws) are checked by their own tests until
        // these strategies generate declared inputs too
        .filter(|e| e.info.declared.is_empty())
}

/// A batch for one family: the named inputs, the first one differentiable.
#[derive(Clone, Debug)]
struct Case {
    inputs: Vec<Input>,
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

fn vector(value: impl Strategy<Value = f64>, n: usize) -> impl Strategy<Value = Vec<f64>> {
    proptest::collection::vec(value, n)
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
        (values, labels(n, 2)).prop_map(move |(x, y)| Case {
            inputs: vec![
                Input::new(if logits { "logits" } else { "probs" }, vec![n], x),
                Input::new("targets", vec![n], y),
            ],
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
        (values, labels(n, c)).prop_map(move |(z, y)| Case {
            inputs: vec![
                Input::new("logits", vec![n, c], z),
                Input::new("labels", vec![n], y),
            ],
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
        )
            .prop_map(move |(mut e, kinds, y)| {
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
        (values, labels(n, classes)).prop_map(move |(s, y)| Case {
            inputs: vec![
                Input::new("similarities", vec![n, n], s),
                Input::new("labels", vec![n], y),
            ],
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
        (values, labels(q * d, 2)).prop_map(move |(s, r)| Case {
            inputs: vec![
                Input::new("scores", vec![q, d], s),
                Input::new("relevance", vec![q, d], r),
            ],
        })
    })
}

// ---------------------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------------------

/// A typed error, or a finite loss with finite gradients, in both precisions.
fn finite_or_refused(entry: &Entry, case: &Case) -> Result<(), TestCaseError> {
    for precision in Precision::ALL {
        if let Ok(out) = entry.evaluate(&case.inputs, &[], precision) {
            prop_assert!(
                out.loss.is_finite(),
                "{} ({}) gave loss {} on {:?}",
                entry.name(),
                precision.name(),
                out.loss,
                case
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
                    case
                );
            }
        }
    }
    Ok(())
}

/// Losses whose gradient, by their definition, holds part of the value constant (a
/// target computed from the predictions under `detach`), so it is not the derivative of
/// the value; their own tests check it against differences with that part fixed.
const GRADIENT_WITH_A_DETACHED_TARGET: &[&str] = &["depict_clustering_ce"];

/// The derived f64 gradient of the first input against central finite differences,
/// where the loss accepts the case and is smooth.
fn matches_differences(entry: &Entry, case: &Case) -> Result<(), TestCaseError> {
    if GRADIENT_WITH_A_DETACHED_TARGET.contains(&entry.name()) {
        return Ok(());
    }
    let Ok(out) = entry.evaluate(&case.inputs, &[], Precision::F64) else {
        return Ok(());
    };
    let x = &case.inputs[0];
    let value_at = |v: &[f64]| {
        let mut inputs = case.inputs.clone();
        inputs[0].values = v.to_vec();
        entry
            .evaluate(&inputs, &[], Precision::F64)
            .ok()
            .map(|o| o.loss)
    };
    let tolerance = Tolerance {
        abs: 1e-5,
        rel: 1e-4,
        ..Tolerance::default()
    };
    let report = compare_with_differences(
        &x.values,
        &x.shape,
        out.loss,
        &out.grads[0].values,
        value_at,
        tolerance,
    );
    prop_assert!(report.passed(), "{}: {report} on {:?}", entry.name(), case);
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
