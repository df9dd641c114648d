//! Lowering of declared inputs: how they print, and names that clash with the family's.

use super::*;

#[test]
fn declared_inputs_print_by_name_after_the_family_inputs() {
    let p = lower_ok(
        quote!(logits),
        syn::parse_quote! {
            fn heads(
                z: Logits,
                y: Labels,
                t: Given<samples, classes>,
                a: Traced<samples, classes>,
                m: Mask<samples>,
                g: Index<samples, classes>,
                #[hyper(default = 2.0)] temp: f64,
            ) -> PerSample {
                m[i] * (logsumexp(classes, |k| a[i][k] / temp) - a[i][g[i]])
                    + sum(classes, |k| t[i][k] * z[i][k])
            }
        },
    );
    assert_eq!(
        root(&p),
        "mean_{i ∈ samples} ((m[i]·(logsumexp_{k ∈ classes} (a[i][k]/temp) − a[i][g[i]])) + sum_{k ∈ classes} (t[i][k]·z[i][k]))"
    );
    // the family's inputs first, then the declared ones in declaration order
    assert_eq!(p.input_names, ["z", "y", "t", "a", "m", "g"]);
    assert_eq!(p.hyper_names, ["temp"]);
}

/// A declared input may not take the name of one of the family's own inputs, in any
/// family that takes declared inputs; each clash is reported on its own name.
#[test]
fn declared_inputs_named_like_the_family_inputs() {
    let msgs = lower_err(
        quote!(binary),
        syn::parse_quote! {
            fn f(p: Probs, y: Targets, logits: Given<samples>, targets: Mask<samples>) -> PerSample {
                p[i] * logits[i] * targets[i]
            }
        },
    );
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    assert!(msgs[0].starts_with(
        "declared input `logits` clashes with the `binary` family's own input `logits`"
    ));
    assert!(msgs[1].contains("inputs are `probs`, `logits` and `targets`"));
    let msgs = lower_err(
        quote!(scores),
        syn::parse_quote! {
            fn f(s: Scores, r: Relevance, relevance: Traced<queries, docs>) -> PerQuery {
                sum(docs, |d| s[i][d] * relevance[i][d])
            }
        },
    );
    assert_eq!(msgs.len(), 1, "{msgs:#?}");
    assert!(msgs[0].contains("help: rename it (e.g. `other_relevance`)"));
    // a name that only resembles one is fine
    lower_src(
        quote!(logits),
        syn::parse_quote! {
            fn f(z: Logits, y: Labels, teacher_logits: Given<samples, classes>) -> PerSample {
                z[i][y[i]] * teacher_logits[i][y[i]]
            }
        },
    )
    .unwrap_or_else(|e| panic!("{e:#?}"));
}
