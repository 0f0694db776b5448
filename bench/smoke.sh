#!/bin/bash
# Runs a benchmark binary once, every case with a tiny minimum time.
set -euo pipefail
bin="$1"; shift
export MP_BENCH_SMOKE=1
exec "$bin" --benchmark_min_time=0.001 "$@"
