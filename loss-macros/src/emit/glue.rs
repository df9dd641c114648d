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
                    #rt::pairs::try_forward_embeddings(self, embeddings, labels, #rt::Declared::none())
                }
            }

            impl<__V, __N, __D, __E, __T> #rt::Loss<#rt::Views<#rt::Tensor<(__V, __N, __D), __E, #rt::Cpu, __T>>, [usize]> for #ident
            where
                __V: #rt::Dim,
                __N: #rt::Dim,
                __D: #rt::Dim,
                __E: #rt::Dtype + #rt::Real,
                __T: #rt::Tape<__E, #rt::Cpu>,
            {
                type Output = #rt::Tensor<(), __E, #rt::Cpu, __T>;
                fn try_forward(
                    &self,
                    views: #rt::Views<#rt::Tensor<(__V, __N, __D), __E, #rt::Cpu, __T>>,
                    item_labels: &[usize],
                ) -> ::core::result::Result<Self::Output, #rt::LossError> {
                    #rt::pairs::try_forward_views(self, views.0, ::core::option::Option::Some(item_labels), #rt::Declared::none())
                }
            }

            impl<__V, __N, __D, __E, __T> #rt::Loss<#rt::Views<#rt::Tensor<(__V, __N, __D), __E, #rt::Cpu, __T>>, #rt::SelfSupervised> for #ident
            where
                __V: #rt::Dim,
                __N: #rt::Dim,
                __D: #rt::Dim,
                __E: #rt::Dtype + #rt::Real,
                __T: #rt::Tape<__E, #rt::Cpu>,
            {
                type Output = #rt::Tensor<(), __E, #rt::Cpu, __T>;
                fn try_forward(
                    &self,
                    views: #rt::Views<#rt::Tensor<(__V, __N, __D), __E, #rt::Cpu, __T>>,
                    _: &#rt::SelfSupervised,
                ) -> ::core::result::Result<Self::Output, #rt::LossError> {
                    #rt::pairs::try_forward_views(self, views.0, ::core::option::Option::None, #rt::Declared::none())
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
                    #rt::pairs::try_forward_with_refs(self, input.0, input.1, labels, #rt::Declared::none())
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
                    #rt::pairs::try_forward_similarities(self, similarities.0, labels, ::core::option::Option::None, #rt::Declared::none())
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
                    #rt::pairs::try_forward_similarities(self, similarities.0, labels.labels, ::core::option::Option::Some(labels.ref_labels), #rt::Declared::none())
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
        FamilyKind::Dense => quote! {
            impl<__S, __E, __T> #rt::Loss<#rt::Tensor<__S, __E, #rt::Cpu, __T>, #rt::Tensor<__S, __E, #rt::Cpu>> for #ident
            where
                __S: #rt::Shape,
                __E: #rt::Dtype + #rt::Real,
                __T: #rt::Tape<__E, #rt::Cpu>,
            {
                type Output = #rt::Tensor<(), __E, #rt::Cpu, __T>;
                fn try_forward(
                    &self,
                    prediction: #rt::Tensor<__S, __E, #rt::Cpu, __T>,
                    target: &#rt::Tensor<__S, __E, #rt::Cpu>,
                ) -> ::core::result::Result<Self::Output, #rt::LossError> {
                    #rt::dense::try_forward(self, prediction, target)
                }
            }
        },
    }
}

