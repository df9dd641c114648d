//! Meaning-preserving rewrites, run before differentiation so the derived gradient is
//! computed from the stable forms too.
//!
//! Constant folding, trivial identities and common subexpressions are handled as the
//! graph is built ([`crate::ir::Graph`]'s constructors and hash-consing). The passes here
//! are the numerically stable rewrites, each a pure `fn(Program) -> Program`.

mod logsumexp;
mod stable;

use std::collections::HashMap;

use crate::ir::{NodeId, Op, Program, Slot, SlotKind};

/// Runs every pass, in order.
pub fn run(prog: Program) -> Program {
    // `ln(1 + Σ exp)` first becomes `ln_1p(Σ exp)`, then a logsumexp slot read through
    // `ln_1p(exp(..))`, which the second stable pass turns into `softplus(..)`
    let prog = stable::rewrite(prog);
    let prog = logsumexp::rewrite(prog);
    stable::rewrite(prog)
}

/// Rebuilds `prog` bottom-up: each node's arguments are mapped first, then `f` may
/// replace the rebuilt node. `f` receives the new program (to inspect and build nodes).
pub fn map_bottom_up(prog: Program, mut f: impl FnMut(&mut Program, NodeId) -> NodeId) -> Program {
    let old = prog;
    let mut new = Program {
        graph: Default::default(),
        vars: old.vars.clone(),
        slots: Vec::new(),
        hyper_names: old.hyper_names.clone(),
        input_names: old.input_names.clone(),
        requirements: old.requirements.clone(),
        updates: old.updates.clone(),
    };
    let mut map: HashMap<NodeId, NodeId> = HashMap::new();
    // Slots are rebuilt as their nodes are reached; a slot only reads earlier slots, and
    // every node a slot definition uses was created before the slot's `Op::Slot` node.
    new.slots = old.slots.clone();
    for k in 0..old.graph.len() {
        let id = NodeId(k as u32);
        let op = remap(old.graph.op(id), &map);
        let built = new.graph.intern(op);
        let rewritten = f(&mut new, built);
        map.insert(id, rewritten);
    }
    let m = |n: &NodeId| map[n];
    new.slots = old
        .slots
        .iter()
        .map(|s| Slot {
            name: s.name.clone(),
            free: s.free.clone(),
            params: s.params.iter().map(m).collect(),
            kind: match &s.kind {
                SlotKind::Let(n) => SlotKind::Let(m(n)),
                SlotKind::Reduce {
                    op,
                    var,
                    filter,
                    body,
                } => SlotKind::Reduce {
                    op: *op,
                    var: *var,
                    filter: filter.as_ref().map(m),
                    body: m(body),
                },
            },
        })
        .collect();
    new
}

fn remap(op: &Op, map: &HashMap<NodeId, NodeId>) -> Op {
    let m = |n: &NodeId| map[n];
    match op {
        Op::Unary(f, a) => Op::Unary(*f, m(a)),
        Op::Binary(f, a, b) => Op::Binary(*f, m(a), m(b)),
        Op::Powi(a, k) => Op::Powi(m(a), *k),
        Op::Clamp(a, b, c) => Op::Clamp(m(a), m(b), m(c)),
        Op::Select(a, b, c) => Op::Select(m(a), m(b), m(c)),
        Op::Detach(a) => Op::Detach(m(a)),
        Op::ToReal(a) => Op::ToReal(m(a)),
        Op::Compare(c, a, b) => Op::Compare(*c, m(a), m(b)),
        Op::And(a, b) => Op::And(m(a), m(b)),
        Op::Or(a, b) => Op::Or(m(a), m(b)),
        Op::Not(a) => Op::Not(m(a)),
        Op::Require {
            value,
            cond,
            id,
            sample,
        } => Op::Require {
            value: m(value),
            cond: m(cond),
            id: *id,
            sample: *sample,
        },
        leaf => leaf.clone(),
    }
}
