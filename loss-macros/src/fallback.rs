//! What to emit when the definition has errors: the errors, plus a stub of the public
//! type so that uses of it elsewhere do not bury our messages under a cascade.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::ItemFn;

pub fn stub(item: &TokenStream) -> TokenStream {
    let Ok(item) = syn::parse2::<ItemFn>(item.clone()) else {
        return TokenStream::new();
    };
    let name = format_ident!(
        "{}",
        crate::emit::struct_name(&item.sig.ident.to_string()),
        span = item.sig.ident.span()
    );
    let vis = &item.vis;
    quote! {
        #[derive(Clone, Debug, Default)]
        #[allow(dead_code)]
        #vis struct #name;
    }
}
