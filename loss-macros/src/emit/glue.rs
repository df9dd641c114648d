//! `Loss` implementations: one call into the runtime's family adapter each.

use proc_macro2::{Ident, TokenStream};
use quote::quote;

use crate::family::FamilyKind;

pub fn emit(family: FamilyKind, ident: &Ident, rt: &TokenStream) -> TokenStream {
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
