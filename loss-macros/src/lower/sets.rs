//! Index sets as written: `classes`, `pos(i)`, `set.filter(|k| ..)`.

use super::*;

impl Lowerer<'_> {
    #[allow(clippy::type_complexity)] // reason: a private triple, named at its one use
    pub(super) fn set<'e>(
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
                    self.report_bad_set(expr);
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
                    self.report_bad_set(p);
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
                        let (set, index) = self.family.example_set();
                        self.cx.push(diag::arity(
                            m,
                            "filter",
                            "one closure",
                            &format!("{set}.filter(|{index}| cond)"),
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
                self.report_bad_set(other);
                None
            }
        }
    }

    fn report_bad_set(&self, tokens: &dyn ToTokens) {
        let known = self.set_names();
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        self.cx
            .push(diag::bad_set(tokens, &known, self.family.example_set()));
    }

    /// The family's index sets, as a user writes them (`samples`, `pos(i)`).
    pub(super) fn set_names(&self) -> Vec<String> {
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
}
