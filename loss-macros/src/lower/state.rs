//! `update(u[i], value)`: the new value of a `State` parameter for the current sample,
//! detached, materialised, and written back by the runtime after the forward pass.

use super::*;
use crate::ir::StateUpdate;

impl Lowerer<'_> {
    pub(super) fn update(&mut self, call: &ExprCall, args: &[&Expr]) -> Option<Val> {
        let [target, value] = args else {
            self.cx.push(diag::arity(
                call,
                "update",
                "a state element and its new value",
                "update(u[i], value)",
            ));
            return None;
        };
        if self.branch_depth > 0 {
            self.cx.push(diag::update_in_branch(call));
            return None;
        }
        let Some((field, name, var)) = self.state_element(target) else {
            self.cx.push(diag::update_target(target));
            return None;
        };
        if self.prog.updates.iter().any(|u| u.field == field) {
            self.cx.push(diag::update_twice(call, &name));
            return None;
        }
        let value = self.real(value)?;
        let detached = self.prog.graph.intern(Op::Detach(value));
        let node = self
            .prog
            .push_slot(Some(format!("{name}′")), SlotKind::Let(detached));
        let slot = self.prog.root();
        let others: Vec<String> = self
            .prog
            .slot(slot)
            .free
            .iter()
            .filter(|v| **v != var)
            .map(|v| format!("`{}`", self.prog.vars[v.0 as usize].name))
            .collect();
        if !others.is_empty() {
            let index = self.prog.vars[var.0 as usize].name.clone();
            self.cx
                .push(diag::update_depends_on(args[1], &index, &others.join(", ")));
            return None;
        }
        self.prog.updates.push(StateUpdate { field, slot, var });
        Some(Val::Real(node))
    }

    /// `u[i]` of a `State` parameter, with `i` a sample: the state's position among the
    /// definition's states, its name and the sample variable.
    fn state_element(&mut self, expr: &Expr) -> Option<(usize, String, VarId)> {
        let Expr::Index(ix) = expr else { return None };
        let Expr::Path(p) = &*ix.expr else {
            return None;
        };
        let name = p.path.get_ident()?.to_string();
        let field = self
            .declared
            .iter()
            .filter(|(_, d)| d.kind == DeclKind::State)
            .position(|(_, d)| d.name == name)?;
        match self.index(&ix.index)? {
            Ix::Var(v) if self.prog.vars[v.0 as usize].domain == Domain::Samples => {
                Some((field, name, v))
            }
            _ => None,
        }
    }
}
