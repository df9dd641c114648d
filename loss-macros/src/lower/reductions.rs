//! Reductions over a set, and the filters of anchored sets.

use super::*;

impl Lowerer<'_> {
    /// `topk_threshold(set, |v| x, K, α, iterations)`: a runtime reduction, only under
    /// `detach` (its derivative comes from the implicit-function theorem, which the loss
    /// writes itself; see `dexml_soft_topk`).
    pub(super) fn topk_threshold(
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
    pub(super) fn reduction(&mut self, op: Red, set: &Expr, body: &Expr) -> Option<Val> {
        let (domain, filter, anchored) = self.set(set)?;
        let Expr::Closure(body) = body else {
            self.cx.push(diag::reduction_needs_closure(
                body,
                op.name(),
                self.family.example_set(),
            ));
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
            let binder = format!(
                "{}({}{filtered}, |{name}| ..)",
                op.name(),
                self.family.set_name(domain)
            );
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

    /// `len(set)`: the size of a family set (`N`, `C`, `M`), or the number of elements of
    /// a filtered or anchored set (a sum of ones over it).
    pub(super) fn len(&mut self, call: &ExprCall) -> Option<Val> {
        let [set] = self.args::<1>(call, "len", "one index set")?;
        if let Expr::Path(_) = set {
            let (domain, _, _) = self.set(set)?;
            return Some(Val::Real(self.prog.graph.intern(Op::Size(domain))));
        }
        // the filter's closure names the element; an anchored set has none, so use a
        // name no definition can write
        let index = match set {
            Expr::MethodCall(m) => match m.args.first() {
                Some(Expr::Closure(c)) => match c.inputs.first() {
                    Some(Pat::Ident(p)) => Some(p.ident.clone()),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        }
        .unwrap_or_else(|| quote::format_ident!("__element"));
        let one: Expr = syn::parse_quote!(|#index| 1.0);
        self.reduction(Red::Sum, set, &one)
    }

    /// The condition that makes `elem` a member of the anchored set `rule(anchor)`.
    pub(super) fn anchored_filter(&mut self, rule: Anchored, anchor: VarId, elem: VarId) -> NodeId {
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
            Anchored::SameView => {
                let view = g.intern(Op::IndexCompare(
                    Cmp::Eq,
                    Ix::Label(family::V, anchor),
                    Ix::Label(family::V_REF, elem),
                ));
                let other = not_self(g);
                g.intern(Op::And(view, other))
            }
            Anchored::OtherLabel => same(g, Cmp::Ne),
            Anchored::Relevant => relevance(g, Cmp::Gt),
            Anchored::Irrelevant => relevance(g, Cmp::Lt),
        }
    }
}
