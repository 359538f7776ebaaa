"""PyTorch eager reference of bench/train_sequence_bench.cc: the same SASRec / HSTU
(seq_models.py, adrec's twins), the same sampled-softmax loss (uniform + at most 128 in-batch
negatives, cosine / temperature, accidental hits masked; adrec/train/losses.cc), AdamW, on full-length
random sequences built before timing. Prints one JSON object on stdout.

    train_sequence.py [--model hstu] [--device cpu] [--threads 2] [--batch 128] [--len 200]
        [--items 3706] [--dim 50] [--blocks 2] [--heads 1] [--negatives 128] [--warmup 3]
        [--steps 20] [--bf16 -1] [--encode-latency 0] [--count-flops 0]
    train_sequence.py --check DIR [DIR...] [--tol 1e-5]

--check reads DIR/loss.safetensors (hidden, targets, table, negatives, expected; metadata
temperature, in_batch) written by adrec's test (adrec/train/losses_test.cc), computes the loss
here and exits 0 when |loss - expected| / max(1, |expected|) < --tol (printed either way).

--count-flops 1 adds model_flops_per_step: the matmul/attention FLOPs of one training step
(forward and backward) counted by torch.utils.flop_counter after the timed steps; the script
that runs both sides turns it into TFLOP/s and model-FLOPs utilisation.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seq_models import make_sequence_model  # noqa: E402


def sampled_softmax_loss(hidden, targets, table, negatives, temperature=0.05, in_batch_max=128, in_batch=True):
    h = F.normalize(hidden, dim=-1, eps=1e-6)
    pos = F.normalize(table[targets], dim=-1, eps=1e-6)
    neg_ids = negatives
    if in_batch:
        batch_ids = targets
        if targets.shape[0] > in_batch_max:
            batch_ids = targets[torch.randperm(targets.shape[0], device=targets.device)[:in_batch_max]]
        neg_ids = torch.cat([negatives, batch_ids])
    neg = F.normalize(table[neg_ids], dim=-1, eps=1e-6)
    pos_logit = (h * pos).sum(-1, keepdim=True) / temperature
    neg_logit = (h @ neg.t()) / temperature
    neg_logit = neg_logit.masked_fill(neg_ids[None, :] == targets[:, None], float("-inf"))
    logits = torch.cat([pos_logit, neg_logit], 1).float()
    return -torch.log_softmax(logits, 1)[:, 0].mean()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def check(directory: str, tol: float) -> int:
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = f"{directory}/loss.safetensors"
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    t = load_file(path)
    loss = sampled_softmax_loss(t["hidden"], t["targets"], t["table"], t["negatives"],
                                temperature=float(meta["temperature"]), in_batch_max=1 << 30,
                                in_batch=meta["in_batch"] == "1").item()
    expected = t["expected"].item()
    diff = abs(loss - expected)
    ok = math.isfinite(diff) and diff / max(1.0, abs(expected)) < tol
    print(f"sampled softmax ({directory}): max_abs_diff={diff:.3g} (loss {expected:.6g}){'' if ok else ' FAIL'}")
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", nargs="+", metavar="DIR")
    p.add_argument("--tol", type=float, default=1e-5)
    p.add_argument("--model", default="hstu")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--len", type=int, default=200)
    p.add_argument("--items", type=int, default=3706)
    p.add_argument("--dim", type=int, default=50)
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--heads", type=int, default=1)
    p.add_argument("--negatives", type=int, default=128)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--bf16", type=int, default=-1)
    p.add_argument("--encode-latency", type=int, default=0)
    p.add_argument("--count-flops", type=int, default=0)
    a = p.parse_args()
    if a.check:
        return max(check(d, a.tol) for d in a.check)
    device = torch.device(a.device)
    bf16 = device.type == "cuda" if a.bf16 < 0 else a.bf16 != 0
    torch.set_num_threads(a.threads)
    torch.manual_seed(42)
    model = make_sequence_model(a.model, a.items, a.len,
                                {"dim": a.dim, "blocks": a.blocks, "heads": a.heads, "dropout": 0.2}).to(device)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=0.0)

    g = torch.Generator().manual_seed(7)
    batches = []
    for _ in range(4):
        seq = torch.randint(1, a.items + 1, (a.batch, a.len + 1), generator=g)
        ts = 1_000_000_000 + torch.cumsum(1 + torch.randint(0, 86400, (a.batch, a.len), generator=g), 1)
        batches.append((seq[:, :-1].contiguous().to(device), ts.to(device), seq[:, 1:].reshape(-1).to(device)))

    losses, step_s = [], []

    def step(i):
        items, ts, targets = batches[i % len(batches)]
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            encoded = model(items, ts)
        hidden = encoded.float().reshape(-1, a.dim)
        negatives = torch.randint(1, a.items + 1, (a.negatives,), device=device)
        loss = sampled_softmax_loss(hidden, targets, model.item_emb.weight, negatives)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()

    for i in range(a.warmup):
        step(i)
    sync(device)
    if os.environ.get("ADREC_PROFILE_TRACE"):  # the same op trace as train_sequence_bench writes
        with torch.autograd.profiler.profile() as prof:
            for i in range(3):
                step(i)
        prof.export_chrome_trace(os.environ["ADREC_PROFILE_TRACE"])
    t0 = time.perf_counter()
    for i in range(a.steps):
        s0 = time.perf_counter()
        step(a.warmup + i)
        sync(device)
        step_s.append(time.perf_counter() - s0)
    seconds = time.perf_counter() - t0
    step_s.sort()
    out = {"side": "pytorch", "model": a.model, "device": str(device), "threads": a.threads, "batch": a.batch,
           "len": a.len, "items": a.items, "dim": a.dim, "blocks": a.blocks, "heads": a.heads,
           "negatives": a.negatives, "bf16": bf16, "steps": a.steps,
           "sequences_per_s": a.steps * a.batch / seconds, "tokens_per_s": a.steps * a.batch * a.len / seconds,
           "ms_per_step": 1e3 * seconds / a.steps, "ms_per_step_median": 1e3 * step_s[len(step_s) // 2],
           "ms_per_step_min": 1e3 * step_s[0], "loss_first": losses[0], "loss_last": losses[-1]}
    if a.count_flops:
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            step(a.warmup + a.steps)
        out["model_flops_per_step"] = counter.get_total_flops()
    if a.encode_latency:
        model.eval()
        items, ts, _ = batches[0]
        one = (items[:1], ts[:1])
        us = []
        with torch.no_grad():
            for _ in range(10):
                model(*one)
            sync(device)
            for _ in range(200):
                s0 = time.perf_counter()
                model(*one)[:, -1]
                sync(device)
                us.append(1e6 * (time.perf_counter() - s0))
        us.sort()
        out["encode_p50_us"] = us[len(us) // 2]
        out["encode_p99_us"] = us[len(us) * 99 // 100]
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
