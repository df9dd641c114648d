//! A loss with `State` parameters: the state its value owns, how it is sized, and the
//! constants that tell the runtime what the state is and where the forward pass leaves
//! its new values.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::LossDef;
use crate::family::DeclKind;
use crate::ir::Program;

/// The parts of a stateful loss's API; all empty for a loss without state.
#[derive(Default)]
pub struct StateApi {
    /// The struct's `state` field.
    pub field: TokenStream,
    /// Its value in `Default`.
    pub default: TokenStream,
    /// `with_dataset_size`.
    pub methods: TokenStream,
    /// `Kernel::STATE` and `Kernel::STATE_UPDATES`.
    pub consts: TokenStream,
}

pub fn emit(def: &LossDef, prog: &Program, rt: &TokenStream) -> StateApi {
    let states: Vec<_> = def
        .declared
        .iter()
        .filter(|d| d.kind == DeclKind::State)
        .collect();
    if states.is_empty() {
        return StateApi::default();
    }
    let fn_name = def.item.sig.ident.to_string();
    let infos = states.iter().map(|d| {
        let name = d.name.to_string();
        let init = d.init;
        quote!(#rt::StateInfo { name: #name, init: #init })
    });
    let updates = prog.updates.iter().map(|u| {
        let (field, slot) = (u.field, u.slot.0 as usize);
        quote!(#rt::StateUpdate { field: #field, slot: #slot })
    });
    StateApi {
        field: quote! {
            /// The state kept for every dataset sample across calls: `state.get()` reads
            /// (and, with `serde`, saves) it, `state.set(saved)` restores it, and
            /// `state.reset()` starts over. Size it with `with_dataset_size`.
            pub state: #rt::StateCell,
        },
        default: quote!(state: #rt::StateCell::new(#fn_name, <Self as #rt::Kernel>::STATE, 0),),
        methods: quote! {
            /// The loss for a dataset of `samples` samples, each state value at its
            /// initial value; every call names its batch's samples with `WithIds`.
            #[must_use]
            pub fn with_dataset_size(self, samples: usize) -> Self {
                self.state.resize(samples);
                self
            }
        },
        consts: quote! {
            const STATE: &'static [#rt::StateInfo] = &[#(#infos),*];
            const STATE_UPDATES: &'static [#rt::StateUpdate] = &[#(#updates),*];
        },
    }
}
