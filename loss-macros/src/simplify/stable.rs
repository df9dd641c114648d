//! Local stable rewrites:
//!
//! | pattern | becomes | why |
//! |---|---|---|
//! | `ln(1 + x)`, `ln(x + 1)` | `ln_1p(x)` | exact for small `x` |
//! | `ln_1p(exp(x))` | `softplus(x)` | no overflow for large `x` |
//! | `1 / (1 + exp(−x))` | `sigmoid(x)` | no overflow for very negative `x` |
//! | `ln(sigmoid(x))` | `−softplus(−x)` | no `ln(0)` |
//! | `ln(exp(x))` | `x` | exact |

use crate::ir::{Bin, NodeId, Op, Program, Un};

pub fn rewrite(prog: Program) -> Program {
    super::map_bottom_up(prog, rule)
}

fn rule(p: &mut Program, n: NodeId) -> NodeId {
    let g = &mut p.graph;
    match g.op(n).clone() {
        Op::Unary(Un::Ln, a) => match g.op(a).clone() {
            Op::Binary(Bin::Add, x, y) if g.as_const(x) == Some(1.0) => {
                let l = g.unary(Un::Ln1p, y);
                rule(p, l)
            }
            Op::Binary(Bin::Add, x, y) if g.as_const(y) == Some(1.0) => {
                let l = g.unary(Un::Ln1p, x);
                rule(p, l)
            }
            Op::Unary(Un::Exp, x) => x,
            Op::Unary(Un::Sigmoid, x) => {
                let mx = g.neg(x);
                let sp = g.unary(Un::Softplus, mx);
                g.neg(sp)
            }
            _ => n,
        },
        Op::Unary(Un::Ln1p, a) => match g.op(a).clone() {
            Op::Unary(Un::Exp, x) => g.unary(Un::Softplus, x),
            _ => n,
        },
        Op::Binary(Bin::Div, one, d) if g.as_const(one) == Some(1.0) => match g.op(d).clone() {
            Op::Binary(Bin::Add, c, e) if g.as_const(c) == Some(1.0) => match g.op(e).clone() {
                Op::Unary(Un::Exp, m) => match g.op(m).clone() {
                    Op::Unary(Un::Neg, x) => g.unary(Un::Sigmoid, x),
                    _ => n,
                },
                _ => n,
            },
            _ => n,
        },
        _ => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{HyperId, SlotKind};

    fn with(build: impl FnOnce(&mut Program, NodeId) -> NodeId) -> String {
        let mut p = Program {
            hyper_names: vec!["x".into()],
            ..Program::default()
        };
        let x = p.graph.intern(Op::Hyper(HyperId(0)));
        let e = build(&mut p, x);
        p.push_slot(None, SlotKind::Let(e));
        let p = rewrite(p);
        let root = p.root();
        p.slot_definition(root)
    }

    #[test]
    fn ln_of_one_plus_becomes_ln_1p() {
        assert_eq!(
            with(|p, x| {
                let one = p.graph.constant(1.0);
                let s = p.graph.add(one, x);
                p.graph.unary(Un::Ln, s)
            }),
            "ln_1p(x)"
        );
    }

    #[test]
    fn ln_of_one_plus_exp_becomes_softplus() {
        assert_eq!(
            with(|p, x| {
                let one = p.graph.constant(1.0);
                let e = p.graph.unary(Un::Exp, x);
                let s = p.graph.add(e, one);
                p.graph.unary(Un::Ln, s)
            }),
            "softplus(x)"
        );
    }

    #[test]
    fn logistic_becomes_sigmoid() {
        assert_eq!(
            with(|p, x| {
                let one = p.graph.constant(1.0);
                let m = p.graph.neg(x);
                let e = p.graph.unary(Un::Exp, m);
                let d = p.graph.add(one, e);
                p.graph.div(one, d)
            }),
            "sigmoid(x)"
        );
    }

    #[test]
    fn ln_sigmoid_becomes_negative_softplus() {
        assert_eq!(
            with(|p, x| {
                let s = p.graph.unary(Un::Sigmoid, x);
                p.graph.unary(Un::Ln, s)
            }),
            "−softplus(−x)"
        );
    }
}
