//! `Loss` implementations: one call into the runtime's family adapter each.

use proc_macro2::{Ident, TokenStream};
use quote::quote;

use crate::family::{DeclKind, DeclaredParam, FamilyKind};

pub fn emit(
    family: FamilyKind,
    declared: &[DeclaredParam],
    ident: &Ident,
    rt: &TokenStream,
) -> TokenStream {
    if !declared.is_empty() {
        return emit_declared(family, declared, ident, rt);
    }
    match family {
        FamilyKind::Binary => quote! {
            impl<__S, __E, __T> #rt::Loss<#rt::Tensor<__S, __E, #rt::Cpu, __T>, #rt::Tensor<__S, __E, #rt::Cpu>> for #ident
            where
                __S: #rt::Shape,
                __E: #rt::Dtype + #rt::Real,
                __T: #rt::Tape<__E, #rt::Cpu>,
            {
                type Output = #rt::Tensor<(), __E, #rt::Cpu, __T>;
                fn try_forward(
                    &self,
                    probs: #rt::Tensor<__S, __E, #rt::Cpu, __T>,
                    targets: &#rt::Tensor<__S, __E, #rt::Cpu>,
                ) -> ::core::result::Result<Self::Output, #rt::LossError> {
                    #rt::binary::try_forward(self, probs, targets, false)
                }
            }

            impl<__S, __E, __T> #rt::Loss<#rt::FromLogits<#rt::Tensor<__S, __E, #rt::Cpu, __T>>, #rt::Tensor<__S, __E, #rt::Cpu>> for #ident
            where
                __S: #rt::Shape,
                __E: #rt::Dtype + #rt::Real,
                __T: #rt::Tape<__E, #rt::Cpu>,
            {
                type Output = #rt::Tensor<(), __E, #rt::Cpu, __T>;
                fn try_forward(
                    &self,
                    logits: #rt::FromLogits<#rt::Tensor<__S, __E, #rt::Cpu, __T>>,
                    targets: &#rt::Tensor<__S, __E, #rt::Cpu>,
                ) -> ::core::result::Result<Self::Output, #rt::LossError> {
                    #rt::binary::try_forward(self, logits.0, targets, true)
                }
            }
        },
        FamilyKind::Logits => quote! {
            impl<__S, __E, __T> #rt::Loss<#rt::Tensor<__S, __E, #rt::Cpu, __T>, [usize]> for #ident
            where
                __S: #rt::Shape,
                __E: #rt::Dtype + #rt::Real,
                __T: #rt::Tape<__E, #rt::Cpu>,
            {
                type Output = #rt::Tensor<(), __E, #rt::Cpu, __T>;
                fn try_forward(
                    &self,
                    logits: #rt::Tensor<__S, __E, #rt::Cpu, __T>,
                    labels: &[usize],
                ) -> ::core::result::Result<Self::Output, #rt::LossError> {
                    #rt::logits::try_forward(self, logits, labels)
                }
            }
        },
        FamilyKind::Pairs => quote! {
            impl<__N, __D, __E, __T> #rt::Loss<#rt::Tensor<(__N, __D), __E, #rt::Cpu, __T>, [usize]> for #ident
            where
                __N: #rt::Dim,
                __D: #rt::Dim,
                __E: #rt::Dtype + #rt::Real,
                __T: #rt::Tape<__E, #rt::Cpu>,
            {
                type Output = #rt::Tensor<(), __E, #rt::Cpu, __T>;
                fn try_forward(
                    &self,
                    embeddings: #rt::Tensor<(__N, __D), __E, #rt::Cpu, __T>,
                    labels: &[usize],
                ) -> ::core::result::Result<Self::Output, #rt::LossError> {
                    #rt::pairs::try_forward_embeddings(self, embeddings, labels)
                }
            }

            impl<'__l, __N, __M, __D, __E, __T, __T2>
                #rt::Loss<#rt::WithRefs<#rt::Tensor<(__N, __D), __E, #rt::Cpu, __T>, #rt::Tensor<(__M, __D), __E, #rt::Cpu, __T2>>, #rt::PairLabels<'__l>>
                for #ident
            where
                __N: #rt::Dim,
                __M: #rt::Dim,
                __D: #rt::Dim,
                __E: #rt::Dtype + #rt::Real,
                __T: #rt::Tape<__E, #rt::Cpu> + #rt::Merge<__T2>,
                __T2: #rt::Tape<__E, #rt::Cpu>,
            {
                type Output = #rt::Tensor<(), __E, #rt::Cpu, __T>;
                fn try_forward(
                    &self,
                    input: #rt::WithRefs<#rt::Tensor<(__N, __D), __E, #rt::Cpu, __T>, #rt::Tensor<(__M, __D), __E, #rt::Cpu, __T2>>,
                    labels: &#rt::PairLabels<'__l>,
                ) -> ::core::result::Result<Self::Output, #rt::LossError> {
                    #rt::pairs::try_forward_with_refs(self, input.0, input.1, labels)
                }
            }

            impl<__N, __M, __E, __T> #rt::Loss<#rt::Similarities<#rt::Tensor<(__N, __M), __E, #rt::Cpu, __T>>, [usize]> for #ident
            where
                __N: #rt::Dim,
                __M: #rt::Dim,
                __E: #rt::Dtype + #rt::Real,
                __T: #rt::Tape<__E, #rt::Cpu>,
            {
                type Output = #rt::Tensor<(), __E, #rt::Cpu, __T>;
                fn try_forward(
                    &self,
                    similarities: #rt::Similarities<#rt::Tensor<(__N, __M), __E, #rt::Cpu, __T>>,
                    labels: &[usize],
                ) -> ::core::result::Result<Self::Output, #rt::LossError> {
                    #rt::pairs::try_forward_similarities(self, similarities.0, labels, ::core::option::Option::None)
                }
            }

            impl<'__l, __N, __M, __E, __T> #rt::Loss<#rt::Similarities<#rt::Tensor<(__N, __M), __E, #rt::Cpu, __T>>, #rt::PairLabels<'__l>> for #ident
            where
                __N: #rt::Dim,
                __M: #rt::Dim,
                __E: #rt::Dtype + #rt::Real,
                __T: #rt::Tape<__E, #rt::Cpu>,
            {
                type Output = #rt::Tensor<(), __E, #rt::Cpu, __T>;
                fn try_forward(
                    &self,
                    similarities: #rt::Similarities<#rt::Tensor<(__N, __M), __E, #rt::Cpu, __T>>,
                    labels: &#rt::PairLabels<'__l>,
                ) -> ::core::result::Result<Self::Output, #rt::LossError> {
                    #rt::pairs::try_forward_similarities(self, similarities.0, labels.labels, ::core::option::Option::Some(labels.ref_labels))
                }
            }

            impl #ident {
                /// The General Pair Weighting weights `W = ∂L/∂S` of a batch: the derived
                /// gradient of the loss with respect to each pair's similarity, for a
                /// similarity matrix of the batch against itself (see
                /// [`pair_weights_with_refs`](Self::pair_weights_with_refs) for a reference set).
                pub fn pair_weights<__N: #rt::Dim, __M: #rt::Dim, __E: #rt::Dtype + #rt::Real>(
                    &self,
                    similarities: &#rt::Tensor<(__N, __M), __E, #rt::Cpu>,
                    labels: &[usize],
                ) -> ::core::result::Result<#rt::Tensor<(__N, __M), __E, #rt::Cpu>, #rt::LossError> {
                    #rt::pairs::pair_weights(self, similarities, labels, ::core::option::Option::None)
                }

                /// [`pair_weights`](Self::pair_weights) for similarities against a separate
                /// reference set.
                pub fn pair_weights_with_refs<__N: #rt::Dim, __M: #rt::Dim, __E: #rt::Dtype + #rt::Real>(
                    &self,
                    similarities: &#rt::Tensor<(__N, __M), __E, #rt::Cpu>,
                    labels: &#rt::PairLabels<'_>,
                ) -> ::core::result::Result<#rt::Tensor<(__N, __M), __E, #rt::Cpu>, #rt::LossError> {
                    #rt::pairs::pair_weights(self, similarities, labels.labels, ::core::option::Option::Some(labels.ref_labels))
                }
            }
        },
        FamilyKind::Scores => quote! {
            impl<__S, __E, __T> #rt::Loss<#rt::Tensor<__S, __E, #rt::Cpu, __T>, #rt::Tensor<__S, __E, #rt::Cpu>> for #ident
            where
                __S: #rt::Shape,
                __E: #rt::Dtype + #rt::Real,
                __T: #rt::Tape<__E, #rt::Cpu>,
            {
                type Output = #rt::Tensor<(), __E, #rt::Cpu, __T>;
                fn try_forward(
                    &self,
                    scores: #rt::Tensor<__S, __E, #rt::Cpu, __T>,
                    relevance: &#rt::Tensor<__S, __E, #rt::Cpu>,
                ) -> ::core::result::Result<Self::Output, #rt::LossError> {
                    #rt::scores::try_forward(self, scores, relevance)
                }
            }
        },
    }
}

