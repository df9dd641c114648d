//! The fused loop nests: one forward pass over the slots in order, one backward pass
//! over the derived gradient in reverse, generic over the scalar `R` (so `f32` and `f64`
//! both get a kernel).

mod lanes;

use std::collections::{BTreeSet, HashMap, HashSet};

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};

use crate::diff::{Gradients, Leaf, SlotGrad};
use crate::family::{RawInput, Storage};
use crate::ir::{
    Bin, Cmp, Domain, InputId, Ix, NodeId, Op, Program, Red, SlotId, SlotKind, Un, VarId,
};

pub struct KernelCx<'a> {
    pub prog: &'a Program,
    /// The definition's raw inputs: the family's, then the declared ones.
    pub inputs: Vec<RawInput>,
    pub grads: &'a Gradients,
    pub flags: &'a [bool],
    rt: TokenStream,
    free_memo: std::cell::RefCell<HashMap<NodeId, BTreeSet<VarId>>>,
    adjoint: Option<NodeId>,
    locals: Vec<Option<SlotId>>,
    /// While emitting a row-parallel backward: the input whose gradient row is `__grow`.
    row_mode: std::cell::Cell<Option<InputId>>,
    /// While emitting the body of a reduction in lanes: its variable, and how it reads
    /// its rows (see [`lanes`]).
    lane: std::cell::Cell<Option<(VarId, lanes::LaneRead)>>,
    /// For each local slot whose value the forward keeps for the backward (see
    /// [`stored_slots`]): its offset in a sample's stored values.
    stored: Vec<Option<usize>>,
    /// While emitting a group of row slots computed in one pass (see
    /// [`fused_rows`](Self::fused_rows)): the slots of the group already computed in the
    /// current row, read from their locals instead of their buffers.
    fused: std::cell::RefCell<HashSet<SlotId>>,
    /// Stored values per sample.
    stored_width: usize,
}

fn n_ident(n: NodeId) -> Ident {
    format_ident!("__n{}", n.0)
}
fn v_ident(v: VarId) -> Ident {
    format_ident!("__v{}", v.0)
}
fn s_ident(s: SlotId) -> Ident {
    format_ident!("__s{}", s.0)
}
fn c_ident(s: SlotId) -> Ident {
    format_ident!("__c{}", s.0)
}
fn f_ident(s: SlotId) -> Ident {
    format_ident!("__f{}", s.0)
}
fn a_ident(s: SlotId) -> Ident {
    format_ident!("__a{}", s.0)
}
fn dim_ident(d: Domain) -> Ident {
    match d {
        Domain::Samples => Ident::new("__d_samples", Span::call_site()),
        Domain::Classes => Ident::new("__d_classes", Span::call_site()),
        Domain::Refs => Ident::new("__d_refs", Span::call_site()),
    }
}

impl<'a> KernelCx<'a> {
    pub fn new(
        prog: &'a Program,
        inputs: Vec<RawInput>,
        grads: &'a Gradients,
        flags: &'a [bool],
        rt: TokenStream,
    ) -> Self {
        let adjoint = (0..prog.graph.len())
            .map(|k| NodeId(k as u32))
            .find(|&n| matches!(prog.graph.op(n), Op::Adjoint));
        let locals = local_slots(prog);
        let (stored, stored_width) = stored_slots(prog, &locals);
        Self {
            prog,
            inputs,
            grads,
            flags,
            rt,
            free_memo: Default::default(),
            adjoint,
            locals,
            row_mode: std::cell::Cell::new(None),
            lane: std::cell::Cell::new(None),
            stored,
            stored_width,
            fused: Default::default(),
        }
    }

    fn free(&self, n: NodeId) -> BTreeSet<VarId> {
        if let Some(f) = self.free_memo.borrow().get(&n) {
            return f.clone();
        }
        let f = self.prog.free_vars(&[n]);
        self.free_memo.borrow_mut().insert(n, f.clone());
        f
    }

    fn uses_adjoint(&self, n: NodeId) -> bool {
        match self.adjoint {
            Some(a) => self.prog.graph.reachable(&[n]).contains(&a),
            None => false,
        }
    }

    fn dim(&self, v: VarId) -> Ident {
        dim_ident(self.prog.vars[v.0 as usize].domain)
    }

