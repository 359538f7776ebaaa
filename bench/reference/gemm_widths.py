"""fp32 GEMM speed of torch (MKL) against the operand width, for DCN-V2's shapes.

Times the forward product (addmm 4096×d by d×d) and both backward products (G·W and Gᵀ·X) of a
d-wide cross layer and the same for a d → 256 linear, at widths around Criteo's 429 (13 dense +
26 × 16), and prints GFLOP/s. Why adrec pads DCN-V2's GEMMs to a multiple of 16 (docs/BENCHMARKS.md).

    .venv/bin/python bench/reference/gemm_widths.py [--threads 1] [--batch 4096] [--widths 429,432,448]
"""

import argparse
import time

import torch


def best_of(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--widths", default="429,432,440,448,464,480")
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    b = a.batch
    print(f"{'width':>6} {'cross fwd':>10} {'cross dX':>9} {'cross dW':>9} {'lin fwd':>8} {'lin dX':>7} {'lin dW':>7}"
          f" {'all ms':>7}   (GFLOP/s, {a.threads} thread(s))")
    for d in (int(w) for w in a.widths.split(",")):
        x, w, g = torch.randn(b, d), torch.randn(d, d), torch.randn(b, d)
        w1, g1, bias, bias1 = torch.randn(256, d), torch.randn(b, 256), torch.zeros(d), torch.zeros(256)
        cross, lin = 2 * b * d * d / 1e9, 2 * b * d * 256 / 1e9
        times = [best_of(f, a.repeats) for f in (lambda: torch.addmm(bias, x, w.t()), lambda: g.mm(w),
                                                 lambda: g.t().mm(x), lambda: torch.addmm(bias1, x, w1.t()),
                                                 lambda: g1.mm(w1), lambda: g1.t().mm(x))]
        flops = [cross] * 3 + [lin] * 3
        rates = " ".join(f"{f / t:9.0f}" for f, t in zip(flops, times))
        print(f"{d:6d} {rates} {sum(times) * 1e3:7.1f}")


if __name__ == "__main__":
    main()
