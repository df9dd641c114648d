//! Reductions in lanes: a reduction's loop written so that the compiler turns it into
//! vector instructions.
//!
//! A loop that adds into one accumulator cannot be vectorised without reordering the
//! additions, which the compiler does not do for floating point; a branch per element
//! (a filter's `continue`, the online logsumexp's rescaling) and a bounds check per load
//! stop it too. So a reduction whose body is plain arithmetic on the current row is
//! emitted as:
//!
//! - one slice per input row the body reads (`z[i][k]` over `k` reads the row `z[i]`),
//!   cut once before the loop, then one sub-slice of [`LANES`] elements per chunk, so the
//!   loads in the loop need no bounds checks;
//! - [`LANES`] accumulators, element `k` of a chunk going to accumulator `k`, combined in
//!   a fixed order at the end (so the result does not depend on the machine or the
//!   number of threads, only the rounding differs from a one-accumulator loop);
//! - a filter as a predicate (`acc += if keep { x } else { 0 }`) rather than a branch,
//!   the body being computed for every element;
//! - a logsumexp in two passes, the maximum then the sum of `e^{x − max}`, instead of the
//!   online form, whose rescaling is a branch.
//!
//! The elements after the last whole chunk run one by one, into the first accumulator.
//! Reductions that read a buffer indexed by their own variable, gather through a label,
//! hold a `require(..)` or have inline children keep the plain loop.

use std::collections::HashSet;

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use super::{dim_ident, n_ident, row_major, v_ident, KernelCx};
use crate::diff::{Leaf, SlotGrad};
use crate::ir::{InputId, Ix, NodeId, Op, Red, SlotId, SlotKind, VarId};

/// Elements per chunk, and accumulators per reduction.
const LANES: usize = 8;

/// How a lane loop reads its rows: by chunk (`__l`-th element of the current chunk) or by
/// position in the row (the elements after the last chunk).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum LaneRead {
    Chunk,
    Row,
}

/// The rows a lane loop reads: real input loads whose last index is the reduction's
/// variable, and label inputs indexed by it.
struct Rows {
    loads: Vec<(NodeId, InputId, Vec<Ix>)>,
    labels: Vec<InputId>,
}

fn row_ident(n: NodeId) -> Ident {
    format_ident!("__rn{}", n.0)
}
fn chunk_ident(n: NodeId) -> Ident {
    format_ident!("__kn{}", n.0)
}
fn label_row_ident(l: InputId) -> Ident {
    format_ident!("__rl{}", l.0)
}
fn label_chunk_ident(l: InputId) -> Ident {
    format_ident!("__kl{}", l.0)
}