/// One way to pass a family's primary input to a loss with declared inputs: the
/// generic parameters it needs beyond `__E` and `__T` (lifetimes first) and their bounds,
/// the primary's and the target's types, how the traced tensor is taken out of the
/// primary (`__p`, its tape merged with the traced declared inputs'), and the call.
struct Form {
    generics: TokenStream,
    bounds: TokenStream,
    primary: TokenStream,
    target: TokenStream,
    unwrap: TokenStream,
    call: TokenStream,
    /// For a loss with state: the dataset id of every sample (`__row_ids`) from the ids
    /// given (`__ids`, one per item of a `Views` input, one per sample otherwise).
    row_ids: TokenStream,
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
    let shaped = |target: TokenStream, unwrap: TokenStream, primary: TokenStream, call| Form {
        generics: quote!(__S,),
        bounds: quote!(__S: #rt::Shape,),
        primary,
        target,
        unwrap,
        call,
        row_ids: per_sample_ids(),
    };
    let none = TokenStream::new;
    let forms = match family {
        FamilyKind::Binary => vec![
            shaped(
                constant.clone(),
                none(),
                tensor.clone(),
                quote!(#rt::binary::try_forward_declared(self, __p, target, false, __d)),
            ),
            shaped(
                constant,
                quote!(let __p = __p.0;),
                quote!(#rt::FromLogits<#tensor>),
                quote!(#rt::binary::try_forward_declared(self, __p, target, true, __d)),
            ),
        ],
        FamilyKind::Logits => vec![shaped(
            quote!([usize]),
            none(),
            tensor,
            quote!(#rt::logits::try_forward_declared(self, __p, target, __d)),
        )],
        FamilyKind::Scores => vec![shaped(
            constant,
            none(),
            tensor,
            quote!(#rt::scores::try_forward_declared(self, __p, target, __d)),
        )],
        FamilyKind::Dense => vec![shaped(
            constant,
            none(),
            tensor,
            quote!(#rt::dense::try_forward_declared(self, __p, target, __d)),
        )],
        FamilyKind::Pairs => pairs_forms(rt),
    };
    let impls = forms
        .iter()
        .map(|form| declared_impl(declared, ident, rt, form));
    quote!(#(#impls)*)
}

/// For a loss with state: one dataset id per sample, as given.
fn per_sample_ids() -> TokenStream {
    quote!(let __row_ids: &[usize] = __ids;)
}

/// The pairs family's forms: embeddings, embeddings with a reference set, views of items
/// with item labels or self-supervised, and a similarity matrix with labels or with
/// [`PairLabels`].
fn pairs_forms(rt: &TokenStream) -> Vec<Form> {
    let matrix = |rows, cols, tape| quote!(#rt::Tensor<(#rows, #cols), __E, #rt::Cpu, #tape>);
    let (n, m, d) = (quote!(__N), quote!(__M), quote!(__D));
    let (t, t2) = (quote!(__T), quote!(__TRefs));
    let embeddings = matrix(&n, &d, &t);
    let refs = matrix(&m, &d, &t2);
    let similarities = matrix(&n, &m, &t);
    let views = quote!(#rt::Views<#rt::Tensor<(__V, #n, #d), __E, #rt::Cpu, #t>>);
    vec![
        Form {
            generics: quote!(__N, __D,),
            bounds: quote!(__N: #rt::Dim, __D: #rt::Dim,),
            primary: embeddings.clone(),
            target: quote!([usize]),
            unwrap: TokenStream::new(),
            call: quote!(#rt::pairs::try_forward_embeddings(self, __p, target, __d)),
            row_ids: per_sample_ids(),
        },
        Form {
            generics: quote!('__l, __N, __M, __D, __TRefs,),
            bounds: quote!(
                __N: #rt::Dim, __M: #rt::Dim, __D: #rt::Dim,
                __T: #rt::Merge<__TRefs>, __TRefs: #rt::Tape<__E, #rt::Cpu>,
            ),
            primary: quote!(#rt::WithRefs<#embeddings, #refs>),
            target: quote!(#rt::PairLabels<'__l>),
            unwrap: quote!(let (__p, __r) = (__p.0, __p.1);),
            call: quote!(#rt::pairs::try_forward_with_refs(self, __p, __r, target, __d)),
            row_ids: per_sample_ids(),
        },
        Form {
            generics: quote!(__V, __N, __D,),
            bounds: quote!(__V: #rt::Dim, __N: #rt::Dim, __D: #rt::Dim,),
            primary: views.clone(),
            target: quote!([usize]),
            unwrap: quote!(let __p = __p.0;),
            call: quote!(#rt::pairs::try_forward_views(
                self, __p, ::core::option::Option::Some(target), __d
            )),
            row_ids: quote! {
                let __row_ids = #rt::pairs::view_row_ids(&__p, __ids)?;
                let __row_ids: &[usize] = &__row_ids;
            },
        },
        Form {
            generics: quote!(__V, __N, __D,),
            bounds: quote!(__V: #rt::Dim, __N: #rt::Dim, __D: #rt::Dim,),
            primary: views,
            target: quote!(#rt::SelfSupervised),
            unwrap: quote!(let __p = __p.0; let _ = target;),
            call: quote!(#rt::pairs::try_forward_views(
                self, __p, ::core::option::Option::None, __d
            )),
            row_ids: quote! {
                let __row_ids = #rt::pairs::view_row_ids(&__p, __ids)?;
                let __row_ids: &[usize] = &__row_ids;
            },
        },
        Form {
            generics: quote!(__N, __M,),
            bounds: quote!(__N: #rt::Dim, __M: #rt::Dim,),
            primary: quote!(#rt::Similarities<#similarities>),
            target: quote!([usize]),
            unwrap: quote!(let __p = __p.0;),
            call: quote!(#rt::pairs::try_forward_similarities(
                self, __p, target, ::core::option::Option::None, __d
            )),
            row_ids: per_sample_ids(),
        },
        Form {
            generics: quote!('__l, __N, __M,),
            bounds: quote!(__N: #rt::Dim, __M: #rt::Dim,),
            primary: quote!(#rt::Similarities<#similarities>),
            target: quote!(#rt::PairLabels<'__l>),
            unwrap: quote!(let __p = __p.0;),
            call: quote!(#rt::pairs::try_forward_similarities(
                self, __p, target.labels, ::core::option::Option::Some(target.ref_labels), __d
            )),
            row_ids: per_sample_ids(),
        },
    ]
}

/// One impl: `Loss<(primary, A0, A1, ..), target>` for one [`Form`].
fn declared_impl(
    declared: &[DeclaredParam],
    ident: &Ident,
    rt: &TokenStream,
    form: &Form,
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
            DeclKind::State => {
                let field = declared[..k]
                    .iter()
                    .filter(|d| d.kind == DeclKind::State)
                    .count();
                steps.push(quote!(__d.constant(self.state.gather::<__E>(#field, &__row_ids))?;));
                // not passed by the user
                names.pop();
                continue;
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
    let Form {
        generics,
        bounds: form_bounds,
        primary,
        target,
        unwrap,
        call,
        row_ids,
    } = form;
    if declared.iter().any(|d| d.kind == DeclKind::State) {
        // the user passes the inputs that are not state, with the batch's dataset ids
        let (input, take) = if types.is_empty() {
            (quote!(#primary), quote!(let __p = __x;))
        } else {
            (
                quote!((#primary, #(#types),*)),
                quote!(let (__p, #(#names),*) = __x;),
            )
        };
        return quote! {
            impl<'__ids, #generics __E, __T, #(#params),*> #rt::Loss<#rt::WithIds<'__ids, #input>, #target> for #ident
            where
                __E: #rt::Dtype + #rt::Real,
                __T: #rt::Tape<__E, #rt::Cpu>,
                #form_bounds
                #(#bounds,)*
            {
                type Output = #rt::Tensor<(), __E, #rt::Cpu, __T>;
                fn try_forward(
                    &self,
                    input: #rt::WithIds<'__ids, #input>,
                    target: &#target,
                ) -> ::core::result::Result<Self::Output, #rt::LossError> {
                    let #rt::WithIds(__x, __ids) = input;
                    #take
                    self.state.check_ids(__ids)?;
                    let mut __d = #rt::Declared::<__E>::of::<Self>();
                    #unwrap
                    #row_ids
                    let __updates = __d.with_updates(__row_ids.len());
                    #(#steps)*
                    let __out = #call?;
                    self.state.scatter(&__row_ids, &__updates.borrow());
                    ::core::result::Result::Ok(__out)
                }
            }
        };
    }
    quote! {
        impl<#generics __E, __T, #(#params),*> #rt::Loss<(#primary, #(#types),*), #target> for #ident
        where
            __E: #rt::Dtype + #rt::Real,
            __T: #rt::Tape<__E, #rt::Cpu>,
            #form_bounds
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
                #call
            }
        }
    }
}
