"""The other shipped losses, forward + backward in PyTorch, for comparison with
benches/shipped_losses.rs (not run by CI; it is not part of the Rust build).

Each loss is written in plain torch from the formula in its doc comment
(loss-runtime/src/losses/{binary,pairs,scores}/), on the same inputs as the Rust benchmark,
float32, on the CPU with torch.set_num_threads(2):

- binary (AnyLoss family, amplification L = 73, epsilon 1e-5): N = 65 536 predictions
  p in [0, 1), targets 1 with probability 0.3;
- pairs (GPW losses, cosine similarity): embeddings 1024 x 128 in [-1, 1), labels
  N/4 classes x 4 instances; a call is the normalisation, S = E E^T and the loss;
- Mann-Whitney (tau = 0.01): 64 queries x 384 passages, cosine scores in [-1, 1), one
  positive per row at column i;
- DEXML: scaled scores 1024 x 1024 in [-5, 5), query i has 1 + i mod 4 positives at
  columns (i * 7919 + t * 104729) mod 1024; soft top-k with K = 5, alpha = 2 and 32
  bisection steps (the official code's), its gradient the implicit one.

Where pytorch-metric-learning has a class that computes exactly the same loss on these
inputs, it is timed too: TripletMarginLoss (all triplets; batch-hard with
BatchHardMiner) and GeneralizedLiftedStructureLoss, with CosineSimilarity and
MeanReducer. (Its ContrastiveLoss hinges the positives and averages positive and negative
pairs separately, so it is a different loss; it has no binomial deviance loss.)

The inputs are drawn from the same 64-bit LCG as the Rust benchmark (24 random bits per
uniform, exact in float32), so the inputs are identical bit for bit. Before timing, every
PyTorch value is checked against the value `cargo bench --bench shipped_losses` prints
(LOSSKIT_VALUES below, relative tolerance 1e-4), and each pytorch-metric-learning loss
against the plain-torch one.

One timed call is: forward, backward to the input (the gradient is dropped before each
call, so every call allocates it, as dfdx's `leaky_trace` does). Prints the median (and
min / max) wall time per loss.

Install and run (any Python >= 3.9):

    python -m venv .venv && . .venv/bin/activate
    pip install torch pytorch-metric-learning
    python benches/pytorch_shipped_losses.py            # or: ... binary gpw (name filters)
"""

import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F

# Stop sampling a loss after this many seconds (at least MIN_SAMPLES samples).
BUDGET_S = 10.0
MIN_SAMPLES = 5
MAX_SAMPLES = 100

BINARY_N = 65536
PAIRS_N, DIM, PER_CLASS = 1024, 128, 4
MW = (64, 384)
SCORES = (1024, 1024)

# The values `cargo bench --bench shipped_losses` prints first ("value <loss> <value>").
LOSSKIT_VALUES = {
    "AnylossAccuracy": 4.9890345e-1,
    "AnylossFbeta": 6.2485421e-1,
    "AnylossF1": 6.2485421e-1,
    "AnylossGmean": 7.4851155e-1,
    "AnylossBalancedAccuracy": 4.9851280e-1,
    "AnylossMcc": 9.9727905e-1,
    "AnylossJaccard": 7.6912034e-1,
    "GpwContrastive": -9.3509089e-3,
    "GpwTriplet": 1.1237268e-1,
    "GpwTripletBatchHard": 4.5732519e-1,
    "GpwBinomialDeviance": 1.3117508e0,
    "GpwLiftedStructure": 9.0294762e0,
    "MwAuc": 6.1642162e5,
    "DexmlDecoupledSoftmax": 9.5918179e0,
    "DexmlSoftmax": 2.3967896e1,
    "DexmlBce": 1.4118543e0,
    "DexmlSoftTopk": 1.2212263e1,
}


# ---------------------------------------------------------------------------------------
# Inputs: the Rust benchmark's LCG
# ---------------------------------------------------------------------------------------


def draw(seed, n, f):
    """n values f(u), u uniform in [0, 1) with 24 bits, as `Lcg::draw` in the Rust bench."""
    a, c, mask = 6364136223846793005, 1442695040888963407, (1 << 64) - 1
    x, out = seed, []
    for _ in range(n):
        x = (x * a + c) & mask
        out.append(f((x >> 40) / float(1 << 24)))
    return out


