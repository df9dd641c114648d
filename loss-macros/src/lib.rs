//! The `#[loss]` compiler.
//!
//! A loss written as a few lines of math is parsed (`ast`), lowered to an indexed
//! expression DAG (`lower`, `ir`) while its names and scopes are checked (`check`),
//! rewritten into numerically stable forms (`simplify`), differentiated in reverse mode
//! (`diff`) and emitted as fused forward and backward loop nests (`emit`).
//! `expand` reads top to bottom like that pipeline.

mod ast;
mod attr;
mod check;
mod ctxt;
mod diagnostics;
mod diff;
mod emit;
mod expand;
mod fallback;
mod family;
mod ir;
mod lower;
mod simplify;

use proc_macro::TokenStream;

/// Compiles a loss written as math into a dfdx loss with a derived gradient.
///
/// See the `losskit` crate documentation for the language.
#[proc_macro_attribute]
pub fn loss(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(args.into(), item.into()).into()
}
