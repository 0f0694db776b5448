# ipc comparisons: mp::Connection against a raw socketpair in C (same binary)
# and Python's multiprocessing.Pipe (same machine, same run).
# Run: MP_BAZEL="bazel --output_base=$OB" python3 bench/compare.py --area ipc
# (The queue engineer appends Queue rows below.)
PY_CONN = "python/connection_bench.py"

COMPARISONS = [
    Comparison("Pipe 8-byte round trip, SendBytes/RecvBytes vs raw socketpair ping-pong (C)",
               mp=Bench("connection_benchmark", "BM_PipeRoundTripBytes/real_time"),
               peer=Bench("connection_benchmark", "BM_RawSocketpairRoundTrip/real_time"),
               goal=within(1.3)),
    Comparison("Pipe 8-byte round trip, SendBytes/RecvBytes vs Python send_bytes/recv_bytes",
               mp=Bench("connection_benchmark", "BM_PipeRoundTripBytes/real_time"),
               peer=Script(PY_CONN, "bytes_roundtrip"),
               goal=at_least(2)),
    Comparison("Pipe typed round trip, Send/Recv of (1, \"abc\", 2.0) vs Python send/recv",
               mp=Bench("connection_benchmark", "BM_PipeRoundTripTyped/real_time"),
               peer=Script(PY_CONN, "obj_roundtrip"),
               goal=at_least(3)),
    Comparison("Pipe 1 MiB messages one way vs raw socketpair bandwidth (C)",
               mp=Bench("connection_benchmark", "BM_Pipe1MiB/real_time"),
               peer=Bench("connection_benchmark", "BM_RawSocketpair1MiB/real_time"),
               goal=fraction(0.9)),
]

# ---- Queue (queue engineer): one producer process, one consumer process ----
PY_QUEUE = "python/queue_bench.py"
COMPARISONS = globals().get("COMPARISONS", []) + [
    Comparison("Queue 8-byte values, 1 producer + 1 consumer process vs Python multiprocessing.Queue",
               mp=Bench("queue_benchmark", "BM_QueuePutGet<int64_t>/8/real_time"),
               peer=Script(PY_QUEUE, "put_get_8"),
               goal=at_least(100)),
    Comparison("Queue 8-byte values vs Boost.Interprocess message_queue (same binary)",
               mp=Bench("queue_benchmark", "BM_QueuePutGet<int64_t>/8/real_time"),
               peer=Bench("queue_benchmark", "BM_BoostMessageQueue/8/real_time"),
               goal=at_least(3)),
    Comparison("Queue 1 KiB values vs Python multiprocessing.Queue (bytes)",
               mp=Bench("queue_benchmark", "BM_QueuePutGet<std::string>/1024/real_time"),
               peer=Script(PY_QUEUE, "put_get_1k"),
               goal=at_least(10)),
    Comparison("Queue 1 KiB values vs Boost.Interprocess message_queue",
               mp=Bench("queue_benchmark", "BM_QueuePutGet<std::string>/1024/real_time"),
               peer=Bench("queue_benchmark", "BM_BoostMessageQueue/1024/real_time"),
               goal=at_least(1)),
]
