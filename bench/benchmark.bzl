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

def mp_static_benchmark(name, srcs, deps = []):
    """A fully static benchmark binary on //bench:static_harness, plus its smoke test.

    Sanitizers cannot link statically: under --config=asan/ubsan the binary
    is linked dynamically.
    """
    sanitized = {
        "//bench:sanitized_address": [],
        "//bench:sanitized_undefined": [],
    }
    native.cc_binary(
        name = name,
        srcs = srcs,
        features = select(dict(sanitized, **{"//conditions:default": ["fully_static_link"]})),
        linkopts = select(dict(sanitized, **{"//conditions:default": ["-static"]})),
        deps = deps + ["//bench:static_harness"],
    )
    native.sh_test(
        name = name + "_smoke",
        size = "medium",
        srcs = ["//bench:smoke.sh"],
        args = ["$(location :%s)" % name],
        data = [":" + name],
    )
