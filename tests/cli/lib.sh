# lib.sh - helpers for the shell tests of the program. Each test counts its
# checks and ends with the plain "N passed, N failed" line; the exit code
# tells the truth.
set -u
EXE=${AWEQ_EXE:?AWEQ_EXE is not set; run through ctest}
PASSED=0
FAILED=0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/aweq-cli-XXXXXX")
trap 'rm -rf "$WORK"' EXIT

ok() { PASSED=$((PASSED + 1)); echo "ok: $*"; }
bad() { FAILED=$((FAILED + 1)); echo "FAILED: $*"; }

# expect_fail NAME NEEDLE CMD...: the command exits 1, prints one error line
# on stderr that contains NEEDLE, and nothing else on stderr.
expect_fail() {
    local name=$1 needle=$2
    shift 2
    local rc=0
    "$@" >"$WORK/out.txt" 2>"$WORK/err.txt" || rc=$?
    if [ "$rc" -ne 1 ]; then bad "$name: exit code $rc, want 1 ($(cat "$WORK/err.txt"))"; return; fi
    if ! grep -qF -- "$needle" "$WORK/err.txt"; then
        bad "$name: stderr does not mention '$needle': $(cat "$WORK/err.txt")"; return
    fi
    if [ "$(grep -c 'aweq-dist: error:' "$WORK/err.txt")" -ne 1 ]; then
        bad "$name: want exactly one error line: $(cat "$WORK/err.txt")"; return
    fi
    ok "$name: $(head -c 200 "$WORK/err.txt")"
}

# expect_usage NAME NEEDLE CMD...: the command is refused as a usage error
# (exit 2) with a message that contains NEEDLE.
expect_usage() {
    local name=$1 needle=$2 rc=0
    shift 2
    "$@" >"$WORK/out.txt" 2>"$WORK/err.txt" || rc=$?
    [ "$rc" -eq 2 ] && grep -qF -- "$needle" "$WORK/err.txt" && ok "$name: $(head -1 "$WORK/err.txt")" \
        || bad "$name: exit $rc, $(cat "$WORK/err.txt")"
}

# gpt2_tokenizer DIR: the GPT-2 tokenizer of the shared data into model
# folder DIR as Hugging Face lays it out (vocab.json, merges.txt and a
# GPT2Tokenizer config: <|endoftext|> as BOS, EOS and unknown, 256 tokens).
gpt2_tokenizer() {
    local tok=${AWEQ_SHARED_DATA:?AWEQ_SHARED_DATA is not set; run through ctest}/gpt2-tokenizer
    cp "$tok/encoder.json" "$1/vocab.json" && cp "$tok/vocab.bpe" "$1/merges.txt" || return 1
    cat >"$1/tokenizer_config.json" <<'JSON'
{"tokenizer_class": "GPT2Tokenizer", "add_bos_token": true, "bos_token": "<|endoftext|>",
 "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "model_max_length": 256}
JSON
}

# checkpoint_sums DIR: "sha256  name" of every file of a checkpoint folder,
# sorted, less what records how the job ran (it differs from run to run by
# design): aweq_run.json (times, ranks, memory) is left out, and report.html
# is hashed without its run section, the lines between its aweq-run markers.
# Every other byte must match.
checkpoint_sums() {
    (cd "$1" && for f in *; do
        case "$f" in
            aweq_run.json) ;;
            report.html) echo "$(sed '/<!-- aweq-run: begin/,/<!-- aweq-run: end/d' "$f" | sha256sum | cut -d' ' -f1)  $f" ;;
            *) sha256sum -- "$f" ;;
        esac
    done | sort -k2)
}

finish() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}
