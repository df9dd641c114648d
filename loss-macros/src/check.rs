//! Checks on what a definition means (beyond names and scopes, which lowering checks
//! as it resolves them): non-differentiable operations only under `detach`.

use quote::ToTokens;

use crate::ctxt::Ctxt;
use crate::diagnostics as diag;

/// Reports the function `name` (without a derivative) used outside `detach(..)`.
pub fn non_differentiable(cx: &Ctxt, tokens: &dyn ToTokens, name: &str) {
    cx.push(diag::non_differentiable(tokens, name));
}

#[cfg(test)]
mod tests {
    use crate::lower::tests::lower_src;
    use quote::quote;

    fn first_error(item: syn::ItemFn) -> Option<String> {
        lower_src(quote!(logits), item)
            .err()
            .and_then(|m| m.into_iter().next())
    }

    #[test]
    fn rounding_and_arg_extremes_need_detach() {
        let round = first_error(syn::parse_quote! {
            fn f(z: Logits, y: Labels) -> PerSample { round(z[i][y[i]]) }
        });
        assert_eq!(round.as_deref(), Some("`round` is not differentiable; help: wrap it in `detach(..)` to use its value as a constant: `detach(round(..))`"));
        let argmax = first_error(syn::parse_quote! {
            fn f(z: Logits, y: Labels) -> PerSample { argmax(classes, |k| z[i][k]) }
        });
        assert!(argmax.is_some_and(|m| m.starts_with("`argmax` is not differentiable")));
        for name in ["floor", "ceil", "sign"] {
            let f = syn::Ident::new(name, proc_macro2::Span::call_site());
            let msg = first_error(syn::parse_quote! {
                fn f(z: Logits, y: Labels) -> PerSample { #f(z[i][y[i]]) }
            });
            assert!(msg.is_some_and(|m| m.starts_with(&format!("`{name}` is not differentiable"))));
        }
        // inside `detach(..)` they are constants
        let ok = lower_src(
            quote!(logits),
            syn::parse_quote! {
                fn f(z: Logits, y: Labels) -> PerSample {
                    z[i][y[i]] * detach(round(z[i][y[i]]) + argmin(classes, |k| z[i][k]) + sign(z[i][y[i]]))
                }
            },
        );
        assert!(ok.is_ok(), "{:?}", ok.err());
    }

    #[test]
    fn the_argument_of_a_refused_operation_is_still_checked() {
        let msgs = lower_src(
            quote!(logits),
            syn::parse_quote! {
                fn f(z: Logits, y: Labels) -> PerSample { round(scle) + argmax(classes, |k| exq(z[i][k])) }
            },
        )
        .err()
        .unwrap_or_default();
        assert_eq!(msgs.len(), 4, "{msgs:#?}");
        assert!(msgs[0].starts_with("`round` is not differentiable"));
        assert!(msgs[1].starts_with("cannot find `scle`"));
        assert!(msgs[2].starts_with("`argmax` is not differentiable"));
        assert!(msgs[3].starts_with("unknown function `exq`"));
    }

    #[test]
    fn comparisons_are_conditions_unless_detached() {
        let msg = first_error(syn::parse_quote! {
            fn f(z: Logits, y: Labels) -> PerSample { (z[i][y[i]] > 0.0) * z[i][y[i]] }
        });
        assert!(msg.is_some_and(|m| m.starts_with("a comparison is used as a value")));
        let p = lower_src(
            quote!(logits),
            syn::parse_quote! {
                fn f(z: Logits, y: Labels) -> PerSample { detach(z[i][y[i]] > 0.0) * z[i][y[i]] }
            },
        );
        let text = p.map(|p| p.slot_definition(p.root()));
        assert_eq!(
            text.as_deref(),
            Ok("mean_{i ∈ samples} (detach([z[i][y[i]] > 0])·z[i][y[i]])")
        );
    }
}
