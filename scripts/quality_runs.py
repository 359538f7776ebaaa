"""What the quality scripts share: one `adrec train` run and the mean ± sd of a figure over seeds."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def train(a: argparse.Namespace, out: str, seed: int, extra: list[str]) -> dict:
    cmd = [a.adrec, "train", "--data", a.data, "--config", a.config, "--out", out, "--overwrite", "--seed", str(seed),
           "--threads", str(a.threads), "--json", "-q"] + extra
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    start = time.time()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stdout[-4000:] + p.stderr[-4000:])
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}")
    j = json.loads([ln for ln in p.stdout.splitlines() if ln.startswith("{")][-1])
    j["wall_seconds"] = time.time() - start
    return j


def mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    m = statistics.fmean(values)
    return f"{m:.4f} ± {statistics.stdev(values):.4f}" if len(values) > 1 else f"{m:.4f}"
