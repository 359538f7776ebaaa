"""Trains the plain-PyTorch twin of an adrec ranking model on the arrays `adrec features` wrote.

    adrec features --data DS --config CFG --out FEAT
    train_ctr.py --features FEAT --config CFG [--seed 42] [--threads 2] [--out result.json]

The same config file as `adrec train` and the same step as adrec's trainer (adrec/train/trainer.cc),
written the way a PyTorch user would:

  * tables: one torch.nn.Embedding-style weight per [[features.tables]] entry, rows and dims from
    features.json, N(0, init_std²) rows (adrec: 0.01); fixed tables map raw value v to row v + 1
    (row 0: unknown); fields are pooled with F.embedding_bag(sparse=True) (mean or sum, empty lists
    give zeros, as adrec). Hashed and dynamic tables are not reproduced (refused with a message).
  * LR/FM/DeepFM: a dim-1 companion table per table, zero-initialised, pooled like its field and
    summed over fields into `linear`.
  * embeddings: row-wise Adagrad (one accumulator per row, the mean of g² over the row, as
    adrec/embedding and TorchRec's EXACT_ROWWISE_ADAGRAD) at train.embedding_lr; torch.optim.Adagrad
    would be per coordinate. train.linear_optimizer = "ftrl": FTRL-proximal per coordinate
    (McMahan et al. 2013) with train.ftrl_alpha/beta/l1/l2, as adrec.
  * dense parameters: torch.optim.Adam (or AdamW) at train.lr with train.weight_decay, the same
    schedule (constant, cosine, linear, with warmup), gradient clipping if train.clip_norm.
  * loss: BCE per target over the samples where the target is defined (mask), weighted sum.
  * output bias starts at the logit of the train base rate (train.init_output_bias, default on).
  * each epoch: a new shuffle, all batches (the last one partial), then valid AUC of the primary
    target; early stopping after train.patience epochs without a better valid AUC; test AUC and
    log loss (scikit-learn) of the best-valid weights.

Prints one JSON object (and writes it to --out).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
import tomllib

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import log_loss, roc_auc_score

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ranking_models import ModelInput, ModelShape, make_model  # noqa: E402

LINEAR_MODELS = {"lr", "fm", "deepfm"}  # models whose wants_linear_terms() is true


# ---- settings ([train] with adrec's defaults, adrec/train/trainer.cc TrainSettings) ----------------

TRAIN_DEFAULTS = {
    "epochs": 5, "batch_size": 4096, "eval_batch_size": 16384, "optimizer": "adam", "lr": 1e-3,
    "weight_decay": 0.0, "embedding_optimizer": "adagrad", "embedding_lr": 0.05, "embedding_weight_decay": 0.0,
    "linear_optimizer": "", "ftrl_alpha": 0.05, "ftrl_beta": 1.0, "ftrl_l1": 0.0, "ftrl_l2": 0.0, "clip_norm": 0.0,
    "schedule": "constant", "warmup_steps": 0, "eval_every": 0, "patience": 2, "primary_target": "",
    "init_output_bias": True,
}


def train_settings(cfg: dict) -> dict:
    s = dict(TRAIN_DEFAULTS)
    s.update(cfg.get("train", {}))
    if s["eval_every"] != 0:
        raise SystemExit("train_ctr.py evaluates once per epoch; train.eval_every must be 0")
    return s


def learning_rate(s: dict, step: int, total_steps: int) -> float:
    """adrec's LearningRate(): warmup, then constant / cosine / linear decay to 0."""
    if s["warmup_steps"] > 0 and step < s["warmup_steps"]:
        return s["lr"] * (step + 1) / s["warmup_steps"]
    span = max(1.0, total_steps - s["warmup_steps"])
    progress = min(max((step - s["warmup_steps"]) / span, 0.0), 1.0)
    if s["schedule"] == "cosine":
        return s["lr"] * 0.5 * (1.0 + math.cos(math.pi * progress))
    if s["schedule"] == "linear":
        return s["lr"] * (1.0 - progress)
    return s["lr"]


# ---- data -----------------------------------------------------------------------------------------


