"""Plain-PyTorch twins of adrec's sequence models (adrec/models/sasrec.h, hstu.h, bsarec.h,
wearec.h).

Same parameter names and the same math as the C++ models, so that weights saved by one load in
the other; adrec's tests (adrec/models/sequence_model_test.cc) compare hidden states on the same
weights and inputs, and the benchmarks train these as the PyTorch reference.

    seq_models.py --check DIR [DIR...]

reads each DIR/inputs.safetensors (tensors items, timestamps, expected; metadata kind, shape
(JSON: num_items, max_len) and options (JSON of the [model] keys)) and DIR/weights.safetensors,
encodes in eval mode and exits 0 when the largest absolute difference from `expected`, over
max(1, |expected|), is below --tol (printed either way).
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import torch
import torch.nn.functional as F
from torch import nn

SEQUENCE_MODEL_NAMES = ["sasrec", "hstu", "bsarec", "wearec"]


def init_sequence_embeddings(item_emb: nn.Embedding, pos_emb: nn.Embedding):
    """adrec::models::InitSequenceEmbeddings: items N(0, 0.02), positions N(0, 1/dim), cut at 2 std."""
    with torch.no_grad():
        item_emb.weight.normal_(0, 0.02).clamp_(-0.04, 0.04)
        item_emb.weight[0].zero_()
        std = math.sqrt(1.0 / item_emb.weight.shape[1])
        pos_emb.weight.normal_(0, std).clamp_(-2 * std, 2 * std)


class SasRecBlock(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.dim, self.heads, self.dropout = dim, heads, dropout
        self.attn_norm = nn.LayerNorm(dim, eps=1e-8)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.attn_out = nn.Linear(dim, dim)
        self.ffn_norm = nn.LayerNorm(dim, eps=1e-8)
        self.ffn1 = nn.Linear(dim, dim)
        self.ffn2 = nn.Linear(dim, dim)

    def forward(self, x, keep):
        b, n, d = x.shape
        q_in = self.attn_norm(x)
        wq, wk, wv = self.qkv.weight.split(d)
        bq, bk, bv = self.qkv.bias.split(d)

        def heads(t):
            return t.view(b, n, self.heads, d // self.heads).transpose(1, 2)

        # Queries from the normalised input, keys and values from the input (the authors' code).
        q, k, v = heads(F.linear(q_in, wq, bq)), heads(F.linear(x, wk, bk)), heads(F.linear(x, wv, bv))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)
        causal = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
        att = F.dropout(scores.masked_fill(~causal, float("-inf")).softmax(-1), self.dropout, self.training)
        h = q_in + self.attn_out((att @ v).transpose(1, 2).reshape(b, n, d))
        h = self.ffn_norm(h)
        h = F.dropout(self.ffn2(F.dropout(F.relu(self.ffn1(h)), self.dropout, self.training)), self.dropout,
                      self.training) + h
        return h * keep


class SasRec(nn.Module):
    def __init__(self, num_items: int, max_len: int, dim: int = 50, blocks: int = 2, heads: int = 1,
                 dropout: float = 0.2, **_):
        super().__init__()
        self.dim, self.dropout = dim, dropout
        self.item_emb = nn.Embedding(num_items + 1, dim, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len, dim)
        init_sequence_embeddings(self.item_emb, self.pos_emb)
        self.blocks = nn.ModuleList([SasRecBlock(dim, heads, dropout) for _ in range(blocks)])
        self.final_norm = nn.LayerNorm(dim, eps=1e-8)

    def forward(self, items, timestamps=None):
        keep = (items != 0).unsqueeze(-1).to(self.item_emb.weight.dtype)
        pos = torch.arange(items.shape[1], device=items.device)
        x = self.item_emb(items) * math.sqrt(self.dim) + self.pos_emb(pos)
        x = F.dropout(x, self.dropout, self.training) * keep
        for block in self.blocks:
            x = block(x, keep)
        return self.final_norm(x)


def hstu_time_buckets(timestamps, time_buckets: int):
    t = timestamps.double()
    gap = (t.unsqueeze(2) - t.unsqueeze(1)).abs().clamp_min(1.0)
    return (gap.log() / 0.301).floor().long().clamp(0, time_buckets)


class HstuBlock(nn.Module):
    def __init__(self, dim: int, max_len: int, heads: int, dqk: int, dv: int, time_buckets: int, dropout: float):
        super().__init__()
        self.max_len, self.heads, self.dqk, self.dv, self.dropout = max_len, heads, dqk, dv, dropout
        self.uvqk = nn.Parameter(nn.init.xavier_uniform_(torch.empty(dim, heads * (2 * dv + 2 * dqk))))
        self.out = nn.Linear(heads * dv, dim)
        self.pos_w = nn.Parameter(torch.empty(2 * max_len - 1).normal_(0, 0.02))
        self.ts_w = nn.Parameter(torch.empty(time_buckets + 1).normal_(0, 0.02))

    def forward(self, x, buckets, mask):
        b, n, _ = x.shape
        h, dv, dqk = self.heads, self.dv, self.dqk
        u, v, q, k = F.silu(F.layer_norm(x, (x.shape[-1],), eps=1e-6) @ self.uvqk).split([h * dv, h * dv, h * dqk, h * dqk], -1)
        v = v.reshape(b, n, h, dv).transpose(1, 2)
        q = q.reshape(b, n, h, dqk).transpose(1, 2)
        k = k.reshape(b, n, h, dqk).transpose(1, 2)
        rel = torch.arange(n, device=x.device)[None, :] - torch.arange(n, device=x.device)[:, None]
        # index_select as in the HSTU reference: ts_w[buckets] would back-propagate through a
        # sort-based index_put (12x slower training on CUDA).
        rab = (self.pos_w.index_select(0, (rel + self.max_len - 1).reshape(-1)).view(1, n, n) +
               self.ts_w.index_select(0, buckets.reshape(-1)).view(b, n, n))
        a = F.silu(q @ k.transpose(-1, -2) + rab[:, None]) * (mask / self.max_len)
        av = (a @ v).transpose(1, 2).reshape(b, n, h * dv)
        o = F.layer_norm(av, (av.shape[-1],), eps=1e-6) * u
        return self.out(F.dropout(o, self.dropout, self.training)) + x


class Hstu(nn.Module):
    def __init__(self, num_items: int, max_len: int, dim: int = 50, blocks: int = 2, heads: int = 1,
                 dropout: float = 0.2, attention_dim: int = 0, linear_dim: int = 0, time_buckets: int = 128, **_):
        super().__init__()
        self.dim, self.dropout, self.time_buckets = dim, dropout, time_buckets
        dqk = attention_dim or dim // heads
        dv = linear_dim or dim // heads
        self.item_emb = nn.Embedding(num_items + 1, dim, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len, dim)
        init_sequence_embeddings(self.item_emb, self.pos_emb)
        self.blocks = nn.ModuleList([HstuBlock(dim, max_len, heads, dqk, dv, time_buckets, dropout)
                                     for _ in range(blocks)])

    def forward(self, items, timestamps):
        n = items.shape[1]
        keep = (items != 0).unsqueeze(-1).to(self.item_emb.weight.dtype)
        x = self.item_emb(items) * math.sqrt(self.dim) + self.pos_emb(torch.arange(n, device=items.device))
        x = F.dropout(x, self.dropout, self.training) * keep
        buckets = hstu_time_buckets(timestamps, self.time_buckets)
        mask = torch.ones(n, n, device=items.device).tril()
        for block in self.blocks:
            x = block(x, buckets, mask) * keep
        return x


class BsaRecBlock(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float, attention_dropout: float, alpha: float, cutoff: int):
        super().__init__()
        self.dim, self.heads, self.dropout, self.attention_dropout = dim, heads, dropout, attention_dropout
        self.alpha, self.keep = alpha, cutoff // 2 + 1
        self.beta = nn.Parameter(torch.randn(dim))
        self.filter_norm = nn.LayerNorm(dim, eps=1e-12)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.attn_out = nn.Linear(dim, dim)
        self.attn_norm = nn.LayerNorm(dim, eps=1e-12)
        self.ffn1 = nn.Linear(dim, 4 * dim)
        self.ffn2 = nn.Linear(4 * dim, dim)
        self.ffn_norm = nn.LayerNorm(dim, eps=1e-12)

    def forward(self, x, mask):
        b, w, d = x.shape
        # The filter by its definition (adrec applies it as one [w, w] matrix).
        spectrum = torch.fft.rfft(x, dim=1, norm="ortho")
        spectrum[:, self.keep:, :] = 0
        low = torch.fft.irfft(spectrum, n=w, dim=1, norm="ortho")
        dsp = self.filter_norm(x + F.dropout(low + self.beta ** 2 * (x - low), self.dropout, self.training))
        q, k, v = (t.view(b, w, self.heads, d // self.heads).transpose(1, 2) for t in self.qkv(x).chunk(3, -1))
        att = (q @ k.transpose(-1, -2) / math.sqrt(d // self.heads) + mask).softmax(-1)
        att = F.dropout(att, self.attention_dropout, self.training)
        gsp = self.attn_norm(x + F.dropout(self.attn_out((att @ v).transpose(1, 2).reshape(b, w, d)), self.dropout,
                                           self.training))
        h = self.alpha * dsp + (1 - self.alpha) * gsp
        return self.ffn_norm(h + F.dropout(self.ffn2(F.gelu(self.ffn1(h))), self.dropout, self.training))


class BsaRec(nn.Module):
    """Takes right-padded rows like the others, runs them left-aligned in a window of max_len and
    returns the states at the input's positions (only the last real one is a prediction)."""

    def __init__(self, num_items: int, max_len: int, dim: int = 64, blocks: int = 2, heads: int = 1,
                 dropout: float = 0.5, attention_dropout: float | None = None, alpha: float = 0.7, cutoff: int = 5,
                 **_):
        super().__init__()
        self.max_len, self.dropout = max_len, dropout
        self.item_emb = nn.Embedding(num_items + 1, dim, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len, dim)
        with torch.no_grad():
            for table in (self.item_emb, self.pos_emb):
                table.weight.normal_(0, 0.02)
            self.item_emb.weight[0].zero_()
        self.emb_norm = nn.LayerNorm(dim, eps=1e-12)
        attention_dropout = dropout if attention_dropout is None else attention_dropout
        self.blocks = nn.ModuleList([BsaRecBlock(dim, heads, dropout, attention_dropout, alpha, cutoff)
                                     for _ in range(blocks)])
        for module in self.modules():
            if isinstance(module, nn.Linear):
                with torch.no_grad():
                    module.weight.normal_(0, 0.02)
                    module.bias.zero_()

    def block_forward(self, x, window):
        w = window.shape[1]
        allowed = torch.ones(w, w, dtype=torch.bool, device=window.device).tril()[None] & (window != 0)[:, None, :]
        mask = (~allowed).to(x.dtype)[:, None] * -10000.0
        for block in self.blocks:
            x = block(x, mask)
        return x

    def forward(self, items, timestamps=None):
        b, n = items.shape
        w = self.max_len
        lengths = (items != 0).sum(1).tolist()
        window = torch.zeros(b, w, dtype=items.dtype, device=items.device)
        for r, m in enumerate(lengths):
            if m:
                window[r, w - m:] = items[r, :m]
        x = self.emb_norm(self.item_emb(window) + self.pos_emb(torch.arange(w, device=items.device)))
        x = F.dropout(x, self.dropout, self.training)
        x = self.block_forward(x, window)
        out = torch.zeros(b, n, x.shape[-1], dtype=x.dtype, device=x.device)
        for r, m in enumerate(lengths):
            if m:
                out[r, :m] = x[r, w - m:]
        return out


