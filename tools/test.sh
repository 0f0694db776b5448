#!/bin/bash
# README quick start, command 2: install what is missing, then run every test
# (unit tests, end-to-end tool tests, and each benchmark once in smoke mode).
# Extra arguments go to `bazel test`, e.g. tools/test.sh --config=asan
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
exec bazel test "$@" //...