class Part:
    """One part's arrays: per sparse field CSR (rows already mapped), dense, text, labels, mask, scene."""

    def __init__(self, directory: str, part: str, meta: dict, tables: dict):
        def load(name):
            return np.load(os.path.join(directory, f"{part}.{name}.npy"))

        self.labels = torch.from_numpy(load("labels"))
        self.mask = torch.from_numpy(load("mask"))
        self.n = self.labels.shape[0]
        self.dense = torch.from_numpy(load("dense"))
        self.text = [torch.from_numpy(load(f"{f['name']}.text")) for f in meta["text_fields"]]
        self.scene = torch.from_numpy(load("scene").astype(np.int64))
        self.rows, self.offsets = [], []
        for f in meta["sparse_fields"]:
            table = tables[f["table"]]
            ids = load(f"{f['name']}.ids")
            if table["kind"] != "fixed":
                raise SystemExit(f"field '{f['name']}': table '{table['name']}' is {table['kind']}; train_ctr.py "
                                 "reproduces fixed tables only (row = raw + 1)")
            known = table["rows"] - 1
            rows = np.where((ids >= 0) & (ids < known), ids + 1, 0)
            self.rows.append(torch.from_numpy(rows.astype(np.int64)))
            self.offsets.append(torch.from_numpy(load(f"{f['name']}.offsets")))
        self.lengths = [o[1:] - o[:-1] for o in self.offsets]

    def batch(self, idx: torch.Tensor):
        """Rows and B + 1 offsets of each sparse field for samples idx, and the other arrays."""
        sparse = []
        for rows, offsets, lengths in zip(self.rows, self.offsets, self.lengths):
            lens = lengths[idx]
            total = int(lens.sum())
            new_offsets = torch.zeros(len(idx) + 1, dtype=torch.int64)
            torch.cumsum(lens, 0, out=new_offsets[1:])
            if total == len(idx) and bool((lens == 1).all()):
                sel = offsets[idx]
            else:
                starts = offsets[idx].repeat_interleave(lens)
                within = torch.arange(total) - new_offsets[:-1].repeat_interleave(lens)
                sel = starts + within
            sparse.append((rows[sel], new_offsets))
        return (sparse, self.dense[idx], [t[idx] for t in self.text], self.labels[idx], self.mask[idx],
                self.scene[idx])


# ---- embeddings and their sparse optimisers ----------------------------------------------------------


class RowWiseAdagrad:
    """adrec/embedding/sparse_optimizer.cc RowWiseAdagrad: sum[r] += mean_j(g_rj²); w_r -= lr g_r / (√sum[r] + eps)."""

    def __init__(self, weight: torch.Tensor, lr: float, weight_decay: float, eps: float = 1e-8):
        self.weight, self.lr, self.wd, self.eps = weight, lr, weight_decay, eps
        self.sum = torch.zeros(weight.shape[0])

    @torch.no_grad()
    def step(self, rows: torch.Tensor, grad: torch.Tensor):
        w = self.weight.data
        g = grad + self.wd * w[rows] if self.wd != 0 else grad
        s = self.sum[rows] + g.square().mean(1)
        self.sum[rows] = s
        w[rows] -= g * (self.lr / (s.sqrt() + self.eps)).unsqueeze(1)


class Ftrl:
    """FTRL-proximal per coordinate (McMahan et al. 2013, Algorithm 1), as adrec's Ftrl."""

    def __init__(self, weight: torch.Tensor, alpha: float, beta: float, l1: float, l2: float):
        self.weight, self.alpha, self.beta, self.l1, self.l2 = weight, alpha, beta, l1, l2
        self.z = torch.zeros_like(weight.data)
        self.n = torch.zeros_like(weight.data)

    @torch.no_grad()
    def step(self, rows: torch.Tensor, grad: torch.Tensor):
        w = self.weight.data
        n_old = self.n[rows]
        n_new = n_old + grad.square()
        sigma = (n_new.sqrt() - n_old.sqrt()) / self.alpha
        z = self.z[rows] + grad - sigma * w[rows]
        self.z[rows] = z
        self.n[rows] = n_new
        solved = -(z - torch.sign(z) * self.l1) / ((self.beta + n_new.sqrt()) / self.alpha + self.l2)
        w[rows] = torch.where(z.abs() <= self.l1, torch.zeros_like(z), solved)


def make_sparse_optimizer(kind: str, weight, s: dict):
    if kind == "adagrad":
        return RowWiseAdagrad(weight, s["embedding_lr"], s["embedding_weight_decay"])
    if kind == "ftrl":
        return Ftrl(weight, s["ftrl_alpha"], s["ftrl_beta"], s["ftrl_l1"], s["ftrl_l2"])
    raise SystemExit(f"train_ctr.py implements the adagrad and ftrl embedding optimisers, not '{kind}'")


