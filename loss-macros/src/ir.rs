//! The indexed expression DAG.
//!
//! A [`Program`] is a list of *slots* — values materialised over their free indices (a
//! `let`, or a reduction such as `logsumexp(classes, |k| z[i][k])` which lives in `[i]`) —
//! whose definitions are nodes of one hash-consed [`Graph`]. Identical subexpressions are
//! one node (common-subexpression elimination is free), and every node's arguments have
//! smaller ids, so id order is a topological order.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

/// A node of the [`Graph`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct NodeId(pub u32);
/// An index variable (`i`, `k`), unique per binding.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct VarId(pub u16);
/// A materialised value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct SlotId(pub u16);
/// A raw input of the family (see `family.rs`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct InputId(pub u8);
/// A hyper-parameter, in declaration order (family hyper-parameters last).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct HyperId(pub u8);

/// An index set an index variable ranges over.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Domain {
    /// `samples`: `0..N`.
    Samples,
    /// `classes`: `0..C`.
    Classes,
    /// `refs` (pairs) or `docs` (scores): `0..M`, the columns of a similarity or score matrix.
    Refs,
}

impl Domain {
    pub fn name(self) -> &'static str {
        match self {
            Domain::Samples => "samples",
            Domain::Classes => "classes",
            Domain::Refs => "refs",
        }
    }
    pub fn size_symbol(self) -> &'static str {
        match self {
            Domain::Samples => "N",
            Domain::Classes => "C",
            Domain::Refs => "M",
        }
    }
}

/// An index into an input.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Ix {
    /// `k` — an index variable.
    Var(VarId),
    /// `y[i]` — the label of sample `i` (a gather).
    Label(InputId, VarId),
}

/// A unary real function.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Un {
    /// `-x`
    Neg,
    /// `exp(x)` = eˣ
    Exp,
    /// `ln(x)`
    Ln,
    /// `ln_1p(x)` = ln(1 + x)
    Ln1p,
    /// `sqrt(x)`
    Sqrt,
    /// `abs(x)`
    Abs,
    /// `sigmoid(x)` = 1/(1 + e⁻ˣ)
    Sigmoid,
    /// `softplus(x)` = ln(1 + eˣ)
    Softplus,
    /// `tanh(x)`
    Tanh,
    /// `cos(x)`
    Cos,
    /// `sin(x)`
    Sin,
    /// `acos(x)`, in [0, π]; NaN outside [−1, 1]
    Acos,
    /// `expm1(x)` = eˣ − 1, accurate near 0
    Expm1,
    /// `relu(x)` = max(x, 0)
    Relu,
    /// `round(x)` (not differentiable)
    Round,
    /// `floor(x)` (not differentiable)
    Floor,
    /// `ceil(x)` (not differentiable)
    Ceil,
    /// `sign(x)` (not differentiable)
    Sign,
}

impl Un {
    pub fn name(self) -> &'static str {
        match self {
            Un::Neg => "-",
            Un::Exp => "exp",
            Un::Ln => "ln",
            Un::Ln1p => "ln_1p",
            Un::Sqrt => "sqrt",
            Un::Abs => "abs",
            Un::Sigmoid => "sigmoid",
            Un::Softplus => "softplus",
            Un::Tanh => "tanh",
            Un::Cos => "cos",
            Un::Sin => "sin",
            Un::Acos => "acos",
            Un::Expm1 => "expm1",
            Un::Relu => "relu",
            Un::Round => "round",
            Un::Floor => "floor",
            Un::Ceil => "ceil",
            Un::Sign => "sign",
        }
    }
    pub fn differentiable(self) -> bool {
        !matches!(self, Un::Round | Un::Floor | Un::Ceil | Un::Sign)
    }
}

/// A binary real operation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Bin {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `min(a, b)`
    Min,
    /// `max(a, b)`
    Max,
    /// `powf(a, b)` = aᵇ
    Powf,
    /// `a · b` with `0 · ∞ = 0`: the chain rule's product (adjoint × local derivative),
    /// so that an adjoint of exactly zero never turns into NaN.
    MulZ,
}

