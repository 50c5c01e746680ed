#!/usr/bin/env bash
# Run latlab's http workload side by side with wrk against latlab serve and
# nginx on loopback: same connections, threads and pinning, interleaved
# rounds. Two passes: closed loop req/s, then p50/p99 at a fixed rate with
# wrk paced wrk2-style (see bench/README.md).
#
#   bench/compare-http.sh [ROUNDS] [SECONDS] [CONNECTIONS] [THREADS] [RATE]
#
# Defaults: 7 rounds of 3s for req/s, 5x as many rounds of 2s for the
# fixed rate; 10 connections, 1 thread, 1000 req/s.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
secs=${2:-3}
conns=${3:-10}
threads=${4:-1}
rate=${5:-1000}
for t in wrk nginx taskset; do
  command -v "$t" >/dev/null || { echo "missing $t (apt-get install wrk nginx-light util-linux)" >&2; exit 1; }
done
mkdir -p bench/out
go build -o bench/out/latlab ./cmd/latlab
go build -o bench/out/httpcmp ./bench/httpcmp
common=(-latlab bench/out/latlab -connections "$conns" -threads "$threads" -rate "$rate")
bench/out/httpcmp "${common[@]}" -only max -rounds "$rounds" -duration "$secs"
bench/out/httpcmp "${common[@]}" -only rate -rounds $((5 * rounds)) -duration 2
