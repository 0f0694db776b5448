# pmap against xargs -P2 -n1 and GNU parallel -j2 on the same inputs (see
# bench/pmap_bench.py). Per job = wall time / jobs. For `sleep 0.01` every
# runner has a floor of 5 ms/job (two 10 ms sleeps at a time), so its
# per-job overhead is compared: wall time / jobs - 5 ms.
# Run: MP_BAZEL="bazel --output_base=$OB" python3 bench/compare.py --area pmap
COMPARISONS = [
    Comparison("pmap -j2 vs xargs -P2 -n1: 1000 x true (per job)",
               mp=Script("pmap_bench.py", "pmap_true_1000"),
               peer=Script("pmap_bench.py", "xargs_true_1000"),
               goal=within(1.0)),
    Comparison("pmap -j2 vs GNU parallel -j2: 1000 x true (per job)",
               mp=Script("pmap_bench.py", "pmap_true_1000"),
               peer=Script("pmap_bench.py", "parallel_true_1000"),
               goal=at_least(5)),
    Comparison("pmap -j2 vs xargs -P2 -n1: 200 x sleep 0.01 (overhead per job)",
               mp=Script("pmap_bench.py", "pmap_sleep_200_overhead"),
               peer=Script("pmap_bench.py", "xargs_sleep_200_overhead"),
               goal=within(1.0)),
    Comparison("pmap -j2 vs GNU parallel -j2: 200 x sleep 0.01 (overhead per job)",
               mp=Script("pmap_bench.py", "pmap_sleep_200_overhead"),
               peer=Script("pmap_bench.py", "parallel_sleep_200_overhead"),
               goal=at_least(5)),
    Comparison("pmap vs xargs start-up (no input; goal: pmap < 5 ms)",
               mp=Script("pmap_bench.py", "pmap_startup"),
               peer=Script("pmap_bench.py", "xargs_startup"),
               goal=within(3.0)),
    Comparison("pmap vs GNU parallel start-up (no input)",
               mp=Script("pmap_bench.py", "pmap_startup"),
               peer=Script("pmap_bench.py", "parallel_startup"),
               goal=at_least(20)),
]
