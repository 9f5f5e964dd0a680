"""Two checkpoints of the same model side by side: how far their tensors
moved (bench/cpu_precision.sh: fp32 against bf16 calibration).

    python bench/ckpt_diff.py A_DIR B_DIR

Per kind of tensor (the name's last part: input_scale, weight_scale,
weight, bias; INT8 and floating-point weights apart): how many are
identical, and for the others the share of INT8 codes that differ (and by
how much at most), or the largest difference relative to the tensor's
largest magnitude.
"""
import glob
import os
import sys

import numpy as np
from safetensors.numpy import load_file


def load(d):
    t = {}
    for f in sorted(glob.glob(os.path.join(d, "*.safetensors"))):
        t.update(load_file(f))
    return t


def main():
    a, b = load(sys.argv[1]), load(sys.argv[2])
    groups = {}
    for k in sorted(a):
        if k not in b:
            continue
        kind = k.rsplit(".", 1)[-1]
        if a[k].dtype == np.int8:
            kind += " (INT8)"
        elif kind == "weight":
            kind += " (floating point)"
        groups.setdefault(kind, []).append(k)
    for kind, keys in groups.items():
        same = sum(np.array_equal(a[k], b[k]) for k in keys)
        if kind.endswith("(INT8)"):
            share = [np.mean(a[k] != b[k]) for k in keys]
            step = max(int(np.max(np.abs(a[k].astype(np.int32) - b[k].astype(np.int32)))) for k in keys)
            print(f"{kind}: {len(keys)} tensors, {same} identical; codes that differ: "
                  f"{100 * np.mean(share):.2f}% on average, {100 * np.max(share):.2f}% at most, "
                  f"by at most {step}")
        else:
            rel = []
            for k in keys:
                x, y = a[k].astype(np.float64), b[k].astype(np.float64)
                rel.append(np.max(np.abs(x - y)) / max(np.max(np.abs(x)), 1e-30))
            print(f"{kind}: {len(keys)} tensors, {same} identical; largest difference / largest value: "
                  f"median {np.median(rel):.2e}, max {np.max(rel):.2e}")


if __name__ == "__main__":
    main()
