//! Symbolic reverse-mode differentiation of a [`Program`].
//!
//! Slots are visited last to first. A slot's adjoint `ā` (a buffer over its free indices)
//! flows into each element of its definition with a weight — 1 for `let`, `sum`, and
//! the arg position of `max`/`min`; `1/|set|` for `mean`; the softmax weight
//! `exp(x − lse)` for `logsumexp`. Within the element, the chain rule walks the
//! expression DAG from the top, multiplying by each primitive's partials from
//! [`rules`]; adjoints of a shared node accumulate before it is visited (node ids are a
//! topological order). Reaching an input yields a gradient contribution; reaching a
//! slot yields a contribution to that slot's adjoint. `detach`, filters and conditions
//! are constants.

pub mod rules;

use std::collections::{BTreeMap, HashMap};

use crate::ir::{Bin, InputId, Ix, NodeId, Op, Program, Red, SlotId, SlotKind, Un};

/// Where a gradient contribution goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Leaf {
    /// `∂L/∂x[..] += …` — a differentiable input.
    Input(InputId, Vec<Ix>),
    /// `ā(slot) += …` — the adjoint of a materialised value.
    Slot(SlotId),
}

/// The derived backward of one slot.
#[derive(Clone, Debug)]
pub struct SlotGrad {
    pub slot: SlotId,
    /// ∂slot/∂element for one element of the definition; the adjoint `ḡ` of the
    /// element is `ā(slot) · weight`.
    pub weight: NodeId,
    /// `(leaf, contribution)`, with the contribution in terms of `ḡ`.
    pub contributions: Vec<(Leaf, NodeId)>,
}

/// The derived gradient of a whole program.
pub struct Gradients {
    /// In the order the backward runs (last slot first).
    pub slots: Vec<SlotGrad>,
    /// Which slots carry an adjoint buffer.
    pub needs_adjoint: Vec<bool>,
}

/// Differentiates `prog` with respect to the inputs marked in `differentiable`.
pub fn gradients(prog: &mut Program, differentiable: &[bool]) -> Gradients {
    let needs = slots_needing_adjoint(prog, differentiable);
    let mut slots = Vec::new();
    for s in (0..prog.slots.len()).rev() {
        if !needs[s] {
            continue;
        }
        let slot_id = SlotId(s as u16);
        let slot = prog.slots[s].clone();
        let (root, weight) = match slot.kind {
            SlotKind::Let(n) => (n, prog.graph.constant(1.0)),
            SlotKind::Reduce { op, body, .. } => {
                let g = &mut prog.graph;
                let weight = match op {
                    Red::Sum | Red::Max | Red::Min => g.constant(1.0),
                    Red::Mean => {
                        let one = g.constant(1.0);
                        let count = g.intern(Op::SlotCount(slot_id));
                        g.div(one, count)
                    }
                    Red::LogSumExp => {
                        let this = g.intern(Op::Slot(slot_id));
                        let shifted = g.sub(body, this);
                        g.unary(Un::Exp, shifted)
                    }
                    // ln((1/n) Σ eˣ): the softmax weight e^(x − lse) = e^(x − lme)/n
                    Red::LogMeanExp => {
                        let this = g.intern(Op::Slot(slot_id));
                        let shifted = g.sub(body, this);
                        let e = g.unary(Un::Exp, shifted);
                        let count = g.intern(Op::SlotCount(slot_id));
                        g.div(e, count)
                    }
                    Red::ArgMax | Red::ArgMin | Red::TopKThreshold => {
                        unreachable!("non-differentiable reductions carry no adjoint")
                    }
                };
                (body, weight)
            }
        };
        let contributions = chain_rule(prog, root, differentiable, &needs);
        slots.push(SlotGrad {
            slot: slot_id,
            weight,
            contributions,
        });
    }
    Gradients {
        slots,
        needs_adjoint: needs,
    }
}

/// A slot needs an adjoint when its value depends on a differentiable input and the
/// loss reads it along a differentiable path (not only in filters, conditions or under
/// `detach`): only then can its adjoint be non-zero.
fn slots_needing_adjoint(prog: &Program, differentiable: &[bool]) -> Vec<bool> {
    let depends_on_input = slots_depending_on_inputs(prog, differentiable);
    let mut live = vec![false; prog.slots.len()];
    if let Some(last) = live.last_mut() {
        *last = *depends_on_input.last().unwrap_or(&false);
    }
    for s in (0..prog.slots.len()).rev() {
        if !live[s] {
            continue;
        }
        let root = match &prog.slots[s].kind {
            SlotKind::Let(n) => *n,
            SlotKind::Reduce { body, .. } => *body,
        };
        let mut stack = vec![root];
        let mut seen = std::collections::HashSet::new();
        while let Some(n) = stack.pop() {
            if !seen.insert(n) {
                continue;
            }
            match prog.graph.op(n) {
                Op::Slot(t) if depends_on_input[t.0 as usize] => live[t.0 as usize] = true,
                Op::Detach(_) | Op::ToReal(_) => {}
                op if op.is_bool() => {}
                // a select's condition is a constant; its branches are read
                Op::Select(_, a, b) => stack.extend([*a, *b]),
                op => stack.extend(op.args()),
            }
        }
    }
    live
}

