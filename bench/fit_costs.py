#!/usr/bin/env python3
"""The arithmetic of bench/fit_costs.sh (which see); no dependencies.

  fit_costs.py work NAME PLAN_TXT [CONFIG] -> a model's work counts (JSON line)
  fit_costs.py configs MODELS DIR          -> DIR/NAME/config.json of each saved model
  fit_costs.py time NAME THREADS OUT_TXT   -> a run's phase times (JSON line)
  fit_costs.py fit RUNS MODELS MACHINE THREADS HEADER MD
  fit_costs.py check RUNS MODELS MD TOLERANCE

The model (schedulers/aw_sched.h, aw_cost_model), per run of L layers:
  calibrate = L * (c_f * calib_flops + c_v * calib_values)
  quantize  = L * (q_p * params + q_b)
  validate  = L * (v_f * valid_flops + v_v * valid_values) + h_f * head_flops
Each phase is fitted on its own by non-negative least squares on relative
error (every run weighs the same whatever its length), over the medians of
the runs at the machine's threads. Parallel shares p come from the runs at 1
thread: t(1) / t(N) = 1 + p (N - 1).
"""
import datetime
import itertools
import json
import re
import statistics
import sys

PHASES = ("calibrate", "quantize", "validate")


def cmd_work(name, plan_txt, config=None):
    text = open(plan_txt).read()
    m = re.search(r"layers=(\d+)", text)
    w = re.search(r"work of one decoder block: calibrate (\S+) FLOP \+ (\S+) values, quantize (\S+) weights \+ "
                  r"(\S+) weights x sqrt\(d\) \((\d+) blocks again for the report's ranges\), validate (\S+) FLOP \+ (\S+) values; head (\S+) FLOP \+ (\S+) values", text)
    if not m or not w:
        sys.exit(f"fit_costs.py: no work counts in {plan_txt}")
    keys = ("calib_flops", "calib_values", "params", "params_root_d", "shown", "valid_flops", "valid_values",
            "head_flops", "head_values")
    rec = {"name": name, "layers": int(m.group(1))}
    rec.update({k: float(v) for k, v in zip(keys, w.groups())})
    d = re.search(r"d=(\d+) layers=\d+ heads=\d+ ffn=(\d+) vocab=(\d+)", text)
    rec.update(d=int(d.group(1)), ffn=int(d.group(2)), vocab=int(d.group(3)))
    t = re.search(r"(\d+) calibration \+ (\d+) held-out sequences of (\d+) tokens", text)
    rec.update(calib_seqs=int(t.group(1)), holdout_seqs=int(t.group(2)), seq_len=int(t.group(3)))
    add_planned(rec, text)
    if config:
        rec["config"] = json.load(open(config))
    print(json.dumps(rec))


def cmd_configs(models_path, out_dir):
    """Each saved model's folder with only its config.json (plans need no
    weights): the work counts of a refit come from the current planner."""
    import os
    for m in read_jsonl(models_path):
        os.makedirs(os.path.join(out_dir, m["name"]), exist_ok=True)
        with open(os.path.join(out_dir, m["name"], "config.json"), "w") as f:
            json.dump(m["config"], f)
        print(m["name"], m["calib_seqs"], m["holdout_seqs"])


def cmd_time(name, threads, out_txt):
    m = re.search(r"^time: load ([\d.]+) s, calibrate ([\d.]+) s, quantize ([\d.]+) s, validate ([\d.]+) s",
                  open(out_txt).read(), re.M)
    if not m:
        sys.exit(f"fit_costs.py: no time line in {out_txt}")
    load, cal, quant, val = map(float, m.groups())
    print(json.dumps({"name": name, "threads": int(threads), "load": load, "calibrate": cal, "quantize": quant,
                      "validate": val}))


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def medians(runs, threads):
    """{name: {phase: median seconds}, n runs} of the runs at `threads`."""
    out = {}
    for name in dict.fromkeys(r["name"] for r in runs if r["threads"] == threads):
        rs = [r for r in runs if r["name"] == name and r["threads"] == threads]
        out[name] = {p: statistics.median(r[p] for r in rs) for p in PHASES + ("load",)}
        out[name]["n"] = len(rs)
    return out


