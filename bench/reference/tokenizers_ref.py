"""The Hugging Face `tokenizers` side of adrec's tokenizer tests (adrec/text/tokenizer_test.cc).

    tokenizers_ref.py make-bpe OUT_DIR --style gpt2|llama3|qwen2
        trains a small byte-level BPE on the test corpus with the style's pre-tokenizer
        (GPT-2: ByteLevel regex; Llama-3 / Qwen2: Split regex + ByteLevel; Qwen2 adds NFC),
        special tokens and template, and saves OUT_DIR/tokenizer.json. No download.
    tokenizers_ref.py encode TOKENIZER_JSON CORPUS_JSON OUT_JSON [--max-length N]
        writes, per text of the corpus (a JSON list of strings), the IDs with and without
        special tokens, the IDs truncated to N, and the decoded text.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
SPECIALS = {"gpt2": ["<|endoftext|>"], "llama3": ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"],
            "qwen2": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]}


def training_texts(corpus: list[str]) -> list[str]:
    extra = ["The quick brown fox jumps over the lazy dog.", "点击下载，立即安装，领取礼包。", "Download the app now!",
             "user clicked game MOBA, downloaded food delivery app", "    def f(x):\n        return x + 1\n"]
    return (corpus + extra) * 20


def make_bpe(out_dir: str, style: str, corpus: list[str]) -> None:
    tok = Tokenizer(models.BPE(ignore_merges=style == "llama3"))
    if style == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        pattern = LLAMA3 if style == "llama3" else QWEN2
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    if style == "qwen2":
        tok.normalizer = normalizers.NFC()
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=900, special_tokens=SPECIALS[style],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(training_texts(corpus), trainer)
    if style == "llama3":
        bos = tok.token_to_id("<|begin_of_text|>")
        tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", bos)])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    os.makedirs(out_dir, exist_ok=True)
    tok.save(os.path.join(out_dir, "tokenizer.json"))


def encode(tokenizer_json: str, corpus: list[str], out: str, max_length: int) -> None:
    tok = Tokenizer.from_file(tokenizer_json)
    tok.no_truncation()
    tok.no_padding()
    rows = []
    for text in corpus:
        with_special = tok.encode(text).ids
        row = {"text": text, "ids": with_special, "ids_plain": tok.encode(text, add_special_tokens=False).ids,
               "decoded": tok.decode(with_special, skip_special_tokens=True)}
        tok.enable_truncation(max_length)
        row["ids_truncated"] = tok.encode(text).ids
        tok.no_truncation()
        rows.append(row)
    with open(out, "w") as f:
        json.dump(rows, f, ensure_ascii=False)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make-bpe")
    m.add_argument("out_dir")
    m.add_argument("--style", choices=sorted(SPECIALS), required=True)
    m.add_argument("--corpus", default=os.path.join(os.path.dirname(__file__), "..", "..", "adrec", "text", "testdata",
                                                    "tokenizer_corpus.json"))
    e = sub.add_parser("encode")
    e.add_argument("tokenizer_json")
    e.add_argument("corpus_json")
    e.add_argument("out_json")
    e.add_argument("--max-length", type=int, default=8)
    a = p.parse_args()
    if a.cmd == "make-bpe":
        make_bpe(a.out_dir, a.style, json.load(open(a.corpus)))
    else:
        encode(a.tokenizer_json, json.load(open(a.corpus_json)), a.out_json, a.max_length)
    return 0


if __name__ == "__main__":
    sys.exit(main())