/// Slots whose value depends on a differentiable input.
fn slots_depending_on_inputs(prog: &Program, differentiable: &[bool]) -> Vec<bool> {
    let mut needs = vec![false; prog.slots.len()];
    for (s, slot) in prog.slots.iter().enumerate() {
        if let SlotKind::Reduce {
            op: Red::ArgMax | Red::ArgMin | Red::TopKThreshold,
            ..
        } = slot.kind
        {
            continue;
        }
        let mut memo = HashMap::new();
        needs[s] = slot
            .roots()
            .iter()
            .any(|&r| depends(prog, r, differentiable, &needs, &mut memo));
    }
    needs
}

/// Whether `n` depends on a differentiable input (through anything but `detach`).
fn depends(
    prog: &Program,
    n: NodeId,
    differentiable: &[bool],
    needs: &[bool],
    memo: &mut HashMap<NodeId, bool>,
) -> bool {
    if let Some(&d) = memo.get(&n) {
        return d;
    }
    let d = match prog.graph.op(n) {
        Op::Input(id, _) => differentiable[id.0 as usize],
        Op::Slot(s) => needs[s.0 as usize],
        Op::Detach(_) | Op::ToReal(_) => false,
        op if op.is_bool() => false,
        op => op
            .args()
            .into_iter()
            .any(|a| depends(prog, a, differentiable, needs, memo)),
    };
    memo.insert(n, d);
    d
}

/// Reverse sweep over the DAG under `root`, seeded with `ḡ`.
fn chain_rule(
    prog: &mut Program,
    root: NodeId,
    differentiable: &[bool],
    needs: &[bool],
) -> Vec<(Leaf, NodeId)> {
    let order = prog.graph.reachable(&[root]);
    let mut memo = HashMap::new();
    let seed = prog.graph.intern(Op::Adjoint);
    let mut adj: BTreeMap<NodeId, NodeId> = BTreeMap::new();
    adj.insert(root, seed);
    let mut out = Vec::new();
    for &n in order.iter().rev() {
        let Some(&a) = adj.get(&n) else { continue };
        match prog.graph.op(n).clone() {
            Op::Input(id, ixs) if differentiable[id.0 as usize] => {
                out.push((Leaf::Input(id, ixs), a));
                continue;
            }
            Op::Slot(s) if needs[s.0 as usize] => {
                out.push((Leaf::Slot(s), a));
                continue;
            }
            _ => {}
        }
        for (arg, local) in rules::partials(&mut prog.graph, n) {
            if !depends(prog, arg, differentiable, needs, &mut memo) {
                continue;
            }
            let c = prog.graph.binary(Bin::MulZ, a, local);
            let total = match adj.get(&arg) {
                Some(&prev) => prog.graph.add(prev, c),
                None => c,
            };
            adj.insert(arg, total);
        }
    }
    out
}

