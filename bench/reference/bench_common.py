"""What the speed scripts (scripts/bench-ranking, scripts/bench-sequence) share: running a side
that prints one JSON line, keeping the median of repeated runs, and describing the machine."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time


def log(msg: str):
    print(msg, file=sys.stderr, flush=True)


def run_json(cmd: list[str]) -> dict:
    log("$ " + " ".join(cmd))
    t0 = time.time()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}")
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        sys.stderr.write(p.stdout + p.stderr)
        raise SystemExit(f"no JSON from: {' '.join(cmd)}")
    out = json.loads(lines[-1])
    out["wall_s"] = round(time.time() - t0, 1)
    return out


def median_run(runs: list[dict], key) -> dict:
    runs = sorted(runs, key=key)
    return runs[(len(runs) - 1) // 2]


def machine() -> dict:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"host_cpus": os.cpu_count(), "cpu": cpu, "platform": platform.platform(),
            "date": time.strftime("%Y-%m-%d")}
