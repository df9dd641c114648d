"""The Z-PNN loss, forward + backward, in PyTorch, for comparison with benches/zpnn.rs
(not run by CI; it is not part of the Rust build).

Written from the formulation of the official code (matciotola/Z-PNN, `losses.py`:
`SpectralLossNocorr` and `StructuralLoss`, `cross_correlation.py::xcorr_torch`) as
`loss-runtime/src/losses/dense/pansharpening.rs` documents it:

    x      = depthwise valid conv2d of out with the 41 x 41 MTF kernels
    y      = ms_up cropped by 20 on every side
    L_spec = L1(x * W, y * W, sum), W = 1 on the grid [2::4, 2::4], normalised to sum 1
    rho    = local correlation field of out and pan over 4 x 4 boxes (cumulative sums,
             float64, each pixel centred by its own window's mean, variances clipped to
             [1e-20, max])
    X      = 1 - max(rho, -1);  L_struct = mean(X * [X > thr])
    L      = L_spec + beta * L_struct

Setup as in the Rust benchmark: one 4-band image 512 x 512 (GE1, beta = 0.25), float32
inputs uniform in [0, 1), a precomputed threshold uniform in [0, 1), on the CPU with
torch.set_num_threads(2). The kernels are Gaussians of the same size (the time does not
depend on their values). One timed call: the loss, then backward to `out`. Prints the
median (min / max) wall time.

    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch
    /tmp/torchenv/bin/python benches/pytorch_zpnn.py
"""

import statistics
import time

import torch
import torch.nn.functional as F

BANDS, SIZE, KERNEL, BETA = 4, 512, 41, 0.25
BUDGET_S, MIN_SAMPLES, MAX_SAMPLES = 20.0, 5, 100


def box_sums(x, w):
    """Sums over the 2w x 2w window ending at each pixel (zero padding), by cumulative sums."""
    s = F.pad(x, (w, w, w, w)).cumsum(2).cumsum(3)
    return s[:, :, 2 * w:, 2 * w:] - s[:, :, :-2 * w, 2 * w:] - s[:, :, 2 * w:, :-2 * w] + s[:, :, :-2 * w, :-2 * w]


def xcorr(a, b, w):
    a, b = a.double(), b.double()
    area = 4 * w * w
    a = a - box_sums(a, w)[:, :, : a.shape[2], : a.shape[3]] / area
    b = b - box_sums(b, w)[:, :, : b.shape[2], : b.shape[3]] / area
    saa = box_sums(a * a, w)[:, :, : a.shape[2], : a.shape[3]]
    sbb = box_sums(b * b, w)[:, :, : b.shape[2], : b.shape[3]]
    sab = box_sums(a * b, w)[:, :, : a.shape[2], : a.shape[3]]
    saa = torch.clamp(saa, 1e-20, saa.max().item())
    sbb = torch.clamp(sbb, 1e-20, sbb.max().item())
    return (sab / (torch.sqrt(saa * sbb) + 1e-20)).float()


def zpnn(out, ms_up, pan, thr, kernels):
    x = F.conv2d(out, kernels, groups=BANDS)
    c = KERNEL // 2
    y = ms_up[:, :, c:-c, c:-c]
    mask = torch.zeros_like(y)
    mask[:, :, 2::4, 2::4] = 1.0
    mask = mask / mask.sum()
    spectral = F.l1_loss(x * mask, y * mask, reduction="sum")
    rho = xcorr(out, pan, 2)
    big_x = 1.0 - torch.clamp(rho, min=-1.0)
    structural = torch.mean(big_x * (big_x > thr))
    return spectral + BETA * structural


def main():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    grid = torch.arange(KERNEL, dtype=torch.float32) - KERNEL // 2
    g = torch.exp(-(grid[:, None] ** 2 + grid[None, :] ** 2) / (2 * 3.0**2))
    kernels = (g / g.sum()).expand(BANDS, 1, KERNEL, KERNEL).contiguous()
    ms_up = torch.rand(1, BANDS, SIZE, SIZE)
    pan = torch.rand(1, 1, SIZE, SIZE)
    thr = torch.rand(1, BANDS, SIZE, SIZE)
    base = torch.rand(1, BANDS, SIZE, SIZE)
    times = []
    start = time.perf_counter()
    while len(times) < MAX_SAMPLES and (len(times) < MIN_SAMPLES or time.perf_counter() - start < BUDGET_S):
        out = base.clone().requires_grad_(True)
        t0 = time.perf_counter()
        loss = zpnn(out, ms_up, pan, thr, kernels)
        loss.backward()
        times.append(time.perf_counter() - t0)
    ms = [1e3 * t for t in times]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads: Z-PNN 1x{BANDS}x{SIZE}x{SIZE} "
        f"forward + backward median {statistics.median(ms):.1f} ms (min {min(ms):.1f}, max {max(ms):.1f}, {len(ms)} samples)"
    )


if __name__ == "__main__":
    main()
