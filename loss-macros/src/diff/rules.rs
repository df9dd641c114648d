//! One row per primitive: its local partial derivatives, as IR nodes.
//!
//! `partials(node)` returns, for each argument, ∂node/∂arg. The chain rule (in
//! `diff/mod.rs`) multiplies them by the node's adjoint with [`Bin::MulZ`].

use crate::ir::{Bin, Cmp, Graph, NodeId, Op, Un};

/// The least value of `1 − x²` in the derivative of `acos`, so that it stays finite
/// (−10⁶) at x = ±1.
pub const ACOS_RADICAND_FLOOR: f64 = 1e-12;

/// ∂node/∂arg for every differentiable argument of `node`.
pub fn partials(g: &mut Graph, node: NodeId) -> Vec<(NodeId, NodeId)> {
    let op = g.op(node).clone();
    match op {
        // ----- arithmetic -----
        // d(a+b) = da + db
        Op::Binary(Bin::Add, a, b) => {
            let one = g.constant(1.0);
            vec![(a, one), (b, one)]
        }
        // d(a−b) = da − db
        Op::Binary(Bin::Sub, a, b) => {
            let (one, m1) = (g.constant(1.0), g.constant(-1.0));
            vec![(a, one), (b, m1)]
        }
        // d(a·b) = b·da + a·db
        Op::Binary(Bin::Mul | Bin::MulZ, a, b) => vec![(a, b), (b, a)],
        // d(a/b) = da/b − (a/b)/b·db
        Op::Binary(Bin::Div, a, b) => {
            let one = g.constant(1.0);
            let inv = g.div(one, b);
            let q = g.div(node, b);
            let mq = g.neg(q);
            vec![(a, inv), (b, mq)]
        }
        // d(−a) = −da
        Op::Unary(Un::Neg, a) => vec![(a, g.constant(-1.0))],
        // d(aᵇ) = b·aᵇ⁻¹·da + aᵇ·ln(a)·db
        Op::Binary(Bin::Powf, a, b) => {
            let one = g.constant(1.0);
            let bm1 = g.sub(b, one);
            let p = g.binary(Bin::Powf, a, bm1);
            let da = g.mul(b, p);
            let la = g.unary(Un::Ln, a);
            let db = g.mul(node, la);
            vec![(a, da), (b, db)]
        }
        // d(xⁿ) = n·xⁿ⁻¹·dx
        Op::Powi(x, n) => {
            let nn = g.constant(f64::from(n));
            let d = match n - 1 {
                0 => nn,
                1 => g.mul(nn, x),
                m => {
                    let p = g.intern(Op::Powi(x, m));
                    g.mul(nn, p)
                }
            };
            vec![(x, d)]
        }
        // ----- exponentials and logarithms -----
        // d eˣ = eˣ dx
        Op::Unary(Un::Exp, x) => vec![(x, node)],
        // d ln x = dx / x
        Op::Unary(Un::Ln, x) => {
            let one = g.constant(1.0);
            vec![(x, g.div(one, x))]
        }
        // d ln(1+x) = dx / (1+x)
        Op::Unary(Un::Ln1p, x) => {
            let one = g.constant(1.0);
            let d = g.add(one, x);
            vec![(x, g.div(one, d))]
        }
        // d √x = dx / (2√x)   (infinite at 0)
        Op::Unary(Un::Sqrt, x) => {
            let half = g.constant(0.5);
            vec![(x, g.div(half, node))]
        }
        // ----- sigmoids -----
        // d σ(x) = σ(x)·σ(−x) dx   (keeps tiny non-zero values in both tails)
        Op::Unary(Un::Sigmoid, x) => {
            let mx = g.neg(x);
            let smx = g.unary(Un::Sigmoid, mx);
            vec![(x, g.mul(node, smx))]
        }
        // d softplus(x) = σ(x) dx
        Op::Unary(Un::Softplus, x) => vec![(x, g.unary(Un::Sigmoid, x))],
        // d tanh x = (1 − tanh²x) dx
        Op::Unary(Un::Tanh, x) => {
            let one = g.constant(1.0);
            let t2 = g.intern(Op::Powi(node, 2));
            vec![(x, g.sub(one, t2))]
        }
        // ----- trigonometry -----
        // d cos x = −sin x dx
        Op::Unary(Un::Cos, x) => {
            let s = g.unary(Un::Sin, x);
            vec![(x, g.neg(s))]
        }
        // d sin x = cos x dx
        Op::Unary(Un::Sin, x) => vec![(x, g.unary(Un::Cos, x))],
        // d acos x = −dx / √(1 − x²). The derivative is infinite at x = ±1; the radicand is
        // clamped below at ACOS_RADICAND_FLOOR (1e-12), so at ±1 (and, where the value is
        // already NaN, outside [−1, 1]) the derivative is the finite −1/√1e-12 = −10⁶.
        Op::Unary(Un::Acos, x) => {
            let one = g.constant(1.0);
            let x2 = g.intern(Op::Powi(x, 2));
            let radicand = g.sub(one, x2);
            let floor = g.constant(ACOS_RADICAND_FLOOR);
            let clamped = g.binary(Bin::Max, radicand, floor);
            let root = g.unary(Un::Sqrt, clamped);
            let m1 = g.constant(-1.0);
            vec![(x, g.div(m1, root))]
        }
        // d (eˣ − 1) = eˣ dx
        Op::Unary(Un::Expm1, x) => vec![(x, g.unary(Un::Exp, x))],
        // ----- kinks -----
        // d|x| = sign(x) dx   (0 at x = 0)
        Op::Unary(Un::Abs, x) => vec![(x, g.unary(Un::Sign, x))],
        // d relu(x) = [x > 0] dx   (0 at x = 0)
        Op::Unary(Un::Relu, x) => {
            let zero = g.constant(0.0);
            vec![(x, indicator(g, Cmp::Gt, x, zero))]
        }
        // d min(a,b) = [a ≤ b] da + [a > b] db   (ties go to the first argument)
        Op::Binary(Bin::Min, a, b) => {
            let first = g.intern(Op::Compare(Cmp::Le, a, b));
            two_way(g, first, a, b)
        }
        // d max(a,b) = [a ≥ b] da + [a < b] db   (ties go to the first argument)
        Op::Binary(Bin::Max, a, b) => {
            let first = g.intern(Op::Compare(Cmp::Ge, a, b));
            two_way(g, first, a, b)
        }
        // d clamp(x,lo,hi) = [lo ≤ x ≤ hi] dx + [x < lo] dlo + [x > hi] dhi
        // (at a bound, the gradient passes to x, as PyTorch does)
        Op::Clamp(x, lo, hi) => {
            let ge = g.intern(Op::Compare(Cmp::Ge, x, lo));
            let le = g.intern(Op::Compare(Cmp::Le, x, hi));
            let inside = g.intern(Op::And(ge, le));
            let (one, zero) = (g.constant(1.0), g.constant(0.0));
            let dx = g.select(inside, one, zero);
            let dlo = indicator(g, Cmp::Lt, x, lo);
            let dhi = indicator(g, Cmp::Gt, x, hi);
            vec![(x, dx), (lo, dlo), (hi, dhi)]
        }
        // d select(c,a,b) = [c] da + [¬c] db   (the branch taken)
        Op::Select(c, a, b) => two_way(g, c, a, b),
        // a requirement passes its value through; its condition is a constant
        Op::Require { value, .. } => vec![(value, g.constant(1.0))],
        // ----- no derivative -----
        // detach, comparisons and the rounding family are constants to the chain rule
        _ => Vec::new(),
    }
}

