#!/usr/bin/env bash
# Which trial length and warm-up buy the most precision per minute?
# Runs `latlab lab` on the same modes for the same budget with each
# DURATION/WARMUP pair, in an ABBA order (each pair twice, mirrored, so
# slow drift of the machine lands on all alike), and prints per run the
# rounds it got and each mode's ratio ± half-width (points, at the lab's
# Bonferroni level). Figures in docs/experiments.md.
#
#   bench/trial-length.sh [BUDGET] [PAIRS] [MODES] [WORKLOAD]
#
# Defaults: 60s, "100ms/50ms 50ms/20ms 200ms/50ms 100ms/20ms",
# host,bridge-nat,veth-routed,macvlan, tcp_rr; client and server on CPU 0
# (CLIENT_CPU, SERVER_CPU). Needs root; everything runs in latlab-*
# namespaces that each lab removes.
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-60s}
pairs=${2:-100ms/50ms 50ms/20ms 200ms/50ms 100ms/20ms}
modes=${3:-host,bridge-nat,veth-routed,macvlan}
w=${4:-tcp_rr}
[ "$(id -u)" = 0 ] || { echo "trial-length.sh needs root" >&2; exit 1; }
mkdir -p bench/out
go build -o bench/out/latlab ./cmd/latlab
read -r -a ps <<<"$pairs"
order=("${ps[@]}")
for ((i = ${#ps[@]} - 1; i >= 0; i--)); do order+=("${ps[i]}"); done
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r); budget $budget, $w, modes $modes"
for p in "${order[@]}"; do
  d=${p%/*} wu=${p#*/}
  out=$(bench/out/latlab lab --no-store -o json --quiet --workloads "$w" --modes "$modes" \
    --cpu "${CLIENT_CPU:-0}" --server-cpu "${SERVER_CPU:-0}" --budget "$budget" --target-ci 0.001 -d "$d" --warmup "$wu")
  line=$(python3 -c '
import json, sys
s = json.load(sys.stdin)
parts = []
for r in s["results"]:
    q = r.get("ratio_vs_host")
    if r["mode"] == s["baseline"] or not q:
        continue
    parts.append("%s %.3f ±%.1f" % (r["mode"], q["median"], (q["ci_high"] - q["ci_low"]) / 2 * 100))
print("%3d rounds  %s" % (s["trials"], "  ".join(parts)))
' <<<"$out")
  printf '%-12s %s\n' "$p" "$line"
done
