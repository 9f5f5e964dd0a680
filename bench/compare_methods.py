#!/usr/bin/env python3
"""Quantize one model with every method and print the side-by-side table.

usage: compare_methods.py AWEQ_DIST MODEL_DIR WORK_DIR [--check]

Runs rtn, smoothquant (alpha 0.5), aweq without bias correction and aweq,
each writing its checkpoint and aweq_report.json under WORK_DIR, and prints
a markdown table. With --check it also asserts the claims of the single-rank
AWEQ issue and exits non-zero if one fails:
  - on every layer, AWEQ's relative error on the linears fed by a norm
    (q/k/v_proj and fc1 for OPT; q/k/v, gate and up for LLaMA) is at least
    5x lower than RTN's;
  - AWEQ's end-to-end KL is lower than RTN's and SmoothQuant's;
  - bias correction lowers the mean output error per channel on every layer.
"""
import json
import os
import subprocess
import sys
import time

RUNS = [
    ("RTN", ["--method", "rtn"]),
    ("SmoothQuant a=0.5", ["--method", "smoothquant", "--alpha", "0.5"]),
    ("AWEQ, no bias corr.", ["--method", "aweq", "--no-bias-correction"]),
    ("AWEQ", ["--method", "aweq"]),
]
# the linears fed by a norm, where the outlier channels are (OPT, LLaMA)
FED = ("q_proj", "k_proj", "v_proj", "fc1", "gate_proj", "up_proj")


def run(exe, model, out, args):
    t0 = time.time()
    subprocess.run([exe, "--model", model, "--out", out, "--quiet"] + args, check=True,
                   stdout=subprocess.DEVNULL)
    with open(os.path.join(out, "aweq_report.json")) as f:
        rep = json.load(f)
    return rep, time.time() - t0


def fed_mean(rep):
    v = [l["rel_error"] for l in rep["layers"] if l["name"].endswith(FED)]
    return sum(v) / len(v)


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    exe, model, work = sys.argv[1:4]
    check = "--check" in sys.argv[4:]
    reps = {}
    print("| method | norm-fed linears' rel. error (mean) | worst layer rel. error | KL(fp‖W8A8) | top-1 agreement | W8A8 / fp perplexity | time |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for i, (name, args) in enumerate(RUNS):
        rep, secs = run(exe, model, os.path.join(work, "out%d" % i), args)
        reps[name] = rep
        e = rep["end_to_end"]
        worst = max(l["rel_error"] for l in rep["layers"])
        print("| %s | %.4f | %.4f | %.4f | %.1f%% | %.4f | %.0f s |" % (
            name, fed_mean(rep), worst, e["kl_divergence"], 100 * e["top1_agreement"],
            e["perplexity_w8a8"] / e["perplexity_fp"], secs))
    if not check:
        return 0
    bad = []
    rtn, sq, aw = reps["RTN"], reps["SmoothQuant a=0.5"], reps["AWEQ"]
    by_name = {l["name"]: l for l in rtn["layers"]}
    worst_ratio = None
    for l in aw["layers"]:
        if l["name"].endswith(FED):
            r = by_name[l["name"]]["rel_error"] / l["rel_error"]
            worst_ratio = r if worst_ratio is None else min(worst_ratio, r)
            if r < 5:
                bad.append("%s: RTN/AWEQ error ratio %.2f < 5" % (l["name"], r))
        if not l["mean_channel_error"] < l["mean_channel_error_without_bias_correction"]:
            bad.append("%s: bias correction did not lower the mean channel error" % l["name"])
    for other, rep in (("RTN", rtn), ("SmoothQuant", sq)):
        if not aw["end_to_end"]["kl_divergence"] < rep["end_to_end"]["kl_divergence"]:
            bad.append("AWEQ KL not below %s's" % other)
    print("\nsmallest RTN/AWEQ error ratio on the norm-fed linears over all layers: %.1fx" % worst_ratio)
    for b in bad:
        print("FAILED: " + b)
    print("%d passed, %d failed" % (1 if not bad else 0, 1 if bad else 0))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
