//! Lowering tests: the IR as math, and the messages for wrong programs.

use super::*;
use proc_macro2::TokenStream;
use quote::quote;

mod declared;
mod state;

/// Parses and lowers `#[loss(args)] item`: the program, or every message in order.
pub(crate) fn lower_src(args: TokenStream, item: syn::ItemFn) -> Result<Program, Vec<String>> {
    let cx = Ctxt::new();
    let lowered = LossDef::from_syn(&cx, args, item.to_token_stream())
        .ok()
        .and_then(|def| lower(&cx, &def));
    match (cx.messages(), lowered) {
        (msgs, _) if !msgs.is_empty() => Err(msgs),
        (_, Some((prog, _))) => Ok(prog),
        (_, None) => Err(vec!["lowering failed without a message".into()]),
    }
}

fn lower_ok(args: TokenStream, item: syn::ItemFn) -> Program {
    match lower_src(args, item) {
        Ok(p) => p,
        Err(msgs) => panic!("unexpected errors: {msgs:#?}"),
    }
}

fn lower_err(args: TokenStream, item: syn::ItemFn) -> Vec<String> {
    match lower_src(args, item) {
        Ok(p) => panic!("expected errors, got {}", p.slot_definition(p.root())),
        Err(msgs) => msgs,
    }
}

/// The loss, as math.
fn root(p: &Program) -> String {
    p.slot_definition(p.root())
}

/// Each named slot as `name = definition`.
fn named_slots(p: &Program) -> Vec<String> {
    (0..p.slots.len())
        .filter_map(|s| {
            let id = crate::ir::SlotId(s as u16);
            let name = p.slot(id).name.as_ref()?;
            Some(format!("{name} = {}", p.slot_definition(id)))
        })
        .collect()
}

#[test]
fn cross_entropy_is_the_mean_of_logsumexp_minus_the_label_logit() {
    let p = lower_ok(
        quote!(logits),
        syn::parse_quote! {
            fn ce(z: Logits, y: Labels) -> PerSample {
                logsumexp(classes, |k| z[i][k]) - z[i][y[i]]
            }
        },
    );
    assert_eq!(
        root(&p),
        "mean_{i ∈ samples} (logsumexp_{k ∈ classes} z[i][k] − z[i][y[i]])"
    );
    // the inner reduction is materialised over the sample index it keeps
    assert_eq!(p.slots.len(), 2);
    assert_eq!(p.slots[0].free.len(), 1);
    assert_eq!(p.vars[p.slots[0].free[0].0 as usize].name, "i");
    // lowering keeps the written form; simplify/ makes it stable later
    let p = lower_ok(
        quote!(logits),
        syn::parse_quote! {
            fn ce(z: Logits, y: Labels) -> PerSample {
                ln(sum(classes, |k| exp(z[i][k]))) - z[i][y[i]]
            }
        },
    );
    assert_eq!(
        root(&p),
        "mean_{i ∈ samples} (ln(sum_{k ∈ classes} exp(z[i][k])) − z[i][y[i]])"
    );
}

#[test]
fn soft_confusion_fields_are_shared_batch_sums() {
    let p = lower_ok(
        quote!(binary),
        syn::parse_quote! {
            fn f1(cm: SoftConfusion, #[hyper(default = 1e-9)] eps: f64) -> Scalar {
                1.0 - 2.0 * cm.tp / (2.0 * cm.tp + cm.fp + cm.fn_ + eps)
            }
        },
    );
    let amplified = "(sigmoid(amplification·((sigmoid(x[j]) if from_logits else x[j]) − 0.5)) if amplify else (sigmoid(x[j]) if from_logits else x[j]))";
    assert_eq!(
        named_slots(&p),
        [
            format!("TP = sum_{{j ∈ samples}} (y[j]·{amplified})"),
            format!("ΣA = sum_{{j ∈ samples}} {amplified}"),
            "P = sum_{j ∈ samples} y[j]".to_string(),
        ]
    );
    // fp = ΣA − TP, fn = P − TP; each sum is computed once however often it is read
    assert_eq!(
        root(&p),
        "1 − ((2·TP)/((((2·TP) + (ΣA − TP)) + (P − TP)) + eps))"
    );
    assert_eq!(p.slots.len(), 4);
    // the family adds its amplification hyper-parameters after the declared ones
    assert_eq!(p.hyper_names, ["eps", "amplification", "amplify"]);
}

