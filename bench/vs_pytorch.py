#!/usr/bin/env python3
"""aweq-dist against PyTorch/transformers doing the same work, alternating A/B.

    python bench/vs_pytorch.py --aweq BUILD/aweq-dist [--threads 1,2] [--pairs 3]
        [--shapes opt-125m,llama-160m] [--work build/vs-pytorch] [--md FILE]

Per generated model (aweq-dist synth --shape S; its calibration.tokens,
80 x 128, the run calibrates on the first 64 and validates on the last 16 at
the default --holdout 0.2, --batch 8) and per thread count T, it alternates
A (PyTorch) and B (aweq-dist) --pairs times (A B A B A B):

A, calibration: transformers AutoModelForCausalLM loaded in float32 (the F16
  checkpoint upcast), torch.set_num_threads(T), a forward hook on every
  nn.Linear but lm_head keeping per-input-channel max|x| (float32) and
  sum|x| (float64, as the program's sums), SmoothQuant get_act_scales style;
  the decoder only (model.model(input_ids), no logits: the program's
  calibration computes none) over the 64 calibration sequences in batches
  of 8, under torch.inference_mode(). Model loading is not timed; one
  untimed warm-up pass per model and T precedes the timed ones. References:
  the same decoder without hooks, and the whole model (with lm_head) with hooks.
A, validation: on the 16 held-out sequences, batches of 8: the fp32 model's
  forward with logits and the W8A8 fake-quant model's forward with logits
  (the program's output checkpoint: INT8 weights dequantized to fp32 once,
  before timing; each Linear's input rounded to its static per-tensor grid,
  clamp(round(x / input_scale), -128, 127) * input_scale, then F.linear),
  then per predicted token log-softmax of both (fp32), KL(fp || W8A8), both
  NLLs and top-1 agreement. Reference rows: the forwards without the metrics,
  and transformers' own compressed-tensors load of the same folder.
B: aweq-dist --model M --out OUT --quiet with OPENBLAS_NUM_THREADS=T and
  OMP_NUM_THREADS=T, one process per run; times from OUT/aweq_run.json
  (times_s.calibrate, times_s.validate).

Writes a markdown table to stdout and to --md (default
bench/results/vs-pytorch.md) with the command line, machine and versions.
"""
import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import struct
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def read_tokens(path):
    """docs/token-file.md; the checksum is the program's business (it reads the same file)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"AWEQTOK1", path
    version, vocab, n_seq, seq_len, _ = struct.unpack_from("<IIQII", data, 8)
    assert version == 1
    ids = np.frombuffer(data[32:32 + 4 * n_seq * seq_len], dtype="<u4").reshape(n_seq, seq_len)
    return ids.astype(np.int64)


def heldout_count(n_seq, h):
    x = h * n_seq
    k = int(np.floor(x + 0.5))
    return max(k, 1) if h > 0 else 0


def loadavg():
    try:
        return "%.2f" % os.getloadavg()[0]
    except OSError:
        return "?"


# ---------------------------------------------------------------- B: aweq-dist

def run_aweq(exe, model, T, out, extra=()):
    if os.path.exists(out):
        shutil.rmtree(out)
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(T), OMP_NUM_THREADS=str(T))
    t0 = time.perf_counter()
    p = subprocess.run([exe, "--model", model, "--out", out, "--quiet", *extra], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"aweq-dist failed ({p.returncode}):\n{p.stdout}")
    with open(os.path.join(out, "aweq_run.json")) as f:
        run = json.load(f)
    with open(os.path.join(out, "aweq_report.json")) as f:
        e2e = json.load(f)["end_to_end"]
    ts = run["times_s"]
    return {"calibrate": ts["calibrate"], "validate": ts["validate"], "wall": wall,
            "device": run["rank_layout"][0]["device"], "stdout": p.stdout, "e2e": e2e}


# ---------------------------------------------------------------- A: PyTorch

def load_fp(path):
    import torch
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return m.eval()


def make_fq_module():
    import torch
    import torch.nn.functional as F

    class FQLinear(torch.nn.Module):
        """W8A8 fake quantization: static per-tensor input grid, dequantized INT8 weight."""

        def __init__(self, w, b, s_in):
            super().__init__()
            self.register_buffer("weight", w)
            self.register_buffer("bias", b)
            self.s = float(s_in)
            self.inv = 1.0 / self.s

        def forward(self, x):
            xq = torch.clamp(torch.round(x * self.inv), -128.0, 127.0) * self.s
            return F.linear(xq, self.weight, self.bias)

    return FQLinear


def load_q_fakequant(fp_dir, q_dir):
    """The program's output folder as a float32 model whose Linears fake-quantize."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM

    FQLinear = make_fq_module()
    sd = {}
    for fn in sorted(os.listdir(q_dir)):
        if fn.endswith(".safetensors"):
            sd.update(load_file(os.path.join(q_dir, fn)))
    cfg = AutoConfig.from_pretrained(fp_dir)  # the fp config: no quantization_config
    with open(os.path.join(q_dir, "config.json")) as f:
        qcfg = json.load(f)
    for k in ("attention_bias", "mlp_bias", "enable_bias"):  # bias correction may add biases
        if k in qcfg:
            setattr(cfg, k, qcfg[k])
    m = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
    plain = {k: v.float() for k, v in sd.items()
             if not (k.endswith(".weight_scale") or k.endswith(".input_scale") or v.dtype == torch.int8)}
    missing, unexpected = m.load_state_dict(plain, strict=False)
    qnames = {k[: -len(".weight")] for k, v in sd.items() if v.dtype == torch.int8}
    n = 0
    for name, mod in list(m.named_modules()):
        if name not in qnames:
            continue
        w = sd[name + ".weight"].float() * sd[name + ".weight_scale"].float()
        b = sd.get(name + ".bias")
        b = b.float() if b is not None else None
        fq = FQLinear(w.contiguous(), b, sd[name + ".input_scale"].float().item())
        parent, _, child = name.rpartition(".")
        setattr(m.get_submodule(parent), child, fq)
        n += 1
    missing = [k for k in missing if k.rsplit(".", 1)[0] not in qnames and k != "lm_head.weight"]
    if missing or unexpected:
        sys.exit(f"{q_dir}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    if getattr(m.config, "tie_word_embeddings", False):
        m.tie_weights()
    return m, n


def load_q_ct(q_dir):
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_pretrained(q_dir).eval()


def calib_pass(model, ids, batch, hooks, decoder_only):
    import torch
    stats = {}
    handles = []
    if hooks:
        def mk(name):
            def hook(mod, inp, out):
                x = inp[0]
                x = x.reshape(-1, x.shape[-1]).abs()
                mx = x.amax(0)
                sm = x.sum(0, dtype=torch.float64)
                if name in stats:
                    a, s = stats[name]
                    torch.maximum(a, mx, out=a)
                    s += sm
                else:
                    stats[name] = [mx, sm]
            return hook
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.Linear) and not name.endswith("lm_head"):
                handles.append(mod.register_forward_hook(mk(name)))
    t0 = time.perf_counter()
    with torch.inference_mode():
        for s0 in range(0, ids.shape[0], batch):
            x = torch.from_numpy(ids[s0:s0 + batch])
            if decoder_only:
                model.model(input_ids=x, use_cache=False)
            else:
                model(input_ids=x, use_cache=False)
    dt = time.perf_counter() - t0
    for h in handles:
        h.remove()
    return dt, len(stats)


