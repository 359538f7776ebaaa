"""Hugging Face references for adrec's causal decoder (adrec/text/llama.h).

adrec's tests (adrec/text/llama_test.cc) run this script with the project venv's Python and
compare the C++ decoder against transformers on the same weights and token IDs. Everything is
local: the Hub is never contacted (HF_HUB_OFFLINE=1 is set before transformers is imported, and
models load from directories only).

    decoder_models.py tiny OUT_DIR [--arch llama|qwen2] [--tie] [--seed N] [--new-tokens 12]
                          [--hidden 64] [--layers 2] [--heads 4] [--kv-heads 2]
                          [--intermediate 128] [--vocab 128] [--max-positions 128]
                          [--rope-theta 10000] [--head-dim 0]
        A small random LlamaForCausalLM / Qwen2ForCausalLM saved with save_pretrained
        (OUT_DIR/model: config.json + model.safetensors). Every parameter, norms and biases
        included, is random, so a C++ mistake in any of them shows in the logits. Then, on the
        model reloaded from disk (float32, eager attention), writes OUT_DIR/reference.safetensors:
        input_ids and attention_mask [2, 10] (the second row right-padded by 3), logits
        [2, 10, vocab] (float32), prompt [6] and generated (model.generate(do_sample=False,
        max_new_tokens=N): the new token IDs only).

    decoder_models.py generate MODEL_DIR PROMPT [--new-tokens 24]
        A model directory as a user has it (config.json, model.safetensors, tokenizer.json, e.g.
        one `adrec creatives --train-decoder` wrote): the prompt through its tokenizer.json
        (the `tokenizers` library, <s> first), model.generate(do_sample=False); prints one JSON
        line {"prompt_ids": [...], "generated": [...], "text": "..."}.

    decoder_models.py speed MODEL_DIR [--prompt-len 16] [--new-tokens 64] [--threads 2]
                            [--repeats 3] [--device cpu|cuda] [--bf16 0|1] [--json]
        Tokens/s of greedy model.generate (float32 unless --bf16, sdpa attention, KV cache): the
        reference of bench/generate_bench (scripts/bench-decode). The prompt is IDs 1..prompt-len; eos is disabled so every
        run generates exactly --new-tokens.
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

ARCHS = {"llama": ("LlamaConfig", "LlamaForCausalLM"), "qwen2": ("Qwen2Config", "Qwen2ForCausalLM")}


def load_decoder(model_dir: str, attn: str = "eager"):
    from transformers import AutoModelForCausalLM

    # float32 whatever the stored dtype; eager attention: the plain softmax(QK^T)V reference.
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation=attn,
                                                 local_files_only=True)
    return model.eval()


def cmd_tiny(args) -> int:
    from safetensors.torch import save_file

    config_name, model_name = ARCHS[args.arch]
    torch.manual_seed(args.seed)
    extra = {}
    if args.arch == "llama":
        extra["attention_bias"] = False
    if args.head_dim:  # not hidden / heads: q_proj and o_proj are not square
        extra["head_dim"] = args.head_dim
    config = getattr(transformers, config_name)(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        max_position_embeddings=args.max_positions,
        rms_norm_eps=1e-6,
        rope_theta=args.rope_theta,
        tie_word_embeddings=args.tie,
        architectures=[model_name],
        **extra,
    )
    model = getattr(transformers, model_name)(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:  # scaled so activations stay O(1) through the layers
                p.copy_(torch.randn_like(p) / max(1.0, p.shape[-1] ** 0.5))
    model_dir = os.path.join(args.out_dir, "model")
    model.save_pretrained(model_dir, safe_serialization=True)

    # Reloaded from disk, so the reference sees exactly the stored weights.
    model = load_decoder(model_dir)
    g = torch.Generator().manual_seed(args.seed + 1)
    ids = torch.randint(0, args.vocab, (2, 10), generator=g)
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[1, 7:] = 0
    ids[1, 7:] = 0
    prompt = torch.randint(0, args.vocab, (6,), generator=g)
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=mask).logits
        out = model.generate(prompt.unsqueeze(0), attention_mask=torch.ones(1, 6, dtype=torch.long),
                             do_sample=False, max_new_tokens=args.new_tokens)
    generated = out[0, prompt.numel():]
    save_file({
        "input_ids": ids.contiguous(),
        "attention_mask": mask.contiguous(),
        "logits": logits.float().contiguous(),
        "prompt": prompt.contiguous(),
        "generated": generated.contiguous(),
    }, os.path.join(args.out_dir, "reference.safetensors"))
    print(f"saved {model_name} (tie={args.tie}) to {model_dir}; generated {generated.tolist()}")
    return 0


def cmd_speed(args) -> int:
    import json
    import resource

    torch.set_num_threads(args.threads)
    model = load_decoder(args.model_dir, attn="sdpa").to(args.device)
    if args.bf16:
        model = model.to(torch.bfloat16)
    prompt = (torch.arange(1, args.prompt_len + 1).unsqueeze(0) % model.config.vocab_size).to(args.device)
    mask = torch.ones_like(prompt)

    def run():
        t = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(prompt, attention_mask=mask, do_sample=False, max_new_tokens=args.new_tokens,
                                 min_new_tokens=args.new_tokens, eos_token_id=None, pad_token_id=0)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return out, time.perf_counter() - t

    run()  # warm-up
    rates = []
    for _ in range(args.repeats):
        out, seconds = run()
        rates.append((out.shape[1] - args.prompt_len) / seconds)
    rates.sort()
    if args.json:
        print(json.dumps({"side": "transformers", "new_tokens": out.shape[1] - args.prompt_len,
                          "tokens_per_s_best": rates[-1], "tokens_per_s_median": rates[len(rates) // 2],
                          "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    else:
        print(f"transformers generate: {out.shape[1] - args.prompt_len} tokens: {rates[-1]:.1f} tokens/s best "
              f"(threads {args.threads}, prompt {args.prompt_len}, {args.device})")
    return 0


def cmd_generate(args) -> int:
    import json

    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(args.model_dir, "tokenizer.json"))
    model = load_decoder(args.model_dir)
    bos = model.config.bos_token_id
    ids = ([bos] if bos is not None else []) + tok.encode(args.prompt, add_special_tokens=False).ids
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                             do_sample=False, max_new_tokens=args.new_tokens, pad_token_id=model.config.pad_token_id)
    new = out[0, len(ids):].tolist()
    print(json.dumps({"prompt_ids": ids, "generated": new, "text": tok.decode(new, skip_special_tokens=True)}))
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("tiny")
    t.add_argument("out_dir")
    t.add_argument("--arch", choices=sorted(ARCHS), default="llama")
    t.add_argument("--tie", action="store_true", help="tie_word_embeddings (no lm_head.weight)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--new-tokens", type=int, default=12)
    t.add_argument("--hidden", type=int, default=64)
    t.add_argument("--layers", type=int, default=2)
    t.add_argument("--heads", type=int, default=4)
    t.add_argument("--kv-heads", type=int, default=2)
    t.add_argument("--intermediate", type=int, default=128)
    t.add_argument("--vocab", type=int, default=128)
    t.add_argument("--max-positions", type=int, default=128)
    t.add_argument("--rope-theta", type=float, default=10000.0)
    t.add_argument("--head-dim", type=int, default=0, help="0: hidden / heads")
    t.set_defaults(fn=cmd_tiny)

    g = sub.add_parser("generate")
    g.add_argument("model_dir")
    g.add_argument("prompt")
    g.add_argument("--new-tokens", type=int, default=24)
    g.set_defaults(fn=cmd_generate)

    s = sub.add_parser("speed")
    s.add_argument("model_dir")
    s.add_argument("--prompt-len", type=int, default=16)
    s.add_argument("--new-tokens", type=int, default=64)
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--repeats", type=int, default=3)
    s.add_argument("--device", default="cpu")
    s.add_argument("--bf16", type=int, default=0)
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_speed)

    args = p.parse_args()
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
