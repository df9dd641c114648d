"""Multi-Similarity forward + backward in PyTorch, for comparison with
benches/multi_similarity.rs (not run by CI; it is not part of the Rust build).

Measures pytorch-metric-learning's MultiSimilarityLoss(alpha=2, beta=40, base=0.5) with
MultiSimilarityMiner(epsilon=0.1) (cosine similarity, PML's default distance) on the same
batches as the Rust benchmark: N in {256, 1024, 4096} embeddings of dimension d = 128,
float32, standard normal, labels N/4 classes x 4 instances (P x K sampling), on the CPU
with torch.set_num_threads(2). One timed call is: mine the pairs, compute the loss,
backward to the embeddings. Prints the median (and min / max) wall time per size.

Install and run (any Python >= 3.9):

    python -m venv .venv && . .venv/bin/activate
    pip install torch pytorch-metric-learning
    python benches/pytorch_multi_similarity.py            # all sizes
    python benches/pytorch_multi_similarity.py 1024 4096  # chosen sizes

The CPU-only torch wheel is smaller: pip install torch --index-url
https://download.pytorch.org/whl/cpu. PML's own default beta is 50; 40 is the official
code's value, the one losskit's MultiSimilarity defaults to. PML's rules differ slightly
from the official ones (self-pair dropped by index, positive and negative terms kept
independently), which changes the value on some anchors but not the amount of work.
"""

import statistics
import sys
import time

import torch
from pytorch_metric_learning.losses import MultiSimilarityLoss
from pytorch_metric_learning.miners import MultiSimilarityMiner

DIM = 128
PER_CLASS = 4
SIZES = [256, 1024, 4096]
# Stop sampling a size after this many seconds (at least MIN_SAMPLES samples).
BUDGET_S = 20.0
MIN_SAMPLES = 5
MAX_SAMPLES = 100


def main():
    torch.set_num_threads(2)
    sizes = [int(a) for a in sys.argv[1:]] or SIZES
    loss_fn = MultiSimilarityLoss(alpha=2.0, beta=40.0, base=0.5)
    miner = MultiSimilarityMiner(epsilon=0.1)
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"d = {DIM}, float32, labels N/{PER_CLASS} classes x {PER_CLASS}"
    )

    def step(emb, labels):
        emb.grad = None
        pairs = miner(emb, labels)
        loss = loss_fn(emb, labels, pairs)
        loss.backward()
        return loss

    for n in sizes:
        gen = torch.Generator().manual_seed(0)
        emb = torch.randn(n, DIM, generator=gen, dtype=torch.float32, requires_grad=True)
        labels = torch.arange(n) // PER_CLASS
        for _ in range(2):  # warm-up
            step(emb, labels)
        times = []
        start = time.perf_counter()
        while len(times) < MAX_SAMPLES and (
            len(times) < MIN_SAMPLES or time.perf_counter() - start < BUDGET_S
        ):
            t = time.perf_counter()
            step(emb, labels)
            times.append(time.perf_counter() - t)
        print(
            f"N = {n:5}: median {1e3 * statistics.median(times):9.2f} ms  "
            f"(min {1e3 * min(times):.2f}, max {1e3 * max(times):.2f}, {len(times)} samples)"
        )


if __name__ == "__main__":
    main()