/// A comparison, used in filters and `select`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Cmp {
    pub fn symbol(self) -> &'static str {
        match self {
            Cmp::Lt => "<",
            Cmp::Le => "≤",
            Cmp::Gt => ">",
            Cmp::Ge => "≥",
            Cmp::Eq => "=",
            Cmp::Ne => "≠",
        }
    }
}

/// A reduction over an index set.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Red {
    /// `sum(set, |k| x)` = Σₖ x; 0 over the empty set.
    Sum,
    /// `mean(set, |k| x)` = (1/|set|) Σₖ x; 0 over the empty set.
    Mean,
    /// `max(set, |k| x)`; −∞ over the empty set.
    Max,
    /// `min(set, |k| x)`; +∞ over the empty set.
    Min,
    /// `logsumexp(set, |k| x)` = ln Σₖ eˣ, max-shifted; −∞ over the empty set.
    LogSumExp,
    /// `logmeanexp(set, |k| x)` = ln((1/|set|) Σₖ eˣ) = logsumexp − ln|set|, max-shifted;
    /// −∞ over the empty set.
    LogMeanExp,
    /// `argmax(set, |k| x)`: the first maximising index, as a number (not differentiable).
    ArgMax,
    /// `argmin(set, |k| x)`: the first minimising index, as a number (not differentiable).
    ArgMin,
    /// `topk_threshold(set, |k| x, K, α, iterations)`: the `t` with `Σₖ σ(α(x + t)) = K`,
    /// found by bisection in the runtime core (not differentiable; see DEXML soft top-k).
    TopKThreshold,
}

impl Red {
    pub fn name(self) -> &'static str {
        match self {
            Red::Sum => "sum",
            Red::Mean => "mean",
            Red::Max => "max",
            Red::Min => "min",
            Red::LogSumExp => "logsumexp",
            Red::LogMeanExp => "logmeanexp",
            Red::ArgMax => "argmax",
            Red::ArgMin => "argmin",
            Red::TopKThreshold => "topk_threshold",
        }
    }

    /// Whether the slot also keeps how many elements it reduced (its `SlotCount`).
    pub fn keeps_count(self) -> bool {
        matches!(self, Red::Mean | Red::LogMeanExp)
    }
}

/// One node of the DAG. Real-valued unless noted.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Op {
    /// `1.5` — a constant (stored as the bits of an `f64`).
    Const(u64),
    /// `alpha` — a real hyper-parameter.
    Hyper(HyperId),
    /// `N`, `C` — the size of an index set.
    Size(Domain),
    /// `z[i][k]`, `z[i][y[i]]` — an element of an input.
    Input(InputId, Vec<Ix>),
    /// A materialised value, read at its free indices.
    Slot(SlotId),
    /// The number of elements a `mean` slot averaged.
    SlotCount(SlotId),
    /// `ḡ` — the adjoint flowing into the expression being differentiated
    /// (only in derived gradients).
    Adjoint,
    /// `f(x)`.
    Unary(Un, NodeId),
    /// `a ∘ b`.
    Binary(Bin, NodeId, NodeId),
    /// `powi(x, n)` = xⁿ for an integer literal `n`.
    Powi(NodeId, i32),
    /// `clamp(x, lo, hi)` = min(max(x, lo), hi).
    Clamp(NodeId, NodeId, NodeId),
    /// `select(c, a, b)` / `if c { a } else { b }`: `a` where the condition holds.
    Select(NodeId, NodeId, NodeId),
    /// `detach(x)`: the value of `x`, with zero derivative.
    Detach(NodeId),
    /// A comparison used as a 0/1 number (only allowed under `detach`).
    ToReal(NodeId),
    /// Boolean: `a < b` on real values.
    Compare(Cmp, NodeId, NodeId),
    /// Boolean: `k == y[i]` on indices.
    IndexCompare(Cmp, Ix, Ix),
    /// Boolean: `a && b`.
    And(NodeId, NodeId),
    /// Boolean: `a || b`.
    Or(NodeId, NodeId),
    /// Boolean: `!a`.
    Not(NodeId),
    /// Boolean: a `bool` hyper-parameter.
    Flag(HyperId),
    /// Boolean: the binary family received logits (`FromLogits`).
    FromLogits,
    /// Boolean: the pairs family's references are the batch itself, so `j = i` is a self-pair.
    ExcludeSelf,
    /// `{ require(cond, ..); value }`: `value`, after checking `cond`; where it fails, the
    /// forward reports requirement `id` (an index into [`Program::requirements`]), for the
    /// value of the `sample` index when the condition depends on one.
    Require {
        value: NodeId,
        cond: NodeId,
        id: u16,
        sample: Option<VarId>,
    },
}

