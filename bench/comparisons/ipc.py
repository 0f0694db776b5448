

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
