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
use crate::family::{self, Amplification, Anchored, DeclKind, DeclaredParam, FamilyKind, Role};
use crate::ir::{
    Bin, Cmp, Domain, HyperId, InputId, Ix, NodeId, Op, Program, Red, SlotKind, Un, VarId,
};

mod calls;
mod names;
mod prelude;
mod reductions;
mod require;
mod sets;
mod state;
#[cfg(test)]
pub(crate) mod tests;
mod values;

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
    "cos",
    "sin",
    "acos",
    "expm1",
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
    "logmeanexp",
    "len",
    "require",
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
    /// Declared inputs (`t: Given<samples, classes>`) and their ids, after the family's.
    declared: Vec<(InputId, DeclaredParam)>,
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
    /// `require(..)`s of the enclosing blocks, innermost last, not yet attached to a value.
    required: Vec<require::Pending>,
    /// How many `if`/`select` branches enclose the expression being lowered.
    branch_depth: usize,
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
        input_names: family::raw_inputs(family, &def.declared)
            .into_iter()
            .map(|r| r.name)
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
                let ids: &[InputId] = match family {
                    FamilyKind::Pairs => &[family::Y, family::Y_REF],
                    _ => &[family::Y],
                };
                for id in ids {
                    prog.input_names[id.0 as usize] = input.name.to_string();
                }
            }
            Role::Views => {
                for id in [family::V, family::V_REF] {
                    prog.input_names[id.0 as usize] = input.name.to_string();
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
        declared: def
            .declared
            .iter()
            .enumerate()
            .map(|(k, d)| (InputId((family.preset_inputs().len() + k) as u8), d.clone()))
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
        required: Vec::new(),
        branch_depth: 0,
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
        | Role::Scores
        | Role::Prediction => 0,
        Role::Targets | Role::Labels | Role::Relevance | Role::Target => 1,
        Role::Views => family::V.0 as usize,
    }
}

impl Lowerer<'_> {
    /// `{ let a = ..; let b = ..; value }`: the lets are visible until the block ends.
    /// `top`: the fn body, whose value is the loss.
    fn block(&mut self, block: &Block, top: bool) -> Option<NodeId> {
        self.block_with(block, top, Self::real, Self::guard_real)
    }

    /// A block in any position: its tail may also be a condition (`.filter(|j| { .. })`),
    /// which the caller's context then checks.
    fn block_value(&mut self, block: &Block) -> Option<Val> {
        self.block_with(block, false, Self::value, Self::guard_value)
    }

    /// `guard`: attaches the block's `require(..)`s to its value.
    fn block_with<T>(
        &mut self,
        block: &Block,
        top: bool,
        tail: fn(&mut Self, &Expr) -> Option<T>,
        guard: fn(&mut Self, T, Vec<require::Pending>, &Block) -> Option<T>,
    ) -> Option<T> {
        let lets_before = self.lets.len();
        let required_before = self.required.len();
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
        let required = self.required.split_off(required_before);
        match result {
            Some(value) if !required.is_empty() => guard(self, value, required, block),
            _ => result,
        }
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
            Expr::Call(call) if require::is_require(call) => self.require(call),
            _ => {
                self.real(expr);
            }
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
