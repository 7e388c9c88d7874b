#!/usr/bin/env bash
# msrpd over real TCP on loopback against a plain io_uring TCP server (echo for
# small messages, sink for bulk) on the same machine, in the same run: the
# ratio says how much of what the kernel and io_uring allow msrpd delivers.
# Targets: small SENDs >= 20% of the raw pipelined rate; bulk >= 85% of raw
# bulk throughput.
#
# Environment:
#   REPEAT=3          runs of each measurement; the median is reported
#   DURATION=5        measured seconds per run (after 1 s of warm-up)
#   KINDS="msrp raw"  which sides to measure
#   SPOOL=DIR         msrpd's spool parent (default: a new dir under /dev/shm)
#   MESSAGE_BYTES=N   bulk octets per message before a new Message-ID
#   SMALL_WINDOW=256  small SENDs outstanding per connection
#   CONFIGS="small 1,small 64,bulk 1"   workload and connections, comma-separated
#   SKIP_BUILD=1      use the binaries already built
#   CARGO_TARGET_DIR  where cargo builds (default: target)
set -euo pipefail

cd "$(dirname "$0")/.."
REPEAT=${REPEAT:-3}
DURATION=${DURATION:-5}
KINDS=${KINDS:-msrp raw}
MESSAGE_BYTES=${MESSAGE_BYTES:-$((1 << 30))}
SMALL_WINDOW=${SMALL_WINDOW:-256}
CONFIGS=${CONFIGS:-small 1,small 64,bulk 1}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
MSRPD=$TARGET_DIR/release/msrpd
WIREBENCH=$TARGET_DIR/release/wirebench

if [[ -z ${SKIP_BUILD:-} ]]; then
    if [[ $KINDS == *msrp* ]]; then
        cargo build --release -p msrp-engine --bin msrpd
    fi
    cargo build --release -p msrp-benches --bin wirebench
fi

TMP=$(mktemp -d)
if [[ -z ${SPOOL:-} ]]; then
    # Spool in memory: the bulk run measures msrpd, not the disk.
    if [[ -d /dev/shm ]]; then SPOOL=$(mktemp -d /dev/shm/wirebench.XXXXXX); else SPOOL=$(mktemp -d); fi
    OWN_SPOOL=1
fi
SERVER_PID=
CLEANER_PID=

stop_server() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}

# msrpd keeps every received large message as a spool file for the
# application; at GB/s they would fill /dev/shm and memory within one run.
# This stands in for the application: it removes completed files (in-progress
# ones are dot-files).
start_cleaner() {
    while sleep 0.5; do
        find "$SPOOL/run" -maxdepth 1 -type f ! -name '.*' -delete 2>/dev/null || true
    done &
    CLEANER_PID=$!
}

stop_cleaner() {
    if [[ -n $CLEANER_PID ]]; then
        kill "$CLEANER_PID" 2>/dev/null || true
        wait "$CLEANER_PID" 2>/dev/null || true
        CLEANER_PID=
    fi
}

cleanup() {
    stop_cleaner
    stop_server
    rm -rf "$TMP"
    if [[ -n ${OWN_SPOOL:-} ]]; then rm -rf "$SPOOL"; fi
}
trap cleanup EXIT

# Waits for the line a server prints once listening; prints the line.
await_ready() { # pattern file
    for _ in $(seq 100); do
        if grep -q "$1" "$2"; then
            grep -m1 "$1" "$2"
            return
        fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "the server exited before it was ready:" >&2
            cat "$TMP/server.err" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "the server printed no '$1' within 10 s" >&2
    return 1
}

# A busy machine makes every figure meaningless: say so next to it.
warn_if_busy() {
    local a b
    read -r -a a </proc/stat
    sleep 0.5
    read -r -a b </proc/stat
    local idle=$(((b[4] + b[5]) - (a[4] + a[5]))) total=0 i
    for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
    if ((total > 0 && (total - idle) * 100 / total > 15)); then
        echo "warning: the machine was $(((total - idle) * 100 / total))% busy before this run" >&2
    fi
}

