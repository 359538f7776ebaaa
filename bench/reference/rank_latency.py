"""PyTorch eager reference of bench/rank_latency (the C++ side: bench/rank_latency_bench.cc).

Scores `candidates` items for one request with the twin DCNv2 of ranking_models.py in eval mode
under torch.no_grad: ids mod rows, one torch.nn.Embedding lookup per field, the model, sigmoid,
scores copied out to a Python list. With --precision bf16 the model's weights are cast to bfloat16
once (model.to(torch.bfloat16)) and each request's features are cast before the model. Requests are built from ranking_data.py's files exactly as
the C++ side builds them (see there). Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ranking_data  # noqa: E402
from ranking_models import ModelInput, ModelShape, make_model  # noqa: E402
from train_ranking import Embeddings, model_config, peak_rss_mib  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--candidates", type=int, default=100)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--user-fields", type=int, default=13)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=16)
    p.add_argument("--hidden", default="256,128")
    p.add_argument("--cross-layers", type=int, default=3)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    a = p.parse_args()

    torch.manual_seed(42)
    device = torch.device(a.device)
    dense_np, ids_np, _ = ranking_data.load(a.data)
    n, fields = ids_np.shape
    c = a.candidates
    emb = Embeddings(fields, a.rows, a.dim, 0.01).to(device).eval()
    shape = ModelShape(sparse_dims=[a.dim] * fields, dense_width=dense_np.shape[1], targets=["click"])
    model = make_model("dcnv2", shape, model_config([int(h) for h in a.hidden.split(",")], a.cross_layers)).to(device)
    model.eval()
    dtype = torch.bfloat16 if a.precision == "bf16" else torch.float32
    model.to(dtype)

    total = a.warmup + a.requests
    reqs = []
    for r in range(total):
        base = (r * c) % (n - c)
        ids = ids_np[base:base + c].copy()
        ids[:, :a.user_fields] = ids_np[base, :a.user_fields]  # the user's fields, broadcast
        reqs.append((torch.from_numpy(ids), torch.from_numpy(dense_np[base:base + c].copy())))

    checksum = 0.0

    def score(ids, dense):
        nonlocal checksum
        ids, dense = ids.to(device), dense.to(device)
        sparse = [e.to(dtype) for e in emb(ids)]
        s = torch.sigmoid(model(ModelInput(sparse=sparse, dense=dense.to(dtype)))).float().reshape(-1).tolist()
        checksum += s[0]

    results = []
    with torch.no_grad():
        for threads in [int(t) for t in a.threads.split(",")]:
            torch.set_num_threads(threads)
            for r in range(a.warmup):
                score(*reqs[r])
            us = []
            for r in range(a.warmup, total):
                t0 = time.perf_counter()
                score(*reqs[r])
                us.append(1e6 * (time.perf_counter() - t0))
            mean = sum(us) / len(us)
            us.sort()

            def pct(q):
                return us[min(len(us) - 1, int(q * len(us)))]

            results.append({"threads": threads, "p50_us": pct(0.50), "p99_us": pct(0.99), "mean_us": mean})
    print(json.dumps({"side": "pytorch", "device": a.device, "precision": a.precision, "candidates": c, "requests": a.requests,
                      "warmup": a.warmup, "rows": a.rows, "user_fields": a.user_fields, "latency": results,
                      "checksum": checksum, "torch": torch.__version__, "peak_rss_mib": peak_rss_mib()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
