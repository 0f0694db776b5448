#!/usr/bin/env python3
"""Python's multiprocessing.Queue, measured like bench/queue_benchmark.cc.

  queue_bench.py KEY...   prints {KEY: seconds_per_item} as one JSON line

Keys: put_get_8 (an int per message, ~8 bytes of payload) and put_get_1k
(1 KiB bytes objects): the parent puts, one forked child gets; a batch is
timed until the child acknowledges that it got every value. Stdlib only.
"""
import json
import multiprocessing as mp
import sys
import time

MIN_TIME = 1.0


def consume(q, done, batch):
    n = 0
    while True:
        v = q.get()
        if v is None:
            return
        n += 1
        if n % batch == 0:
            done.put(n)


def measure(value, batch):
    ctx = mp.get_context("fork")
    q, done = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=consume, args=(q, done, batch))
    p.start()
    sent, start = 0, time.perf_counter()
    while True:
        for _ in range(batch):
            q.put(value)
        sent += batch
        while done.get() < sent:
            pass
        elapsed = time.perf_counter() - start
        if elapsed >= MIN_TIME:
            break
    q.put(None)
    p.join()
    return elapsed / sent


CASES = {
    "put_get_8": lambda: measure(12345678, 20000),
    "put_get_1k": lambda: measure(b"v" * 1024, 5000),
}


def main():
    keys = sys.argv[1:] or list(CASES)
    out = {}
    for k in keys:
        if k not in CASES:
            sys.exit("unknown key %r (known: %s)" % (k, ", ".join(CASES)))
        out[k] = CASES[k]()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
