#!/usr/bin/env python3
"""WikiText-2 perplexity of a Hugging Face OPT or LLaMA folder, computed by transformers.

The reference for `aweq-dist eval --text`: the same protocol, step by step.

  1. Read the text file as UTF-8 bytes, unchanged (no newline translation:
     a CRLF file keeps its "\\r").
  2. Cut it into rows after every "\\n"; each row keeps its "\\n"; a last row
     without "\\n" is kept if it is not empty.
  3. Join the rows with "\\n\\n" (the usual `"\\n\\n".join(test["text"])`).
  4. Tokenize once with AutoTokenizer(model) and its default
     add_special_tokens: OPT and LLaMA folders prepend their BOS token.
     With --tokenizer json, tokenizer.json through `tokenizers` instead (its
     own post-processor adds BOS): transformers 5 rebuilds a LlamaTokenizer
     folder's pipeline (Metaspace in place of the file's normalizer), which
     differs from the file on a text that starts with a space; aweq-dist
     reads the file. A folder with tokenizer.json is encoded both ways and a
     difference is reported on stderr.
  5. n = len(ids) // L non-overlapping windows ids[i*L:(i+1)*L] (the tail
     shorter than L is dropped); optionally only the first K.
  6. Logits of AutoModelForCausalLM (OPTForCausalLM, LlamaForCausalLM; float32,
     eval mode, no_grad) per window; the
     NLL is the sum over the window's L-1 predicted tokens (positions 1..L-1,
     each from the logits of the position before) of -log softmax.
  7. ppl = exp(total NLL / (n * (L - 1))).

Works on a plain float checkpoint and, when the `compressed-tensors` package
is installed, on a quantized compressed-tensors folder (the checkpoints
aweq-dist writes); transformers then applies the checkpoint's quantization
(weights and the static input scales) as the package implements it.

    python bench/hf_ppl.py --model DIR --text FILE [--seq-len 2048] [--max-windows K]
                           [--tokenizer auto|json]

Needs torch and transformers (a venv: see bench/trained-model.md).
"""

import argparse
import math
import sys
import time


def wikitext_rows(text):
    """Rows of text, each ending in its "\\n"; a non-empty tail without one;
    a row of whitespace alone is "", as Hugging Face's wikitext dataset makes
    its rows (docs/calibration-text.md)."""
    rows = text.split("\n")
    out = [r + "\n" for r in rows[:-1]]
    if rows[-1]:
        out.append(rows[-1])
    return [r if r.strip() else "" for r in out]


def protocol_text(path):
    """The file's text as the protocol feeds it to the tokenizer."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    rows = wikitext_rows(text)
    return "\n\n".join(rows), len(rows)


def tokenize(tokenizer, text):
    """One call, default special tokens (OPT and LLaMA folders: BOS first).
    tokenizer: a transformers tokenizer or a `tokenizers.Tokenizer`."""
    from tokenizers import Tokenizer

    if isinstance(tokenizer, Tokenizer):  # tokenizer.json's own pipeline, post-processor included
        return tokenizer.encode(text).ids
    return tokenizer(text, verbose=False)["input_ids"]


def json_tokenizer(path):
    """(tokenizers.Tokenizer of DIR/tokenizer.json, the BOS id its
    post-processor adds, or None), or (None, None) without the file."""
    import os

    from tokenizers import Tokenizer

    f = os.path.join(path, "tokenizer.json")
    if not os.path.isfile(f):
        return None, None
    tok = Tokenizer.from_file(f)
    tok.no_truncation()
    tok.no_padding()
    pre = tok.encode("").ids  # what the post-processor adds to nothing
    return tok, (pre[0] if pre else None)


def first_difference(a, b):
    """Index of the first position where two id lists differ, or None."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def tokenize_text(folder, text, how, prog):
    """(ids, bos) of text with the folder's tokenizer. how "json": its
    tokenizer.json through `tokenizers`, as aweq-dist reads it (None when the
    folder has none); "auto": AutoTokenizer, with a note on stderr (prefixed
    prog) where tokenizer.json gives other ids."""
    from transformers import AutoTokenizer

    if how == "json":
        tj, bos = json_tokenizer(folder)
        if tj is None:
            return None
        return tokenize(tj, text), bos
    tok = AutoTokenizer.from_pretrained(folder)
    ids, bos = tokenize(tok, text), tok.bos_token_id
    try:  # only a note: the ids stay AutoTokenizer's
        tj, _ = json_tokenizer(folder)
        k = first_difference(ids, tokenize(tj, text)) if tj is not None else None
    except Exception as e:  # a file transformers reads but `tokenizers` does not
        k = None
        print(f"{prog}: note: tokenizer.json not readable by tokenizers ({e}); not compared", file=sys.stderr)
    if k is not None:
        print(f"{prog}: note: AutoTokenizer and tokenizer.json differ from id {k} on; --tokenizer json "
              f"follows the file (as aweq-dist does)", file=sys.stderr)
    return ids, bos


