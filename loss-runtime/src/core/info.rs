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
    /// A dense prediction `[N, ..]` (images `[N, C, H, W]`, regression outputs `[N, E]`)
    /// and a target of the same shape, each sample's elements flattened.
    Dense,
}

impl Family {
    /// The name used in `#[loss(..)]` and by the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Family::Binary => "binary",
            Family::Logits => "logits",
            Family::Pairs => "pairs",
            Family::Scores => "scores",
            Family::Dense => "dense",
        }
    }

    /// The inputs every loss of the family takes, in call order.
    pub const fn inputs(self) -> &'static [InputInfo] {
        match self {
            Family::Binary => BINARY_INPUTS,
            Family::Logits => LOGITS_INPUTS,
            Family::Pairs => PAIRS_INPUTS,
            Family::Scores => SCORES_INPUTS,
            Family::Dense => DENSE_INPUTS,
        }
    }
}

/// The index sets the families' own inputs run over, as declared inputs name them.
mod sets {
    use super::{Axis, SetRef};

    pub const SAMPLES: SetRef = SetRef {
        name: "samples",
        axis: Axis::Samples,
    };
    pub const CLASSES: SetRef = SetRef {
        name: "classes",
        axis: Axis::Classes,
    };
    pub const REFS: SetRef = SetRef {
        name: "refs",
        axis: Axis::Refs,
    };
    pub const QUERIES: SetRef = SetRef {
        name: "queries",
        axis: Axis::Samples,
    };
    pub const DOCS: SetRef = SetRef {
        name: "docs",
        axis: Axis::Refs,
    };
    pub const ELEMENTS: SetRef = SetRef {
        name: "elements",
        axis: Axis::Refs,
    };
}

/// An input of a family, with the defaults of every field that only some inputs set.
const fn input(
    name: &'static str,
    shape: &'static str,
    kind: InputKind,
    axes: &'static [SetRef],
) -> InputInfo {
    InputInfo {
        name,
        shape,
        differentiable: false,
        kind,
        alternative_to: None,
        optional: false,
        axes,
        indexes: None,
        features: false,
        from_logits: false,
        defaults_to: None,
        needs: None,
        not_with: None,
        needs_a_one: false,
        zeros_by_default: false,
    }
}

/// The inputs of the binary family, in call order.
const BINARY_INPUTS: &[InputInfo] = &[
    input("probs", "[N]", InputKind::Probability, &[sets::SAMPLES]).traced(),
    InputInfo {
        alternative_to: Some("probs"),
        from_logits: true,
        ..input("logits", "[N]", InputKind::Real, &[sets::SAMPLES]).traced()
    },
    input("targets", "[N]", InputKind::Binary, &[sets::SAMPLES]),
];

/// The inputs of the logits family, in call order.
const LOGITS_INPUTS: &[InputInfo] = &[
    InputInfo {
        from_logits: true,
        ..input(
            "logits",
            "[N, C]",
            InputKind::Real,
            &[sets::SAMPLES, sets::CLASSES],
        )
        .traced()
    },
    InputInfo {
        indexes: Some(sets::CLASSES),
        ..input("labels", "[N]", InputKind::Label, &[sets::SAMPLES])
    },
];

/// The inputs of the pairs family, in call order.
const PAIRS_INPUTS: &[InputInfo] = &[
    InputInfo {
        features: true,
        ..input("embeddings", "[N, d]", InputKind::Embeddings, &[sets::SAMPLES]).traced()
    },
    InputInfo {
        alternative_to: Some("embeddings"),
        ..input(
            "similarities",
            "[N, M]",
            InputKind::Real,
            &[sets::SAMPLES, sets::REFS],
        )
        .traced()
    },
    input("labels", "[N]", InputKind::Label, &[sets::SAMPLES]),
    InputInfo {
        optional: true,
        features: true,
        needs: Some(Needs {
            input: "ref_labels",
            hint: "give one label per reference",
        }),
        not_with: Some(Needs {
            input: "similarities",
            hint: "give the similarities against the references [N, M] with `ref_labels`",
        }),
        ..input("ref_embeddings", "[M, d]", InputKind::Embeddings, &[sets::REFS]).traced()
    },
    InputInfo {
        optional: true,
        defaults_to: Some(DefaultsTo {
            input: "labels",
            hint: "a square [N, N] matrix (the batch against itself); give `ref_labels` for a reference set [N, M]",
        }),
        needs: Some(Needs {
            input: "ref_embeddings",
            hint: "give both for a reference set, or neither to compare the batch with itself",
        }),
        ..input("ref_labels", "[M]", InputKind::Label, &[sets::REFS])
    },
    InputInfo {
        optional: true,
        zeros_by_default: true,
        ..input("views", "[N]", InputKind::Label, &[sets::SAMPLES])
    },
    InputInfo {
        optional: true,
        zeros_by_default: true,
        defaults_to: Some(DefaultsTo {
            input: "views",
            hint: "the views of the batch itself; give `ref_views` [M] for a reference set",
        }),
        ..input("ref_views", "[M]", InputKind::Label, &[sets::REFS])
    },
];

