#!/usr/bin/env bash
# The engine's sends asked through msrp-signal's REST API against the
# same sends asked on the engine's control socket, in one run:
#
#   1. `msrp-loadgen bench --direction engine`: the control socket,
#      batched (protocol 2), the yardstick;
#   2. `bench --mode rest --direction engine --rest-form batch`:
#      `POST /v1/messages:batch` through the embedded msrp-signal
#      (target: at least 0.60 of 1);
#   3. `bench --mode rest --direction engine --rest-form single`: a
#      `POST /v1/sessions/{id}/messages` per message (target: at least
#      0.15 of 1).
#
# Each figure is the report's throughput.messages_per_s (messages the
# load received over MSRP per second of the measured interval), closed
# loop, the `sms` scenario (1,024 sessions, 160-octet texts) unless
# EXTRA says otherwise; the three are taken in turn, ROUNDS times, so
# that a neighbour's load hits them alike, and each figure is the median
# of its rounds. A run with errors or warnings counts as FAILED.
#
#   tuning/rest-rate.sh                       # 3 rounds of 10 s each
#   ROUNDS=5 DURATION=10s BATCH=1000 CONNECTIONS=8 tuning/rest-rate.sh
#   EXTRA="--window 16" tuning/rest-rate.sh   # flags for all three runs
#
# Builds msrp-loadgen in release first (CARGO_TARGET_DIR is honoured;
# NO_BUILD=1 skips it).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
target=${CARGO_TARGET_DIR:-$root/target}
bin=${BIN:-$target/release}
rounds=${ROUNDS:-3}
duration=${DURATION:-10s}
ramp_up=${RAMP_UP:-1s}
batch=${BATCH:-256}
extra=${EXTRA:-}

if [ -z "${NO_BUILD:-}" ]; then
    (cd "$root" && cargo build --release -p msrp-loadgen) >&2
fi
[ -x "$bin/msrp-loadgen" ] || { echo "$bin/msrp-loadgen is missing" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 reads the reports" >&2; exit 2; }

work=$(mktemp -d /tmp/rest-rate.XXXXXX)
trap 'rm -rf "$work"' EXIT

# One bench run; prints its messages/s, or FAILED; on stderr its details
# and the CPU microseconds each part spent per message.
bench() {
    local name=$1
    shift
    local json=$work/$name.json
    # shellcheck disable=SC2086
    if "$bin/msrp-loadgen" bench --direction engine --no-calibrate --quiet \
        --duration "$duration" --ramp-up "$ramp_up" $extra "$@" \
        --json "$json" --html "$work/$name.html" >"$work/$name.out" 2>"$work/$name.err"; then
        python3 - "$json" "$name" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
rest = r.get("rest")
bad = sum(r["errors"].values()) > 0 or r["warnings"]
rate = r["throughput"]["messages_per_s"]
cpu = r["cpu"]
# CPU microseconds per message, per part: where the time goes.
per = lambda cores: "%.1f" % (cores * 1e6 / rate) if rate > 0 and cores is not None else "-"
if rest:
    d = rest.get("arrival_us") or {}
    print("    %s: %.0f msg/s, %.0f requests/s, %.1f per request, request->arrival p50 %s p99 %s us; "
          "CPU us/msg: engine %s, msrp-signal %s, load %s (REST client %s)"
          % (sys.argv[2], rate, rest["requests_per_s"], rest["messages_per_request"], d.get("p50"), d.get("p99"),
             per(cpu["engine_cores"]), per(rest.get("signal_cores")), per(cpu["load_cores"]),
             per(rest.get("client_cores"))), file=sys.stderr)
else:
    d = r["latency_us"].get("delivered", {})
    print("    %s: %.0f msg/s, command->arrival p50 %s p99 %s us; CPU us/msg: engine %s, load %s"
          % (sys.argv[2], rate, d.get("p50"), d.get("p99"), per(cpu["engine_cores"]), per(cpu["load_cores"])),
          file=sys.stderr)
if bad:
    print("    %s: errors %s warnings %s" % (sys.argv[2], r["errors"], r["warnings"]), file=sys.stderr)
print("FAILED" if bad else "%.0f" % rate)
EOF
    else
        tail -n 3 "$work/$name.err" >&2
        echo FAILED
    fi
}

median() {
    tr ' ' '\n' | grep -E '^[0-9.]+$' | sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else print v[int((NR + 1) / 2)] }'
}

connections=()
[ -z "${CONNECTIONS:-}" ] || connections=(--rest-connections "$CONNECTIONS")
control=()
rest_batch=()
rest_single=()
for round in $(seq "$rounds"); do
    echo "round $round of $rounds" >&2
    control+=("$(bench "control-$round")")
    rest_batch+=("$(bench "batch-$round" --mode rest --rest-form batch --rest-batch "$batch" "${connections[@]}")")
    rest_single+=("$(bench "single-$round" --mode rest --rest-form single "${connections[@]}")")
    echo "round $round: control ${control[-1]}/s, REST batch ${rest_batch[-1]}/s, REST single ${rest_single[-1]}/s" >&2
done

c=$(echo "${control[*]}" | median)
b=$(echo "${rest_batch[*]}" | median)
s=$(echo "${rest_single[*]}" | median)
echo "direction engine, $duration measured after $ramp_up, REST batch of $batch, median of $rounds rounds ($(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg))${extra:+, EXTRA: $extra}"
echo "control socket, batched:   $c msg/s   (rounds: ${control[*]})"
echo "REST batch:                $b msg/s   (rounds: ${rest_batch[*]})"
echo "REST single:               $s msg/s   (rounds: ${rest_single[*]})"
awk -v c="$c" -v b="$b" -v s="$s" 'BEGIN {
    if (c + 0 > 0 && b + 0 > 0) printf "REST batch / control:      %.2f (target >= 0.60)\n", b / c
    if (c + 0 > 0 && s + 0 > 0) printf "REST single / control:     %.2f (target >= 0.15)\n", s / c
}'
