"""mp_benchmark(): a Google Benchmark binary plus a smoke test of it.

`bazel run -c opt //bench:queue_benchmark` measures; `bazel test //...` runs
`queue_benchmark_smoke`, every case once with a tiny minimum time, so a
benchmark that stops building or crashes fails CI. A benchmark may read
MP_BENCH_SMOKE=1 (set by the smoke test) to shrink its sizes.
"""

def mp_benchmark(name, srcs, deps = [], data = [], smoke_args = [], **kwargs):
    native.cc_binary(
        name = name,
        srcs = srcs,
        deps = deps + ["@com_github_google_benchmark//:benchmark_main"],
        data = data,
        **kwargs
    )
    native.sh_test(
        name = name + "_smoke",
        size = "medium",
        srcs = ["//bench:smoke.sh"],
        args = ["$(location :%s)" % name] + smoke_args,
        data = [":" + name] + data,
    )
