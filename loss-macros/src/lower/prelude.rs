//! The binary family's prelude: probabilities, amplification, the soft confusion matrix.

use super::*;

impl Lowerer<'_> {
    /// `p[i]`: the input itself, or σ of it when the batch holds logits.
    pub(super) fn probability(&mut self, var: VarId) -> NodeId {
        let g = &mut self.prog.graph;
        let x = g.intern(Op::Input(family::X, vec![Ix::Var(var)]));
        let sx = g.unary(Un::Sigmoid, x);
        let from_logits = g.intern(Op::FromLogits);
        g.select(from_logits, sx, x)
    }

    /// `a[i] = A(p[i]) = σ(L·(p[i] − ½))`, or `p[i]` when amplification is off.
    pub(super) fn amplified(&mut self, var: VarId) -> NodeId {
        let amp = self.amplification;
        let p = self.probability(var);
        let g = &mut self.prog.graph;
        let half = g.constant(0.5);
        let centred = g.sub(p, half);
        let scale = g.intern(Op::Hyper(amp.scale));
        let scaled = g.mul(scale, centred);
        let a = g.unary(Un::Sigmoid, scaled);
        let on = g.intern(Op::Flag(amp.enabled));
        g.select(on, a, p)
    }

    /// A sum over the batch, materialised once per definition.
    pub(super) fn batch_sum(
        &mut self,
        key: &'static str,
        term: impl FnOnce(&mut Self, VarId) -> NodeId,
    ) -> NodeId {
        if let Some(&n) = self.prelude.get(key) {
            return n;
        }
        let var = self.prog.new_var("j", Domain::Samples);
        let body = term(self, var);
        let node = self.prog.push_slot(
            Some(key.to_string()),
            SlotKind::Reduce {
                op: Red::Sum,
                var,
                filter: None,
                body,
            },
        );
        self.prelude.insert(key, node);
        node
    }

    /// A field of the soft confusion matrix (`None` for a name that is not one).
    pub(super) fn confusion(&mut self, field: &str) -> Option<NodeId> {
        let tp = |s: &mut Self| {
            s.batch_sum("TP", |s, j| {
                let a = s.amplified(j);
                let y = s.prog.graph.intern(Op::Input(family::Y, vec![Ix::Var(j)]));
                s.prog.graph.mul(y, a)
            })
        };
        let sum_a = |s: &mut Self| s.batch_sum("ΣA", |s, j| s.amplified(j));
        let pos = |s: &mut Self| {
            s.batch_sum("P", |s, j| {
                s.prog.graph.intern(Op::Input(family::Y, vec![Ix::Var(j)]))
            })
        };
        let n = self.prog.graph.intern(Op::Size(Domain::Samples));
        Some(match field {
            "tp" => tp(self),
            "fp" => {
                let (sa, tp) = (sum_a(self), tp(self));
                self.prog.graph.sub(sa, tp)
            }
            "fn_" => {
                let (p, tp) = (pos(self), tp(self));
                self.prog.graph.sub(p, tp)
            }
            "tn" => {
                let (p, sa, tp) = (pos(self), sum_a(self), tp(self));
                let g = &mut self.prog.graph;
                let a = g.sub(n, p);
                let b = g.sub(a, sa);
                g.add(b, tp)
            }
            "n" => n,
            "pos" => pos(self),
            "neg" => {
                let p = pos(self);
                self.prog.graph.sub(n, p)
            }
            _ => return None,
        })
    }
}
