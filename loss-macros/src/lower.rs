//! Lowering: the body's syn expressions → the IR, resolving names and index scopes.
//!
//! Name and scope errors are reported here, where the tokens are at hand; each goes to
//! the [`Ctxt`] and lowering carries on, so one compile shows every independent error.

use std::collections::HashMap;

use quote::{quote, ToTokens};
use syn::{BinOp, Block, Expr, ExprCall, ExprClosure, Pat, Stmt, UnOp};

use crate::ast::{HyperTy, LossDef, Output};
use crate::check;
use crate::ctxt::Ctxt;
use crate::diagnostics as diag;
use crate::family::{self, Amplification, Anchored, FamilyKind, Role};
use crate::ir::{Bin, Cmp, Domain, HyperId, Ix, NodeId, Op, Program, Red, SlotKind, Un, VarId};

/// Every function the language knows, for "did you mean".
pub const FUNCTIONS: &[&str] = &[
    "topk_threshold",
    "exp",
    "ln",
    "ln_1p",
    "sqrt",
    "abs",
    "sigmoid",
    "softplus",
    "tanh",
    "relu",
    "sq",
    "powi",
    "powf",
    "min",
    "max",
    "clamp",
    "detach",
    "select",
    "sum",
    "mean",
    "logsumexp",
    "argmax",
    "argmin",
    "round",
    "floor",
    "ceil",
    "sign",
];

/// The most index variables or slots a program may have (their ids are 16 bits).
const MAX_SLOTS: usize = 60_000;

/// A lowered value.
#[derive(Clone, Copy)]
enum Val {
    Real(NodeId),
    Bool(NodeId),
    Index(Ix),
}

/// A hyper-parameter as the body sees it.
#[derive(Clone)]
pub struct HyperSlot {
    pub name: String,
    pub ty: HyperTy,
}

struct Lowerer<'a> {
    cx: &'a Ctxt,
    family: FamilyKind,
    output: Output,
    prog: Program,
    inputs: Vec<(String, Role)>,
    hypers: Vec<HyperSlot>,
    lets: Vec<(String, NodeId)>,
    scope: Vec<(String, VarId)>,
    /// Indices whose reduction has ended, with that reduction as written (for messages).
    expired: Vec<(String, String)>,
    /// Parameters whose declaration was refused: uses are not reported again.
    poisoned: Vec<String>,
    detach_depth: usize,
    /// The family's amplification hyper-parameters; only read by roles that declared them.
    amplification: Amplification,
    prelude: HashMap<&'static str, NodeId>,
    /// Whether the size limit was reported already.
    too_large: bool,
}

/// Lowers the definition; returns the program (its last slot is the loss) and the full
/// hyper-parameter list (declared, then the family's).
pub fn lower(cx: &Ctxt, def: &LossDef) -> Option<(Program, Vec<HyperSlot>)> {
    let family = def.attr.family?;
    // without a valid output kind, still check the body (as `PerSample`, the common case)
    let output = def.output.map_or(Output::PerSample, |(o, _)| o);
    let mut hypers: Vec<HyperSlot> = def
        .hypers
        .iter()
        .map(|h| HyperSlot {
            name: h.name.to_string(),
            ty: h.ty,
        })
        .collect();
    let uses_amp = def.inputs.iter().any(|i| i.role.uses_amplification());
    for fh in family.family_hypers(uses_amp) {
        if let Some(h) = def.hypers.iter().find(|h| h.name == fh.name) {
            cx.push(diag::family_hyper_clash(
                h.name.span(),
                fh.name,
                family.name(),
            ));
        }
        hypers.push(HyperSlot {
            name: fh.name.to_string(),
            ty: if fh.flag {
                HyperTy::Flag
            } else {
                HyperTy::Real
            },
        });
    }
    // the family pushes the scale then the switch, last; ids fit a byte (see MAX_HYPERS)
    let id = |back: usize| HyperId(hypers.len().saturating_sub(back).min(255) as u8);
    let amplification = Amplification {
        scale: id(2),
        enabled: id(1),
    };
    let mut prog = Program {
        hyper_names: hypers.iter().map(|h| h.name.clone()).collect(),
        input_names: family
            .raw_inputs()
            .iter()
            .map(|r| r.name.to_string())
            .collect(),
        ..Program::default()
    };
    // user names for the raw inputs, so printed math reads like the definition
    for input in &def.inputs {
        match input.role {
            Role::Logits | Role::Targets | Role::Similarity | Role::Scores | Role::Relevance => {
                prog.input_names[input_slot(input.role)] = input.name.to_string()
            }
            Role::Labels => {
                for name in prog.input_names.iter_mut().skip(1) {
                    *name = input.name.to_string();
                }
            }
            _ => {}
        }
    }
    let mut lw = Lowerer {
        cx,
        family,
        output,
        prog,
        inputs: def
            .inputs
            .iter()
            .map(|i| (i.name.to_string(), i.role))
            .collect(),
        hypers: hypers.clone(),
        lets: Vec::new(),
        scope: Vec::new(),
        expired: Vec::new(),
        poisoned: def.poisoned.iter().map(|p| p.to_string()).collect(),
        detach_depth: 0,
        amplification,
        prelude: HashMap::new(),
        too_large: false,
    };
    let sample = match output {
        Output::PerSample => {
            let v = lw.prog.new_var("i", Domain::Samples);
            lw.scope.push(("i".into(), v));
            Some(v)
        }
        Output::Scalar => None,
    };
    let value = lw.block(&def.item.block, true)?;
    match sample {
        Some(var) => {
            lw.prog.push_slot(
                None,
                SlotKind::Reduce {
                    op: Red::Mean,
                    var,
                    filter: None,
                    body: value,
                },
            );
        }
        None => {
            lw.prog.push_slot(None, SlotKind::Let(value));
        }
    }
    if !cx.is_ok() {
        return None;
    }
    Some((lw.prog, hypers))
}

fn input_slot(role: Role) -> usize {
    match role {
        Role::Logits
        | Role::Probs
        | Role::Amplified
        | Role::SoftConfusion
        | Role::Similarity
        | Role::Scores => 0,
        Role::Targets | Role::Labels | Role::Relevance => 1,
    }
}

