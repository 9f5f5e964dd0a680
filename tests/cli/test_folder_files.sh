#!/usr/bin/env bash
# The output folder is complete: every regular file of the input folder that
# is not weights (nor config.json, the report or calibration.tokens, which
# the program writes or uses itself) is copied byte for byte, links followed;
# weights in other formats, dot files and sub-folders are not. The same files
# whatever the rank layout. A folder with only pickled weights is refused
# with one line naming what it holds and how to convert it.
. "$(dirname "$0")/lib.sh"
MPIRUN=(timeout 180 mpirun --oversubscribe)
TINY=(--hidden 64 --layers 2 --heads 4 --ffn 256 --vocab 1000 --max-pos 128
      --calib-seqs 16 --calib-len 32 --quiet)
M="$WORK/m"

"$EXE" synth "${TINY[@]}" --out "$M" && ok "synth tiny" || { bad "synth tiny"; finish; exit 1; }
# the files the program writes itself: those of a run on the bare folder
"$EXE" --model "$M" --out "$WORK/q0" --quiet >/dev/null 2>&1 || bad "quantize the bare folder"
OWN=$(cd "$WORK/q0" && ls -A)

# files a Hugging Face folder carries besides its weights
COPIED=(tokenizer.json tokenizer_config.json special_tokens_map.json vocab.json merges.txt
        added_tokens.json tokenizer.model generation_config.json chat_template.jinja README.md LICENSE)
printf '{"version": "1.0", "model": {"type": "BPE"}}\n' >"$M/tokenizer.json"
printf '{"add_bos_token": true, "bos_token": "</s>", "tokenizer_class": "GPT2Tokenizer"}\n' >"$M/tokenizer_config.json"
printf '{"bos_token": "</s>", "eos_token": "</s>", "unk_token": "</s>", "pad_token": "<pad>"}\n' >"$M/special_tokens_map.json"
printf '{"<s>": 0, "<pad>": 1, "</s>": 2, "\\u0120the": 3}\n' >"$M/vocab.json"
printf '#version: 0.2\n\xc4\xa0 t\nh e\n' >"$M/merges.txt"
printf '{}\n' >"$M/added_tokens.json"
head -c 3000 /dev/urandom >"$M/tokenizer.model"   # binary: any byte value
printf '{"bos_token_id": 2, "eos_token_id": 2, "pad_token_id": 1}\n' >"$M/generation_config.json"
printf '# model card\n\nno trailing newline' >"$M/README.md"
printf 'license text\r\n' >"$M/LICENSE"
# a link, as in a Hugging Face cache snapshot: the content is copied
printf '{{ messages }}\n' >"$WORK/blob-template"
ln -s "$WORK/blob-template" "$M/chat_template.jinja"
# not copied: weights in other formats and their indexes, dot files,
# sub-folders, a dangling link
NOT_COPIED=(pytorch_model.bin pytorch_model.bin.index.json training_args.bin reshard-model_part-0.pt
            restored.pth model.ckpt tf_model.h5 flax_model.msgpack model.gguf model.onnx
            .gitattributes onnx dangling.json)
for f in "${NOT_COPIED[@]}"; do printf 'x' >"$M/$f"; done
rm "$M/onnx" "$M/dangling.json"
mkdir "$M/onnx" && printf 'x' >"$M/onnx/model.onnx"
ln -s "$WORK/no-such-file" "$M/dangling.json"

if "$EXE" --model "$M" --out "$WORK/q1" --quiet >"$WORK/q1.txt" 2>"$WORK/q1.err"; then
    ok "quantize, one rank"
else
    bad "quantize: $(cat "$WORK/q1.err")"; finish; exit 1
fi
for f in "${COPIED[@]}"; do
    if [ -f "$WORK/q1/$f" ] && [ ! -L "$WORK/q1/$f" ] && cmp -s "$M/$f" "$WORK/q1/$f"; then
        ok "$f copied byte for byte"
    else
        bad "$f not copied as a byte-identical regular file"
    fi
done
for f in "${NOT_COPIED[@]}" calibration.tokens; do
    [ -e "$WORK/q1/$f" ] || [ -L "$WORK/q1/$f" ] && bad "$f copied" || ok "$f not copied"
done
cmp -s "$M/config.json" "$WORK/q1/config.json" && bad "config.json not rewritten" \
    || ok "config.json is the program's (rewritten)"
# exactly these files: the copies and the program's own, nothing else (no temporaries)
want=$( { printf '%s\n' "${COPIED[@]}"; echo "$OWN"; } | LC_ALL=C sort)
have=$(cd "$WORK/q1" && ls -A | LC_ALL=C sort)
[ "$want" = "$have" ] && ok "output holds exactly the expected $(echo "$have" | wc -l) files" \
    || bad "output files: $(diff <(echo "$want") <(echo "$have") | tr '\n' ' ')"

# only rank 0 copies: 2 ranks in 2 stages give the same bytes for every file
# (lib.sh's checkpoint_sums, where there is one, leaves out the record of how
# the job ran, which differs by design)
if declare -F checkpoint_sums >/dev/null; then
    sums() { checkpoint_sums "$1"; }
else
    sums() { (cd "$1" && sha256sum * | sort); }
fi
if "${MPIRUN[@]}" -n 2 "$EXE" --model "$M" --out "$WORK/q2" --stages 2 --quiet >"$WORK/q2.txt" 2>&1; then
    diff <(sums "$WORK/q1") <(sums "$WORK/q2") >/dev/null \
        && ok "mpirun -n 2 (2 stages): sha256 of every file equals one rank's" \
        || bad "2 ranks: files differ: $(diff <(sums "$WORK/q1") <(sums "$WORK/q2") | head -3)"
else
    bad "mpirun -n 2 failed: $(tail -3 "$WORK/q2.txt")"
fi

# a folder with pickled weights only: refused, the file and the fix named
P="$WORK/pickled"
mkdir "$P" && cp "$M/config.json" "$M/vocab.json" "$M/merges.txt" "$P/"
printf 'x' >"$P/pytorch_model.bin"
expect_fail "pickle-only folder" "found pytorch_model.bin; the PyTorch weights are pickles, which aweq-dist never loads" \
    "$EXE" --model "$P" --out "$WORK/qp" --quiet
grep -qF "save_pretrained(o, safe_serialization=True)" "$WORK/err.txt" \
    && ok "the message carries the conversion command" || bad "no conversion command: $(cat "$WORK/err.txt")"
ls "$WORK" | grep -q '^qp' && bad "output folder left after the refusal" || ok "no output folder after the refusal"
printf 'x' >"$P/reshard-model_part-0.pt"
rm "$P/pytorch_model.bin"
expect_fail "metaseq parts" "metaseq.scripts.convert_to_singleton" "$EXE" inspect "$P"

finish
