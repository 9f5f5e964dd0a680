#!/usr/bin/env python3
"""actq_ref.py - float64 reference of a layer with integer activations.

Runs the test program actq_layer (tests/kernels/actq_layer.c), which puts
one realistic layer (T 64, in 256, out 192, activations with outlier
channels, weights quantized at 4 bits group 128 symmetric) through the
program's forward path (aw_qlinear_ops) for W4A4 g128, W4A4 per-token and
W4A8 per-token, and writes the inputs, the weight codes, steps and zero
points, the bias and the program's output. This script recomputes, in pure
Python (float64, no numpy):

  the activation quantization (compressed-tensors' dynamic symmetric
  quantizer as aw_actq.h defines it): step = absmax / ((2^b - 1) / 2) as a
  FLOAT32 division (a double quotient of two floats rounded to float is the
  float quotient), 2^-23 when zero; code = clamp(rint(x / step)) with x /
  step a float32 division, rint half to even (Python's round());

  the product with the signed weights q - z: per block of inputs sharing
  both steps, the exact integer sum; the double sum acc * sx * sw over the
  blocks in order (each term multiplied left to right), + bias, rounded
  once to float32.

Checks: the program's codes and steps equal the recomputed ones exactly;
its output is within 1e-6 relative of the float64 recomputation (it is in
fact equal bit for bit: the same IEEE operations in the same order) and
within 1e-6 relative of the exact (rational) value of the same sum. Prints
the measured maxima. Exit 0 when every check holds.

Usage: actq_ref.py ACTQ_LAYER_EXE [WORKDIR]
"""
import math
import os
import struct
import subprocess
import sys
import tempfile
from fractions import Fraction

TOL = 1e-6
FLT_EPS = 2.0 ** -23


def f32(v):
    """v rounded to the nearest float32 (ties to even)."""
    return struct.unpack("<f", struct.pack("<f", v))[0]


class Reader:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, n):
        b = self.d[self.p:self.p + n]
        if len(b) != n:
            raise ValueError("file too short")
        self.p += n
        return b

    def i32(self, n=1):
        v = struct.unpack("<%di" % n, self.take(4 * n))
        return v if n > 1 else v[0]

    def f32s(self, n):
        return list(struct.unpack("<%df" % n, self.take(4 * n)))

    def u8s(self, n):
        return list(self.take(n))

    def i8s(self, n):
        return list(struct.unpack("<%db" % n, self.take(n)))


def groups(n, g):
    return (n + g - 1) // g if g > 0 else 1


def act_quant(x, T, n, bits, A):
    """codes (T*n) and steps (T*nga) of x, as aw_k_act_quant."""
    L = A if A > 0 else n
    nga = groups(n, A)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    half = ((1 << bits) - 1) / 2.0
    q, s = [0] * (T * n), [0.0] * (T * nga)
    for t in range(T):
        for g in range(nga):
            j0, j1 = g * L, min(g * L + L, n)
            row = x[t * n + j0:t * n + j1]
            if any(math.isnan(v) for v in row):
                s[t * nga + g] = float("nan")
                continue
            amax = max(abs(v) for v in row)
            st = f32(amax / half)
            if st == 0.0:
                st = FLT_EPS
            s[t * nga + g] = st
            for j in range(j0, j1):
                r = round(f32(x[t * n + j] / st))  # half to even
                q[t * n + j] = min(max(r, lo), hi)
    return q, s


def check_case(rd):
    T, n, out, wbits, W, abits, A = rd.i32(7)
    ngw, nga = groups(n, W), groups(n, A)
    x = rd.f32s(T * n)
    codes = rd.u8s(out * n)
    ws = rd.f32s(out * ngw)
    wz = rd.u8s(out * ngw)
    bias = rd.f32s(out)
    pq = rd.i8s(T * n)
    ps = rd.f32s(T * nga)
    y = rd.f32s(T * out)
    label = "W%dA%d wgroup %d agroup %s" % (wbits, abits, W, A if A else "token")

    q, s = act_quant(x, T, n, abits, A)
    ok = True
    if q != pq:
        bad = sum(1 for a, b in zip(q, pq) if a != b)
        print("%s: %d input codes differ from the program's" % (label, bad))
        ok = False
    if struct.pack("<%df" % len(s), *s) != struct.pack("<%df" % len(ps), *ps):
        print("%s: input steps differ from the program's" % label)
        ok = False

    wlen, alen = (W if W > 0 else n), (A if A > 0 else n)
    P = min(alen, wlen)
    nb = groups(n, P)
    wq = [codes[i * n + j] - wz[i * ngw + j // wlen] for i in range(out) for j in range(n)]
    worst_ref = worst_exact = 0.0
    equal = 0
    for t in range(T):
        xr = q[t * n:(t + 1) * n]
        for i in range(out):
            wr = wq[i * n:(i + 1) * n]
            acc_d = 0.0
            exact = Fraction(0)
            for k in range(nb):
                j0, j1 = k * P, min(k * P + P, n)
                a = sum(xa * wa for xa, wa in zip(xr[j0:j1], wr[j0:j1]))  # exact integer
                sx = s[t * nga + j0 // alen]
                sw = ws[i * ngw + j0 // wlen]
                acc_d += float(a) * sx * sw
                exact += Fraction(a) * Fraction(sx) * Fraction(sw)
            ref = f32(acc_d + bias[i])
            ex = exact + Fraction(bias[i])
            got = y[t * out + i]
            equal += struct.pack("<f", got) == struct.pack("<f", ref)
            for r, name in ((ref, "ref"), (float(ex), "exact")):
                if r == 0.0:
                    e = 0.0 if got == 0.0 else float("inf")
                else:
                    e = abs(got - r) / abs(r)
                if name == "ref":
                    worst_ref = max(worst_ref, e)
                else:
                    # against the rational value itself, not its double
                    e = float(abs(Fraction(got) - ex) / abs(ex)) if ex != 0 else e
                    worst_exact = max(worst_exact, e)
    print("%s: %d x %d -> %d: input codes and steps %s; output: %d of %d equal bit for bit to the "
          "float64 recomputation, max relative error %.3e; against the exact value %.3e"
          % (label, T, n, out, "equal" if ok else "DIFFER", equal, T * out, worst_ref, worst_exact))
    return ok and worst_ref <= TOL and worst_exact <= TOL


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    exe = sys.argv[1]
    work = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp(prefix="actq_ref.")
    path = os.path.join(work, "actq_layer.bin")
    subprocess.run([exe, path], check=True)
    with open(path, "rb") as fh:
        rd = Reader(fh.read())
    if rd.take(4) != b"AWAQ":
        print("actq_ref: not an actq_layer file")
        return 1
    cases = rd.i32()
    ok = all([check_case(rd) for _ in range(cases)])
    if rd.p != len(rd.d):
        print("actq_ref: %d trailing bytes" % (len(rd.d) - rd.p))
        ok = False
    os.remove(path)
    print("actq_ref: %s (tolerance %.0e relative)" % ("PASS" if ok else "FAIL", TOL))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