impl Op {
    /// The argument nodes, in order.
    pub fn args(&self) -> Vec<NodeId> {
        match self {
            Op::Unary(_, a) | Op::Powi(a, _) | Op::Detach(a) | Op::ToReal(a) | Op::Not(a) => {
                vec![*a]
            }
            Op::Binary(_, a, b) | Op::Compare(_, a, b) | Op::And(a, b) | Op::Or(a, b) => {
                vec![*a, *b]
            }
            Op::Clamp(a, b, c) | Op::Select(a, b, c) => vec![*a, *b, *c],
            Op::Require { value, cond, .. } => vec![*value, *cond],
            _ => Vec::new(),
        }
    }

    /// Whether the node is boolean-valued.
    pub fn is_bool(&self) -> bool {
        matches!(
            self,
            Op::Compare(..)
                | Op::IndexCompare(..)
                | Op::And(..)
                | Op::Or(..)
                | Op::Not(..)
                | Op::Flag(..)
                | Op::FromLogits
                | Op::ExcludeSelf
        )
    }
}

/// The hash-consed node arena. Constructors fold constants and trivial identities.
#[derive(Default, Clone)]
pub struct Graph {
    nodes: Vec<Op>,
    interned: HashMap<Op, NodeId>,
}

impl Graph {
    pub fn op(&self, n: NodeId) -> &Op {
        &self.nodes[n.0 as usize]
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Interns `op` as is.
    pub fn intern(&mut self, op: Op) -> NodeId {
        if let Some(&id) = self.interned.get(&op) {
            return id;
        }
        let id = NodeId(self.nodes.len() as u32);
        self.nodes.push(op.clone());
        self.interned.insert(op, id);
        id
    }

    pub fn constant(&mut self, v: f64) -> NodeId {
        // one zero: -0.0 and 0.0 fold to the same node
        let v = if v == 0.0 { 0.0 } else { v };
        self.intern(Op::Const(v.to_bits()))
    }

    pub fn as_const(&self, n: NodeId) -> Option<f64> {
        match self.op(n) {
            Op::Const(bits) => Some(f64::from_bits(*bits)),
            _ => None,
        }
    }

    pub fn unary(&mut self, f: Un, a: NodeId) -> NodeId {
        if let Some(x) = self.as_const(a) {
            let folded = match f {
                Un::Neg => Some(-x),
                Un::Exp if x == 0.0 => Some(1.0),
                Un::Ln if x == 1.0 => Some(0.0),
                Un::Sqrt if x >= 0.0 => Some(x.sqrt()),
                Un::Abs => Some(x.abs()),
                _ => None,
            };
            if let Some(v) = folded {
                return self.constant(v);
            }
        }
        if let (Un::Neg, Op::Unary(Un::Neg, inner)) = (f, self.op(a)) {
            return *inner;
        }
        self.intern(Op::Unary(f, a))
    }

    pub fn binary(&mut self, f: Bin, a: NodeId, b: NodeId) -> NodeId {
        let (ca, cb) = (self.as_const(a), self.as_const(b));
        if let (Some(x), Some(y)) = (ca, cb) {
            let v = match f {
                Bin::Add => x + y,
                Bin::Sub => x - y,
                Bin::Mul | Bin::MulZ => x * y,
                Bin::Div => x / y,
                Bin::Min => x.min(y),
                Bin::Max => x.max(y),
                Bin::Powf => x.powf(y),
            };
            if v.is_finite() {
                return self.constant(v);
            }
        }
        match f {
            Bin::Add if ca == Some(0.0) => return b,
            Bin::Add | Bin::Sub if cb == Some(0.0) => return a,
            Bin::Sub if ca == Some(0.0) => return self.unary(Un::Neg, b),
            Bin::Sub if a == b => return self.constant(0.0),
            Bin::Mul | Bin::MulZ if ca == Some(1.0) => return b,
            Bin::Mul | Bin::MulZ | Bin::Div if cb == Some(1.0) => return a,
            Bin::Mul | Bin::MulZ if ca == Some(-1.0) => return self.unary(Un::Neg, b),
            Bin::Mul | Bin::MulZ | Bin::Div if cb == Some(-1.0) => return self.unary(Un::Neg, a),
            // an exact zero adjoint stays zero (0 · anything = 0 in the chain rule)
            Bin::MulZ if ca == Some(0.0) || cb == Some(0.0) => return self.constant(0.0),
            Bin::Add if a == b => {
                let two = self.constant(2.0);
                return self.binary(Bin::Mul, two, a);
            }
            _ => {}
        }
        self.intern(Op::Binary(f, a, b))
    }

    pub fn add(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.binary(Bin::Add, a, b)
    }
    pub fn sub(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.binary(Bin::Sub, a, b)
    }
    pub fn mul(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.binary(Bin::Mul, a, b)
    }
    pub fn div(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.binary(Bin::Div, a, b)
    }
    pub fn neg(&mut self, a: NodeId) -> NodeId {
        self.unary(Un::Neg, a)
    }

    pub fn select(&mut self, c: NodeId, a: NodeId, b: NodeId) -> NodeId {
        if a == b {
            return a;
        }
        self.intern(Op::Select(c, a, b))
    }

    pub fn not(&mut self, c: NodeId) -> NodeId {
        if let Op::Not(inner) = self.op(c) {
            return *inner;
        }
        self.intern(Op::Not(c))
    }

    /// Every node reachable from `roots` (not descending into slots), in id order.
    pub fn reachable(&self, roots: &[NodeId]) -> Vec<NodeId> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<NodeId> = roots.to_vec();
        while let Some(n) = stack.pop() {
            if seen.insert(n) {
                stack.extend(self.op(n).args());
            }
        }
        seen.into_iter().collect()
    }
}