def val_pass(fp, q, ids, batch, metrics):
    import torch
    kl = nll_fp = nll_q = 0.0
    agree = n = 0
    t0 = time.perf_counter()
    with torch.inference_mode():
        for s0 in range(0, ids.shape[0], batch):
            x = torch.from_numpy(ids[s0:s0 + batch])
            lf = fp(input_ids=x, use_cache=False).logits
            lq = q(input_ids=x, use_cache=False).logits
            if not metrics:
                continue
            V = min(lf.shape[-1], lq.shape[-1])
            f = torch.log_softmax(lf[:, :-1, :V], dim=-1)
            g = torch.log_softmax(lq[:, :-1, :V], dim=-1)
            tgt = x[:, 1:].unsqueeze(-1)
            kl += (f.exp() * (f - g)).sum(dtype=torch.float64).item()
            nll_fp -= f.gather(-1, tgt).sum(dtype=torch.float64).item()
            nll_q -= g.gather(-1, tgt).sum(dtype=torch.float64).item()
            agree += (f.argmax(-1) == g.argmax(-1)).sum().item()
            n += tgt.numel()
    dt = time.perf_counter() - t0
    m = None
    if metrics and n:
        m = {"kl_divergence": kl / n, "perplexity_fp": float(np.exp(nll_fp / n)),
             "perplexity_w8a8": float(np.exp(nll_q / n)), "top1_agreement": agree / n,
             "predicted_tokens": n}
    return dt, m


# ---------------------------------------------------------------- reporting

