#!/usr/bin/env bash
# Call setup rates on this machine, in one run, for issue 13's targets:
#
#   1. sipp's UAC against sipp's own UAS (`-sn uac` / `-sn uas`): what SIP
#      alone costs here, the yardstick;
#   2. the same sipp UAC with an MSRP offer (tuning/sip-uac-msrp.xml)
#      against `msrpd serve` + `msrp-signal serve`: each call creates an
#      engine session (target: at least half of 1);
#   3. `msrp-loadgen bench --mode sip --scenario sessions`: sessions set up
#      by msrp-signaling's UAC through the embedded msrp-signal and bound
#      over MSRP (target: at least 3,000/s).
#
# sipp's figures are the highest offered rate (`-r`, for SECONDS seconds,
# `-m RATE*SECONDS` calls) that every call survived (sipp exit 0) and that
# was reached (calls / wall time at least 90% of it), climbing a ladder of
# rates until one fails; the figure is the calls/s reached at that rate.
# Both sipp ends get 4 MiB socket buffers (`-buff_size`), so sipp's own
# 64 KiB default does not drop the yardstick's datagrams. msrp-loadgen is
# closed loop (--invites-outstanding LIMIT); its figure is the report's
# sip.calls_per_s (answered calls / first INVITE to last 200). Each figure
# is the median of ROUNDS rounds, the three taken in turn, so that a
# neighbour's load hits them alike.
#
#   tuning/sip-setup-rate.sh                 # UDP, 20,000 calls, 3 rounds
#   TRANSPORT=tcp SECONDS_EACH=3 CALLS=20000 ROUNDS=3 LIMIT=256 tuning/sip-setup-rate.sh
#
# Needs sipp (Debian: sip-tester) and a release build
# (cargo build --release -p msrp-engine -p msrp-signaling -p msrp-loadgen).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
bin=${BIN:-${CARGO_TARGET_DIR:-$root/target}/release}
transport=${TRANSPORT:-udp}
calls=${CALLS:-20000}
seconds_each=${SECONDS_EACH:-3}
ladder=${LADDER:-"500 1000 1500 2000 2500 3000 3500 4000 5000 6000 7000 8000 10000 12000 15000 20000 25000 30000"}
rounds=${ROUNDS:-3}
limit=${LIMIT:-256}
port_base=${PORT_BASE:-25060}

command -v sipp >/dev/null || { echo "sipp is not installed (Debian: apt-get install sip-tester)" >&2; exit 2; }
for b in msrpd msrp-signal msrp-loadgen; do
    [ -x "$bin/$b" ] || { echo "$bin/$b is missing: cargo build --release" >&2; exit 2; }
done
case $transport in
    udp) sipp_t=u1 ;;
    tcp) sipp_t=t1 ;;
    *) echo "TRANSPORT is udp or tcp" >&2; exit 2 ;;
esac

work=$(mktemp -d /tmp/sip-setup-rate.XXXXXX)
trap cleanup EXIT