/// The `Loss` impls of a loss with declared inputs: the family's primary input and the
/// declared ones as a tuple `(primary, decl1, decl2, ..)`, the target unchanged.
fn emit_declared(
    family: FamilyKind,
    declared: &[DeclaredParam],
    ident: &Ident,
    rt: &TokenStream,
) -> TokenStream {
    let tensor = quote!(#rt::Tensor<__S, __E, #rt::Cpu, __T>);
    let constant = quote!(#rt::Tensor<__S, __E, #rt::Cpu>);
    match family {
        FamilyKind::Binary => {
            let probs = declared_impl(
                declared,
                ident,
                rt,
                &tensor,
                &constant,
                |p, d| quote!(#rt::binary::try_forward_declared(self, #p, target, false, #d)),
            );
            let logits = declared_impl(
                declared,
                ident,
                rt,
                &quote!(#rt::FromLogits<#tensor>),
                &constant,
                |p, d| quote!(#rt::binary::try_forward_declared(self, #p.0, target, true, #d)),
            );
            quote!(#probs #logits)
        }
        FamilyKind::Logits => declared_impl(
            declared,
            ident,
            rt,
            &tensor,
            &quote!([usize]),
            |p, d| quote!(#rt::logits::try_forward_declared(self, #p, target, #d)),
        ),
        FamilyKind::Scores => declared_impl(
            declared,
            ident,
            rt,
            &tensor,
            &constant,
            |p, d| quote!(#rt::scores::try_forward_declared(self, #p, target, #d)),
        ),
        // refused in `ast.rs`
        FamilyKind::Pairs => TokenStream::new(),
    }
}

/// One impl: `Loss<(primary, A0, A1, ..), target>`; `call(primary, declared)` runs it.
fn declared_impl(
    declared: &[DeclaredParam],
    ident: &Ident,
    rt: &TokenStream,
    primary: &TokenStream,
    target: &TokenStream,
    call: impl Fn(&TokenStream, &TokenStream) -> TokenStream,
) -> TokenStream {
    let mut params = Vec::new();
    let mut bounds = Vec::new();
    let mut types = Vec::new();
    let mut names = Vec::new();
    let mut steps = Vec::new();
    for (k, d) in declared.iter().enumerate() {
        let arg = quote::format_ident!("__a{}", k);
        names.push(arg.clone());
        match d.kind {
            DeclKind::Given | DeclKind::Mask => {
                let a = quote::format_ident!("__A{}", k);
                bounds.push(quote!(#a: #rt::ConstantInput<__E>));
                types.push(quote!(#a));
                params.push(a);
                steps.push(quote!(__d.constant(#arg)?;));
            }
            DeclKind::Index => {
                let a = quote::format_ident!("__A{}", k);
                bounds.push(quote!(#a: #rt::LabelInput));
                types.push(quote!(#a));
                params.push(a);
                steps.push(quote!(__d.labels(#arg)?;));
            }
            DeclKind::Traced => {
                let s = quote::format_ident!("__S{}", k);
                let t = quote::format_ident!("__T{}", k);
                bounds.push(quote!(#s: #rt::Shape));
                bounds.push(quote!(#t: #rt::Tape<__E, #rt::Cpu>));
                bounds.push(quote!(__T: #rt::Merge<#t>));
                types.push(quote!(#rt::Tensor<#s, __E, #rt::Cpu, #t>));
                params.push(s);
                params.push(t);
                steps.push(quote!(let __p = __d.traced(__p, #arg)?;));
            }
        }
    }
    // the primary may be wrapped (`FromLogits`): unwrap it around the traced merges
    let body = call(&quote!(__p), &quote!(__d));
    let has_traced = declared.iter().any(|d| d.kind == DeclKind::Traced);
    let (unwrap, rewrap) = if primary.to_string().contains("FromLogits") {
        (
            quote!(let __p = __p.0;),
            quote!(let __p = #rt::FromLogits(__p);),
        )
    } else {
        (TokenStream::new(), TokenStream::new())
    };
    let (unwrap, rewrap) = if has_traced {
        (unwrap, rewrap)
    } else {
        (TokenStream::new(), TokenStream::new())
    };
    quote! {
        impl<__S, __E, __T, #(#params),*> #rt::Loss<(#primary, #(#types),*), #target> for #ident
        where
            __S: #rt::Shape,
            __E: #rt::Dtype + #rt::Real,
            __T: #rt::Tape<__E, #rt::Cpu>,
            #(#bounds,)*
        {
            type Output = #rt::Tensor<(), __E, #rt::Cpu, __T>;
            fn try_forward(
                &self,
                input: (#primary, #(#types),*),
                target: &#target,
            ) -> ::core::result::Result<Self::Output, #rt::LossError> {
                let (__p, #(#names),*) = input;
                let mut __d = #rt::Declared::<__E>::of::<Self>();
                #unwrap
                #(#steps)*
                #rewrap
                #body
            }
        }
    }
}