#[test]
fn the_other_confusion_fields() {
    let p = lower_ok(
        quote!(binary),
        syn::parse_quote! {
            fn counts(cm: SoftConfusion) -> Scalar {
                cm.tn * cm.n + cm.pos / cm.neg
            }
        },
    );
    assert_eq!(root(&p), "((((N − P) − ΣA) + TP)·N) + (P/(N − P))");
}

#[test]
fn probabilities_follow_the_input_kind_and_targets_are_read() {
    let p = lower_ok(
        quote!(binary),
        syn::parse_quote! {
            fn bce(p: Probs, y: Targets) -> PerSample {
                -(y[i] * ln(p[i]) + (1.0 - y[i]) * ln(1.0 - p[i]))
            }
        },
    );
    let prob = "(sigmoid(x[i]) if from_logits else x[i])";
    assert_eq!(
        root(&p),
        format!("mean_{{i ∈ samples}} (−((y[i]·ln({prob})) + ((1 − y[i])·ln(1 − {prob}))))")
    );
    // no amplification input: no amplification hyper-parameters
    assert!(p.hyper_names.is_empty());
}

#[test]
fn filters_keep_their_condition() {
    let p = lower_ok(
        quote!(logits),
        syn::parse_quote! {
            fn hardest(z: Logits, y: Labels) -> PerSample {
                max(classes.filter(|k| k != y[i]), |k| z[i][k])
                    + sum(classes.filter(|c| c != y[i] && !(z[i][c] < 0.0)), |c| z[i][c])
            }
        },
    );
    assert_eq!(
        root(&p),
        "mean_{i ∈ samples} (max_{k ∈ classes : k ≠ y[i]} z[i][k] + sum_{c ∈ classes : (c ≠ y[i]) ∧ ¬(z[i][c] < 0)} z[i][c])"
    );
}

#[test]
fn hyper_parameters_lets_select_and_detach() {
    let p = lower_ok(
        quote!(logits),
        syn::parse_quote! {
            fn margin(
                z: Logits,
                y: Labels,
                #[hyper(default = 0.5, nonnegative)] m: f64,
                #[hyper(default = true)] hinge: bool,
            ) -> PerSample {
                let mu = mean(classes, |k| z[i][k]);
                let gap = m + mu - z[i][y[i]];
                let out = if hinge { relu(gap) } else { softplus(gap) };
                out + detach(mu) * 0.0
            }
        },
    );
    assert_eq!(p.hyper_names, ["m", "hinge"]);
    assert_eq!(
        named_slots(&p),
        [
            "mu = mean_{k ∈ classes} z[i][k]",
            "gap = (m + mu[i]) − z[i][y[i]]",
            "out = (relu(gap[i]) if hinge else softplus(gap[i]))",
        ]
    );
    assert_eq!(root(&p), "mean_{i ∈ samples} (out[i] + (detach(mu[i])·0))");
}

#[test]
fn a_scalar_loss_reduces_the_batch_itself() {
    let p = lower_ok(
        quote!(binary),
        syn::parse_quote! {
            fn total(p: Probs, y: Targets) -> Scalar {
                sum(samples, |j| sq(p[j] - y[j])) / 2.0
            }
        },
    );
    assert_eq!(
        root(&p),
        "sum_{j ∈ samples} ((sigmoid(x[j]) if from_logits else x[j]) − y[j])^2/2"
    );
}

