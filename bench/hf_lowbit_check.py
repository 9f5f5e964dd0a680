#!/usr/bin/env python3
"""Load a weight-only checkpoint of the program with transformers and print its perplexity.

    python bench/hf_lowbit_check.py --q OUT --text FILE [--seq-len 2048] [--max-windows K]
        [--eval-ppl P] [--ppl-tol 1e-3] [--tokenizer auto|json] [--threads N]

OUT is the program's output folder of a weight-only run (--wbits: config.json
says format "pack-quantized", docs/checkpoint-format.md), FILE the text
`aweq-dist eval --text FILE --model OUT` reads. The windows are the ones
eval uses (bench/hf_ppl.py: rows joined with "\\n\\n", tokenized once with
BOS, n = tokens // L windows, the NLL of the L-1 predicted tokens of each).

Loading, as compressed-tensors 0.20 allows it today:
  symmetric   the default path, AutoModelForCausalLM.from_pretrained(OUT):
              the packed weights stay compressed until the first forward,
              which decompresses them;
  asymmetric  from_pretrained(OUT, quantization_config=
              CompressedTensorsConfig(dequantize=True)): the default load
              of packed zero points fails inside compressed-tensors itself
              (it declares weight_zero_point unpacked, [out, groups], and
              the file holds [ceil(out * b / 32), groups]: a size mismatch;
              vllm-project/llm-compressor#1618).
Either way the model is float32 and any missing, unexpected or mismatched
key, or a loading warning that speaks of them, fails the check.

After the windows, every quantized linear's float weight as transformers
decompressed it is compared with this script's own numpy decoding of the
file ((q - z) * step, codes read bit by bit, rounded once to float32): equal
on the default path;
with dequantize=True the library computes the product in the scale's dtype
(F16/BF16) on load, so there the decoding is rounded to it first, and the
perplexity then differs from eval's (float32 weights) by about 1e-4.

With --eval-ppl (the number `aweq-dist eval --text` printed) it also fails
when the two perplexities differ by more than --ppl-tol relative. Exit 0
when every check passed, 1 when one failed, 2 for bad input.

Needs torch, transformers and compressed-tensors (0.20: the dense packing;
older releases packed floor(32 / b) codes a word, another layout at 3 bits).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_ppl import protocol_text, tokenize_text, window_nll  # noqa: E402
from hf_w8a8_check import PROGRESS, load, loading_problems  # noqa: E402


def weight_scheme(qc):
    """(bits, group or 0, symmetric) of a pack-quantized quantization_config."""
    if qc.get("format") != "pack-quantized":
        raise ValueError(f"format {qc.get('format')!r}: not a weight-only (pack-quantized) checkpoint")
    groups = qc.get("config_groups") or {}
    schemes = set()
    for g in groups.values():
        w = g.get("weights") or {}
        gs = w.get("group_size")
        schemes.add((int(w.get("num_bits", 8)), gs if gs and gs > 0 else 0, bool(w.get("symmetric", True))))
    if len(schemes) != 1:
        raise ValueError(f"config_groups hold {len(schemes)} schemes; expected one")
    return schemes.pop()


def unpack(words, n, bits):
    """Codes (rows, n) of little-endian 32-bit words (rows, W), code i at bit i*bits."""
    w = words.astype(np.uint32).view(np.uint8).reshape(words.shape[0], -1)
    b = np.unpackbits(w, axis=1, bitorder="little")[:, : n * bits].reshape(words.shape[0], n, bits)
    return (b.astype(np.int64) << np.arange(bits)).sum(-1)


def decode_file(folder, bits, sym):
    """{module: (float64 weight (out, in), the scale's torch dtype)} from the
    checkpoint's own tensors."""
    from safetensors import safe_open

    out = {}
    for fn in sorted(os.listdir(folder)):
        if not fn.endswith(".safetensors"):
            continue
        with safe_open(os.path.join(folder, fn), "pt") as f:
            for k in sorted(f.keys()):
                if not k.endswith(".weight_packed"):
                    continue
                base = k[: -len(".weight_packed")]
                rows, cols = (int(v) for v in f.get_tensor(base + ".weight_shape"))
                q = unpack(f.get_tensor(k).numpy(), cols, bits)
                st = f.get_tensor(base + ".weight_scale")
                s = st.double().numpy()
                ng = s.shape[1]
                g = cols if ng == 1 else -(-cols // ng)
                if sym:
                    z = np.full((rows, ng), 1 << (bits - 1), dtype=np.int64)
                else:
                    zw = f.get_tensor(base + ".weight_zero_point").numpy()
                    z = unpack(np.ascontiguousarray(zw.T), rows, bits).T
                idx = np.arange(cols) // g
                out[base] = ((q - z[:, idx]) * s[:, idx], st.dtype)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--q", required=True, help="the program's output folder (weight-only)")
    ap.add_argument("--text", required=True, help="the text eval --text read")
    ap.add_argument("--seq-len", type=int, default=2048, help="window length L (default 2048)")
    ap.add_argument("--max-windows", type=int, default=None, help="only the first K windows")
    ap.add_argument("--eval-ppl", type=float, default=None, help="aweq-dist eval --text's perplexity")
    ap.add_argument("--ppl-tol", type=float, default=1e-3, help="relative tolerance (default 1e-3)")
    ap.add_argument("--tokenizer", choices=("auto", "json"), default="auto",
                    help="auto: AutoTokenizer (default); json: the folder's tokenizer.json")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    a = ap.parse_args(argv)
    if a.seq_len < 2 or (a.max_windows is not None and a.max_windows < 1):
        print("--seq-len must be at least 2 and --max-windows at least 1", file=sys.stderr)
        return 2
    try:
        with open(os.path.join(a.q, "config.json")) as f:
            qc = json.load(f)["quantization_config"]
        bits, group, sym = weight_scheme(qc)
        text, n_rows = protocol_text(a.text)
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    import torch
    import transformers
    from transformers.utils.quantization_config import CompressedTensorsConfig

    import compressed_tensors

    if a.threads:
        torch.set_num_threads(a.threads)
    print(f"versions: torch {torch.__version__}, transformers {transformers.__version__}, "
          f"compressed-tensors {compressed_tensors.__version__}; checkpoint written for "
          f"{qc.get('version', '(no version)')}")
    actorder = {(g.get("weights") or {}).get("actorder") for g in qc["config_groups"].values()}
    print(f"scheme: w{bits} {'g%d' % group if group else 'per-channel'} {'sym' if sym else 'asym'}, "
          f"actorder {', '.join(map(str, sorted(actorder, key=str)))}")
    got = tokenize_text(a.q, text, a.tokenizer, "hf_lowbit_check")
    if got is None:
        print(f"error: --tokenizer json: {a.q} has no tokenizer.json", file=sys.stderr)
        return 2
    ids, bos = got
    print(f"tokens: {len(ids)} ({n_rows} rows; first id {ids[0] if ids else None}, BOS {bos})")
    if len(ids) < a.seq_len:
        print(f"error: {a.text}: {len(ids)} tokens, fewer than one window of {a.seq_len}", file=sys.stderr)
        return 2

    # symmetric: the default path; asymmetric: dequantize on load (llm-compressor#1618)
    kw = {"dtype": torch.float32}
    how = "default load"
    if not sym:
        kw["quantization_config"] = CompressedTensorsConfig(dequantize=True)
        how = "dequantize=True (asymmetric: the default load fails in compressed-tensors)"
    try:
        model, info, msgs = load(a.q, **kw)
    except Exception as e:  # noqa: BLE001
        print(f"FAIL: transformers could not load {a.q} ({how}): {type(e).__name__}: {e}")
        return 1
    # the warning that our dequantize=True overrides the file's loading attributes is expected
    msgs = [m for m in msgs if "loading attributes" not in m]
    problems = loading_problems(info, msgs)
    # dequantize=True leaves plain Linear modules; the default path keeps the
    # schemes (and decompresses on the first forward)
    qmods = [n for n, m in model.named_modules() if hasattr(m, "quantization_scheme")]
    print(f"loading ({how}): {type(model).__name__}, {len(qmods)} modules with a quantization scheme; "
          f"loading info: {'clean' if not problems else '; '.join(problems)}")
    for m in msgs:
        if not PROGRESS.search(m):
            print(f"  | {m}")
    if sym and not qmods:
        problems.append("no module carries a quantization scheme (the checkpoint loaded as float?)")

    t0 = time.time()

    def progress(w, n, total):
        if not a.quiet:
            print(f"hf_lowbit_check: window {w}/{n}, running ppl {math.exp(total / (w * (a.seq_len - 1))):.4f}",
                  file=sys.stderr, flush=True)

    try:
        total, n = window_nll(model, ids, a.seq_len, a.max_windows, progress)
    except Exception as e:  # noqa: BLE001
        print(f"FAIL: the forward failed: {type(e).__name__}: {e}")
        if "divisble" in str(e) or "divisible" in str(e):
            print(f"      compressed-tensors {compressed_tensors.__version__} runs group_size {group} only on "
                  "linears whose inputs are a multiple of it; the file's last group of such a row is shorter "
                  "(aweq-dist eval reads it, this library does not)")
        return 1
    predicted = n * (a.seq_len - 1)
    ppl = math.exp(total / predicted)
    print(f"wikitext2 ppl {ppl:.6f} on {n} windows x {a.seq_len} tokens ({predicted} predicted tokens)")
    print(f"time: {time.time() - t0:.1f} s for the windows", file=sys.stderr)

    # the weights transformers multiplies, against our own decoding of the
    # file: (q - z) * step rounded once to float32 on the default path (as
    # aweq-dist's own dequantization rounds it); dequantize=True computes
    # (q - z) * step in the scale's dtype on load, so there the reference is
    # rounded to that dtype first (the library's rounding, not the file's)
    ref = decode_file(a.q, bits, sym)
    mods = dict(model.named_modules())
    worst, checked = 0.0, 0
    for base, (w, sdt) in ref.items():
        m = mods.get(base)
        if m is None or getattr(m, "weight", None) is None:
            problems.append(f"{base}: no decompressed weight in the loaded model")
            continue
        want = torch.from_numpy(w).to(torch.float32 if sym else sdt).double().numpy()
        d = float(np.abs(m.weight.detach().double().numpy() - want).max())
        worst = max(worst, d)
        checked += 1
    print(f"weights: {checked} linears decompressed by compressed-tensors vs decoded here"
          f"{'' if sym else ' (rounded to the scale dtype, as dequantize=True does)'}: max |diff| {worst:g}")
    if checked != len(ref) or not ref:
        problems.append(f"{len(ref)} packed linears in the files, {checked} found decompressed in the model")
    if worst != 0.0:
        problems.append(f"decompressed weights differ from the file's by up to {worst:g}")

    if a.eval_ppl is not None:
        r = ppl / a.eval_ppl - 1.0
        print(f"aweq-dist eval: {a.eval_ppl:.6f}; transformers / eval - 1 = {r:+.3e}")
        if not abs(r) <= a.ppl_tol:
            problems.append(f"perplexity differs from eval's by {r:+.3%} (tolerance {a.ppl_tol:.2%})")
    if problems:
        for p in problems:
            print(f"FAIL: {p}")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
