#!/usr/bin/env python3
"""aw_tokenizer against Hugging Face `tokenizers`, side by side in one run.

    python3 bench/tokenize_vs_hf.py BENCH_TOKENIZE MODEL_DIR [TEXT] [--rounds N]

BENCH_TOKENIZE is the built bench_tokenize program; MODEL_DIR a tokenizer
folder both read (tokenizer.json, or vocab.json + merges.txt; the latter
goes through transformers' AutoTokenizer to get HF's tokenizer); TEXT
defaults to wikitext-2's wiki.test.raw in shared data. Each round runs the C
side (best of 3 inside one process, file read and tokenizer loading not
timed) and then HF on one thread (RAYON_NUM_THREADS=1,
TOKENIZERS_PARALLELISM=false): one `encode` of the same text, best of 3,
with a freshly loaded tokenizer each round. The first call of each side
(cold word caches) is reported too.
Reports the medians over rounds, their ratio, checks the ids are equal, and
records the versions.
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"


def default_text():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", "..", "shared", "data", "wikitext-2", "wiki.test.raw")


def hf_tokenizer(model_dir):
    if os.path.exists(os.path.join(model_dir, "tokenizer.json")):
        from tokenizers import Tokenizer

        return Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json")), "tokenizers.Tokenizer.from_file"
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir).backend_tokenizer, "AutoTokenizer(...).backend_tokenizer"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bench")
    ap.add_argument("model_dir")
    ap.add_argument("text", nargs="?", default=default_text())
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()

    import tokenizers

    with open(a.text, encoding="utf-8", newline="") as f:
        text = f.read()
    nbytes = len(text.encode("utf-8"))
    tok, how = hf_tokenizer(a.model_dir)
    c_times, c_cold, hf_times, hf_cold = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        dump = os.path.join(tmp, "ids.u32")
        for _ in range(a.rounds):
            out = subprocess.run([a.bench, a.model_dir, a.text, "--runs", "3", "--dump", dump],
                                 check=True, capture_output=True, text=True).stdout
            line = [l for l in out.splitlines() if l.startswith("RESULT")][0]
            fields = dict(kv.split("=") for kv in line.split()[1:])
            c_times.append(float(fields["seconds"]))
            c_cold.append(float(fields["first"]))
            tok, _ = hf_tokenizer(a.model_dir)  # a fresh one: its word cache starts cold too
            best = 1e30
            for r in range(3):
                t0 = time.perf_counter()
                enc = tok.encode(text, add_special_tokens=True)
                dt = time.perf_counter() - t0
                if r == 0:
                    hf_cold.append(dt)
                best = min(best, dt)
            hf_times.append(best)
        with open(dump, "rb") as f:
            raw = f.read()
    c_ids = [int.from_bytes(raw[i:i + 4], "little") for i in range(0, len(raw), 4)]
    same = c_ids == enc.ids
    c_med, hf_med = statistics.median(c_times), statistics.median(hf_times)
    print(f"text: {a.text} ({nbytes} bytes, {len(enc.ids)} ids)")
    print(f"tokenizer: {a.model_dir}; HF via {how}")
    print(f"versions: tokenizers {tokenizers.__version__}, python {platform.python_version()}, "
          f"{platform.machine()} {platform.system()}")
    print(f"aw_tokenizer (C):   median {c_med * 1e3:8.2f} ms  {nbytes / c_med / 1e6:8.2f} MB/s  "
          f"{len(c_ids) / c_med / 1e6:6.2f} Mtokens/s")
    print(f"HF tokenizers 1thr: median {hf_med * 1e3:8.2f} ms  {nbytes / hf_med / 1e6:8.2f} MB/s  "
          f"{len(enc.ids) / hf_med / 1e6:6.2f} Mtokens/s")
    c_c, hf_c = statistics.median(c_cold), statistics.median(hf_cold)
    print(f"first call (cold caches): C {c_c * 1e3:.2f} ms, HF {hf_c * 1e3:.2f} ms, ratio {hf_c / c_c:.1f}x")
    print(f"ratio HF time / C time (best of 3): {hf_med / c_med:.1f}x; ids identical: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
