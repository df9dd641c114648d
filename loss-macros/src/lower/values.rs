//! Expressions: numbers, conditions and indices, and the operators between them.

use super::*;

impl Lowerer<'_> {
    pub(super) fn real(&mut self, expr: &Expr) -> Option<NodeId> {
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
            Val::Index(Ix::Label(id, _)) => {
                let name = self.prog.input_names[id.0 as usize].clone();
                self.cx.push(diag::labels_as_value(expr, &name));
                None
            }
        }
    }

    pub(super) fn condition(&mut self, expr: &Expr) -> Option<NodeId> {
        match self.value(expr)? {
            Val::Bool(c) => Some(c),
            _ => {
                self.cx.push(diag::expected_condition(expr));
                None
            }
        }
    }

    pub(super) fn index(&mut self, expr: &Expr) -> Option<Ix> {
        match self.value(expr)? {
            Val::Index(ix) => Some(ix),
            _ => {
                self.cx.push(diag::expected_index(expr));
                None
            }
        }
    }

    pub(super) fn value(&mut self, expr: &Expr) -> Option<Val> {
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
                self.branch_depth += 1;
                let a = self.block(&e.then_branch, false);
                let b = e.else_branch.as_ref().map(|(_, b)| self.real(b));
                self.branch_depth -= 1;
                let Some(b) = b else {
                    self.cx.push(diag::if_without_else(&e.if_token));
                    return None;
                };
                let (c, a, b) = (c?, a?, b?);
                Some(Val::Real(self.prog.graph.select(c, a, b)))
            }
            Expr::Block(b) if b.label.is_none() => self.block_value(&b.block),
            Expr::MethodCall(m) => {
                let name = m.method.to_string();
                if name == "filter" {
                    self.cx.push(diag::filter_outside_reduction(
                        &m.method,
                        self.family.example_set(),
                    ));
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

    pub(super) fn unsupported(&mut self, tokens: &dyn ToTokens, what: &str) -> Option<Val> {
        self.cx.push(diag::unsupported_syntax(tokens, what));
        None
    }

    /// A comparison the family allows for `ix`: with a label over the same set, or
    /// between sample indices (none for other indices of a family without labels).
    fn index_comparison_example(&self, ix: &Ix) -> Option<String> {
        let written = self.prog.ix_string(ix);
        let label = self
            .inputs
            .iter()
            .find(|(_, r)| *r == Role::Labels)
            .map(|(n, _)| n.clone());
        let Ix::Var(v) = ix else { return None };
        match (self.prog.vars[v.0 as usize].domain, label) {
            (Domain::Classes, Some(y)) => Some(format!("{written} != {y}[i]")),
            (Domain::Refs, Some(y)) => Some(format!("{y}[{written}] == {y}[i]")),
            (Domain::Samples, _) if written != "i" => Some(format!("{written} != i")),
            _ => None,
        }
    }

    pub(super) fn binary(&mut self, b: &syn::ExprBinary) -> Option<Val> {
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
                (Val::Index(ix), Val::Real(_)) | (Val::Real(_), Val::Index(ix)) => {
                    let index = self.prog.ix_string(&ix);
                    let example = self.index_comparison_example(&ix);
                    self.cx.push(diag::index_compared_with_number(
                        b,
                        &index,
                        example.as_deref(),
                    ));
                    None
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
}
