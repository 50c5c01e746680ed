#!/usr/bin/env bash
# Check latlab's lab ratios against sockperf through the lab's own paths:
# bring a lab up (latlab lab --keep), serve latlab and sockperf in every
# mode's server namespace, run latlab bench and sockperf ping-pong from every
# mode's client namespace in interleaved rounds, and print each tool's ratio
# to the host mode and how far the two differ. Needs root.
#
#   bench/compare-lab.sh [ROUNDS] [SECONDS] [MODES]
#
# Defaults: 5 rounds of 5s, MODES=host,bridge-nat,veth-routed,macvlan,vxlan
# (modes the kernel lacks are skipped by the lab and listed). Environment:
#   CLIENT_CPU, SERVER_CPU  placement (default: what the lab's calibration
#                           chose for tcp_rr, printed; same core on 2-vCPU
#                           VMs); CLIENT_CPU=1 SERVER_CPU=0 for cross core
#   WORKLOADS               tcp_rr,udp_rr (default) or one of them
#   JSON=1                  JSON instead of tables on stdout
#   SEED                    seed of the round orders (default random, printed)
#
# Everything runs inside the lab's latlab-* namespaces; on exit, error or
# Ctrl-C the servers are stopped and the lab is removed (latlab cleanup). See
# bench/labpeers.md.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
secs=${2:-5}
modes=${3:-host,bridge-nat,veth-routed,macvlan,vxlan}
for t in sockperf nsenter taskset ip; do
  command -v "$t" >/dev/null || { echo "missing $t (apt-get install sockperf util-linux iproute2)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "compare-lab.sh needs root (it builds network namespaces)" >&2; exit 1; }
mkdir -p bench/out
go build -o bench/out/latlab ./cmd/latlab
go build -o bench/out/labpeers ./bench/labpeers

jdir=$(mktemp -d /tmp/latlab-compare-lab.XXXXXX)
lp=
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$lp" ]; then
    kill -TERM "$lp" 2>/dev/null || true # labpeers stops its servers
    wait "$lp" 2>/dev/null || true
  fi
  # Only this lab's journal; other runs' latlab-* namespaces ("orphan netns"
  # lines) are none of ours.
  out=$(bench/out/latlab cleanup --journal-dir "$jdir" 2>&1) || echo "latlab cleanup --journal-dir $jdir failed" >&2
  [ -z "$out" ] || grep -v '^orphan netns' <<<"$out" >&2 || true
  prefix=$(sed -n 's/.*"prefix": *"\([^"]*\)".*/\1/p' "$jdir/lab.json" 2>/dev/null | head -1)
  if [ -n "$prefix" ] && ip netns list | grep -q "^$prefix-"; then
    echo "left behind (remove with latlab cleanup --journal-dir $jdir):" >&2
    ip netns list | grep "^$prefix-" >&2
  else
    rm -rf "$jdir"
  fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

echo "bringing the lab up (modes $modes)..." >&2
bench/out/latlab lab --keep --no-store --json --quiet --trials 1 --duration 50ms --warmup 0s \
  --workloads tcp_rr --modes "$modes" --journal-dir "$jdir" >"$jdir/lab.json" 2>"$jdir/lab.err" || { cat "$jdir/lab.err" >&2; exit 1; }

args=(-lab "$jdir/lab.json" -latlab bench/out/latlab -rounds "$rounds" -duration "$secs"
  -client-cpu "${CLIENT_CPU:--1}" -server-cpu "${SERVER_CPU:--1}" -workloads "${WORKLOADS:-tcp_rr,udp_rr}"
  -seed "${SEED:-0}")
[ "${JSON:-}" = 1 ] && args+=(-json)
# In the background so that a signal reaches the trap at once (bash runs traps
# only between commands) and the trap can stop labpeers before the cleanup.
bench/out/labpeers "${args[@]}" &
lp=$!
rc=0
wait "$lp" || rc=$?
lp=
exit "$rc"
