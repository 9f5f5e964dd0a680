#!/usr/bin/env python3
"""Check a W8A8 run's end-to-end numbers against transformers.

    python bench/hf_w8a8_check.py --fp DIR --q OUT --tokens FILE [--holdout 0.2]
        [--batch 8] [--kl-tol 0.02] [--ppl-tol 0.001] [--threads N]

DIR is the float folder the run quantized, OUT the run's output folder
(compressed-tensors checkpoint and aweq_report.json), FILE the token file the
run calibrated on (--calib FILE; docs/token-file.md) and --holdout the run's
--holdout. The run validates on the last llround(H * n_seq) sequences of the
file (at least one when H > 0; io/aw_textdata.c aw_holdout_count()), and scores every
position of each sequence but the last, which predicts nothing it holds
(pipeline/quant/aw_validate.c e2e_rows): n_hold x (seq_len - 1) predicted tokens.

The float model loads with AutoModelForCausalLM in float32; the quantized one
with AutoModelForCausalLM.from_pretrained(OUT), transformers' default
compressed-tensors path (it simulates W8A8: INT8 weights dequantized, inputs
rounded to their static per-tensor grid). Loading is checked: any missing,
unexpected or mismatched key (output_loading_info=True) or a loading warning
that speaks of them fails the check.

Over the held-out sequences it computes, as the program does (double
precision over float32 logits): mean KL(p_fp || p_q) per predicted token,
fp and W8A8 perplexity exp(mean NLL), and top-1 agreement (argmax, lowest
index on ties). It prints them next to aweq_report.json's "end_to_end" and
exits 1 if |KL_hf / KL_report - 1| > --kl-tol (0.02), fp perplexity differs
by more than --ppl-tol (0.1%) relative, the predicted-token counts differ, or
loading was not clean; 2 for bad input.
"""
import argparse
import contextlib
import io
import json
import logging
import math
import os
import re
import struct
import sys
import warnings

import numpy as np

MAGIC = b"AWEQTOK1"


