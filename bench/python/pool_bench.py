#!/usr/bin/env python3
"""Python's multiprocessing.Pool / ProcessPoolExecutor: the peers of
bench/pool_benchmark.cc. Usage: pool_bench.py KEY...; prints one JSON line
{key: seconds_per_item}. Pools are started before timing, as in the C++
benchmark. Keys:
  map_200k          Pool.map of 200 000 x*x, default chunksize (per item)
  map_chunk1_20k    Pool.map of 20 000 x*x, chunksize=1 (per item)
  apply_async_rtt   apply_async(...).get(), one in flight (per call)
  executor_submit   ProcessPoolExecutor.submit x 10 000 + result() (per task)
  executor_map      ProcessPoolExecutor.map of 10 000 (per task)
  result_1mib       Pool.map returning 1 MiB results, chunksize=1 (per result)
  start_close_join  Pool(2) start + close + join (per pool)
  start_close_join_forkserver, start_close_join_spawn
                    the same with get_context("forkserver") / ("spawn")
"""
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

SMOKE = bool(os.environ.get("MP_BENCH_SMOKE"))


def square(x):
    return x * x


def mib(_):
    return b"r" * (1 << 20)


def timed(fn, items, repeat=3):
    best = None
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        dt = (time.perf_counter() - t) / items
        best = dt if best is None else min(best, dt)
    return best


def main(keys):
    out = {}
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool() as pool:
        pool.map(square, range(100))  # warm up
        if "map_200k" in keys:
            n = 2000 if SMOKE else 200000
            out["map_200k"] = timed(lambda: pool.map(square, range(n)), n)
        if "map_chunk1_20k" in keys:
            n = 200 if SMOKE else 20000
            out["map_chunk1_20k"] = timed(
                lambda: pool.map(square, range(n), chunksize=1), n)
        if "apply_async_rtt" in keys:
            n = 100 if SMOKE else 5000

            def rtt():
                for i in range(n):
                    pool.apply_async(square, (i,)).get()
            out["apply_async_rtt"] = timed(rtt, n)
        if "result_1mib" in keys:
            n = 4 if SMOKE else 64
            out["result_1mib"] = timed(
                lambda: pool.map(mib, range(n), chunksize=1), n)
    if "executor_submit" in keys or "executor_map" in keys:
        with ProcessPoolExecutor(mp_context=ctx) as ex:
            list(ex.map(square, range(100)))
            n = 100 if SMOKE else 10000
            if "executor_submit" in keys:
                def submit():
                    fs = [ex.submit(square, i) for i in range(n)]
                    for f in fs:
                        f.result()
                out["executor_submit"] = timed(submit, n)
            if "executor_map" in keys:
                out["executor_map"] = timed(
                    lambda: list(ex.map(square, range(n))), n)
    # Pool(2) start + close + join: (rounds, rounds when smoke testing).
    for method, key, rounds in (
            ("fork", "start_close_join", (20, 3)),
            ("forkserver", "start_close_join_forkserver", (5, 2)),
            ("spawn", "start_close_join_spawn", (5, 2))):
        if key not in keys:
            continue
        method_ctx = multiprocessing.get_context(method)
        if method == "forkserver":  # started once, as mp's forkserver is
            p = method_ctx.Pool(1)
            p.close()
            p.join()
        n = rounds[1] if SMOKE else rounds[0]

        def start():
            for _ in range(n):
                p = method_ctx.Pool(2)
                p.close()
                p.join()
        out[key] = timed(start, n, repeat=1)
    print(json.dumps(out))


if __name__ == "__main__":
    main(set(sys.argv[1:]))
