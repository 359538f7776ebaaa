"""Prints the click AUC of ranking models next to pop-CTR and the Bayes-optimal ceiling.

Usage: show_ranking.py CTR_POP_JSON TRAIN_JSON...  (outputs of eval-baseline and adrec train --json)
"""
import json
import os
import sys


def fmt(v):
    return "%.4f" % v if isinstance(v, (int, float)) else "  -   "


def main():
    pop = json.load(open(sys.argv[1]))["ctr"]
    rows = [("pop-CTR", pop.get("auc"), pop.get("logloss"), None, None, None, None)]
    bayes = pop.get("bayes_auc")
    for path in sys.argv[2:]:
        r = json.load(open(path))
        t = r["test"]
        tg = t.get("targets", {})
        # The bundle directory names the variant (bundle-dcnv2_text: DCN-V2 with text features).
        name = os.path.basename(os.path.normpath(r.get("bundle", ""))).removeprefix("bundle-") or r["model"]
        rows.append((name, t.get("auc"), t.get("logloss"), tg.get("download", {}).get("auc"),
                     tg.get("conversion", {}).get("auc"), t.get("items", {}).get("cold", {}).get("auc"),
                     r.get("samples_per_s", r.get("windows_per_s"))))
        bayes = t.get("bayes_auc", bayes)
    print("%-14s %10s %10s %13s %15s %13s %12s" % ("model", "click AUC", "log loss", "download AUC", "conversion AUC",
                                                  "cold-ad AUC", "samples/s"))
    for name, auc, ll, dl, conv, cold, sps in rows:
        print("%-14s %10s %10s %13s %15s %13s %12s" % (name, fmt(auc), fmt(ll), fmt(dl), fmt(conv), fmt(cold),
                                                       "%.0f" % sps if sps else "-"))
    print("(cold ads: fewer than 5 train impressions)")
    if bayes:
        print("%-14s %10s   (the generator's true click probabilities on the same impressions)" % ("Bayes", fmt(bayes)))


if __name__ == "__main__":
    main()