# The calls/s reached by one sipp UAC run at rate $2 against 127.0.0.1:$1
# with scenario arguments $3..; "FAILED" when a call failed.
sipp_at() {
    local port=$1 rate=$2
    shift 2
    local n=$((rate * seconds_each)) start end
    start=$EPOCHREALTIME
    if (cd "$work" && sipp "$@" -t "$sipp_t" -r "$rate" -m "$n" -l $((rate * 4)) -buff_size 4194304 \
        ${VERBOSE:+-trace_err} -nostdin -p $((port + 1)) "127.0.0.1:$port" >/dev/null 2>&1 </dev/null); then
        end=$EPOCHREALTIME
        echo "$n $start $end" | awk '{ printf "%.0f\n", $1 / ($3 - $2) }'
    else
        echo FAILED
        [ -z "${VERBOSE:-}" ] || tail -n 3 "$work"/*errors.log "$work"/signal-*.log >&2 || true
    fi
}

# The highest rate of the ladder that sipp sustains against port $1 (as
# sipp_at); logs each step on stderr.
sipp_max() {
    local port=$1 best=0 reached
    shift
    for rate in $ladder; do
        reached=$(sipp_at "$port" "$rate" "$@")
        echo "    -r $rate: $reached" >&2
        if [ "$reached" = FAILED ] || [ "$reached" -lt $((rate * 9 / 10)) ]; then
            break
        fi
        best=$reached
    done
    echo "$best"
}

median() {
    tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else print v[int((NR + 1) / 2)] }'
}

wait_for() {
    for _ in $(seq 200); do [ -e "$1" ] && return 0; sleep 0.05; done
    echo "$1 did not appear" >&2
    exit 1
}

# Each round starts every server afresh, so that one round's leftovers
# (2xx retransmitted for 32 s to a UAC gone, transactions lingering) do
# not weigh on the next.
uas_port=$port_base
signal_port=$((port_base + 10))
start_uas() {
    (cd "$work" && exec sipp -sn uas -t "$sipp_t" -p "$uas_port" -buff_size 4194304 -nostdin \
        >/dev/null 2>&1 </dev/null) &
    server_pids=($!)
    sleep 0.5
}
# msrpd + msrp-signal, the bounds raised: a completed INVITE transaction
# lingers 32 s (RFC 6026 timer L), a BYE one too over UDP (timer J), and
# the default 100,000 would refuse calls at about 1,500/s over UDP.
start_signal() {
    local sock=$work/msrpd-$1.sock
    "$bin/msrpd" serve --listen 127.0.0.1:0 --control "$sock" --no-pin --log warn \
        >"$work/msrpd-$1.log" 2>&1 &
    server_pids=($!)
    wait_for "$sock"
    "$bin/msrp-signal" serve --sip "$transport:127.0.0.1:$signal_port" --engine "$sock" \
        --transactions-max 1000000 --calls-max 1000000 >"$work/signal-$1.log" 2>&1 &
    server_pids+=($!)
    sleep 0.5
}
stop_servers() {
    for pid in "${server_pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    server_pids=()
    sleep 1
}
server_pids=()
cleanup() {
    for pid in "${server_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}

sipp_uas=()
msrp_signal=()
loadgen=()
for round in $(seq "$rounds"); do
    echo "round $round: sipp uac -> sipp uas" >&2
    start_uas
    sipp_uas+=("$(sipp_max "$uas_port" -sn uac)")
    stop_servers
    echo "round $round: sipp uac -> msrp-signal" >&2
    start_signal "$round"
    msrp_signal+=("$(sipp_max "$signal_port" -sf "$here/sip-uac-msrp.xml")")
    stop_servers
    json=$work/loadgen-$round.json
    if "$bin/msrp-loadgen" bench --mode sip --sip-transport "$transport" --scenario sessions \
        --connections 20 --sessions-per-connection $(((calls + 19) / 20)) \
        --invites-outstanding "$limit" --no-calibrate --duration 1s --quiet \
        --json "$json" --html "$work/loadgen-$round.html" >/dev/null 2>"$work/loadgen-$round.err"; then
        loadgen+=("$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["sip"]; print("%.0f" % s["calls_per_s"] if s["calls_failed"] == 0 else "FAILED")' "$json")")
    else
        loadgen+=(FAILED)
    fi
    echo "round $round: sipp-uac -> sipp-uas ${sipp_uas[-1]}/s, sipp-uac -> msrp-signal ${msrp_signal[-1]}/s, msrp-loadgen --mode sip ${loadgen[-1]}/s" >&2
done

uas=$(echo "${sipp_uas[*]}" | median)
sig=$(echo "${msrp_signal[*]}" | median)
lg=$(echo "${loadgen[*]}" | median)
echo "transport $transport; sipp: highest rate sustained $seconds_each s without a failed call; msrp-loadgen: $calls sessions, $limit INVITEs out; median of $rounds rounds ($(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg))"
echo "sipp uac -> sipp uas:            $uas calls/s   (rounds: ${sipp_uas[*]})"
echo "sipp uac -> msrp-signal + msrpd: $sig calls/s   (rounds: ${msrp_signal[*]})"
echo "msrp-loadgen --mode sip:         $lg sessions/s (rounds: ${loadgen[*]})"
awk -v s="$sig" -v u="$uas" -v l="$lg" 'BEGIN {
    if (s + 0 > 0 && u + 0 > 0) printf "msrp-signal / sipp uas:          %.2f (target >= 0.50)\n", s / u
    if (l + 0 > 0 && u + 0 > 0) printf "msrp-loadgen / sipp uas:         %.2f\n", l / u
}'
