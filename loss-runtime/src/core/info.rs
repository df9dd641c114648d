//! Static descriptions of losses, their inputs and hyper-parameters (for `losskit list`).

/// The input adapter a loss is written against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Binary classification: predictions `[N]`, 0/1 targets, the soft confusion matrix.
    Binary,
    /// Multi-class logits `[N, C]` and integer labels `[N]`.
    Logits,
    /// Embeddings `[N, d]` (or a similarity matrix) and labels: losses over pairs.
    Pairs,
    /// A score matrix `[Q, D]` and a 0/1 relevance mask of the same shape.
    Scores,
}

impl Family {
    /// The name used in `#[loss(..)]` and by the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Family::Binary => "binary",
            Family::Logits => "logits",
            Family::Pairs => "pairs",
            Family::Scores => "scores",
        }
    }

    /// The inputs every loss of the family takes, in call order.
    pub const fn inputs(self) -> &'static [InputInfo] {
        match self {
            Family::Binary => BINARY_INPUTS,
            Family::Logits => LOGITS_INPUTS,
            Family::Pairs => PAIRS_INPUTS,
            Family::Scores => SCORES_INPUTS,
        }
    }
}

/// The inputs of the binary family, in call order.
const BINARY_INPUTS: &[InputInfo] = &[
    InputInfo {
        name: "probs",
        shape: "[N]",
        differentiable: true,
        kind: InputKind::Probability,
        alternative_to: None,
        optional: false,
    },
    InputInfo {
        name: "logits",
        shape: "[N]",
        differentiable: true,
        kind: InputKind::Real,
        alternative_to: Some("probs"),
        optional: false,
    },
    InputInfo {
        name: "targets",
        shape: "[N]",
        differentiable: false,
        kind: InputKind::Binary,
        alternative_to: None,
        optional: false,
    },
];

/// The inputs of the logits family, in call order.
const LOGITS_INPUTS: &[InputInfo] = &[
    InputInfo {
        name: "logits",
        shape: "[N, C]",
        differentiable: true,
        kind: InputKind::Real,
        alternative_to: None,
        optional: false,
    },
    InputInfo {
        name: "labels",
        shape: "[N]",
        differentiable: false,
        kind: InputKind::Label,
        alternative_to: None,
        optional: false,
    },
];

/// The inputs of the pairs family, in call order.
const PAIRS_INPUTS: &[InputInfo] = &[
    InputInfo {
        name: "embeddings",
        shape: "[N, d]",
        differentiable: true,
        kind: InputKind::Real,
        alternative_to: None,
        optional: false,
    },
    InputInfo {
        name: "similarities",
        shape: "[N, M]",
        differentiable: true,
        kind: InputKind::Real,
        alternative_to: Some("embeddings"),
        optional: false,
    },
    InputInfo {
        name: "labels",
        shape: "[N]",
        differentiable: false,
        kind: InputKind::Label,
        alternative_to: None,
        optional: false,
    },
    InputInfo {
        name: "ref_embeddings",
        shape: "[M, d]",
        differentiable: true,
        kind: InputKind::Real,
        alternative_to: None,
        optional: true,
    },
    InputInfo {
        name: "ref_labels",
        shape: "[M]",
        differentiable: false,
        kind: InputKind::Label,
        alternative_to: None,
        optional: true,
    },
];

/// The inputs of the scores family, in call order.
const SCORES_INPUTS: &[InputInfo] = &[
    InputInfo {
        name: "scores",
        shape: "[Q, D]",
        differentiable: true,
        kind: InputKind::Real,
        alternative_to: None,
        optional: false,
    },
    InputInfo {
        name: "relevance",
        shape: "[Q, D]",
        differentiable: false,
        kind: InputKind::Binary,
        alternative_to: None,
        optional: false,
    },
];

/// What kind of values an input holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// Real numbers.
    Real,
    /// Probabilities in `[0, 1]`.
    Probability,
    /// 0 or 1.
    Binary,
    /// Class indices in `0..C`.
    Label,
}

/// One input of a family.
#[derive(Clone, Copy, Debug)]
pub struct InputInfo {
    /// Name, as `losskit eval` expects it.
    pub name: &'static str,
    /// Shape in symbols (`[N]`, `[N, C]`).
    pub shape: &'static str,
    /// Whether the loss has a gradient with respect to it.
    pub differentiable: bool,
    /// What the values are.
    pub kind: InputKind,
    /// Another input that can be given instead of this one.
    pub alternative_to: Option<&'static str>,
    /// Whether the input may be left out (the pairs family's reference set).
    pub optional: bool,
}

/// An index set, as a declared input's axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    /// The samples (`N`; the scores family's queries `Q`).
    Samples,
    /// The classes (`C`).
    Classes,
    /// The references (`M`; the scores family's documents `D`).
    Refs,
}

/// What a declared input is to the loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeclaredRole {
    /// `Traced<..>`: real, with a gradient from the derived backward.
    Differentiable,
    /// `Given<..>`: real, constant.
    Constant,
    /// `Mask<..>`: 0 or 1, constant.
    Mask,
    /// `Index<.., set>`: integer labels into a set.
    Labels,
}

impl DeclaredRole {
    /// In words: `differentiable`, `constant`, `mask` or `labels`.
    pub fn name(self) -> &'static str {
        match self {
            DeclaredRole::Differentiable => "differentiable",
            DeclaredRole::Constant => "constant",
            DeclaredRole::Mask => "mask",
            DeclaredRole::Labels => "labels",
        }
    }
}

/// An index set as a declared input names it: the family's name for it and the axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetRef {
    /// The family's name for the set (`samples`, `classes`, `queries`, …).
    pub name: &'static str,
    /// Which size of the batch it is.
    pub axis: Axis,
}

/// An input a loss declares on top of its family's (`t: Given<samples, classes>`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeclaredInfo {
    /// The parameter's name, as the call passes it and `evaluate` accepts it by.
    pub name: &'static str,
    /// Shape in symbols (`[N, C]`).
    pub shape: &'static str,
    /// Differentiable, constant, mask or labels.
    pub role: DeclaredRole,
    /// Its axes, in order.
    pub axes: &'static [SetRef],
    /// For labels: the set they index.
    pub indexes: Option<SetRef>,
}

/// The type of a hyper-parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HyperKind {
    /// A real number (`f64` field).
    Real,
    /// A switch (`bool` field).
    Flag,
}

/// One hyper-parameter of a loss.
#[derive(Clone, Copy, Debug)]
pub struct HyperInfo {
    /// Field name.
    pub name: &'static str,
    /// Type.
    pub kind: HyperKind,
    /// Default value (flags: 0 or 1).
    pub default: f64,
    /// The constraint in words (`> 0`, `in [0, 1]`), empty when unconstrained.
    pub constraint: &'static str,
    /// First line of its documentation.
    pub doc: &'static str,
}

/// Everything `losskit list` prints about a loss.
#[derive(Clone, Copy, Debug)]
pub struct LossInfo {
    /// The name (the fn's name).
    pub name: &'static str,
    /// The family.
    pub family: Family,
    /// The paper it comes from (empty for user-defined losses without one).
    pub paper: &'static str,
    /// First sentence of its documentation.
    pub summary: &'static str,
    /// Hyper-parameters, in declaration order.
    pub hypers: &'static [HyperInfo],
    /// The definition as the compiler understood it, in readable math.
    pub definition: &'static str,
    /// The derived gradient, in readable math.
    pub gradient: &'static str,
    /// The inputs it declares beyond the family's, in declaration order (passed after the
    /// family's primary input, as a tuple).
    pub declared: &'static [DeclaredInfo],
}
