//! Families: what inputs each one provides, the names those inputs bring into the body,
//! the index sets, and the hyper-parameters the family adds (AnyLoss amplification).
//!
//! The runtime lays the batch out in the same order (`loss-runtime/src/family/`).

use crate::ir::{Domain, HyperId, InputId};

/// A family of losses (`#[loss(binary)]`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FamilyKind {
    Binary,
    Logits,
    Pairs,
    Scores,
    Dense,
}

/// Families that are designed but not shipped yet.
const PLANNED: &[&str] = &["views"];

impl FamilyKind {
    pub const ALL_NAMES: &'static [&'static str] =
        &["binary", "logits", "pairs", "scores", "views", "dense"];

    /// `Err(true)` for a planned family, `Err(false)` for an unknown name.
    pub fn from_name(name: &str) -> Result<Self, bool> {
        match name {
            "binary" => Ok(FamilyKind::Binary),
            "logits" => Ok(FamilyKind::Logits),
            "pairs" => Ok(FamilyKind::Pairs),
            "scores" => Ok(FamilyKind::Scores),
            "dense" => Ok(FamilyKind::Dense),
            other => Err(PLANNED.contains(&other)),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FamilyKind::Binary => "binary",
            FamilyKind::Logits => "logits",
            FamilyKind::Pairs => "pairs",
            FamilyKind::Scores => "scores",
            FamilyKind::Dense => "dense",
        }
    }

    /// The output kinds a definition may return, and what each means.
    pub fn outputs(self) -> &'static [(&'static str, crate::ast::Output)] {
        use crate::ast::Output;
        match self {
            FamilyKind::Binary | FamilyKind::Logits | FamilyKind::Dense => {
                &[("Scalar", Output::Scalar), ("PerSample", Output::PerSample)]
            }
            FamilyKind::Pairs => &[("Scalar", Output::Scalar), ("PerAnchor", Output::PerSample)],
            FamilyKind::Scores => &[("Scalar", Output::Scalar), ("PerQuery", Output::PerSample)],
        }
    }

    /// Index sets that take an anchor: `pos(i)` (refs sharing `i`'s label), …
    pub fn anchored_sets(self) -> &'static [(&'static str, Anchored)] {
        match self {
            FamilyKind::Pairs => &[
                ("pos", Anchored::SameLabel),
                ("neg", Anchored::OtherLabel),
                ("others", Anchored::Others),
                ("same_view", Anchored::SameView),
            ],
            FamilyKind::Scores => &[
                ("relevant", Anchored::Relevant),
                ("irrelevant", Anchored::Irrelevant),
            ],
            _ => &[],
        }
    }

    pub fn roles(self) -> &'static [Role] {
        match self {
            FamilyKind::Binary => &[
                Role::SoftConfusion,
                Role::Probs,
                Role::Amplified,
                Role::Targets,
            ],
            FamilyKind::Logits => &[Role::Logits, Role::Labels],
            FamilyKind::Pairs => &[Role::Similarity, Role::Labels, Role::Views],
            FamilyKind::Scores => &[Role::Scores, Role::Relevance],
            FamilyKind::Dense => &[Role::Prediction, Role::Target],
        }
    }

    pub fn role_names(self) -> Vec<&'static str> {
        self.roles().iter().map(|r| r.type_name()).collect()
    }

    /// The set an example reduction in a message ranges over, and its usual index
    /// (`classes` and `k` for logits), so hints only name sets the family has.
    pub fn example_set(self) -> (&'static str, &'static str) {
        match self {
            FamilyKind::Binary => ("samples", "j"),
            FamilyKind::Logits => ("classes", "k"),
            FamilyKind::Pairs => ("refs", "j"),
            FamilyKind::Scores => ("docs", "d"),
            FamilyKind::Dense => ("elements", "e"),
        }
    }

    /// The family's name for the index set over `domain` (`queries` for the scores
    /// family's samples).
    pub fn set_name(self, domain: Domain) -> &'static str {
        self.sets()
            .iter()
            .find(|(_, d)| *d == domain)
            .map_or(domain.name(), |(s, _)| s)
    }

    /// The output kind with one value per sample (`PerSample`, `PerAnchor`, `PerQuery`).
    pub fn per_sample_output(self) -> &'static str {
        self.outputs()
            .iter()
            .find(|(_, o)| *o == crate::ast::Output::PerSample)
            .map_or("PerSample", |(name, _)| name)
    }

    /// The symbol of a set's size in a shape (`N`, `C`, `M`; `Q`, `D` for scores).
    pub fn size_symbol(self, domain: Domain) -> &'static str {
        match (self, domain) {
            (_, Domain::Classes) => "C",
            (FamilyKind::Scores, Domain::Samples) => "Q",
            (FamilyKind::Scores, Domain::Refs) => "D",
            (FamilyKind::Dense, Domain::Refs) => "E",
            (_, Domain::Samples) => "N",
            (_, Domain::Refs) => "M",
        }
    }

    /// The names the runtime gives the family's own inputs, in `losskit eval` and
    /// `Loss::INFO` (`Family::inputs` in `loss-runtime/src/core/info.rs`; a test keeps the
    /// two in step). Inputs are taken by name there, so a declared input may not take one.
    pub fn input_names(self) -> &'static [&'static str] {
        match self {
            FamilyKind::Binary => &["probs", "logits", "targets"],
            FamilyKind::Logits => &["logits", "labels"],
            FamilyKind::Pairs => &[
                "embeddings",
                "similarities",
                "labels",
                "ref_embeddings",
                "ref_labels",
                "views",
                "ref_views",
            ],
            FamilyKind::Scores => &["scores", "relevance"],
            FamilyKind::Dense => &["prediction", "target"],
        }
    }

    /// The index sets a reduction may range over.
    pub fn sets(self) -> &'static [(&'static str, Domain)] {
        match self {
            FamilyKind::Binary => &[("samples", Domain::Samples)],
            FamilyKind::Logits => &[("samples", Domain::Samples), ("classes", Domain::Classes)],
            FamilyKind::Pairs => &[("samples", Domain::Samples), ("refs", Domain::Refs)],
            FamilyKind::Scores => &[("queries", Domain::Samples), ("docs", Domain::Refs)],
            FamilyKind::Dense => &[("samples", Domain::Samples), ("elements", Domain::Refs)],
        }
    }

    /// The family's own raw inputs (its preset), by [`InputId`]: (name, storage, axes,
    /// differentiable). A definition's declared inputs follow them ([`raw_inputs`]).
    pub fn preset_inputs(self) -> Vec<RawInput> {
        match self {
            FamilyKind::Binary => vec![
                RawInput {
                    name: "x".into(),
                    storage: Storage::Values(0),
                    axes: vec![Domain::Samples],
                    differentiable: true,
                },
                RawInput {
                    name: "y".into(),
                    storage: Storage::Values(1),
                    axes: vec![Domain::Samples],
                    differentiable: false,
                },
            ],
            FamilyKind::Logits => vec![
                RawInput {
                    name: "z".into(),
                    storage: Storage::Values(0),
                    axes: vec![Domain::Samples, Domain::Classes],
                    differentiable: true,
                },
                RawInput {
                    name: "y".into(),
                    storage: Storage::Labels(0),
                    axes: vec![Domain::Samples],
                    differentiable: false,
                },
            ],
            FamilyKind::Pairs => vec![
                RawInput {
                    name: "s".into(),
                    storage: Storage::Values(0),
                    axes: vec![Domain::Samples, Domain::Refs],
                    differentiable: true,
                },
                RawInput {
                    name: "y".into(),
                    storage: Storage::Labels(0),
                    axes: vec![Domain::Samples],
                    differentiable: false,
                },
                RawInput {
                    name: "y".into(),
                    storage: Storage::Labels(1),
                    axes: vec![Domain::Refs],
                    differentiable: false,
                },
                RawInput {
                    name: "v".into(),
                    storage: Storage::Labels(2),
                    axes: vec![Domain::Samples],
                    differentiable: false,
                },
                RawInput {
                    name: "v".into(),
                    storage: Storage::Labels(3),
                    axes: vec![Domain::Refs],
                    differentiable: false,
                },
            ],
            FamilyKind::Dense => vec![
                RawInput {
                    name: "x".into(),
                    storage: Storage::Values(0),
                    axes: vec![Domain::Samples, Domain::Refs],
                    differentiable: true,
                },
                RawInput {
                    name: "t".into(),
                    storage: Storage::Values(1),
                    axes: vec![Domain::Samples, Domain::Refs],
                    differentiable: false,
                },
            ],
            FamilyKind::Scores => vec![
                RawInput {
                    name: "s".into(),
                    storage: Storage::Values(0),
                    axes: vec![Domain::Samples, Domain::Refs],
                    differentiable: true,
                },
                RawInput {
                    name: "r".into(),
                    storage: Storage::Values(1),
                    axes: vec![Domain::Samples, Domain::Refs],
                    differentiable: false,
                },
            ],
        }
    }

    /// Hyper-parameters the family adds when `uses_amplification` (AnyLoss' `L` and switch).
    pub fn family_hypers(self, uses_amplification: bool) -> Vec<FamilyHyper> {
        match self {
            FamilyKind::Binary if uses_amplification => vec![
                FamilyHyper {
                    name: "amplification",
                    flag: false,
                    default: 73.0,
                    positive: true,
                    doc: "L, the scale of the amplification A(p) = sigmoid(L·(p − ½)) (AnyLoss; the official notebooks use 73)",
                },
                FamilyHyper {
                    name: "amplify",
                    flag: true,
                    default: 1.0,
                    positive: false,
                    doc: "whether to amplify; `false` gives the paper's un-amplified \"pure\" variant (a = p)",
                },
            ],
            _ => Vec::new(),
        }
    }
}