def binary_case():
    p = torch.tensor(draw(1, BINARY_N, lambda u: u), dtype=torch.float32)
    y = torch.tensor(draw(2, BINARY_N, lambda u: 1.0 if u < 0.3 else 0.0), dtype=torch.float32)
    return p, y


def pairs_case():
    e = torch.tensor(draw(3, PAIRS_N * DIM, lambda u: 2.0 * u - 1.0), dtype=torch.float32)
    return e.view(PAIRS_N, DIM), torch.arange(PAIRS_N) // PER_CLASS


def mw_case():
    q, d = MW
    s = torch.tensor(draw(4, q * d, lambda u: 2.0 * u - 1.0), dtype=torch.float32).view(q, d)
    r = torch.zeros(q, d)
    r[torch.arange(q), torch.arange(q)] = 1.0
    return s, r


def scores_case():
    q, d = SCORES
    s = torch.tensor(draw(5, q * d, lambda u: 5.0 * (2.0 * u - 1.0)), dtype=torch.float32)
    r = torch.zeros(q, d)
    for i in range(q):
        for t in range(1 + i % 4):
            r[i, (i * 7919 + t * 104729) % d] = 1.0
    return s.view(q, d), r


# ---------------------------------------------------------------------------------------
# AnyLoss family (loss-runtime/src/losses/binary/{anyloss,extensions}.rs)
# ---------------------------------------------------------------------------------------

AMPLIFICATION, EPS = 73.0, 1e-5


def confusion(p, y):
    """The soft confusion matrix of the amplified predictions a = sigmoid(L (p - 1/2))."""
    a = torch.sigmoid(AMPLIFICATION * (p - 0.5))
    tp = (y * a).sum()
    fp = ((1 - y) * a).sum()
    fn = (y * (1 - a)).sum()
    tn = ((1 - y) * (1 - a)).sum()
    pos = y.sum()
    return tp, fp, fn, tn, pos, p.shape[0] - pos


def anyloss_accuracy(p, y):
    tp, fp, fn, tn, pos, neg = confusion(p, y)
    return 1 - (tp + tn) / p.shape[0]


def anyloss_fbeta(p, y, beta=1.0):
    tp, fp, fn, tn, pos, neg = confusion(p, y)
    b2 = beta * beta
    return 1 - (1 + b2) * tp / (b2 * pos + tp + fp + EPS)


def anyloss_f1(p, y):
    tp, fp, fn, tn, pos, neg = confusion(p, y)
    return 1 - 2 * tp / (2 * tp + fp + fn + EPS)


def anyloss_gmean(p, y):
    tp, fp, fn, tn, pos, neg = confusion(p, y)
    return 1 - tp * tn / (pos * neg + EPS)


def anyloss_balanced_accuracy(p, y):
    tp, fp, fn, tn, pos, neg = confusion(p, y)
    return 1 - (neg * tp + pos * tn) / (2 * pos * neg + EPS)


def anyloss_mcc(p, y):
    tp, fp, fn, tn, pos, neg = confusion(p, y)
    return 1 - (tp * tn - fp * fn) / torch.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn) + EPS)


def anyloss_jaccard(p, y):
    tp, fp, fn, tn, pos, neg = confusion(p, y)
    return 1 - tp / (tp + fp + fn + EPS)


# ---------------------------------------------------------------------------------------
# GPW pair losses (loss-runtime/src/losses/pairs/gpw.rs), from the embeddings
# ---------------------------------------------------------------------------------------


def similarities(e, labels):
    """S = E^ E^T (cosine) and the masks: pos(i) = same label but not i, neg(i) = other label."""
    en = F.normalize(e, dim=1, eps=1e-12)
    s = en @ en.t()
    same = labels[:, None] == labels[None, :]
    pos = same & ~torch.eye(len(labels), dtype=torch.bool)
    return s, pos, ~same


def gpw_contrastive(e, labels, lam=0.5):
    s, pos, neg = similarities(e, labels)
    return (-(s * pos).sum() + (F.relu(s - lam) * neg).sum()) / s.shape[0]