class WeaRecBlock(nn.Module):
    def __init__(self, dim: int, window: int, heads: int, dropout: float, alpha: float):
        super().__init__()
        self.dim, self.heads, self.window, self.dropout, self.alpha = dim, heads, window, dropout, alpha
        bins = window // 2 + 1
        self.base_filter = nn.Parameter(torch.ones(heads, bins, 1))
        self.base_bias = nn.Parameter(torch.full((heads, bins, 1), -0.1))
        self.detail_weight = nn.Parameter(torch.randn(heads, window // 2, dim // heads) * 0.02)
        self.adapt1 = nn.Linear(dim, dim)
        self.adapt2 = nn.Linear(dim, heads * bins * 2)
        self.filter_norm = nn.LayerNorm(dim, eps=1e-12)
        self.ffn1 = nn.Linear(dim, 4 * dim)
        self.ffn2 = nn.Linear(4 * dim, dim)
        self.ffn_norm = nn.LayerNorm(dim, eps=1e-12)

    def forward(self, x):
        b, w, d = x.shape
        h = self.heads
        g = x.view(b, w, h, d // h).permute(0, 2, 1, 3)  # [b, heads, w, d / heads]
        # Global: the adapted filter on the spectrum.
        spectrum = torch.fft.rfft(g, dim=2, norm="ortho")
        adapt = self.adapt2(F.gelu(self.adapt1(x.mean(1)))).view(b, h, -1, 2)
        spectrum = spectrum * (self.base_filter * (1 + adapt[..., 0:1])) + (self.base_bias + adapt[..., 1:2])
        glob = torch.fft.irfft(spectrum, n=w, dim=2, norm="ortho")
        # Local: one Haar level, slot by slot.
        local = torch.zeros_like(g)
        for k in range(w // 2):
            even, odd = g[:, :, 2 * k], g[:, :, 2 * k + 1]
            approx, detail = (even + odd) / 2, (even - odd) / 2 * self.detail_weight[:, k]
            local[:, :, 2 * k], local[:, :, 2 * k + 1] = approx + detail, approx - detail
        mixed = ((1 - self.alpha) * local + self.alpha * glob).permute(0, 2, 1, 3).reshape(b, w, d)
        y = self.filter_norm(x + F.dropout(mixed, self.dropout, self.training))
        return self.ffn_norm(y + F.dropout(self.ffn2(F.gelu(self.ffn1(y))), self.dropout, self.training))


class WeaRec(BsaRec):
    """BSARec's embedding front and window with WEARec's blocks."""

    def __init__(self, num_items: int, max_len: int, dim: int = 64, blocks: int = 2, heads: int = 2,
                 dropout: float = 0.5, alpha: float = 0.3, **_):
        super().__init__(num_items, max_len, dim=dim, blocks=0, heads=1, dropout=dropout)
        self.blocks = nn.ModuleList([WeaRecBlock(dim, max_len, heads, dropout, alpha) for _ in range(blocks)])
        for module in self.blocks.modules():
            if isinstance(module, nn.Linear):
                with torch.no_grad():
                    module.weight.normal_(0, 0.02)
                    module.bias.zero_()

    def block_forward(self, x, window):
        for block in self.blocks:
            x = block(x)
        return x


def make_sequence_model(kind: str, num_items: int, max_len: int, options: dict) -> nn.Module:
    """The twin of adrec::models::MakeSequenceModel; `options` holds the [model] keys."""
    opts = {k: v for k, v in options.items() if k != "name"}
    if kind == "sasrec":
        return SasRec(num_items, max_len, **opts)
    if kind == "hstu":
        return Hstu(num_items, max_len, **opts)
    if kind == "bsarec":
        return BsaRec(num_items, max_len, **opts)
    if kind == "wearec":
        return WeaRec(num_items, max_len, **opts)
    raise ValueError(f"unknown sequence model '{kind}' (known: {', '.join(SEQUENCE_MODEL_NAMES)})")


def _check(directory: str, tol: float) -> int:
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = f"{directory}/inputs.safetensors"
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    tensors = load_file(path)
    shape = json.loads(meta["shape"])
    model = make_sequence_model(meta["kind"], shape["num_items"], shape["max_len"], json.loads(meta["options"]))
    model.load_state_dict(load_file(f"{directory}/weights.safetensors"), strict=True)
    model.eval()
    with torch.no_grad():
        hidden = model(tensors["items"], tensors["timestamps"])
    expected = tensors["expected"]
    if hidden.shape != expected.shape:
        print(f"{meta['kind']}: shape {tuple(hidden.shape)} != expected {tuple(expected.shape)}")
        return 1
    real = tensors["items"] != 0
    if isinstance(model, BsaRec):  # the window twins (WeaRec is one): not causal
        # Read at the last real position only: adrec runs their last block at that slot alone.
        last = real.sum(1, keepdim=True) - 1
        real = torch.zeros_like(real).scatter(1, last, True)
    keep = real.unsqueeze(-1)  # padded positions are defined but meaningless
    diff = ((hidden - expected).abs() * keep).max().item()
    scale = max(1.0, expected.abs().max().item())
    ok = math.isfinite(diff) and diff / scale < tol
    print(f"{meta['kind']} ({directory}): max_abs_diff={diff:.3g} (values up to {scale:.3g}){'' if ok else ' FAIL'}")
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", nargs="+", required=True, metavar="DIR")
    p.add_argument("--tol", type=float, default=1e-5)
    args = p.parse_args()
    return max(_check(d, args.tol) for d in args.check)


if __name__ == "__main__":
    sys.exit(main())
