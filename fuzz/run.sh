#!/usr/bin/env bash
# Builds every cargo-fuzz target (engine/fuzz, signaling/fuzz) on nightly
# and runs each for SECONDS (default 60) from its committed corpus.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Prints per target libFuzzer's final `#N DONE cov: X ft: Y` line; fails on
# any crash, leak, timeout or OOM, printing the input that caused it (left
# under <crate>/fuzz/artifacts/<target>/; copy it to
# <crate>/fuzz/regressions/<target>/ with the fix so tests/fuzz_corpora.rs
# replays it). The committed corpora are not modified: new inputs go to a
# scratch copy, thrown away (minimise and commit by hand, see the READMEs).
#
# Needs the nightly toolchain (`rustup toolchain install nightly`) and
# cargo-fuzz, which is installed from crates.io when missing (about 90 s).
# CARGO_TARGET_DIR, if set, is used for the fuzz builds; it should not be
# the stable build's (the instrumented artifacts would evict each other).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${1:-60}
shift || true
wanted=("$@")

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
summary=()
started=$SECONDS

for crate in engine signaling; do
    dir=$root/$crate/fuzz
    echo "==> building $crate/fuzz ($((SECONDS - started))s)"
    (cd "$dir" && cargo +nightly fuzz build -a)
    for target in $(cd "$dir" && cargo +nightly fuzz list); do
        if [ ${#wanted[@]} -gt 0 ] && [[ ! " ${wanted[*]} " == *" $target "* ]]; then
            continue
        fi
        corpus=$dir/corpus/$target
        if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
            echo "FAIL $crate/$target: no committed corpus at $corpus"
            failed+=("$crate/$target")
            continue
        fi
        work=$scratch/$crate-$target
        mkdir -p "$work" "$dir/artifacts/$target"
        cp -r "$corpus/." "$work/"
        dict=()
        case $target in
            parse | conn) dict=(-dict="$dir/parse.dict") ;;
            uri) dict=(-dict="$dir/uri.dict") ;;
        esac
        echo "==> $crate/$target for ${seconds}s ($((SECONDS - started))s)"
        log=$scratch/$crate-$target.log
        set +e
        (cd "$dir" && cargo +nightly fuzz run -a "$target" "$work" -- \
            -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=1 "${dict[@]}" -artifact_prefix="$dir/artifacts/$target/") >"$log" 2>&1
        rc=$?
        set -e
        done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
        if [ $rc -ne 0 ]; then
            grep -E 'ERROR: libFuzzer|panicked at|SUMMARY' "$log" | head -5 || true
            grep -E 'Test unit written to|artifact_prefix' "$log" | tail -2 || true
            tail -20 "$log"
            echo "FAIL $crate/$target (exit $rc)"
            failed+=("$crate/$target")
            summary+=("$crate/$target: FAILED, see above")
        else
            summary+=("$crate/$target: ${done_line:-no DONE line}")
        fi
    done
done

echo
echo "==> fuzz summary (${seconds}s per target, $((SECONDS - started))s in all)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "failed: ${failed[*]}"
    exit 1
fi
