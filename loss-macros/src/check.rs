//! Checks on what a definition means (beyond names and scopes, which lowering checks
//! as it resolves them): non-differentiable operations only under `detach`.

use quote::ToTokens;

use crate::ctxt::Ctxt;
use crate::diagnostics as diag;

/// Reports `what` (an operation without a derivative) used outside `detach(..)`.
pub fn non_differentiable(cx: &Ctxt, tokens: &dyn ToTokens, what: &str) {
    cx.push(diag::non_differentiable(tokens, what));
}