#[test]
fn every_independent_error_in_source_order() {
    let msgs = lower_err(
        quote!(logits),
        syn::parse_quote! {
            fn many(z: Logits, y: Labels, #[hyper(default = 0.0, positive)] scale: f64) -> PerSample {
                let lse = logsumexp(clases, |k| z[i][k]);
                let hard = max(classes, |k| z[i][k] * scle);
                let snapped = round(hard);
                lse - z[i][y[i]] + exq(snapped)
            }
        },
    );
    let starts = [
        "the default `0.0` of `scale` violates `positive`",
        "unknown index set `clases`; help: did you mean `classes`?",
        "cannot find `scle` in this loss; help: did you mean `scale`?",
        "`round` is not differentiable",
        "unknown function `exq`; help: did you mean `exp`?",
    ];
    assert_eq!(msgs.len(), starts.len(), "{msgs:#?}");
    for (m, s) in msgs.iter().zip(starts) {
        assert!(m.starts_with(s), "{m:?} should start with {s:?}");
    }
}

#[test]
fn refused_declarations_do_not_cascade() {
    // an input the family does not provide, then used
    let msgs = lower_err(
        quote!(binary),
        syn::parse_quote! {
            fn f(z: Logits, y: Targets) -> PerSample { y[i] * z[i][0] }
        },
    );
    assert_eq!(msgs.len(), 1, "{msgs:#?}");
    assert!(msgs[0].starts_with("the `binary` family provides no input of type `Logits`"));
    // a hyper-parameter without a default, then used twice
    let msgs = lower_err(
        quote!(logits),
        syn::parse_quote! {
            fn f(z: Logits, y: Labels, #[hyper(positive)] s: f64) -> PerSample {
                logsumexp(classes, |k| s * z[i][k]) - s * z[i][y[i]]
            }
        },
    );
    assert_eq!(
        msgs,
        ["hyper-parameter `s` has no default; help: add `default = ..` to its `#[hyper(..)]`"]
    );
    // refused `let`s still bind their name
    let msgs = lower_err(
        quote!(logits),
        syn::parse_quote! {
            fn f(z: Logits, y: Labels) -> PerSample {
                let mut a = z[i][y[i]];
                let b: f64 = a * 2.0;
                let c = exq(b);
                a + b + c
            }
        },
    );
    assert_eq!(msgs.len(), 3, "{msgs:#?}");
    assert!(msgs[0].starts_with("`let mut` is not supported"));
    assert!(msgs[1].starts_with("a type annotation is not supported"));
    assert!(msgs[2].starts_with("unknown function `exq`"));
}

#[test]
fn an_unknown_output_kind_still_checks_the_body() {
    let msgs = lower_err(
        quote!(logits),
        syn::parse_quote! {
            fn f(z: Logits, y: Labels) -> PerAnchor { exq(z[i][y[i]]) }
        },
    );
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    assert_eq!(msgs[0], "the `logits` family does not accept output kind `PerAnchor`; help: use `Scalar` or `PerSample`");
    assert!(msgs[1].starts_with("unknown function `exq`"));
}

#[test]
fn scopes_of_indices_and_lets() {
    let msgs = lower_err(
        quote!(logits),
        syn::parse_quote! {
            fn f(z: Logits, y: Labels) -> PerSample {
                let total = sum(classes, |k| exp(z[i][k]));
                ln(total) - z[i][k]
            }
        },
    );
    assert_eq!(msgs, ["index `k` is used outside the reduction that binds it; help: `k` exists only inside `sum(classes, |k| ..)`, so use it there"]);
    // a `let` inside a block ends with it
    let msgs = lower_err(
        quote!(logits),
        syn::parse_quote! {
            fn f(z: Logits, y: Labels) -> PerSample {
                let a = { let t = z[i][y[i]]; t * t };
                a + t
            }
        },
    );
    assert_eq!(msgs.len(), 1, "{msgs:#?}");
    assert!(
        msgs[0].starts_with("cannot find `t` in this loss"),
        "{msgs:#?}"
    );
    // `i` is the sample index of a `PerSample` loss only
    let msgs = lower_err(
        quote!(binary),
        syn::parse_quote! {
            fn f(p: Probs) -> Scalar { p[i] }
        },
    );
    assert!(
        msgs[0].starts_with("index `i` is not bound in a `Scalar` loss"),
        "{msgs:#?}"
    );
    // names may not shadow an index, an input, a set or a `let`
    let msgs = lower_err(
        quote!(logits),
        syn::parse_quote! {
            fn f(z: Logits, y: Labels) -> PerSample {
                let i = 1.0;
                let classes = 2.0;
                let a = 1.0;
                let a = 2.0;
                z[i][y[i]]
            }
        },
    );
    assert_eq!(
        msgs,
        [
            "`i` is already defined; help: choose a new name",
            "`classes` is already defined; help: choose a new name",
            "`a` is already defined; help: choose a new name",
        ]
    );
}

