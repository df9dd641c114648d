//! `ln(sum(set, |k| exp(x)))` → `logsumexp(set, |k| x)`, computed max-shifted, and
//! `ln_1p(sum(set, |k| exp(x)))` → `softplus(logsumexp(set, |k| x))` (the stable
//! `ln(1 + Σ eˣ)`, 0 over an empty set). The same for `mean`: `ln(mean(set, |k| exp(x)))`
//! → `logmeanexp(set, |k| x)`, which stays finite where every eˣ underflows.
//!
//! The sum (or mean) slot becomes a logsumexp (logmeanexp) slot `s`; every other read of the sum becomes
//! `exp(s)` (which equals the sum, including 0 for an empty set), and `ln(exp(s))`
//! folds to `s` in the [`stable`](super::stable) pass.

use std::collections::HashSet;

use crate::ir::{NodeId, Op, Program, Red, SlotId, SlotKind, Un};

pub fn rewrite(prog: Program) -> Program {
    let convert: HashSet<SlotId> = candidates(&prog);
    if convert.is_empty() {
        return prog;
    }
    let mut out = super::map_bottom_up(prog, |p, n| match p.graph.op(n).clone() {
        Op::Slot(s) if convert.contains(&s) => p.graph.unary(Un::Exp, n),
        Op::Unary(Un::Ln, a) => match p.graph.op(a).clone() {
            Op::Unary(Un::Exp, inner) if matches!(p.graph.op(inner), Op::Slot(s) if convert.contains(s)) => {
                inner
            }
            _ => n,
        },
        _ => n,
    });
    for s in convert {
        let slot = &mut out.slots[s.0 as usize];
        if let SlotKind::Reduce { op, body, .. } = &mut slot.kind {
            let inner = match out.graph.op(*body) {
                Op::Unary(Un::Exp, x) => *x,
                _ => unreachable!("candidates have an exp body"),
            };
            *op = if *op == Red::Mean {
                Red::LogMeanExp
            } else {
                Red::LogSumExp
            };
            *body = inner;
        }
    }
    out
}

/// Sum and mean slots over `exp(..)` that are read through `ln` or `ln_1p`.
fn candidates(prog: &Program) -> HashSet<SlotId> {
    let mut out = HashSet::new();
    for k in 0..prog.graph.len() {
        if let Op::Unary(Un::Ln | Un::Ln1p, a) = prog.graph.op(NodeId(k as u32)) {
            if let Op::Slot(s) = prog.graph.op(*a) {
                if let SlotKind::Reduce {
                    op: Red::Sum | Red::Mean,
                    body,
                    ..
                } = prog.slot(*s).kind
                {
                    if matches!(prog.graph.op(body), Op::Unary(Un::Exp, _)) {
                        out.insert(*s);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Domain, InputId, Ix};

    #[test]
    fn ln_sum_exp_becomes_a_logsumexp_slot() {
        let mut p = Program {
            input_names: vec!["z".into()],
            ..Program::default()
        };
        let k = p.new_var("k", Domain::Classes);
        let z = p.graph.intern(Op::Input(InputId(0), vec![Ix::Var(k)]));
        let e = p.graph.unary(Un::Exp, z);
        let s = p.push_slot(
            None,
            SlotKind::Reduce {
                op: Red::Sum,
                var: k,
                filter: None,
                body: e,
            },
        );
        let l = p.graph.unary(Un::Ln, s);
        p.push_slot(None, SlotKind::Let(l));
        let p = super::super::run(p);
        assert_eq!(p.slot_definition(p.root()), "logsumexp_{k ∈ classes} z[k]");
    }

    #[test]
    fn ln_mean_exp_becomes_a_logmeanexp_slot() {
        let mut p = Program {
            input_names: vec!["z".into()],
            ..Program::default()
        };
        let k = p.new_var("k", Domain::Classes);
        let z = p.graph.intern(Op::Input(InputId(0), vec![Ix::Var(k)]));
        let e = p.graph.unary(Un::Exp, z);
        let m = p.push_slot(
            None,
            SlotKind::Reduce {
                op: Red::Mean,
                var: k,
                filter: None,
                body: e,
            },
        );
        let l = p.graph.unary(Un::Ln, m);
        // another read of the mean keeps its value, as exp of the new slot
        let twice = p.graph.add(l, m);
        p.push_slot(None, SlotKind::Let(twice));
        let p = super::super::run(p);
        assert_eq!(
            p.slot_definition(p.root()),
            "logmeanexp_{k ∈ classes} z[k] + exp(logmeanexp_{k ∈ classes} z[k])"
        );
    }

    #[test]
    fn ln_of_one_plus_sum_exp_becomes_softplus_of_logsumexp() {
        let mut p = Program {
            input_names: vec!["z".into()],
            ..Program::default()
        };
        let k = p.new_var("k", Domain::Classes);
        let z = p.graph.intern(Op::Input(InputId(0), vec![Ix::Var(k)]));
        let e = p.graph.unary(Un::Exp, z);
        let s = p.push_slot(
            None,
            SlotKind::Reduce {
                op: Red::Sum,
                var: k,
                filter: None,
                body: e,
            },
        );
        let one = p.graph.constant(1.0);
        let sum = p.graph.add(one, s);
        let l = p.graph.unary(Un::Ln, sum);
        p.push_slot(None, SlotKind::Let(l));
        let p = super::super::run(p);
        assert_eq!(
            p.slot_definition(p.root()),
            "softplus(logsumexp_{k ∈ classes} z[k])"
        );
    }
}
