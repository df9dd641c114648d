//! Every paper of losskit's catalogue, shipped or not, and why.
//!
//! The [catalogue](crate::catalogue) lists the losses that ship; this table lists the
//! papers they come from, so that nothing is silently missing: for each paper, the losses
//! shipped from it, what of it is not shipped yet and what that needs, or why it defines
//! no training loss at all. `losskit list --all` prints it and the README's "Papers"
//! section is checked against it.
//!
//! ```
//! use loss_runtime::papers;
//!
//! let z = papers::all().iter().find(|p| p.number == 9).unwrap();
//! assert_eq!(z.losses, ["z_loss"]);
//! assert!(z.status() == papers::Status::Shipped);
//! ```

/// One paper of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paper {
    /// Its number in the catalogue (the `NN` of its spec).
    pub number: u8,
    /// Its title.
    pub title: &'static str,
    /// The year it appeared.
    pub year: u16,
    /// The catalogue names of the losses shipped from it; empty when none is.
    pub losses: &'static [&'static str],
    /// What of the paper is not shipped and what it needs, or, for a paper that defines
    /// no training loss, why none ships; empty when all of it ships.
    pub remaining: &'static str,
    /// Whether the paper defines a training loss at all.
    pub defines_a_loss: bool,
}

/// How much of a paper ships.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Every loss it defines ships.
    Shipped,
    /// Some of its losses ship; [`Paper::remaining`] says what does not.
    Partly,
    /// None of its losses ships yet; [`Paper::remaining`] says what it needs.
    NotYet,
    /// It defines no training loss; [`Paper::remaining`] says why.
    NoLoss,
}

impl Status {
    /// The status in a few words, as `losskit list --all` and the README print it.
    pub fn name(self) -> &'static str {
        match self {
            Status::Shipped => "shipped",
            Status::Partly => "partly shipped",
            Status::NotYet => "not shipped yet",
            Status::NoLoss => "no training loss",
        }
    }
}

impl Paper {
    /// How much of the paper ships.
    pub fn status(&self) -> Status {
        match (self.defines_a_loss, self.losses.is_empty(), self.remaining) {
            (false, _, _) => Status::NoLoss,
            (true, true, _) => Status::NotYet,
            (true, false, "") => Status::Shipped,
            (true, false, _) => Status::Partly,
        }
    }
}

/// A paper that defines a loss.
const fn paper(
    number: u8,
    title: &'static str,
    year: u16,
    losses: &'static [&'static str],
    remaining: &'static str,
) -> Paper {
    Paper {
        number,
        title,
        year,
        losses,
        remaining,
        defines_a_loss: true,
    }
}

/// A paper that defines no training loss; `why` says so in a sentence or two.
const fn no_loss(number: u8, title: &'static str, year: u16, why: &'static str) -> Paper {
    Paper {
        number,
        title,
        year,
        losses: &[],
        remaining: why,
        defines_a_loss: false,
    }
}

