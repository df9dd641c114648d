//! Lowering: the body's syn expressions → the IR, resolving names and index scopes.
//!
//! Name and scope errors are reported here, where the tokens are at hand; each goes to
//! the [`Ctxt`] and lowering carries on, so one compile shows every independent error.

use std::collections::HashMap;

use syn::{BinOp, Block, Expr, ExprCall, ExprClosure, Pat, Stmt, UnOp};

use crate::ast::{HyperTy, LossDef, Output};
use crate::check;
use crate::ctxt::Ctxt;
use crate::diagnostics as diag;
use crate::family::{self, Amplification, FamilyKind, Role};
use crate::ir::{Bin, Cmp, Domain, HyperId, Ix, NodeId, Op, Program, Red, SlotKind, Un, VarId};

/// Every function the language knows, for "did you mean".
pub const FUNCTIONS: &[&str] = &[
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
    expired: Vec<String>,
    detach_depth: usize,
    amplification: Option<Amplification>,
    prelude: HashMap<&'static str, NodeId>,
}

/// Lowers the definition; returns the program (its last slot is the loss) and the full
/// hyper-parameter list (declared, then the family's).
pub fn lower(cx: &Ctxt, def: &LossDef) -> Option<(Program, Vec<HyperSlot>)> {
    let family = def.attr.family?;
    let (output, _) = def.output?;
    let mut hypers: Vec<HyperSlot> = def
        .hypers
        .iter()
        .map(|h| HyperSlot {
            name: h.name.to_string(),
            ty: h.ty,
        })
        .collect();
    let uses_amp = def.inputs.iter().any(|i| i.role.uses_amplification());
    let mut amplification = None;
    for fh in family.family_hypers(uses_amp) {
        if let Some(h) = def.hypers.iter().find(|h| h.name == fh.name) {
            cx.push(diag::duplicate_parameter(h.name.span(), fh.name));
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
    if uses_amp {
        let n = hypers.len() as u8;
        amplification = Some(Amplification {
            scale: HyperId(n - 2),
            enabled: HyperId(n - 1),
        });
    }
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
            Role::Logits | Role::Targets => {
                prog.input_names[input_slot(input.role)] = input.name.to_string()
            }
            Role::Labels => prog.input_names[1] = input.name.to_string(),
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
        detach_depth: 0,
        amplification,
        prelude: HashMap::new(),
    };
    let sample = match output {
        Output::PerSample => {
            let v = lw.prog.new_var("i", Domain::Samples);
            lw.scope.push(("i".into(), v));
            Some(v)
        }
        Output::Scalar => None,
    };
    let value = lw.block(&def.item.block)?;
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
        Role::Logits | Role::Probs | Role::Amplified | Role::SoftConfusion => 0,
        Role::Targets | Role::Labels => 1,
    }
}