def gpw_triplet(e, labels, lam=0.1):
    """Mean over all valid triplets (a, p, n) of [S_an - S_ap + lam]_+; every anchor of a
    P x K batch has K - 1 positives, gathered into an N x (K - 1) matrix."""
    s, pos, neg = similarities(e, labels)
    n = s.shape[0]
    s_ap = s[pos].view(n, -1)  # N x (K - 1)
    hinge = F.relu(s[:, None, :] - s_ap[:, :, None] + lam) * neg[:, None, :]  # N x (K-1) x N
    triplets = (pos.sum(1) * neg.sum(1)).sum()
    return hinge.sum() / triplets


def gpw_triplet_batch_hard(e, labels, lam=0.1):
    s, pos, neg = similarities(e, labels)
    hardest_pos = s.masked_fill(~pos, math.inf).min(1).values
    hardest_neg = s.masked_fill(~neg, -math.inf).max(1).values
    return F.relu(hardest_neg - hardest_pos + lam).mean()


def gpw_binomial_deviance(e, labels, alpha=2.0, beta=50.0, lam=0.5):
    s, pos, neg = similarities(e, labels)
    pos_term = (F.softplus(alpha * (lam - s)) * pos).sum(1) / pos.sum(1)
    neg_term = (F.softplus(beta * (s - lam)) * neg).sum(1) / neg.sum(1)
    return (pos_term + neg_term).mean()


def gpw_lifted_structure(e, labels, lam=1.0):
    s, pos, neg = similarities(e, labels)
    pos_lse = torch.logsumexp((lam - s).masked_fill(~pos, -math.inf), dim=1)
    neg_lse = torch.logsumexp(s.masked_fill(~neg, -math.inf), dim=1)
    return F.relu(pos_lse + neg_lse).mean()


def pml_losses():
    """pytorch-metric-learning's classes that compute exactly the GPW loss of the same name
    on a P x K batch (every anchor has positives and negatives), or {} without it."""
    try:
        from pytorch_metric_learning import distances, losses, miners, reducers
    except ImportError:
        print("pytorch-metric-learning not installed: its rows are skipped")
        return {}
    cos = distances.CosineSimilarity()
    mean = reducers.MeanReducer()
    triplet = losses.TripletMarginLoss(margin=0.1, distance=cos, reducer=mean)
    hard = miners.BatchHardMiner(distance=cos)
    lifted = losses.GeneralizedLiftedStructureLoss(
        neg_margin=0.0, pos_margin=1.0, distance=cos, reducer=mean
    )
    return {
        "GpwTriplet": lambda e, y: triplet(e, y),
        "GpwTripletBatchHard": lambda e, y: triplet(e, y, hard(e, y)),
        "GpwLiftedStructure": lambda e, y: lifted(e, y),
    }


# ---------------------------------------------------------------------------------------
# Scores family (loss-runtime/src/losses/scores/{mw_auc,dexml,soft_topk}.rs)
# ---------------------------------------------------------------------------------------


def mw_auc(s, r, tau=0.01):
    """Sum over every (positive, negative) entry pair of the matrix of
    softplus((s_neg - s_pos) / tau), divided by the number of positives (Eq. 3)."""
    rel = r > 0.5
    sp, sn = s[rel], s[~rel]
    return F.softplus((sn[None, :] - sp[:, None]) / tau).sum() / sp.shape[0]


def dexml_decoupled_softmax(s, r):
    rel = r > 0.5
    negatives = torch.logsumexp(s.masked_fill(rel, -math.inf), dim=1)
    per_pair = F.softplus(negatives[:, None] - s) * r
    return (per_pair.sum(1) / r.sum(1).clamp(min=1)).mean()


def dexml_softmax(s, r):
    return -(F.log_softmax(s, dim=1) * r).sum(1).mean()


def dexml_bce(s, r):
    return F.binary_cross_entropy_with_logits(s, r)