static ALL: &[Paper] = &[
    paper(
        1,
        "AnyLoss: Transforming Classification Metrics into Loss Functions",
        2024,
        &[
            "anyloss_accuracy",
            "anyloss_fbeta",
            "anyloss_f1",
            "anyloss_gmean",
            "anyloss_balanced_accuracy",
            "anyloss_mcc",
            "anyloss_jaccard",
        ],
        "",
    ),
    paper(
        2,
        "Dual-Encoders for Extreme Multi-Label Classification",
        2024,
        &[
            "dexml_decoupled_softmax",
            "dexml_softmax",
            "dexml_bce",
            "dexml_soft_topk",
        ],
        "",
    ),
    paper(
        3,
        "Cross-Entropy Loss Functions: Theoretical Analysis and Applications",
        2023,
        &["comp_sum", "smooth_adv_comp_sum"],
        "",
    ),
    paper(
        4,
        "Dual-Head Knowledge Distillation: Enhancing Logits Utilization with an Auxiliary Head",
        2024,
        &["kd_kl", "binary_kl", "binary_kl_norm", "dhkd"],
        "",
    ),
    paper(
        5,
        "Learning Unnormalized Statistical Models via Compositional Optimization",
        2023,
        &["nce"],
        "the compositional NLL (MECO) is not shipped: its estimator (whether the moving average of the partition function is updated before its use, a plain average or a momentum / variance-reduced one, its initialisation and rate) could not be checked against the paper's algorithm, of which only the abstract could be read here, and there is no official code",
    ),
    paper(
        6,
        "Adaptive Multi-head Contrastive Learning",
        2024,
        &["amcl", "amcl_paper"],
        "",
    ),
    paper(
        7,
        "Unified Negative Pair Generation toward Well-discriminative Feature Space for Face \
         Recognition",
        2022,
        &["unpg"],
        "",
    ),
    paper(
        8,
        "Unsupervised Deep Learning-Based Pansharpening With Jointly Enhanced Spectral and \
         Spatial Fidelity (λ-PNN)",
        2023,
        &[],
        "its structural term ships as `pnn_structural` (listed under 17: Z-PNN's, the same \
         function), and the MTF kernels, downgrade and local correlation field ship in \
         `core::image`; the composite is not shipped: its R-ERGAS term and Khan's D_λ via the \
         Q2ⁿ index (value-only by default) need the `ergas` and `q2n` utilities",
    ),
    paper(
        9,
        "The Z-loss: a shift and scale invariant classification loss belonging to the \
         Spherical Family",
        2016,
        &["z_loss"],
        "",
    ),
    paper(
        10,
        "Multi-Similarity Loss with General Pair Weighting for Deep Metric Learning",
        2019,
        &[
            "multi_similarity",
            "gpw_contrastive",
            "gpw_triplet",
            "gpw_triplet_batch_hard",
            "gpw_binomial_deviance",
            "gpw_lifted_structure",
        ],
        "",
    ),
    paper(
        11,
        "Optimizing What Matters: AUC-Driven Learning for Robust Neural Retrieval",
        2025,
        &["mw_auc"],
        "",
    ),
    paper(
        12,
        "Deep Clustering via Joint Convolutional Autoencoder Embedding and Relative Entropy \
         Minimization (DEPICT)",
        2017,
        &["depict_clustering_ce", "depict_reconstruction"],
        "",
    ),
    paper(
        13,
        "Label Distributionally Robust Losses for Multi-class Classification: Consistency, \
         Robustness and Adaptivity",
        2023,
        &["ldr_kl", "aldr_kl"],
        "",
    ),
    paper(
        14,
        "DatasetEquity: Are All Samples Created Equal? In The Quest For Equity Within Datasets",
        2023,
        &["dataset_equity"],
        "",
    ),
    paper(
        15,
        "Understanding the Behaviour of Contrastive Loss",
        2021,
        &[
            "info_nce",
            "simple_contrastive",
            "hard_contrastive",
            "hard_simple_contrastive",
            "uniformity",
            "tolerance",
        ],
        "",
    ),
    paper(
        16,
        "Out-Of-Domain Unlabeled Data Improves Generalization",
        2024,
        &["rss_self_training"],
        "the robust estimator is not shipped: it maximises the loss over the inputs with the \
         model inside the loss (Wasserstein DRO), which no loss head can express, and no code \
         or settings were released; its non-robust case (CE plus CE on pseudo-labels) ships",
    ),
    paper(
        17,
        "Pansharpening by Convolutional Neural Networks in the Full Resolution Framework \
         (Z-PNN)",
        2022,
        &["zpnn_spectral", "pnn_structural"],
        "the `SpectralLoss` variant with per-band grid phases (the `--coregistration` option) is not shipped",
    ),
    paper(
        18,
        "Generalization in diffusion models arises from geometry-adaptive harmonic \
         representations",
        2024,
        &["denoising_mse"],
        "",
    ),
    paper(
        19,
        "Hyperspherical embedding for novel class classification",
        2021,
        &["normalized_softmax_ce"],
        "",
    ),
    paper(
        20,
        "Rethinking Positive Pairs in Contrastive Learning (Hydra / SimLAP)",
        2024,
        &["simlap"],
        "",
    ),
    paper(
        21,
        "How to Make Cross Encoder a Good Teacher for Efficient Image-Text Retrieval? (CPRD)",
        2024,
        &[],
        "its method section could not be read here (only the abstract; an unofficial summary gives a suffix InfoNCE over the teacher's order of the hard negatives, cut at a 'first invalid' one it does not define, with no temperature or normalisation), and there is no official code: it ships once the formula is checked against the paper",
    ),
    paper(
        22,
        "Not All Semantics are Created Equal: Contrastive Self-supervised Learning with \
         Automatic Temperature Individualization (iSogCLR)",
        2023,
        &["isogclr_unimodal", "isogclr_bimodal", "isogclr_libauc_v1"],
        "",
    ),
    no_loss(
        23,
        "Domain and Function: A Dual-Space Model of Semantic Relations and Compositions",
        2012,
        "it scores word relations and compositions with hand-designed similarity measures over \
         co-occurrence spaces; nothing in it is trained by a loss",
    ),
    paper(
        24,
        "ElasticFace: Elastic Margin Loss for Deep Face Recognition",
        2022,
        &["elastic_face_arc", "elastic_face_cos"],
        "",
    ),
    paper(
        25,
        "A Principled Framework for Multi-View Contrastive Learning",
        2025,
        &["mv_infonce", "mv_dhel"],
        "",
    ),
    paper(
        26,
        "SuSana Distancia is all you need: Enforcing class separability in metric learning via \
         two novel distance-based loss functions for few-shot image classification",
        2023,
        &["proto_triplet", "icnn"],
        "",
    ),
    paper(
        27,
        "NoProp: Training Neural Networks without Back-propagation or Forward-propagation",
        2025,
        &["noprop_dt", "noprop_ct", "noprop_fm"],
        "",
    ),
    paper(
        28,
        "EnsLoss: Stochastic Calibrated Loss Ensembles for Preventing Overfitting in \
         Classification",
        2024,
        &["ens_loss"],
        "",
    ),
    paper(
        29,
        "SFace: Sigmoid-Constrained Hypersphere Loss for Robust Face Recognition",
        2021,
        &["s_face"],
        "",
    ),
    no_loss(
        30,
        "Surface Extraction from Neural Unsigned Distance Fields (DualMesh-UDF)",
        2023,
        "it extracts a mesh from an already trained unsigned distance field by solving small \
         least-squares problems per octree cell; it trains nothing",
    ),
    paper(
        31,
        "Weighted least-squares approximation with determinantal point processes and \
         generalized volume sampling",
        2023,
        &["weighted_mse"],
        "",
    ),
    paper(
        32,
        "SymFace: Additional Facial Symmetry Loss for Deep Face Recognition",
        2024,
        &["sym_face"],
        "",
    ),
    paper(
        33,
        "Combating Mode Collapse in GANs via Manifold Entropy Estimation (MEE)",
        2022,
        &["mee_dlle", "mee_disomap"],
        "the replay-buffer entropy term (RB-MaEM) keeps a replay buffer of whole batches [S, B, K] across steps, a state that is not one value per dataset sample (planned)",
    ),
];