def features(m, phase):
    L = m["layers"]
    if phase == "calibrate":
        return [L * m["calib_flops"], L * m["calib_values"]]
    if phase == "quantize":
        n = L + m["shown"]  # the report's layers are examined again
        return [n * m["params"], n * m["params_root_d"]]
    return [L * m["valid_flops"], L * m["valid_values"], m["head_flops"], m["head_values"]]


def solve(a, b):
    """Least squares a x = b by normal equations (a few unknowns)."""
    n = len(a[0])
    ata = [[sum(r[i] * r[j] for r in a) for j in range(n)] for i in range(n)]
    atb = [sum(r[i] * y for r, y in zip(a, b)) for i in range(n)]
    # Gauss-Jordan with partial pivoting
    m = [row[:] + [v] for row, v in zip(ata, atb)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(m[r][c]))
        if abs(m[p][c]) < 1e-300:
            return None
        m[c], m[p] = m[p], m[c]
        for r in range(n):
            if r != c:
                f = m[r][c] / m[c][c]
                m[r] = [x - f * y for x, y in zip(m[r], m[c])]
    return [m[i][n] / m[i][i] for i in range(n)]


def nnls(rows, ys):
    """Non-negative least squares on relative error: every subset of the
    unknowns, the feasible one with the least sum of squares."""
    n = len(rows[0])
    a = [[x / y for x in r] for r, y in zip(rows, ys)]  # rows scaled by 1/measured
    b = [1.0] * len(ys)
    best, best_err = [0.0] * n, float("inf")
    for k in range(1, n + 1):
        for cols in itertools.combinations(range(n), k):
            x = solve([[r[c] for c in cols] for r in a], b)
            if x is None or min(x) < 0:
                continue
            full = [0.0] * n
            for c, v in zip(cols, x):
                full[c] = v
            err = sum((sum(f * v for f, v in zip(r, full)) - 1.0) ** 2 for r in a)
            if err < best_err - 1e-15:
                best, best_err = full, err
    return best


def predict(coef, m, phase):
    return sum(f * c for f, c in zip(features(m, phase), coef[phase]))


def loadavg():
    try:
        return ", ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "unknown"


