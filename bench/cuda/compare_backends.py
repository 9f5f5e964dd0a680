#!/usr/bin/env python3
"""Compare two quantized checkpoints written by aweq-dist from the same model
and options, one with --backend cpu and one with --backend cuda.

What the backends may differ in, and so what this accepts:
  * INT8 weight codes: equal, except codes one step apart where the
    floating-point weight sat on a rounding boundary (the equalized weight
    and its scale come from float sums in another order on the GPU). Such
    flips are counted; any code more than one step apart fails, and so does a
    flip share above --max-flip-share (default 1e-4 of all codes).
  * scales (weight_scale, input_scale) and float tensors (biases after bias
    correction, folded LayerNorms): relative difference <= --max-rel
    (default 1e-3 of the tensor's max magnitude).
  * aweq_report.json: per-layer relative error and SQNR, perplexities, KL,
    top-1 agreement within --metric-tol (default 1%) relative.
Exit 0 when all hold, 1 otherwise; a table on stdout. Needs numpy.

  compare_backends.py OUT_CPU OUT_CUDA [--max-flip-share S] [--max-rel R] [--metric-tol T]
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

DT = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
      "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def tensors(folder):
    """name -> (dtype name, numpy array) over every shard of a checkpoint."""
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        shards = sorted(set(json.load(open(index))["weight_map"].values()))
    else:
        shards = ["model.safetensors"]
    out = {}
    for s in shards:
        with open(os.path.join(folder, s), "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            head = json.loads(f.read(n))
            data = f.read()
        for name, t in head.items():
            if name == "__metadata__":
                continue
            a, b = t["data_offsets"]
            raw = data[a:b]
            if t["dtype"] == "BF16":
                arr = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                arr = np.frombuffer(raw, DT[t["dtype"]])
            out[name] = (t["dtype"], arr.reshape(t["shape"]))
    return out


def rel(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cpu")
    ap.add_argument("cuda")
    ap.add_argument("--max-flip-share", type=float, default=1e-4)
    ap.add_argument("--max-rel", type=float, default=1e-3)
    ap.add_argument("--metric-tol", type=float, default=0.01)
    o = ap.parse_args()
    A, B = tensors(o.cpu), tensors(o.cuda)
    bad = []
    if set(A) != set(B):
        bad.append("tensor names differ: %s" % sorted(set(A) ^ set(B))[:5])
    codes = flips = far = 0
    worst_float = (0.0, "")
    for name in sorted(set(A) & set(B)):
        (da, a), (db, b) = A[name], B[name]
        if da != db or a.shape != b.shape:
            bad.append("%s: %s%s vs %s%s" % (name, da, a.shape, db, b.shape))
            continue
        if da == "I8":
            d = np.abs(a.astype(np.int16) - b.astype(np.int16))
            codes += d.size
            flips += int(np.count_nonzero(d == 1))
            nf = int(np.count_nonzero(d > 1))
            far += nf
            if nf:
                bad.append("%s: %d codes more than one step apart" % (name, nf))
        elif np.issubdtype(a.dtype, np.floating):
            x, y = a.astype(np.float64), b.astype(np.float64)
            scale = max(np.max(np.abs(x)) if x.size else 0.0, 1e-300)
            e = float(np.max(np.abs(x - y)) / scale) if x.size else 0.0
            if not e <= o.max_rel:
                bad.append("%s: max |diff| / max |x| = %.3g > %.1g" % (name, e, o.max_rel))
            if e > worst_float[0]:
                worst_float = (e, name)
        elif not np.array_equal(a, b):
            bad.append("%s: integer tensor differs" % name)
    share = flips / codes if codes else 0.0
    print("INT8 codes: %d, one-step flips %d (share %.3g, limit %.1g), further apart %d"
          % (codes, flips, share, o.max_flip_share, far))
    if share > o.max_flip_share:
        bad.append("flip share %.3g > %.1g" % (share, o.max_flip_share))
    print("float tensors: worst max|diff|/max|x| %.3g (%s), limit %.1g"
          % (worst_float[0], worst_float[1] or "-", o.max_rel))

    ra = json.load(open(os.path.join(o.cpu, "aweq_report.json")))
    rb = json.load(open(os.path.join(o.cuda, "aweq_report.json")))
    worst = (0.0, "")
    for k in ("perplexity_fp", "perplexity_w8a8", "kl_divergence", "top1_agreement"):
        e = rel(ra["end_to_end"][k], rb["end_to_end"][k])
        if e > worst[0]:
            worst = (e, "end_to_end." + k)
    for la, lb in zip(ra["layers"], rb["layers"]):
        for k in ("rel_error", "sqnr_db"):
            e = rel(la[k], lb[k])
            if e > worst[0]:
                worst = (e, la["name"] + "." + k)
    print("validation metrics: worst relative difference %.3g (%s), limit %.2g"
          % (worst[0], worst[1] or "-", o.metric_tol))
    if worst[0] > o.metric_tol:
        bad.append("metric %s differs by %.3g" % (worst[1], worst[0]))
    for b in bad[:20]:
        print("FAILED: " + b)
    print("OK" if not bad else "FAILED (%d)" % len(bad))
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
