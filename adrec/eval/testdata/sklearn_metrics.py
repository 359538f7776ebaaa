#!/usr/bin/env python3
"""Reference values for adrec/eval/sklearn_reference_test.cc, computed with scikit-learn.

Usage: sklearn_metrics.py IN.json OUT.json
IN:  {"auc": [{"y": [...], "s": [...], "w": [...] | null}],
      "logloss": [{"y": [...], "p": [...], "w": [...] | null}],
      "ndcg": [{"scores": [...], "target": int, "k": int}]}
OUT: {"auc": [float], "logloss": [float], "ndcg": [float], "sklearn": version}
Log loss clips predictions to [1e-7, 1 - 1e-7] first, as adrec does (sklearn's own default
clips at float64 machine epsilon).
"""
import json
import sys

import numpy as np
import sklearn
from sklearn.metrics import log_loss, ndcg_score, roc_auc_score

EPS = 1e-7


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    out = {"sklearn": sklearn.__version__, "auc": [], "logloss": [], "ndcg": []}
    for c in cases.get("auc", []):
        w = None if c.get("w") is None else np.asarray(c["w"], dtype=np.float64)
        out["auc"].append(float(roc_auc_score(np.asarray(c["y"]), np.asarray(c["s"], dtype=np.float64), sample_weight=w)))
    for c in cases.get("logloss", []):
        w = None if c.get("w") is None else np.asarray(c["w"], dtype=np.float64)
        p = np.clip(np.asarray(c["p"], dtype=np.float64), EPS, 1 - EPS)
        out["logloss"].append(float(log_loss(np.asarray(c["y"]), p, sample_weight=w, labels=[0, 1])))
    for c in cases.get("ndcg", []):
        scores = np.asarray(c["scores"], dtype=np.float64)
        rel = np.zeros_like(scores)
        rel[c["target"]] = 1.0
        # ignore_ties=False: tied scores share their DCG (sklearn's tie-averaged DCG).
        out["ndcg"].append(float(ndcg_score(rel[None, :], scores[None, :], k=c["k"], ignore_ties=False)))
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
