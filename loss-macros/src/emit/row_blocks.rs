//! Whether a pairs loss splits over blocks of anchors: the analysis behind the runtime's
//! `RowBlocks`, which lets the pairs family compute the similarity matrix a block of rows
//! at a time instead of whole (see `loss_runtime::core::similarity::blocks`).
//!
//! A loss splits when its value is `Σ_i l_i` or `(1/N) Σ_i l_i` over the anchors `i` and
//! each `l_i` reads only row `i` of the similarity matrix: the root is a sum or mean over
//! `samples` without a filter, nothing else reduces over `samples`, and nothing reads the
//! batch size `N`. Row `i`'s per-anchor values (its slots) are then computed from row `i`
//! alone, and the derived gradient of `l_i` touches only row `i`.

use proc_macro2::TokenStream;
use quote::quote;

use crate::family::FamilyKind;
use crate::ir::{Domain, Op, Program, Red, SlotKind};

/// `Some(Red::Sum | Red::Mean)`, the root reduction, when the loss splits by anchors.
pub fn split_by_anchors(prog: &Program, family: FamilyKind, declared: bool) -> Option<Red> {
    if family != FamilyKind::Pairs || declared {
        return None;
    }
    let over_samples = |v: crate::ir::VarId| prog.vars[v.0 as usize].domain == Domain::Samples;
    // a `Scalar` loss's value is a `let` of its last expression, here the outer reduction
    let mut outer = vec![prog.root()];
    if let SlotKind::Let(n) = prog.slot(prog.root()).kind {
        if let Op::Slot(s) = prog.graph.op(n) {
            outer.push(*s);
        }
    }
    let root = prog.slot(*outer.last().expect("the root"));
    let SlotKind::Reduce {
        op: op @ (Red::Sum | Red::Mean),
        var,
        filter: None,
        ..
    } = &root.kind
    else {
        return None;
    };
    if !over_samples(*var) || !root.free.is_empty() || !root.params.is_empty() {
        return None;
    }
    let inner_over_samples = (0..prog.slots.len())
        .map(|k| crate::ir::SlotId(k as u16))
        .filter(|s| !outer.contains(s))
        .any(|s| match &prog.slot(s).kind {
            SlotKind::Reduce { var, .. } => over_samples(*var),
            SlotKind::Let(_) => false,
        });
    if inner_over_samples {
        return None;
    }
    let roots: Vec<_> = prog.slots.iter().flat_map(|s| s.roots()).collect();
    let reads_batch_size = prog
        .graph
        .reachable(&roots)
        .into_iter()
        .any(|n| matches!(prog.graph.op(n), Op::Size(Domain::Samples)));
    (!reads_batch_size).then_some(*op)
}

/// The `ROW_BLOCKS` constant of the generated `Kernel` impl (nothing when the loss does
/// not split: the trait's default says so).
pub fn constant(
    prog: &Program,
    family: FamilyKind,
    declared: bool,
    rt: &TokenStream,
) -> TokenStream {
    match split_by_anchors(prog, family, declared) {
        Some(Red::Sum) => quote!(const ROW_BLOCKS: #rt::RowBlocks = #rt::RowBlocks::Sum;),
        Some(Red::Mean) => quote!(const ROW_BLOCKS: #rt::RowBlocks = #rt::RowBlocks::Mean;),
        _ => TokenStream::new(),
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;
    use crate::lower::tests::lower_src;

    fn split(item: syn::ItemFn) -> Option<Red> {
        let prog = lower_src(quote!(pairs), item).expect("lowers");
        split_by_anchors(&prog, FamilyKind::Pairs, false)
    }

    #[test]
    fn a_per_anchor_loss_over_its_own_row_splits_as_a_mean() {
        let red = split(syn::parse_quote! {
            fn f(s: Similarity, y: Labels) -> PerAnchor {
                let hardest = max(neg(i), |j| s[i][j]);
                sum(pos(i).filter(|j| s[i][j] < hardest), |j| exp(-s[i][j])) + len(refs)
            }
        });
        assert_eq!(red, Some(Red::Mean));
        let red = split(syn::parse_quote! {
            fn f(s: Similarity, y: Labels) -> Scalar {
                sum(samples, |a| max(others(a), |j| s[a][j]))
            }
        });
        assert_eq!(red, Some(Red::Sum));
    }

    #[test]
    fn a_loss_that_reads_other_anchors_or_the_batch_size_does_not_split() {
        // a statistic over every anchor
        assert_eq!(
            split(syn::parse_quote! {
                fn f(s: Similarity, y: Labels) -> PerAnchor {
                    max(refs, |j| s[i][j]) - mean(samples, |a| max(refs, |j| s[a][j]))
                }
            }),
            None
        );
        // the batch size inside an anchor's term
        assert_eq!(
            split(syn::parse_quote! {
                fn f(s: Similarity, y: Labels) -> PerAnchor { max(refs, |j| s[i][j]) * len(samples) }
            }),
            None
        );
        // a filtered sum over the anchors
        assert_eq!(
            split(syn::parse_quote! {
                fn f(s: Similarity, y: Labels) -> Scalar {
                    sum(samples.filter(|a| min(refs, |j| s[a][j]) > 0.5), |a| max(refs, |j| s[a][j]))
                }
            }),
            None
        );
        // not a sum over the anchors at all
        assert_eq!(
            split(syn::parse_quote! {
                fn f(s: Similarity, y: Labels) -> Scalar {
                    max(samples, |a| min(refs, |j| s[a][j]))
                }
            }),
            None
        );
    }

    #[test]
    fn only_the_pairs_family_without_declared_inputs_splits() {
        let prog = lower_src(
            quote!(pairs),
            syn::parse_quote! {
                fn f(s: Similarity, y: Labels) -> PerAnchor { max(refs, |j| s[i][j]) }
            },
        )
        .expect("lowers");
        assert_eq!(
            split_by_anchors(&prog, FamilyKind::Pairs, false),
            Some(Red::Mean)
        );
        assert_eq!(split_by_anchors(&prog, FamilyKind::Pairs, true), None);
        assert_eq!(split_by_anchors(&prog, FamilyKind::Scores, false), None);
    }
}
