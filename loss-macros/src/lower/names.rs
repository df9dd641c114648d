//! Names: what an identifier, a field or an indexed input means in the body.

use super::*;

impl Lowerer<'_> {
    pub(super) fn is_reserved(&self, name: &str) -> bool {
        self.hypers.iter().any(|h| h.name == name)
            || self.inputs.iter().any(|(n, _)| n == name)
            || self.declared.iter().any(|(_, d)| d.name == name)
            || self.scope.iter().any(|(n, _)| n == name)
            || self.family.sets().iter().any(|(s, _)| *s == name)
    }

    /// Inputs, hyper-parameters, lets, then indices (innermost last), each once.
    pub(super) fn names_in_scope(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let declared: Vec<String> = self
            .declared
            .iter()
            .map(|(_, d)| d.name.to_string())
            .collect();
        let all = self
            .inputs
            .iter()
            .map(|(n, _)| n)
            .chain(declared.iter())
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

    pub(super) fn name(&mut self, ident: &syn::Ident) -> Option<Val> {
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
        if let Some((_, d)) = self.declared.iter().find(|(_, d)| d.name == name) {
            let example = format!("{name}{}", "[..]".repeat(d.axes.len()));
            self.cx
                .push(diag::input_not_indexed(ident, &name, &example));
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
            self.cx.push(diag::sample_index_in_scalar(
                ident.span(),
                &name,
                self.family.set_name(Domain::Samples),
                self.family.per_sample_output(),
            ));
            return None;
        }
        let names = self.names_in_scope();
        let names: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        self.cx
            .push(diag::unknown_name(ident.span(), &name, &names));
        None
    }

    pub(super) fn field(&mut self, f: &syn::ExprField) -> Option<Val> {
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
    pub(super) fn peek_domain(&self, expr: &Expr) -> Option<Domain> {
        let Expr::Path(p) = expr else { return None };
        let name = p.path.get_ident()?.to_string();
        let (_, var) = self.scope.iter().rev().find(|(n, _)| *n == name)?;
        Some(self.prog.vars[var.0 as usize].domain)
    }

    /// `x[a][b]..`: an input element or a label.
    pub(super) fn indexed(&mut self, expr: &Expr) -> Option<Val> {
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
        if let Some((id, d)) = name
            .as_ref()
            .and_then(|n| self.declared.iter().find(|(_, d)| d.name == n))
            .cloned()
        {
            return self.declared_element(expr, &indices, id, &d);
        }
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
            Role::Similarity | Role::Scores | Role::Relevance | Role::Prediction | Role::Target => {
                &[Domain::Samples, Domain::Refs]
            }
            // a reference's label or view, `y[j]`, `v[j]`
            Role::Labels | Role::Views
                if self.family == FamilyKind::Pairs
                    && matches!(
                        indices.first().map(|e| self.peek_domain(e)),
                        Some(Some(Domain::Refs))
                    ) =>
            {
                &[Domain::Refs]
            }
            Role::Probs | Role::Amplified | Role::Targets | Role::Labels | Role::Views => {
                &[Domain::Samples]
            }
            Role::SoftConfusion => {
                self.cx.push(diag::confusion_not_indexable(base, &name));
                return None;
            }
        };
        let ixs = self.checked_indices(expr, &name, &indices, axes)?;
        // every input's first axis is the samples, which a label (a class) never indexes
        let Some(&Ix::Var(var)) = ixs.first() else {
            return None;
        };
        Some(match role {
            Role::Labels if self.prog.vars[var.0 as usize].domain == Domain::Refs => {
                Val::Index(Ix::Label(family::Y_REF, var))
            }
            Role::Labels => Val::Index(Ix::Label(family::Y, var)),
            Role::Views if self.prog.vars[var.0 as usize].domain == Domain::Refs => {
                Val::Index(Ix::Label(family::V_REF, var))
            }
            Role::Views => Val::Index(Ix::Label(family::V, var)),
            Role::Similarity | Role::Scores | Role::Prediction => {
                Val::Real(self.prog.graph.intern(Op::Input(family::X, ixs)))
            }
            Role::Relevance | Role::Target => {
                Val::Real(self.prog.graph.intern(Op::Input(family::Y, ixs)))
            }
            Role::Logits => Val::Real(self.prog.graph.intern(Op::Input(family::X, ixs))),
            Role::Targets => Val::Real(self.prog.graph.intern(Op::Input(family::Y, ixs))),
            Role::Probs => Val::Real(self.probability(var)),
            Role::Amplified => Val::Real(self.amplified(var)),
            Role::SoftConfusion => return None, // refused above
        })
    }

    /// The indices of `name[..][..]`, one per axis, each ranging over its axis's set; a
    /// wrong count or a wrong set is reported on the offending tokens.
    fn checked_indices(
        &mut self,
        expr: &Expr,
        name: &str,
        indices: &[&Expr],
        axes: &[Domain],
    ) -> Option<Vec<Ix>> {
        if indices.len() != axes.len() {
            self.cx
                .push(diag::wrong_rank(expr, name, axes.len(), indices.len()));
            return None;
        }
        let mut ixs = Vec::new();
        for (axis, (ix_expr, domain)) in indices.iter().zip(axes).enumerate() {
            let ix = self.index(ix_expr)?;
            let found = self.ix_domain(ix);
            if found != *domain {
                self.cx.push(diag::index_domain(
                    *ix_expr,
                    name,
                    axis,
                    self.family.set_name(*domain),
                    self.family.set_name(found),
                ));
                return None;
            }
            ixs.push(ix);
        }
        Some(ixs)
    }

    /// The set an index ranges over: its variable's, or the set a label indexes.
    pub(super) fn ix_domain(&self, ix: Ix) -> Domain {
        match ix {
            Ix::Var(v) => self.prog.vars[v.0 as usize].domain,
            Ix::Label(id, _) => self
                .declared
                .iter()
                .find(|(d, _)| *d == id)
                .and_then(|(_, d)| d.indexes)
                .unwrap_or(Domain::Classes),
        }
    }

    /// `t[i][k]` of a declared input: a real element, or for `Index` a label.
    fn declared_element(
        &mut self,
        expr: &Expr,
        indices: &[&Expr],
        id: InputId,
        d: &DeclaredParam,
    ) -> Option<Val> {
        let name = d.name.to_string();
        let ixs = self.checked_indices(expr, &name, indices, &d.axes)?;
        if d.kind != DeclKind::Index {
            return Some(Val::Real(self.prog.graph.intern(Op::Input(id, ixs))));
        }
        // a label vector is indexed by one variable (its one axis)
        match ixs.as_slice() {
            [Ix::Var(var)] => Some(Val::Index(Ix::Label(id, *var))),
            _ => {
                self.cx.push(diag::label_of_label(expr, &name));
                None
            }
        }
    }
}
