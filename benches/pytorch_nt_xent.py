"""NT-Xent forward + backward in PyTorch, for comparison with benches/nt_xent.rs (not run
by CI; it is not part of the Rust build).

Measures pytorch-metric-learning's NTXentLoss(temperature=0.07) (cosine similarity, PML's
default distance, mean over the positive pairs) on the same batches as the Rust
benchmark: two views of B items stacked, N = 2B embeddings of dimension d = 128,
float32, standard normal, labels [0..B, 0..B], on the CPU with torch.set_num_threads(2).
One timed call is: the loss, then backward to the embeddings. Prints the median (and
min / max) wall time per size, and the peak resident set of the process.

PML's NTXentLoss builds, for every positive pair, a mask over every negative pair
(`a2.unsqueeze(0) == a1.unsqueeze(1)`): N positive pairs x N(N - 2) negative pairs. At
N = 8192 that mask alone is 8192 x 67,092,480 entries (about 550 GB as bool, four times
that as float32), so the script refuses sizes whose mask exceeds MAX_MASK_BYTES and says
so, rather than exhaust the machine's memory.

Install and run (any Python >= 3.9):

    python3 -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch pytorch-metric-learning
    /tmp/torchenv/bin/python benches/pytorch_nt_xent.py             # N = 256 and 8192
    /tmp/torchenv/bin/python benches/pytorch_nt_xent.py 256 512 1024
    /tmp/torchenv/bin/python benches/pytorch_nt_xent.py --check     # the unit test's value

`--check` prints NTXentLoss(temperature=0.07 and 0.5) in float64 on the 7 x 3 batch of
`loss-runtime/src/losses/pairs/contrastive/tests.rs::nt_xent_matches_pml_values`, and with
`ref_emb` the values of `nt_xent_and_info_nce_with_a_queue_match_pml_values`.
"""

import resource
import statistics
import sys
import time

import torch
from pytorch_metric_learning.losses import NTXentLoss

DIM = 128
TAU = 0.07
SIZES = [256, 8192]
# Refuse a size whose positive-pair x negative-pair mask (float32) exceeds this.
MAX_MASK_BYTES = 24 * 2**30
# Stop sampling a size after this many seconds (at least MIN_SAMPLES samples).
BUDGET_S = 20.0
MIN_SAMPLES = 5
MAX_SAMPLES = 100

CHECK_BATCH = [
    [0.5, -0.25, 1.0],
    [-1.0, 0.75, 0.125],
    [0.25, 0.5, -0.5],
    [0.625, -0.125, 0.875],
    [-0.75, 1.0, 0.0],
    [0.0, 0.375, -0.625],
    [1.0, 0.25, 0.5],
]
CHECK_LABELS = [0, 1, 0, 1, 0, 1, 2]


def check():
    emb = torch.tensor(CHECK_BATCH, dtype=torch.float64)
    for tau in (TAU, 0.5):
        loss = NTXentLoss(temperature=tau)(emb, torch.tensor(CHECK_LABELS))
        print(f"NTXentLoss(temperature={tau}) float64 on the check batch: {loss.item()!r}")
    # three queries against their keys and a queue of two (one label each)
    q = emb[:3]
    refs = torch.cat([emb[3:], torch.tensor([[0.125, -1.0, 0.25]], dtype=torch.float64)])
    for tau in (TAU, 0.2):
        loss = NTXentLoss(temperature=tau)(
            q, torch.tensor([0, 1, 2]), ref_emb=refs, ref_labels=torch.arange(5)
        )
        print(f"NTXentLoss(temperature={tau}) float64 with ref_emb: {loss.item()!r}")


def main():
    if sys.argv[1:] == ["--check"]:
        check()
        return
    torch.set_num_threads(2)
    sizes = [int(a) for a in sys.argv[1:]] or SIZES
    loss_fn = NTXentLoss(temperature=TAU)
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, d = {DIM}, "
        f"float32, two views of N/2 items, tau = {TAU}"
    )

    def step(emb, labels):
        emb.grad = None
        loss = loss_fn(emb, labels)
        loss.backward()
        return loss

    for n in sizes:
        mask_bytes = 4 * n * n * (n - 2)
        if mask_bytes > MAX_MASK_BYTES:
            print(
                f"N = {n:5}: not run: NTXentLoss's positive x negative pair mask would be "
                f"{n} x {n * (n - 2)} entries ({mask_bytes / 2**30:.0f} GiB as float32)"
            )
            continue
        gen = torch.Generator().manual_seed(0)
        emb = torch.randn(n, DIM, generator=gen, dtype=torch.float32, requires_grad=True)
        labels = torch.arange(n) % (n // 2)
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
            f"(min {1e3 * min(times):.2f}, max {1e3 * max(times):.2f}, {len(times)} samples), "
            f"loss {step(emb, labels).item():.6f}"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident set of the process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
