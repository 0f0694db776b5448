#!/usr/bin/env python3
"""Python peers of bench/sync_benchmark.cc (stdlib only).

Usage: sync_bench.py KEY...   prints {"KEY": seconds_per_item, ...}
Keys:
  lock_contended   two processes, each N x (with lock: value += 1), using
                   multiprocessing.Lock and a multiprocessing.Value;
                   seconds per increment.
  semaphore_ping_pong  two processes bouncing two multiprocessing.Semaphore;
                   seconds per round trip.
"""
import json
import multiprocessing as mp
import os
import sys
import time

SMOKE = bool(os.environ.get("MP_BENCH_SMOKE"))


def _increment(lock, value, n):
    for _ in range(n):
        with lock:
            value.value += 1


def lock_contended():
    n = 200 if SMOKE else 20000
    ctx = mp.get_context("fork")
    lock = ctx.Lock()
    value = ctx.Value("q", 0, lock=False)
    child = ctx.Process(target=_increment, args=(lock, value, n))
    start = time.perf_counter()
    child.start()
    _increment(lock, value, n)
    child.join()
    elapsed = time.perf_counter() - start
    assert value.value == 2 * n, value.value
    return elapsed / (2 * n)


def _pong(ping, pong, n):
    for _ in range(n):
        ping.acquire()
        pong.release()


def semaphore_ping_pong():
    n = 100 if SMOKE else 5000
    ctx = mp.get_context("fork")
    ping, pong = ctx.Semaphore(0), ctx.Semaphore(0)
    child = ctx.Process(target=_pong, args=(ping, pong, n))
    child.start()
    start = time.perf_counter()
    for _ in range(n):
        ping.release()
        pong.acquire()
    elapsed = time.perf_counter() - start
    child.join()
    return elapsed / n


KEYS = {"lock_contended": lock_contended,
        "semaphore_ping_pong": semaphore_ping_pong}


def main(argv):
    keys = argv[1:] or sorted(KEYS)
    out = {}
    for k in keys:
        if k not in KEYS:
            sys.exit("sync_bench.py: unknown key %r (known: %s)" % (k, ", ".join(sorted(KEYS))))
        out[k] = KEYS[k]()
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
