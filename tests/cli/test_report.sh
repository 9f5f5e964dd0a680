#!/usr/bin/env bash
# The report on tiny generated models: every run writes report.html and
# aweq_run.json; `aweq-dist report` redraws the same bytes and compares two
# methods; no plot is empty; the outlier channels fall by their factors in
# the JSON and on the page; the report is the same for 1 and 2 ranks (the
# run section aside); progress: a 96-block model prints one line per phase
# by default and one per block with --progress-every 0, and --log-json holds
# every event; --report-layers is checked; inspect describes a quantized
# checkpoint and what loads it.
. "$(dirname "$0")/lib.sh"
CHECK=(python3 "$(dirname "$0")/report_check.py")
MPI=(timeout 180 mpirun --oversubscribe -n 2)
TINY=(--hidden 64 --layers 4 --heads 4 --ffn 256 --vocab 1000 --max-pos 128 --calib-seqs 40 --calib-len 32 --quiet)
RUN=(--batch 4)

"$EXE" synth "${TINY[@]}" --out "$WORK/m" || { bad synth; finish; exit 1; }
if "$EXE" --model "$WORK/m" --out "$WORK/q" "${RUN[@]}" --log-json "$WORK/log.jsonl" >"$WORK/q.out" 2>"$WORK/q.err"; then
    ok "quantize with --log-json"
else
    bad "quantize: $(tail -3 "$WORK/q.err")"; finish; exit 1
fi
[ -s "$WORK/q/report.html" ] && [ -s "$WORK/q/aweq_run.json" ] && ok "report.html and aweq_run.json written" \
    || bad "no report.html or aweq_run.json: $(ls "$WORK/q")"

# the page: plots with data (4 fold points x 3 shown layers, 2 depth plots,
# 4 outlier plots, 2 bar charts), no script, no network; the equalization
# figure draws the JSON's numbers
"${CHECK[@]}" plots "$WORK/q/report.html" --min 20 >"$WORK/chk.txt" && ok "plots: $(grep -c '^ok' "$WORK/chk.txt") checks" \
    || bad "plots: $(grep FAILED "$WORK/chk.txt")"
"${CHECK[@]}" equalization "$WORK/q/report.html" "$WORK/q/aweq_report.json" --outliers 2 --min-factor 2 >"$WORK/chk.txt" \
    && ok "equalization: $(grep -c '^ok' "$WORK/chk.txt") checks: $(grep outlier "$WORK/chk.txt" | head -1 | cut -c1-160)" \
    || bad "equalization: $(grep FAILED "$WORK/chk.txt" | head -3)"
python3 - "$WORK/q/aweq_report.json" "$WORK/q/aweq_run.json" >"$WORK/json.txt" <<'PY' && ok "$(cat "$WORK/json.txt")" || bad "JSON: $(cat "$WORK/json.txt")"
import json, sys
rep, run = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
eq = rep["equalization"]
assert [l["layer"] for l in eq["layers"]] == [0, 2, 3], [l["layer"] for l in eq["layers"]]
assert len(eq["depth"]) == 4
assert "times_s" not in rep and "ranks" not in rep, "run data in the report"
assert run["ranks"] == 1 and set(run["times_s"]) == {"load", "calibrate", "quantize", "validate", "write"}
assert run["rank_layout"][0]["peak_memory_mb"] > 0
print("report JSON: shown layers 0, 2, 3, depth of 4; run record: 1 rank, 5 phase times, peak memory")
PY

# `aweq-dist report` redraws the run's page byte for byte, and by default
# into the folder itself
"$EXE" report "$WORK/q" --out "$WORK/again.html" >"$WORK/rep.out" 2>&1 || bad "report: $(cat "$WORK/rep.out")"
cmp -s "$WORK/again.html" "$WORK/q/report.html" && ok "report OUT --out FILE: the run's page byte for byte" \
    || bad "report OUT redraws a different page"
cp "$WORK/q/report.html" "$WORK/first.html"
"$EXE" report "$WORK/q" >"$WORK/rep.out" 2>&1 && grep -q "wrote $WORK/q/report.html" "$WORK/rep.out" \
    && cmp -s "$WORK/first.html" "$WORK/q/report.html" && ok "report OUT: rewrites OUT/report.html, same bytes" \
    || bad "report OUT default: $(cat "$WORK/rep.out")"

# the same report on 2 ranks in 2 stages: only the run section differs
if "${MPI[@]}" "$EXE" --model "$WORK/m" --out "$WORK/q2" "${RUN[@]}" --stages 2 --quiet >"$WORK/q2.txt" 2>&1; then
    cmp -s "$WORK/q/aweq_report.json" "$WORK/q2/aweq_report.json" && ok "aweq_report.json: 1 rank == 2 ranks" \
        || bad "aweq_report.json differs between 1 and 2 ranks"
    diff <(checkpoint_sums "$WORK/q") <(checkpoint_sums "$WORK/q2") >/dev/null \
        && ok "every file equal for 1 and 2 ranks, but aweq_run.json and report.html's run section" \
        || bad "files differ: $(diff <(checkpoint_sums "$WORK/q") <(checkpoint_sums "$WORK/q2") | head -3)"
    cmp -s "$WORK/q/report.html" "$WORK/q2/report.html" && bad "report.html has no run-specific part?" \
        || ok "report.html's run sections differ (2 ranks: $(grep -o 'rank 1: stage 1[^<]*' "$WORK/q2/report.html" | head -1))"
