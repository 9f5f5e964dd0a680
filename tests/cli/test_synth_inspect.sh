#!/usr/bin/env bash
# synth and inspect on a tiny generated model: sharding, determinism, the
# parameter count, and bad checkpoints each rejected with one clear line.
. "$(dirname "$0")/lib.sh"

TINY=(--hidden 64 --layers 3 --heads 4 --ffn 256 --vocab 1000 --max-pos 256
      --calib-seqs 8 --calib-len 32 --max-shard-size 60K --quiet)

"$EXE" --help | grep -q "aweq-dist synth" && ok "--help" || bad "--help"
rc=0; "$EXE" frobnicate 2>/dev/null || rc=$?; [ $rc -eq 2 ] && ok "unknown command exits 2" || bad "unknown command exit $rc"

"$EXE" synth "${TINY[@]}" --out "$WORK/a" && ok "synth tiny" || bad "synth tiny"
n_shards=$(ls "$WORK/a"/model-*-of-*.safetensors 2>/dev/null | wc -l)
[ "$n_shards" -ge 3 ] && ok "sharded into $n_shards files" || bad "expected >= 3 shards, got $n_shards"
[ -f "$WORK/a/model.safetensors.index.json" ] && ok "index written" || bad "no index"
[ -f "$WORK/a/calibration.tokens" ] && ok "calibration tokens written" || bad "no calibration.tokens"
ls "$WORK" | grep -q partial && bad "temporary folder left behind" || ok "no temporary folder left"

"$EXE" inspect --scan "$WORK/a" >"$WORK/inspect.txt" 2>&1 && ok "inspect tiny" || bad "inspect tiny: $(tail -3 "$WORK/inspect.txt")"
# 1000*64 + 258*64 + 3*(4*64*64 + 4*64 + 2*64*256 + 256 + 64 + 4*64) + 2*64
want=$((1000*64 + 258*64 + 3*(4*64*64 + 4*64 + 2*64*256 + 256 + 64 + 4*64) + 2*64))
want_fmt=$(echo "$want" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta')
grep -q "parameters: $want_fmt " "$WORK/inspect.txt" && ok "parameter count $want_fmt" || bad "parameter count: $(grep parameters "$WORK/inspect.txt")"
grep -q "checkpoint: OK" "$WORK/inspect.txt" && ok "checkpoint OK" || bad "checkpoint not OK"
grep -q "model.decoder.layers.2.fc1.weight *F16 *\[256, 64\]" "$WORK/inspect.txt" && ok "fc1 listed with dtype and shape" || bad "fc1 line missing"

# determinism: same options, same bytes; another seed, other bytes
"$EXE" synth "${TINY[@]}" --out "$WORK/b" && ok "synth again" || bad "synth again"
if diff -r "$WORK/a" "$WORK/b" >/dev/null; then ok "same seed, identical files"; else bad "same seed, files differ"; fi
"$EXE" synth "${TINY[@]}" --seed 99 --out "$WORK/c" || bad "synth seed 99"
if cmp -s "$WORK/a/model-00002-of-0000$n_shards.safetensors" "$WORK/c/model-00002-of-0000$n_shards.safetensors"; then
    bad "another seed gave the same weights"; else ok "another seed, other weights"; fi

expect_fail "output exists" "not empty" "$EXE" synth "${TINY[@]}" --out "$WORK/a"

# F32 model for value edits; one shard
"$EXE" synth "${TINY[@]}" --dtype f32 --max-shard-size 100M --out "$WORK/f32" && ok "synth f32" || bad "synth f32"

# bad checkpoints
cp -r "$WORK/a" "$WORK/trunc"
shard=$(ls "$WORK/trunc"/model-00002-*.safetensors)
truncate -s -100 "$shard"
expect_fail "truncated shard" "$(basename "$shard")" "$EXE" inspect "$WORK/trunc"

cp -r "$WORK/a" "$WORK/noshard"
rm "$WORK/noshard"/model-00001-*.safetensors
expect_fail "missing shard" "model-00001-of" "$EXE" inspect "$WORK/noshard"

cp -r "$WORK/a" "$WORK/escape"
sed -i 's/"model-00001-of-0000\([0-9]\).safetensors"/"..\/model-00001-of-0000\1.safetensors"/' "$WORK/escape/model.safetensors.index.json"
expect_fail "index escapes the folder" "../model-00001" "$EXE" inspect "$WORK/escape"

cp -r "$WORK/a" "$WORK/llama"
sed -i 's/"model_type": "opt"/"model_type": "llama"/' "$WORK/llama/config.json"
expect_fail "unknown architecture" "llama" "$EXE" inspect "$WORK/llama"

cp -r "$WORK/a" "$WORK/noconfig"
rm "$WORK/noconfig/config.json"
expect_fail "missing config" "config.json" "$EXE" inspect "$WORK/noconfig"

cp -r "$WORK/a" "$WORK/badtok"
printf 'X' | dd of="$WORK/badtok/calibration.tokens" bs=1 seek=40 conv=notrunc 2>/dev/null
expect_fail "corrupt calibration tokens" "calibration.tokens" "$EXE" inspect "$WORK/badtok"

# config says a larger hidden size than the tensors have
cp -r "$WORK/a" "$WORK/lying"
sed -i 's/"ffn_dim": 256/"ffn_dim": 512/' "$WORK/lying/config.json"
expect_fail "shape not as config says" "fc1.weight" "$EXE" inspect "$WORK/lying"

# a NaN in one weight: found by --scan, naming the tensor
cp -r "$WORK/f32" "$WORK/nan"
python3 - "$WORK/nan/model.safetensors" <<'PY'
import json, struct, sys
p = sys.argv[1]
with open(p, "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    hdr = json.loads(f.read(n))
    b, e = hdr["model.decoder.layers.1.fc2.weight"]["data_offsets"]
    f.seek(8 + n + b + 4 * 17)
    f.write(struct.pack("<f", float("nan")))
PY
"$EXE" inspect "$WORK/nan" >/dev/null 2>&1 && ok "NaN not read without --scan" || bad "inspect without --scan failed"
expect_fail "NaN weight" "layers.1.fc2.weight': element 17 is NaN" "$EXE" inspect --scan "$WORK/nan"

# 350m's post-LayerNorm layout is refused with the reason
expect_fail "opt-350m refused" "do_layer_norm_before" "$EXE" synth --shape opt-350m --out "$WORK/s350"
[ -e "$WORK/s350" ] && bad "refused synth left a folder" || ok "refused synth left nothing"

finish
