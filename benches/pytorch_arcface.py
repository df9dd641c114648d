"""ArcFace forward + backward in PyTorch, for comparison with benches/arcface.rs (not run
by CI; it is not part of the Rust build).

Times pytorch-metric-learning's ArcFaceLoss(num_classes=10000, embedding_size=128,
margin=28.6 degrees (0.5 rad), scale=64) on embeddings [512, 128], float32, standard
normal, labels (i * 7919) % C as in the Rust benchmark, on the CPU with
torch.set_num_threads(2). One timed call is: the loss (normalise, cosines against the
loss's own W [128, C], the margin, CE) and backward to the embeddings and W. Prints the
median (and min / max) wall time.

Install and run (any Python >= 3.9):

    python -m venv .venv && . .venv/bin/activate
    pip install torch pytorch-metric-learning
    python benches/pytorch_arcface.py

then `cargo bench --bench arcface` right after, on the same idle machine.
"""

import statistics
import time

import torch
from pytorch_metric_learning.losses import ArcFaceLoss

N, DIM, CLASSES = 512, 128, 10_000
BUDGET_S = 20.0
MIN_SAMPLES = 5
MAX_SAMPLES = 100


def main():
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(0)
    emb = torch.randn(N, DIM, generator=gen, dtype=torch.float32, requires_grad=True)
    labels = (torch.arange(N) * 7919) % CLASSES
    loss_fn = ArcFaceLoss(num_classes=CLASSES, embedding_size=DIM, margin=28.6, scale=64)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, N {N}, d {DIM}, C {CLASSES}")

    def step():
        emb.grad = None
        loss_fn.W.grad = None
        loss = loss_fn(emb, labels)
        loss.backward()
        return loss

    for _ in range(2):  # warm-up
        step()
    times = []
    start = time.perf_counter()
    while len(times) < MAX_SAMPLES and (
        len(times) < MIN_SAMPLES or time.perf_counter() - start < BUDGET_S
    ):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    print(
        f"ArcFaceLoss step: median {1e3 * statistics.median(times):.2f} ms  "
        f"(min {1e3 * min(times):.2f}, max {1e3 * max(times):.2f}, {len(times)} samples)"
    )


if __name__ == "__main__":
    main()