#[test]
fn the_body_must_end_with_its_value() {
    let msgs = lower_err(
        quote!(logits),
        syn::parse_quote! {
            fn f(z: Logits, y: Labels) -> PerSample { z[i][y[i]]; }
        },
    );
    assert_eq!(msgs, ["the loss body must end with an expression; help: remove this `;` so that the last expression is the loss"]);
    let msgs = lower_err(
        quote!(logits),
        syn::parse_quote! {
            fn f(z: Logits, y: Labels) -> PerSample { let a = z[i][y[i]]; }
        },
    );
    assert!(msgs[0].starts_with("the loss body must end with an expression; help: end the block"));
}

#[test]
fn misuse_of_values_indices_and_sets() {
    let cases: Vec<(syn::ItemFn, &str)> = vec![
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { clamp(z[i][y[i]], 0.0) } },
            "`clamp` takes three arguments; help: write `clamp(x, lo, hi)`",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { z[i][y[i]].exp() } },
            "unknown method `exp`; help: call it as a function: `exp(x)`",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { z[i][y[i]].foo() } },
            "unknown method `foo`",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { sum(classes, |k| k) } },
            "index `k` is used as a number",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { y[i] } },
            "labels `y[..]` are class indices, not numbers",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { z[y[i]][i] } },
            "the first index of `z` ranges over samples, but this index ranges over classes",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { z[i] } },
            "`z` takes 2 index(es) but 1 were given",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { z } },
            "input `z` is a tensor and must be indexed; help: write `z[i][k]`",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { classes } },
            "expected a number here, found an index set",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { classes.filter(|k| k != y[i]) } },
            "`.filter(..)` selects the set of a reduction",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { sum(classes, z[i][0]) } },
            "`sum` over a set takes a closure",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { sum(classes, |k| z[i][k], 2.0) } },
            "`sum` takes a set and one closure, but 3 arguments were given; help: remove the arguments after the closure: `sum(classes, |k| ..)`",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { max(classes, |k| z[i][k], 0.0) } },
            "`max` takes a set and one closure, but 3 arguments were given",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { sum(classes.filter(|k| k > 0), |k| z[i][k]) } },
            "index `k` is compared with a number, but an index may only be compared with another index or with a label (indices are positions, not numbers); help: compare it with an index or a label, as in `k != y[i]`",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { z[i][y[i]] + len(classes, samples) } },
            "`len` takes one index set; help: write `len(classes)`",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { require(z[i][0] > 0.0, "positive") } },
            "`require(..)` is a statement, not a value",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { require(z[i][y[i]] > 0.0, 1.0); z[i][y[i]] } },
            "the message of `require` must be a string literal",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { if z[i][y[i]] > 0.0 { require(z[i][y[i]] < 9.0, "big"); 1.0 } else { 0.0 } } },
            "`require(..)` cannot stand in a branch of `if` or `select`",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { sum(classes.filter(|k| { require(z[i][k] > 0.0, "p"); k != y[i] }), |k| z[i][k]) } },
            "a block with `require(..)` must end with a number",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { sum(classes.filter(|c| c != y[i]), |k| z[i][k]) } },
            "the filter binds `c` but the reduction binds `k`",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { powi(z[i][y[i]], 1.5) } },
            "the exponent of `powi` must be an integer literal",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { z[i][y[i]] * 1e999 } },
            "this number does not fit in an `f64`",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { z[i][y[i]] * "2" } },
            "only number literals are supported",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { select(z[i][y[i]], 1.0, 0.0) } },
            "expected a condition here",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { z.tp } },
            "`z` has no fields",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { if z[i][y[i]] > 0.0 { 1.0 } } },
            "`if` without `else` has no value",
        ),
        (
            syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { loop {} } },
            "a `loop` is not supported in a loss",
        ),
    ];
    for (item, expected) in cases {
        let msgs = lower_err(quote!(logits), item);
        assert_eq!(msgs.len(), 1, "{msgs:#?}");
        assert!(
            msgs[0].starts_with(expected),
            "{:?} should start with {expected:?}",
            msgs[0]
        );
    }
}