WHAT = """## What each side computes

Same model folder, same token file, same batching (8 sequences of 128 tokens per
forward), same thread count T (torch.set_num_threads(T) for A;
OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = T for B, which runs one rank).

**Calibration.** A: transformers' decoder (`model.model(input_ids)`, no
lm_head, no logits), fp32 weights (the F16 checkpoint upcast at load, not
timed), default attention implementation (sdpa), `torch.inference_mode()`,
`use_cache=False`, over the 64 calibration sequences; a forward hook on every
`nn.Linear` but lm_head takes `x.abs()` of its input and keeps per channel
`amax` (fp32) and `sum` (fp64), SmoothQuant's `get_act_scales` with the sum
added. q/k/v (and LLaMA's gate/up) each see the same input, so that input is
reduced once per Linear, as `get_act_scales` does. One untimed warm-up batch
precedes the timed passes. B: the `calibrate` phase of `aweq-dist --model M
--out OUT --quiet`: the embedding and the decoder blocks in fp32 over the
same 64 sequences (weights kept F16 in memory and widened to fp32 at every
product, which A does once at load), per-channel max|x| (fp32) and sum|x|
(fp64) and a non-finite count at each of the block's 4 distinct linear
inputs (once for q/k/v), in a fresh process, no warm-up.

**Validation.** A: on the 16 held-out sequences, per batch of 8: the fp32
model's forward with logits; the fake-quant W8A8 model's forward with logits
(the program's output folder: every quantized Linear's INT8 weight times its
weight_scale, dequantized once before timing; its input rounded to its
static per-tensor grid, `clamp(round(x / input_scale), -128, 127) *
input_scale`, then `F.linear` in fp32; the folded norms and biases of the
output); then over the 127 predicted positions per sequence log-softmax of
both logits (fp32), KL(fp || W8A8), the two NLLs (fp64 sums) and top-1
agreement. B: the `validate` phase: the fp stream and the W8A8 stream (real
INT8 x INT8 -> INT32 products, inputs quantized to INT8 and outputs
dequantized) through every block, both streams' logits in chunks of 128 rows
and the same end-to-end sums (log-softmax, KL, NLLs, top-1), **plus per-layer
checks A does not do**: at every Linear of the fp stream (as of 2fb59b9), the
Linear again in fp32 (its weights widened again) and in W8A8 on the same input
(divided by the equalization factors), the squared-error and per-output-column error sums
(the per-layer table the program prints). So B does about two extra Linear
products per Linear of the fp stream; the ratio understates B's speed on
equal work.
"""


def med(xs):
    return statistics.median(xs)


def fmt(xs):
    return ", ".join("%.2f" % x for x in xs)


