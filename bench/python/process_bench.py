#!/usr/bin/env python3
"""Python's multiprocessing.Process start+join, per start method.

    process_bench.py fork_start_join forkserver_start_join spawn_start_join

Prints one JSON line {key: seconds per start+join}. The forkserver is
started (and warmed up) before timing; spawn is slow, so it runs few times.
"""
import json
import multiprocessing as mp
import sys
import time


def nothing():
    pass


ITERATIONS = {"fork": 200, "forkserver": 100, "spawn": 10}


def start_join(method):
    ctx = mp.get_context(method)
    for _ in range(2):  # warm-up: starts the forkserver, imports, caches
        p = ctx.Process(target=nothing)
        p.start()
        p.join()
    n = ITERATIONS[method]
    t0 = time.perf_counter()
    for _ in range(n):
        p = ctx.Process(target=nothing)
        p.start()
        p.join()
        assert p.exitcode == 0
    return (time.perf_counter() - t0) / n


KEYS = {
    "fork_start_join": lambda: start_join("fork"),
    "forkserver_start_join": lambda: start_join("forkserver"),
    "spawn_start_join": lambda: start_join("spawn"),
}


def main(keys):
    keys = keys or sorted(KEYS)
    unknown = [k for k in keys if k not in KEYS]
    if unknown:
        sys.exit("unknown keys: %s (known: %s)" % (unknown, sorted(KEYS)))
    print(json.dumps({k: KEYS[k]() for k in keys}))


if __name__ == "__main__":
    main(sys.argv[1:])