def dexml_soft_topk(s, r, k=5.0, alpha=2.0, iterations=32):
    """t_i solves sum_d sigmoid(alpha (s_id + t_i)) = K (bisection, no gradient); the loss is
    the mean over positives of -ln sigmoid(alpha (s_id + t_i)), with the implicit gradient
    dt_i/ds_id = -v_id / sum_m v_im, v = sigmoid(z) sigmoid(-z), through a detached term."""
    with torch.no_grad():
        lo = -s.max(1).values - 10.0 / alpha
        hi = -s.min(1).values + 10.0 / alpha
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            below = torch.sigmoid(alpha * (s + mid[:, None])).sum(1) < k
            lo = torch.where(below, mid, lo)
            hi = torch.where(below, hi, mid)
        t = 0.5 * (lo + hi)
        z = alpha * (s + t[:, None])
        v = torch.sigmoid(z) * torch.sigmoid(-z)
        w = v / v.sum(1, keepdim=True)
    t_implicit = t - (w * (s - s.detach())).sum(1)
    per_doc = F.softplus(-alpha * (s + t_implicit[:, None])) * r
    return (per_doc.sum(1) / r.sum(1).clamp(min=1)).mean()


# ---------------------------------------------------------------------------------------
# Check and time
# ---------------------------------------------------------------------------------------


def cases():
    """(name, size, loss(x, target), x, target) for every loss, plain torch."""
    p, y = binary_case()
    e, labels = pairs_case()
    ms, mr = mw_case()
    s, r = scores_case()
    n, m = SCORES
    binary = f"N = {BINARY_N}"
    pairs = f"{PAIRS_N} x {DIM}"
    scores = f"{n} x {m}"
    return [
        ("AnylossAccuracy", binary, anyloss_accuracy, p, y),
        ("AnylossFbeta", binary, anyloss_fbeta, p, y),
        ("AnylossF1", binary, anyloss_f1, p, y),
        ("AnylossGmean", binary, anyloss_gmean, p, y),
        ("AnylossBalancedAccuracy", binary, anyloss_balanced_accuracy, p, y),
        ("AnylossMcc", binary, anyloss_mcc, p, y),
        ("AnylossJaccard", binary, anyloss_jaccard, p, y),
        ("GpwContrastive", pairs, gpw_contrastive, e, labels),
        ("GpwTriplet", pairs, gpw_triplet, e, labels),
        ("GpwTripletBatchHard", pairs, gpw_triplet_batch_hard, e, labels),
        ("GpwBinomialDeviance", pairs, gpw_binomial_deviance, e, labels),
        ("GpwLiftedStructure", pairs, gpw_lifted_structure, e, labels),
        ("MwAuc", f"{MW[0]} x {MW[1]}", mw_auc, ms, mr),
        ("DexmlDecoupledSoftmax", scores, dexml_decoupled_softmax, s, r),
        ("DexmlSoftmax", scores, dexml_softmax, s, r),
        ("DexmlBce", scores, dexml_bce, s, r),
        ("DexmlSoftTopk", scores, dexml_soft_topk, s, r),
    ]


def close(a, b, rtol=1e-4):
    return abs(a - b) <= rtol * max(abs(a), abs(b), 1e-6)


def time_step(step):
    for _ in range(3):  # warm-up
        step()
    times = []
    start = time.perf_counter()
    while len(times) < MAX_SAMPLES and (
        len(times) < MIN_SAMPLES or time.perf_counter() - start < BUDGET_S
    ):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return times


def main():
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, float32")
    filters = sys.argv[1:]
    pml = pml_losses()
    rows = []
    for name, size, loss, x, target in cases():
        rows.append((name, size, loss, x, target))
        if name in pml:
            rows.append((name + " (PML)", size, pml[name], x, target))
    rows = [row for row in rows if not filters or any(f.lower() in row[0].lower() for f in filters)]

    # Check: every value against losskit's, each PML loss against plain torch.
    plain = {}
    for name, size, loss, x, target in rows:
        value = loss(x, target).item()
        base = name.removesuffix(" (PML)")
        want = LOSSKIT_VALUES.get(base)
        print(f"check {name}: {value:.7e} (losskit {want})")
        assert want is None or close(value, want), f"{name}: torch {value} vs losskit {want}"
        if base != name:
            assert close(value, plain[base]), f"{name}: {value} vs plain torch {plain[base]}"
        plain[name] = value
    sys.stdout.flush()

    for name, size, loss, x, target in rows:
        x = x.clone().requires_grad_(True)

        def step():
            x.grad = None
            out = loss(x, target)
            out.backward()
            return out

        times = time_step(step)
        print(
            f"{name:32} {size:14}: median {1e3 * statistics.median(times):9.3f} ms  "
            f"(min {1e3 * min(times):.3f}, max {1e3 * max(times):.3f}, {len(times)} samples)"
        )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
