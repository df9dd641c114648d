//! The pipeline, top to bottom.

use proc_macro2::{Span, TokenStream};

use crate::ast::{Constraint, HyperTy, LossDef};
use crate::ctxt::Ctxt;
use crate::emit::HyperSpec;
use crate::{diff, emit, fallback, lower, simplify};

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    match try_expand(args, item.clone()) {
        Ok(tokens) => tokens,
        Err(err) => {
            let stub = fallback::stub(&item);
            let errors = err.to_compile_error();
            quote::quote!(#stub #errors)
        }
    }
}

fn try_expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let cx = Ctxt::new();
    let def = LossDef::from_syn(&cx, args, item)?;
    let lowered = lower::lower(&cx, &def);
    cx.check()?; // every user-facing error, at once
    let (Some((prog, _)), Some(family)) = (lowered, def.attr.family) else {
        return Err(syn::Error::new(
            Span::call_site(),
            "internal error in #[loss]: lowering failed without a message",
        ));
    };
    let hypers = hyper_specs(&def, family);
    let mut prog = simplify::run(prog);
    let differentiable: Vec<bool> = crate::family::raw_inputs(family, &def.declared)
        .iter()
        .map(|r| r.differentiable)
        .collect();
    let grads = diff::gradients(&mut prog, &differentiable);
    let out = emit::emit(&def, family, &hypers, &prog, &grads);
    if let Ok(path) = std::env::var("LOSSKIT_DUMP") {
        let _ = std::fs::write(format!("{path}/{}.rs", def.item.sig.ident), out.to_string());
    }
    Ok(out)
}

fn hyper_specs(def: &LossDef, family: crate::family::FamilyKind) -> Vec<HyperSpec> {
    let mut out: Vec<HyperSpec> = def
        .hypers
        .iter()
        .map(|h| HyperSpec {
            name: h.name.to_string(),
            ty: h.ty,
            default: h.default,
            constraint: h.constraint,
            doc: h.doc.clone(),
        })
        .collect();
    let uses_amp = def.inputs.iter().any(|i| i.role.uses_amplification());
    out.extend(
        family
            .family_hypers(uses_amp)
            .into_iter()
            .map(|f| HyperSpec {
                name: f.name.to_string(),
                ty: if f.flag { HyperTy::Flag } else { HyperTy::Real },
                default: f.default,
                constraint: if f.positive {
                    Constraint::Positive
                } else {
                    Constraint::None
                },
                doc: f.doc.to_string(),
            }),
    );
    out
}
