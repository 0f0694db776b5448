#!/bin/bash
# End-to-end test of psquare: output content (not timing), every mode and
# start method, --help, and bad command lines (exit status 2).
set -uo pipefail
bin="$1"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# expect_squares OUTPUT N: the tutorial's three lines for each of 0..N-1.
expect_squares() {
  local out="$1" n="$2" x
  for ((x = 0; x < n; x++)); do
    for line in "start process:$x" "square $x:$((x * x))" "end process:$x"; do
      grep -qxF "$line" <<<"$out" || fail "missing '$line' in: $out"
    done
  done
  [[ $(grep -c '^square ' <<<"$out") == "$n" ]] || fail "want $n squares: $out"
  grep -qE '^Time taken [0-9]+\.[0-9]+ seconds$' <<<"$out" || fail "no time: $out"
}

modes=$("$bin" --list_modes | awk '{print $1}') || fail "--list_modes"
grep -qx serial <<<"$modes" || fail "no serial mode in: $modes"
grep -qx process <<<"$modes" || fail "no process mode in: $modes"

for mode in $modes; do
  [[ $mode == compare ]] && continue
  out=$("$bin" --n=4 --sleep=0 --mode="$mode") || fail "--mode=$mode exit $?"
  expect_squares "$out" 4
done
for method in fork forkserver spawn; do
  out=$("$bin" --n=3 --sleep=0.01 --mode=process --start_method=$method) ||
    fail "process/$method exit $?"
  expect_squares "$out" 3
done

# queue: children send squares back through mp::Queue; the parent prints them
# in order of the numbers, with every start method.
for method in fork forkserver spawn; do
  out=$("$bin" --n=4 --sleep=0 --mode=queue --start_method=$method) ||
    fail "queue/$method exit $?"
  expect_squares "$out" 4
  [[ $(grep '^result' <<<"$out") == $'result 0:0\nresult 1:1\nresult 2:4\nresult 3:9' ]] ||
    fail "queue/$method results: $out"
done

# shared: children write squares into an mp::Array and sum them in an
# mp::Value (attached by name), with every start method.
for method in fork forkserver spawn; do
  out=$("$bin" --n=4 --sleep=0 --mode=shared --start_method=$method) ||
    fail "shared/$method exit $?"
  expect_squares "$out" 4
  [[ $(grep '^result\|^total' <<<"$out") == $'result 0:0\nresult 1:1\nresult 2:4\nresult 3:9\ntotal 14' ]] ||
    fail "shared/$method results: $out"
done

# pool: an mp::Pool maps the numbers; results in order (fork only).
for method in fork forkserver spawn; do
  out=$("$bin" --n=3 --sleep=0 --mode=counter --start_method=$method) ||
    fail "counter/$method exit $?"
  expect_squares "$out" 3
  grep -qx 'counter 30000 (3 processes x 10000 locked increments)' <<<"$out" ||
    fail "counter/$method total: $out"
done

out=$("$bin" --n=5 --sleep=0 --mode=pool) || fail "pool exit $?"
expect_squares "$out" 5
[[ $(grep '^result' <<<"$out") == $'result 0:0\nresult 1:1\nresult 2:4\nresult 3:9\nresult 4:16' ]] ||
  fail "pool results: $out"
"$bin" --n=2 --sleep=0 --mode=pool --start_method=spawn >/dev/null 2>&1 &&
  fail "pool/spawn should fail (unsupported)"

# pipe: one mp::Pipe per child, results collected with mp::Wait (fork only).
out=$("$bin" --n=4 --sleep=0 --mode=pipe) || fail "pipe exit $?"
expect_squares "$out" 4
[[ $(grep '^result' <<<"$out") == $'result 0:0\nresult 1:1\nresult 2:4\nresult 3:9' ]] ||
  fail "pipe results: $out"
"$bin" --n=2 --sleep=0 --mode=pipe --start_method=spawn >/dev/null 2>&1 &&
  fail "pipe/spawn should fail (unsupported)"

# The per-number lines of one process stay together and in order.
out=$("$bin" --n=1 --sleep=0 --mode=process)
[[ $(grep -v '^Time' <<<"$out") == $'start process:0\nsquare 0:0\nend process:0' ]] ||
  fail "order: $out"

# n=0 squares nothing.
out=$("$bin" --n=0 --sleep=0 --mode=process) || fail "n=0 exit $?"
[[ $(grep -c '^square' <<<"$out") == 0 ]] || fail "n=0: $out"

# compare: serial first, a summary naming every mode.
out=$("$bin" --n=2 --sleep=0 --mode=compare) || fail "compare exit $?"
[[ $(grep '^==' <<<"$out" | head -1) == "== serial ==" ]] || fail "serial first: $out"
summary=$(grep '^Summary' <<<"$out") || fail "no summary: $out"
for mode in $modes; do
  [[ $mode == compare ]] && continue
  grep -q "$mode [0-9.]*s" <<<"$summary" || fail "$mode not in: $summary"
done
[[ $(grep -c '^square 1:1$' <<<"$out") == $(( $(wc -w <<<"$modes") - 1 )) ]] ||
  fail "each mode once: $out"

# --help: usage on stdout, status 0.
out=$("$bin" --help) || fail "--help exit $?"
grep -q -- "--mode" <<<"$out" || fail "help lacks --mode: $out"
grep -q "process" <<<"$out" || fail "help lacks the modes: $out"

# Bad command lines: a message on stderr and status 2.
expect_usage_error() {
  local want="$1"; shift
  local err status
  err=$("$bin" "$@" 2>&1 >/dev/null); status=$?
  [[ $status == 2 ]] || fail "$* exited $status, want 2"
  grep -q -- "$want" <<<"$err" || fail "$*: want '$want' in: $err"
}
expect_usage_error "unknown flag '--bogus'" --bogus
expect_usage_error "unknown flag" --bogus=1
expect_usage_error "bad value for --n" --n=abc
expect_usage_error "bad value for --sleep" --sleep=fast
expect_usage_error "--n must be in" --n=-1
expect_usage_error "--n must be in" --n=10001
expect_usage_error "--sleep must be in" --sleep=-1
expect_usage_error "unknown mode 'nope'" --mode=nope
expect_usage_error "unknown start method" --start_method=thread
expect_usage_error "unexpected argument 'extra'" extra
expect_usage_error "needs a value" --n
expect_usage_error "bad value for --list_modes" --list_modes=maybe

if ((failures)); then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo PASS
