//! Function calls: primitives, reductions and their arity.

use super::*;

impl Lowerer<'_> {
    pub(super) fn call(&mut self, call: &ExprCall) -> Option<Val> {
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
        if name == "require" {
            self.cx.push(diag::require_as_value(call));
            return None;
        }
        if name == "topk_threshold" {
            return self.topk_threshold(call, ident, &args);
        }
        if name == "len" {
            return self.len(call);
        }
        if name == "update" {
            return self.update(call, &args);
        }
        let is_reduction = args.len() == 2 && matches!(args[1], Expr::Closure(_));
        // `sum(set, |k| .., extra)`: the closure is there, the rest is too much
        let extra_arguments = args.len() > 2 && matches!(args[1], Expr::Closure(_));
        let red = match name.as_str() {
            "sum" => Some(Red::Sum),
            "mean" => Some(Red::Mean),
            "max" if is_reduction || extra_arguments => Some(Red::Max),
            "min" if is_reduction || extra_arguments => Some(Red::Min),
            "logsumexp" => Some(Red::LogSumExp),
            "logmeanexp" => Some(Red::LogMeanExp),
            "argmax" => Some(Red::ArgMax),
            "argmin" => Some(Red::ArgMin),
            _ => None,
        };
        if let Some(op) = red {
            if extra_arguments {
                self.cx.push(diag::reduction_extra_arguments(
                    call,
                    &name,
                    args.len(),
                    self.family.example_set(),
                ));
                return None;
            }
            if !is_reduction {
                self.cx.push(diag::reduction_needs_closure(
                    call,
                    &name,
                    self.family.example_set(),
                ));
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
            "cos" => Some(Un::Cos),
            "sin" => Some(Un::Sin),
            "acos" => Some(Un::Acos),
            "expm1" => Some(Un::Expm1),
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
                let c = self.condition(c);
                self.branch_depth += 1;
                let (a, b) = (self.real(a), self.real(b));
                self.branch_depth -= 1;
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

    pub(super) fn args<'e, const N: usize>(
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
                    .push(diag::arity(call, name, expected, &usage(name, self.family)));
                None
            }
        }
    }
}

/// A correct call of the function `name`, for arity messages.
fn usage(name: &str, family: crate::family::FamilyKind) -> String {
    let (set, index) = family.example_set();
    match name {
        "powi" => "powi(x, 2)".into(),
        "powf" => "powf(x, y)".into(),
        "min" | "max" => format!("{name}(a, b)` or `{name}({set}, |{index}| ..)"),
        "len" => format!("len({set})"),
        "require" => "require(var > 0.0, \"row has zero variance\");".into(),
        "clamp" => "clamp(x, lo, hi)".into(),
        "select" => "select(cond, a, b)".into(),
        "pos" | "neg" | "others" | "relevant" | "irrelevant" => format!("{name}(i)"),
        "topk_threshold" => {
            "detach(topk_threshold(docs, |d| s[i][d], k, alpha, iterations))".into()
        }
        _ => format!("{name}(x)"),
    }
}