/// Every paper of the catalogue, by number.
pub fn all() -> &'static [Paper] {
    ALL
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue;

    #[test]
    fn numbers_run_from_one_without_gaps() {
        for (k, p) in all().iter().enumerate() {
            assert_eq!(usize::from(p.number), k + 1, "{}", p.title);
        }
    }

    #[test]
    fn every_listed_loss_ships() {
        for p in all() {
            for name in p.losses {
                assert!(
                    catalogue::find(name).is_some(),
                    "paper {} lists `{name}`, which is not in the catalogue",
                    p.number
                );
            }
        }
    }

    #[test]
    fn every_shipped_loss_of_a_paper_is_listed_once() {
        // The losses that come from no paper of the catalogue: the baselines the papers
        // compare against.
        let baselines = ["softmax_cross_entropy", "arc_face", "cos_face", "nt_xent"];
        for entry in catalogue::all() {
            let name = entry.name();
            let papers = all().iter().filter(|p| p.losses.contains(&name)).count();
            let expected = usize::from(!baselines.contains(&name));
            assert_eq!(papers, expected, "`{name}` is listed under {papers} papers");
        }
    }

    #[test]
    fn what_is_missing_is_said() {
        for p in all() {
            let said = !p.remaining.is_empty();
            match p.status() {
                Status::Shipped => assert!(!said),
                Status::Partly | Status::NotYet | Status::NoLoss => {
                    assert!(said, "paper {} does not say what is missing", p.number)
                }
            }
        }
    }
}