/// The inputs of the scores family, in call order.
const SCORES_INPUTS: &[InputInfo] = &[
    input(
        "scores",
        "[Q, D]",
        InputKind::Real,
        &[sets::QUERIES, sets::DOCS],
    )
    .traced(),
    InputInfo {
        needs_a_one: true,
        ..input(
            "relevance",
            "[Q, D]",
            InputKind::Binary,
            &[sets::QUERIES, sets::DOCS],
        )
    },
];

/// The inputs of the dense family, in call order.
const DENSE_INPUTS: &[InputInfo] = &[
    input(
        "prediction",
        "[N, E]",
        InputKind::Real,
        &[sets::SAMPLES, sets::ELEMENTS],
    )
    .traced(),
    input(
        "target",
        "[N, E]",
        InputKind::Real,
        &[sets::SAMPLES, sets::ELEMENTS],
    ),
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
    /// Rows of real features `[rows, d]`, compared by the loss's similarity op into the
    /// similarity matrix the kernel reads.
    Embeddings,
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
    /// The index sets of its leading axes, as a declared input's (`[samples, classes]`).
    pub axes: &'static [SetRef],
    /// For labels: the set they index, if the loss checks it (`classes`).
    pub indexes: Option<SetRef>,
    /// Whether a last axis of free length `d` follows `axes` (embeddings), the same
    /// length across the inputs that have one.
    pub features: bool,
    /// Whether giving this input makes the kernel read its predictions as logits.
    pub from_logits: bool,
    /// For an optional input: the input that stands in for it when it is left out (the
    /// references are then the batch itself), and what that requires, in words.
    pub defaults_to: Option<DefaultsTo>,
    /// Another input that must be given with this one, unless this one's alternative
    /// stands in for it (`ref_labels` with `ref_embeddings`).
    pub needs: Option<Needs>,
    /// An input that cannot be given with this one.
    pub not_with: Option<Needs>,
    /// Whether at least one element must be 1 (a relevance mask with a relevant document).
    pub needs_a_one: bool,
    /// For an optional input: whether it is all zeros when left out and nothing stands
    /// in for it (the pairs family's views: every row is view 0).
    pub zeros_by_default: bool,
}

/// An input named by a rule of [`InputInfo`], with what to do, in words.
#[derive(Clone, Copy, Debug)]
pub struct Needs {
    /// The input.
    pub input: &'static str,
    /// What to do, in words.
    pub hint: &'static str,
}

/// See [`InputInfo::defaults_to`].
#[derive(Clone, Copy, Debug)]
pub struct DefaultsTo {
    /// The input that stands in.
    pub input: &'static str,
    /// What the other inputs' shapes must then be, in words.
    pub hint: &'static str,
}

impl InputInfo {
    /// The same input, differentiable.
    const fn traced(self) -> Self {
        Self {
            differentiable: true,
            ..self
        }
    }

    /// Its role in the declared-input vocabulary: a 0/1 constant is a mask.
    pub fn role(&self) -> DeclaredRole {
        match self.kind {
            _ if self.differentiable => DeclaredRole::Differentiable,
            InputKind::Label => DeclaredRole::Labels,
            InputKind::Binary => DeclaredRole::Mask,
            InputKind::Real | InputKind::Probability | InputKind::Embeddings => {
                DeclaredRole::Constant
            }
        }
    }

    /// The input as a declared input would describe it: name, shape, role and axes.
    pub fn as_declared(&self) -> DeclaredInfo {
        DeclaredInfo {
            name: self.name,
            shape: self.shape,
            role: self.role(),
            axes: self.axes,
            indexes: self.indexes,
        }
    }
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
    /// `State<samples>`: the loss's own per-sample state, a constant in a call (the
    /// generated loss passes it; `losskit eval` takes it by name).
    State,
}

impl DeclaredRole {
    /// In words: `differentiable`, `constant`, `mask` or `labels`.
    pub fn name(self) -> &'static str {
        match self {
            DeclaredRole::Differentiable => "differentiable",
            DeclaredRole::Constant => "constant",
            DeclaredRole::Mask => "mask",
            DeclaredRole::Labels => "labels",
            DeclaredRole::State => "state",
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
