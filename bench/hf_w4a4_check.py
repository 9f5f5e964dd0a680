#!/usr/bin/env python3
"""Load a checkpoint with dynamic activations (W4A4, W4A8, ...) with transformers and compare its
perplexity with the program's.

    python bench/hf_w4a4_check.py --q OUT (--text FILE [--seq-len 2048] [--max-windows K]
                                           | --tokens FILE [--holdout H])
        [--eval-ppl P | --exe build/aweq-dist] [--ppl-tol T] [--tokenizer auto|json] [--threads N]

OUT is a compressed-tensors folder of format "int-quantized" whose input activations are dynamic
(what `aweq-dist run --adynamic` writes, docs/checkpoint-format.md; compressed-tensors' own W4A4 /
W4A8 presets write the same). The windows are the ones `aweq-dist eval` uses:
  --text FILE     eval --text: rows joined with "\\n\\n", tokenized once with BOS, n = tokens // L
                  windows of L tokens, the NLL of the L-1 predicted tokens of each (bench/hf_ppl.py);
  --tokens FILE   eval --tokens: the token file's sequences (docs/token-file.md), all of them with
                  --holdout 0 (the default), else the last llround(H * n_seq) (at least one), each
                  scoring its seq_len - 1 predicted tokens (bench/hf_w8a8_check.py).
The program's perplexity comes from --eval-ppl P (the number eval printed) or, with --exe, from
running `EXE eval` on the same windows here.

Loading: transformers' default path, AutoModelForCausalLM.from_pretrained(OUT, dtype=float32). With
compressed-tensors 0.20.1 the I8 weights are decompressed on the first forward ((q - z) * step, the
steps upcast to float32: exact) and every quantized Linear fake-quantizes its input at run time, per
token or per group, in floating point (step = absmax / ((2^b - 1) / 2), round half to even, clamp to
[-2^(b-1), 2^(b-1) - 1], times the step). aweq-dist eval computes the same codes and takes the
integer product, so the two agree to float32 rounding, but for codes that land the other side of a
rounding boundary: rare at 8 bits (1e-6 to 1e-4 relative on the library's tiny fixtures,
tests/data/ct020), frequent at 4 bits, where one step is 1/15 of a token's range (1.5e-3 on the
W4A4 fixture; transformers itself moves by 2.5e-3 there between float32 and float64). Hence the
default tolerance: 1e-3 relative with 8-bit activations, 1e-2 below. The script checks that loading is clean, that
every quantized Linear keeps its input_activations scheme (loading with dequantize=True would drop
it silently and measure a weight-only model), and that the weights transformers decompressed equal
this script's own decoding of the file.

--also-float64 runs transformers a second time in float64: at 4 bits its float32 result moves by
about as much as it differs from the program's, and the check passes when the program's
perplexity is within the tolerance of either.

Exit 0 when every check passed, 1 when one failed, 2 for bad input.
Needs torch, transformers and compressed-tensors (0.20).
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_ppl import protocol_text, tokenize_text, window_nll  # noqa: E402
from hf_w8a8_check import PROGRESS, heldout_count, load, loading_problems, read_tokens  # noqa: E402


def dyn_scheme(qc):
    """(wbits, wgroup or 0, wsym, abits, agroup or 0) of an int-quantized quantization_config
    with dynamic input activations."""
    if qc.get("format") != "int-quantized":
        raise ValueError(f"format {qc.get('format')!r}: not an int-quantized checkpoint")
    schemes = set()
    for g in (qc.get("config_groups") or {}).values():
        w, a = g.get("weights") or {}, g.get("input_activations")
        if not a or not a.get("dynamic"):
            raise ValueError("input activations are not dynamic: not a W4A4 / W4A8 checkpoint "
                             "(bench/hf_w8a8_check.py checks static W8A8)")
        wg, ag = w.get("group_size"), a.get("group_size")
        schemes.add((int(w.get("num_bits", 8)), wg if wg and wg > 0 else 0, bool(w.get("symmetric", True)),
                     int(a.get("num_bits", 8)), ag if a.get("strategy") == "group" and ag else 0))
    if len(schemes) != 1:
        raise ValueError(f"config_groups hold {len(schemes)} schemes; expected one")
    return schemes.pop()


def decode_file(folder):
    """{module: float64 weight (out, in)} from the checkpoint's I8 weight, weight_scale and
    weight_zero_point: (q - z) * step."""
    from safetensors import safe_open

    out = {}
    for fn in sorted(os.listdir(folder)):
        if not fn.endswith(".safetensors"):
            continue
        with safe_open(os.path.join(folder, fn), "pt") as f:
            keys = set(f.keys())
            for k in sorted(keys):
                if not k.endswith(".weight_scale"):
                    continue
                base = k[: -len(".weight_scale")]
                q = f.get_tensor(base + ".weight").numpy().astype(np.int64)
                s = f.get_tensor(k).double().numpy()
                rows, cols = q.shape
                ng = s.shape[1]
                g = -(-cols // ng)
                zk = base + ".weight_zero_point"
                z = f.get_tensor(zk).numpy().astype(np.int64) if zk in keys else np.zeros((rows, ng), np.int64)
                idx = np.arange(cols) // g
                out[base] = (q - z[:, idx]) * s[:, idx]
    return out


def seq_nll(model, seqs, progress=None):
    """(total NLL in float64, predicted tokens) over whole sequences (eval --tokens)."""
    import torch
    import torch.nn.functional as F

    total, pred = 0.0, 0
    with torch.no_grad():
        for i, s in enumerate(seqs):
            x = torch.tensor(np.asarray(s, dtype=np.int64)).unsqueeze(0)
            logits = model(input_ids=x).logits[0].float()
            total += float(F.cross_entropy(logits[:-1], x[0, 1:], reduction="sum").double())
            pred += len(s) - 1
            if progress:
                progress(i + 1, len(seqs), total, pred)
    return total, pred


def run_eval(exe, a):
    """The program's perplexity on the same windows: `EXE eval ...`'s printed number."""
    cmd = [exe, "eval", "--model", a.q, "--quiet"]
    if a.text:
        cmd += ["--text", a.text, "--seq-len", str(a.seq_len)]
        if a.max_windows:
            cmd += ["--max-windows", str(a.max_windows)]
    else:
        cmd += ["--tokens", a.tokens, "--holdout", repr(a.holdout)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip().splitlines()[-1:]}")
    m = re.search(r"(?:wikitext2 ppl|perplexity) ([0-9.eE+-]+|inf|nan)", r.stdout)
    if not m:
        raise RuntimeError(f"no perplexity in the output of {' '.join(cmd)}: {r.stdout.strip()}")
    print(f"aweq-dist: {r.stdout.strip()}")
    return float(m.group(1))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--q", required=True, help="the output folder (int-quantized, dynamic activations)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="the text eval --text read")
    src.add_argument("--tokens", help="the token file eval --tokens read")
    ap.add_argument("--seq-len", type=int, default=2048, help="--text: window length L (default 2048)")
    ap.add_argument("--max-windows", type=int, default=None, help="--text: only the first K windows")
    ap.add_argument("--holdout", type=float, default=0.0, help="--tokens: eval's --holdout (default 0: all)")
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--eval-ppl", type=float, default=None, help="aweq-dist eval's perplexity")
    how.add_argument("--exe", default=None, help="run this aweq-dist's eval on the same windows")
    ap.add_argument("--ppl-tol", type=float, default=None,
                    help="relative tolerance (default 1e-3 with 8-bit activations, 1e-2 below)")
    ap.add_argument("--tokenizer", choices=("auto", "json"), default="auto",
                    help="--text: AutoTokenizer (default) or the folder's tokenizer.json")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    ap.add_argument("--also-float64", action="store_true",
                    help="also run transformers in float64: how far its own result moves with the rounding")
    a = ap.parse_args(argv)
    if a.seq_len < 2 or (a.max_windows is not None and a.max_windows < 1) or not 0.0 <= a.holdout < 1.0:
        print("--seq-len must be at least 2, --max-windows at least 1, --holdout in [0, 1)", file=sys.stderr)
        return 2
    try:
        with open(os.path.join(a.q, "config.json")) as f:
            qc = json.load(f)["quantization_config"]
        wb, wg, wsym, ab, ag = dyn_scheme(qc)
        if a.text:
            text, n_rows = protocol_text(a.text)
        else:
            vocab, ids2 = read_tokens(a.tokens)
            n_hold = heldout_count(ids2.shape[0], a.holdout) if a.holdout > 0 else ids2.shape[0]
            seqs = ids2[ids2.shape[0] - n_hold:]
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    import torch
    import transformers

    import compressed_tensors

    if a.threads:
        torch.set_num_threads(a.threads)
    print(f"versions: torch {torch.__version__}, transformers {transformers.__version__}, "
          f"compressed-tensors {compressed_tensors.__version__}")
    print(f"scheme: w{wb} {'g%d' % wg if wg else 'per-channel'} {'sym' if wsym else 'asym'}, "
          f"a{ab} {'g%d' % ag if ag else 'per token'} dynamic")
    if a.text:
        got = tokenize_text(a.q, text, a.tokenizer, "hf_w4a4_check")
        if got is None:
            print(f"error: --tokenizer json: {a.q} has no tokenizer.json", file=sys.stderr)
            return 2
        ids, bos = got
        print(f"tokens: {len(ids)} ({n_rows} rows; first id {ids[0] if ids else None}, BOS {bos})")
        if len(ids) < a.seq_len:
            print(f"error: {a.text}: {len(ids)} tokens, fewer than one window of {a.seq_len}", file=sys.stderr)
            return 2
    else:
        print(f"tokens: {a.tokens}: {len(seqs)} of {ids2.shape[0]} sequences x {ids2.shape[1]} tokens "
              f"(holdout {a.holdout:g})")

    try:
        eval_ppl = run_eval(a.exe, a) if a.exe else a.eval_ppl
    except (OSError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    try:
        model, info, msgs = load(a.q, dtype=torch.float32)
    except Exception as e:  # noqa: BLE001
        print(f"FAIL: transformers could not load {a.q} (default load): {type(e).__name__}: {e}")
        return 1
    problems = loading_problems(info, msgs)
    for m in msgs:
        if not PROGRESS.search(m):
            print(f"  | {m}")
    # the default path keeps every scheme, input activations included; a load
    # that lost them would measure a weight-only model
    qmods = {n: m for n, m in model.named_modules() if getattr(m, "quantization_scheme", None) is not None}
    dyn = [n for n, m in qmods.items() if m.quantization_scheme.input_activations is not None
           and m.quantization_scheme.input_activations.dynamic]
    print(f"loading (default load): {type(model).__name__}, {len(qmods)} quantized modules, {len(dyn)} with "
          f"dynamic input activations; loading info: {'clean' if not problems else '; '.join(problems)}")
    if not dyn or len(dyn) != len(qmods):
        problems.append(f"{len(qmods) - len(dyn)} of {len(qmods)} quantized modules lost their dynamic input "
                        "activations (the measurement would be weight-only)")

    t0 = time.time()

    def wprogress(w, n, total):
        if not a.quiet:
            print(f"hf_w4a4_check: window {w}/{n}, running ppl {math.exp(total / (w * (a.seq_len - 1))):.4f}",
                  file=sys.stderr, flush=True)

    def sprogress(i, n, total, pred):
        if not a.quiet:
            print(f"hf_w4a4_check: sequence {i}/{n}, running ppl {math.exp(total / pred):.4f}",
                  file=sys.stderr, flush=True)

    try:
        if a.text:
            total, n = window_nll(model, ids, a.seq_len, a.max_windows, wprogress)
            predicted = n * (a.seq_len - 1)
            where = f"{n} windows x {a.seq_len} tokens"
        else:
            total, predicted = seq_nll(model, seqs, sprogress)
            where = f"{len(seqs)} sequences x {seqs.shape[1]} tokens"
    except Exception as e:  # noqa: BLE001
        print(f"FAIL: the forward failed: {type(e).__name__}: {e}")
        return 1
    ppl = math.exp(total / predicted)
    print(f"transformers ppl {ppl:.6f} on {where} ({predicted} predicted tokens)")
    print(f"time: {time.time() - t0:.1f} s for the forward passes", file=sys.stderr)

    # the weights transformers multiplies (decompressed on the first forward)
    # against this script's decoding of the file: equal (float32 steps, exact)
    ref = decode_file(a.q)
    mods = dict(model.named_modules())
    worst, checked = 0.0, 0
    for base, w in ref.items():
        m = mods.get(base)
        if m is None or getattr(m, "weight", None) is None or not m.weight.dtype.is_floating_point:
            problems.append(f"{base}: no decompressed weight in the loaded model")
            continue
        want = torch.from_numpy(w).to(torch.float32).double().numpy()
        worst = max(worst, float(np.abs(m.weight.detach().double().numpy() - want).max()))
        checked += 1
    print(f"weights: {checked} linears decompressed by compressed-tensors vs decoded here: max |diff| {worst:g}")
    if checked != len(ref) or not ref:
        problems.append(f"{len(ref)} quantized linears in the files, {checked} found decompressed in the model")
    if worst != 0.0:
        problems.append(f"decompressed weights differ from the file's by up to {worst:g}")

    ppl64 = None
    if a.also_float64 and a.text:
        # transformers against itself: the same model in float64 (the quantized
        # inputs' codes flip where float32 rounding put them on a boundary)
        model = model.double()
        total64, n64 = window_nll(model, ids, a.seq_len, a.max_windows, None)
        ppl64 = math.exp(total64 / (n64 * (a.seq_len - 1)))
        print(f"transformers float64 ppl {ppl64:.6f}; float32 / float64 - 1 = {ppl / ppl64 - 1.0:+.3e}")
    if eval_ppl is not None:
        tol = a.ppl_tol if a.ppl_tol is not None else (1e-3 if ab >= 8 else 1e-2)
        r = ppl / eval_ppl - 1.0
        print(f"aweq-dist eval ppl {eval_ppl:.6f}; transformers ppl {ppl:.6f}; transformers / eval - 1 = {r:+.3e}")
        r64 = ppl64 / eval_ppl - 1.0 if ppl64 is not None else None
        if r64 is not None:
            print(f"transformers float64 / eval - 1 = {r64:+.3e}")
        # within the tolerance of transformers in float32, or (when it moves
        # with the rounding more than that) of transformers in float64
        if not abs(r) <= tol and not (r64 is not None and abs(r64) <= tol):
            problems.append(f"perplexity differs from eval's by {r:+.3%} (tolerance {tol:.2%})")
    if problems:
        for p in problems:
            print(f"FAIL: {p}")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
