#!/usr/bin/env bash
# The LLaMA family end to end. A generated LLaMA with grouped-query attention
# and outlier channels: byte-identical checkpoints on 1-3 ranks in stage and
# replica layouts and on the staged device path, AWEQ below RTN end to end,
# bias correction declared in the output config. The real stories260K
# (tests/data/stories260K, converted by tests/fixtures/convert_llama2c.py):
# fp perplexity through `eval --text` equal to transformers' (pinned below,
# from bench/hf_ppl.py), a W8A8 run from its own text, and the checkpoint
# `eval` reads back. Bad LLaMA configs are refused naming file and field.
. "$(dirname "$0")/lib.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
STORIES="$SRC/tests/data/stories260K"
MPIRUN=(timeout 180 mpirun --oversubscribe)
TINY=(--shape llama-160m --hidden 64 --layers 6 --heads 8 --kv-heads 4 --ffn 172 --vocab 1000 --max-pos 128
      --calib-seqs 40 --calib-len 32 --quiet)
RUN=(--batch 4 --quiet)
sums() { checkpoint_sums "$1"; }

"$EXE" synth "${TINY[@]}" --out "$WORK/m" && ok "synth a LLaMA (8 heads over 4 KV heads)" || { bad synth; finish; exit 1; }
"$EXE" --model "$WORK/m" --out "$WORK/q1" "${RUN[@]}" >"$WORK/q1.txt" 2>&1 || bad "one rank: $(tail -3 "$WORK/q1.txt")"
sums "$WORK/q1" >"$WORK/q1.sha"
grep -q '"attention_bias": true' "$WORK/q1/config.json" && grep -q '"mlp_bias": true' "$WORK/q1/config.json" \
    && ok "bias correction's biases declared (attention_bias, mlp_bias)" || bad "config: $(cat "$WORK/q1/config.json")"
grep -q '"model.layers.0.mlp.down_proj.bias"' "$WORK/q1/model.safetensors.index.json" \
    && ok "down_proj has its corrected bias" || bad "no down_proj bias in the index"
for layout in "2 2 1" "2 1 2" "3 3 1" "3 1 3"; do
    set -- $layout
    out="$WORK/q_${1}_${2}_${3}"
    if "${MPIRUN[@]}" -n "$1" "$EXE" --model "$WORK/m" --out "$out" "${RUN[@]}" --stages "$2" --replicas "$3" \
        >"$out.txt" 2>&1; then
        diff <(sums "$out") "$WORK/q1.sha" >/dev/null && ok "mpirun -n $1 ($2 stages x $3 replicas): same bytes" \
            || bad "mpirun -n $1 ($2 x $3): $(diff <(sums "$out") "$WORK/q1.sha" | head -3)"
    else
        bad "mpirun -n $1 ($2 x $3) failed: $(tail -3 "$out.txt")"
    fi
done
if "${MPIRUN[@]}" -n 2 "$EXE" --model "$WORK/m" --out "$WORK/qs" "${RUN[@]}" --backend cpu-staged --stages 2 \
    >"$WORK/qs.txt" 2>&1; then
    diff <(sums "$WORK/qs") "$WORK/q1.sha" >/dev/null && ok "cpu-staged, 2 stages: same bytes as the CPU" \
        || bad "cpu-staged: $(diff <(sums "$WORK/qs") "$WORK/q1.sha" | head -3)"
else
    bad "cpu-staged failed: $(tail -3 "$WORK/qs.txt")"
fi

# AWEQ against RTN end to end, and eval reading the checkpoint back
"$EXE" --model "$WORK/m" --out "$WORK/rtn" --method rtn >"$WORK/rtn.txt" 2>&1 || bad "rtn run"
kl() { sed -n 's/.*KL(fp||W8A8) \([0-9.e+-]*\);.*/\1/p' "$1" | head -1; }
KA=$(kl "$WORK/q1.txt"); KR=$(kl "$WORK/rtn.txt")
awk -v a="$KA" -v r="$KR" 'BEGIN { exit !(a > 0 && a < r) }' && ok "KL: aweq $KA < rtn $KR" \
    || bad "KL: aweq $KA, rtn $KR"
grep -q '"attention_bias": false' "$WORK/rtn/config.json" && ! grep -q 'proj.bias' "$WORK/rtn/model.safetensors.index.json" \
    && ok "rtn without bias correction writes no biases" || bad "rtn config or biases"
"$EXE" eval --model "$WORK/q1" --tokens "$WORK/m/calibration.tokens" --holdout 0.2 >"$WORK/ev.txt" 2>&1 \
    && ok "eval reads the LLaMA W8A8 checkpoint: $(tail -1 "$WORK/ev.txt")" || bad "eval: $(tail -3 "$WORK/ev.txt")"

# stories260K: fp perplexity against transformers' LlamaForCausalLM on the
# same windows (bench/hf_ppl.py --seq-len 256 on stories.txt), within 0.1%
HF_PPL=${AWEQ_STORIES_HF_PPL:-5.088059}
"$EXE" eval --model "$STORIES" --text "$STORIES/stories.txt" --seq-len 256 >"$WORK/sp.txt" 2>"$WORK/sp.err" \
    || bad "eval stories260K: $(tail -2 "$WORK/sp.err")"
