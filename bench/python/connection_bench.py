#!/usr/bin/env python3
"""Python's multiprocessing.Pipe, measured like bench/connection_benchmark.cc.

  connection_bench.py KEY...   prints {KEY: seconds_per_item} as one JSON line

Keys: bytes_roundtrip (send_bytes/recv_bytes of 8 bytes, echoed by a child),
obj_roundtrip (send/recv of (1, "abc", 2.0)), bulk_1mib (one-way 1 MiB
send_bytes, acknowledged at the end). Stdlib only.
"""
import json
import multiprocessing as mp
import sys
import time

MIN_TIME = 1.0


def echo_bytes(conn, other):
    other.close()  # the parent's end, inherited by fork
    try:
        while True:
            conn.send_bytes(conn.recv_bytes())
    except EOFError:
        pass


def echo_obj(conn, other):
    other.close()
    try:
        while True:
            conn.send(conn.recv())
    except EOFError:
        pass


def sink(conn, other):
    other.close()
    try:
        while True:
            if not conn.recv_bytes():
                conn.send_bytes(b"k")
    except EOFError:
        pass


def measure(target, one, batch):
    a, b = mp.Pipe()
    p = mp.get_context("fork").Process(target=target, args=(b, a))
    p.start()
    b.close()
    for _ in range(min(batch, 100)):  # warm up
        one(a)
    n, start = 0, time.perf_counter()
    while True:
        for _ in range(batch):
            one(a)
        n += batch
        elapsed = time.perf_counter() - start
        if elapsed >= MIN_TIME:
            break
    a.close()
    p.join()
    return elapsed / n


def bytes_roundtrip():
    msg = b"1234567\0"
    return measure(echo_bytes, lambda a: (a.send_bytes(msg), a.recv_bytes()), 1000)


def obj_roundtrip():
    obj = (1, "abc", 2.0)
    return measure(echo_obj, lambda a: (a.send(obj), a.recv()), 1000)


def bulk_1mib():
    a, b = mp.Pipe()
    p = mp.get_context("fork").Process(target=sink, args=(b, a))
    p.start()
    b.close()
    msg = b"x" * (1 << 20)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < MIN_TIME:
        for _ in range(50):
            a.send_bytes(msg)
        n += 50
    a.send_bytes(b"")
    a.recv_bytes()
    elapsed = time.perf_counter() - start
    a.close()
    p.join()
    return elapsed / n


KEYS = {"bytes_roundtrip": bytes_roundtrip, "obj_roundtrip": obj_roundtrip,
        "bulk_1mib": bulk_1mib}

if __name__ == "__main__":
    print(json.dumps({k: KEYS[k]() for k in sys.argv[1:]}))
