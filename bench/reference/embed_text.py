"""sentence-transformers side of scripts/bench-text: SentenceTransformer(MODEL_DIR).encode over
the texts of a file (batch 64, the model's pooling and normalisation), best and median pass.

    embed_text.py --model DIR --texts FILE [--device cpu] [--threads 2] [--batch 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local directory only; never the network


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--texts", required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--bf16", type=int, default=0)
    a = p.parse_args()
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(a.threads)
    texts = open(a.texts, encoding="utf-8").read().split("\n")
    if texts and texts[-1] == "":
        texts.pop()
    model = SentenceTransformer(a.model, device=a.device)
    # f32 unless --bf16, whatever dtype the checkpoint was stored in (adrec computes likewise).
    model = model.to(torch.bfloat16) if a.bf16 else model.float()
    model.encode(texts[:64], batch_size=a.batch)
    rates = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        model.encode(texts, batch_size=a.batch, convert_to_numpy=True)
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()
        rates.append(len(texts) / (time.perf_counter() - t0))
    rates.sort()
    print(json.dumps({"side": "sentence-transformers", "texts": len(texts), "sentences_per_s_best": rates[-1],
                      "sentences_per_s_median": rates[len(rates) // 2],
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
