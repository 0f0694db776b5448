# Pool comparisons: mp::Pool / ProcessPoolExecutor against Python's
# multiprocessing.Pool / concurrent.futures (same machine, same run) and
# against raw C pipes/socketpairs in the same binary.
PY = "python/pool_bench.py"

COMPARISONS = [
    Comparison("Pool.Map 200k trivial tasks, default chunksize vs Python Pool.map",
               mp=Bench("pool_benchmark", "BM_PoolMap/200000/real_time"),
               peer=Script(PY, "map_200k"),
               goal=at_least(7)),
    Comparison("Pool.Map 20k trivial tasks, chunksize=1 vs Python",
               mp=Bench("pool_benchmark", "BM_PoolMapChunksize1/20000/real_time"),
               peer=Script(PY, "map_chunk1_20k"),
               goal=at_least(15)),
    Comparison("ApplyAsync().Get() round trip vs raw pipe ping-pong (C)",
               mp=Bench("pool_benchmark", "BM_PoolApplyAsyncRoundTrip/real_time"),
               peer=Bench("pool_benchmark", "BM_RawPipePingPong/real_time"),
               goal=within(2)),
    Comparison("ApplyAsync().Get() round trip vs Python apply_async().get()",
               mp=Bench("pool_benchmark", "BM_PoolApplyAsyncRoundTrip/real_time"),
               peer=Script(PY, "apply_async_rtt"),
               goal=at_least(15)),
    Comparison("Executor Submit+Result, 10k tasks vs Python ProcessPoolExecutor.map",
               mp=Bench("pool_benchmark", "BM_ExecutorSubmit/10000/real_time"),
               peer=Script(PY, "executor_map"),
               goal=at_least(15)),
    Comparison("1 MiB results through Pool.Map (1 worker) vs raw socketpair bandwidth (C, 1 writer)",
               mp=Bench("pool_benchmark", "BM_PoolResult1MiB/1/real_time"),
               peer=Bench("pool_benchmark", "BM_RawSocketpair1MiB/real_time"),
               goal=fraction(0.7)),
    # Not the peer: the same raw transfer where each 1 MiB lands in a
    # new std::string (zero-filled, then read into) kept until the iteration
    # ends, as Map's results are: what fresh result memory costs when glibc
    # gives it back to the kernel between iterations (page faults).
    Comparison("1 MiB results through Pool.Map vs raw socketpair keeping each result in a new std::string (C, informational)",
               mp=Bench("pool_benchmark", "BM_PoolResult1MiB/1/real_time"),
               peer=Bench("pool_benchmark", "BM_RawSocketpair1MiBKeepResults/real_time"),
               goal=fraction(0.7)),
    Comparison("Pool(2) start + Close + Join vs Python (Google Benchmark binary: libstdc++, glibc shared)",
               mp=Bench("pool_benchmark", "BM_PoolStartCloseJoin/real_time"),
               peer=Script(PY, "start_close_join"),
               goal=at_least(10)),
    # The same in a fully static program, as the Process start rows are
    # measured (bench/pool_static_benchmark.cc: fork copies the program's
    # mappings).
    Comparison("Pool(2) start + Close + Join vs Python (static binary)",
               mp=Bench("pool_static_benchmark", "BM_PoolStartCloseJoin/fork"),
               peer=Script(PY, "start_close_join"),
               goal=at_least(10)),
    Comparison("Pool(2) start + Close + Join, forkserver, vs Python forkserver (static binary)",
               mp=Bench("pool_static_benchmark", "BM_PoolStartCloseJoin/forkserver"),
               peer=Script(PY, "start_close_join_forkserver"),
               goal=at_least(10)),
    Comparison("Pool(2) start + Close + Join, spawn, vs Python spawn (static binary)",
               mp=Bench("pool_static_benchmark", "BM_PoolStartCloseJoin/spawn"),
               peer=Script(PY, "start_close_join_spawn"),
               goal=at_least(10)),
]