impl Lowerer<'_> {
    /// `{ let a = ..; let b = ..; value }`: the lets are visible until the block ends.
    /// `top`: the fn body, whose value is the loss.
    fn block(&mut self, block: &Block, top: bool) -> Option<NodeId> {
        self.block_with(block, top, Self::real)
    }

    /// A block in any position: its tail may also be a condition (`.filter(|j| { .. })`),
    /// which the caller's context then checks.
    fn block_value(&mut self, block: &Block) -> Option<Val> {
        self.block_with(block, false, Self::value)
    }

    fn block_with<T>(
        &mut self,
        block: &Block,
        top: bool,
        tail: fn(&mut Self, &Expr) -> Option<T>,
    ) -> Option<T> {
        let lets_before = self.lets.len();
        let mut result = None;
        let mut has_tail = false;
        let n = block.stmts.len();
        for (k, stmt) in block.stmts.iter().enumerate() {
            match stmt {
                Stmt::Local(local) => self.local(local),
                Stmt::Expr(expr, None) if k + 1 == n => {
                    has_tail = true;
                    result = tail(self, expr);
                }
                Stmt::Expr(expr, _) => self.statement(expr),
                Stmt::Item(item) => self
                    .cx
                    .push(diag::unsupported_syntax(item, "an item inside a loss")),
                Stmt::Macro(m) => self.cx.push(diag::unsupported_syntax(m, "a macro call")),
            }
        }
        if !has_tail {
            // the `;` to remove, or the closing brace the value should precede
            self.cx.push(match block.stmts.last() {
                Some(Stmt::Expr(_, Some(semi))) => diag::missing_tail(semi.span, top, true),
                _ => diag::missing_tail(block.brace_token.span.close(), top, false),
            });
        }
        self.lets.truncate(lets_before);
        result
    }

    /// `let name = value;`. A refused binding still binds its name, so later uses do
    /// not cascade into "cannot find" errors.
    fn local(&mut self, local: &syn::Local) {
        let mut pat = &local.pat;
        if let Pat::Type(pt) = pat {
            let (colon, ty) = (&pt.colon_token, &pt.ty);
            let annotation = quote!(#colon #ty);
            self.cx
                .push(diag::unsupported_syntax(&annotation, "a type annotation"));
            pat = &pt.pat;
        }
        let name = match pat {
            Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                if let Some(m) = &pi.mutability {
                    self.cx.push(diag::mutable_binding(m));
                }
                pi.ident.clone()
            }
            other => {
                self.cx
                    .push(diag::unsupported_syntax(other, "this pattern"));
                if let Some(init) = &local.init {
                    let _ = self.real(&init.expr);
                }
                return;
            }
        };
        let key = name.to_string();
        if self.lets.iter().any(|(n, _)| *n == key) || self.is_reserved(&key) {
            self.cx.push(diag::shadowed(name.span(), &key));
            if let Some(init) = &local.init {
                let _ = self.real(&init.expr); // for its own errors
            }
            return;
        }
        let value = match &local.init {
            None => {
                self.cx
                    .push(diag::unsupported_syntax(local, "a `let` without a value"));
                None
            }
            Some(init) => {
                if let Some((else_token, _)) = &init.diverge {
                    self.cx
                        .push(diag::unsupported_syntax(else_token, "`let .. else`"));
                }
                self.real(&init.expr)
            }
        };
        let node = match value {
            // `let v = sum(..)` names the reduction rather than copying it into a new slot
            Some(v) if self.unnamed_slot(v).is_some() => {
                if let Some(t) = self.unnamed_slot(v) {
                    self.prog.slots[t.0 as usize].name = Some(key.clone());
                }
                v
            }
            Some(v) if self.room(local) => self.prog.push_slot(Some(key.clone()), SlotKind::Let(v)),
            // reported: keep the name known so later uses don't cascade
            _ => self.prog.graph.constant(0.0),
        };
        self.lets.push((key, node));
    }

    /// The slot `node` reads, when it is a reduction no `let` has named yet.
    fn unnamed_slot(&self, node: NodeId) -> Option<crate::ir::SlotId> {
        match self.prog.graph.op(node) {
            Op::Slot(t) if self.prog.slot(*t).name.is_none() => Some(*t),
            _ => None,
        }
    }

    /// Whether the program may grow by one slot and one variable; reports once if not.
    fn room(&mut self, at: &dyn ToTokens) -> bool {
        let ok = self.prog.slots.len() < MAX_SLOTS && self.prog.vars.len() < MAX_SLOTS;
        if !ok && !self.too_large {
            self.too_large = true;
            self.cx
                .push(diag::too_many(at, "reductions and `let`s", MAX_SLOTS));
        }
        ok
    }

    /// A statement that is not a `let`: always a mistake, say which.
    fn statement(&mut self, expr: &Expr) {
        match expr {
            Expr::Assign(a) => self.cx.push(diag::mutation(
                expr,
                &a.eq_token.to_token_stream().to_string(),
            )),
            Expr::Binary(b) if is_compound_assign(&b.op) => self
                .cx
                .push(diag::mutation(expr, &b.op.to_token_stream().to_string())),
            _ => {
                self.real(expr);
            }
        }
    }

    fn is_reserved(&self, name: &str) -> bool {
        self.hypers.iter().any(|h| h.name == name)
            || self.inputs.iter().any(|(n, _)| n == name)
            || self.scope.iter().any(|(n, _)| n == name)
            || self.family.sets().iter().any(|(s, _)| *s == name)
    }

    /// Inputs, hyper-parameters, lets, then indices (innermost last), each once.
    fn names_in_scope(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let all = self
            .inputs
            .iter()
            .map(|(n, _)| n)
            .chain(self.hypers.iter().map(|h| &h.name))
            .chain(self.lets.iter().map(|(n, _)| n))
            .chain(self.scope.iter().map(|(n, _)| n));
        for n in all {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        names
    }

    fn real(&mut self, expr: &Expr) -> Option<NodeId> {
        match self.value(expr)? {
            Val::Real(n) => Some(n),
            Val::Bool(c) => {
                if self.detach_depth == 0 {
                    self.cx.push(diag::comparison_as_value(expr));
                    None
                } else {
                    Some(self.prog.graph.intern(Op::ToReal(c)))
                }
            }
            Val::Index(Ix::Var(v)) => {
                let name = self.prog.vars[v.0 as usize].name.clone();
                self.cx.push(diag::index_as_value(expr, &name));
                None
            }
            Val::Index(Ix::Label(..)) => {
                let name = self.prog.input_names[1].clone();
                self.cx.push(diag::labels_as_value(expr, &name));
                None
            }
        }
    }

    fn condition(&mut self, expr: &Expr) -> Option<NodeId> {
        match self.value(expr)? {
            Val::Bool(c) => Some(c),
            _ => {
                self.cx.push(diag::expected_condition(expr));
                None
            }
        }
    }

    fn index(&mut self, expr: &Expr) -> Option<Ix> {
        match self.value(expr)? {
            Val::Index(ix) => Some(ix),
            _ => {
                self.cx.push(diag::expected_index(expr));
                None
            }
        }
    }

    fn value(&mut self, expr: &Expr) -> Option<Val> {
        match expr {
            Expr::Lit(lit) => match crate::ast::finite_number(self.cx, expr) {
                Ok(Some(v)) => Some(Val::Real(self.prog.graph.constant(v))),
                Ok(None) => {
                    self.cx.push(diag::bad_literal(lit));
                    None
                }
                Err(()) => None,
            },
            Expr::Paren(p) => self.value(&p.expr),
            Expr::Group(g) => self.value(&g.expr),
            Expr::Path(p) => match p.path.get_ident() {
                Some(ident) => self.name(ident),
                None => {
                    self.cx.push(diag::unsupported_syntax(p, "a path"));
                    None
                }
            },
            Expr::Field(f) => self.field(f),
            Expr::Index(_) => self.indexed(expr),
            Expr::Unary(u) => match u.op {
                UnOp::Neg(_) => {
                    let a = self.real(&u.expr)?;
                    Some(Val::Real(self.prog.graph.neg(a)))
                }
                UnOp::Not(_) => {
                    let c = self.condition(&u.expr)?;
                    Some(Val::Bool(self.prog.graph.not(c)))
                }
                _ => {
                    self.cx.push(diag::unsupported_syntax(u, "a dereference"));
                    None
                }
            },
            Expr::Binary(b) => self.binary(b),
            Expr::Call(call) => self.call(call),
            Expr::If(e) => {
                let c = self.condition(&e.cond);
                let a = self.block(&e.then_branch, false);
                let Some((_, else_branch)) = &e.else_branch else {
                    self.cx.push(diag::if_without_else(&e.if_token));
                    return None;
                };
                let b = self.real(else_branch);
                let (c, a, b) = (c?, a?, b?);
                Some(Val::Real(self.prog.graph.select(c, a, b)))
            }
            Expr::Block(b) if b.label.is_none() => self.block_value(&b.block),
            Expr::MethodCall(m) => {
                let name = m.method.to_string();
                if name == "filter" {
                    self.cx.push(diag::filter_outside_reduction(&m.method));
                } else {
                    let is_function = FUNCTIONS.contains(&name.as_str());
                    self.cx
                        .push(diag::unknown_method(&m.method, &name, is_function));
                }
                None
            }
            Expr::Assign(a) => {
                let op = a.eq_token.to_token_stream().to_string();
                self.cx.push(diag::mutation(expr, &op));
                None
            }
            // loops: point at the header, not the whole body
            Expr::ForLoop(f) => {
                let (for_token, pat, in_token, iter) = (&f.for_token, &f.pat, &f.in_token, &f.expr);
                self.unsupported(&quote!(#for_token #pat #in_token #iter), "a `for` loop")
            }
            Expr::While(w) => {
                let (while_token, cond) = (&w.while_token, &w.cond);
                self.unsupported(&quote!(#while_token #cond), "a `while` loop")
            }
            Expr::Loop(l) => self.unsupported(&l.loop_token, "a `loop`"),
            Expr::Closure(_) => self.unsupported(expr, "a closure outside a reduction"),
            Expr::Macro(_) => self.unsupported(expr, "a macro call"),
            Expr::Cast(_) => self.unsupported(expr, "a cast"),
            Expr::Return(_) => self.unsupported(expr, "`return`"),
            Expr::Match(_) => self.unsupported(expr, "`match`"),
            Expr::Reference(_) => self.unsupported(expr, "a reference"),
            _ => self.unsupported(expr, "this expression"),
        }
    }

    fn unsupported(&mut self, tokens: &dyn ToTokens, what: &str) -> Option<Val> {
        self.cx.push(diag::unsupported_syntax(tokens, what));
        None
    }

    fn name(&mut self, ident: &syn::Ident) -> Option<Val> {
        let name = ident.to_string();
        if self.poisoned.contains(&name) {
            return None; // its declaration was reported
        }
        if let Some((_, node)) = self.lets.iter().rev().find(|(n, _)| *n == name) {
            return Some(Val::Real(*node));
        }
        if let Some((_, var)) = self.scope.iter().rev().find(|(n, _)| *n == name) {
            return Some(Val::Index(Ix::Var(*var)));
        }
        if let Some(pos) = self.hypers.iter().position(|h| h.name == name) {
            let id = HyperId(pos as u8);
            return Some(match self.hypers[pos].ty {
                HyperTy::Real => Val::Real(self.prog.graph.intern(Op::Hyper(id))),
                HyperTy::Flag => Val::Bool(self.prog.graph.intern(Op::Flag(id))),
            });
        }
        if let Some((_, role)) = self.inputs.iter().find(|(n, _)| *n == name) {
            self.cx
                .push(diag::input_not_indexed(ident, &name, &role.example(&name)));
            return None;
        }
        if self.family.sets().iter().any(|(s, _)| *s == name) {
            self.cx.push(diag::scalar_mismatch(ident));
            return None;
        }
        if let Some((_, binder)) = self.expired.iter().find(|(n, _)| *n == name) {
            self.cx
                .push(diag::index_outside_reduction(ident.span(), &name, binder));
            return None;
        }
        if self.output == Output::Scalar && name == "i" {
            self.cx
                .push(diag::sample_index_in_scalar(ident.span(), &name));
            return None;
        }
        let names = self.names_in_scope();
        let names: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        self.cx
            .push(diag::unknown_name(ident.span(), &name, &names));
        None
    }

    fn field(&mut self, f: &syn::ExprField) -> Option<Val> {
        let Expr::Path(base) = &*f.base else {
            self.cx
                .push(diag::unsupported_syntax(f, "a field of an expression"));
            return None;
        };
        let base_name = base
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        let field = match &f.member {
            syn::Member::Named(n) => n.to_string(),
            syn::Member::Unnamed(i) => i.index.to_string(),
        };
        let Some((_, role)) = self.inputs.iter().find(|(n, _)| *n == base_name).cloned() else {
            return self.value(&f.base).and_then(|_| {
                self.cx.push(diag::no_fields(f, &base_name));
                None
            });
        };
        if role.fields().is_empty() {
            self.cx.push(diag::no_fields(f, &base_name));
            return None;
        }
        let node = if role.fields().contains(&field.as_str()) {
            self.confusion(&field)
        } else {
            None
        };
        if node.is_none() {
            self.cx.push(diag::unknown_field(
                &f.member,
                &base_name,
                &field,
                role.fields(),
            ));
        }
        node.map(Val::Real)
    }

    /// The domain of `expr` when it is an index variable in scope (no errors reported).
    fn peek_domain(&self, expr: &Expr) -> Option<Domain> {
        let Expr::Path(p) = expr else { return None };
        let name = p.path.get_ident()?.to_string();
        let (_, var) = self.scope.iter().rev().find(|(n, _)| *n == name)?;
        Some(self.prog.vars[var.0 as usize].domain)
    }

    /// `x[a][b]..`: an input element or a label.
    fn indexed(&mut self, expr: &Expr) -> Option<Val> {
        let mut indices = Vec::new();
        let mut base = expr;
        while let Expr::Index(ix) = base {
            indices.push(&*ix.index);
            base = &ix.expr;
        }
        indices.reverse();
        let name = match base {
            Expr::Path(p) => p.path.get_ident().map(|i| i.to_string()),
            _ => None,
        };
        let Some((name, role)) =
            name.and_then(|n| self.inputs.iter().find(|(m, _)| *m == n).cloned())
        else {
            if let Expr::Path(p) = base {
                if let Some(ident) = p.path.get_ident() {
                    // report unknown names as such
                    self.name(ident)?;
                }
            }
            self.cx.push(diag::not_indexable(base));
            return None;
        };
        let axes: &[Domain] = match role {
            Role::Logits => &[Domain::Samples, Domain::Classes],
            Role::Similarity | Role::Scores | Role::Relevance => &[Domain::Samples, Domain::Refs],
            // a reference's label, `y[j]`
            Role::Labels
                if self.family == FamilyKind::Pairs
                    && matches!(
                        indices.first().map(|e| self.peek_domain(e)),
                        Some(Some(Domain::Refs))
                    ) =>
            {
                &[Domain::Refs]
            }
            Role::Probs | Role::Amplified | Role::Targets | Role::Labels => &[Domain::Samples],
            Role::SoftConfusion => {
                self.cx.push(diag::confusion_not_indexable(base, &name));
                return None;
            }
        };
        if indices.len() != axes.len() {
            self.cx
                .push(diag::wrong_rank(expr, &name, axes.len(), indices.len()));
            return None;
        }
        let mut ixs = Vec::new();
        for (axis, (ix_expr, domain)) in indices.iter().zip(axes).enumerate() {
            let ix = self.index(ix_expr)?;
            let found = match ix {
                Ix::Var(v) => self.prog.vars[v.0 as usize].domain,
                Ix::Label(..) => Domain::Classes,
            };
            if found != *domain {
                self.cx.push(diag::index_domain(
                    *ix_expr,
                    &name,
                    axis + 1,
                    domain.name(),
                    found.name(),
                ));
                return None;
            }
            ixs.push(ix);
        }
        // every input's first axis is the samples, which a label (a class) never indexes
        let Some(&Ix::Var(var)) = ixs.first() else {
            return None;
        };
        Some(match role {
            Role::Labels if self.prog.vars[var.0 as usize].domain == Domain::Refs => {
                Val::Index(Ix::Label(family::Y_REF, var))
            }
            Role::Labels => Val::Index(Ix::Label(family::Y, var)),
            Role::Similarity | Role::Scores => {
                Val::Real(self.prog.graph.intern(Op::Input(family::X, ixs)))
            }
            Role::Relevance => Val::Real(self.prog.graph.intern(Op::Input(family::Y, ixs))),
            Role::Logits => Val::Real(self.prog.graph.intern(Op::Input(family::X, ixs))),
            Role::Targets => Val::Real(self.prog.graph.intern(Op::Input(family::Y, ixs))),
            Role::Probs => Val::Real(self.probability(var)),
            Role::Amplified => Val::Real(self.amplified(var)),
            Role::SoftConfusion => return None, // refused above
        })
    }

    fn binary(&mut self, b: &syn::ExprBinary) -> Option<Val> {
        use BinOp::*;
        if is_compound_assign(&b.op) {
            self.cx
                .push(diag::mutation(b, &b.op.to_token_stream().to_string()));
            return None;
        }
        let cmp = match b.op {
            Lt(_) => Some(Cmp::Lt),
            Le(_) => Some(Cmp::Le),
            Gt(_) => Some(Cmp::Gt),
            Ge(_) => Some(Cmp::Ge),
            Eq(_) => Some(Cmp::Eq),
            Ne(_) => Some(Cmp::Ne),
            _ => None,
        };
        if let Some(cmp) = cmp {
            let (l, r) = (self.value(&b.left), self.value(&b.right));
            return match (l?, r?) {
                (Val::Index(a), Val::Index(c)) => Some(Val::Bool(
                    self.prog.graph.intern(Op::IndexCompare(cmp, a, c)),
                )),
                (Val::Real(a), Val::Real(c)) => {
                    Some(Val::Bool(self.prog.graph.intern(Op::Compare(cmp, a, c))))
                }
                _ => {
                    self.cx.push(diag::expected_condition(b));
                    None
                }
            };
        }
        if matches!(b.op, And(_) | Or(_)) {
            let (l, r) = (self.condition(&b.left), self.condition(&b.right));
            let (l, r) = (l?, r?);
            let op = if matches!(b.op, And(_)) {
                Op::And(l, r)
            } else {
                Op::Or(l, r)
            };
            return Some(Val::Bool(self.prog.graph.intern(op)));
        }
        let f = match b.op {
            Add(_) => Bin::Add,
            Sub(_) => Bin::Sub,
            Mul(_) => Bin::Mul,
            Div(_) => Bin::Div,
            _ => {
                self.cx.push(diag::unsupported_syntax(b, "this operator"));
                return None;
            }
        };
        let (l, r) = (self.real(&b.left), self.real(&b.right));
        Some(Val::Real(self.prog.graph.binary(f, l?, r?)))
    }

    fn call(&mut self, call: &ExprCall) -> Option<Val> {
        let Expr::Path(p) = &*call.func else {
            self.cx.push(diag::unsupported_syntax(
                &call.func,
                "calling an expression",
            ));
            return None;
        };
        let Some(ident) = p.path.get_ident() else {
            self.cx.push(diag::unsupported_syntax(p, "a path"));
            return None;
        };
        let name = ident.to_string();
        let args: Vec<&Expr> = call.args.iter().collect();
        if name == "topk_threshold" {
            return self.topk_threshold(call, ident, &args);
        }
        let is_reduction = args.len() == 2 && matches!(args[1], Expr::Closure(_));
        let red = match name.as_str() {
            "sum" => Some(Red::Sum),
            "mean" => Some(Red::Mean),
            "max" if is_reduction => Some(Red::Max),
            "min" if is_reduction => Some(Red::Min),
            "logsumexp" => Some(Red::LogSumExp),
            "argmax" => Some(Red::ArgMax),
            "argmin" => Some(Red::ArgMin),
            _ => None,
        };
        if let Some(op) = red {
            if !is_reduction {
                self.cx.push(diag::reduction_needs_closure(call, &name));
                return None;
            }
            if matches!(op, Red::ArgMax | Red::ArgMin) && self.detach_depth == 0 {
                check::non_differentiable(self.cx, ident, &name);
                // still check the rest, as if detached (as the fix will be)
                self.detach_depth += 1;
                let _ = self.reduction(op, args[0], args[1]);
                self.detach_depth -= 1;
                return None;
            }
            return self.reduction(op, args[0], args[1]);
        }
        let unary = match name.as_str() {
            "exp" => Some(Un::Exp),
            "ln" => Some(Un::Ln),
            "ln_1p" => Some(Un::Ln1p),
            "sqrt" => Some(Un::Sqrt),
            "abs" => Some(Un::Abs),
            "sigmoid" => Some(Un::Sigmoid),
            "softplus" => Some(Un::Softplus),
            "tanh" => Some(Un::Tanh),
            "relu" => Some(Un::Relu),
            "round" => Some(Un::Round),
            "floor" => Some(Un::Floor),
            "ceil" => Some(Un::Ceil),
            "sign" => Some(Un::Sign),
            _ => None,
        };
        if let Some(f) = unary {
            let [x] = self.args::<1>(call, &name, "one argument")?;
            if !f.differentiable() && self.detach_depth == 0 {
                check::non_differentiable(self.cx, ident, &name);
                self.detach_depth += 1;
                let _ = self.real(x);
                self.detach_depth -= 1;
                return None;
            }
            let x = self.real(x)?;
            return Some(Val::Real(self.prog.graph.unary(f, x)));
        }
        match name.as_str() {
            "sq" => {
                let [x] = self.args::<1>(call, &name, "one argument")?;
                let x = self.real(x)?;
                Some(Val::Real(self.prog.graph.intern(Op::Powi(x, 2))))
            }
            "powi" => {
                let [x, n_expr] = self.args::<2>(call, &name, "two arguments")?;
                let x = self.real(x);
                let n = match n_expr {
                    Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Int(i),
                        ..
                    }) => i.base10_parse::<i32>().ok(),
                    Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => match &*u.expr {
                        Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Int(i),
                            ..
                        }) => i.base10_parse::<i32>().ok().map(|v| -v),
                        _ => None,
                    },
                    _ => None,
                };
                let Some(n) = n else {
                    self.cx.push(diag::powi_exponent(n_expr));
                    return None;
                };
                Some(Val::Real(self.prog.graph.intern(Op::Powi(x?, n))))
            }
            "powf" | "min" | "max" => {
                let [a, b] = self.args::<2>(call, &name, "two arguments")?;
                let (a, b) = (self.real(a), self.real(b));
                let f = match name.as_str() {
                    "powf" => Bin::Powf,
                    "min" => Bin::Min,
                    _ => Bin::Max,
                };
                Some(Val::Real(self.prog.graph.binary(f, a?, b?)))
            }
            "clamp" => {
                let [x, lo, hi] = self.args::<3>(call, &name, "three arguments")?;
                let (x, lo, hi) = (self.real(x), self.real(lo), self.real(hi));
                Some(Val::Real(self.prog.graph.intern(Op::Clamp(x?, lo?, hi?))))
            }
            "detach" => {
                let [x] = self.args::<1>(call, &name, "one argument")?;
                self.detach_depth += 1;
                let x = self.real(x);
                self.detach_depth -= 1;
                Some(Val::Real(self.prog.graph.intern(Op::Detach(x?))))
            }
            "select" => {
                let [c, a, b] = self.args::<3>(call, &name, "three arguments")?;
                let (c, a, b) = (self.condition(c), self.real(a), self.real(b));
                Some(Val::Real(self.prog.graph.select(c?, a?, b?)))
            }
            _ => {
                self.cx
                    .push(diag::unknown_function(ident.span(), &name, FUNCTIONS));
                // still check the arguments, to report their errors too
                for a in args {
                    if !matches!(a, Expr::Closure(_)) {
                        let _ = self.value(a);
                    }
                }
                None
            }
        }
    }

    fn args<'e, const N: usize>(
        &mut self,
        call: &'e ExprCall,
        name: &str,
        expected: &str,
    ) -> Option<[&'e Expr; N]> {
        let args: Vec<&Expr> = call.args.iter().collect();
        match <[&Expr; N]>::try_from(args) {
            Ok(a) => Some(a),
            Err(_) => {
                self.cx
                    .push(diag::arity(call, name, expected, &usage(name)));
                None
            }
        }
    }

    /// `topk_threshold(set, |v| x, K, α, iterations)`: a runtime reduction, only under
    /// `detach` (its derivative comes from the implicit-function theorem, which the loss
    /// writes itself; see `dexml_soft_topk`).
    fn topk_threshold(
        &mut self,
        call: &ExprCall,
        ident: &syn::Ident,
        args: &[&Expr],
    ) -> Option<Val> {
        let name = "topk_threshold";
        debug_assert_eq!(args.len(), call.args.len());
        let [set, body, k, alpha, iterations] = self.args::<5>(call, name, "five arguments")?;
        if self.detach_depth == 0 {
            check::non_differentiable(self.cx, ident, name);
            return None;
        }
        let params = [self.real(k), self.real(alpha), self.real(iterations)];
        let node = self.reduction(Red::TopKThreshold, set, body)?;
        let params: Vec<NodeId> = params.into_iter().collect::<Option<_>>()?;
        // the reduction was pushed last; attach its arguments
        let Val::Real(n) = node else { return None };
        let Op::Slot(t) = *self.prog.graph.op(n) else {
            return None;
        };
        let extra = self.prog.free_vars(&params);
        let slot = &mut self.prog.slots[t.0 as usize];
        slot.params = params;
        for v in extra {
            if !slot.free.contains(&v) {
                slot.free.push(v);
            }
        }
        slot.free.sort();
        Some(node)
    }

    /// `op(set[.filter(|v| cond)], |v| body)`.
    fn reduction(&mut self, op: Red, set: &Expr, body: &Expr) -> Option<Val> {
        let (domain, filter, anchored) = self.set(set)?;
        let Expr::Closure(body) = body else {
            self.cx.push(diag::reduction_needs_closure(body, op.name()));
            return None;
        };
        let name = closure_param(self.cx, body)?;
        if !self.room(body) {
            return None;
        }
        let var = self.prog.new_var(&name, domain);
        // a bad filter does not stop the body from being checked
        let filter = match filter {
            Some(fc) => match closure_param(self.cx, fc) {
                Some(fname) if fname != name => {
                    self.cx
                        .push(diag::filter_index_mismatch(&fc.inputs, &fname, &name));
                    Err(())
                }
                Some(_) => {
                    self.scope.push((name.clone(), var));
                    let c = self.condition(&fc.body);
                    self.scope.pop();
                    c.map(Some).ok_or(())
                }
                None => Err(()),
            },
            None => Ok(None),
        };
        self.scope.push((name.clone(), var));
        let value = self.real(&body.body);
        self.scope.pop();
        if !self.scope.iter().any(|(n, _)| *n == name) {
            let filtered = if matches!(filter, Ok(None)) {
                ""
            } else {
                ".filter(..)"
            };
            let binder = format!("{}({}{filtered}, |{name}| ..)", op.name(), domain.name());
            self.expired.retain(|(n, _)| *n != name);
            self.expired.push((name, binder));
        }
        let filter = filter.ok()?;
        let filter = match anchored {
            Some((rule, anchor)) => {
                let own = self.anchored_filter(rule, anchor, var);
                Some(match filter {
                    Some(user) => self.prog.graph.intern(Op::And(own, user)),
                    None => own,
                })
            }
            None => filter,
        };
        let node = self.prog.push_slot(
            None,
            SlotKind::Reduce {
                op,
                var,
                filter,
                body: value?,
            },
        );
        Some(Val::Real(node))
    }

    /// The condition that makes `elem` a member of the anchored set `rule(anchor)`.
    fn anchored_filter(&mut self, rule: Anchored, anchor: VarId, elem: VarId) -> NodeId {
        let g = &mut self.prog.graph;
        let same = |g: &mut crate::ir::Graph, cmp| {
            g.intern(Op::IndexCompare(
                cmp,
                Ix::Label(family::Y, anchor),
                Ix::Label(family::Y_REF, elem),
            ))
        };
        let relevance = |g: &mut crate::ir::Graph, cmp| {
            let r = g.intern(Op::Input(family::Y, vec![Ix::Var(anchor), Ix::Var(elem)]));
            let half = g.constant(0.5);
            g.intern(Op::Compare(cmp, r, half))
        };
        let not_self = |g: &mut crate::ir::Graph| {
            let exclude = g.intern(Op::ExcludeSelf);
            let itself = g.intern(Op::IndexCompare(Cmp::Eq, Ix::Var(anchor), Ix::Var(elem)));
            let self_pair = g.intern(Op::And(exclude, itself));
            g.not(self_pair)
        };
        match rule {
            Anchored::SameLabel => {
                let label = same(g, Cmp::Eq);
                let other = not_self(g);
                g.intern(Op::And(label, other))
            }
            Anchored::Others => not_self(g),
            Anchored::OtherLabel => same(g, Cmp::Ne),
            Anchored::Relevant => relevance(g, Cmp::Gt),
            Anchored::Irrelevant => relevance(g, Cmp::Lt),
        }
    }

    #[allow(clippy::type_complexity)] // reason: a private triple, named at its one use
    fn set<'e>(
        &mut self,
        expr: &'e Expr,
    ) -> Option<(Domain, Option<&'e ExprClosure>, Option<(Anchored, VarId)>)> {
        match expr {
            Expr::Call(call) => {
                let name = match &*call.func {
                    Expr::Path(p) => p.path.get_ident().map(|i| i.to_string()),
                    _ => None,
                };
                let Some(name) = name else {
                    self.cx.push(diag::bad_set(expr));
                    return None;
                };
                let Some((_, rule)) = self.family.anchored_sets().iter().find(|(n, _)| *n == name)
                else {
                    let known = self.set_names();
                    let known: Vec<&str> = known.iter().map(|s| s.as_str()).collect();
                    self.cx.push(diag::unknown_set(
                        syn::spanned::Spanned::span(&call.func),
                        &name,
                        &known,
                    ));
                    return None;
                };
                let [anchor] = self.args::<1>(call, &name, "one anchor index")?;
                match self.index(anchor)? {
                    Ix::Var(v) if self.prog.vars[v.0 as usize].domain == Domain::Samples => {
                        Some((Domain::Refs, None, Some((*rule, v))))
                    }
                    _ => {
                        self.cx.push(diag::expected_index(anchor));
                        None
                    }
                }
            }
            Expr::Path(p) => {
                let Some(ident) = p.path.get_ident() else {
                    self.cx.push(diag::bad_set(p));
                    return None;
                };
                let name = ident.to_string();
                match self.family.sets().iter().find(|(s, _)| *s == name) {
                    Some((_, d)) => Some((*d, None, None)),
                    None => {
                        let known = self.set_names();
                        let known: Vec<&str> = known.iter().map(|s| s.as_str()).collect();
                        self.cx.push(diag::unknown_set(ident.span(), &name, &known));
                        None
                    }
                }
            }
            Expr::MethodCall(m) if m.method == "filter" => {
                let (domain, inner, anchored) = self.set(&m.receiver)?;
                if inner.is_some() {
                    self.cx
                        .push(diag::unsupported_syntax(expr, "a second `.filter`"));
                    return None;
                }
                match m.args.first() {
                    Some(Expr::Closure(c)) if m.args.len() == 1 => {
                        Some((domain, Some(c), anchored))
                    }
                    _ => {
                        self.cx.push(diag::arity(
                            m,
                            "filter",
                            "one closure",
                            "classes.filter(|k| cond)",
                        ));
                        None
                    }
                }
            }
            Expr::MethodCall(m) => {
                let name = m.method.to_string();
                self.cx.push(diag::unknown_method(&m.method, &name, false));
                None
            }
            other => {
                self.cx.push(diag::bad_set(other));
                None
            }
        }
    }

    /// The family's index sets, as a user writes them (`samples`, `pos(i)`).
    fn set_names(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .family
            .sets()
            .iter()
            .map(|(s, _)| s.to_string())
            .collect();
        out.extend(
            self.family
                .anchored_sets()
                .iter()
                .map(|(s, _)| format!("{s}(i)")),
        );
        out
    }

    // ----- the binary family's prelude -----

    /// `p[i]`: the input itself, or σ of it when the batch holds logits.
    fn probability(&mut self, var: VarId) -> NodeId {
        let g = &mut self.prog.graph;
        let x = g.intern(Op::Input(family::X, vec![Ix::Var(var)]));
        let sx = g.unary(Un::Sigmoid, x);
        let from_logits = g.intern(Op::FromLogits);
        g.select(from_logits, sx, x)
    }

    /// `a[i] = A(p[i]) = σ(L·(p[i] − ½))`, or `p[i]` when amplification is off.
    fn amplified(&mut self, var: VarId) -> NodeId {
        let amp = self.amplification;
        let p = self.probability(var);
        let g = &mut self.prog.graph;
        let half = g.constant(0.5);
        let centred = g.sub(p, half);
        let scale = g.intern(Op::Hyper(amp.scale));
        let scaled = g.mul(scale, centred);
        let a = g.unary(Un::Sigmoid, scaled);
        let on = g.intern(Op::Flag(amp.enabled));
        g.select(on, a, p)
    }

    /// A sum over the batch, materialised once per definition.
    fn batch_sum(
        &mut self,
        key: &'static str,
        term: impl FnOnce(&mut Self, VarId) -> NodeId,
    ) -> NodeId {
        if let Some(&n) = self.prelude.get(key) {
            return n;
        }
        let var = self.prog.new_var("j", Domain::Samples);
        let body = term(self, var);
        let node = self.prog.push_slot(
            Some(key.to_string()),
            SlotKind::Reduce {
                op: Red::Sum,
                var,
                filter: None,
                body,
            },
        );
        self.prelude.insert(key, node);
        node
    }

    /// A field of the soft confusion matrix (`None` for a name that is not one).
    fn confusion(&mut self, field: &str) -> Option<NodeId> {
        let tp = |s: &mut Self| {
            s.batch_sum("TP", |s, j| {
                let a = s.amplified(j);
                let y = s.prog.graph.intern(Op::Input(family::Y, vec![Ix::Var(j)]));
                s.prog.graph.mul(y, a)
            })
        };
        let sum_a = |s: &mut Self| s.batch_sum("ΣA", |s, j| s.amplified(j));
        let pos = |s: &mut Self| {
            s.batch_sum("P", |s, j| {
                s.prog.graph.intern(Op::Input(family::Y, vec![Ix::Var(j)]))
            })
        };
        let n = self.prog.graph.intern(Op::Size(Domain::Samples));
        Some(match field {
            "tp" => tp(self),
            "fp" => {
                let (sa, tp) = (sum_a(self), tp(self));
                self.prog.graph.sub(sa, tp)
            }
            "fn_" => {
                let (p, tp) = (pos(self), tp(self));
                self.prog.graph.sub(p, tp)
            }
            "tn" => {
                let (p, sa, tp) = (pos(self), sum_a(self), tp(self));
                let g = &mut self.prog.graph;
                let a = g.sub(n, p);
                let b = g.sub(a, sa);
                g.add(b, tp)
            }
            "n" => n,
            "pos" => pos(self),
            "neg" => {
                let p = pos(self);
                self.prog.graph.sub(n, p)
            }
            _ => return None,
        })
    }
}

