"""Prints `adrec eval-baseline --json` and `adrec eval --protocol loo --json` results as one table
(used by scripts/demo)."""
import json
import sys

rows = [json.load(open(p)) for p in sys.argv[1:]]
keys = ["hr@5", "hr@10", "hr@20", "ndcg@10", "ndcg@20", "mrr", "coverage@10"]
print(f"{'method':<12}" + "".join(f"{k:>12}" for k in keys) + f"{'users':>9}")
for r in rows:
    print(f"{r.get('method', r.get('model', '?')):<12}" + "".join(f"{r.get(k, float('nan')):>12.4f}" for k in keys)
          + f"{r['users_evaluated']:>9}")
if rows:
    print(f"protocol: {rows[0]['protocol']}")