def window_nll(model, ids, seq_len, max_windows=None, progress=None):
    """(total NLL in float64, windows) over non-overlapping windows of ids."""
    import torch
    import torch.nn.functional as F

    n = len(ids) // seq_len
    if max_windows is not None:
        n = min(n, max_windows)
    total = 0.0
    model.eval()
    with torch.no_grad():
        for w in range(n):
            x = torch.tensor(ids[w * seq_len:(w + 1) * seq_len], dtype=torch.long).unsqueeze(0)
            logits = model(input_ids=x).logits[0].float()  # (L, V)
            nll = F.cross_entropy(logits[:-1], x[0, 1:], reduction="sum")
            total += float(nll.double())
            if progress:
                progress(w + 1, n, total)
    return total, n


def load_model(path):
    import torch
    from transformers import AutoModelForCausalLM

    import transformers

    # transformers 5 names it dtype; 4.x (before 4.56) only knows torch_dtype
    key = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    # the config's model_type picks the class: OPTForCausalLM, LlamaForCausalLM
    model = AutoModelForCausalLM.from_pretrained(path, **{key: torch.float32})
    model.eval()
    return model


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True,
                    help="Hugging Face OPT or LLaMA folder (float or compressed-tensors)")
    ap.add_argument("--text", required=True, help="text file, e.g. wikitext-2 wiki.test.raw")
    ap.add_argument("--seq-len", type=int, default=2048, help="window length L (default 2048)")
    ap.add_argument("--max-windows", type=int, default=None, help="only the first K windows")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    ap.add_argument("--tokenizer", choices=("auto", "json"), default="auto",
                    help="auto: AutoTokenizer (default); json: the folder's tokenizer.json through `tokenizers`")
    a = ap.parse_args(argv)
    if a.seq_len < 2:
        ap.error("--seq-len must be at least 2")
    if a.max_windows is not None and a.max_windows < 1:
        ap.error("--max-windows must be at least 1")

    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    text, n_rows = protocol_text(a.text)
    got = tokenize_text(a.model, text, a.tokenizer, "hf_ppl")
    if got is None:
        sys.exit(f"hf_ppl: --tokenizer json: {a.model} has no tokenizer.json")
    ids, bos = got
    print(f"tokens: {len(ids)} ({n_rows} rows, {len(text)} characters after joining; "
          f"first id {ids[0] if ids else None}, BOS {bos})")
    if len(ids) < a.seq_len:
        sys.exit(f"hf_ppl: {a.text}: {len(ids)} tokens, fewer than one window of {a.seq_len}")
    model = load_model(a.model)
    max_pos = getattr(model.config, "max_position_embeddings", None)
    if max_pos is not None and a.seq_len > max_pos:
        sys.exit(f"hf_ppl: --seq-len {a.seq_len} is beyond the model's {max_pos} positions")

    t0 = time.time()

    def progress(w, n, total):
        if not a.quiet:
            print(f"hf_ppl: window {w}/{n}, running ppl {math.exp(total / (w * (a.seq_len - 1))):.4f}",
                  file=sys.stderr, flush=True)

    total, n = window_nll(model, ids, a.seq_len, a.max_windows, progress)
    predicted = n * (a.seq_len - 1)
    print(f"wikitext2 ppl {math.exp(total / predicted):.6f} on {n} windows x {a.seq_len} tokens "
          f"({predicted} predicted tokens)")
    print(f"time: {time.time() - t0:.1f} s for the windows", file=sys.stderr)


if __name__ == "__main__":
    main()