#[test]
fn confusion_misuse_and_family_hyper_clash() {
    let msgs = lower_err(
        quote!(binary),
        syn::parse_quote! {
            fn f(cm: SoftConfusion, #[hyper(default = 1.0)] amplification: f64) -> Scalar {
                cm.tpp + cm[i]
            }
        },
    );
    assert_eq!(msgs.len(), 3, "{msgs:#?}");
    assert!(msgs[0].starts_with("`amplification` is a hyper-parameter the `binary` family adds"));
    assert!(msgs[1].starts_with("`cm` has no field `tpp`; help: did you mean `tp`?"));
    assert!(msgs[2].starts_with("`cm` is the batch's soft confusion matrix"));
}

/// Odd inputs give errors, never a panic.
#[test]
fn never_panics_on_odd_input() {
    let items: Vec<(TokenStream, TokenStream)> = vec![
        (
            quote!(logits),
            quote!(
                fn __(z: Logits) -> PerSample {
                    0.0
                }
            ),
        ),
        (
            quote!(logits),
            quote!(
                fn r#match(z: Logits) -> PerSample {
                    0.0
                }
            ),
        ),
        (
            quote!(logits),
            quote!(
                fn f(r#type: Logits) -> PerSample {
                    0.0
                }
            ),
        ),
        (
            quote!(logits),
            quote!(
                fn f(#[hyper(default = 1e999)] a: f64) -> PerSample {
                    a
                }
            ),
        ),
        (
            quote!(logits),
            quote!(
                fn f(#[hyper(default = 1.0, range(0, 1e999))] a: f64) -> PerSample {
                    a
                }
            ),
        ),
        (
            quote!(logits),
            quote!(
                fn f(#[hyper(default = 1.0, range())] a: f64) -> PerSample {
                    a
                }
            ),
        ),
        (
            quote!(logits),
            quote!(
                fn f(#[hyper(default = 1.0, bogus(1, 2), positive)] a: f64) -> PerSample {
                    a
                }
            ),
        ),
        (
            quote!(logits),
            quote!(
                fn f(#[hyper] a: f64) -> PerSample {
                    a
                }
            ),
        ),
        (
            quote!(logits),
            quote!(
                fn f(#[hyper(default = "x")] a: bool) -> PerSample {
                    0.0
                }
            ),
        ),
        (
            quote!(logits),
            quote!(
                fn f() -> PerSample {}
            ),
        ),
        (
            quote!(logits),
            quote!(
                fn f() {}
            ),
        ),
        (
            quote!(logits),
            quote!(
                fn f(self) -> PerSample {
                    0.0
                }
            ),
        ),
        (
            quote!(logits),
            quote!(
                fn f((a, b): Logits) -> PerSample {
                    0.0
                }
            ),
        ),
        (
            quote!(logits),
            quote!(
                async unsafe extern "C" fn f<T>(z: Logits) -> PerSample
                where
                    T: Copy,
                {
                    0.0
                }
            ),
        ),
        (
            quote!(logits),
            quote!(
                fn f(z: &Logits, y: Labels, y2: Labels) -> Vec<f64> {
                    0.0
                }
            ),
        ),
        (
            quote!(logits),
            quote!(
                fn f(z: Logits, y: Labels) -> PerSample {
                    z[i][y[y[i]]]
                        + z[i][k]
                        + z[0][0]
                        + z::a
                        + f(1.0)
                        + (1.0)(2.0)
                        + *z
                        + -y[i]
                        + !z[i][0]
                }
            ),
        ),
        (
            quote!(logits),
            quote!(
                fn f(z: Logits, y: Labels) -> PerSample {
                    sum(classes.filter(|k| k).filter(|k| k), |(a, b)| 0.0)
                        + sum(a::b, |k| 0.0)
                        + sum(classes.foo(), |k| 0.0)
                        + sum(3, |k| 0.0)
                }
            ),
        ),
        (
            quote!(logits),
            quote!(
                fn f(z: Logits, y: Labels) -> PerSample {
                    let (a, b) = (1.0, 2.0);
                    let c;
                    let d = 1.0 else { return };
                    macro_rules! m {}
                    m!();
                    fn g() {}
                    x = 1.0;
                    y[i] += 1.0;
                    z[i][0] as f64
                }
            ),
        ),
        (
            quote!(logits),
            quote!(fn f(z: Logits, y: Labels) -> PerSample { match 1 { _ => 0.0 } + &z[i][0] + (return) + (|x| x) + (while true {}) + (for a in b {}) + vec![1.0] + (1.0).0 + a.b.c }),
        ),
        (
            quote!(binary),
            quote!(
                fn f(cm: SoftConfusion, p: Probs, a: Amplified, y: Targets) -> Scalar {
                    cm.tp + sum(samples, |j| p[j] * a[j] * y[j]) + cm.0 + p.tp
                }
            ),
        ),
        (
            quote!(binary),
            quote!(
                fn f(cm: SoftConfusion, cm2: SoftConfusion) -> Scalar {
                    cm.tp + cm2.tp
                }
            ),
        ),
        (
            quote!(),
            quote!(
                fn f(z: Logits) -> PerSample {
                    z[i][0]
                }
            ),
        ),
        (
            quote!(logits, binary, paper, paper = 1, a::b, c(d)),
            quote!(
                fn f(z: Logits) -> PerSample {
                    0.0
                }
            ),
        ),
        (
            quote!(pairs),
            quote!(
                fn f(z: Logits) -> PerAnchor {
                    0.0
                }
            ),
        ),
        (
            quote!(logits),
            quote!(
                struct S;
            ),
        ),
        (
            quote!(logit,),
            quote!(
                fn f(z: Logits) -> PerSample {
                    0.0
                }
            ),
        ),
    ];
    for (args, item) in items.iter().cloned() {
        // the whole pipeline too: errors become `compile_error!`s next to the stub
        let out = crate::expand::expand(args.clone(), item.clone()).to_string();
        assert!(out.contains("compile_error"), "{out}");
        let cx = Ctxt::new();
        let failed = match LossDef::from_syn(&cx, args, item.clone()) {
            Ok(def) => {
                let _ = lower(&cx, &def);
                cx.check().is_err()
            }
            Err(_) => syn::parse2::<syn::ItemFn>(item.clone()).is_err(),
        };
        assert!(failed, "no error for {item}");
    }
}

