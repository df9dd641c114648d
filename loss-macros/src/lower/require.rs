//! `require(cond, "message");`: a statement that makes the forward report a `LossError`
//! where `cond` fails, attached to the value of the block it stands in.

use super::*;

/// A `require(..)` lowered but not yet attached to its block's value.
pub(super) struct Pending {
    cond: NodeId,
    id: u16,
    sample: Option<VarId>,
}

/// Whether `call` is `require(..)`.
pub(super) fn is_require(call: &ExprCall) -> bool {
    matches!(&*call.func, Expr::Path(p) if p.path.is_ident("require"))
}

impl Lowerer<'_> {
    /// `require(cond, "message")` as a statement.
    pub(super) fn require(&mut self, call: &ExprCall) {
        if self.branch_depth > 0 {
            self.cx.push(diag::require_in_branch(call));
            return;
        }
        let [cond, message] = match self.args::<2>(call, "require", "a condition and a message") {
            Some(args) => args,
            None => return,
        };
        let cond = self.condition(cond);
        let message = match message {
            Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            other => {
                self.cx.push(diag::require_message(other));
                None
            }
        };
        let (Some(cond), Some(message)) = (cond, message) else {
            return;
        };
        let Ok(id) = u16::try_from(self.prog.requirements.len()) else {
            self.cx
                .push(diag::too_many(call, "requirements", usize::from(u16::MAX)));
            return;
        };
        self.prog.requirements.push(message);
        // the outermost sample index the condition depends on names the failing sample
        let sample = self
            .prog
            .free_vars(&[cond])
            .into_iter()
            .find(|v| self.prog.vars[v.0 as usize].domain == Domain::Samples);
        self.required.push(Pending { cond, id, sample });
    }

    /// The block's value, checked against its requirements (in the order written).
    pub(super) fn guard_real(
        &mut self,
        value: NodeId,
        required: Vec<Pending>,
        _block: &Block,
    ) -> Option<NodeId> {
        let guarded = required.into_iter().rev().fold(value, |value, p| {
            self.prog.graph.intern(Op::Require {
                value,
                cond: p.cond,
                id: p.id,
                sample: p.sample,
            })
        });
        Some(guarded)
    }

    /// [`guard_real`](Self::guard_real) for a block in any position: only a number can
    /// carry a requirement.
    pub(super) fn guard_value(
        &mut self,
        value: Val,
        required: Vec<Pending>,
        block: &Block,
    ) -> Option<Val> {
        match value {
            Val::Real(n) => self.guard_real(n, required, block).map(Val::Real),
            _ => {
                self.cx.push(diag::require_without_number(block));
                None
            }
        }
    }
}