/// The derived gradient in readable math, one block per slot.
pub fn describe(prog: &Program, grads: &Gradients) -> String {
    let mut out = String::new();
    for sg in &grads.slots {
        let slot = prog.slot(sg.slot);
        let target = if sg.slot == prog.root() {
            "1".to_string()
        } else {
            format!("ā({})", prog.slot_string(sg.slot))
        };
        let mut over: Vec<String> = slot
            .free
            .iter()
            .map(|v| {
                let var = &prog.vars[v.0 as usize];
                format!("{} ∈ {}", var.name, var.domain.name())
            })
            .collect();
        if let SlotKind::Reduce {
            var, filter, op, ..
        } = &slot.kind
        {
            let v = &prog.vars[var.0 as usize];
            let mut s = format!("{} ∈ {}", v.name, v.domain.name());
            if let Some(f) = filter {
                s += &format!(" with {}", prog.node_string(*f));
            }
            if matches!(op, Red::Max | Red::Min) {
                s += &format!(" (the first arg{} only)", op.name());
            }
            over.push(s);
        }
        let weight = prog.node_string(sg.weight);
        let gbar = if weight == "1" {
            target
        } else {
            format!("{target} · {weight}")
        };
        let header = if over.is_empty() {
            format!("ḡ = {gbar}:\n")
        } else {
            format!("for {}, ḡ = {gbar}:\n", over.join(", "))
        };
        out += &header;
        for (leaf, c) in &sg.contributions {
            let lhs = match leaf {
                Leaf::Input(id, ixs) => {
                    let mut s = format!("∂L/∂{}", prog.input_names[id.0 as usize]);
                    for ix in ixs {
                        s += &format!("[{}]", prog.ix_string(ix));
                    }
                    s
                }
                Leaf::Slot(s) => format!("ā({})", prog.slot_string(*s)),
            };
            out += &format!("    {lhs} += {}\n", prog.node_string(*c));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Domain, Op};

    /// `mean_i (logsumexp_k z[i][k] − z[i][y[i]])`, built by hand.
    fn cross_entropy() -> Program {
        let mut p = Program {
            input_names: vec!["z".into(), "y".into()],
            ..Program::default()
        };
        let i = p.new_var("i", Domain::Samples);
        let k = p.new_var("k", Domain::Classes);
        let zik = p
            .graph
            .intern(Op::Input(InputId(0), vec![Ix::Var(i), Ix::Var(k)]));
        let lse = p.push_slot(
            None,
            SlotKind::Reduce {
                op: Red::LogSumExp,
                var: k,
                filter: None,
                body: zik,
            },
        );
        let zy = p.graph.intern(Op::Input(
            InputId(0),
            vec![Ix::Var(i), Ix::Label(InputId(1), i)],
        ));
        let body = p.graph.sub(lse, zy);
        p.push_slot(
            None,
            SlotKind::Reduce {
                op: Red::Mean,
                var: i,
                filter: None,
                body,
            },
        );
        p
    }

    #[test]
    fn cross_entropy_gradient_is_softmax_minus_one_hot() {
        let mut p = cross_entropy();
        let g = gradients(&mut p, &[true, false]);
        let text = describe(&p, &g);
        // the mean sends 1/N to each sample; the sample splits into the logsumexp (+) and the label logit (−)
        assert!(
            text.contains("for i ∈ samples, ḡ = 1 · 1/|mean_{i ∈ samples}"),
            "{text}"
        );
        assert!(
            text.contains("ā(logsumexp_{k ∈ classes} z[i][k]) += ḡ"),
            "{text}"
        );
        assert!(text.contains("∂L/∂z[i][y[i]] += −ḡ"), "{text}");
        // the logsumexp hands each class its softmax weight
        assert!(text.contains("ḡ = ā(logsumexp_{k ∈ classes} z[i][k]) · exp(z[i][k] − logsumexp_{k ∈ classes} z[i][k])"), "{text}");
        assert!(text.contains("∂L/∂z[i][k] += ḡ"), "{text}");
    }

    #[test]
    fn shared_subexpressions_accumulate_their_adjoints() {
        // L = x·x over a scalar input: the single node x receives ḡ·x + ḡ·x
        let mut p = Program {
            input_names: vec!["x".into()],
            ..Program::default()
        };
        let i = p.new_var("i", Domain::Samples);
        let x = p.graph.intern(Op::Input(InputId(0), vec![Ix::Var(i)]));
        let sq = p.graph.mul(x, x);
        p.push_slot(
            None,
            SlotKind::Reduce {
                op: Red::Sum,
                var: i,
                filter: None,
                body: sq,
            },
        );
        let g = gradients(&mut p, &[true]);
        let contributions = &g.slots[0].contributions;
        assert_eq!(contributions.len(), 1);
        assert_eq!(p.node_string(contributions[0].1), "2·(ḡ·x[i])");
    }

    #[test]
    fn detach_stops_the_gradient() {
        let mut p = Program {
            input_names: vec!["x".into()],
            ..Program::default()
        };
        let i = p.new_var("i", Domain::Samples);
        let x = p.graph.intern(Op::Input(InputId(0), vec![Ix::Var(i)]));
        let dx = p.graph.intern(Op::Detach(x));
        let body = p.graph.mul(dx, x);
        p.push_slot(
            None,
            SlotKind::Reduce {
                op: Red::Sum,
                var: i,
                filter: None,
                body,
            },
        );
        let g = gradients(&mut p, &[true]);
        assert_eq!(
            p.node_string(g.slots[0].contributions[0].1),
            "ḡ·detach(x[i])"
        );
    }
}