PPL=$(sed -n 's/.*fp wikitext2 ppl \([0-9.]*\).*/\1/p' "$WORK/sp.txt")
awk -v p="$PPL" -v h="$HF_PPL" 'BEGIN { d = p / h - 1; if (d < 0) d = -d; exit !(d < 0.001) }' \
    && ok "stories260K fp perplexity $PPL, transformers $HF_PPL" || bad "stories260K perplexity $PPL vs $HF_PPL"
head -n 400 "$STORIES/stories.txt" >"$WORK/calib.txt"
if "$EXE" --model "$STORIES" --calib-text "$WORK/calib.txt" --calib-samples 32 --calib-len 128 --out "$WORK/sq" \
    --quiet >"$WORK/sq.txt" 2>&1; then
    ok "stories260K W8A8 from its own text: $(grep 'end to end' "$WORK/sq.txt")"
else
    bad "stories260K run: $(tail -3 "$WORK/sq.txt")"
fi
cmp -s "$STORIES/tokenizer.json" "$WORK/sq/tokenizer.json" && ok "tokenizer.json copied to the output" \
    || bad "tokenizer.json not copied"
# the real model from a token file, in stage and replica layouts: same bytes
"$EXE" tokenize --model "$STORIES" --text "$WORK/calib.txt" --calib-samples 24 --calib-len 128 --holdout 0.25 \
    --out "$WORK/st.tok" >/dev/null 2>&1 || bad "tokenize stories"
"$EXE" --model "$STORIES" --calib "$WORK/st.tok" --holdout 0.25 --out "$WORK/st1" --quiet >/dev/null 2>&1 \
    || bad "stories260K from tokens, one rank"
for layout in "3 3 1" "2 1 2"; do
    set -- $layout
    out="$WORK/st_${1}_${2}_${3}"
    "${MPIRUN[@]}" -n "$1" "$EXE" --model "$STORIES" --calib "$WORK/st.tok" --holdout 0.25 --out "$out" --quiet \
        --stages "$2" --replicas "$3" >"$out.txt" 2>&1 || bad "stories260K mpirun -n $1: $(tail -3 "$out.txt")"
    diff <(sums "$out") <(sums "$WORK/st1") >/dev/null \
        && ok "stories260K, mpirun -n $1 ($2 stages x $3 replicas): same bytes as one rank" \
        || bad "stories260K -n $1 ($2 x $3): $(diff <(sums "$out") <(sums "$WORK/st1") | head -3)"
done

# a Hub name found in the Hugging Face cache: models--ORG--NAME/snapshots/REV
mkdir -p "$WORK/hub/models--meta-llama--stories260K/snapshots/abc123" "$WORK/hub/models--meta-llama--stories260K/refs"
cp "$STORIES"/* "$WORK/hub/models--meta-llama--stories260K/snapshots/abc123/"
echo abc123 >"$WORK/hub/models--meta-llama--stories260K/refs/main"
HF_HUB_CACHE="$WORK/hub" "$EXE" tokenize --model meta-llama/stories260K --text "$WORK/calib.txt" --calib-samples 4 \
    --calib-len 64 --out "$WORK/hub.tok" >"$WORK/hub.txt" 2>&1 \
    && ok "meta-llama/stories260K found in the Hugging Face cache" || bad "Hub name: $(tail -2 "$WORK/hub.txt")"

# bad LLaMA configs: one line naming the file and the field
bad_cfg() {
    local name=$1 needle=$2 edit=$3
    rm -rf "$WORK/b" && cp -r "$WORK/m" "$WORK/b"
    python3 -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); $edit; json.dump(c, open(p, 'w'))" \
        "$WORK/b/config.json"
    expect_fail "$name" "$needle" "$EXE" --model "$WORK/b" --out "$WORK/bq" --quiet
}
bad_cfg "unknown architecture" "model_type 'mistral'" "c['model_type']='mistral'"
bad_cfg "rope_scaling llama3" "rope_scaling of type 'llama3'" \
    "c['rope_scaling']={'rope_type':'llama3','factor':8.0}"
bad_cfg "hidden_act gelu" "hidden_act 'gelu'" "c['hidden_act']='gelu'"
bad_cfg "heads over kv heads" "num_key_value_heads 3" "c['num_key_value_heads']=3"
bad_cfg "hidden not divisible" "not divisible by num_attention_heads" "c['num_attention_heads']=7"
rm -rf "$WORK/b" && cp -r "$WORK/m" "$WORK/b"
python3 - "$WORK/b/model.safetensors" <<'PY'
import json, struct, sys
p = sys.argv[1]
b = open(p, 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
h['model.layers.1.mlp.gate_prox.weight'] = h.pop('model.layers.1.mlp.gate_proj.weight')
s = json.dumps(h, separators=(',', ':')).encode()
s += b' ' * (n - len(s)) if len(s) <= n else b''
assert len(s) == n
open(p, 'wb').write(b[:8] + s + b[8 + n:])
PY
expect_fail "missing tensor of the family" "model.layers.1.mlp.gate_proj.weight" \
    "$EXE" --model "$WORK/b" --out "$WORK/bq" --quiet
[ -e "$WORK/bq" ] && bad "a failed run left $WORK/bq" || ok "no output folder after the failures"
finish
