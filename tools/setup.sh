#!/bin/bash
# Installs what mp's build, tests and benchmarks need from Debian, once.
# Idempotent: when every package is present it does nothing (no network).
# Needs root (or sudo) only when something is missing.
set -euo pipefail

PACKAGES=(
  # The build: Bazel 4.2.3 and a C++17 compiler.
  bazel-bootstrap g++
  # Libraries mp depends on (see README "Dependencies").
  libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev libre2-dev libssl-dev
  libopenmpi-dev openmpi-bin
  # Peers that tests and benchmarks compare against.
  python3 libboost-dev parallel
  # Tests: a real terminal for pmap's progress bar; clang + libFuzzer.
  tmux clang libclang-rt-14-dev
  # Process inspection used by tests (ps, pgrep).
  procps
  # /usr/bin/time: max RSS of pmap in bench/pmap_bench.py.
  time
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done" >&2
