#!/usr/bin/env python3
"""Self time per op from a Chrome trace of the torch profiler (train_ranking_bench --trace, or
torch.profiler's export_chrome_trace): where a training step's time goes, per step.

    trace_summary.py TRACE.json [--steps N] [--top 25]

Self time is an event's duration less that of the events nested in it on the same thread, so
each millisecond is counted once (an autograd node's GEMMs count as aten::mm, not as the node).
"""

from __future__ import annotations

import argparse
import collections
import json


def self_times(events: list[dict]) -> tuple[dict[str, float], dict[str, int]]:
    by_thread: dict[tuple, list[dict]] = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and e.get("cat") in ("cpu_op", "user_annotation", "python_function", None):
            by_thread[(e.get("pid"), e.get("tid"))].append(e)
    total: dict[str, float] = collections.defaultdict(float)
    calls: dict[str, int] = collections.defaultdict(int)
    for evs in by_thread.values():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack: list[list] = []  # [end, name, child time]
        def close(upto: float) -> None:
            while stack and stack[-1][0] <= upto:
                end, name, child, dur = stack.pop()
                total[name] += dur - child
                if stack:
                    stack[-1][2] += dur
        for e in evs:
            close(e["ts"])
            calls[e["name"]] += 1
            stack.append([e["ts"] + e["dur"], e["name"], 0.0, e["dur"]])
        close(float("inf"))
    return total, calls


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("trace")
    p.add_argument("--steps", type=int, default=1, help="steps in the trace (figures are per step)")
    p.add_argument("--top", type=int, default=25)
    a = p.parse_args()
    with open(a.trace) as f:
        doc = json.load(f)
    events = doc["traceEvents"] if isinstance(doc, dict) else doc
    total, calls = self_times(events)
    grand = sum(total.values())
    print(f"{'op':60s} {'ms/step':>8s} {'calls/step':>10s} {'share':>6s}")
    for name, us in sorted(total.items(), key=lambda kv: -kv[1])[: a.top]:
        print(f"{name[:60]:60s} {us / 1e3 / a.steps:8.2f} {calls[name] / a.steps:10.1f} {100 * us / grand:5.1f}%")
    print(f"{'all ops':60s} {grand / 1e3 / a.steps:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
