"""Prints `adrec stats --json` output as a short human summary (used by scripts/demo)."""
import json
import sys

s = json.load(open(sys.argv[1]))
print(f"{s['users']:,} users  {s['items']:,} items  {s['events']:,} events  "
      f"sparsity {s['sparsity']:.4f}  ground truth: {'yes' if s['has_ground_truth'] else 'no'}")
print("events per action: " + ", ".join(f"{k} {v:,}" for k, v in s["events_per_action"].items()))
if s.get("ctr_per_scene"):
    print("CTR per scene:     " + ", ".join(f"{k} {v:.2%}" for k, v in s["ctr_per_scene"].items()))
q = s["sequence_length"]
print(f"events per user:   p50 {q['p50']}  p90 {q['p90']}  p99 {q['p99']}  max {q['max']}")
if "time_range" in s:
    t = s["time_range"]
    print(f"time range:        {t['min_utc']} .. {t['max_utc']} ({t['days']:.1f} days)")
print(f"items with text:   {s['items_with_text']:,}   taxonomy nodes: {s['taxonomy_nodes']}")