def machine_info(exe, py):
    import torch
    import transformers
    lines = []
    try:
        lscpu = subprocess.run(["lscpu"], stdout=subprocess.PIPE, text=True).stdout.splitlines()[:20]
    except OSError:
        lscpu = ["lscpu not available"]
    try:
        import compressed_tensors
        ct = compressed_tensors.__version__
    except Exception as e:  # noqa: BLE001
        ct = f"not importable ({type(e).__name__})"
    lines.append(f"- python {platform.python_version()} ({py}); torch {torch.__version__} "
                 f"(intra-op threads set per row; {torch.backends.mkldnn.is_available() and 'oneDNN available' or 'no oneDNN'}), "
                 f"transformers {transformers.__version__}, compressed-tensors {ct}, numpy {np.__version__}")
    cfg = torch.__config__.show().splitlines()
    blas = [l.strip(" -") for l in cfg if "CPU capability" in l]
    blas += [w.strip(" ,") for l in cfg for w in l.replace(": ", ", ").split(", ")
             if w.strip().startswith(("BLAS_INFO=", "USE_MKLDNN=", "USE_OPENMP="))]
    if blas:
        lines.append("- torch build: " + "; ".join(blas))
    try:
        git = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
        lines.append(f"- aweq-dist: {exe}, sources at {git}{' with uncommitted changes' if dirty else ''}")
    except OSError:
        pass
    return lines, lscpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--aweq", default=os.path.join(REPO, "build", "aweq-dist"))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--shapes", default="opt-125m,llama-160m")
    ap.add_argument("--work", default=os.path.join(REPO, "build", "vs-pytorch"))
    ap.add_argument("--md", default=os.path.join(REPO, "bench", "results", "vs-pytorch.md"))
    ap.add_argument("--batch", type=int, default=8, help="the program's --batch (default 8)")
    ap.add_argument("--holdout", type=float, default=0.2, help="the program's --holdout (default 0.2)")
    ap.add_argument("--bf16", type=int, default=1,
                    help="1: also time the program's calibration with --cpu-precision bf16 in each pair")
    ap.add_argument("--refs", type=int, default=1, help="1: time the reference rows once per model and T")
    ap.add_argument("--cmdline", default=None, help="the command line to record (the wrapper's)")
    a = ap.parse_args()

    import torch
    import transformers
    transformers.logging.set_verbosity_error()
    exe = os.path.abspath(a.aweq)
    threads = [int(t) for t in a.threads.split(",")]
    os.makedirs(a.work, exist_ok=True)
    cmdline = a.cmdline or " ".join(shlex.quote(x) for x in [sys.executable] + sys.argv)
    info, lscpu = machine_info(exe, sys.executable)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    load_before = os.getloadavg()

    rows = []    # (model, T, what, A list, B list, ratio)
    notes = []
    checks = []
    backend = None
    for shape in a.shapes.split(","):
        mdir = os.path.join(a.work, shape)
        if not os.path.exists(os.path.join(mdir, "calibration.tokens")):
            if os.path.exists(mdir):
                shutil.rmtree(mdir)
            subprocess.run([exe, "synth", "--shape", shape, "--out", mdir, "--quiet"], check=True)
        ids = read_tokens(os.path.join(mdir, "calibration.tokens"))
        n_hold = heldout_count(ids.shape[0], a.holdout)
        cal, held = ids[: ids.shape[0] - n_hold], ids[ids.shape[0] - n_hold:]
        # the quantized folder PyTorch's W8A8 side loads: one untimed run
        qdir = os.path.join(a.work, shape + "-q")
        r0 = run_aweq(exe, mdir, threads[0], qdir)
        backend = r0["device"]
        print(f"[{shape}] {cal.shape[0]} calibration + {held.shape[0]} held-out sequences x {ids.shape[1]} tokens; "
              f"backend: {backend}", flush=True)
        fp = load_fp(mdir)
        q, nq = load_q_fakequant(mdir, qdir)
        try:
            qct = load_q_ct(qdir)
        except Exception as e:  # noqa: BLE001
            qct = None
            notes.append(f"{shape}: transformers could not load the output with compressed-tensors: {e}")
        nlin = sum(1 for n_, m_ in fp.named_modules()
                   if isinstance(m_, torch.nn.Linear) and not n_.endswith("lm_head"))
        # correctness of the fake-quant side against the program's own numbers (untimed)
        torch.set_num_threads(threads[0])
        _, mt = val_pass(fp, q, held, a.batch, True)
        e = r0["e2e"]
        checks.append(f"| {shape} | {nq} | {mt['kl_divergence']:.6f} / {e['kl_divergence']:.6f} | "
                      f"{mt['perplexity_fp']:.6g} / {e['perplexity_fp']:.6g} | "
                      f"{mt['perplexity_w8a8']:.6g} / {e['perplexity_w8a8']:.6g} | "
                      f"{mt['top1_agreement']:.2%} / {e['top1_agreement']:.2%} | "
                      f"{mt['predicted_tokens']} / {e['predicted_tokens']} |")
        for T in threads:
            torch.set_num_threads(T)
            # warm-up, untimed
            calib_pass(fp, cal[: a.batch], a.batch, True, True)
            val_pass(fp, q, held[: a.batch], a.batch, True)
            A = {k: [] for k in ("cal_hooks", "cal_nohooks", "cal_full", "val", "val_nomet", "val_ct")}
            B = {"calibrate": [], "validate": [], "wall": []}
            B16 = []  # --cpu-precision bf16's calibrate, a third run per pair
            loads = []
            for i in range(a.pairs):
                loads.append(loadavg())
                dt, nh = calib_pass(fp, cal, a.batch, True, True)
                assert nh == nlin, (nh, nlin)
                A["cal_hooks"].append(dt)
                A["val"].append(val_pass(fp, q, held, a.batch, True)[0])
                r = run_aweq(exe, mdir, T, os.path.join(a.work, f"{shape}-run"))
                for k in B:
                    B[k].append(r[k])
                if a.bf16:
                    B16.append(run_aweq(exe, mdir, T, os.path.join(a.work, f"{shape}-run-bf16"),
                                        ("--cpu-precision", "bf16"))["calibrate"])
                print(f"[{shape} T={T} pair {i + 1}] torch calib {A['cal_hooks'][-1]:.2f} s "
                      f"valid {A['val'][-1]:.2f} s; "
                      f"aweq calibrate {r['calibrate']:.2f} s, validate {r['validate']:.2f} s; "
                      f"load avg {loads[-1]}", flush=True)
            # references, once each after the pairs (not alternated)
            if a.refs:
                A["cal_nohooks"].append(calib_pass(fp, cal, a.batch, False, True)[0])
                A["cal_full"].append(calib_pass(fp, cal, a.batch, True, False)[0])
                A["val_nomet"].append(val_pass(fp, q, held, a.batch, False)[0])
                if qct is not None and T == threads[0]:
                    A["val_ct"].append(val_pass(fp, qct, held, a.batch, True)[0])
                print(f"[{shape} T={T} refs] {A}", flush=True)
            ld = "load avg " + "/".join(loads)
            rows.append((shape, T, "**calibration**: decoder + hooks (A) vs `calibrate` (B)",
                         A["cal_hooks"], B["calibrate"], ld))
            if B16:
                rows.append((shape, T, "calibration with bf16 products: decoder + hooks, fp32 (A) vs `calibrate "
                             "--cpu-precision bf16` (B, a third run in each pair)", A["cal_hooks"], B16, ""))
            if A["cal_nohooks"]:
                rows.append((shape, T, "ref (1 run): decoder, no hooks vs `calibrate`", A["cal_nohooks"],
                             B["calibrate"], ""))
                rows.append((shape, T, "ref (1 run): whole model (lm_head) + hooks vs `calibrate`", A["cal_full"],
                             B["calibrate"], ""))
            rows.append((shape, T, "**validation**: fp + W8A8 fake-quant forwards, logits, metrics (A) vs "
                         "`validate` (B)", A["val"], B["validate"], ""))
            if A["val_nomet"]:
                rows.append((shape, T, "ref (1 run): the two forwards with logits, no metrics vs `validate`",
                             A["val_nomet"], B["validate"], ""))
            if A["val_ct"]:
                rows.append((shape, T, "ref (1 run): fp + compressed-tensors W8A8 (transformers' load), metrics vs "
                             "`validate`", A["val_ct"], B["validate"], ""))
        del fp, q, qct

    load_after = os.getloadavg()
    out = []
    out.append("# aweq-dist against PyTorch/transformers, same work, same tokens, same threads")
    out.append("")
    out.append(f"Run {started} with:")
    out.append("")
    out.append("    " + cmdline)
    out.append("")
    out.append(f"A = PyTorch (times in s, pair by pair), B = aweq-dist (the phase time of "
               f"`aweq_run.json`, one process per run); ratio = median A / median B (> 1: aweq-dist faster). "
               f"{a.pairs} alternating pairs (A B A B ...) per row group.")
    out.append("")
    out.append("| model | T | what | A (PyTorch) | B (aweq-dist) | median A | median B | A/B |")
    out.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for shape, T, what, xa, xb, ld in rows:
        out.append(f"| {shape} | {T} | {what} | {fmt(xa)} | {fmt(xb)} | {med(xa):.2f} | {med(xb):.2f} | "
                   f"**{med(xa) / med(xb):.2f}** |")
    out.append("")
    out.append("Load average (1 min) at the start of each pair, by model and T: " + "; ".join(
        f"{s} T={T}: {ld[len('load avg '):]}" for s, T, w, _, _, ld in rows if ld) +
        f". Whole run: {load_before[0]:.2f} before, {load_after[0]:.2f} after.")
    out.append("")
    out.append("Fake-quant side against the program's own end-to-end numbers (same held-out tokens; PyTorch / "
               "aweq_report.json):")
    out.append("")
    out.append("| model | fake-quant Linears | KL(fp‖W8A8) | ppl fp | ppl W8A8 | top-1 | predicted tokens |")
    out.append("| --- | --- | --- | --- | --- | --- | --- |")
    out += checks
    out.append("")
    out.append(WHAT)
    out.append("## Machine")
    out.append("")
    out += info
    out.append(f"- aweq-dist backend line: `{backend}`")
    out.append("- `lscpu | head -20`:")
    out.append("")
    out += ["      " + l for l in lscpu]
    for n_ in notes:
        out.append(f"- {n_}")
    text = "\n".join(out) + "\n"
    print()
    print(text)
    if a.md:
        os.makedirs(os.path.dirname(os.path.abspath(a.md)), exist_ok=True)
        with open(a.md + ".tmp", "w") as f:
            f.write(text)
        os.replace(a.md + ".tmp", a.md)
        print(f"wrote {a.md}")


if __name__ == "__main__":
    main()