fn indicator(g: &mut Graph, cmp: Cmp, a: NodeId, b: NodeId) -> NodeId {
    let c = g.intern(Op::Compare(cmp, a, b));
    let (one, zero) = (g.constant(1.0), g.constant(0.0));
    g.select(c, one, zero)
}

fn two_way(g: &mut Graph, first: NodeId, a: NodeId, b: NodeId) -> Vec<(NodeId, NodeId)> {
    let (one, zero) = (g.constant(1.0), g.constant(0.0));
    let da = g.select(first, one, zero);
    let db = g.select(first, zero, one);
    vec![(a, da), (b, db)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{HyperId, Program};

    /// A program whose only hyper-parameter `x` stands for the variable.
    fn setup() -> (Program, NodeId) {
        let mut p = Program {
            hyper_names: vec!["x".into(), "y".into()],
            ..Program::default()
        };
        let x = p.graph.intern(Op::Hyper(HyperId(0)));
        (p, x)
    }

    fn d(p: &mut Program, node: NodeId) -> Vec<String> {
        let parts = partials(&mut p.graph, node);
        parts.into_iter().map(|(_, dn)| p.node_string(dn)).collect()
    }

    #[test]
    fn exp_is_its_own_derivative() {
        let (mut p, x) = setup();
        let e = p.graph.unary(Un::Exp, x);
        assert_eq!(d(&mut p, e), ["exp(x)"]);
    }

    #[test]
    fn ln_gives_reciprocal() {
        let (mut p, x) = setup();
        let l = p.graph.unary(Un::Ln, x);
        assert_eq!(d(&mut p, l), ["1/x"]);
    }

    #[test]
    fn ln_1p_gives_reciprocal_of_one_plus() {
        let (mut p, x) = setup();
        let l = p.graph.unary(Un::Ln1p, x);
        assert_eq!(d(&mut p, l), ["1/(1 + x)"]);
    }

    #[test]
    fn sqrt_gives_half_over_root() {
        let (mut p, x) = setup();
        let s = p.graph.unary(Un::Sqrt, x);
        assert_eq!(d(&mut p, s), ["0.5/sqrt(x)"]);
    }

    #[test]
    fn sigmoid_uses_both_tails() {
        let (mut p, x) = setup();
        let s = p.graph.unary(Un::Sigmoid, x);
        assert_eq!(d(&mut p, s), ["sigmoid(x)·sigmoid(−x)"]);
    }

    #[test]
    fn softplus_gives_sigmoid() {
        let (mut p, x) = setup();
        let s = p.graph.unary(Un::Softplus, x);
        assert_eq!(d(&mut p, s), ["sigmoid(x)"]);
    }

    #[test]
    fn tanh_gives_one_minus_square() {
        let (mut p, x) = setup();
        let t = p.graph.unary(Un::Tanh, x);
        assert_eq!(d(&mut p, t), ["1 − tanh(x)^2"]);
    }

    #[test]
    fn cos_and_sin_give_each_other() {
        let (mut p, x) = setup();
        let c = p.graph.unary(Un::Cos, x);
        assert_eq!(d(&mut p, c), ["−sin(x)"]);
        let s = p.graph.unary(Un::Sin, x);
        assert_eq!(d(&mut p, s), ["cos(x)"]);
    }

    #[test]
    fn acos_gives_minus_reciprocal_root_with_a_floored_radicand() {
        let (mut p, x) = setup();
        let a = p.graph.unary(Un::Acos, x);
        assert_eq!(d(&mut p, a), ["(-1)/sqrt(max((1 − x^2), 0.000000000001))"]);
        // the floor makes the derivative finite at ±1: −1/√1e-12 = −10⁶
        assert_eq!(-1.0 / ACOS_RADICAND_FLOOR.sqrt(), -1e6);
    }

    #[test]
    fn expm1_gives_exp() {
        let (mut p, x) = setup();
        let e = p.graph.unary(Un::Expm1, x);
        assert_eq!(d(&mut p, e), ["exp(x)"]);
    }

    #[test]
    fn abs_gives_sign_and_relu_an_indicator() {
        let (mut p, x) = setup();
        let a = p.graph.unary(Un::Abs, x);
        assert_eq!(d(&mut p, a), ["sign(x)"]);
        let r = p.graph.unary(Un::Relu, x);
        assert_eq!(d(&mut p, r), ["[x > 0]"]);
    }

    #[test]
    fn products_and_quotients() {
        let (mut p, x) = setup();
        let y = p.graph.intern(Op::Hyper(HyperId(1)));
        let m = p.graph.mul(x, y);
        assert_eq!(d(&mut p, m), ["y", "x"]);
        let q = p.graph.div(x, y);
        assert_eq!(d(&mut p, q), ["1/y", "−((x/y)/y)"]);
        let s = p.graph.sub(x, y);
        assert_eq!(d(&mut p, s), ["1", "-1"]);
        let a = p.graph.add(x, y);
        assert_eq!(d(&mut p, a), ["1", "1"]);
        let n = p.graph.neg(x);
        assert_eq!(d(&mut p, n), ["-1"]);
    }

    #[test]
    fn powers() {
        let (mut p, x) = setup();
        let c = p.graph.intern(Op::Powi(x, 3));
        assert_eq!(d(&mut p, c), ["3·x^2"]);
        let y = p.graph.intern(Op::Hyper(HyperId(1)));
        let pw = p.graph.binary(Bin::Powf, x, y);
        assert_eq!(d(&mut p, pw), ["y·x^(y − 1)", "x^y·ln(x)"]);
    }

    #[test]
    fn min_max_send_ties_to_the_first_argument() {
        let (mut p, x) = setup();
        let y = p.graph.intern(Op::Hyper(HyperId(1)));
        let m = p.graph.binary(Bin::Max, x, y);
        assert_eq!(d(&mut p, m), ["[x ≥ y]", "(0 if x ≥ y else 1)"]);
        let m = p.graph.binary(Bin::Min, x, y);
        assert_eq!(d(&mut p, m), ["[x ≤ y]", "(0 if x ≤ y else 1)"]);
    }

    #[test]
    fn clamp_passes_inside_the_closed_interval() {
        let (mut p, x) = setup();
        let (lo, hi) = (p.graph.constant(-1.0), p.graph.constant(1.0));
        let c = p.graph.intern(Op::Clamp(x, lo, hi));
        assert_eq!(
            d(&mut p, c),
            ["[(x ≥ (-1)) ∧ (x ≤ 1)]", "[x < (-1)]", "[x > 1]"]
        );
    }

    #[test]
    fn select_follows_the_branch_taken() {
        let (mut p, x) = setup();
        let y = p.graph.intern(Op::Hyper(HyperId(1)));
        let c = p.graph.intern(Op::Compare(Cmp::Gt, x, y));
        let s = p.graph.select(c, x, y);
        assert_eq!(d(&mut p, s), ["[x > y]", "(0 if x > y else 1)"]);
    }

    #[test]
    fn a_requirement_passes_its_value_through() {
        let (mut p, x) = setup();
        let zero = p.graph.constant(0.0);
        let cond = p.graph.intern(Op::Compare(Cmp::Gt, x, zero));
        let r = p.graph.intern(Op::Require {
            value: x,
            cond,
            id: 0,
            sample: None,
        });
        assert_eq!(d(&mut p, r), ["1"]);
        assert_eq!(p.node_string(r), "x (requires x > 0)");
    }

    #[test]
    fn detach_and_rounding_have_no_derivative() {
        let (mut p, x) = setup();
        let dt = p.graph.intern(Op::Detach(x));
        assert!(d(&mut p, dt).is_empty());
        let r = p.graph.unary(Un::Round, x);
        assert!(d(&mut p, r).is_empty());
    }

    /// Every function the language accepts has a row (with its derivative) in the DSL
    /// reference that the runtime docs and the README show.
    #[test]
    fn every_function_is_in_the_dsl_reference() {
        let table = include_str!("../../../loss-runtime/src/dsl.md");
        for f in crate::lower::FUNCTIONS {
            assert!(
                table.contains(&format!("`{f}(")),
                "`{f}` is missing from loss-runtime/src/dsl.md"
            );
        }
    }
}
