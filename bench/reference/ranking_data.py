"""Criteo-shaped synthetic click data for the ranking speed benchmarks (scripts/bench-ranking).

Written once with numpy (fixed seed) and read by both sides of each benchmark: the C++ benches
(bench/train_ranking_bench.cc, bench/rank_latency_bench.cc) and the PyTorch eager references
(train_ranking.py, rank_latency.py), so both train on the same samples.

Layout of DIR (raw little-endian arrays, row-major, no header):

    dense.f32    float32 [N, 13]   dense features, already normalised (log1p of log-normal counts)
    ids.i64      int64   [N, 26]   raw categorical IDs, one column per field C1..C26
    labels.f32   float32 [N]       0/1 click labels
    meta.json    {"samples": N, "dense": 13, "fields": 26, "seed": S, "ctr": ..., "cardinalities": [...]}

Raw IDs: field f draws a rank r in [1, V_f] from a Zipf-like (log-uniform, exponent 1) law, with
V_f the Criteo Kaggle cardinality of that field (3 .. 10.1M), and stores
(r * K_f + f) mod 2^62 for an odd per-field constant K_f: a scrambled, large ID space, so that
neither side's hashing (adrec: XXH3 mod rows; the reference: ID mod rows) maps the hot IDs onto
neighbouring rows. Labels come from a hidden logistic model (a weight per dense column and a
pseudo-random effect per (field, rank)), so the loss of a model that learns decreases.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

DENSE = 13
FIELDS = 26
# Criteo Kaggle (Display Advertising Challenge) cardinalities of C1..C26, as listed by DLRM.
CARDINALITIES = [1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194, 27,
                 14992, 5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572]
ID_MASK = (1 << 62) - 1


def generate(out: str, samples: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    counts = rng.lognormal(mean=1.0, sigma=1.5, size=(samples, DENSE))
    counts[rng.random((samples, DENSE)) < 0.2] = 0.0  # Criteo's dense columns are often missing/zero
    dense = np.log1p(counts).astype(np.float32)
    logit = (dense - dense.mean(0)) @ rng.normal(0, 0.4, DENSE)
    ids = np.empty((samples, FIELDS), dtype=np.int64)
    effect_table = rng.normal(0, 1.0, 1 << 16)
    for f, v in enumerate(CARDINALITIES):
        rank = np.minimum(np.floor(np.exp(rng.random(samples) * np.log(v + 1.0))), v).astype(np.uint64)  # 1..v
        k = np.uint64(rng.integers(1 << 40, 1 << 61) | 1)
        with np.errstate(over="ignore"):
            ids[:, f] = ((rank * k + np.uint64(f)) & np.uint64(ID_MASK)).astype(np.int64)
            # A fixed pseudo-random effect of (field, rank); fields differ in strength.
            h = (rank * np.uint64(0x9E3779B97F4A7C15) + np.uint64(f * 7919)) >> np.uint64(48)
        logit += effect_table[h.astype(np.int64)] * (0.6 if f % 3 == 0 else 0.25)
    logit += -1.6 - logit.mean()
    labels = (rng.random(samples) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float32)
    dense.tofile(os.path.join(out, "dense.f32"))
    ids.tofile(os.path.join(out, "ids.i64"))
    labels.tofile(os.path.join(out, "labels.f32"))
    meta = {"samples": samples, "dense": DENSE, "fields": FIELDS, "seed": seed, "ctr": float(labels.mean()),
            "cardinalities": CARDINALITIES}
    with open(os.path.join(out, "meta.json"), "w") as fh:
        json.dump(meta, fh)
    return meta


def load(directory: str):
    """(dense [N,13] f32, ids [N,26] i64, labels [N] f32) as numpy arrays."""
    with open(os.path.join(directory, "meta.json")) as fh:
        meta = json.load(fh)
    n, d, f = meta["samples"], meta["dense"], meta["fields"]
    dense = np.fromfile(os.path.join(directory, "dense.f32"), dtype="<f4").reshape(n, d)
    ids = np.fromfile(os.path.join(directory, "ids.i64"), dtype="<i8").reshape(n, f)
    labels = np.fromfile(os.path.join(directory, "labels.f32"), dtype="<f4")
    assert labels.shape[0] == n, "labels.f32 has the wrong size"
    return dense, ids, labels


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--samples", type=int, default=64 * 4096)
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()
    meta = generate(a.out, a.samples, a.seed)
    print(json.dumps({k: meta[k] for k in ("samples", "dense", "fields", "seed", "ctr")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
