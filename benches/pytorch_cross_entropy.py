"""Softmax cross-entropy forward + backward in PyTorch, for comparison with
benches/cross_entropy.rs (not run by CI; it is not part of the Rust build).

Measures torch.nn.functional.cross_entropy (mean over the batch) on the same sizes as
the Rust benchmark: logits N x C in {1024 x 256, 4096 x 1024}, float32, standard normal,
labels (i * 7919) mod C, on the CPU with torch.set_num_threads(2). One timed call is:
forward, backward to the logits (the gradient is dropped before each call, so every call
allocates it, as dfdx's `leaky_trace` does). Prints the median (and min / max) wall time
per size.

Install and run (any Python >= 3.9):

    python -m venv .venv && . .venv/bin/activate
    pip install torch
    python benches/pytorch_cross_entropy.py
"""

import statistics
import sys
import time

import torch
import torch.nn.functional as F

SIZES = [(1024, 256), (4096, 1024)]
# Stop sampling a size after this many seconds (at least MIN_SAMPLES samples).
BUDGET_S = 10.0
MIN_SAMPLES = 5
MAX_SAMPLES = 100


def main():
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, float32")
    for n, c in SIZES:
        gen = torch.Generator().manual_seed(0)
        logits = torch.randn(n, c, generator=gen, dtype=torch.float32, requires_grad=True)
        labels = (torch.arange(n) * 7919) % c

        def step():
            logits.grad = None
            loss = F.cross_entropy(logits, labels)
            loss.backward()
            return loss

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
        print(
            f"{n} x {c}: median {1e3 * statistics.median(times):8.3f} ms  "
            f"(min {1e3 * min(times):.3f}, max {1e3 * max(times):.3f}, {len(times)} samples)"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