impl KernelCx<'_> {
    /// While emitting a lane loop: how an input load at `ixs` reads, if it reads the
    /// loop's row.
    pub(super) fn lane_load(&self, n: NodeId, ixs: &[Ix]) -> Option<TokenStream> {
        let (var, read) = self.lane.get()?;
        if ixs.last() != Some(&Ix::Var(var)) {
            return None;
        }
        Some(match read {
            LaneRead::Chunk => {
                let k = chunk_ident(n);
                quote!(#k[__l])
            }
            LaneRead::Row => {
                let (r, vi) = (row_ident(n), v_ident(var));
                quote!(#r[#vi])
            }
        })
    }

    /// While emitting a lane loop: how the label `l[var]` reads.
    pub(super) fn lane_label(&self, l: InputId, v: VarId) -> Option<TokenStream> {
        let (var, read) = self.lane.get()?;
        if v != var {
            return None;
        }
        Some(match read {
            LaneRead::Chunk => {
                let k = label_chunk_ident(l);
                quote!(#k[__l])
            }
            LaneRead::Row => {
                let (r, vi) = (label_row_ident(l), v_ident(var));
                quote!(#r[#vi])
            }
        })
    }

    /// The rows the nodes under `roots` read along `var`, or `None` when some node
    /// depending on `var` cannot be read from a row (see the module docs).
    fn lane_rows(&self, var: VarId, roots: &[NodeId]) -> Option<Rows> {
        let domain = self.prog.vars[var.0 as usize].domain;
        let mentions = |ix: &Ix| matches!(ix, Ix::Var(v) | Ix::Label(_, v) if *v == var);
        let label_row = |l: InputId| self.inputs[l.0 as usize].axes == [domain];
        let mut rows = Rows {
            loads: Vec::new(),
            labels: Vec::new(),
        };
        for n in self.prog.graph.reachable(roots) {
            match self.prog.graph.op(n) {
                Op::Require { .. } => return None,
                Op::Input(id, ixs) if ixs.iter().any(mentions) => {
                    let (last, prefix) = ixs.split_last()?;
                    let axes = &self.inputs[id.0 as usize].axes;
                    if *last != Ix::Var(var)
                        || prefix.iter().any(mentions)
                        || axes.last() != Some(&domain)
                        || axes.len() != ixs.len()
                    {
                        return None;
                    }
                    rows.loads.push((n, *id, ixs.clone()));
                }
                Op::IndexCompare(_, a, b) => {
                    for ix in [a, b] {
                        if let Ix::Label(l, v) = ix {
                            if *v == var {
                                if !label_row(*l) {
                                    return None;
                                }
                                if !rows.labels.contains(l) {
                                    rows.labels.push(*l);
                                }
                            }
                        }
                    }
                }
                Op::Slot(s) | Op::SlotCount(s) if self.prog.slot(*s).free.contains(&var) => {
                    return None
                }
                _ => {}
            }
        }
        Some(rows)
    }

    /// `let`s cutting each row out of its input, before the loop.
    fn row_slices(&self, var: VarId, rows: &Rows) -> TokenStream {
        let d = self.dim(var);
        let mut out = TokenStream::new();
        for (n, id, ixs) in &rows.loads {
            let (r, input) = (row_ident(*n), format_ident!("__in{}", id.0));
            let axes = &self.inputs[id.0 as usize].axes;
            let prefix = &ixs[..ixs.len() - 1];
            let start = if prefix.is_empty() {
                quote!(0usize)
            } else {
                let at = row_major(
                    prefix
                        .iter()
                        .zip(axes)
                        .map(|(ix, a)| (self.ix(ix), dim_ident(*a)))
                        .collect(),
                );
                quote!((#at) * #d)
            };
            out.extend(quote!(let #r: &[R] = &#input[#start..][..#d];));
        }
        for l in &rows.labels {
            let (r, input) = (label_row_ident(*l), format_ident!("__in{}", l.0));
            out.extend(quote!(let #r: &[usize] = &#input[..#d];));
        }
        out
    }

    /// `let`s cutting the current chunk out of each row, inside the chunk loop.
    fn chunk_slices(rows: &Rows) -> TokenStream {
        let lanes = LANES;
        let mut out = TokenStream::new();
        for (n, _, _) in &rows.loads {
            let (r, k) = (row_ident(*n), chunk_ident(*n));
            out.extend(quote!(let #k: &[R] = &#r[__c * #lanes..][..#lanes];));
        }
        for l in &rows.labels {
            let (r, k) = (label_row_ident(*l), label_chunk_ident(*l));
            out.extend(quote!(let #k: &[usize] = &#r[__c * #lanes..][..#lanes];));
        }
        out
    }

    /// One pass over the row in lanes: the chunk loop then the remaining elements, each
    /// element binding `__keep` (the filter) and running `step` on the body's value
    /// (named `x`) and the lane index (`lane`).
    fn lane_pass(
        &self,
        var: VarId,
        rows: &Rows,
        filter: Option<NodeId>,
        body: NodeId,
        emitted: &HashSet<NodeId>,
        step: impl Fn(&Ident, TokenStream) -> TokenStream,
    ) -> TokenStream {
        let lanes = LANES;
        let (vi, d) = (v_ident(var), self.dim(var));
        let x = n_ident(body);
        let element = |read: LaneRead, lane: TokenStream| {
            self.lane.set(Some((var, read)));
            let mut seen = emitted.clone();
            let keep = match filter {
                Some(f) => {
                    let nodes = self.emit_nodes(&[f], &mut seen, |_| true);
                    let fi = n_ident(f);
                    quote!(#nodes let __keep: bool = #fi;)
                }
                None => quote!(let __keep: bool = true;),
            };
            let nodes = self.emit_nodes(&[body], &mut seen, |_| true);
            self.lane.set(None);
            let step = step(&x, lane);
            quote!(#keep #nodes #step)
        };
        let chunked = element(LaneRead::Chunk, quote!(__l));
        let rest = element(LaneRead::Row, quote!(0usize));
        let chunks = Self::chunk_slices(rows);
        quote! {
            for __c in 0..#d / #lanes {
                #chunks
                for __l in 0..#lanes {
                    let #vi: usize = __c * #lanes + __l;
                    #chunked
                }
            }
            for #vi in #d / #lanes * #lanes..#d {
                #rest
            }
        }
    }

    /// Statements computing reduction slot `s` in lanes, its value and its count; `None`
    /// when it needs the plain loop.
    pub(super) fn lane_value(&self, s: SlotId) -> Option<(TokenStream, TokenStream, TokenStream)> {
        let rt = &self.rt;
        let slot = self.prog.slot(s);
        let SlotKind::Reduce {
            op,
            var,
            filter,
            body,
        } = &slot.kind
        else {
            return None;
        };
        let (op, var, filter, body) = (*op, *var, *filter, *body);
        if !matches!(
            op,
            Red::Sum | Red::Mean | Red::Max | Red::Min | Red::LogSumExp | Red::LogMeanExp
        ) || !slot.params.is_empty()
            || !self.children(s).is_empty()
        {
            return None;
        }
        let roots: Vec<NodeId> = filter.iter().copied().chain([body]).collect();
        let rows = self.lane_rows(var, &roots)?;
        let mut emitted = HashSet::new();
        let hoisted = self.emit_nodes(&roots, &mut emitted, |n| !self.free(n).contains(&var));
        let slices = self.row_slices(var, &rows);
        let lanes = LANES;
        let d = self.dim(var);
        let zero = quote!(<R as #rt::Real>::zero());
        let inf = quote!(<R as #rt::Real>::infinity());
        // the count of kept elements, when the value needs it
        let counted = filter.is_some();
        let count_init = if counted {
            quote!(let mut __counts = [0usize; #lanes];)
        } else {
            TokenStream::new()
        };
        let count = if counted {
            quote!(__counts.iter().sum::<usize>())
        } else {
            quote!(#d)
        };
        let count_at = move |lane: &TokenStream| {
            if counted {
                quote!(__counts[#lane] += __keep as usize;)
            } else {
                TokenStream::new()
            }
        };
        let sum_step = |x: &Ident, lane: TokenStream| {
            let add = if counted {
                quote!(if __keep { #x } else { #zero })
            } else {
                quote!(#x)
            };
            let counting = count_at(&lane);
            quote!(__lanes[#lane] += #add; #counting)
        };
        let extreme_step = |cmp: TokenStream| {
            move |x: &Ident, lane: TokenStream| {
                let counting = count_at(&lane);
                quote! {
                    if __keep && #x #cmp __lanes[#lane] { __lanes[#lane] = #x; }
                    #counting
                }
            }
        };
        let (stmts, value) = match op {
            Red::Sum | Red::Mean => {
                let pass = self.lane_pass(var, &rows, filter, body, &emitted, sum_step);
                let value = if op == Red::Mean {
                    quote!(if __count > 0 { __acc / <R as #rt::Real>::from_usize(__count) } else { #zero })
                } else {
                    quote!(__acc)
                };
                (
                    quote! {
                        let mut __lanes: [R; #lanes] = [#zero; #lanes];
                        #count_init
                        #pass
                        let mut __acc: R = #zero;
                        for __l in 0..#lanes { __acc += __lanes[__l]; }
                    },
                    value,
                )
            }
            Red::Max | Red::Min => {
                let (init, cmp) = if op == Red::Max {
                    (quote!(-#inf), quote!(>))
                } else {
                    (quote!(#inf), quote!(<))
                };
                let pass = self.lane_pass(
                    var,
                    &rows,
                    filter,
                    body,
                    &emitted,
                    extreme_step(cmp.clone()),
                );
                (
                    quote! {
                        let mut __lanes: [R; #lanes] = [#init; #lanes];
                        #count_init
                        #pass
                        let mut __acc: R = #init;
                        for __l in 0..#lanes { if __lanes[__l] #cmp __acc { __acc = __lanes[__l]; } }
                    },
                    quote!(__acc),
                )
            }
            _ => {
                // logsumexp: the maximum, then Σ e^{x − max}
                let first =
                    self.lane_pass(var, &rows, filter, body, &emitted, extreme_step(quote!(>)));
                let exp_step = |x: &Ident, lane: TokenStream| {
                    let e = quote!(<R as #rt::Real>::exp(#x - __max));
                    let add = if counted {
                        quote!(if __keep { #e } else { #zero })
                    } else {
                        e
                    };
                    quote!(__sums[#lane] += #add;)
                };
                let second = self.lane_pass(var, &rows, filter, body, &emitted, exp_step);
                let lse = quote! {
                    if __max == -#inf || __max == #inf {
                        __max
                    } else {
                        let mut __sums: [R; #lanes] = [#zero; #lanes];
                        #second
                        let mut __sum: R = #zero;
                        for __l in 0..#lanes { __sum += __sums[__l]; }
                        __max + <R as #rt::Real>::ln(__sum)
                    }
                };
                let value = if op == Red::LogMeanExp {
                    quote!(if __count > 0 { __lse - <R as #rt::Real>::ln(<R as #rt::Real>::from_usize(__count)) } else { -#inf })
                } else {
                    quote!(__lse)
                };
                (
                    quote! {
                        let mut __lanes: [R; #lanes] = [-#inf; #lanes];
                        #count_init
                        #first
                        let mut __max: R = -#inf;
                        for __l in 0..#lanes { if __lanes[__l] > __max { __max = __lanes[__l]; } }
                        let __lse: R = #lse;
                    },
                    value,
                )
            }
        };
        let stmts = quote! {
            #hoisted
            #slices
            #stmts
            #[allow(unused_variables)]
            let __count: usize = #count;
        };
        Some((stmts, value, quote!(<R as #rt::Real>::from_usize(__count))))
    }
}

/// A gradient row the backward of a reduction in lanes adds into: the buffer (`__grow`,
/// the current row of a row-parallel gradient, or `__gK`) and the start of the row.
struct GradRow {
    base: TokenStream,
    start: TokenStream,
}

fn grad_row_ident(k: usize) -> Ident {
    format_ident!("__gw{}", k)
}
fn grad_chunk_ident(k: usize) -> Ident {
    format_ident!("__gc{}", k)
}

impl KernelCx<'_> {
    /// The backward of one element of reduction slot `sg` (its indices bound, `__abar`
    /// its adjoint) in lanes, when every contribution adds into an input's gradient at
    /// the reduction's own position (`∂L/∂z[i][k] += …` over `k`): the loop over the
    /// elements then writes a row, chunk by chunk, the filter being a predicate (adding
    /// `0` where it fails). `None` when the plain loop is needed.
    pub(super) fn lane_backward(&self, sg: &SlotGrad) -> Option<TokenStream> {
        let rt = &self.rt;
        let slot = self.prog.slot(sg.slot);
        let SlotKind::Reduce {
            op,
            var,
            filter,
            body,
        } = &slot.kind
        else {
            return None;
        };
        let (var, filter, body) = (*var, *filter, *body);
        if !matches!(op, Red::Sum | Red::Mean | Red::LogSumExp | Red::LogMeanExp)
            || !self.children(sg.slot).is_empty()
            || sg.contributions.is_empty()
        {
            return None;
        }
        let domain = self.prog.vars[var.0 as usize].domain;
        let d = self.dim(var);
        let mentions = |ix: &Ix| matches!(ix, Ix::Var(v) | Ix::Label(_, v) if *v == var);
        // the gradient rows written, and which one each contribution goes to
        let mut targets: Vec<(InputId, Vec<Ix>)> = Vec::new();
        let mut rows_of: Vec<usize> = Vec::new();
        for (leaf, _) in &sg.contributions {
            let Leaf::Input(id, ixs) = leaf else {
                return None;
            };
            let in_row = self.row_mode.get() == Some(*id);
            let (ixs, axes) = if in_row {
                (&ixs[1..], &self.inputs[id.0 as usize].axes[1..])
            } else {
                (&ixs[..], &self.inputs[id.0 as usize].axes[..])
            };
            let (last, prefix) = ixs.split_last()?;
            if *last != Ix::Var(var)
                || prefix.iter().any(mentions)
                || axes.last() != Some(&domain)
                || axes.len() != ixs.len()
            {
                return None;
            }
            let key = (*id, prefix.to_vec());
            let k = match targets.iter().position(|t| *t == key) {
                Some(k) => k,
                None => {
                    targets.push(key);
                    targets.len() - 1
                }
            };
            rows_of.push(k);
        }
        let grad_rows: Vec<GradRow> = targets
            .iter()
            .map(|(id, prefix)| {
                let in_row = self.row_mode.get() == Some(*id);
                let axes = &self.inputs[id.0 as usize].axes[usize::from(in_row)..];
                let base = if in_row {
                    quote!(__grow)
                } else {
                    let g = format_ident!("__g{}", id.0);
                    quote!(#g)
                };
                let start = if prefix.is_empty() {
                    quote!(0usize)
                } else {
                    let at = row_major(
                        prefix
                            .iter()
                            .zip(axes)
                            .map(|(ix, a)| (self.ix(ix), dim_ident(*a)))
                            .collect(),
                    );
                    quote!((#at) * #d)
                };
                GradRow { base, start }
            })
            .collect();
        let roots: Vec<NodeId> = sg.contributions.iter().map(|(_, c)| *c).collect();
        let mut all_roots = roots.clone();
        all_roots.push(sg.weight);
        all_roots.extend(filter);
        all_roots.push(body);
        let rows = self.lane_rows(var, &all_roots)?;
        let mut emitted = HashSet::new();
        let hoisted = self.emit_nodes(&all_roots, &mut emitted, |n| {
            !self.free(n).contains(&var) && !self.uses_adjoint(n)
        });
        let slices = self.row_slices(var, &rows);
        let weight = n_ident(sg.weight);
        let zero = quote!(<R as #rt::Real>::zero());
        // one element: the filter, the adjoint, the contributions
        let element = |read: LaneRead| {
            self.lane.set(Some((var, read)));
            let mut seen = emitted.clone();
            let keep = match (filter, read) {
                (Some(f), LaneRead::Chunk) => {
                    let nodes = self.emit_nodes(&[f], &mut seen, |_| true);
                    let fi = n_ident(f);
                    quote!(#nodes let __keep: bool = #fi;)
                }
                (Some(f), LaneRead::Row) => self.skip_unless(Some(f), &mut seen),
                (None, _) => TokenStream::new(),
            };
            let w = self.emit_nodes(&[sg.weight], &mut seen, |_| true);
            let nodes = self.emit_nodes(&roots, &mut seen, |_| true);
            self.lane.set(None);
            let adds: TokenStream = sg
                .contributions
                .iter()
                .zip(&rows_of)
                .map(|((_, c), &k)| {
                    let c = n_ident(*c);
                    match read {
                        LaneRead::Chunk => {
                            let g = grad_chunk_ident(k);
                            if filter.is_some() {
                                quote!(#g[__l] += if __keep { #c } else { #zero };)
                            } else {
                                quote!(#g[__l] += #c;)
                            }
                        }
                        LaneRead::Row => {
                            let (g, vi) = (grad_row_ident(k), v_ident(var));
                            quote!(#g[#vi] += #c;)
                        }
                    }
                })
                .collect();
            quote! {
                #keep
                #w
                let __gbar = __abar * #weight;
                #nodes
                #adds
            }
        };
        let chunked = element(LaneRead::Chunk);
        let rest = element(LaneRead::Row);
        let lanes = LANES;
        let vi = v_ident(var);
        let grad_slices: TokenStream = grad_rows
            .iter()
            .enumerate()
            .map(|(k, GradRow { base, start })| {
                let g = grad_row_ident(k);
                quote!(let #g: &mut [R] = &mut #base[#start..][..#d];)
            })
            .collect();
        let grad_chunks: TokenStream = (0..grad_rows.len())
            .map(|k| {
                let (g, c) = (grad_row_ident(k), grad_chunk_ident(k));
                quote!(let #c: &mut [R] = &mut #g[__c * #lanes..][..#lanes];)
            })
            .collect();
        let chunks = Self::chunk_slices(&rows);
        Some(quote! {
            #hoisted
            #slices
            #grad_slices
            for __c in 0..#d / #lanes {
                #chunks
                #grad_chunks
                for __l in 0..#lanes {
                    let #vi: usize = __c * #lanes + __l;
                    #chunked
                }
            }
            // a one-pass loop per element, so that the filter's `continue` skips it
            for #vi in #d / #lanes * #lanes..#d {
                #rest
            }
        })
    }
}
