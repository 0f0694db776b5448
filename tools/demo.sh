#!/bin/bash
# README quick start, command 1: install what is missing, build mp optimized,
# and run the main job: psquare, the classic multiprocessing tutorial, serial
# against parallel. Extra arguments go to psquare (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
exec bazel run -c opt //tools/psquare -- --n=5 --sleep=1 --mode=compare "$@"
