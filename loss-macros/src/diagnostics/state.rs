//! The messages of per-sample state: `State<..>` parameters, `#[state(..)]` and `update(..)`.

use quote::ToTokens;
use syn::Error;

use super::spanned;

pub fn state_axes(tokens: &dyn ToTokens, samples: &str) -> Error {
    spanned(
        tokens,
        format!("a state holds one value per dataset sample; help: write `State<{samples}>`"),
    )
}

pub fn state_attr_without_state(tokens: &dyn ToTokens) -> Error {
    spanned(
        tokens,
        "`#[state(..)]` belongs on a state parameter; help: write `#[state(init = 0.0)] u: State<samples>`".into(),
    )
}

pub fn update_target(tokens: &dyn ToTokens) -> Error {
    spanned(
        tokens,
        "`update` writes one state value of the current sample; help: write `update(u[i], new_value)` with `u: State<samples>`".into(),
    )
}

pub fn update_twice(tokens: &dyn ToTokens, name: &str) -> Error {
    spanned(
        tokens,
        format!("state `{name}` is updated twice; help: compute the new value once, `let v = update({name}[i], ..);`, and use `v`"),
    )
}

pub fn update_in_branch(tokens: &dyn ToTokens) -> Error {
    spanned(tokens, "`update(..)` cannot stand in a branch of `if` or `select`, whose branches are both computed; help: select the new value instead: `update(u[i], select(c, a, u[i]))`".into())
}

pub fn update_depends_on(tokens: &dyn ToTokens, index: &str, others: &str) -> Error {
    spanned(
        tokens,
        format!("the new value of a state is one number per sample `{index}`, but this one depends on {others}; help: reduce over them first, e.g. `mean(refs, |j| ..)`"),
    )
}
