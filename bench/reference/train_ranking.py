"""PyTorch eager reference of bench/train_ranking (the C++ side: bench/train_ranking_bench.cc).

The same step as adrec's trainer, written the way a PyTorch user would: 26 torch.nn.Embedding
(rows, dim, sparse=True) tables (row = raw ID mod rows), the twin DCNv2 of ranking_models.py,
BCE with logits, loss.item() (the trainer reads the loss every step), backward,
torch.optim.Adam on the dense parameters and torch.optim.Adagrad on the embeddings (sparse
gradients). Reads the data of ranking_data.py; prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ranking_data  # noqa: E402
from ranking_models import ModelInput, ModelShape, make_model  # noqa: E402


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize()


class Embeddings(nn.Module):
    def __init__(self, fields: int, rows: int, dim: int, init_std: float):
        super().__init__()
        self.rows = rows
        # N(0, init_std²) rows as adrec's tables, initialised once (nn.Embedding's own N(0, 1)
        # init would be a second pass over 26M rows).
        self.tables = nn.ModuleList([
            nn.Embedding.from_pretrained(torch.empty(rows, dim).normal_(0.0, init_std), freeze=False, sparse=True)
            for _ in range(fields)])

    def forward(self, ids: torch.Tensor) -> list[torch.Tensor]:
        rows = ids % self.rows  # [B, F]
        return [t(rows[:, f]) for f, t in enumerate(self.tables)]


def model_config(hidden: list[int], cross_layers: int, low_rank: int = 0) -> dict:
    return {"structure": "stacked", "cross_layers": cross_layers, "low_rank": low_rank, "hidden": hidden, "dropout": 0.0}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=16)
    p.add_argument("--hidden", default="256,128")
    p.add_argument("--cross-layers", type=int, default=3)
    p.add_argument("--low-rank", type=int, default=0)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--embedding-lr", type=float, default=0.05)
    p.add_argument("--bf16", type=int, default=-1, help="autocast to bf16 on CUDA (-1: on for cuda, as adrec's trainer)")
    p.add_argument("--phases", action="store_true", help="time the phases (syncs the device between them)")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(42)
    device = torch.device(a.device)
    bf16 = device.type == "cuda" if a.bf16 < 0 else bool(a.bf16)
    dense_np, ids_np, labels_np = ranking_data.load(a.data)
    n, fields = ids_np.shape
    batches = n // a.batch
    if batches < 1:
        raise SystemExit(f"{a.data}: {n} samples, fewer than one batch of {a.batch}")

    t0 = time.perf_counter()
    emb = Embeddings(fields, a.rows, a.dim, 0.01).to(device)
    shape = ModelShape(sparse_dims=[a.dim] * fields, dense_width=dense_np.shape[1], targets=["click"])
    model = make_model("dcnv2", shape, model_config([int(h) for h in a.hidden.split(",")], a.cross_layers, a.low_rank)).to(device)
    model.train()
    adam = torch.optim.Adam(model.parameters(), lr=a.lr)
    adagrad = torch.optim.Adagrad(emb.parameters(), lr=a.embedding_lr, eps=1e-8)
    setup_s = time.perf_counter() - t0

    # Host tensors of each batch, made before timing (adrec's side builds its data::Batch before
    # timing too); moving them to the device is part of the step.
    host = []
    for b in range(batches):
        s = slice(b * a.batch, (b + 1) * a.batch)
        host.append((torch.from_numpy(ids_np[s]), torch.from_numpy(dense_np[s]), torch.from_numpy(labels_np[s]).unsqueeze(1)))
    if device.type == "cuda":
        host = [tuple(t.pin_memory() for t in h) for h in host]

    phases = {k: 0.0 for k in ("copy_lookup", "forward_loss", "backward", "dense_adam", "sparse_adagrad")}
    losses = []

    def step(i: int, timed: bool) -> float:
        ids, dense, labels = host[i % batches]
        clock = [time.perf_counter()]

        def mark(name):
            if timed and a.phases:
                sync(device)
                now = time.perf_counter()
                phases[name] += now - clock[0]
                clock[0] = now

        ids = ids.to(device, non_blocking=True)
        dense = dense.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        x = ModelInput(sparse=emb(ids), dense=dense)
        mark("copy_lookup")
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), labels)
        value = loss.item()
        mark("forward_loss")
        adam.zero_grad(set_to_none=True)
        adagrad.zero_grad(set_to_none=True)
        loss.backward()
        mark("backward")
        adam.step()
        mark("dense_adam")
        adagrad.step()
        mark("sparse_adagrad")
        return value

    for i in range(a.warmup):
        losses.append(step(i, False))
    sync(device)
    t0 = time.perf_counter()
    step_s = []  # timed steps (the median resists other processes' bursts)
    for i in range(a.warmup, a.warmup + a.steps):
        s0 = time.perf_counter()
        losses.append(step(i, True))
        sync(device)  # loss.item() has synchronised already; this only closes the step on CUDA
        step_s.append(time.perf_counter() - s0)
    sync(device)
    seconds = time.perf_counter() - t0
    median_s = sorted(step_s)[len(step_s) // 2]

    out = {
        "side": "pytorch", "device": a.device, "threads": a.threads, "torch": torch.__version__, "batch": a.batch,
        "rows": a.rows, "dim": a.dim, "fields": fields, "steps": a.steps, "warmup": a.warmup, "bf16": bf16,
        "seconds": seconds, "samples_per_s": a.steps * a.batch / seconds, "ms_per_step": 1e3 * seconds / a.steps,
        "samples_per_s_median": a.batch / median_s, "ms_per_step_median": 1e3 * median_s,
        "ms_per_step_min": 1e3 * min(step_s),  # other processes only ever add time "low_rank": a.low_rank,
        "setup_s": setup_s, "peak_rss_mib": peak_rss_mib(),
        "loss_first": float(np.mean(losses[:3])), "loss_last": float(np.mean(losses[-3:])),
    }
    if device.type == "cuda":
        out["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    if a.phases:
        out["phases_ms"] = {k: 1e3 * v / a.steps for k, v in phases.items()}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