def read_tokens(path):
    """A token file (docs/token-file.md): (vocab_size, ids[n_seq, seq_len] uint32)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 32:
        raise ValueError(f"{path}: shorter than the 32-byte header")
    if data[:8] != MAGIC:
        raise ValueError(f"{path}: magic {data[:8]!r}, expected {MAGIC!r}")
    version, vocab, n_seq, seq_len, reserved = struct.unpack_from("<IIQII", data, 8)
    if version != 1:
        raise ValueError(f"{path}: version {version}, expected 1")
    if reserved != 0:
        raise ValueError(f"{path}: reserved field {reserved}, expected 0")
    if vocab == 0 or n_seq == 0 or seq_len == 0:
        raise ValueError(f"{path}: zero vocab_size, n_seq or seq_len")
    n = n_seq * seq_len
    want = 32 + 4 * n + 8
    if len(data) < want:
        raise ValueError(f"{path}: truncated ({len(data)} bytes, expected {want})")
    if len(data) > want:
        raise ValueError(f"{path}: trailing bytes ({len(data)} bytes, expected {want})")
    ids_bytes = data[32 : 32 + 4 * n]
    # FNV-1a 64 over the id bytes, vectorised per byte position is not possible
    # (sequential), so loop; fine for the small files this checks.
    h = 0xCBF29CE484222325
    for b in ids_bytes:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    (stored,) = struct.unpack_from("<Q", data, 32 + 4 * n)
    if h != stored:
        raise ValueError(f"{path}: checksum {stored:#018x}, computed {h:#018x}")
    ids = np.frombuffer(ids_bytes, dtype="<u4").reshape(n_seq, seq_len)
    bad = np.argwhere(ids >= vocab)
    if len(bad):
        s, p = bad[0]
        raise ValueError(f"{path}: sequence {s} position {p}: id {ids[s, p]} >= vocabulary {vocab}")
    return vocab, ids


def heldout_count(n_seq, holdout):
    """io/aw_textdata.c aw_holdout_count(): llround(H * n_seq), at least 1 when H > 0."""
    x = holdout * n_seq
    h = int(math.floor(x + 0.5)) if x >= 0 else 0  # llround: half away from zero
    if holdout > 0 and h == 0:
        h = 1
    if h >= n_seq:
        raise ValueError(f"{n_seq} sequences leave none for calibration after holding out {h}")
    return h


PROGRESS = re.compile(r"\d+%\|.*it/s\]")  # tqdm bars ("Loading weights: 100%|...")

LOAD_WORDS = ("missing", "unexpected", "mismatch", "newly initialized", "not initialized",
              "were not used", "not used when initializing")


def load(path, **kw):
    """from_pretrained with output_loading_info, capturing logs, warnings and stderr."""
    import transformers
    from transformers import AutoModelForCausalLM

    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setLevel(logging.DEBUG)
    tlog = logging.getLogger("transformers")
    tlog.addHandler(handler)
    old_verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_warning()
    err = io.StringIO()
    try:
        with warnings.catch_warnings(record=True) as wrec, contextlib.redirect_stderr(err), \
                contextlib.redirect_stdout(err):
            warnings.simplefilter("always")
            model, info = AutoModelForCausalLM.from_pretrained(path, output_loading_info=True, **kw)
    finally:
        tlog.removeHandler(handler)
        transformers.logging.set_verbosity(old_verbosity)
    msgs = [m for m in buf.getvalue().splitlines() if m.strip()]
    msgs += [f"{w.category.__name__}: {w.message}" for w in wrec]
    msgs += [m for m in err.getvalue().splitlines() if m.strip()]
    model.eval()
    return model, info, msgs


def loading_problems(info, msgs):
    probs = []
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        v = info.get(key) if isinstance(info, dict) else None
        if v:
            probs.append(f"{key}: {sorted(map(str, v))}")
    for m in msgs:
        low = m.lower()
        if any(w in low for w in LOAD_WORDS):
            probs.append(f"warning: {m}")
    return probs


def rel(a, b):
    if b == 0:
        return float("inf") if a != 0 else 0.0
    return a / b - 1.0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fp", required=True, help="the original Hugging Face folder")
    ap.add_argument("--q", required=True, help="the program's output folder")
    ap.add_argument("--tokens", required=True, help="the token file the run used (--calib)")
    ap.add_argument("--holdout", type=float, default=0.2, help="the run's --holdout (default 0.2)")
    ap.add_argument("--batch", type=int, default=8, help="sequences per forward (default 8)")
    ap.add_argument("--kl-tol", type=float, default=0.02)
    ap.add_argument("--ppl-tol", type=float, default=0.001)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    a = ap.parse_args(argv)

    if not (0.0 <= a.holdout < 1.0):
        print(f"--holdout {a.holdout}: expected a share in [0, 1)", file=sys.stderr)
        return 2
    rep_path = os.path.join(a.q, "aweq_report.json")
    try:
        with open(rep_path) as f:
            report = json.load(f)
        e2e = report["end_to_end"]
        vocab, ids = read_tokens(a.tokens)
        n_seq, L = ids.shape
        n_hold = heldout_count(n_seq, a.holdout) if a.holdout > 0 else 0
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if n_hold == 0:
        print("error: --holdout 0 holds nothing out: the run validated on nothing", file=sys.stderr)
        return 2

    import torch
    import transformers

    if a.threads:
        torch.set_num_threads(a.threads)
    try:
        import compressed_tensors
        ct_version = compressed_tensors.__version__
    except Exception as e:  # noqa: BLE001
        ct_version = f"not importable ({e})"
    print(f"versions: torch {torch.__version__}, transformers {transformers.__version__}, "
          f"compressed-tensors {ct_version}, numpy {np.__version__}, python {sys.version.split()[0]}")

    held = ids[n_seq - n_hold:]
    cal = report.get("calibration", {})
    print(f"tokens: {a.tokens}: {n_seq} sequences x {L} tokens (vocabulary {vocab}); "
          f"held out: last {n_hold} (--holdout {a.holdout}), {n_hold * (L - 1)} predicted tokens")
    if cal:
        print(f"report calibration: {cal}")

    fp, fp_info, fp_msgs = load(a.fp, dtype=torch.float32)
    try:
        q, q_info, q_msgs = load(a.q)
    except Exception as e:  # noqa: BLE001
        print(f"FAIL: transformers could not load {a.q}: {type(e).__name__}: {e}")
        return 1
    problems = []
    for name, info, msgs in (("fp", fp_info, fp_msgs), ("q", q_info, q_msgs)):
        print(f"loading {name}: {type(fp if name == 'fp' else q).__name__}, "
              f"{len(msgs)} log/warning line(s)")
        for m in msgs:
            if not PROGRESS.search(m):
                print(f"  | {m}")
        p = loading_problems(info, msgs)
        print(f"  loading info: " + ("clean" if not p else "; ".join(p)))
        problems += [f"{name}: {x}" for x in p]
    qdtypes = sorted({str(p.dtype) for p in q.parameters()})
    qmods = [m for m in q.modules() if hasattr(m, "quantization_scheme")]
    qstat = sorted({str(getattr(m, "quantization_status", None)) for m in qmods})
    print(f"q: {type(q.config.quantization_config).__name__}, {len(qmods)} quantized modules "
          f"(status {', '.join(qstat)}), parameter dtypes {', '.join(qdtypes)}")
    if not qmods:
        problems.append("q: no module carries a quantization scheme (the checkpoint loaded as float?)")

    kl_sum = nll_fp = nll_q = 0.0
    agree = n_pred = 0
    with torch.no_grad():
        for s0 in range(0, n_hold, a.batch):
            x = torch.from_numpy(held[s0 : s0 + a.batch].astype(np.int64))
            lf = fp(input_ids=x).logits.float()
            lq = q(input_ids=x).logits.float()
            V = min(lf.shape[-1], lq.shape[-1])
            for i in range(x.shape[0]):  # one sequence at a time: V may be 50k
                f = lf[i, :-1, :V].double()
                g = lq[i, :-1, :V].double()
                tgt = x[i, 1:].unsqueeze(-1)
                lpf = torch.log_softmax(f, dim=-1)
                lpq = torch.log_softmax(g, dim=-1)
                kl_sum += (lpf.exp() * (lpf - lpq)).sum().item()
                nll_fp -= lpf.gather(-1, tgt).sum().item()
                nll_q -= lpq.gather(-1, tgt).sum().item()
                agree += (f.argmax(-1) == g.argmax(-1)).sum().item()
                n_pred += tgt.numel()

    hf = {
        "kl_divergence": kl_sum / n_pred,
        "perplexity_fp": math.exp(nll_fp / n_pred),
        "perplexity_w8a8": math.exp(nll_q / n_pred),
        "top1_agreement": agree / n_pred,
        "predicted_tokens": n_pred,
    }
    print()
    print(f"{'metric':<18} {'transformers':>16} {'aweq_report':>16} {'hf/report - 1':>14}")
    for k in ("kl_divergence", "perplexity_fp", "perplexity_w8a8", "top1_agreement", "predicted_tokens"):
        r = e2e.get(k)
        if r is None:
            print(f"{k:<18} {hf[k]:>16.10g} {'(absent)':>16}")
            continue
        print(f"{k:<18} {hf[k]:>16.10g} {r:>16.10g} {rel(hf[k], r):>+14.3e}")
    print(f"{'ppl_w8a8/ppl_fp-1':<18} {hf['perplexity_w8a8'] / hf['perplexity_fp'] - 1:>16.6e} "
          f"{e2e['perplexity_w8a8'] / e2e['perplexity_fp'] - 1:>16.6e}")

    fails = list(problems)
    if e2e.get("predicted_tokens") != n_pred:
        fails.append(f"predicted tokens {n_pred} != report {e2e.get('predicted_tokens')} "
                     "(another token file or --holdout?)")
    rk = rel(hf["kl_divergence"], e2e["kl_divergence"])
    if not abs(rk) <= a.kl_tol:
        fails.append(f"KL differs by {rk:+.3%} (tolerance {a.kl_tol:.1%})")
    rp = rel(hf["perplexity_fp"], e2e["perplexity_fp"])
    if not abs(rp) <= a.ppl_tol:
        fails.append(f"fp perplexity differs by {rp:+.4%} (tolerance {a.ppl_tol:.2%})")
    print()
    if fails:
        for f_ in fails:
            print(f"FAIL: {f_}")
        return 1
    print(f"OK: KL within {a.kl_tol:.1%} ({rk:+.3%}), fp perplexity within {a.ppl_tol:.2%} ({rp:+.5%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
