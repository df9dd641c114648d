//! Code generation: the public loss type and its API ([`api`]), the kernels
//! ([`kernel`]) and the family glue that implements `Loss` ([`glue`]).

mod api;
mod glue;
mod kernel;
mod row_blocks;
mod state;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::ast::{Constraint, HyperTy, LossDef};
use crate::diff::{self, Gradients};
use crate::family::FamilyKind;
use crate::ir::{Program, SlotKind};

/// A hyper-parameter as emitted: declared ones first, then the family's.
pub struct HyperSpec {
    pub name: String,
    pub ty: HyperTy,
    pub default: f64,
    pub constraint: Constraint,
    pub doc: String,
}

/// Path to the runtime's private module, as seen from the expansion site.
pub fn runtime() -> TokenStream {
    quote!(::losskit::__private)
}

pub fn emit(
    def: &LossDef,
    family: FamilyKind,
    hypers: &[HyperSpec],
    prog: &Program,
    grads: &Gradients,
) -> TokenStream {
    let rt = runtime();
    let name = struct_name(&def.item.sig.ident.to_string());
    let ident = format_ident!("{}", name, span = def.item.sig.ident.span());
    let flags: Vec<bool> = hypers.iter().map(|h| h.ty == HyperTy::Flag).collect();
    let definition = describe_definition(prog);
    let gradient = diff::describe(prog, grads);
    let kcx = kernel::KernelCx::new(
        prog,
        crate::family::raw_inputs(family, &def.declared),
        grads,
        &flags,
        rt.clone(),
    );
    let (forward, forward_wide) = kcx.forward();
    let row_blocks = row_blocks::constant(prog, family, !def.declared.is_empty(), &rt);
    let state = state::emit(def, prog, &rt);
    let state_consts = &state.consts;
    let forward = quote!(#forward #row_blocks #state_consts);
    let (backward, backward_wide) = kcx.backward();
    let api = api::emit(
        def,
        family,
        &ident,
        hypers,
        &definition,
        &gradient,
        &rt,
        forward,
        backward,
        &state,
    );
    let glue = glue::emit(family, &def.declared, &ident, &rt);
    let wide = if forward_wide.is_empty() {
        TokenStream::new()
    } else {
        quote!(impl #ident { #forward_wide #backward_wide })
    };
    quote!(#api #glue #wide)
}

/// `anyloss_f1` → `AnylossF1`.
pub fn struct_name(fn_name: &str) -> String {
    fn_name
        .split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// The lowered definition: named values first, then the loss.
fn describe_definition(prog: &Program) -> String {
    let mut out = String::new();
    let root = prog.root();
    for (k, slot) in prog.slots.iter().enumerate() {
        if let Some(name) = &slot.name {
            let idx: Vec<&str> = slot
                .free
                .iter()
                .map(|v| prog.vars[v.0 as usize].name.as_str())
                .collect();
            let lhs = if idx.is_empty() {
                name.clone()
            } else {
                format!("{name}[{}]", idx.join(","))
            };
            out += &format!(
                "{lhs} = {}\n",
                prog.slot_definition(crate::ir::SlotId(k as u16))
            );
        }
    }
    let rhs = match &prog.slot(root).kind {
        SlotKind::Let(n) => prog.node_string(*n),
        SlotKind::Reduce { .. } => prog.slot_definition(root),
    };
    out += &format!("L = {rhs}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::struct_name;

    #[test]
    fn struct_names_are_camel_case() {
        assert_eq!(struct_name("anyloss_f1"), "AnylossF1");
        assert_eq!(struct_name("softmax_cross_entropy"), "SoftmaxCrossEntropy");
        assert_eq!(struct_name("z"), "Z");
    }
}
