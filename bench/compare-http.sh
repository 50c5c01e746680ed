#!/usr/bin/env bash
# Run latlab's http workload side by side with wrk against latlab serve and
# nginx on loopback: same connections, threads and pinning, interleaved
# rounds. Closed loop req/s, and p50/p99 at a fixed rate (see
# bench/README.md for what the fixed-rate comparison means without wrk2).
#
#   bench/compare-http.sh [ROUNDS] [SECONDS] [CONNECTIONS] [THREADS] [RATE]
#
# Defaults: 5 rounds of 5s, 10 connections, 1 thread, 2000 req/s.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
secs=${2:-5}
conns=${3:-10}
threads=${4:-1}
rate=${5:-2000}
for t in wrk nginx taskset; do
  command -v "$t" >/dev/null || { echo "missing $t (apt-get install wrk nginx-light util-linux)" >&2; exit 1; }
done
mkdir -p bench/out
go build -o bench/out/latlab ./cmd/latlab
go build -o bench/out/httpcmp ./bench/httpcmp
bench/out/httpcmp -latlab bench/out/latlab -rounds "$rounds" -duration "$secs" \
  -connections "$conns" -threads "$threads" -rate "$rate"
