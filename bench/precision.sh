#!/usr/bin/env bash
# Precision per minute: is `latlab lab` as sharp as a careful protocol with
# a C tool, in the same wall time? (issue 36; figures in bench/README.md)
#
#   bench/precision.sh [ROUNDS] [SECONDS] [MODES]
#
# 1. Brings a lab up (latlab lab --keep) and runs the reference protocol
#    through its namespaces: sockperf ping-pong (TCP), a blocked design —
#    each round runs every mode back to back in a fresh random order,
#    SECONDS each (default 16 rounds of 1 s) — and the lab's own statistic
#    on the per-round rates (Hodges–Lehmann ratio, signed-rank interval,
#    Bonferroni over the modes compared). Then removes that lab.
# 2. Runs `latlab lab` on the same modes and workload (tcp_rr) with
#    --budget set to the reference protocol's time (rounds × modes ×
#    SECONDS, as netperf would take it; sockperf's own start-up and report
#    add ~2 s a run that latlab is not given) and a target it cannot reach,
#    so it spends all of it.
# 3. Prints both sides' ratios and half-widths next to each other, and
#    whether latlab's half-widths are within HW_WITHIN (1.2)× the
#    reference's and its ratios within AGREE (2.5) points (exit 1 if not).
#
# MODES default host,bridge-nat,veth-routed,macvlan. Placement: CLIENT_CPU
# and SERVER_CPU (default 0 and 0: same core, the placement the lab's
# calibration picks for tcp_rr on 2-vCPU VMs), the same for both sides.
# Everything runs in latlab-* namespaces; both labs are removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-16}
secs=${2:-1}
modes=${3:-host,bridge-nat,veth-routed,macvlan}
ccpu=${CLIENT_CPU:-0} scpu=${SERVER_CPU:-0}
for t in sockperf nsenter taskset ip; do
  command -v "$t" >/dev/null || { echo "missing $t (apt-get install sockperf util-linux iproute2)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "precision.sh needs root (it builds network namespaces)" >&2; exit 1; }
mkdir -p bench/out
go build -o bench/out/latlab ./cmd/latlab
go build -o bench/out/labpeers ./bench/labpeers

dir=$(mktemp -d /tmp/latlab-precision.XXXXXX)
lp=
cleanup() {
  trap - EXIT INT TERM
  [ -z "$lp" ] || { kill -TERM "$lp" 2>/dev/null || true; wait "$lp" 2>/dev/null || true; }
  bench/out/latlab cleanup --journal-dir "$dir/journal" >/dev/null 2>&1 || echo "latlab cleanup --journal-dir $dir/journal failed" >&2
  echo "outputs kept in $dir (ref.json, lab.json)" >&2
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

echo "reference: bringing a lab up (modes $modes)..." >&2
bench/out/latlab lab --keep --no-store -o json --quiet --trials 1 --duration 50ms --warmup 0s \
  --workloads tcp_rr --modes "$modes" --cpu "$ccpu" --server-cpu "$scpu" --journal-dir "$dir/journal" \
  >"$dir/kept.json" 2>"$dir/kept.err" || { cat "$dir/kept.err" >&2; exit 1; }
echo "reference: sockperf, $rounds blocked rounds of ${secs}s per mode..." >&2
bench/out/labpeers -lab "$dir/kept.json" -tools sockperf -blocked -rounds "$rounds" -duration "$secs" \
  -workloads tcp_rr -client-cpu "$ccpu" -server-cpu "$scpu" -seed "${SEED:-0}" -json >"$dir/ref.json" &
lp=$!
wait "$lp"
lp=
bench/out/latlab cleanup --journal-dir "$dir/journal" >/dev/null 2>&1
# The reference protocol's time is what it measures: rounds × modes ×
# SECONDS (what netperf -l SECONDS would take); sockperf's own start-up,
# warm-up and report add ~2 s a run, which latlab is not given.
nmodes=$(tr ',' '\n' <<<"$modes" | grep -c .)
budget=$((rounds * nmodes * secs))
wall=$(sed -n 's/.*"wall_seconds": *\([0-9.]*\).*/\1/p' "$dir/ref.json" | head -1)
echo "latlab lab: the same modes for the reference protocol's time, ${budget}s (sockperf's runs took ${wall%.*}s of wall time)..." >&2
bench/out/latlab lab --no-store -o json --quiet --workloads tcp_rr --modes "$modes" \
  --cpu "$ccpu" --server-cpu "$scpu" --budget "${budget}s" --target-ci 0.001 --journal-dir "$dir/journal" \
  >"$dir/lab.json"
bench/out/labpeers -reference "$dir/ref.json" -lab-result "$dir/lab.json" \
  -hw-within "${HW_WITHIN:-1.2}" -agree-within "${AGREE:-2.5}"