else
    bad "2 ranks: $(tail -3 "$WORK/q2.txt")"
fi

# progress: one line per phase here (each is well under 10 s), all events in the log
for ph in load calibrate quantize validate write; do
    n=$(grep -c "^aweq-dist: $ph: " "$WORK/q.err")
    [ "$n" -eq 1 ] && ok "progress: $ph: 1 line ($(grep "^aweq-dist: $ph: " "$WORK/q.err" | cut -c1-90))" \
        || bad "progress: $ph: $n lines: $(grep "^aweq-dist: $ph: " "$WORK/q.err" | head -3)"
done
python3 - "$WORK/log.jsonl" >"$WORK/log.txt" <<'PY' && ok "$(cat "$WORK/log.txt")" || bad "log: $(cat "$WORK/log.txt")"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
phases = [e["phase"] for e in ev if e["event"] == "phase_begin"]
assert phases == ["load", "calibrate", "quantize", "validate", "write"], phases
for ph in phases:
    steps = [e for e in ev if e["event"] == "progress" and e["phase"] == ph]
    end = [e for e in ev if e["event"] == "phase_end" and e["phase"] == ph][0]
    assert [s["done"] for s in steps] == list(range(1, steps[0]["total"] + 1)), ph
    assert end["done"] == end["total"] and end["lines"] == 1, end
assert [e for e in ev if e["event"] == "progress" and e["phase"] == "calibrate"][0]["total"] == 8
assert ev[-1]["event"] == "end" and ev[-1]["status"] == "ok", ev[-1]
assert all(ev[i]["t"] <= ev[i + 1]["t"] for i in range(len(ev) - 1))
print("--log-json: %d events, 5 phases, every block (8 of calibration), the last says ok" % len(ev))
PY

# a 96-block model: quick blocks, so one line a phase by default, however
# many blocks; a line per block with --progress-every 0
"$EXE" synth --hidden 32 --layers 96 --heads 2 --ffn 64 --vocab 300 --max-pos 64 --calib-seqs 10 --calib-len 16 \
    --quiet --out "$WORK/m96" || bad "synth 96 blocks"
"$EXE" --model "$WORK/m96" "${RUN[@]}" --log-json "$WORK/l96.jsonl" >/dev/null 2>"$WORK/p96.err" || bad "96 blocks: $(tail -2 "$WORK/p96.err")"
python3 - "$WORK/l96.jsonl" "$WORK/p96.err" >"$WORK/p96.txt" <<'PY' && ok "$(cat "$WORK/p96.txt")" || bad "96 blocks: $(cat "$WORK/p96.txt")"
import json, math, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
err = open(sys.argv[2]).read().splitlines()
out = []
for e in ev:
    if e["event"] != "phase_end":
        continue
    lines = sum(1 for l in err if l.startswith("aweq-dist: %s: " % e["phase"]))
    cap = math.floor(e["seconds"] / 10) + 1
    assert lines <= cap and lines == e["lines"], (e, lines)
    out.append("%s %d %s in %.1f s: %d line(s)" % (e["phase"], e["total"], e["unit"], e["seconds"], lines))
assert any(o.startswith("quantize 96 blocks") for o in out), out
print("96 blocks, default: " + "; ".join(out))
PY
"$EXE" --model "$WORK/m96" "${RUN[@]}" --progress-every 0 >/dev/null 2>"$WORK/p96b.err" || bad "96 blocks, every block"
[ "$(grep -c '^aweq-dist: quantize: ' "$WORK/p96b.err")" -eq 97 ] && ok "--progress-every 0: 96 quantize lines + the closing one" \
    || bad "--progress-every 0: $(grep -c '^aweq-dist: quantize: ' "$WORK/p96b.err") quantize lines"

# --report-layers
"$EXE" --model "$WORK/m" "${RUN[@]}" --report-layers 1,3 --out "$WORK/ql" --quiet >/dev/null 2>&1 || bad "--report-layers 1,3"
python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["equalization"]; sys.exit([l["layer"] for l in e["layers"]] != [1, 3])' \
    "$WORK/ql/aweq_report.json" && ok "--report-layers 1,3: layers 1 and 3 shown" || bad "--report-layers 1,3 not honoured"
python3 - "$WORK/q/aweq_report.json" "$WORK/ql/aweq_report.json" <<'PY' && ok "--report-layers changes only what is shown" \
    || bad "--report-layers changed more than the shown layers"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for r in (a, b):
    del r["equalization"]["layers"]
sys.exit(a != b)
PY
expect_fail "--report-layers 9 on 4 layers" "layer 9 does not exist" "$EXE" --model "$WORK/m" --report-layers 9 --quiet
rc=0; "$EXE" --model "$WORK/m" --report-layers 1,x >/dev/null 2>"$WORK/err.txt" || rc=$?
[ $rc -eq 2 ] && grep -q "report-layers '1,x'" "$WORK/err.txt" && ok "--report-layers 1,x: usage error" || bad "--report-layers 1,x: rc $rc"
expect_fail "--log-json in a missing folder" "$WORK/nope/log.jsonl" "$EXE" --model "$WORK/m" --log-json "$WORK/nope/log.jsonl" --quiet