/// An index variable.
#[derive(Clone, Debug)]
pub struct Var {
    pub name: String,
    pub domain: Domain,
}

/// How a slot is defined.
#[derive(Clone, Debug, PartialEq)]
pub enum SlotKind {
    /// `let name = value;`
    Let(NodeId),
    /// `op(set.filter(|var| filter), |var| body)`.
    Reduce {
        op: Red,
        var: VarId,
        filter: Option<NodeId>,
        body: NodeId,
    },
}

/// A value materialised over its free indices.
#[derive(Clone, Debug)]
pub struct Slot {
    /// The `let` name, if any (used when printing).
    pub name: Option<String>,
    /// Free index variables, ascending; the buffer is row-major over them.
    pub free: Vec<VarId>,
    pub kind: SlotKind,
    /// Extra scalar arguments of a runtime reduction (`topk_threshold`'s K, α, iterations).
    pub params: Vec<NodeId>,
}

impl Slot {
    /// The nodes the slot's definition starts from.
    pub fn roots(&self) -> Vec<NodeId> {
        let mut roots: Vec<NodeId> = match &self.kind {
            SlotKind::Let(n) => vec![*n],
            SlotKind::Reduce { filter, body, .. } => filter
                .iter()
                .copied()
                .chain(std::iter::once(*body))
                .collect(),
        };
        roots.extend(self.params.iter().copied());
        roots
    }
}

/// A lowered loss: the graph, its index variables and slots. The last slot is the loss.
#[derive(Clone, Default)]
pub struct Program {
    pub graph: Graph,
    pub vars: Vec<Var>,
    pub slots: Vec<Slot>,
    /// Names of the hyper-parameters, by [`HyperId`] (for printing).
    pub hyper_names: Vec<String>,
    /// Names of the family's raw inputs, by [`InputId`] (for printing).
    pub input_names: Vec<String>,
    /// The messages of the `require(cond, "message")` statements, by id.
    pub requirements: Vec<String>,
    /// The `update(u[i], value)`s, in the order written: which state each writes and the
    /// slot holding its new values.
    pub updates: Vec<StateUpdate>,
}

/// `update(u[i], value)`: state variable `field` (its position among the definition's
/// `State` parameters) takes, for each sample `var`, the value of `slot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateUpdate {
    pub field: usize,
    pub slot: SlotId,
    pub var: VarId,
}