/// Where a raw input lives in the runtime's `Batch`.
#[derive(Clone, Copy, Debug)]
pub enum Storage {
    Values(usize),
    Labels(usize),
}

/// One input tensor as the kernels see it.
#[derive(Clone, Debug)]
pub struct RawInput {
    pub name: String,
    pub storage: Storage,
    pub axes: Vec<Domain>,
    pub differentiable: bool,
}

/// How many `values` and `labels` slices the family's preset fills in the `Batch`.
fn storage_counts(inputs: &[RawInput]) -> (usize, usize) {
    let values = inputs
        .iter()
        .filter_map(|r| match r.storage {
            Storage::Values(k) => Some(k + 1),
            Storage::Labels(_) => None,
        })
        .max()
        .unwrap_or(0);
    let labels = inputs
        .iter()
        .filter_map(|r| match r.storage {
            Storage::Labels(k) => Some(k + 1),
            Storage::Values(_) => None,
        })
        .max()
        .unwrap_or(0);
    (values, labels)
}

/// A definition's raw inputs, by [`InputId`]: the family's preset, then the declared
/// inputs in declaration order, each stored after the family's (reals in `values`,
/// `Index` labels in `labels`), as the runtime appends them.
pub fn raw_inputs(family: FamilyKind, declared: &[DeclaredParam]) -> Vec<RawInput> {
    let mut out = family.preset_inputs();
    let (mut values, mut labels) = storage_counts(&out);
    for d in declared {
        let storage = if d.kind == DeclKind::Index {
            labels += 1;
            Storage::Labels(labels - 1)
        } else {
            values += 1;
            Storage::Values(values - 1)
        };
        out.push(RawInput {
            name: d.name.to_string(),
            storage,
            axes: d.axes.clone(),
            differentiable: d.kind == DeclKind::Traced,
        });
    }
    out
}