/// A correct call of the function `name`, for arity messages.
fn usage(name: &str) -> String {
    match name {
        "powi" => "powi(x, 2)".into(),
        "powf" => "powf(x, y)".into(),
        "min" | "max" => format!("{name}(a, b)` or `{name}(classes, |k| ..)"),
        "clamp" => "clamp(x, lo, hi)".into(),
        "select" => "select(cond, a, b)".into(),
        "pos" | "neg" | "others" | "relevant" | "irrelevant" => format!("{name}(i)"),
        "topk_threshold" => {
            "detach(topk_threshold(docs, |d| s[i][d], k, alpha, iterations))".into()
        }
        _ => format!("{name}(x)"),
    }
}

fn closure_param(cx: &Ctxt, c: &ExprClosure) -> Option<String> {
    if c.inputs.len() == 1 {
        if let Pat::Ident(pi) = &c.inputs[0] {
            return Some(pi.ident.to_string());
        }
    }
    cx.push(diag::closure_params(if c.inputs.is_empty() {
        c as &dyn quote::ToTokens
    } else {
        &c.inputs
    }));
    None
}

fn is_compound_assign(op: &BinOp) -> bool {
    use BinOp::*;
    matches!(
        op,
        AddAssign(_)
            | SubAssign(_)
            | MulAssign(_)
            | DivAssign(_)
            | RemAssign(_)
            | BitXorAssign(_)
            | BitAndAssign(_)
            | BitOrAssign(_)
            | ShlAssign(_)
            | ShrAssign(_)
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proc_macro2::TokenStream;
    use quote::quote;

    /// Parses and lowers `#[loss(args)] item`: the program, or every message in order.
    pub(crate) fn lower_src(args: TokenStream, item: syn::ItemFn) -> Result<Program, Vec<String>> {
        let cx = Ctxt::new();
        let lowered = LossDef::from_syn(&cx, args, item.to_token_stream())
            .ok()
            .and_then(|def| lower(&cx, &def));
        match (cx.messages(), lowered) {
            (msgs, _) if !msgs.is_empty() => Err(msgs),
            (_, Some((prog, _))) => Ok(prog),
            (_, None) => Err(vec!["lowering failed without a message".into()]),
        }
    }

    fn lower_ok(args: TokenStream, item: syn::ItemFn) -> Program {
        match lower_src(args, item) {
            Ok(p) => p,
            Err(msgs) => panic!("unexpected errors: {msgs:#?}"),
        }
    }

    fn lower_err(args: TokenStream, item: syn::ItemFn) -> Vec<String> {
        match lower_src(args, item) {
            Ok(p) => panic!("expected errors, got {}", p.slot_definition(p.root())),
            Err(msgs) => msgs,
        }
    }

    /// The loss, as math.
    fn root(p: &Program) -> String {
        p.slot_definition(p.root())
    }

    /// Each named slot as `name = definition`.
    fn named_slots(p: &Program) -> Vec<String> {
        (0..p.slots.len())
            .filter_map(|s| {
                let id = crate::ir::SlotId(s as u16);
                let name = p.slot(id).name.as_ref()?;
                Some(format!("{name} = {}", p.slot_definition(id)))
            })
            .collect()
    }

    #[test]
    fn cross_entropy_is_the_mean_of_logsumexp_minus_the_label_logit() {
        let p = lower_ok(
            quote!(logits),
            syn::parse_quote! {
                fn ce(z: Logits, y: Labels) -> PerSample {
                    logsumexp(classes, |k| z[i][k]) - z[i][y[i]]
                }
            },
        );
        assert_eq!(
            root(&p),
            "mean_{i ∈ samples} (logsumexp_{k ∈ classes} z[i][k] − z[i][y[i]])"
        );
        // the inner reduction is materialised over the sample index it keeps
        assert_eq!(p.slots.len(), 2);
        assert_eq!(p.slots[0].free.len(), 1);
        assert_eq!(p.vars[p.slots[0].free[0].0 as usize].name, "i");
        // lowering keeps the written form; simplify/ makes it stable later
        let p = lower_ok(
            quote!(logits),
            syn::parse_quote! {
                fn ce(z: Logits, y: Labels) -> PerSample {
                    ln(sum(classes, |k| exp(z[i][k]))) - z[i][y[i]]
                }
            },
        );
        assert_eq!(
            root(&p),
            "mean_{i ∈ samples} (ln(sum_{k ∈ classes} exp(z[i][k])) − z[i][y[i]])"
        );
    }

    #[test]
    fn soft_confusion_fields_are_shared_batch_sums() {
        let p = lower_ok(
            quote!(binary),
            syn::parse_quote! {
                fn f1(cm: SoftConfusion, #[hyper(default = 1e-9)] eps: f64) -> Scalar {
                    1.0 - 2.0 * cm.tp / (2.0 * cm.tp + cm.fp + cm.fn_ + eps)
                }
            },
        );
        let amplified = "(sigmoid(amplification·((sigmoid(x[j]) if from_logits else x[j]) − 0.5)) if amplify else (sigmoid(x[j]) if from_logits else x[j]))";
        assert_eq!(
            named_slots(&p),
            [
                format!("TP = sum_{{j ∈ samples}} (y[j]·{amplified})"),
                format!("ΣA = sum_{{j ∈ samples}} {amplified}"),
                "P = sum_{j ∈ samples} y[j]".to_string(),
            ]
        );
        // fp = ΣA − TP, fn = P − TP; each sum is computed once however often it is read
        assert_eq!(
            root(&p),
            "1 − ((2·TP)/((((2·TP) + (ΣA − TP)) + (P − TP)) + eps))"
        );
        assert_eq!(p.slots.len(), 4);
        // the family adds its amplification hyper-parameters after the declared ones
        assert_eq!(p.hyper_names, ["eps", "amplification", "amplify"]);
    }

    #[test]
    fn the_other_confusion_fields() {
        let p = lower_ok(
            quote!(binary),
            syn::parse_quote! {
                fn counts(cm: SoftConfusion) -> Scalar {
                    cm.tn * cm.n + cm.pos / cm.neg
                }
            },
        );
        assert_eq!(root(&p), "((((N − P) − ΣA) + TP)·N) + (P/(N − P))");
    }

    #[test]
    fn probabilities_follow_the_input_kind_and_targets_are_read() {
        let p = lower_ok(
            quote!(binary),
            syn::parse_quote! {
                fn bce(p: Probs, y: Targets) -> PerSample {
                    -(y[i] * ln(p[i]) + (1.0 - y[i]) * ln(1.0 - p[i]))
                }
            },
        );
        let prob = "(sigmoid(x[i]) if from_logits else x[i])";
        assert_eq!(
            root(&p),
            format!("mean_{{i ∈ samples}} (−((y[i]·ln({prob})) + ((1 − y[i])·ln(1 − {prob}))))")
        );
        // no amplification input: no amplification hyper-parameters
        assert!(p.hyper_names.is_empty());
    }

    #[test]
    fn filters_keep_their_condition() {
        let p = lower_ok(
            quote!(logits),
            syn::parse_quote! {
                fn hardest(z: Logits, y: Labels) -> PerSample {
                    max(classes.filter(|k| k != y[i]), |k| z[i][k])
                        + sum(classes.filter(|c| c != y[i] && !(z[i][c] < 0.0)), |c| z[i][c])
                }
            },
        );
        assert_eq!(
            root(&p),
            "mean_{i ∈ samples} (max_{k ∈ classes : k ≠ y[i]} z[i][k] + sum_{c ∈ classes : (c ≠ y[i]) ∧ ¬(z[i][c] < 0)} z[i][c])"
        );
    }

    #[test]
    fn hyper_parameters_lets_select_and_detach() {
        let p = lower_ok(
            quote!(logits),
            syn::parse_quote! {
                fn margin(
                    z: Logits,
                    y: Labels,
                    #[hyper(default = 0.5, nonnegative)] m: f64,
                    #[hyper(default = true)] hinge: bool,
                ) -> PerSample {
                    let mu = mean(classes, |k| z[i][k]);
                    let gap = m + mu - z[i][y[i]];
                    let out = if hinge { relu(gap) } else { softplus(gap) };
                    out + detach(mu) * 0.0
                }
            },
        );
        assert_eq!(p.hyper_names, ["m", "hinge"]);
        assert_eq!(
            named_slots(&p),
            [
                "mu = mean_{k ∈ classes} z[i][k]",
                "gap = (m + mu[i]) − z[i][y[i]]",
                "out = (relu(gap[i]) if hinge else softplus(gap[i]))",
            ]
        );
        assert_eq!(root(&p), "mean_{i ∈ samples} (out[i] + (detach(mu[i])·0))");
    }

    #[test]
    fn a_scalar_loss_reduces_the_batch_itself() {
        let p = lower_ok(
            quote!(binary),
            syn::parse_quote! {
                fn total(p: Probs, y: Targets) -> Scalar {
                    sum(samples, |j| sq(p[j] - y[j])) / 2.0
                }
            },
        );
        assert_eq!(
            root(&p),
            "sum_{j ∈ samples} ((sigmoid(x[j]) if from_logits else x[j]) − y[j])^2/2"
        );
    }

    #[test]
    fn every_independent_error_in_source_order() {
        let msgs = lower_err(
            quote!(logits),
            syn::parse_quote! {
                fn many(z: Logits, y: Labels, #[hyper(default = 0.0, positive)] scale: f64) -> PerSample {
                    let lse = logsumexp(clases, |k| z[i][k]);
                    let hard = max(classes, |k| z[i][k] * scle);
                    let snapped = round(hard);
                    lse - z[i][y[i]] + exq(snapped)
                }
            },
        );
        let starts = [
            "the default `0.0` of `scale` violates `positive`",
            "unknown index set `clases`; help: did you mean `classes`?",
            "cannot find `scle` in this loss; help: did you mean `scale`?",
            "`round` is not differentiable",
            "unknown function `exq`; help: did you mean `exp`?",
        ];
        assert_eq!(msgs.len(), starts.len(), "{msgs:#?}");
        for (m, s) in msgs.iter().zip(starts) {
            assert!(m.starts_with(s), "{m:?} should start with {s:?}");
        }
    }

    #[test]
    fn refused_declarations_do_not_cascade() {
        // an input the family does not provide, then used
        let msgs = lower_err(
            quote!(binary),
            syn::parse_quote! {
                fn f(z: Logits, y: Targets) -> PerSample { y[i] * z[i][0] }
            },
        );
        assert_eq!(msgs.len(), 1, "{msgs:#?}");
        assert!(msgs[0].starts_with("the `binary` family provides no input of type `Logits`"));
        // a hyper-parameter without a default, then used twice
        let msgs = lower_err(
            quote!(logits),
            syn::parse_quote! {
                fn f(z: Logits, y: Labels, #[hyper(positive)] s: f64) -> PerSample {
                    logsumexp(classes, |k| s * z[i][k]) - s * z[i][y[i]]
                }
            },
        );
        assert_eq!(msgs, ["hyper-parameter `s` has no default; help: add `default = ..` to its `#[hyper(..)]`"]);
        // refused `let`s still bind their name
        let msgs = lower_err(
            quote!(logits),
            syn::parse_quote! {
                fn f(z: Logits, y: Labels) -> PerSample {
                    let mut a = z[i][y[i]];
                    let b: f64 = a * 2.0;
                    let c = exq(b);
                    a + b + c
                }
            },
        );
        assert_eq!(msgs.len(), 3, "{msgs:#?}");
        assert!(msgs[0].starts_with("`let mut` is not supported"));
        assert!(msgs[1].starts_with("a type annotation is not supported"));
        assert!(msgs[2].starts_with("unknown function `exq`"));
    }

    #[test]
    fn an_unknown_output_kind_still_checks_the_body() {
        let msgs = lower_err(
            quote!(logits),
            syn::parse_quote! {
                fn f(z: Logits, y: Labels) -> PerAnchor { exq(z[i][y[i]]) }
            },
        );
        assert_eq!(msgs.len(), 2, "{msgs:#?}");
        assert_eq!(msgs[0], "the `logits` family does not accept output kind `PerAnchor`; help: use `Scalar` or `PerSample`");
        assert!(msgs[1].starts_with("unknown function `exq`"));
    }

    #[test]
    fn scopes_of_indices_and_lets() {
        let msgs = lower_err(
            quote!(logits),
            syn::parse_quote! {
                fn f(z: Logits, y: Labels) -> PerSample {
                    let total = sum(classes, |k| exp(z[i][k]));
                    ln(total) - z[i][k]
                }
            },
        );
        assert_eq!(msgs, ["index `k` is used outside the reduction that binds it; help: `k` exists only inside `sum(classes, |k| ..)`, so use it there"]);
        // a `let` inside a block ends with it
        let msgs = lower_err(
            quote!(logits),
            syn::parse_quote! {
                fn f(z: Logits, y: Labels) -> PerSample {
                    let a = { let t = z[i][y[i]]; t * t };
                    a + t
                }
            },
        );
        assert_eq!(msgs.len(), 1, "{msgs:#?}");
        assert!(
            msgs[0].starts_with("cannot find `t` in this loss"),
            "{msgs:#?}"
        );
        // `i` is the sample index of a `PerSample` loss only
        let msgs = lower_err(
            quote!(binary),
            syn::parse_quote! {
                fn f(p: Probs) -> Scalar { p[i] }
            },
        );
        assert!(
            msgs[0].starts_with("index `i` is not bound in a `Scalar` loss"),
            "{msgs:#?}"
        );
        // names may not shadow an index, an input, a set or a `let`
        let msgs = lower_err(
            quote!(logits),
            syn::parse_quote! {
                fn f(z: Logits, y: Labels) -> PerSample {
                    let i = 1.0;
                    let classes = 2.0;
                    let a = 1.0;
                    let a = 2.0;
                    z[i][y[i]]
                }
            },
        );
        assert_eq!(
            msgs,
            [
                "`i` is already defined; help: choose a new name",
                "`classes` is already defined; help: choose a new name",
                "`a` is already defined; help: choose a new name",
            ]
        );
    }

    #[test]
    fn the_body_must_end_with_its_value() {
        let msgs = lower_err(
            quote!(logits),
            syn::parse_quote! {
                fn f(z: Logits, y: Labels) -> PerSample { z[i][y[i]]; }
            },
        );
        assert_eq!(msgs, ["the loss body must end with an expression; help: remove this `;` so that the last expression is the loss"]);
        let msgs = lower_err(
            quote!(logits),
            syn::parse_quote! {
                fn f(z: Logits, y: Labels) -> PerSample { let a = z[i][y[i]]; }
            },
        );
        assert!(
            msgs[0].starts_with("the loss body must end with an expression; help: end the block")
        );
    }

    #[test]
    fn misuse_of_values_indices_and_sets() {
        let cases: Vec<(syn::ItemFn, &str)> = vec![
            (
                syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { clamp(z[i][y[i]], 0.0) } },
                "`clamp` takes three arguments; help: write `clamp(x, lo, hi)`",
            ),
            (
                syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { z[i][y[i]].exp() } },
                "unknown method `exp`; help: call it as a function: `exp(x)`",
            ),
            (
                syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { z[i][y[i]].foo() } },
                "unknown method `foo`",
            ),
            (
                syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { sum(classes, |k| k) } },
                "index `k` is used as a number",
            ),
            (
                syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { y[i] } },
                "labels `y[..]` are class indices, not numbers",
            ),
            (
                syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { z[y[i]][i] } },
                "axis 1 of `z` ranges over samples, but this index ranges over classes",
            ),
            (
                syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { z[i] } },
                "`z` takes 2 index(es) but 1 were given",
            ),
            (
                syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { z } },
                "input `z` is a tensor and must be indexed; help: write `z[i][k]`",
            ),
            (
                syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { classes } },
                "expected a number here, found an index set",
            ),
            (
                syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { classes.filter(|k| k != y[i]) } },
                "`.filter(..)` selects the set of a reduction",
            ),
            (
                syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { sum(classes, z[i][0]) } },
                "`sum` over a set takes a closure",
            ),
            (
                syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { sum(classes.filter(|c| c != y[i]), |k| z[i][k]) } },
                "the filter binds `c` but the reduction binds `k`",
            ),
            (
                syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { powi(z[i][y[i]], 1.5) } },
                "the exponent of `powi` must be an integer literal",
            ),
            (
                syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { z[i][y[i]] * 1e999 } },
                "this number does not fit in an `f64`",
            ),
            (
                syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { z[i][y[i]] * "2" } },
                "only number literals are supported",
            ),
            (
                syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { select(z[i][y[i]], 1.0, 0.0) } },
                "expected a condition here",
            ),
            (
                syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { z.tp } },
                "`z` has no fields",
            ),
            (
                syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { if z[i][y[i]] > 0.0 { 1.0 } } },
                "`if` without `else` has no value",
            ),
            (
                syn::parse_quote! { fn f(z: Logits, y: Labels) -> PerSample { loop {} } },
                "a `loop` is not supported in a loss",
            ),
        ];
        for (item, expected) in cases {
            let msgs = lower_err(quote!(logits), item);
            assert_eq!(msgs.len(), 1, "{msgs:#?}");
            assert!(
                msgs[0].starts_with(expected),
                "{:?} should start with {expected:?}",
                msgs[0]
            );
        }
    }

    #[test]
    fn confusion_misuse_and_family_hyper_clash() {
        let msgs = lower_err(
            quote!(binary),
            syn::parse_quote! {
                fn f(cm: SoftConfusion, #[hyper(default = 1.0)] amplification: f64) -> Scalar {
                    cm.tpp + cm[i]
                }
            },
        );
        assert_eq!(msgs.len(), 3, "{msgs:#?}");
        assert!(
            msgs[0].starts_with("`amplification` is a hyper-parameter the `binary` family adds")
        );
        assert!(msgs[1].starts_with("`cm` has no field `tpp`; help: did you mean `tp`?"));
        assert!(msgs[2].starts_with("`cm` is the batch's soft confusion matrix"));
    }

    /// Odd inputs give errors, never a panic.
    #[test]
    fn never_panics_on_odd_input() {
        let items: Vec<(TokenStream, TokenStream)> = vec![
            (
                quote!(logits),
                quote!(
                    fn __(z: Logits) -> PerSample {
                        0.0
                    }
                ),
            ),
            (
                quote!(logits),
                quote!(
                    fn r#match(z: Logits) -> PerSample {
                        0.0
                    }
                ),
            ),
            (
                quote!(logits),
                quote!(
                    fn f(r#type: Logits) -> PerSample {
                        0.0
                    }
                ),
            ),
            (
                quote!(logits),
                quote!(
                    fn f(#[hyper(default = 1e999)] a: f64) -> PerSample {
                        a
                    }
                ),
            ),
            (
                quote!(logits),
                quote!(
                    fn f(#[hyper(default = 1.0, range(0, 1e999))] a: f64) -> PerSample {
                        a
                    }
                ),
            ),
            (
                quote!(logits),
                quote!(
                    fn f(#[hyper(default = 1.0, range())] a: f64) -> PerSample {
                        a
                    }
                ),
            ),
            (
                quote!(logits),
                quote!(
                    fn f(#[hyper(default = 1.0, bogus(1, 2), positive)] a: f64) -> PerSample {
                        a
                    }
                ),
            ),
            (
                quote!(logits),
                quote!(
                    fn f(#[hyper] a: f64) -> PerSample {
                        a
                    }
                ),
            ),
            (
                quote!(logits),
                quote!(
                    fn f(#[hyper(default = "x")] a: bool) -> PerSample {
                        0.0
                    }
                ),
            ),
            (
                quote!(logits),
                quote!(
                    fn f() -> PerSample {}
                ),
            ),
            (
                quote!(logits),
                quote!(
                    fn f() {}
                ),
            ),
            (
                quote!(logits),
                quote!(
                    fn f(self) -> PerSample {
                        0.0
                    }
                ),
            ),
            (
                quote!(logits),
                quote!(
                    fn f((a, b): Logits) -> PerSample {
                        0.0
                    }
                ),
            ),
            (
                quote!(logits),
                quote!(
                    async unsafe extern "C" fn f<T>(z: Logits) -> PerSample
                    where
                        T: Copy,
                    {
                        0.0
                    }
                ),
            ),
            (
                quote!(logits),
                quote!(
                    fn f(z: &Logits, y: Labels, y2: Labels) -> Vec<f64> {
                        0.0
                    }
                ),
            ),
            (
                quote!(logits),
                quote!(
                    fn f(z: Logits, y: Labels) -> PerSample {
                        z[i][y[y[i]]]
                            + z[i][k]
                            + z[0][0]
                            + z::a
                            + f(1.0)
                            + (1.0)(2.0)
                            + *z
                            + -y[i]
                            + !z[i][0]
                    }
                ),
            ),
            (
                quote!(logits),
                quote!(
                    fn f(z: Logits, y: Labels) -> PerSample {
                        sum(classes.filter(|k| k).filter(|k| k), |(a, b)| 0.0)
                            + sum(a::b, |k| 0.0)
                            + sum(classes.foo(), |k| 0.0)
                            + sum(3, |k| 0.0)
                    }
                ),
            ),
            (
                quote!(logits),
                quote!(
                    fn f(z: Logits, y: Labels) -> PerSample {
                        let (a, b) = (1.0, 2.0);
                        let c;
                        let d = 1.0 else { return };
                        macro_rules! m {}
                        m!();
                        fn g() {}
                        x = 1.0;
                        y[i] += 1.0;
                        z[i][0] as f64
                    }
                ),
            ),
            (
                quote!(logits),
                quote!(fn f(z: Logits, y: Labels) -> PerSample { match 1 { _ => 0.0 } + &z[i][0] + (return) + (|x| x) + (while true {}) + (for a in b {}) + vec![1.0] + (1.0).0 + a.b.c }),
            ),
            (
                quote!(binary),
                quote!(
                    fn f(cm: SoftConfusion, p: Probs, a: Amplified, y: Targets) -> Scalar {
                        cm.tp + sum(samples, |j| p[j] * a[j] * y[j]) + cm.0 + p.tp
                    }
                ),
            ),
            (
                quote!(binary),
                quote!(
                    fn f(cm: SoftConfusion, cm2: SoftConfusion) -> Scalar {
                        cm.tp + cm2.tp
                    }
                ),
            ),
            (
                quote!(),
                quote!(
                    fn f(z: Logits) -> PerSample {
                        z[i][0]
                    }
                ),
            ),
            (
                quote!(logits, binary, paper, paper = 1, a::b, c(d)),
                quote!(
                    fn f(z: Logits) -> PerSample {
                        0.0
                    }
                ),
            ),
            (
                quote!(pairs),
                quote!(
                    fn f(z: Logits) -> PerAnchor {
                        0.0
                    }
                ),
            ),
            (
                quote!(logits),
                quote!(
                    struct S;
                ),
            ),
            (
                quote!(logit,),
                quote!(
                    fn f(z: Logits) -> PerSample {
                        0.0
                    }
                ),
            ),
        ];
        for (args, item) in items.iter().cloned() {
            // the whole pipeline too: errors become `compile_error!`s next to the stub
            let out = crate::expand::expand(args.clone(), item.clone()).to_string();
            assert!(out.contains("compile_error"), "{out}");
            let cx = Ctxt::new();
            let failed = match LossDef::from_syn(&cx, args, item.clone()) {
                Ok(def) => {
                    let _ = lower(&cx, &def);
                    cx.check().is_err()
                }
                Err(_) => syn::parse2::<syn::ItemFn>(item.clone()).is_err(),
            };
            assert!(failed, "no error for {item}");
        }
    }
}