class Embeddings(torch.nn.Module):
    """One weight per table (+ a zero-initialised dim-1 companion per table for linear terms)."""

    def __init__(self, meta: dict, linear: bool, s: dict, generator: torch.Generator):
        super().__init__()
        self.fields = meta["sparse_fields"]
        self.tables = {t["name"]: t for t in meta["tables"]}
        self.weights = torch.nn.ParameterDict()
        self.linear_weights = torch.nn.ParameterDict()
        self.optimizers = {}
        used = []
        for f in self.fields:
            if f["table"] not in used:
                used.append(f["table"])
        for name in used:
            t = self.tables[name]
            w = torch.empty(t["rows"], t["dim"]).normal_(0.0, t["init_std"], generator=generator)
            self.weights[name] = torch.nn.Parameter(w)
            kind = t.get("optimizer") or s["embedding_optimizer"]
            self.optimizers[name] = make_sparse_optimizer(kind, self.weights[name], s)
            if linear:
                self.linear_weights[name] = torch.nn.Parameter(torch.zeros(t["rows"], 1))
                lin_kind = s["linear_optimizer"] or kind
                self.optimizers[name + ".linear"] = make_sparse_optimizer(lin_kind, self.linear_weights[name], s)
        self.linear = linear

    def forward(self, sparse):
        out = []
        linear = None
        for f, (rows, offsets) in zip(self.fields, sparse):
            mode = f["pooling"]
            out.append(F.embedding_bag(rows, self.weights[f["table"]], offsets, mode=mode, sparse=True,
                                       include_last_offset=True))
            if self.linear:
                term = F.embedding_bag(rows, self.linear_weights[f["table"]], offsets, mode=mode, sparse=True,
                                       include_last_offset=True)
                linear = term if linear is None else linear + term
        return out, linear

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def step(self):
        params = dict(self.weights.items())
        params.update({k + ".linear": v for k, v in self.linear_weights.items()})
        for name, p in params.items():
            if p.grad is None:
                continue  # the loss did not reach this table (LR's embedding tables)
            g = p.grad.coalesce()
            self.optimizers[name].step(g.indices()[0], g.values())


# ---- training ------------------------------------------------------------------------------------


def masked_bce(logits, labels, mask, weights):
    per = F.binary_cross_entropy_with_logits(logits.float(), labels, weight=mask, reduction="none")
    return ((per.sum(0) / mask.sum(0).clamp_min(1.0)) * weights).sum()


@torch.no_grad()
def predict(model, emb, part: Part, batch_size: int) -> np.ndarray:
    model.eval()
    preds = []
    for begin in range(0, part.n, batch_size):
        idx = torch.arange(begin, min(part.n, begin + batch_size))
        sparse, dense, text, _, _, scene = part.batch(idx)
        emb_out, linear = emb(sparse)
        x = ModelInput(sparse=emb_out, dense=dense, text=text, linear=linear, scene=scene)
        preds.append(torch.sigmoid(model(x).float()))
    model.train()
    return torch.cat(preds).numpy()


def metrics(pred: np.ndarray, part: Part, t: int) -> dict:
    m = part.mask[:, t].numpy() > 0
    y = part.labels[:, t].numpy()[m]
    p = pred[:, t][m].astype(np.float64)
    return {"auc": float(roc_auc_score(y, p)), "logloss": float(log_loss(y, p, labels=[0, 1])),
            "samples": int(m.sum())}