impl Program {
    pub fn new_var(&mut self, name: &str, domain: Domain) -> VarId {
        self.vars.push(Var {
            name: name.to_string(),
            domain,
        });
        VarId(self.vars.len() as u16 - 1)
    }

    pub fn slot(&self, s: SlotId) -> &Slot {
        &self.slots[s.0 as usize]
    }

    pub fn root(&self) -> SlotId {
        SlotId(self.slots.len() as u16 - 1)
    }

    /// Adds a slot and returns the node that reads it.
    pub fn push_slot(&mut self, name: Option<String>, kind: SlotKind) -> NodeId {
        self.push_slot_with(name, kind, Vec::new())
    }

    /// [`push_slot`](Self::push_slot) for a reduction with extra scalar arguments.
    pub fn push_slot_with(
        &mut self,
        name: Option<String>,
        kind: SlotKind,
        params: Vec<NodeId>,
    ) -> NodeId {
        let mut free = match &kind {
            SlotKind::Let(n) => self.free_vars(&[*n]),
            SlotKind::Reduce {
                var, filter, body, ..
            } => {
                let roots: Vec<NodeId> = filter.iter().copied().chain([*body]).collect();
                let mut f = self.free_vars(&roots);
                f.remove(var);
                f
            }
        };
        free.extend(self.free_vars(&params));
        self.slots.push(Slot {
            name,
            free: free.into_iter().collect(),
            kind,
            params,
        });
        let id = SlotId(self.slots.len() as u16 - 1);
        self.graph.intern(Op::Slot(id))
    }

    /// The index variables the value of `roots` depends on.
    pub fn free_vars(&self, roots: &[NodeId]) -> BTreeSet<VarId> {
        let mut out = BTreeSet::new();
        for n in self.graph.reachable(roots) {
            match self.graph.op(n) {
                Op::Input(_, ixs) => {
                    for ix in ixs {
                        match ix {
                            Ix::Var(v) | Ix::Label(_, v) => {
                                out.insert(*v);
                            }
                        }
                    }
                }
                Op::IndexCompare(_, a, b) => {
                    for ix in [a, b] {
                        match ix {
                            Ix::Var(v) | Ix::Label(_, v) => {
                                out.insert(*v);
                            }
                        }
                    }
                }
                Op::Slot(s) | Op::SlotCount(s) => out.extend(self.slot(*s).free.iter().copied()),
                _ => {}
            }
        }
        out
    }

    // ----- printing -----

    pub fn ix_string(&self, ix: &Ix) -> String {
        match ix {
            Ix::Var(v) => self.vars[v.0 as usize].name.clone(),
            Ix::Label(l, v) => format!(
                "{}[{}]",
                self.input_names[l.0 as usize], self.vars[v.0 as usize].name
            ),
        }
    }

    /// The slot as it is read: its name, or its definition inline.
    pub fn slot_string(&self, s: SlotId) -> String {
        let slot = self.slot(s);
        if let Some(name) = &slot.name {
            let idx: Vec<String> = slot
                .free
                .iter()
                .map(|v| self.vars[v.0 as usize].name.clone())
                .collect();
            if idx.is_empty() {
                return name.clone();
            }
            return format!("{name}[{}]", idx.join(","));
        }
        self.slot_definition(s)
    }

    /// The slot's definition in math.
    pub fn slot_definition(&self, s: SlotId) -> String {
        match &self.slot(s).kind {
            SlotKind::Let(n) => self.node_string(*n),
            SlotKind::Reduce {
                op,
                var,
                filter,
                body,
            } => {
                let v = &self.vars[var.0 as usize];
                let set = match filter {
                    Some(f) => format!(
                        "{} ∈ {} : {}",
                        v.name,
                        v.domain.name(),
                        self.node_string(*f)
                    ),
                    None => format!("{} ∈ {}", v.name, v.domain.name()),
                };
                let params = &self.slot(s).params;
                if params.is_empty() {
                    format!("{}_{{{set}}} {}", op.name(), self.paren(*body))
                } else {
                    let args: Vec<String> = params.iter().map(|p| self.node_string(*p)).collect();
                    format!(
                        "{}_{{{set}}}({}; {})",
                        op.name(),
                        self.node_string(*body),
                        args.join(", ")
                    )
                }
            }
        }
    }