    /// Row-major position of a slot element at the current loop indices.
    fn slot_index(&self, s: SlotId) -> TokenStream {
        let free = &self.prog.slot(s).free;
        row_major(
            free.iter()
                .map(|v| {
                    let vi = v_ident(*v);
                    (quote!(#vi), self.dim(*v))
                })
                .collect(),
        )
    }

    fn ix(&self, ix: &Ix) -> TokenStream {
        match ix {
            Ix::Var(v) => {
                let v = v_ident(*v);
                quote!(#v)
            }
            Ix::Label(l, v) => {
                if let Some(read) = self.lane_label(*l, *v) {
                    return read;
                }
                let lab = format_ident!("__in{}", l.0);
                let v = v_ident(*v);
                quote!(#lab[#v])
            }
        }
    }

    /// `ix` as compared with `other`: an anchor (a `samples` index) compared with a
    /// reference (a `refs` index) is offset by the batch's `first_sample`, so that `i = j`
    /// finds the self-pair also when the kernel runs on a block of anchors.
    fn compared_ix(&self, ix: &Ix, other: &Ix) -> TokenStream {
        let domain = |ix: &Ix| match ix {
            Ix::Var(v) => Some(self.prog.vars[v.0 as usize].domain),
            Ix::Label(..) => None,
        };
        let e = self.ix(ix);
        match (domain(ix), domain(other)) {
            (Some(Domain::Samples), Some(Domain::Refs)) => quote!((#e + __b.first_sample)),
            _ => e,
        }
    }

    fn input_index(&self, id: InputId, ixs: &[Ix]) -> TokenStream {
        let axes = &self.inputs[id.0 as usize].axes;
        row_major(
            ixs.iter()
                .zip(axes)
                .map(|(ix, d)| (self.ix(ix), dim_ident(*d)))
                .collect(),
        )
    }

    /// The expression computing node `n` from its arguments' locals.
    fn node_expr(&self, n: NodeId) -> TokenStream {
        let rt = &self.rt;
        let g = &self.prog.graph;
        let a = |k: &NodeId| n_ident(*k);
        match g.op(n) {
            Op::Const(bits) => {
                quote!(<R as #rt::Real>::from_f64(::core::primitive::f64::from_bits(#bits)))
            }
            Op::Hyper(h) => {
                let h = format_ident!("__h{}", h.0);
                quote!(#h)
            }
            Op::Flag(h) => {
                let h = format_ident!("__h{}", h.0);
                quote!(#h)
            }
            Op::FromLogits => quote!(__b.from_logits),
            Op::ExcludeSelf => quote!(__b.exclude_self),
            Op::Size(d) => {
                let d = dim_ident(*d);
                quote!(<R as #rt::Real>::from_usize(#d))
            }
            Op::Input(id, ixs) => {
                if let Some(read) = self.lane_load(n, ixs) {
                    return read;
                }
                let arr = format_ident!("__in{}", id.0);
                let idx = self.input_index(*id, ixs);
                quote!(#arr[#idx])
            }
            Op::Slot(s) if self.is_local(*s) => {
                let v = s_ident(*s);
                quote!(#v)
            }
            Op::SlotCount(s) if self.is_local(*s) => {
                let v = c_ident(*s);
                quote!(#v)
            }
            Op::Slot(s) if self.fused.borrow().contains(s) => {
                let v = f_ident(*s);
                quote!(#v)
            }
            Op::Slot(s) => {
                let arr = s_ident(*s);
                let idx = self.slot_index(*s);
                quote!(#arr[#idx])
            }
            Op::SlotCount(s) => {
                let arr = c_ident(*s);
                let idx = self.slot_index(*s);
                quote!(#arr[#idx])
            }
            Op::Adjoint => quote!(__gbar),
            Op::Unary(f, x) => {
                let x = a(x);
                match f {
                    Un::Neg => quote!(-#x),
                    Un::Exp => quote!(#rt::Real::exp(#x)),
                    Un::Ln => quote!(#rt::Real::ln(#x)),
                    Un::Ln1p => quote!(#rt::Real::ln_1p(#x)),
                    Un::Sqrt => quote!(#rt::Real::sqrt(#x)),
                    Un::Abs => quote!(#rt::Real::abs(#x)),
                    Un::Sigmoid => quote!(#rt::Real::sigmoid(#x)),
                    Un::Softplus => quote!(#rt::Real::softplus(#x)),
                    Un::Tanh => quote!(#rt::Real::tanh(#x)),
                    Un::Cos => quote!(#rt::Real::cos(#x)),
                    Un::Sin => quote!(#rt::Real::sin(#x)),
                    Un::Acos => quote!(#rt::Real::acos(#x)),
                    Un::Expm1 => quote!(#rt::Real::exp_m1(#x)),
                    Un::Relu => quote!(#rt::Real::relu(#x)),
                    Un::Round => quote!(#rt::Real::round(#x)),
                    Un::Floor => quote!(#rt::Real::floor(#x)),
                    Un::Ceil => quote!(#rt::Real::ceil(#x)),
                    Un::Sign => quote!(#rt::Real::sign(#x)),
                }
            }
            Op::Binary(f, x, y) => {
                let (x, y) = (a(x), a(y));
                match f {
                    Bin::Add => quote!(#x + #y),
                    Bin::Sub => quote!(#x - #y),
                    Bin::Mul => quote!(#x * #y),
                    Bin::Div => quote!(#x / #y),
                    Bin::Min => quote!(#rt::Real::min2(#x, #y)),
                    Bin::Max => quote!(#rt::Real::max2(#x, #y)),
                    Bin::Powf => quote!(#rt::Real::powf(#x, #y)),
                    Bin::MulZ => quote!(if #x == <R as #rt::Real>::zero() { #x } else { #x * #y }),
                }
            }
            Op::Powi(x, k) => {
                let x = a(x);
                match k {
                    2 => quote!(#x * #x),
                    _ => quote!(#rt::Real::powi(#x, #k)),
                }
            }
            Op::Clamp(x, lo, hi) => {
                let (x, lo, hi) = (a(x), a(lo), a(hi));
                quote!(#rt::Real::clamp_to(#x, #lo, #hi))
            }
            Op::Select(c, x, y) => {
                let (c, x, y) = (a(c), a(x), a(y));
                quote!(if #c { #x } else { #y })
            }
            Op::Detach(x) => {
                let x = a(x);
                quote!(#x)
            }
            Op::ToReal(c) => {
                let c = a(c);
                quote!(<R as #rt::Real>::from_bool(#c))
            }
            Op::Compare(c, x, y) => {
                let (x, y) = (a(x), a(y));
                match c {
                    Cmp::Lt => quote!(#x < #y),
                    Cmp::Le => quote!(#x <= #y),
                    Cmp::Gt => quote!(#x > #y),
                    Cmp::Ge => quote!(#x >= #y),
                    Cmp::Eq => quote!(#x == #y),
                    Cmp::Ne => quote!(#x != #y),
                }
            }
            Op::IndexCompare(c, x, y) => {
                let (x, y) = (self.compared_ix(x, y), self.compared_ix(y, x));
                match c {
                    Cmp::Lt => quote!(#x < #y),
                    Cmp::Le => quote!(#x <= #y),
                    Cmp::Gt => quote!(#x > #y),
                    Cmp::Ge => quote!(#x >= #y),
                    Cmp::Eq => quote!(#x == #y),
                    Cmp::Ne => quote!(#x != #y),
                }
            }
            Op::And(x, y) => {
                let (x, y) = (a(x), a(y));
                quote!(#x && #y)
            }
            Op::Or(x, y) => {
                let (x, y) = (a(x), a(y));
                quote!(#x || #y)
            }
            Op::Not(x) => {
                let x = a(x);
                quote!(!#x)
            }
            Op::Require {
                value,
                cond,
                id,
                sample,
            } => {
                let (x, c, id) = (a(value), a(cond), usize::from(*id));
                let sample = match sample {
                    Some(v) => {
                        let v = v_ident(*v);
                        quote!(::core::option::Option::Some(#v))
                    }
                    None => quote!(::core::option::Option::None),
                };
                quote!({
                    if !#c {
                        __requirements.fail(#id, #sample);
                    }
                    #x
                })
            }
        }
    }

    /// `let`s for every node reachable from `roots` not yet emitted (and accepted by
    /// `keep`), in id order.
    fn emit_nodes(
        &self,
        roots: &[NodeId],
        emitted: &mut HashSet<NodeId>,
        keep: impl Fn(NodeId) -> bool,
    ) -> TokenStream {
        let mut out = TokenStream::new();
        for n in self.prog.graph.reachable(roots) {
            if emitted.contains(&n) || !keep(n) {
                continue;
            }
            emitted.insert(n);
            let id = n_ident(n);
            let e = self.node_expr(n);
            out.extend(quote!(let #id = #e;));
        }
        out
    }

    /// Wraps `body` in loops over `vars`.
    fn loops(&self, vars: &[VarId], body: TokenStream) -> TokenStream {
        vars.iter().rev().fold(body, |inner, v| {
            let (vi, d) = (v_ident(*v), self.dim(*v));
            quote!(for #vi in 0..#d { #inner })
        })
    }

    fn prologue(&self) -> TokenStream {
        let rt = &self.rt;
        let mut out = quote! {
            let __d_samples: usize = __b.samples;
            let __d_classes: usize = __b.classes;
            let __d_refs: usize = __b.refs;
            let __requirements = #rt::Requirements::default();
        };
        for (k, raw) in self.inputs.iter().enumerate() {
            let name = format_ident!("__in{}", k);
            out.extend(match raw.storage {
                Storage::Values(j) => quote!(let #name: &[R] = __b.values[#j];),
                Storage::Labels(j) => quote!(let #name: &[usize] = __b.labels[#j];),
            });
        }
        for (k, &flag) in self.flags.iter().enumerate() {
            let h = format_ident!("__h{}", k);
            let field = format_ident!("{}", self.prog.hyper_names[k]);
            out.extend(if flag {
                quote!(let #h: bool = self.#field;)
            } else {
                quote!(let #h: R = <R as #rt::Real>::from_f64(self.#field);)
            });
        }
        out
    }

    fn size(&self, s: SlotId) -> TokenStream {
        let dims: Vec<Ident> = self
            .prog
            .slot(s)
            .free
            .iter()
            .map(|v| self.dim(*v))
            .collect();
        dims.iter().fold(quote!(1usize), |acc, d| quote!(#acc * #d))
    }

    /// For a top-level reduction without free indices (a loss's outer sum or mean over its
    /// samples) whose iterations each write only their own row of one input's gradient:
    /// that input.
    fn parallel_reduction(&self, sg: &SlotGrad) -> Option<InputId> {
        let slot = self.prog.slot(sg.slot);
        match &slot.kind {
            SlotKind::Reduce {
                op: Red::Sum | Red::Mean | Red::LogSumExp | Red::LogMeanExp,
                var,
                ..
            } if slot.free.is_empty() && slot.params.is_empty() && !self.is_local(sg.slot) => {
                self.row_target_over(sg, *var)
            }
            _ => None,
        }
    }

    /// The nodes of `filter`, then `continue` to the next element where it does not hold.
    fn skip_unless(&self, filter: Option<NodeId>, emitted: &mut HashSet<NodeId>) -> TokenStream {
        match filter {
            Some(f) => {
                let nodes = self.emit_nodes(&[f], emitted, |_| true);
                let fi = n_ident(f);
                quote!(#nodes if !#fi { continue; })
            }
            None => TokenStream::new(),
        }
    }

    /// The length of one row (all axes but the first) of raw input `id`.
    fn input_row_len(&self, id: InputId) -> TokenStream {
        self.inputs[id.0 as usize].axes[1..]
            .iter()
            .fold(quote!(1usize), |acc, d| {
                let d = dim_ident(*d);
                quote!(#acc * #d)
            })
    }

    /// The product of the dimensions of `vars` (a row's length).
    fn row_len(&self, vars: &[VarId]) -> TokenStream {
        vars.iter().fold(quote!(1usize), |acc, v| {
            let d = self.dim(*v);
            quote!(#acc * #d)
        })
    }

    /// Row-major position over `vars` within one row.
    fn row_index(&self, vars: &[VarId]) -> TokenStream {
        row_major(
            vars.iter()
                .map(|v| {
                    let vi = v_ident(*v);
                    (quote!(#vi), self.dim(*v))
                })
                .collect(),
        )
    }

    /// Elementary steps per row of slot `s` (for deciding whether to spread rows over
    /// threads): the row's length times the reduction's length.
    fn inner_work(&self, s: SlotId, row_len: &TokenStream) -> TokenStream {
        match &self.prog.slot(s).kind {
            SlotKind::Reduce { var, .. } => {
                let d = self.dim(*var);
                quote!((#row_len) * #d)
            }
            SlotKind::Let(_) => quote!(#row_len),
        }
    }

    /// The input whose gradient receives every write of slot `sg`'s backward (and of its
    /// inline children's), each in the row given by the slot's outer index — the
    /// condition for running its rows in parallel. `None` when anything else is written.
    fn row_target(&self, sg: &SlotGrad) -> Option<InputId> {
        let outer = *self.prog.slot(sg.slot).free.first()?;
        self.row_target_over(sg, outer)
    }

    /// [`row_target`](Self::row_target) with the rows indexed by `outer`.
    fn row_target_over(&self, sg: &SlotGrad, outer: VarId) -> Option<InputId> {
        let mut target = None;
        let mut pending = vec![sg];
        while let Some(g) = pending.pop() {
            for (leaf, _) in &g.contributions {
                match leaf {
                    Leaf::Input(id, ixs) if ixs.first() == Some(&Ix::Var(outer)) => {
                        if target.is_some_and(|t| t != *id) {
                            return None;
                        }
                        target = Some(*id);
                    }
                    Leaf::Slot(t) if self.locals[t.0 as usize] == Some(g.slot) => {
                        pending.extend(self.grads.slots.iter().find(|c| c.slot == *t));
                    }
                    _ => return None,
                }
            }
        }
        target
    }

    /// Whether slot `s` is computed inline, inside the one reduction that reads it
    /// (a scalar local instead of a buffer; see [`local_slots`]).
    fn is_local(&self, s: SlotId) -> bool {
        self.locals[s.0 as usize].is_some()
    }

    /// The local slots computed inside an iteration of `parent`, in slot order.
    fn children(&self, parent: SlotId) -> Vec<SlotId> {
        (0..self.prog.slots.len())
            .map(|k| SlotId(k as u16))
            .filter(|&t| self.locals[t.0 as usize] == Some(parent))
            .collect()
    }

    /// Statements computing slot `s` at the current indices, and its value (and count).
    fn slot_value(&self, s: SlotId) -> (TokenStream, TokenStream, TokenStream) {
        let rt = &self.rt;
        let slot = self.prog.slot(s);
        let mut emitted = HashSet::new();
        let zero = quote!(<R as #rt::Real>::zero());
        if let Some(lanes) = self.lane_value(s) {
            return lanes;
        }
        match &slot.kind {
            SlotKind::Let(n) => {
                let nodes = self.emit_nodes(&[*n], &mut emitted, |_| true);
                let v = n_ident(*n);
                (nodes, quote!(#v), zero)
            }
            SlotKind::Reduce {
                op,
                var,
                filter,
                body: b,
            } => {
                let roots: Vec<NodeId> = filter
                    .iter()
                    .copied()
                    .chain([*b])
                    .chain(slot.params.iter().copied())
                    .collect();
                let hoisted =
                    self.emit_nodes(&roots, &mut emitted, |n| !self.free(n).contains(var));
                let (in_filter, in_body) = self.split_children(s, *filter, None);
                let filter_nodes = self.skip_unless(*filter, &mut emitted);
                let body_nodes = self.emit_nodes(&[*b], &mut emitted, |_| true);
                let x = n_ident(*b);
                let (vi, d) = (v_ident(*var), self.dim(*var));
                let params: Vec<Ident> = slot.params.iter().map(|p| n_ident(*p)).collect();
                let (init, combine, finish) = reduce_parts(rt, *op, &x, &vi, &params);
                let stmts = quote! {
                    #hoisted
                    #init
                    #[allow(unused_variables)]
                    let mut __count: usize = 0;
                    for #vi in 0..#d {
                        #in_filter
                        #filter_nodes
                        #in_body
                        #body_nodes
                        #combine
                        __count += 1;
                    }
                };
                (stmts, finish, quote!(<R as #rt::Real>::from_usize(__count)))
            }
        }
    }

    /// A top-level sum or mean without free indices (a loss's outer reduction over its
    /// samples), computed as a deterministic parallel sum: each iteration with its inline
    /// children is independent of the others.
    fn parallel_sum(&self, s: SlotId) -> Option<(TokenStream, TokenStream, TokenStream)> {
        let rt = &self.rt;
        let slot = self.prog.slot(s);
        let SlotKind::Reduce {
            op,
            var,
            filter,
            body: b,
        } = &slot.kind
        else {
            return None;
        };
        if !matches!(op, Red::Sum | Red::Mean)
            || !slot.free.is_empty()
            || !slot.params.is_empty()
            || self.is_local(s)
        {
            return None;
        }
        let mut emitted = HashSet::new();
        let roots: Vec<NodeId> = filter.iter().copied().chain([*b]).collect();
        let hoisted = self.emit_nodes(&roots, &mut emitted, |n| !self.free(n).contains(var));
        let (in_filter, in_body) = self.split_children(s, *filter, None);
        let filter_nodes = self.skip_unless(*filter, &mut emitted);
        let body_nodes = self.emit_nodes(&[*b], &mut emitted, |_| true);
        let x = n_ident(*b);
        let (vi, d) = (v_ident(*var), self.dim(*var));
        let (width, buf) = if s == self.prog.root() {
            (self.stored_width, quote!(__stored))
        } else {
            (0, quote!(__nothing_stored))
        };
        let stmts = quote! {
            #hoisted
            // a one-pass loop, so that the filter's `continue` skips the element; the
            // values kept for the backward go to `__st`, this sample's part of `__stored`
            let mut #buf: ::std::vec::Vec<R> = ::std::vec![<R as #rt::Real>::zero(); #d * #width];
            let (__acc, __count, __first_nonfinite): (R, usize, ::core::option::Option<usize>) = #rt::parallel::sum_stored(#d, __d_classes * __d_refs, &mut #buf, #width, |#vi, __st| {
                let mut __out = ::core::option::Option::None;
                for _ in 0..1 {
                    #in_filter
                    #filter_nodes
                    #in_body
                    #body_nodes
                    __out = ::core::option::Option::Some(#x);
                }
                __out
            });
        };
        let value = if *op == Red::Mean {
            quote!(if __count > 0 { __acc / <R as #rt::Real>::from_usize(__count) } else { <R as #rt::Real>::zero() })
        } else {
            quote!(__acc)
        };
        Some((stmts, value, quote!(<R as #rt::Real>::from_usize(__count))))
    }

    /// Whether slot `s` is computed by [`parallel_sum`](Self::parallel_sum) over the
    /// samples, so that its code leaves the first non-finite sample in `__first_nonfinite`.
    fn sums_over_samples(&self, s: SlotId) -> bool {
        match &self.prog.slot(s).kind {
            SlotKind::Reduce { var, .. } => {
                self.prog.vars[var.0 as usize].domain == Domain::Samples
                    && self.parallel_sum(s).is_some()
            }
            SlotKind::Let(_) => false,
        }
    }

    /// Inline computations of `parent`'s local slots: those its filter reads, and the rest.
    /// `needed` limits the ones outside the filter to those whose values are read (the
    /// backward skips a child whose value nothing there uses).
    fn split_children(
        &self,
        parent: SlotId,
        filter: Option<NodeId>,
        needed: Option<&HashSet<SlotId>>,
    ) -> (TokenStream, TokenStream) {
        let in_filter: Vec<SlotId> = match filter {
            Some(f) => {
                let read = self.prog.graph.reachable(&[f]);
                self.children(parent)
                    .into_iter()
                    .filter(|t| {
                        read.iter()
                            .any(|&n| matches!(self.prog.graph.op(n), Op::Slot(x) if x == t))
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        let mut a = TokenStream::new();
        let mut b = TokenStream::new();
        // the backward (`needed` given) reads the values the forward stored
        let value = |t: SlotId| match (needed, self.stored[t.0 as usize]) {
            (Some(_), Some(_)) => self.stored_read(t),
            (None, Some(_)) => {
                let write = self.stored_write(t);
                let value = self.local_value(t);
                quote!(#value #write)
            }
            (_, None) => self.local_value(t),
        };
        for t in self.children(parent) {
            if in_filter.contains(&t) {
                a.extend(value(t));
            } else if needed.is_none_or(|set| set.contains(&t)) {
                b.extend(value(t));
            }
        }
        (a, b)
    }

    /// Where a stored slot's value (and count) go in its sample's stored values.
    fn stored_at(&self, t: SlotId) -> (usize, usize) {
        let off = self.stored[t.0 as usize].unwrap_or(0);
        (off, off + 1)
    }

    /// Saves stored slot `t`'s value and count, just computed, in `__st` (the current
    /// sample's stored values, in the forward).
    fn stored_write(&self, t: SlotId) -> TokenStream {
        let (sv, cv) = (s_ident(t), c_ident(t));
        let (at, count_at) = self.stored_at(t);
        if keeps_count(&self.prog.slot(t).kind) {
            quote!(__st[#at] = #sv; __st[#count_at] = #cv;)
        } else {
            quote!(__st[#at] = #sv;)
        }
    }

    /// Reads stored slot `t`'s value and count back (in the backward).
    fn stored_read(&self, t: SlotId) -> TokenStream {
        let rt = &self.rt;
        let (sv, cv) = (s_ident(t), c_ident(t));
        let (at, count_at) = self.stored_at(t);
        let width = self.stored_width;
        let v = match self.locals[t.0 as usize].map(|p| &self.prog.slot(p).kind) {
            Some(SlotKind::Reduce { var, .. }) => v_ident(*var),
            _ => return self.local_value(t),
        };
        let count = if keeps_count(&self.prog.slot(t).kind) {
            quote!(__stored[#v * #width + #count_at])
        } else {
            quote!(<R as #rt::Real>::zero())
        };
        quote! {
            let (#sv, #cv): (R, R) = (__stored[#v * #width + #at], #count);
        }
    }

    /// The local children of `parent` whose values its backward reads: those the
    /// gradient expressions read, and those whose own backward needs their value
    /// (the logsumexp weight, the arg-max test, the mean's count).
    fn values_needed(&self, parent: SlotId, roots: &[NodeId]) -> HashSet<SlotId> {
        let read: HashSet<SlotId> = self
            .prog
            .graph
            .reachable(roots)
            .into_iter()
            .filter_map(|n| match self.prog.graph.op(n) {
                Op::Slot(t) | Op::SlotCount(t) => Some(*t),
                _ => None,
            })
            .collect();
        self.children(parent)
            .into_iter()
            .filter(|t| {
                let own = self.grads.needs_adjoint[t.0 as usize]
                    && matches!(
                        self.prog.slot(*t).kind,
                        SlotKind::Reduce {
                            op: Red::LogSumExp | Red::LogMeanExp | Red::Max | Red::Min | Red::Mean,
                            ..
                        }
                    );
                own || read.contains(t)
            })
            .collect()
    }

    /// `let __sT: R = ..;` (and `__cT`) for a local slot.
    fn local_value(&self, t: SlotId) -> TokenStream {
        let (stmts, value, count) = self.slot_value(t);
        let (sv, cv) = (s_ident(t), c_ident(t));
        quote! {
            let (#sv, #cv): (R, R) = { #stmts (#value, #count) };
        }
    }

    /// Whether slot `s` can be computed in a pass shared with other slots over the rows of
    /// its one free index: a buffered value per row, not a mean (whose count goes in a
    /// second buffer) nor the loss itself.
    fn row_fusable(&self, s: SlotId) -> bool {
        let slot = self.prog.slot(s);
        !self.is_local(s)
            && s != self.prog.root()
            && slot.free.len() == 1
            && !keeps_count(&slot.kind)
    }

    /// The longest run of slots at the start of `order` (the forward's order) that
    /// [`row_fusable`](Self::row_fusable) allows in one pass over the same rows.
    fn row_group(&self, order: &[SlotId]) -> Vec<SlotId> {
        let Some(&first) = order.first() else {
            return Vec::new();
        };
        if !self.row_fusable(first) {
            return Vec::new();
        }
        let outer = self.prog.slot(first).free[0];
        order
            .iter()
            .copied()
            .take_while(|&s| self.row_fusable(s) && self.prog.slot(s).free[0] == outer)
            .collect()
    }

    /// Slots over the same rows, computed in one pass: each row computes them in order,
    /// a slot reading the ones before it from locals, so a row of the input (a row of
    /// `S`, say) is read from memory once for all of them, not once per slot. Each value
    /// is computed by the same code as in a pass of its own, so the bits are the same.
    /// The values go to one buffer, `group.len()` per row, then to each slot's buffer.
    fn fused_rows(&self, group: &[SlotId]) -> TokenStream {
        let rt = &self.rt;
        let outer = self.prog.slot(group[0]).free[0];
        let (v0, d) = (v_ident(outer), self.dim(outer));
        let width = group.len();
        let mut rows = TokenStream::new();
        let mut work = Vec::new();
        for (j, &s) in group.iter().enumerate() {
            self.fused.borrow_mut().extend(&group[..j]);
            let (stmts, value, _) = self.slot_value(s);
            self.fused.borrow_mut().clear();
            let f = f_ident(s);
            rows.extend(quote! {
                let #f: R = { #stmts #value };
                __row[#j] = #f;
            });
            work.push(self.inner_work(s, &quote!(1usize)));
        }
        let mut out = quote! {
            let mut __fused: ::std::vec::Vec<R> = ::std::vec![<R as #rt::Real>::zero(); #width * #d];
            #rt::parallel::rows(&mut __fused, #width, #(#work)+*, |#v0, __row| { #rows });
        };
        for (j, &s) in group.iter().enumerate() {
            let buf = s_ident(s);
            out.extend(quote! {
                let mut #buf: ::std::vec::Vec<R> = __fused.iter().skip(#j).step_by(#width).copied().collect();
            });
        }
        out
    }

    /// The `kernel_forward` method (with `REQUIREMENTS`), and its AVX2 build (see
    /// [`wide_build`](Self::wide_build)).
    pub fn forward(&self) -> (TokenStream, TokenStream) {
        let rt = &self.rt;
        let prologue = self.prologue();
        let mut body = TokenStream::new();
        let order: Vec<SlotId> = (0..self.prog.slots.len())
            .map(|k| SlotId(k as u16))
            .filter(|&s| !self.is_local(s))
            .collect();
        let mut next = 0;
        while next < order.len() {
            let group = self.row_group(&order[next..]);
            if group.len() > 1 {
                body.extend(self.fused_rows(&group));
                next += group.len();
                continue;
            }
            let s = order[next];
            next += 1;
            let slot = self.prog.slot(s);
            let (buf, size) = (s_ident(s), self.size(s));
            body.extend(quote!(let mut #buf: ::std::vec::Vec<R> = ::std::vec![<R as #rt::Real>::zero(); #size];));
            let is_mean = matches!(slot.kind, SlotKind::Reduce { op, .. } if op.keeps_count());
            let idx = self.slot_index(s);
            let (stmts, value, count) = self.parallel_sum(s).unwrap_or_else(|| self.slot_value(s));
            let store_count = if is_mean {
                let c = c_ident(s);
                body.extend(quote!(let mut #c: ::std::vec::Vec<R> = ::std::vec![<R as #rt::Real>::zero(); #size];));
                quote!(#c[#idx] = #count;)
            } else {
                TokenStream::new()
            };
            body.extend(match slot.free.split_first() {
                // one row per value of the outer index, possibly on several threads
                Some((&outer, rest)) => {
                    let v0 = v_ident(outer);
                    let (row_len, ridx) = (self.row_len(rest), self.row_index(rest));
                    let work = self.inner_work(s, &row_len);
                    if is_mean {
                        let rows = self.loops(rest, quote! {
                            #stmts
                            __row[#ridx] = #value;
                            __crow[#ridx] = #count;
                        });
                        let c = c_ident(s);
                        quote! {
                            #rt::parallel::rows2(&mut #buf, &mut #c, #row_len, #work, |#v0, __row, __crow| { #rows });
                        }
                    } else {
                        let rows = self.loops(rest, quote! {
                            #stmts
                            __row[#ridx] = #value;
                        });
                        quote! {
                            #rt::parallel::rows(&mut #buf, #row_len, #work, |#v0, __row| { #rows });
                        }
                    }
                }
                None => quote! {
                    #stmts
                    #buf[#idx] = #value;
                    #store_count
                },
            });
        }
        let root = s_ident(self.prog.root());
        let first_nonfinite = if self.sums_over_samples(self.prog.root()) {
            quote!(__first_nonfinite)
        } else {
            quote!(::core::option::Option::None)
        };
        let slots: Vec<TokenStream> = (0..self.prog.slots.len())
            .map(|k| {
                let s = SlotId(k as u16);
                if self.is_local(s) {
                    quote!(::std::vec::Vec::new())
                } else {
                    let i = s_ident(s);
                    quote!(#i)
                }
            })
            .collect();
        let counts: Vec<TokenStream> = self
            .prog
            .slots
            .iter()
            .enumerate()
            .map(|(k, slot)| {
                let s = SlotId(k as u16);
                match slot.kind {
                    SlotKind::Reduce { op, .. } if op.keeps_count() && !self.is_local(s) => {
                        let c = c_ident(s);
                        quote!(#c)
                    }
                    _ => quote!(::std::vec::Vec::new()),
                }
            })
            .collect();
        let keep_stored = if self.stored_width > 0 {
            quote!(__ws.stored = __stored;)
        } else {
            TokenStream::new()
        };
        let requirements = if self.prog.requirements.is_empty() {
            TokenStream::new()
        } else {
            let messages = &self.prog.requirements;
            quote!(const REQUIREMENTS: &'static [&'static str] = &[#(#messages),*];)
        };
        let body = quote! {
            #prologue
            #body
            let __value = #root[0];
            __ws.slots = ::std::vec![#(#slots),*];
            __ws.counts = ::std::vec![#(#counts),*];
            __ws.failed = __requirements.into_failed();
            __ws.first_nonfinite_sample = #first_nonfinite;
            #keep_stored
            __value
        };
        let signature = quote!(<R: #rt::Real>(&self, __b: &#rt::Batch<'_, R>, __ws: &mut #rt::Workspace<R>) -> R);
        let (dispatch, wide) = self.wide_build(
            format_ident!("__kernel_forward_wide"),
            &signature,
            &body,
            format_ident!("forward"),
            quote!(__b, __ws),
        );
        (
            quote! {
                #[allow(unused_variables, unused_mut, unused_parens, clippy::all)]
                fn kernel_forward #signature {
                    #dispatch
                    #body
                }
                #requirements
            },
            wide,
        )
    }

    /// The build of a kernel method for AVX2 and FMA, and the runtime check that calls it
    /// on a CPU that has them (see the runtime's `core::simd`): `(dispatch, method)`. The
    /// method is an inherent one (a trait method cannot enable target features); the
    /// compiler vectorises its loops, and those of the closures in it, for 8 `f32` lanes
    /// instead of 4. (A safe function marked `#[target_feature]` needs Rust 1.86, the
    /// workspace's `rust-version`.)
    fn wide_build(
        &self,
        name: Ident,
        signature: &TokenStream,
        body: &TokenStream,
        runner: Ident,
        args: TokenStream,
    ) -> (TokenStream, TokenStream) {
        let rt = &self.rt;
        // a user's crate gets the second build in optimised builds only, which halves the
        // debug compile time of a `#[loss]`; the runtime's own kernels keep it in every
        // profile, so that its tests compare the two builds
        let own = std::env::var("CARGO_CRATE_NAME").is_ok_and(|c| c == "loss_runtime");
        let x86 = if own {
            quote!(#[cfg(any(target_arch = "x86", target_arch = "x86_64"))])
        } else {
            quote!(#[cfg(all(any(target_arch = "x86", target_arch = "x86_64"), not(debug_assertions)))])
        };
        let dispatch = quote! {
            #x86
            if #rt::simd::wide() {
                return #rt::simd::#runner(Self::#name::<R>, self, #args);
            }
        };
        let method = quote! {
            #x86
            #[doc(hidden)]
            #[allow(unused_variables, unused_mut, unused_parens, clippy::all)]
            #[target_feature(enable = "avx2,fma")]
            fn #name #signature {
                #body
            }
        };
        (dispatch, method)
    }

    /// The `kernel_backward` method, and its AVX2 build.
    pub fn backward(&self) -> (TokenStream, TokenStream) {
        let rt = &self.rt;
        let prologue = self.prologue();
        let mut setup = TokenStream::new();
        for (k, slot) in self.prog.slots.iter().enumerate() {
            let s = SlotId(k as u16);
            if self.is_local(s) {
                continue;
            }
            let buf = s_ident(s);
            setup.extend(quote!(let #buf: &[R] = &__ws.slots[#k];));
            if matches!(slot.kind, SlotKind::Reduce { op, .. } if op.keeps_count()) {
                let c = c_ident(s);
                setup.extend(quote!(let #c: &[R] = &__ws.counts[#k];));
            }
        }
        let diff: Vec<usize> = self
            .inputs
            .iter()
            .enumerate()
            .filter(|(_, r)| r.differentiable)
            .map(|(k, _)| k)
            .collect();
        if self.stored_width > 0 {
            setup.extend(quote!(let __stored: &[R] = &__ws.stored;));
        }
        setup.extend(quote!(let mut __grads_iter = __grads.iter_mut();));
        for k in &diff {
            let g = format_ident!("__g{}", k);
            setup.extend(quote! {
                let #g: &mut [R] = match __grads_iter.next() {
                    ::core::option::Option::Some(g) => g,
                    ::core::option::Option::None => return,
                };
            });
        }
        let root = self.prog.root();
        for (k, need) in self.grads.needs_adjoint.iter().enumerate() {
            let s = SlotId(k as u16);
            if !need || self.is_local(s) {
                continue;
            }
            let a = a_ident(s);
            if s == root {
                setup.extend(quote!(let #a: ::std::vec::Vec<R> = ::std::vec![__seed];));
            } else {
                let size = self.size(s);
                setup.extend(quote!(let mut #a: ::std::vec::Vec<R> = ::std::vec![<R as #rt::Real>::zero(); #size];));
            }
        }
        let mut body = TokenStream::new();
        // consecutive row-parallel backwards into the same gradient rows, run in one pass
        // (see `flush_rows`): the target, the outer index, each one's work and rows
        let mut pending: Option<(InputId, VarId, Vec<TokenStream>, TokenStream)> = None;
        for sg in &self.grads.slots {
            if self.is_local(sg.slot) {
                continue;
            }
            let row_target = self
                .row_target(sg)
                .filter(|_| self.parallel_reduction(sg).is_none());
            let outer = self.prog.slot(sg.slot).free.first().copied();
            if let Some((target, var, _, _)) = &pending {
                if row_target != Some(*target) || outer != Some(*var) {
                    body.extend(self.flush_rows(pending.take()));
                }
            }
            let slot = self.prog.slot(sg.slot);
            let (a, idx) = (a_ident(sg.slot), self.slot_index(sg.slot));
            if let Some(target) = self.parallel_reduction(sg) {
                // a loss's outer sum over samples: each sample writes its own gradient row
                let g = format_ident!("__g{}", target.0);
                let row_len = self.input_row_len(target);
                // each sample's work: its row, over the classes or references
                let work = quote!(__d_classes * __d_refs);
                self.row_mode.set(Some(target));
                let element = self.element_backward_with(sg, Some((g, row_len, work)));
                self.row_mode.set(None);
                body.extend(quote! {
                    let __abar: R = #a[#idx];
                    if __abar != <R as #rt::Real>::zero() {
                        #element
                    }
                });
                continue;
            }
            if let Some(target) = row_target {
                // every write lands in row `outer` of one input's gradient: rows in parallel
                let (outer, rest) = (slot.free[0], &slot.free[1..]);
                let work = self.inner_work(sg.slot, &self.row_len(rest));
                self.row_mode.set(Some(target));
                let element = self.element_backward(sg);
                self.row_mode.set(None);
                let rows = self.loops(
                    rest,
                    quote! {
                        let __abar: R = #a[#idx];
                        if __abar != <R as #rt::Real>::zero() {
                            #element
                        }
                    },
                );
                let (_, _, works, all) =
                    pending.get_or_insert_with(|| (target, outer, Vec::new(), TokenStream::new()));
                works.push(work);
                all.extend(quote!({ #rows }));
                continue;
            }
            let element = self.element_backward(sg);
            body.extend(self.flush_rows(pending.take()));
            body.extend(self.loops(
                &slot.free,
                quote! {
                    let __abar: R = #a[#idx];
                    if __abar != <R as #rt::Real>::zero() {
                        #element
                    }
                },
            ));
        }
        body.extend(self.flush_rows(pending.take()));
        let body = quote! {
            #prologue
            #setup
            #body
        };
        let signature = quote!(<R: #rt::Real>(&self, __b: &#rt::Batch<'_, R>, __ws: &#rt::Workspace<R>, __seed: R, __grads: &mut [&mut [R]]));
        let (dispatch, wide) = self.wide_build(
            format_ident!("__kernel_backward_wide"),
            &signature,
            &body,
            format_ident!("backward"),
            quote!(__b, __ws, __seed, __grads),
        );
        (
            quote! {
                #[allow(unused_variables, unused_mut, unused_parens, clippy::all)]
                fn kernel_backward #signature {
                    #dispatch
                    #body
                }
            },
            wide,
        )
    }

    /// One parallel pass over the rows of an input's gradient for the row-parallel
    /// backwards gathered in `pending` (target, outer index, works, their row bodies, in
    /// the order of the backward): each row runs them one after the other, so an element
    /// gets the same additions in the same order as with one pass each, and the rows of
    /// the input and of its gradient go through memory once.
    fn flush_rows(
        &self,
        pending: Option<(InputId, VarId, Vec<TokenStream>, TokenStream)>,
    ) -> TokenStream {
        let Some((target, outer, works, rows)) = pending else {
            return TokenStream::new();
        };
        let rt = &self.rt;
        let v0 = v_ident(outer);
        let g = format_ident!("__g{}", target.0);
        let row_len = self.input_row_len(target);
        quote! {
            #rt::parallel::rows(&mut *#g, #row_len, #(#works)+*, |#v0, __grow| { #rows });
        }
    }

    fn contribution(&self, leaf: &Leaf, value: NodeId) -> TokenStream {
        let v = n_ident(value);
        match leaf {
            Leaf::Input(id, ixs) if self.row_mode.get() == Some(*id) => {
                let axes = &self.inputs[id.0 as usize].axes[1..];
                let idx = row_major(
                    ixs[1..]
                        .iter()
                        .zip(axes)
                        .map(|(ix, d)| (self.ix(ix), dim_ident(*d)))
                        .collect(),
                );
                quote!(__grow[#idx] += #v;)
            }
            Leaf::Input(id, ixs) => {
                let g = format_ident!("__g{}", id.0);
                let idx = self.input_index(*id, ixs);
                quote!(#g[#idx] += #v;)
            }
            Leaf::Slot(s) if self.is_local(*s) => {
                let a = a_ident(*s);
                quote!(#a += #v;)
            }
            Leaf::Slot(s) => {
                let a = a_ident(*s);
                let idx = self.slot_index(*s);
                quote!(#a[#idx] += #v;)
            }
        }
    }

    /// The backward of one element of a slot (its indices bound, `__abar` its adjoint):
    /// for a reduction, the loop over its index; local slots read inside are recomputed,
    /// their adjoints gathered in scalars, and their own backward run in place.
    fn element_backward(&self, sg: &SlotGrad) -> TokenStream {
        self.element_backward_with(sg, None)
    }

    /// [`element_backward`](Self::element_backward); with `rows = Some((gradient,
    /// row length, work))`, the reduction's loop runs its iterations as the rows of that
    /// input gradient, in parallel (the caller has checked that each iteration writes
    /// only its own row, and has set `row_mode`).
    fn element_backward_with(
        &self,
        sg: &SlotGrad,
        rows: Option<(Ident, TokenStream, TokenStream)>,
    ) -> TokenStream {
        let rt = &self.rt;
        let slot = self.prog.slot(sg.slot);
        let roots: Vec<NodeId> = sg.contributions.iter().map(|(_, c)| *c).collect();
        let contributions: TokenStream = sg
            .contributions
            .iter()
            .map(|(l, c)| self.contribution(l, *c))
            .collect();
        let weight = n_ident(sg.weight);
        let mut emitted = HashSet::new();
        let children = self.children(sg.slot);
        let child_adjoints: TokenStream = children
            .iter()
            .filter(|t| self.grads.needs_adjoint[t.0 as usize])
            .map(|t| {
                let a = a_ident(*t);
                quote!(let mut #a: R = <R as #rt::Real>::zero();)
            })
            .collect();
        let child_backward: TokenStream = children
            .iter()
            .rev()
            .filter_map(|t| self.grads.slots.iter().find(|g| g.slot == *t))
            .map(|g| {
                let a = a_ident(g.slot);
                let inner = self.element_backward(g);
                quote! {{
                    let __abar: R = #a;
                    if __abar != <R as #rt::Real>::zero() {
                        #inner
                    }
                }}
            })
            .collect();
        match &slot.kind {
            SlotKind::Let(_) => {
                let w = self.emit_nodes(&[sg.weight], &mut emitted, |_| true);
                let nodes = self.emit_nodes(&roots, &mut emitted, |_| true);
                quote! { #w let __gbar = __abar * #weight; #child_adjoints #nodes #contributions #child_backward }
            }
            SlotKind::Reduce { .. } if rows.is_none() && self.lane_backward(sg).is_some() => {
                self.lane_backward(sg).unwrap_or_default()
            }
            SlotKind::Reduce {
                op,
                var,
                filter,
                body,
            } => {
                let mut all_roots = roots.clone();
                all_roots.push(sg.weight);
                all_roots.extend(filter.iter().copied());
                all_roots.push(*body);
                let hoisted = self.emit_nodes(&all_roots, &mut emitted, |n| {
                    !self.free(n).contains(var) && !self.uses_adjoint(n)
                });
                let mut read_roots = roots.clone();
                read_roots.push(sg.weight);
                if matches!(op, Red::Max | Red::Min) {
                    read_roots.push(*body);
                }
                let needed = self.values_needed(sg.slot, &read_roots);
                let (in_filter, in_body) = self.split_children(sg.slot, *filter, Some(&needed));
                let filter_nodes = self.skip_unless(*filter, &mut emitted);
                let arg_select = if matches!(op, Red::Max | Red::Min) {
                    let nodes = self.emit_nodes(&[*body], &mut emitted, |_| true);
                    let x = n_ident(*body);
                    let this = if self.is_local(sg.slot) {
                        let s = s_ident(sg.slot);
                        quote!(#s)
                    } else {
                        let (s, idx) = (s_ident(sg.slot), self.slot_index(sg.slot));
                        quote!(#s[#idx])
                    };
                    quote! {
                        #nodes
                        if __taken || #x != #this { continue; }
                        __taken = true;
                    }
                } else {
                    TokenStream::new()
                };
                let w = self.emit_nodes(&[sg.weight], &mut emitted, |_| true);
                let nodes = self.emit_nodes(&roots, &mut emitted, |_| true);
                let (vi, d) = (v_ident(*var), self.dim(*var));
                let iteration = quote! {
                    #in_filter
                    #filter_nodes
                    #in_body
                    #arg_select
                    #w
                    let __gbar = __abar * #weight;
                    #child_adjoints
                    #nodes
                    #contributions
                    #child_backward
                };
                match rows {
                    // a one-pass loop, so that the filter's `continue` skips the element
                    Some((g, row_len, work)) => quote! {
                        #hoisted
                        #rt::parallel::rows(&mut *#g, #row_len, #work, |#vi, __grow| {
                            for _ in 0..1 {
                                #iteration
                            }
                        });
                    },
                    None => quote! {
                        #hoisted
                        let mut __taken = false;
                        for #vi in 0..#d {
                            #iteration
                        }
                    },
                }
            }
        }
    }
}

/// Slots computed inline: a non-root slot read by exactly one other slot, which is a
/// reduction whose index the slot depends on. Such a slot varies with every iteration
/// of its parent's loop, so a buffer would hold one value per iteration for nothing;
/// instead it is recomputed in place (in the backward too), keeping memory at the size
/// of the loss's inputs. Returns each slot's parent.
pub fn local_slots(prog: &Program) -> Vec<Option<SlotId>> {
    let n = prog.slots.len();
    let mut readers: Vec<Vec<SlotId>> = vec![Vec::new(); n];
    for (k, slot) in prog.slots.iter().enumerate() {
        for node in prog.graph.reachable(&slot.roots()) {
            if let Op::Slot(t) | Op::SlotCount(t) = prog.graph.op(node) {
                let reader = SlotId(k as u16);
                if !readers[t.0 as usize].contains(&reader) {
                    readers[t.0 as usize].push(reader);
                }
            }
        }
    }
    // a slot reads itself through its logsumexp weight only in the backward; ignore that
    (0..n)
        .map(|t| {
            let tid = SlotId(t as u16);
            // the root, and the new values of a state, which the runtime reads whole
            if tid == prog.root() || prog.updates.iter().any(|u| u.slot == tid) {
                return None;
            }
            match readers[t].as_slice() {
                [parent] if *parent != tid => match &prog.slot(*parent).kind {
                    SlotKind::Reduce { var, .. } if prog.slot(tid).free.contains(var) => {
                        Some(*parent)
                    }
                    _ => None,
                },
                _ => None,
            }
        })
        .collect()
}

/// Whether a slot of this kind keeps its element count (a `mean`).
fn keeps_count(kind: &SlotKind) -> bool {
    matches!(kind, SlotKind::Reduce { op, .. } if op.keeps_count())
}

/// The local slots whose values the forward keeps for the backward: those computed once
/// per sample inside the loss's outer sum or mean over its samples (a row's logsumexp, a
/// row's mean), which the backward would otherwise compute again, pass for pass. They
/// cost one value per sample (two for a mean, with its count). Returns each stored slot's
/// offset among a sample's stored values, and how many values a sample stores.
pub fn stored_slots(prog: &Program, locals: &[Option<SlotId>]) -> (Vec<Option<usize>>, usize) {
    let root = prog.root();
    let top = prog.slot(root);
    let mut out = vec![None; prog.slots.len()];
    let SlotKind::Reduce {
        op: Red::Sum | Red::Mean,
        var,
        ..
    } = &top.kind
    else {
        return (out, 0);
    };
    if !top.free.is_empty() || !top.params.is_empty() {
        return (out, 0);
    }
    let mut width = 0;
    for (k, slot) in prog.slots.iter().enumerate() {
        if locals[k] == Some(root) && slot.free == [*var] {
            out[k] = Some(width);
            width += if keeps_count(&slot.kind) { 2 } else { 1 };
        }
    }
    (out, width)
}

fn reduce_parts(
    rt: &TokenStream,
    op: Red,
    x: &Ident,
    v: &Ident,
    params: &[Ident],
) -> (TokenStream, TokenStream, TokenStream) {
    match op {
        Red::TopKThreshold => (
            quote!(let mut __values: ::std::vec::Vec<R> = ::std::vec::Vec::new();),
            quote!(__values.push(#x);),
            quote!(#rt::topk_threshold(&__values, #(#params),*)),
        ),
        Red::Sum | Red::Mean => (
            quote!(let mut __acc: R = <R as #rt::Real>::zero();),
            quote!(__acc += #x;),
            if op == Red::Mean {
                quote!(if __count > 0 { __acc / <R as #rt::Real>::from_usize(__count) } else { <R as #rt::Real>::zero() })
            } else {
                quote!(__acc)
            },
        ),
        Red::Max => (
            quote!(let mut __acc: R = -<R as #rt::Real>::infinity();),
            quote!(if #x > __acc { __acc = #x; }),
            quote!(__acc),
        ),
        Red::Min => (
            quote!(let mut __acc: R = <R as #rt::Real>::infinity();),
            quote!(if #x < __acc { __acc = #x; }),
            quote!(__acc),
        ),
        Red::LogSumExp => (
            quote!(let mut __acc = #rt::LogSumExp::<R>::new();),
            quote!(__acc.push(#x);),
            quote!(__acc.finish()),
        ),
        Red::LogMeanExp => (
            quote!(let mut __acc = #rt::LogSumExp::<R>::new();),
            quote!(__acc.push(#x);),
            quote!(if __count > 0 { __acc.finish() - <R as #rt::Real>::ln(<R as #rt::Real>::from_usize(__count)) } else { -<R as #rt::Real>::infinity() }),
        ),
        Red::ArgMax | Red::ArgMin => {
            let better = if op == Red::ArgMax {
                quote!(#x > __best)
            } else {
                quote!(#x < __best)
            };
            let init = if op == Red::ArgMax {
                quote!(-<R as #rt::Real>::infinity())
            } else {
                quote!(<R as #rt::Real>::infinity())
            };
            (
                quote!(let mut __best: R = #init; let mut __arg: usize = 0;),
                quote!(if #better { __best = #x; __arg = #v; }),
                quote!(<R as #rt::Real>::from_usize(__arg)),
            )
        }
    }
}

/// `a * D_b + b` for the (index, dimension) pairs, outermost first; `0` when empty.
fn row_major(parts: Vec<(TokenStream, Ident)>) -> TokenStream {
    let mut out: Option<TokenStream> = None;
    for (ix, dim) in parts {
        out = Some(match out {
            None => ix,
            Some(prev) => quote!((#prev) * #dim + #ix),
        });
    }
    out.unwrap_or_else(|| quote!(0usize))
}