/// The kind of a declared input (`t: Given<samples, classes>`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DeclKind {
    /// `Given<..>`: a constant real tensor.
    Given,
    /// `Traced<..>`: a differentiable real tensor.
    Traced,
    /// `Mask<..>`: a constant 0/1 tensor.
    Mask,
    /// `Index<axes.., set>`: integer labels into `set`.
    Index,
    /// `State<samples>`: a value per dataset sample kept across calls, read as a
    /// constant and written by `update(..)`.
    State,
}

impl DeclKind {
    pub const NAMES: &'static [&'static str] = &["Given", "Traced", "Mask", "Index", "State"];

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "Given" => Some(DeclKind::Given),
            "Traced" => Some(DeclKind::Traced),
            "Mask" => Some(DeclKind::Mask),
            "Index" => Some(DeclKind::Index),
            "State" => Some(DeclKind::State),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// A declared input: `t: Given<samples, classes>`, `g: Index<samples, classes>`.
#[derive(Clone, Debug)]
pub struct DeclaredParam {
    pub name: proc_macro2::Ident,
    pub kind: DeclKind,
    /// The axes, as index sets of the family.
    pub axes: Vec<Domain>,
    /// For `Index`: the set the labels index.
    pub indexes: Option<Domain>,
    /// For `State`: the value of a sample not updated yet (`#[state(init = ..)]`).
    pub init: f64,
}

/// A hyper-parameter the family adds.
pub struct FamilyHyper {
    pub name: &'static str,
    pub flag: bool,
    pub default: f64,
    pub positive: bool,
    pub doc: &'static str,
}

/// An input type a definition can declare (`cm: SoftConfusion`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// binary: the soft confusion matrix, fields `tp fp fn_ tn n pos neg`.
    SoftConfusion,
    /// binary: the probability `p[i]` (σ of the logit when given logits).
    Probs,
    /// binary: the amplified probability `a[i]`.
    Amplified,
    /// binary: the 0/1 target `y[i]`.
    Targets,
    /// logits: `z[i][k]`.
    Logits,
    /// logits and pairs: the label `y[i]` (pairs: also `y[j]` of a reference), an index.
    Labels,
    /// pairs: the similarity `s[i][j]` of anchor `i` and reference `j`.
    Similarity,
    /// scores: the score `s[q][d]` of document `d` for query `q`.
    Scores,
    /// scores: the 0/1 relevance `r[q][d]`.
    Relevance,
    /// dense: the prediction `x[i][e]`, element `e` of sample `i` (an image's pixels and
    /// channels, flattened).
    Prediction,
    /// dense: the regression target `t[i][e]`, the prediction's shape.
    Target,
    /// pairs: the view `v[i]` of a row (`v[j]` of a reference), an index: which
    /// augmentation of its item a row is, under a `Views` input; 0 for every row of
    /// another input.
    Views,
}

