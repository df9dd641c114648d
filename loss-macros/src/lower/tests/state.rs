//! Lowering of per-sample state: `update(..)` in the IR, and its misuses refused.

use super::*;

/// `update(u[i], v)` materialises `detach(v)` per sample and records which state it
/// writes; a state is read as a constant.
#[test]
fn an_update_is_a_detached_value_per_sample() {
    let p = lower_ok(
        quote!(logits),
        syn::parse_quote! {
            fn f(z: Logits, y: Labels, #[state(init = 1.0)] u: State<samples>, w: State<samples>) -> PerSample {
                let ce = logsumexp(classes, |k| z[i][k]) - z[i][y[i]];
                let a = update(w[i], 0.5 * w[i] + ce);
                ce * a
            }
        },
    );
    assert_eq!(p.updates.len(), 1, "{:?}", p.updates);
    let u = p.updates[0];
    assert_eq!(u.field, 1, "w is the second state");
    assert_eq!(p.slot(u.slot).free, [u.var]);
    assert!(
        p.slot_definition(u.slot).contains("detach"),
        "{}",
        p.slot_definition(u.slot)
    );
}

#[test]
fn updates_written_wrong_are_refused() {
    let state = |body: syn::Expr| -> Vec<String> {
        lower_err(
            quote!(pairs),
            syn::parse_quote! {
                fn f(s: Similarity, y: Labels, u: State<samples>) -> PerAnchor { #body }
            },
        )
    };
    let msgs = state(syn::parse_quote!({ sum(refs, |j| update(u[i], s[i][j])) }));
    assert!(msgs[0].contains("depends on `j`"), "{msgs:#?}");
    let msgs = state(syn::parse_quote!({ update(u[i], 1.0) + update(u[i], 2.0) }));
    assert!(msgs[0].contains("updated twice"), "{msgs:#?}");
    let msgs = state(syn::parse_quote!({
        if sum(refs, |j| s[i][j]) > 0.0 {
            update(u[i], 1.0)
        } else {
            0.0
        }
    }));
    assert!(msgs[0].contains("branch"), "{msgs:#?}");
    let msgs = state(syn::parse_quote!({ update(y[i], 1.0) }));
    assert!(msgs[0].contains("writes one state value"), "{msgs:#?}");
    let msgs = lower_err(
        quote!(logits),
        syn::parse_quote! {
            fn f(z: Logits, y: Labels, u: State<samples, classes>) -> PerSample { z[i][y[i]] }
        },
    );
    assert!(
        msgs[0].contains("one value per dataset sample"),
        "{msgs:#?}"
    );
    let msgs = lower_err(
        quote!(logits),
        syn::parse_quote! {
            fn f(z: Logits, y: Labels, #[state(init = 1.0)] t: Given<samples>) -> PerSample { z[i][y[i]] * t[i] }
        },
    );
    assert!(
        msgs[0].contains("belongs on a state parameter"),
        "{msgs:#?}"
    );
}
