"""Plain PyTorch twins of adrec's ranking models (adrec/models/*.h).

Same math, same parameter names as the C++ models' named_parameters() (so a bundle's
safetensors loads with load_state_dict(strict=True)), same config keys with the same defaults,
and the same inputs as adrec::embedding::ModelInput: a list of [B, d] sparse embeddings, dense [B, w],
a list of [B, t] text embeddings, linear [B, 1] (LR/FM/DeepFM) and scene int64 [B].
They are the speed and quality references of the benchmarks, and the C++ tests check that both
sides compute the same logits:

    ranking_models.py --check DIR [DIR...]

reads each DIR/inputs.safetensors (tensors sparse.<i>, dense, text.<i>, linear, scene, expected;
metadata kind, section, config (TOML text), shape (JSON of ModelShape), groups (JSON, split_moe))
and DIR/weights.safetensors, computes the logits in eval mode and exits 0 when the largest
absolute difference from `expected`, over max(1, |expected|), is below --tol (printed either way).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tomllib
from dataclasses import dataclass, field

import torch
from torch import nn

RANKING_MODEL_NAMES = ["lr", "fm", "deepfm", "dcnv2", "mmoe", "ple", "split_moe", "two_tower"]


@dataclass
class ModelShape:
    sparse_dims: list[int]
    dense_width: int = 0
    text_dims: list[int] = field(default_factory=list)
    targets: list[str] = field(default_factory=lambda: ["click"])
    num_scenes: int = 1
    sparse_names: list[str] = field(default_factory=list)
    sparse_sources: list[str] = field(default_factory=list)
    text_names: list[str] = field(default_factory=list)
    text_sources: list[str] = field(default_factory=list)


@dataclass
class ModelInput:
    sparse: list[torch.Tensor]
    dense: torch.Tensor | None = None
    text: list[torch.Tensor] = field(default_factory=list)
    linear: torch.Tensor | None = None
    scene: torch.Tensor | None = None


class Options:
    """A config section (a dict from tomllib) read with the C++ defaults."""

    def __init__(self, section: dict | None):
        self.section = section or {}

    def get(self, key, default):
        return self.section.get(key, default)

    def mlp(self, hidden_key, default_hidden):
        return dict(hidden=list(self.get(hidden_key, default_hidden)), norm=self.get("norm", "none"),
                    dropout=float(self.get("dropout", 0.0)))


def feature_width(shape: ModelShape) -> int:
    return sum(shape.sparse_dims) + shape.dense_width + sum(shape.text_dims)


def side_width(shape: ModelShape) -> int:
    return shape.dense_width + sum(shape.text_dims)


def _has_columns(t):
    return t is not None and t.dim() == 2 and t.size(1) > 0


def concat_features(x: ModelInput) -> torch.Tensor:
    parts = list(x.sparse) + ([x.dense] if _has_columns(x.dense) else []) + list(x.text)
    return torch.cat(parts, 1)


def concat_dense_and_text(x: ModelInput):
    parts = ([x.dense] if _has_columns(x.dense) else []) + list(x.text)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else torch.cat(parts, 1)


# ---- layers (adrec/models/layers.h) -------------------------------------------------------------


class Mlp(nn.Module):
    """Linear -> [norm] -> ReLU -> [dropout]; parameters "<i>.weight", "norm.<i>.*"."""

    def __init__(self, in_dim, hidden, norm="none", dropout=0.0):
        super().__init__()
        self.hidden, self.norm_kind, self.dropout = list(hidden), norm, dropout
        if norm != "none":
            self.norm = nn.ModuleList()
        width = in_dim
        for i, h in enumerate(self.hidden):
            self.add_module(str(i), nn.Linear(width, h))
            if norm == "batch":
                self.norm.append(nn.BatchNorm1d(h))
            elif norm == "layer":
                self.norm.append(nn.LayerNorm(h))
            width = h
        self.out_dim = width

    def forward(self, x):
        for i in range(len(self.hidden)):
            x = getattr(self, str(i))(x)
            if self.norm_kind != "none":
                x = self.norm[i](x)
            x = torch.relu(x)
            if self.dropout > 0:
                x = nn.functional.dropout(x, self.dropout, self.training)
        return x


class CrossLayer(nn.Module):
    """DCN-V2 (Wang et al. 2021): x_{l+1} = x0 * (W x_l + b) + x_l, W full ("w") or U V^T."""

    def __init__(self, dim, low_rank):
        super().__init__()
        if low_rank <= 0:
            self.w = nn.Parameter(nn.init.xavier_uniform_(torch.empty(dim, dim)))
        else:
            self.u = nn.Parameter(nn.init.xavier_uniform_(torch.empty(dim, low_rank)))
            self.v = nn.Parameter(nn.init.xavier_uniform_(torch.empty(dim, low_rank)))
        self.b = nn.Parameter(torch.zeros(dim))
        self.low_rank = low_rank

    def forward(self, x0, x):
        wx = x @ self.w.t() if self.low_rank <= 0 else (x @ self.v) @ self.u.t()
        return x0 * (wx + self.b) + x


class CrossNetV2(nn.ModuleList):
    def __init__(self, dim, layers, low_rank):
        super().__init__([CrossLayer(dim, low_rank) for _ in range(layers)])

    def forward(self, x0):
        x = x0
        for layer in self:
            x = layer(x0, x)
        return x


def fm_bi_interaction(fields: torch.Tensor) -> torch.Tensor:
    """sum_{i<j} v_i * v_j = 0.5 * ((sum_f v)^2 - sum_f v^2): [B, F, k] -> [B, k]."""
    s = fields.sum(1)
    return 0.5 * (s * s - (fields * fields).sum(1))


def fm_interaction(fields: torch.Tensor) -> torch.Tensor:
    """Rendle 2010: sum_{i<j} <v_i, v_j>; [B, F, k] -> [B, 1]."""
    return fm_bi_interaction(fields).sum(1, keepdim=True)


class Experts(nn.ModuleList):
    def __init__(self, n, in_dim, mlp):
        super().__init__([Mlp(in_dim, **mlp) for _ in range(n)])
        self.out_dim = self[0].out_dim if n else in_dim

    def forward(self, x):  # [B, N, H]
        return torch.stack([e(x) for e in self], 1)


def gate_weights(gate: nn.Linear, x):
    return torch.softmax(gate(x), -1)


def mix_experts(weights, experts):
    return (weights.unsqueeze(-1) * experts).sum(1)


class Tower(nn.Module):
    def __init__(self, in_dim, mlp):
        super().__init__()
        self.mlp = Mlp(in_dim, **mlp)
        self.out = nn.Linear(self.mlp.out_dim, 1)

    def forward(self, x):
        return self.out(self.mlp(x))


# ---- models (adrec/models/<name>.h) -------------------------------------------------------------


class LR(nn.Module):
    """linear + W [dense, text] (McMahan et al. 2013); "out" over [linear, dense, text]."""

    def __init__(self, shape: ModelShape, opts: Options):
        super().__init__()
        self.out = nn.Linear(1 + side_width(shape), len(shape.targets))
        with torch.no_grad():
            self.out.weight.zero_()
            self.out.weight[:, 0] = 1.0
            self.out.bias.zero_()

    def forward(self, x: ModelInput):
        side = concat_dense_and_text(x)
        return self.out(x.linear if side is None else torch.cat([x.linear, side], 1))


def _fm_dim(shape: ModelShape, model: str) -> int:
    if not shape.sparse_dims:
        raise ValueError(f"{model} needs at least one sparse field")
    if any(d != shape.sparse_dims[0] for d in shape.sparse_dims):
        raise ValueError(f"{model} needs equal embedding dims for all sparse fields: {shape.sparse_dims}")
    return shape.sparse_dims[0]


def _fm_fields(x: ModelInput, dense_proj):
    fields = list(x.sparse)
    if dense_proj is not None:
        fields.append(dense_proj(concat_dense_and_text(x)))
    return torch.stack(fields, 1)


class FM(nn.Module):
    """Rendle 2010: linear + pairwise interactions; dense/text projected into one extra field."""

    def __init__(self, shape: ModelShape, opts: Options):
        super().__init__()
        k = _fm_dim(shape, "fm")
        self.dense_proj = nn.Linear(side_width(shape), k) if side_width(shape) > 0 else None
        self.out = nn.Linear(1 + k, len(shape.targets))  # over [linear, bi-interaction], starts as plain FM
        with torch.no_grad():
            self.out.weight.fill_(1.0)
            self.out.bias.zero_()

    def forward(self, x: ModelInput):
        return self.out(torch.cat([x.linear, fm_bi_interaction(_fm_fields(x, self.dense_proj))], 1))


class DeepFM(nn.Module):
    """Guo et al. 2017: FM and an MLP sharing the embeddings; out over [linear, bi-interaction, mlp]."""

    def __init__(self, shape: ModelShape, opts: Options):
        super().__init__()
        k = _fm_dim(shape, "deepfm")
        self.dense_proj = nn.Linear(side_width(shape), k) if side_width(shape) > 0 else None
        self.mlp = Mlp(feature_width(shape), **opts.mlp("hidden", [128, 64]))
        self.out = nn.Linear(1 + k + self.mlp.out_dim, len(shape.targets))
        with torch.no_grad():
            self.out.weight[:, :1 + k] = 1.0

    def forward(self, x: ModelInput):
        fm = fm_bi_interaction(_fm_fields(x, self.dense_proj))
        return self.out(torch.cat([x.linear, fm, self.mlp(concat_features(x))], 1))


class DCNv2(nn.Module):
    """Wang et al. 2021: cross network and MLP, stacked or parallel, then a linear head."""

    def __init__(self, shape: ModelShape, opts: Options):
        super().__init__()
        width = feature_width(shape)
        self.structure = opts.get("structure", "stacked")
        self.cross = CrossNetV2(width, opts.get("cross_layers", 3), opts.get("low_rank", 0))
        self.mlp = Mlp(width, **opts.mlp("hidden", [128, 64]))
        head = width + self.mlp.out_dim if self.structure == "parallel" else self.mlp.out_dim
        self.out = nn.Linear(head, len(shape.targets))

    def forward(self, x: ModelInput):
        x0 = concat_features(x)
        if self.structure == "parallel":
            h = torch.cat([self.cross(x0), self.mlp(x0)], 1)
        else:
            h = self.mlp(self.cross(x0))
        return self.out(h)


class MMoE(nn.Module):
    """Ma et al. 2018: shared experts, a softmax gate per target over [features, scene embedding]."""

    def __init__(self, shape: ModelShape, opts: Options):
        super().__init__()
        width, n, scene_dim = feature_width(shape), opts.get("num_experts", 4), opts.get("scene_dim", 8)
        self.scene = nn.Embedding(max(1, shape.num_scenes), scene_dim)
        self.experts = Experts(n, width, opts.mlp("expert_hidden", [64]))
        self.gates = nn.ModuleList([nn.Linear(width + scene_dim, n) for _ in shape.targets])
        self.towers = nn.ModuleList([Tower(self.experts.out_dim, opts.mlp("tower_hidden", [32])) for _ in shape.targets])

    def gate_weights(self, x: ModelInput, feats=None):
        feats = concat_features(x) if feats is None else feats
        gate_in = torch.cat([feats, self.scene(x.scene)], 1)
        return [gate_weights(g, gate_in) for g in self.gates]

    def forward(self, x: ModelInput):
        feats = concat_features(x)
        experts = self.experts(feats)
        return torch.cat([t(mix_experts(w, experts)) for t, w in zip(self.towers, self.gate_weights(x, feats))], 1)


class PleLevel(nn.Module):
    def __init__(self, targets, in_dim, scene_dim, shared, specific, mlp, inner):
        super().__init__()
        self.shared = Experts(shared, in_dim, mlp)
        self.specific = nn.ModuleList([Experts(specific, in_dim, mlp) for _ in range(targets)])
        self.gates = nn.ModuleList([nn.Linear(in_dim + scene_dim, specific + shared) for _ in range(targets)])
        self.shared_gate = nn.Linear(in_dim + scene_dim, targets * specific + shared) if inner else None
        self.out_dim = self.shared.out_dim

    def forward(self, specific_in, shared_in, scene):
        shared = self.shared(shared_in)
        outs, gates, own_all = [], [], []
        for t, experts in enumerate(self.specific):
            own = experts(specific_in[t])
            w = gate_weights(self.gates[t], torch.cat([specific_in[t], scene], 1))
            outs.append(mix_experts(w, torch.cat([own, shared], 1)))
            gates.append(w)
            own_all.append(own)
        shared_out = None
        if self.shared_gate is not None:
            w = gate_weights(self.shared_gate, torch.cat([shared_in, scene], 1))
            shared_out = mix_experts(w, torch.cat(own_all + [shared], 1))
        return outs, shared_out, gates


class PLE(nn.Module):
    """Tang et al. 2020: progressive layered extraction (CGC levels), scene embedding in every gate."""

    def __init__(self, shape: ModelShape, opts: Options):
        super().__init__()
        levels, scene_dim = opts.get("levels", 2), opts.get("scene_dim", 8)
        targets = len(shape.targets)
        self.scene = nn.Embedding(max(1, shape.num_scenes), scene_dim)
        self.levels = nn.ModuleList()
        width = feature_width(shape)
        for level in range(levels):
            self.levels.append(PleLevel(targets, width, scene_dim, opts.get("shared_experts", 2),
                                        opts.get("specific_experts", 2), opts.mlp("expert_hidden", [64]),
                                        inner=level + 1 < levels))
            width = self.levels[-1].out_dim
        self.towers = nn.ModuleList([Tower(width, opts.mlp("tower_hidden", [32])) for _ in range(targets)])

    def run(self, x: ModelInput):
        feats = concat_features(x)
        scene = self.scene(x.scene)
        specific, shared, gates = [feats] * len(self.towers), feats, None
        for level in self.levels:
            specific, shared, gates = level(specific, shared, scene)
        return specific, gates

    def gate_weights(self, x: ModelInput):
        return self.run(x)[1]

    def forward(self, x: ModelInput):
        specific, _ = self.run(x)
        return torch.cat([t(h) for t, h in zip(self.towers, specific)], 1)


def split_moe_field_names(shape: ModelShape) -> list[str]:
    names = [shape.sparse_names[i] if i < len(shape.sparse_names) else f"sparse{i}" for i in range(len(shape.sparse_dims))]
    if shape.dense_width > 0:
        names.append("dense")
    return names + [f"text{i}" for i in range(len(shape.text_dims))]


def round_robin_groups(importance: list[float], groups: int) -> list[list[int]]:
    order = sorted(range(len(importance)), key=lambda i: -importance[i])  # stable: ties in field order
    out = [[] for _ in range(groups)]
    for i, f in enumerate(order):
        out[i % groups].append(f)
    return [sorted(g) for g in out]


class SplitMoE(nn.Module):
    """Split experts: fields partitioned into groups, one expert per group, no routing."""

    def __init__(self, shape: ModelShape, opts: Options, groups: list[list[int]] | None = None):
        super().__init__()
        names = split_moe_field_names(shape)
        widths = list(shape.sparse_dims) + ([shape.dense_width] if shape.dense_width > 0 else []) + list(shape.text_dims)
        if groups is None:
            if "groups" in opts.section:
                index = {n: i for i, n in enumerate(names)}
                groups = [sorted(index[n] for n in g) for g in opts.section["groups"]]
            else:
                n = min(opts.get("num_experts", 4), len(names))
                groups = round_robin_groups([-float(i) for i in range(len(names))], n)
        self.groups = groups
        mlp = opts.mlp("expert_hidden", [64])
        self.experts = nn.ModuleList([Mlp(sum(widths[f] for f in g), **mlp) for g in groups])
        width = sum(e.out_dim for e in self.experts)
        self.towers = nn.ModuleList([Tower(width, opts.mlp("tower_hidden", [32])) for _ in shape.targets])

    def forward(self, x: ModelInput):
        fields = list(x.sparse) + ([x.dense] if _has_columns(x.dense) else []) + list(x.text)
        h = torch.cat([e(torch.cat([fields[f] for f in g], 1)) for e, g in zip(self.experts, self.groups)], 1)
        return torch.cat([t(h) for t in self.towers], 1)


def _item_side(names, sources, item_fields, n):
    """Per field: on the item tower? By item_fields when given, else by source (two_tower.cc)."""
    if item_fields:
        return [i < len(names) and names[i] in item_fields for i in range(n)]
    return [i < len(sources) and (sources[i] == "item" or sources[i].startswith("item.")) for i in range(n)]


class TwoTower(nn.Module):
    """Yi et al. 2019: query and item MLPs to dim per target; the logit is their dot product + bias."""

    def __init__(self, shape: ModelShape, opts: Options):
        super().__init__()
        item_fields = list(opts.get("item_fields", []))
        self.sparse_item = _item_side(shape.sparse_names, shape.sparse_sources, item_fields, len(shape.sparse_dims))
        self.text_item = _item_side(shape.text_names, shape.text_sources, item_fields, len(shape.text_dims))
        item_w = sum(d for d, i in zip(shape.sparse_dims, self.sparse_item) if i) + \
            sum(d for d, i in zip(shape.text_dims, self.text_item) if i)
        query_w = feature_width(shape) - item_w
        self.dim, self.targets = opts.get("dim", 32), len(shape.targets)
        self.query = Mlp(query_w, **opts.mlp("hidden", [128, 64]))
        self.item = Mlp(item_w, **opts.mlp("hidden", [128, 64]))
        self.query_out = nn.Linear(self.query.out_dim, self.dim * self.targets)
        self.item_out = nn.Linear(self.item.out_dim, self.dim * self.targets)
        self.out = nn.Module()
        self.out.bias = nn.Parameter(torch.zeros(self.targets))

    def forward(self, x: ModelInput):
        q = [t for t, i in zip(x.sparse, self.sparse_item) if not i] + \
            [t for t, i in zip(x.text, self.text_item) if not i]
        v = [t for t, i in zip(x.sparse, self.sparse_item) if i] + [t for t, i in zip(x.text, self.text_item) if i]
        if _has_columns(x.dense):
            q.append(x.dense)
        shape = (-1, self.targets, self.dim)
        qv = self.query_out(self.query(torch.cat(q, 1))).view(shape)
        iv = self.item_out(self.item(torch.cat(v, 1))).view(shape)
        return (qv * iv).sum(-1) + self.out.bias


_MODELS = {"lr": LR, "fm": FM, "deepfm": DeepFM, "dcnv2": DCNv2, "mmoe": MMoE, "ple": PLE, "split_moe": SplitMoE,
           "two_tower": TwoTower}


def make_model(kind: str, shape: ModelShape, section: dict | None = None, **extra) -> nn.Module:
    """The twin of adrec::models::MakeRankingModel; `section` is the model's config table."""
    if kind not in _MODELS:
        raise ValueError(f"unknown ranking model '{kind}' (known: {', '.join(RANKING_MODEL_NAMES)})")
    return _MODELS[kind](shape, Options(section), **extra)


