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
    }
}