/// The rule of an anchored index set.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Anchored {
    /// `pos(i)`: references with `i`'s label (not `i` itself when the references are the batch).
    SameLabel,
    /// `neg(i)`: references with another label.
    OtherLabel,
    /// `others(i)`: every reference but `i` itself (all of them for a separate reference set).
    Others,
    /// `same_view(i)`: references of `i`'s view, not `i` itself.
    SameView,
    /// `relevant(q)`: documents with `r[q][d] = 1`.
    Relevant,
    /// `irrelevant(q)`: documents with `r[q][d] = 0`.
    Irrelevant,
}

impl Role {
    pub fn type_name(self) -> &'static str {
        match self {
            Role::SoftConfusion => "SoftConfusion",
            Role::Probs => "Probs",
            Role::Amplified => "Amplified",
            Role::Targets => "Targets",
            Role::Logits => "Logits",
            Role::Labels => "Labels",
            Role::Similarity => "Similarity",
            Role::Scores => "Scores",
            Role::Relevance => "Relevance",
            Role::Prediction => "Prediction",
            Role::Target => "Target",
            Role::Views => "Views",
        }
    }

    pub fn from_type(family: FamilyKind, ty: &str) -> Option<Role> {
        family.roles().iter().copied().find(|r| r.type_name() == ty)
    }

    /// Whether the role needs the family's amplification hyper-parameters.
    pub fn uses_amplification(self) -> bool {
        matches!(self, Role::SoftConfusion | Role::Amplified)
    }

    /// The fields of a role with fields.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Role::SoftConfusion => &["tp", "fp", "fn_", "tn", "n", "pos", "neg"],
            _ => &[],
        }
    }

    /// How the role is indexed, for help messages.
    pub fn example(self, name: &str) -> String {
        match self {
            Role::Logits => format!("{name}[i][k]"),
            Role::Similarity | Role::Scores | Role::Relevance => format!("{name}[i][j]"),
            Role::Prediction | Role::Target => format!("{name}[i][e]"),
            Role::SoftConfusion => format!("{name}.tp"),
            _ => format!("{name}[i]"),
        }
    }
}

/// Hyper-parameter ids of the binary family's amplification, once assigned.
#[derive(Clone, Copy)]
pub struct Amplification {
    pub scale: HyperId,
    pub enabled: HyperId,
}

pub const X: InputId = InputId(0);
pub const Y: InputId = InputId(1);
/// pairs: the references' labels.
pub const Y_REF: InputId = InputId(2);
/// pairs: the anchors' views.
pub const V: InputId = InputId(3);
/// pairs: the references' views.
pub const V_REF: InputId = InputId(4);

#[cfg(test)]
mod tests {
    use super::*;

    /// The runtime's table of each family's inputs (`const <FAMILY>_INPUTS`).
    const RUNTIME_INFO: &str = include_str!("../../loss-runtime/src/core/info.rs");

    /// The names of the runtime's `const {table}: &[InputInfo]`, in order: the first
    /// argument of each `input("name", ..)` there.
    fn runtime_names(table: &str) -> Vec<&'static str> {
        let start = format!("const {table}: &[InputInfo] = &[");
        let body = RUNTIME_INFO
            .split(start.as_str())
            .nth(1)
            .unwrap_or_else(|| panic!("loss-runtime's info.rs has no `{start}`"));
        let body = body.split("\n];").next().unwrap_or(body);
        body.split("input(")
            .skip(1)
            .filter_map(|call| call.trim_start().strip_prefix('"'))
            .filter_map(|call| call.split('"').next())
            .collect()
    }

    /// The names a declared input may not take are exactly the runtime's input names.
    #[test]
    fn input_names_are_the_runtimes() {
        for (family, table) in [
            (FamilyKind::Binary, "BINARY_INPUTS"),
            (FamilyKind::Logits, "LOGITS_INPUTS"),
            (FamilyKind::Pairs, "PAIRS_INPUTS"),
            (FamilyKind::Scores, "SCORES_INPUTS"),
            (FamilyKind::Dense, "DENSE_INPUTS"),
        ] {
            assert_eq!(family.input_names(), runtime_names(table), "{table}");
        }
    }
}
