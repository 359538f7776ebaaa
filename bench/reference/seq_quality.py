"""The PyTorch twin of `adrec train` for the sequence models: the same model (seq_models.py, the
same math and parameter names), loss, samples, optimiser and early stopping as a config of
configs/ asks, on the same leave-one-out split of an S3-Rec text file, evaluated by the same
protocol (full ranking, the user's history excluded, the valid item in the test query's
history, ties pessimistic). It is the reference that adrec's quality and speed are compared with
in the same run (scripts/quality-sequence --twin).

    seq_quality.py --data Beauty.txt --config configs/s3rec_sasrec.toml [--seed 42] [--device cuda]
        [--threads 2] [--max-seconds S] [--out twin.json]

Prints one JSON object: epochs, best_epoch, stopped, train_seconds (the whole loop, evaluations
included, as adrec's), valid and test metrics (hr@K, ndcg@K for K in 1, 5, 10, 20, 50, 200; mrr).
Supports train.loss = "ce" (the recipe this twin exists for) with samples "prefixes" or
"sequences".
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seq_models import make_sequence_model  # noqa: E402

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

KS = [1, 5, 10, 20, 50, 200]


def read_s3rec(path: str):
    """Per user: train items, valid item, test item (1-based IDs as in the file)."""
    train, valid, test = [], [], []
    num_items = 0
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2:
                continue
            items = [int(x) for x in parts[1:]]
            num_items = max(num_items, max(items))
            if len(items) < 3:
                continue  # adrec keeps such users in training only; they have no held-out item
            train.append(items[:-2])
            valid.append(items[-2])
            test.append(items[-1])
    return train, valid, test, num_items


def right_padded(rows, max_len, device):
    rows = [r[-max_len:] for r in rows]
    width = max(1, max(len(r) for r in rows))
    out = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.tensor(r, dtype=torch.long)
    return out.to(device)


def evaluate(model, histories, targets, num_items, max_len, device, batch_size=512):
    model.eval()
    rank_all = []
    with torch.no_grad():
        table = model.item_emb.weight[1:].float()
        for b in range(0, len(histories), batch_size):
            hist = histories[b:b + batch_size]
            items = right_padded(hist, max_len, device)
            h = model(items, torch.zeros_like(items)).float()
            last = (items != 0).sum(1) - 1
            state = h[torch.arange(h.shape[0], device=device), last]
            scores = state @ table.t()  # [B, V], column j is item j + 1
            tgt = torch.tensor(targets[b:b + batch_size], device=device) - 1
            t_score = scores.gather(1, tgt[:, None])
            # The history is excluded (one scatter per batch), the target never.
            rows = torch.tensor([i for i, seen in enumerate(hist) for _ in seen], dtype=torch.long, device=device)
            cols = torch.tensor([s - 1 for seen in hist for s in seen], dtype=torch.long, device=device)
            scores[rows, cols] = -float("inf")
            scores.scatter_(1, tgt[:, None], t_score)
            ranks = (scores > t_score).sum(1) + (scores == t_score).sum(1) - 1  # pessimistic ties
            rank_all.append(ranks.cpu())
    r = torch.cat(rank_all).double()
    out = {}
    for k in KS:
        out[f"hr@{k}"] = (r < k).double().mean().item()
    for k in KS:
        out[f"ndcg@{k}"] = torch.where(r < k, 1.0 / torch.log2(r + 2.0), torch.zeros_like(r)).mean().item()
    out["mrr"] = (1.0 / (r + 1.0)).mean().item()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="")
    p.add_argument("--max-seconds", type=float, default=0.0,
                   help="stop at the first evaluation after training this long (adrec train --max-seconds)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    with open(a.config, "rb") as f:
        cfg = tomllib.load(f)
    m, t = cfg["model"], cfg["train"]
    if t.get("loss") != "ce":
        raise SystemExit(f"{a.config}: the twin trains train.loss = \"ce\" only")
    samples = t.get("samples", "sequences")
    max_len = int(m.get("max_len", 200))
    device = torch.device(a.device)
    random.seed(a.seed)
    torch.manual_seed(a.seed)
    train, valid, test, num_items = read_s3rec(a.data)
    opts = {k: v for k, v in m.items() if k not in ("name", "max_len")}
    model = make_sequence_model(m["name"], num_items, max_len, opts).to(device)
    betas = (0.9, float(t.get("adam_beta2", 0.98)))
    lr, wd = float(t.get("lr", 1e-3)), float(t.get("weight_decay", 0.0))
    opt = (torch.optim.AdamW if t.get("optimizer", "adamw") == "adamw" else torch.optim.Adam)(
        model.parameters(), lr=lr, betas=betas, weight_decay=wd)
    bs = int(t.get("batch_size", 128))
    epochs, eval_every, patience = int(t.get("epochs", 100)), int(t.get("eval_every", 1)), int(t.get("patience", 10))
    bf16 = bool(t.get("bf16", True)) and device.type == "cuda"
    if samples == "prefixes":
        units = [(u, e) for u, seq in enumerate(train) for e in range(1, len(seq))]
    else:
        units = [(u, len(seq)) for u, seq in enumerate(train) if len(seq) > 1]
    valid_hist = train
    test_hist = [seq + [v] for seq, v in zip(train, valid)]

    best, best_state, best_epoch, since, stopped = -1.0, None, 0, 0, "completed"
    t0 = time.time()
    epoch = 0
    for epoch in range(1, epochs + 1):
        model.train()
        random.shuffle(units)
        for b in range(0, len(units), bs):
            chunk = units[b:b + bs]
            if samples == "prefixes":
                inputs = [train[u][max(0, e - max_len):e] for u, e in chunk]
                items = right_padded(inputs, max_len, device)
                last = (items != 0).sum(1) - 1
                targets = torch.zeros_like(items)
                targets[torch.arange(len(chunk), device=device), last] = torch.tensor(
                    [train[u][e] for u, e in chunk], device=device)
            else:
                rows = [train[u][-(max_len + 1):] for u, _ in chunk]
                items = right_padded([r[:-1] for r in rows], max_len, device)
                targets = right_padded([r[1:] for r in rows], max_len, device)
                targets = targets[:, :items.shape[1]]
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                h = model(items, torch.zeros_like(items))
            where = targets.reshape(-1).nonzero().squeeze(1)
            hidden = h.reshape(-1, h.shape[-1]).index_select(0, where).float()
            logits = hidden @ model.item_emb.weight[1:].float().t()
            loss = F.cross_entropy(logits, targets.reshape(-1).index_select(0, where) - 1)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if epoch % eval_every == 0 or epoch == epochs:
            v = evaluate(model, valid_hist, valid, num_items, max_len, device)
            print(f"epoch {epoch}: loss {loss.item():.4f} valid hr@10 {v['hr@10']:.4f} ndcg@10 {v['ndcg@10']:.4f}",
                  file=sys.stderr, flush=True)
            if v["ndcg@10"] > best:
                best, best_epoch, since, best_valid = v["ndcg@10"], epoch, 0, v
                best_state = {k: x.detach().clone() for k, x in model.state_dict().items()}
            else:
                since += 1
                if since > patience:  # as adrec: `patience` evaluations without a better one are tolerated
                    stopped = "early_stopping"
                    break
            if a.max_seconds > 0 and time.time() - t0 >= a.max_seconds and epoch < epochs:
                stopped = "time_limit"
                break
    train_seconds = time.time() - t0
    model.load_state_dict(best_state)
    result = {"model": m["name"], "config": os.path.basename(a.config), "seed": a.seed, "device": a.device,
              "epochs": epoch, "best_epoch": best_epoch, "stopped": stopped, "train_seconds": train_seconds,
              "valid": best_valid,
              "test": evaluate(model, test_hist, test, num_items, max_len, device)}
    text = json.dumps(result)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