    fn paren(&self, n: NodeId) -> String {
        let s = self.node_string(n);
        match self.graph.op(n) {
            Op::Binary(Bin::Add | Bin::Sub | Bin::Mul | Bin::Div | Bin::MulZ, ..)
            | Op::Compare(..)
            | Op::IndexCompare(..)
            | Op::And(..)
            | Op::Or(..)
            | Op::Require { .. } => format!("({s})"),
            Op::Unary(Un::Neg, _) => format!("({s})"),
            Op::Const(_) if s.starts_with('-') => format!("({s})"),
            _ => s,
        }
    }

    /// A node in readable math.
    pub fn node_string(&self, n: NodeId) -> String {
        let g = &self.graph;
        match g.op(n) {
            Op::Const(bits) => {
                let v = f64::from_bits(*bits);
                let mut s = String::new();
                let _ = write!(s, "{v}");
                s
            }
            Op::Hyper(h) | Op::Flag(h) => self.hyper_names[h.0 as usize].clone(),
            Op::Size(d) => d.size_symbol().to_string(),
            Op::Input(inp, ixs) => {
                let mut s = self.input_names[inp.0 as usize].clone();
                for ix in ixs {
                    let _ = write!(s, "[{}]", self.ix_string(ix));
                }
                s
            }
            Op::Slot(s) => self.slot_string(*s),
            Op::SlotCount(s) => format!("|{}|", self.slot_string(*s)),
            Op::Adjoint => "ḡ".into(),
            Op::Unary(Un::Neg, a) => format!("−{}", self.paren(*a)),
            Op::Unary(f, a) => format!("{}({})", f.name(), self.node_string(*a)),
            Op::Binary(f, a, b) => {
                let (a, b) = (self.paren(*a), self.paren(*b));
                match f {
                    Bin::Add => format!("{a} + {b}"),
                    Bin::Sub => format!("{a} − {b}"),
                    Bin::Mul | Bin::MulZ => format!("{a}·{b}"),
                    Bin::Div => format!("{a}/{b}"),
                    Bin::Min => format!("min({a}, {b})"),
                    Bin::Max => format!("max({a}, {b})"),
                    Bin::Powf => format!("{a}^{b}"),
                }
            }
            Op::Powi(a, k) => format!("{}^{k}", self.paren(*a)),
            Op::Clamp(x, lo, hi) => format!(
                "clamp({}, {}, {})",
                self.node_string(*x),
                self.node_string(*lo),
                self.node_string(*hi)
            ),
            Op::Select(c, a, b) => {
                // the chain rule's masks read better as indicators
                match (g.as_const(*a), g.as_const(*b)) {
                    (Some(x), Some(y)) if x == 1.0 && y == 0.0 => {
                        format!("[{}]", self.node_string(*c))
                    }
                    (_, Some(0.0)) => {
                        format!("[{}]·{}", self.node_string(*c), self.paren(*a))
                    }
                    _ => format!(
                        "({} if {} else {})",
                        self.node_string(*a),
                        self.node_string(*c),
                        self.node_string(*b)
                    ),
                }
            }
            Op::Detach(a) => format!("detach({})", self.node_string(*a)),
            Op::ToReal(a) => format!("[{}]", self.node_string(*a)),
            Op::Compare(c, a, b) => format!("{} {} {}", self.paren(*a), c.symbol(), self.paren(*b)),
            Op::IndexCompare(c, a, b) => {
                format!("{} {} {}", self.ix_string(a), c.symbol(), self.ix_string(b))
            }
            Op::And(a, b) => format!("{} ∧ {}", self.paren(*a), self.paren(*b)),
            Op::Or(a, b) => format!("{} ∨ {}", self.paren(*a), self.paren(*b)),
            Op::Not(a) => format!("¬{}", self.paren(*a)),
            Op::Require { value, cond, .. } => format!(
                "{} (requires {})",
                self.paren(*value),
                self.node_string(*cond)
            ),
            Op::FromLogits => "from_logits".into(),
            Op::ExcludeSelf => "refs_are_batch".into(),
        }
    }
}