# two methods side by side
"$EXE" --model "$WORK/m" "${RUN[@]}" --method rtn --out "$WORK/qr" --quiet >/dev/null 2>&1 || bad "rtn run"
"$EXE" report "$WORK/q" "$WORK/qr" --out "$WORK/cmp.html" >"$WORK/cmp.out" 2>&1 && grep -q "(2 reports)" "$WORK/cmp.out" \
    && ok "report of two folders: $(cat "$WORK/cmp.out")" || bad "report of two: $(cat "$WORK/cmp.out")"
"${CHECK[@]}" plots "$WORK/cmp.html" --min 44 >"$WORK/chk.txt" && ok "comparison page: $(head -1 "$WORK/chk.txt" | cut -c5-)" \
    || bad "comparison plots: $(grep FAILED "$WORK/chk.txt")"
grep -q '<td class="l">RTN</td>' "$WORK/cmp.html" && grep -q '<td class="l">AWEQ</td>' "$WORK/cmp.html" \
    && ok "comparison table names AWEQ and RTN" || bad "comparison table"
# an older report (no equalization section), named by its file
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); del r["equalization"]; json.dump(r, open(sys.argv[2], "w"))' \
    "$WORK/q/aweq_report.json" "$WORK/old.json"
"$EXE" report "$WORK/old.json" --out "$WORK/old.html" >/dev/null 2>&1 && grep -q "no per-channel ranges" "$WORK/old.html" \
    && "${CHECK[@]}" plots "$WORK/old.html" >/dev/null && ok "an older report: drawn, its missing figure said" || bad "older report"
expect_fail "report of a folder without a report" "aweq_report.json" "$EXE" report "$WORK/m"
rc=0; "$EXE" report >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] && ok "report without a folder: usage error" || bad "report without a folder: rc $rc"

# inspect on the quantized checkpoint, and on variants of its config
"$EXE" inspect "$WORK/q" >"$WORK/insp.txt" 2>&1 || bad "inspect: $(tail -2 "$WORK/insp.txt")"
grep -q "^    3  fc2       W8A8    I8     8/8   tensor" "$WORK/insp.txt" && grep -q "vLLM: yes: CompressedTensorsW8A8Int8 (static" "$WORK/insp.txt" \
    && grep -q "transformers: yes" "$WORK/insp.txt" && grep -q "aweq-dist eval: yes" "$WORK/insp.txt" \
    && grep -q "q/k/v_proj share one input scale in every layer: yes" "$WORK/insp.txt" && grep -q "checkpoint: OK (quantized)" "$WORK/insp.txt" \
    && ok "inspect: 24 linears W8A8, vLLM, transformers and eval load it" || bad "inspect: $(tail -12 "$WORK/insp.txt")"
variant() { # variant NAME PYTHON-EDIT: a copy of q with config.json's quantization_config edited
    cp -r "$WORK/q" "$WORK/$1"
    python3 - "$WORK/$1/config.json" "$2" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
g = c["quantization_config"]["config_groups"]["group_0"]
exec(sys.argv[2])
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
    "$EXE" inspect "$WORK/$1" >"$WORK/$1.txt" 2>&1
}
variant dyn 'g["input_activations"].update(strategy="token", dynamic=True)'
grep -q "vLLM: yes: CompressedTensorsW8A8Int8 (dynamic per-token" "$WORK/dyn.txt" && grep -q "aweq-dist eval: no: .*strategy \"token\"" "$WORK/dyn.txt" \
    && ok "inspect, dynamic per-token inputs: vLLM yes, eval no" || bad "inspect dyn: $(grep -A3 loadable "$WORK/dyn.txt")"
variant grp 'g["weights"].update(strategy="group", group_size=128)'
grep -q "vLLM: no: INT8 weights must be .*(config group group_0)" "$WORK/grp.txt" && grep -q "groups of 128" "$WORK/grp.txt" \
    && ok "inspect, grouped INT8 weights with activations: vLLM no, said why" || bad "inspect grp: $(grep -A3 loadable "$WORK/grp.txt")"
variant w4 'g["weights"].update(num_bits=4, strategy="group", group_size=128); g["input_activations"] = None; c["quantization_config"]["format"] = "pack-quantized"'
grep -q "vLLM: yes: CompressedTensorsWNA16 (W4A16)" "$WORK/w4.txt" && ok "inspect, a W4A16 pack-quantized config: vLLM WNA16" \
    || bad "inspect w4: $(grep -A3 loadable "$WORK/w4.txt")"
"$EXE" inspect "$WORK/m" >"$WORK/fp.txt" 2>&1 && grep -q "^checkpoint: OK$" "$WORK/fp.txt" && ok "inspect of the fp model unchanged" \
    || bad "inspect fp: $(tail -2 "$WORK/fp.txt")"
finish