def config_section(config_text: str, section: str) -> dict:
    node = tomllib.loads(config_text)
    for part in section.split(".") if section else []:
        node = node.get(part, {})
    return node


def _check(directory: str, tol: float) -> int:
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = f"{directory}/inputs.safetensors"
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    tensors = load_file(path)
    weights = load_file(f"{directory}/weights.safetensors")
    shape = ModelShape(**json.loads(meta["shape"]))
    extra = {"groups": json.loads(meta["groups"])} if "groups" in meta else {}
    model = make_model(meta["kind"], shape, config_section(meta.get("config", ""), meta.get("section", "model")), **extra)
    model.load_state_dict(weights, strict=True)
    model.eval()
    n_sparse = sum(1 for k in tensors if k.startswith("sparse."))
    n_text = sum(1 for k in tensors if k.startswith("text."))
    x = ModelInput(sparse=[tensors[f"sparse.{i}"] for i in range(n_sparse)], dense=tensors.get("dense"),
                   text=[tensors[f"text.{i}"] for i in range(n_text)], linear=tensors.get("linear"),
                   scene=tensors.get("scene"))
    with torch.no_grad():
        logits = model(x)
    expected = tensors["expected"]
    if logits.shape != expected.shape:
        print(f"{meta['kind']}: shape {tuple(logits.shape)} != expected {tuple(expected.shape)}")
        return 1
    diff = (logits - expected).abs().max().item()
    # Relative to the logits' size: fp32 GEMMs of other shapes (adrec pads DCN-V2's to aligned
    # widths and fuses the bias) round differently, and cross layers compound it.
    scale = max(1.0, expected.abs().max().item())
    ok = math.isfinite(diff) and diff / scale < tol
    print(f"{meta['kind']} ({directory}): max_abs_diff={diff:.3g} (logits up to {scale:.3g})"
          f"{'' if ok else ' FAIL'}")
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", metavar="DIR", nargs="+", required=True,
                   help="directories written by the C++ test: compare against the logits it computed")
    p.add_argument("--tol", type=float, default=1e-5)
    args = p.parse_args()
    return max(_check(d, args.tol) for d in args.check)


if __name__ == "__main__":
    sys.exit(main())