def init_output_bias(model, rates):
    logits = [math.log(min(max(r, 1e-6), 1 - 1e-6) / (1 - min(max(r, 1e-6), 1 - 1e-6))) for r in rates]
    params = dict(model.named_parameters())
    with torch.no_grad():
        if "out.bias" in params and params["out.bias"].numel() == len(logits):
            params["out.bias"].copy_(torch.tensor(logits))
            return True
        found = False
        for t, v in enumerate(logits):
            b = params.get(f"towers.{t}.out.bias")
            if b is not None and b.numel() == 1:
                b.fill_(v)
                found = True
        return found


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--features", required=True, help="directory written by `adrec features`")
    p.add_argument("--config", required=True, help="the config `adrec train` used")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", help="also write the result JSON here")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines on stderr")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    with open(a.config, "rb") as fh:
        cfg = tomllib.load(fh)
    with open(os.path.join(a.features, "features.json")) as fh:
        meta = json.load(fh)
    s = train_settings(cfg)
    kind = cfg["model"]["name"]
    tables = {t["name"]: t for t in meta["tables"]}
    t0 = time.perf_counter()
    train = Part(a.features, "train", meta, tables)
    valid = Part(a.features, "valid", meta, tables)
    test = Part(a.features, "test", meta, tables)
    targets = [t["name"] for t in meta["targets"]]
    primary = targets.index(s["primary_target"]) if s["primary_target"] else 0

    shape = ModelShape(sparse_dims=[tables[f["table"]]["dim"] for f in meta["sparse_fields"]],
                       dense_width=meta["dense_width"], text_dims=[f["width"] for f in meta["text_fields"]],
                       targets=targets, num_scenes=max(1, len(meta["scenes"])),
                       sparse_names=[f["name"] for f in meta["sparse_fields"]],
                       sparse_sources=[f.get("source", "") for f in meta["sparse_fields"]],
                       text_names=[f["name"] for f in meta["text_fields"]],
                       text_sources=[f.get("source", "") for f in meta["text_fields"]])
    model = make_model(kind, shape, cfg.get("model", {}))
    model.train()
    gen = torch.Generator().manual_seed(a.seed)
    emb = Embeddings(meta, kind in LINEAR_MODELS, s, gen)
    if s["init_output_bias"]:
        rates = ((train.labels * train.mask).sum(0) / train.mask.sum(0).clamp_min(1)).tolist()
        if not init_output_bias(model, rates):
            print(f"{kind}: no output bias found to start at the base rate", file=sys.stderr)
    opt_cls = torch.optim.AdamW if s["optimizer"] == "adamw" else torch.optim.Adam
    opt = opt_cls(model.parameters(), lr=s["lr"], weight_decay=s["weight_decay"])
    target_weights = torch.tensor([t["weight"] for t in meta["targets"]], dtype=torch.float32)

    bs = s["batch_size"]
    per_epoch = (train.n + bs - 1) // bs
    total_steps = per_epoch * s["epochs"]
    step, best_auc, best_epoch, since_best = 0, -1.0, -1, 0
    best_state, best_valid, history, stopped = None, None, [], "completed"
    for epoch in range(s["epochs"]):
        order = torch.randperm(train.n, generator=torch.Generator().manual_seed(a.seed * 1000003 + epoch))
        loss_sum = 0.0
        for b in range(per_epoch):
            idx = order[b * bs:(b + 1) * bs]
            sparse, dense, text, labels, mask, scene = train.batch(idx)
            lr = learning_rate(s, step, total_steps)
            for g in opt.param_groups:
                g["lr"] = lr
            emb_out, linear = emb(sparse)
            logits = model(ModelInput(sparse=emb_out, dense=dense, text=text, linear=linear, scene=scene))
            loss = masked_bce(logits, labels, mask, target_weights)
            value = loss.item()
            if not math.isfinite(value):
                raise SystemExit(f"training diverged: loss {value} at step {step}")
            opt.zero_grad(set_to_none=True)
            emb.zero_grad()
            loss.backward()
            if s["clip_norm"] > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), s["clip_norm"])
            opt.step()
            emb.step()
            loss_sum += value
            step += 1
        v = metrics(predict(model, emb, valid, s["eval_batch_size"]), valid, primary)
        history.append({"epoch": epoch + 1, "step": step, "train_loss": loss_sum / per_epoch, **v})
        if not a.quiet:
            print(f"{kind} epoch {epoch + 1}: train loss {loss_sum / per_epoch:.4f} valid auc {v['auc']:.4f} "
                  f"logloss {v['logloss']:.4f}", file=sys.stderr)
        if v["auc"] > best_auc or best_epoch < 0:
            best_auc, best_epoch, since_best, best_valid = v["auc"], epoch + 1, 0, v
            best_state = (copy.deepcopy(model.state_dict()), copy.deepcopy(emb.state_dict()))
        else:
            since_best += 1
            if since_best > s["patience"]:
                stopped = "early_stopping"
                break
    model.load_state_dict(best_state[0])
    emb.load_state_dict(best_state[1])
    result = {
        "side": "pytorch", "model": kind, "torch": torch.__version__, "threads": a.threads, "seed": a.seed,
        "epochs": len(history), "best_epoch": best_epoch, "steps": step, "stopped": stopped,
        "train_seconds": time.perf_counter() - t0, "valid": best_valid,
        "test": metrics(predict(model, emb, test, s["eval_batch_size"]), test, primary), "history": history,
    }
    text = json.dumps(result)
    print(text)
    if a.out:
        with open(a.out, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