#[test]
fn len_gives_set_sizes_and_counts_filtered_sets() {
    let p = lower_ok(
        quote!(logits),
        syn::parse_quote! {
            fn f(z: Logits, y: Labels) -> PerSample {
                z[i][y[i]] / len(classes) + len(samples) + len(classes.filter(|k| k != y[i]))
            }
        },
    );
    assert_eq!(
        root(&p),
        "mean_{i ∈ samples} (((z[i][y[i]]/C) + N) + sum_{k ∈ classes : k ≠ y[i]} 1)"
    );
    // an anchored set is counted too
    let p = lower_ok(
        quote!(pairs),
        syn::parse_quote! {
            fn f(s: Similarity, y: Labels) -> PerAnchor { len(pos(i)) * len(refs) }
        },
    );
    assert_eq!(
        root(&p),
        "mean_{i ∈ samples} (sum_{__element ∈ refs : (y[i] = y[__element]) ∧ ¬(refs_are_batch ∧ (i = __element))} 1·M)"
    );
}

#[test]
fn logmeanexp_is_a_reduction() {
    let p = lower_ok(
        quote!(logits),
        syn::parse_quote! {
            fn f(z: Logits, y: Labels) -> PerSample { logmeanexp(classes, |k| z[i][k]) }
        },
    );
    assert_eq!(
        root(&p),
        "mean_{i ∈ samples} logmeanexp_{k ∈ classes} z[i][k]"
    );
}