# Runs one measurement and leaves the client's JSON line in JSON. Not run in a
# subshell, so that the exit trap knows the server to stop.
measure() { # kind workload conns
    local kind=$1 workload=$2 conns=$3 target control=() line window=()
    if [[ $workload == small ]]; then window=(--window "$SMALL_WINDOW"); fi
    warn_if_busy
    if [[ $kind == msrp ]]; then
        mkdir -p "$SPOOL/run"
        rm -f "$TMP/ctl.sock"
        "$MSRPD" serve --shards 1 --listen 127.0.0.1:0 --control "$TMP/ctl.sock" --spool "$SPOOL/run" \
            >"$TMP/server.out" 2>"$TMP/server.err" &
        SERVER_PID=$!
        line=$(await_ready '^msrpd ready' "$TMP/server.out")
        target=$(sed -n 's/.* msrp=\([^ ]*\).*/\1/p' <<<"$line")
        control=(--control "$TMP/ctl.sock")
        if [[ $workload == bulk ]]; then start_cleaner; fi
    else
        local mode=echo
        if [[ $workload == bulk ]]; then mode=sink; fi
        "$WIREBENCH" raw-server --listen 127.0.0.1:0 --mode "$mode" >"$TMP/server.out" 2>"$TMP/server.err" &
        SERVER_PID=$!
        line=$(await_ready '^ready' "$TMP/server.out")
        target=${line#ready }
    fi
    if ! "$WIREBENCH" client --target "$target" --kind "$kind" --workload "$workload" --conns "$conns" \
        --seconds "$DURATION" --message-bytes "$MESSAGE_BYTES" "${window[@]}" "${control[@]}" >"$TMP/client.out"; then
        echo "the $kind $workload client failed; server stderr:" >&2
        tail -20 "$TMP/server.err" >&2
        return 1
    fi
    stop_cleaner
    stop_server
    rm -rf "$SPOOL/run"
    sed -n 1p "$TMP/client.out" >&2
    JSON=$(sed -n 2p "$TMP/client.out")
}

field() { # name json
    sed -n "s/.*\"$1\":\([-0-9.e+]*\).*/\1/p" <<<"$2"
}

median() {
    tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) exit 1
        print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# A rate in the table's unit.
show() { # value scale format
    if [[ $1 == - ]]; then echo -; else awk -v v="$1" -v s="$2" -v f="$3" 'BEGIN { printf f, v / s }'; fi
}

ROWS=()
IFS=, read -r -a CONFIG_LIST <<<"$CONFIGS"
for config in "${CONFIG_LIST[@]}"; do
    read -r workload conns <<<"$config"
    # msgs/s for small messages, body octets/s for bulk.
    metric=msgs_per_s
    if [[ $workload == bulk ]]; then metric=bytes_per_s; fi
    declare -A values=([msrp]="" [raw]="")
    # Alternate the sides so that drift in the machine hits both alike.
    for run in $(seq "$REPEAT"); do
        for kind in $KINDS; do
            echo "== $workload, $conns conns, $kind, run $run/$REPEAT" >&2
            measure "$kind" "$workload" "$conns"
            values[$kind]+=" $(field "$metric" "$JSON")"
        done
    done
    msrp=$(median <<<"${values[msrp]}" || echo -)
    raw=$(median <<<"${values[raw]}" || echo -)
    ROWS+=("$workload $conns $msrp $raw")
    unset values
done

echo
echo "median of $REPEAT runs of ${DURATION} s, msrpd --shards 1 vs. one-thread io_uring $(uname -r)"
printf '%-8s %5s %16s %16s %8s %8s\n' workload conns msrpd raw ratio target
for row in "${ROWS[@]}"; do
    read -r workload conns msrp raw <<<"$row"
    if [[ $workload == small ]]; then unit="msg/s" scale=1 target=20 fmt='%.0f'; else unit="GB/s" scale=1e9 target=85 fmt='%.3f'; fi
    ratio=-
    verdict=
    if [[ $msrp != - && $raw != - ]]; then
        ratio=$(awk -v m="$msrp" -v r="$raw" 'BEGIN { printf "%.1f%%", 100 * m / r }')
        verdict=$(awk -v m="$msrp" -v r="$raw" -v t="$target" 'BEGIN { print (100 * m / r >= t) ? "met" : "MISSED" }')
    fi
    printf '%-8s %5s %16s %16s %8s %8s %s\n' "$workload" "$conns" "$(show "$msrp" "$scale" "$fmt") $unit" \
        "$(show "$raw" "$scale" "$fmt") $unit" \
        "$ratio" ">=$target%" "$verdict"
done