impl Lowerer<'_> {
    fn block(&mut self, block: &Block) -> Option<NodeId> {
        let mut result = None;
        let n = block.stmts.len();
        for (k, stmt) in block.stmts.iter().enumerate() {
            match stmt {
                Stmt::Local(local) => {
                    let name = match &local.pat {
                        Pat::Ident(pi) if pi.mutability.is_some() => {
                            self.cx.push(diag::mutation(pi));
                            continue;
                        }
                        Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                            pi.ident.clone()
                        }
                        Pat::Type(pt) => {
                            self.cx
                                .push(diag::unsupported_syntax(&pt.ty, "a type annotation"));
                            continue;
                        }
                        other => {
                            self.cx
                                .push(diag::unsupported_syntax(other, "this pattern"));
                            continue;
                        }
                    };
                    let Some(init) = &local.init else {
                        self.cx
                            .push(diag::unsupported_syntax(local, "a `let` without a value"));
                        continue;
                    };
                    if let Some((_, diverge)) = &init.diverge {
                        self.cx
                            .push(diag::unsupported_syntax(diverge, "`let .. else`"));
                    }
                    let key = name.to_string();
                    if self.lets.iter().any(|(n, _)| *n == key) || self.is_reserved(&key) {
                        self.cx.push(diag::shadowed(name.span(), &key));
                        continue;
                    }
                    if let Some(v) = self.real(&init.expr) {
                        let node = self.prog.push_slot(Some(key.clone()), SlotKind::Let(v));
                        self.lets.push((key, node));
                    } else {
                        // keep the name known so later uses don't cascade
                        let zero = self.prog.graph.constant(0.0);
                        self.lets.push((key, zero));
                    }
                }
                Stmt::Expr(expr, None) if k + 1 == n => result = self.real(expr),
                Stmt::Expr(expr, _) => self.statement(expr),
                Stmt::Item(item) => self
                    .cx
                    .push(diag::unsupported_syntax(item, "an item inside a loss")),
                Stmt::Macro(m) => self.cx.push(diag::unsupported_syntax(m, "a macro call")),
            }
        }
        if result.is_none() && self.cx.is_ok() {
            self.cx.push(syn::Error::new(block.brace_token.span.join(), "a loss body must end with an expression (without `;`); help: remove the trailing `;` from the last line"));
        }
        result
    }

    /// A statement that is not a `let`: always a mistake, say which.
    fn statement(&mut self, expr: &Expr) {
        match expr {
            Expr::Assign(_) => self.cx.push(diag::mutation(expr)),
            Expr::Binary(b) if is_compound_assign(&b.op) => self.cx.push(diag::mutation(expr)),
            _ => {
                self.real(expr);
            }
        }
    }

    fn is_reserved(&self, name: &str) -> bool {
        self.hypers.iter().any(|h| h.name == name)
            || self.inputs.iter().any(|(n, _)| n == name)
            || self.family.sets().iter().any(|(s, _)| *s == name)
    }

    fn names_in_scope(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        names.extend(self.lets.iter().map(|(n, _)| n.clone()));
        names.extend(self.scope.iter().map(|(n, _)| n.clone()));
        names.extend(self.hypers.iter().map(|h| h.name.clone()));
        names.extend(self.inputs.iter().map(|(n, _)| n.clone()));
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
            Expr::Lit(lit) => match crate::ast::number(expr) {
                Some(v) => Some(Val::Real(self.prog.graph.constant(v))),
                None => {
                    self.cx.push(diag::bad_literal(lit));
                    None
                }
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
                let a = self.block(&e.then_branch);
                let Some((_, else_branch)) = &e.else_branch else {
                    self.cx
                        .push(diag::unsupported_syntax(e, "`if` without `else`"));
                    return None;
                };
                let b = self.real(else_branch);
                let (c, a, b) = (c?, a?, b?);
                Some(Val::Real(self.prog.graph.select(c, a, b)))
            }
            Expr::Block(b) if b.label.is_none() => self.block(&b.block).map(Val::Real),
            Expr::MethodCall(m) => {
                let name = m.method.to_string();
                let is_function = FUNCTIONS.contains(&name.as_str());
                self.cx.push(diag::unknown_method(
                    &m.method,
                    &name,
                    is_function && name != "filter",
                ));
                None
            }
            Expr::Assign(_) => {
                self.cx.push(diag::mutation(expr));
                None
            }
            Expr::ForLoop(_) => self.unsupported(expr, "a `for` loop"),
            Expr::While(_) => self.unsupported(expr, "a `while` loop"),
            Expr::Loop(_) => self.unsupported(expr, "a `loop`"),
            Expr::Closure(_) => self.unsupported(expr, "a closure outside a reduction"),
            Expr::Macro(_) => self.unsupported(expr, "a macro call"),
            Expr::Cast(_) => self.unsupported(expr, "a cast"),
            Expr::Return(_) => self.unsupported(expr, "`return`"),
            Expr::Match(_) => self.unsupported(expr, "`match`"),
            Expr::Reference(_) => self.unsupported(expr, "a reference"),
            _ => self.unsupported(expr, "this expression"),
        }
    }

    fn unsupported(&mut self, expr: &Expr, what: &str) -> Option<Val> {
        self.cx.push(diag::unsupported_syntax(expr, what));
        None
    }

    fn name(&mut self, ident: &syn::Ident) -> Option<Val> {
        let name = ident.to_string();
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
        if self.expired.contains(&name) {
            self.cx
                .push(diag::index_outside_reduction(ident.span(), &name));
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
        if !role.fields().contains(&field.as_str()) {
            if role.fields().is_empty() {
                self.cx.push(diag::no_fields(f, &base_name));
            } else {
                self.cx.push(diag::unknown_field(
                    &f.member,
                    &base_name,
                    &field,
                    role.fields(),
                ));
            }
            return None;
        }
        Some(Val::Real(self.confusion(&field)))
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
            Role::Probs | Role::Amplified | Role::Targets | Role::Labels => &[Domain::Samples],
            Role::SoftConfusion => {
                self.cx.push(diag::not_indexable(base));
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
        let var = match ixs[0] {
            Ix::Var(v) => v,
            Ix::Label(..) => unreachable!("label indices range over classes, checked above"),
        };
        Some(match role {
            Role::Labels => Val::Index(Ix::Label(family::Y, var)),
            Role::Logits => Val::Real(self.prog.graph.intern(Op::Input(family::X, ixs))),
            Role::Targets => Val::Real(self.prog.graph.intern(Op::Input(family::Y, ixs))),
            Role::Probs => Val::Real(self.probability(var)),
            Role::Amplified => Val::Real(self.amplified(var)),
            Role::SoftConfusion => unreachable!("refused above"),
        })
    }

    fn binary(&mut self, b: &syn::ExprBinary) -> Option<Val> {
        use BinOp::*;
        if is_compound_assign(&b.op) {
            self.cx.push(diag::mutation(b));
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
                check::non_differentiable(self.cx, call, &format!("`{name}`"));
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
                check::non_differentiable(self.cx, call, &format!("`{name}`"));
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
                let [x, n_expr] = self.args::<2>(call, &name, "two arguments: `powi(x, n)`")?;
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
                let [x, lo, hi] =
                    self.args::<3>(call, &name, "three arguments: `clamp(x, lo, hi)`")?;
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
                let [c, a, b] =
                    self.args::<3>(call, &name, "three arguments: `select(cond, a, b)`")?;
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
                self.cx.push(diag::arity(call, name, expected));
                None
            }
        }
    }

    /// `op(set[.filter(|v| cond)], |v| body)`.
    fn reduction(&mut self, op: Red, set: &Expr, body: &Expr) -> Option<Val> {
        let (domain, filter) = self.set(set)?;
        let Expr::Closure(body) = body else {
            self.cx.push(diag::reduction_needs_closure(body, op.name()));
            return None;
        };
        let name = closure_param(self.cx, body)?;
        let var = self.prog.new_var(&name, domain);
        let filter = match filter {
            Some(fc) => {
                let fname = closure_param(self.cx, fc)?;
                if fname != name {
                    self.cx
                        .push(diag::filter_index_mismatch(&fc.inputs, &fname, &name));
                    return None;
                }
                self.scope.push((name.clone(), var));
                let c = self.condition(&fc.body);
                self.scope.pop();
                Some(c?)
            }
            None => None,
        };
        self.scope.push((name.clone(), var));
        let value = self.real(&body.body);
        self.scope.pop();
        if !self.scope.iter().any(|(n, _)| *n == name) && !self.expired.contains(&name) {
            self.expired.push(name);
        }
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

    fn set<'e>(&mut self, expr: &'e Expr) -> Option<(Domain, Option<&'e ExprClosure>)> {
        match expr {
            Expr::Path(p) => {
                let Some(ident) = p.path.get_ident() else {
                    self.cx.push(diag::bad_set(p));
                    return None;
                };
                let name = ident.to_string();
                match self.family.sets().iter().find(|(s, _)| *s == name) {
                    Some((_, d)) => Some((*d, None)),
                    None => {
                        let known: Vec<&str> = self.family.sets().iter().map(|(s, _)| *s).collect();
                        self.cx.push(diag::unknown_set(ident.span(), &name, &known));
                        None
                    }
                }
            }
            Expr::MethodCall(m) if m.method == "filter" => {
                let (domain, inner) = self.set(&m.receiver)?;
                if inner.is_some() {
                    self.cx
                        .push(diag::unsupported_syntax(expr, "a second `.filter`"));
                    return None;
                }
                match m.args.first() {
                    Some(Expr::Closure(c)) if m.args.len() == 1 => Some((domain, Some(c))),
                    _ => {
                        self.cx
                            .push(diag::arity(m, "filter", "one closure: `.filter(|k| cond)`"));
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

    // ----- the binary family's prelude -----

    fn amp(&self) -> Amplification {
        self.amplification
            .expect("amplification hyper-parameters exist when a role needs them")
    }

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
        let amp = self.amp();
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

    /// A field of the soft confusion matrix.
    fn confusion(&mut self, field: &str) -> NodeId {
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
        match field {
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
            _ => unreachable!("fields are checked against Role::fields"),
        }
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
