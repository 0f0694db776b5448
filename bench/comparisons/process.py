# mp::Process start+join against a bare fork and Python's multiprocessing.
# Measured in process_static_benchmark, a fully static mp program: the spawn
# start method re-executes the program, so its cost is mostly the program's
# start-up, and Debian ships Google Benchmark only as a shared library (its
# dynamic loading, with libstdc++'s, dominates an exec). process_benchmark measures
# the same cases in the dynamically linked Google Benchmark binary; see
# docs/process.md for both.
# Run: MP_BAZEL="bazel --output_base=$OB" python3 bench/compare.py --area process
COMPARISONS = [
    Comparison("Process start+join (fork) vs bare fork+_exit+waitpid",
               mp=Bench("process_static_benchmark", "BM_ProcessStartJoin/fork"),
               peer=Bench("process_static_benchmark", "BM_BareForkWaitpid"),
               goal=within(1.5)),
    Comparison("Process start+join (fork) vs Python fork",
               mp=Bench("process_static_benchmark", "BM_ProcessStartJoin/fork"),
               peer=Script("python/process_bench.py", "fork_start_join"),
               goal=at_least(7)),
    Comparison("Process start+join (forkserver) vs Python forkserver",
               mp=Bench("process_static_benchmark", "BM_ProcessStartJoin/forkserver"),
               peer=Script("python/process_bench.py", "forkserver_start_join"),
               goal=at_least(10)),
    Comparison("Process start+join (spawn) vs Python spawn",
               mp=Bench("process_static_benchmark", "BM_ProcessStartJoin/spawn"),
               peer=Script("python/process_bench.py", "spawn_start_join"),
               goal=at_least(50)),
]