def cmd_fit(runs_path, models_path, machine, threads, header, md):
    threads = int(threads)
    runs, models = read_jsonl(runs_path), {m["name"]: m for m in read_jsonl(models_path)}
    med = medians(runs, threads)
    names = list(med)
    coef = {}
    for ph in PHASES:
        coef[ph] = nnls([features(models[n], ph) for n in names], [med[n][ph] for n in names])
    # parallel shares from the 1-thread runs (median over models)
    par = {}
    one = medians(runs, 1) if threads > 1 else {}
    for ph in PHASES:
        ps = [(one[n][ph] / med[n][ph] - 1.0) / (threads - 1) for n in one if n in med and med[n][ph] > 0]
        par[ph] = min(1.0, max(0.0, statistics.median(ps))) if ps else 1.0
    c, q, v = coef["calibrate"], coef["quantize"], coef["validate"]
    esc = machine.replace("\\", "\\\\").replace('"', '\\"')
    with open(header, "w") as f:
        f.write(f"""/* aw_cost_cpu.h - private to aw_sched.c: the CPU cost model's constants.
 * GENERATED by bench/fit_costs.sh on {datetime.date.today()}: do not edit;
 * rerun: bash bench/fit_costs.sh BUILD_DIR. Measurements, fit and
 * residuals: bench/results/cost-model.md. */
#ifndef AW_COST_CPU_H
#define AW_COST_CPU_H

#define AW_COST_CPU_MACHINE "{esc}"
#define AW_COST_CPU_THREADS {threads}
#define AW_COST_CPU_CALIB_S_PER_FLOP {c[0]:.6e}
#define AW_COST_CPU_CALIB_S_PER_VALUE {c[1]:.6e}
#define AW_COST_CPU_QUANT_S_PER_PARAM {q[0]:.6e}
#define AW_COST_CPU_QUANT_S_PER_PARAM_ROOT_D {q[1]:.6e}
#define AW_COST_CPU_VALID_S_PER_FLOP {v[0]:.6e}
#define AW_COST_CPU_VALID_S_PER_VALUE {v[1]:.6e}
#define AW_COST_CPU_HEAD_S_PER_FLOP {v[2]:.6e}
#define AW_COST_CPU_HEAD_S_PER_VALUE {v[3]:.6e}
#define AW_COST_CPU_PARALLEL_CALIBRATE {par['calibrate']:.4f}
#define AW_COST_CPU_PARALLEL_QUANTIZE {par['quantize']:.4f}
#define AW_COST_CPU_PARALLEL_VALIDATE {par['validate']:.4f}

#endif
""")
    rate = lambda s: f"{1 / s / 1e9:.1f} GFLOP/s" if s > 0 else "not used"
    lines = [
        "# CPU cost model: measurements, fit, residuals",
        "",
        f"Generated by `bash bench/fit_costs.sh BUILD_DIR` on {datetime.date.today()}; rerun it after changes",
        "that move the CPU's speed (it rewrites `schedulers/aw_cost_cpu.h` and this file, rebuilds, and checks).",
        "",
        f"Machine: **{machine}**, {threads} threads (`nproc`). Single-rank runs at {threads} threads unless said",
        "(OpenBLAS and OpenMP threads set to match, `taskset` to as many CPUs), 128-token sequences, 8 per block.",
        "Times are medians over repeated runs (the machine is shared: builds run beside it); load average",
        f"(1, 5, 15 min) when this file was written: {loadavg()}.",
        "",
        "## Model",
        "",
        "Per run of L decoder blocks (work counts are the plan's own, `plan --backend cpu` prints them):",
        "",
        "    calibrate = L (c_f calib_flops + c_v calib_values)",
        "    quantize  = (L + S) params (q_p + q_r sqrt(d))",
        "    validate  = L (v_f valid_flops + v_v valid_values) + h_f head_flops + h_v head_values",
        "",
        "calib_flops = calibration tokens x (2 x linear weights + 4 x seq_len x d); valid_flops the same",
        "over 3 x the held-out tokens (fp stream, W8A8 stream, per-layer checks); values = tokens x the",
        "taps' channels (3d + ffn for OPT); head_flops = 4 x vocab x d x held-out tokens, head_values = 2 x vocab x held-out",
        "tokens (the fp and W8A8 logits' log-softmax); params = the",
        "linears' weights, whose cost each grows with sqrt(d) as the matrices outgrow the caches; S = the",
        "layers whose channel ranges the report draws (first, middle, last), examined once more. Each phase is",
        "fitted alone by non-negative least squares on relative error. At N threads a phase is scaled by",
        "(1 - p) + p x fit_threads / N, p its parallel share from runs at 1 thread.",
        "",
        "## Fitted constants",
        "",
        "| constant | value | as a rate |",
        "| --- | --- | --- |",
        f"| c_f calibrate s/FLOP | {c[0]:.4e} | {rate(c[0])} |",
        f"| c_v calibrate s/value | {c[1]:.4e} | |",
        f"| q_p quantize s/weight | {q[0]:.4e} | {q[0] * 1e9:.2f} ns per weight |",
        f"| q_r quantize s/(weight sqrt(d)) | {q[1]:.4e} | |",
        f"| v_f validate s/FLOP | {v[0]:.4e} | {rate(v[0])} |",
        f"| v_v validate s/value | {v[1]:.4e} | |",
        f"| h_f head s/FLOP | {v[2]:.4e} | {rate(v[2])} |",
        f"| h_v head s/value | {v[3]:.4e} | {v[3] * 1e9:.2f} ns per logit |",
        f"| parallel share: calibrate, quantize, validate | {par['calibrate']:.2f}, {par['quantize']:.2f}, "
        f"{par['validate']:.2f} | from 1 vs {threads} threads |",
        "",
        f"## Measurements and residuals ({threads} threads)",
        "",
        "| model | d | layers | ffn | vocab | seqs (calib + held-out) x len | runs | phase | measured s | fitted s | residual |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for n in names:
        m = models[n]
        for ph in PHASES:
            got, fit = med[n][ph], predict(coef, m, ph)
            lines.append(f"| {n} | {m['d']} | {m['layers']} | {m['ffn']} | {m['vocab']} | "
                         f"{m['calib_seqs']} + {m['holdout_seqs']} x {m['seq_len']} | {med[n]['n']} | {ph} | "
                         f"{got:.2f} | {fit:.2f} | {(fit - got) / got * 100:+.1f}% |")
    if one:
        lines += ["", "## Runs at 1 thread (parallel shares)", "",
                  "| model | phase | 1 thread s | %d threads s | share p |" % threads, "| --- | --- | --- | --- | --- |"]
        for n in one:
            for ph in PHASES:
                p = (one[n][ph] / med[n][ph] - 1.0) / (threads - 1)
                lines.append(f"| {n} | {ph} | {one[n][ph]:.2f} | {med[n][ph]:.2f} | {p:.2f} |")
        if min(par["calibrate"], par["validate"]) < 0.05:  # quantization is serial: its share says nothing
            lines += ["", f"A share near 0 means the runs at 1 thread were about as fast as at {threads}: the",
                      "machine was oversubscribed by other work while it measured (see `uptime` then), so",
                      "`plan --threads N` scales little. Rerun on a quiet machine for a meaningful share."]
    lines += ["", "All runs (seconds):", "", "| model | threads | load | calibrate | quantize | validate |",
              "| --- | --- | --- | --- | --- | --- |"]
    for r in runs:
        lines.append(f"| {r['name']} | {r['threads']} | {r['load']:.2f} | {r['calibrate']:.2f} | "
                     f"{r['quantize']:.2f} | {r['validate']:.2f} |")
    lines.append("")
    with open(md, "w") as f:
        f.write("\n".join(lines))
    print(open(header).read())


def parse_time(s):
    """fmt_time's "12.3 s", "1m 23s", "2h 05m" -> seconds."""
    s = s.strip()
    m = re.fullmatch(r"([\d.]+) s", s)
    if m:
        return float(m.group(1))
    m = re.fullmatch(r"(\d+)m (\d+)s", s)
    if m:
        return 60 * int(m.group(1)) + int(m.group(2))
    m = re.fullmatch(r"(\d+)h (\d+)m", s)
    if m:
        return 3600 * int(m.group(1)) + 60 * int(m.group(2))
    raise ValueError(s)


def cmd_check(runs_path, models_path, md, tol):
    """Plan (the compiled-in constants, as `plan --backend cpu` prints them)
    against the medians of measured runs; appends the table to MD."""
    tol = float(tol)
    runs, models = read_jsonl(runs_path), read_jsonl(models_path)
    threads = max(r["threads"] for r in runs)
    med = medians(runs, threads)
    bad = 0
    rows = []
    for m in models:
        n = m["name"]
        for ph in PHASES:
            planned = m["planned"][ph]
            got = med[n][ph]
            err = (planned - got) / got
            ok = abs(err) <= tol
            bad += not ok
            rows.append(f"| {n} | {m['d']} | {m['layers']} | {m['vocab']} | {med[n]['n']} | {ph} | {planned:.1f} | "
                        f"{got:.2f} | {err * 100:+.1f}% | {'ok' if ok else 'OFF'} |")
            print(f"{'ok ' if ok else 'OFF'} {n}: {ph}: plan {planned:.1f} s, measured {got:.2f} s ({err * 100:+.1f}%)")
    lines = ["", f"## Check: plan against measured runs the fit did not see (within {tol * 100:.0f}%)", "",
             "`aweq-dist plan --model M -n 1 --mem-per-rank 20 --backend cpu --seq-len 128 --batch 8 "
             "--calib-seqs 64 --holdout-seqs 16` against `aweq-dist --model M --out DIR` (medians), "
             f"{threads} threads:", "",
             "| model | d | layers | vocab | runs | phase | plan s | measured s | error | |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"] + rows
    lines.append("")
    lines.append(f"Result: {'every phase within' if not bad else f'{bad} phase(s) outside'} {tol * 100:.0f}%.")
    lines.append("")
    text = open(md).read()
    cut = text.find("\n## Check:")
    if cut >= 0:
        text = text[:cut] + "\n"
    with open(md, "w") as f:
        f.write(text.rstrip("\n") + "\n" + "\n".join(lines))
    print("fit_costs: check %s" % ("OK" if not bad else "FAILED"))
    return 1 if bad else 0


def add_planned(rec, text):
    rec["planned"] = {}
    for ph in PHASES:
        m = re.search(r"^  %s +(.+?)  \(" % ph, text, re.M)
        rec["planned"][ph] = parse_time(m.group(1))


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[0] == "work":
        cmd_work(*a[1:4])
    elif a[0] == "configs":
        cmd_configs(a[1], a[2])
    elif a[0] == "time":
        cmd_time(a[1], a[2], a[3])
    elif a[0] == "fit":
        cmd_fit(*a[1:7])
    elif a[0] == "check":
        sys.exit(cmd_check(*a[1:5]))
    else:
        sys.exit(__doc__)
