#!/usr/bin/env bash
# Run latlab side by side with sockperf (TCP/UDP ping-pong) and iperf3
# (single stream) on loopback and on a veth pair between two namespaces,
# same pinning, interleaved rounds. Needs root for the veth path.
#
#   bench/compare-peers.sh [ROUNDS] [SECONDS] [WORKLOADS] [PATHS]
#
# Defaults: 5 rounds of 5s, WORKLOADS=tcp_rr,udp_rr,tcp_stream,
# PATHS=loopback,veth. E.g. `bench/compare-peers.sh 9 5 tcp_stream loopback`.
# CONGESTION=ALGO runs both stream tools with that congestion control (latlab
# --congestion, iperf3 -C); unset keeps the namespaces' default.
# PLACEMENTS picks from cross-core,same-core,taskset-1cpu (default all three,
# interleaved in the same rounds; tcp_stream runs cross-core only).
# ATTRIBUTE=1 adds latlab tcp_rr/udp_rr runs with --attribute, printed as
# their rate over the same round's untraced run.
#
# Prints one table per path: median of each figure over the rounds, the
# latlab/peer ratio of the medians, and the ratio in each round. See
# bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
secs=${2:-5}
workloads=${3:-tcp_rr,udp_rr,tcp_stream}
paths=${4:-loopback,veth}
for t in sockperf iperf3 ip taskset; do
  command -v "$t" >/dev/null || { echo "missing $t (apt-get install sockperf iperf3 iproute2)" >&2; exit 1; }
done
mkdir -p bench/out
go build -o bench/out/latlab ./cmd/latlab
go build -o bench/out/peers ./bench/peers

args=()
case ",$paths," in *,loopback,*) args+=(-path "loopback:::127.0.0.1") ;; esac
case ",$paths," in
*,veth,*)
  a=latlab-bp-a$$ b=latlab-bp-b$$
  cleanup() { ip netns del "$a" 2>/dev/null || true; ip netns del "$b" 2>/dev/null || true; }
  trap cleanup EXIT INT TERM
  ip netns add "$a"
  ip netns add "$b"
  ip -n "$a" link add veth0 type veth peer name veth0 netns "$b"
  ip -n "$a" addr add 10.254.0.1/30 dev veth0
  ip -n "$b" addr add 10.254.0.2/30 dev veth0
  for n in "$a" "$b"; do ip -n "$n" link set lo up; ip -n "$n" link set veth0 up; done
  args+=(-path "veth:$a:$b:10.254.0.2")
  ;;
esac
[ ${#args[@]} -gt 0 ] || { echo "PATHS must name loopback and/or veth" >&2; exit 2; }

bench/out/peers -latlab bench/out/latlab -rounds "$rounds" -duration "$secs" \
  -workloads "$workloads" -congestion "${CONGESTION:-}" \
  -placements "${PLACEMENTS:-cross-core,same-core,taskset-1cpu}" \
  -attribute="$([ -n "${ATTRIBUTE:-}" ] && echo true || echo false)" "${args[@]}"
