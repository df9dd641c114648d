//! The public type: a struct named after the fn, hyper-parameters as fields, `Default`
//! from the declared defaults, builder setters, validation, and the `Kernel` impl.

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use super::HyperSpec;
use crate::ast::{Constraint, HyperTy, LossDef};
use crate::family::FamilyKind;

#[allow(clippy::too_many_arguments)] // reason: one call site; the parts are independent
pub fn emit(
    def: &LossDef,
    family: FamilyKind,
    ident: &Ident,
    hypers: &[HyperSpec],
    definition: &str,
    gradient: &str,
    rt: &TokenStream,
    forward: TokenStream,
    backward: TokenStream,
    state: &super::state::StateApi,
) -> TokenStream {
    let super::state::StateApi {
        field: state_field,
        default: state_default,
        methods: state_methods,
        ..
    } = state;
    let vis = &def.item.vis;
    let fn_name = def.item.sig.ident.to_string();
    let docs = &def.docs;
    let doc_tail = generated_docs(hypers, definition, gradient);
    let fields = hypers.iter().map(|h| {
        let name = format_ident!("{}", h.name);
        let doc = field_doc(h);
        match h.ty {
            HyperTy::Real => quote!(#[doc = #doc] pub #name: f64,),
            HyperTy::Flag => quote!(#[doc = #doc] pub #name: bool,),
        }
    });
    let defaults = hypers.iter().map(|h| {
        let name = format_ident!("{}", h.name);
        let v = h.default;
        match h.ty {
            HyperTy::Real => quote!(#name: #v,),
            HyperTy::Flag => {
                let b = v != 0.0;
                quote!(#name: #b,)
            }
        }
    });
    let setters = hypers.iter().map(|h| {
        let name = format_ident!("{}", h.name);
        let setter = format_ident!("with_{}", h.name);
        let doc = format!("Sets `{}` (see the field).", h.name);
        let ty = match h.ty {
            HyperTy::Real => quote!(f64),
            HyperTy::Flag => quote!(bool),
        };
        quote! {
            #[doc = #doc]
            #[must_use]
            pub fn #setter(mut self, #name: #ty) -> Self {
                self.#name = #name;
                self
            }
        }
    });
    let checks = hypers.iter().filter(|h| h.ty == HyperTy::Real).map(|h| {
        let name = format_ident!("{}", h.name);
        let name_str = &h.name;
        let cond = match h.constraint {
            Constraint::None => quote!(true),
            Constraint::Positive => quote!(self.#name > 0.0),
            Constraint::NonNegative => quote!(self.#name >= 0.0),
            Constraint::Range(lo, hi) => quote!(self.#name >= #lo && self.#name <= #hi),
        };
        let constraint = match h.constraint {
            Constraint::None => "finite".to_string(),
            c => format!("finite and {}", c.describe()),
        };
        quote! {
            if !(self.#name.is_finite() && #cond) {
                return ::core::result::Result::Err(#rt::LossError::InvalidHyper {
                    loss: #fn_name,
                    name: #name_str,
                    value: self.#name,
                    constraint: #constraint,
                });
            }
        }
    });
    let getters = hypers.iter().map(|h| {
        let name = format_ident!("{}", h.name);
        let name_str = &h.name;
        match h.ty {
            HyperTy::Real => quote!(#name_str => ::core::option::Option::Some(self.#name),),
            HyperTy::Flag => quote!(#name_str => ::core::option::Option::Some(if self.#name { 1.0 } else { 0.0 }),),
        }
    });
    let setters_dyn = hypers.iter().map(|h| {
        let name = format_ident!("{}", h.name);
        let name_str = &h.name;
        match h.ty {
            HyperTy::Real => quote!(#name_str => self.#name = value,),
            HyperTy::Flag => quote!(#name_str => {
                if value != 0.0 && value != 1.0 {
                    return ::core::result::Result::Err(#rt::LossError::InvalidHyper {
                        loss: #fn_name, name: #name_str, value, constraint: "0 or 1 (a switch)",
                    });
                }
                self.#name = value != 0.0
            }),
        }
    });
    let infos = hypers.iter().map(|h| {
        let name = &h.name;
        let kind = match h.ty {
            HyperTy::Real => quote!(#rt::HyperKind::Real),
            HyperTy::Flag => quote!(#rt::HyperKind::Flag),
        };
        let default = h.default;
        let constraint = h.constraint.describe();
        let doc = h.doc.lines().next().unwrap_or("").to_string();
        quote!(#rt::HyperInfo { name: #name, kind: #kind, default: #default, constraint: #constraint, doc: #doc },)
    });
    let declared_infos: Vec<TokenStream> = def
        .declared
        .iter()
        .map(|d| declared_info(family, d, rt))
        .collect();
    let family_tokens = match family {
        FamilyKind::Binary => quote!(#rt::Family::Binary),
        FamilyKind::Logits => quote!(#rt::Family::Logits),
        FamilyKind::Pairs => quote!(#rt::Family::Pairs),
        FamilyKind::Scores => quote!(#rt::Family::Scores),
        FamilyKind::Dense => quote!(#rt::Family::Dense),
    };
    let paper = &def.attr.paper;
    let summary = summary(docs);
    // the pairs family compares embeddings with a metric chosen per loss value
    let pairs = family == FamilyKind::Pairs;
    let (metric_field, metric_default, metric_setter, metric_kernel) = if pairs {
        (
            quote! {
                /// How embeddings are compared when the loss is given embeddings rather than
                /// a similarity matrix (see `Default` for this loss's choice).
                pub metric: #rt::Metric,
            },
            {
                let m = def.attr.metric.clone().unwrap_or_else(|| {
                    proc_macro2::Ident::new("Cosine", proc_macro2::Span::call_site())
                });
                quote!(metric: #rt::Metric::#m,)
            },
            quote! {
                /// Sets `metric` (see the field).
                #[must_use]
                pub fn with_metric(mut self, metric: #rt::Metric) -> Self {
                    self.metric = metric;
                    self
                }
            },
            quote! {
                fn metric(&self) -> #rt::Metric {
                    self.metric
                }
            },
        )
    } else {
        Default::default()
    };
    let default_impl = quote! {
        impl ::core::default::Default for #ident {
            fn default() -> Self { Self { #(#defaults)* #metric_default #state_default } }
        }
    };
    quote! {
        #(#[doc = #docs])*
        #[doc = #doc_tail]
        #[derive(Clone, Debug, PartialEq)]
        #vis struct #ident {
            #(#fields)*
            #metric_field
            #state_field
        }

        #default_impl

        impl #ident {
            /// The name this loss is listed under (`losskit list`).
            pub const NAME: &'static str = #fn_name;

            /// The loss with its declared defaults.
            pub fn new() -> Self {
                <Self as ::core::default::Default>::default()
            }

            #(#setters)*
            #metric_setter
            #state_methods
        }

        // the definition's literals are the user's math (π written out, say): not ours to lint
        #[allow(clippy::approx_constant)]
        impl #rt::Kernel for #ident {
            #metric_kernel

            const INFO: &'static #rt::LossInfo = &#rt::LossInfo {
                name: #fn_name,
                family: #family_tokens,
                paper: #paper,
                summary: #summary,
                hypers: &[#(#infos)*],
                definition: #definition,
                gradient: #gradient,
                declared: &[#(#declared_infos),*],
            };

            fn validate(&self) -> ::core::result::Result<(), #rt::LossError> {
                #(#checks)*
                ::core::result::Result::Ok(())
            }

            #forward

            #backward

            fn hyper(&self, name: &str) -> ::core::option::Option<f64> {
                match name {
                    #(#getters)*
                    _ => ::core::option::Option::None,
                }
            }

            fn set_hyper(&mut self, name: &str, value: f64) -> ::core::result::Result<(), #rt::LossError> {
                match name {
                    #(#setters_dyn)*
                    _ => return ::core::result::Result::Err(#rt::LossError::UnknownHyper {
                        loss: #fn_name,
                        name: ::std::string::String::from(name),
                    }),
                }
                #[allow(unreachable_code)]
                ::core::result::Result::Ok(())
            }
        }
    }
}

fn field_doc(h: &HyperSpec) -> String {
    let mut doc = if h.doc.is_empty() {
        format!("Hyper-parameter `{}`.", h.name)
    } else if h.doc.ends_with(['.', '!', '?']) {
        h.doc.clone()
    } else {
        format!("{}.", h.doc)
    };
    match h.ty {
        HyperTy::Real => {
            doc += &format!(" Default: `{:?}`.", h.default);
            if h.constraint != Constraint::None {
                doc += &format!(" Must be {}.", h.constraint.describe());
            }
        }
        HyperTy::Flag => doc += &format!(" Default: `{}`.", h.default != 0.0),
    }
    doc
}

/// The first paragraph of the doc comment, joined into one line.
fn summary(docs: &[String]) -> String {
    docs.iter()
        .map(|l| l.trim())
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn generated_docs(hypers: &[HyperSpec], definition: &str, gradient: &str) -> String {
    let mut out = String::from("\n\n# Hyper-parameters\n\n");
    if hypers.is_empty() {
        out += "None.\n";
    }
    for h in hypers {
        out += &format!("- `{}`: {}\n", h.name, field_doc(h));
    }
    out += "\n# Definition (as compiled)\n\n```text\n";
    out += definition;
    out += "```\n\n# Derived gradient\n\nGenerated by the `#[loss]` compiler (reverse mode; `ḡ` is the adjoint flowing into one element, `ā(v)` the adjoint of a materialised value `v`):\n\n```text\n";
    out += gradient;
    out += "```\n";
    out
}

/// The `DeclaredInfo` of a declared input.
fn declared_info(
    family: FamilyKind,
    d: &crate::family::DeclaredParam,
    rt: &TokenStream,
) -> TokenStream {
    use crate::family::DeclKind;
    use crate::ir::Domain;
    let set = |dom: Domain| {
        let name = family.set_name(dom);
        let axis = match dom {
            Domain::Samples => quote!(Samples),
            Domain::Classes => quote!(Classes),
            Domain::Refs => quote!(Refs),
        };
        quote!(#rt::SetRef { name: #name, axis: #rt::Axis::#axis })
    };
    let name = d.name.to_string();
    let symbols: Vec<&str> = d.axes.iter().map(|a| family.size_symbol(*a)).collect();
    let shape = format!("[{}]", symbols.join(", "));
    let role = match d.kind {
        DeclKind::Given => quote!(Constant),
        DeclKind::Traced => quote!(Differentiable),
        DeclKind::Mask => quote!(Mask),
        DeclKind::Index => quote!(Labels),
        DeclKind::State => quote!(State),
    };
    let axes: Vec<TokenStream> = d.axes.iter().map(|a| set(*a)).collect();
    let indexes = match d.indexes {
        Some(dom) => {
            let s = set(dom);
            quote!(::core::option::Option::Some(#s))
        }
        None => quote!(::core::option::Option::None),
    };
    quote!(#rt::DeclaredInfo {
        name: #name,
        shape: #shape,
        role: #rt::DeclaredRole::#role,
        axes: &[#(#axes),*],
        indexes: #indexes,
    })
}