#[test]
fn require_guards_the_value_of_its_block() {
    let p = lower_ok(
        quote!(logits),
        syn::parse_quote! {
            fn f(z: Logits, y: Labels) -> PerSample {
                let mu = mean(classes, |k| z[i][k]);
                let var = mean(classes, |k| sq(z[i][k] - mu));
                require(var > 0.0, "row has zero variance");
                require(mu < 10.0, "large mean");
                (z[i][y[i]] - mu) / sqrt(var)
            }
        },
    );
    assert_eq!(p.requirements, ["row has zero variance", "large mean"]);
    assert_eq!(
        root(&p),
        "mean_{i ∈ samples} ((((z[i][y[i]] − mu[i])/sqrt(var[i])) (requires mu[i] < 10)) (requires var[i] > 0))"
    );
    // the failing sample is the index the condition depends on
    let guards: Vec<Option<String>> = (0..p.graph.len())
        .filter_map(|n| match p.graph.op(NodeId(n as u32)) {
            Op::Require { sample, .. } => Some(sample.map(|v| p.vars[v.0 as usize].name.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(guards, [Some("i".to_string()), Some("i".to_string())]);
}

/// Hints name only what the loss's family has.
#[test]
fn hints_name_the_family_s_own_sets_and_output_kinds() {
    let msgs = lower_err(
        quote!(pairs),
        syn::parse_quote! {
            fn f(s: Similarity, y: Labels) -> Scalar {
                sum(refs) + s[i][0] + sum(3, |j| 1.0)
            }
        },
    );
    assert_eq!(msgs.len(), 3, "{msgs:#?}");
    assert_eq!(
        msgs[0],
        "`sum` over a set takes a closure; help: write `sum(refs, |j| ..)`"
    );
    assert_eq!(
        msgs[1],
        "index `i` is not bound in a `Scalar` loss; help: reduce over the batch with `sum(samples, |i| ..)`, or return `PerAnchor`"
    );
    assert_eq!(
        msgs[2],
        "expected an index set; help: write one of this family's sets, `samples`, `refs`, `pos(i)`, `neg(i)`, `others(i)` or `same_view(i)`, or filter one: `refs.filter(|j| ..)`"
    );
    for m in &msgs {
        assert!(!m.contains("classes"), "{m}");
    }
    // the scores family calls its sets `queries` and `docs`
    let msgs = lower_err(
        quote!(scores),
        syn::parse_quote! {
            fn f(s: Scores, r: Relevance) -> PerQuery { s[i][i] }
        },
    );
    assert_eq!(
        msgs,
        ["the second index of `s` ranges over docs, but this index ranges over queries; help: index it with a variable bound over `docs`"]
    );
}

#[test]
fn unknown_functions_get_the_nearest_name_and_the_list() {
    let msgs = lower_err(
        quote!(logits),
        syn::parse_quote! {
            fn f(z: Logits, y: Labels) -> PerSample { cosh(z[i][y[i]]) + frobnicate(1.0) }
        },
    );
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    assert!(
        msgs[0].starts_with(
            "unknown function `cosh`; help: did you mean `cos`? (the functions are `topk_threshold`, `exp`, "
        ),
        "{}",
        msgs[0]
    );
    assert!(
        msgs[1].starts_with(
            "unknown function `frobnicate`; help: the functions are `topk_threshold`, `exp`, "
        ),
        "{}",
        msgs[1]
    );
    for f in FUNCTIONS {
        assert!(
            msgs[1].contains(&format!("`{f}`")),
            "{f} missing from {}",
            msgs[1]
        );
    }
}
