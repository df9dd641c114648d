//! What to emit when the definition has errors: the errors, plus a stub of the public
//! type so that uses of it elsewhere do not bury our messages under a cascade.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Ident, ItemFn};

/// `pub struct MyLoss;` for `pub fn my_loss`, or nothing when the item is not a `fn` or
/// its name gives no valid struct name (both reported by then).
pub fn stub(item: &TokenStream) -> TokenStream {
    let Ok(item) = syn::parse2::<ItemFn>(item.clone()) else {
        return TokenStream::new();
    };
    let name = crate::emit::struct_name(&item.sig.ident.to_string());
    let Ok(mut name) = syn::parse_str::<Ident>(&name) else {
        return TokenStream::new();
    };
    name.set_span(item.sig.ident.span());
    let vis = &item.vis;
    quote! {
        #[derive(Clone, Debug, Default)]
        #[allow(dead_code)] // reason: a placeholder while the definition has errors
        #vis struct #name;
    }
}

#[cfg(test)]
mod tests {
    use super::stub;
    use quote::quote;

    #[test]
    fn stub_is_a_unit_struct_named_after_the_fn() {
        let out = stub(&quote!(
            pub fn my_loss(z: Logits) -> PerSample {
                exq(z)
            }
        ));
        let out = out.to_string();
        assert!(out.contains("pub struct MyLoss ;"), "{out}");
        // never the user's body
        assert!(!out.contains("exq"), "{out}");
    }

    #[test]
    fn no_stub_without_a_fn_or_a_struct_name() {
        assert!(stub(&quote!(
            struct NotAFn;
        ))
        .is_empty());
        assert!(stub(&quote!(
            fn __() -> PerSample {
                0.0
            }
        ))
        .is_empty());
        assert!(stub(&quote!(
            fn r#match() -> PerSample {
                0.0
            }
        ))
        .is_empty());
    }
}
