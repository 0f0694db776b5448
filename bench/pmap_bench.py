#!/usr/bin/env python3
"""pmap against xargs -P and GNU parallel: per-job overhead and start-up.

Usage: bench/pmap_bench.py KEY...   (prints one JSON line {key: value})

Keys (seconds per job unless noted; wall time / jobs, best of --reps runs):
  {pmap,xargs,parallel}_true_1000   1000 jobs of `true`, 2 at a time
  {pmap,xargs,parallel}_sleep_200   200 jobs of `sleep 0.01`, 2 at a time
                                    (floor: 5 ms/job, the sleeps themselves)
  {pmap,xargs,parallel}_sleep_200_overhead   the same run's per-job
                                    overhead: seconds per job above that
                                    5 ms floor (what the runner adds)
  {pmap,xargs,parallel}_startup     one run with no input (seconds per run)
  pmap_echo_k_100000                100 000 `echo` jobs with -k, -j2
  pmap_echo_k_{1000,100000}_maxrss_mib   max RSS of that run (MiB, not s)

The commands compared (same inputs on stdin, one per line):
  pmap -j2 CMD          xargs -P2 -n1 CMD          parallel -j2 CMD

The pmap binary: $PMAP_BIN, else built with `$MP_BAZEL build -c opt
//tools/pmap:pmap` (MP_BAZEL defaults to "bazel"). GNU parallel runs with
--will-cite and HOME in a temp dir. MP_BENCH_REPS sets the repetitions (3).
"""
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLEEP_SECONDS = 0.01


def pmap_binary():
    if os.environ.get("PMAP_BIN"):
        return os.environ["PMAP_BIN"]
    bazel = shlex.split(os.environ.get("MP_BAZEL", "bazel"))
    subprocess.run(bazel + ["build", "-c", "opt", "//tools/pmap:pmap"], cwd=ROOT,
                   check=True, stdout=sys.stderr)
    bin_dir = subprocess.run(bazel + ["info", "-c", "opt", "bazel-bin"], cwd=ROOT, check=True,
                             stdout=subprocess.PIPE, text=True).stdout.strip()
    return os.path.join(bin_dir, "tools", "pmap", "pmap")


def run(cmd, stdin_path, env, rss=False):
    """Runs cmd with stdin from a file, stdout to /dev/null; returns
    (wall seconds, max RSS in KiB or None).

    The RSS comes from /usr/bin/time (package "time"): a child forked by
    Python would carry Python's own RSS as its high-water mark."""
    if rss:
        cmd = ["/usr/bin/time", "-f", "%M", "-o", os.path.join(env["HOME"], "rss")] + cmd
    with open(stdin_path, "rb") as fin, open(os.devnull, "wb") as fout:
        start = time.perf_counter()
        rc = subprocess.call(cmd, stdin=fin, stdout=fout, env=env)
        wall = time.perf_counter() - start
    if rc != 0:
        raise SystemExit("%s exited %d" % (cmd, rc))
    if rss:
        with open(os.path.join(env["HOME"], "rss")) as f:
            return wall, int(f.read().split()[-1])
    return wall, None


def main(keys):
    reps = int(os.environ.get("MP_BENCH_REPS", "3"))
    tmp = tempfile.mkdtemp(prefix="pmap_bench_")
    env = dict(os.environ, HOME=tmp, PARALLEL_SHELL="/bin/sh", LC_ALL="C")
    pmap = pmap_binary() if any(k.startswith("pmap") for k in keys) else None
    tools = {
        "pmap": lambda cmd: [pmap, "-j2"] + cmd,
        "xargs": lambda cmd: ["xargs", "-P2", "-n1"] + cmd,
        "parallel": lambda cmd: ["parallel", "--will-cite", "-j2"] + cmd,
    }

    def inputs(name, lines):
        path = os.path.join(tmp, name)
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.writelines(line + "\n" for line in lines)
        return path

    # Plan every measurement first, then run the repetitions round-robin so
    # that load drifting on a shared machine hits every runner alike.
    plans = {}  # (tool, what) -> (argv, stdin, jobs, runs, rss)
    for key in keys:
        tool, _, what = key.partition("_")
        what = what.replace("_maxrss_mib", "").replace("_overhead", "")
        if what == "true_1000":
            cmd, stdin, jobs = ["true"], inputs("n1000", map(str, range(1000))), 1000
        elif what == "sleep_200":
            cmd, stdin, jobs = ["sleep"], inputs("s200", [str(SLEEP_SECONDS)] * 200), 200
        elif what == "startup":
            cmd, stdin, jobs = ["true"], os.devnull, 1
        elif what.startswith("echo_k_"):
            n = int(what.split("_")[2])
            cmd, stdin, jobs = ["-k", "echo"], inputs("e%d" % n, map(str, range(n))), n
        else:
            raise SystemExit("unknown key " + key)
        if tool not in tools:
            raise SystemExit("unknown tool in " + key)
        argv = tools[tool](cmd)
        if what == "startup":
            argv = [a for a in argv if a not in ("-j2", "-P2")]
        runs = 20 * reps if what == "startup" else (1 if jobs > 10000 else reps)
        plans[(tool, what)] = (argv, stdin, jobs, runs, what.startswith("echo_k_"))
    measured = {p: [] for p in plans}
    for rep in range(max(p[3] for p in plans.values())):
        for p, (argv, stdin, jobs, runs, rss) in plans.items():
            if rep < runs:
                measured[p].append(run(argv, stdin, env, rss=rss))
    results = {}
    for key in keys:
        tool, _, what = key.partition("_")
        p = (tool, what.replace("_maxrss_mib", "").replace("_overhead", ""))
        if what.endswith("maxrss_mib"):
            results[key] = max(r for _, r in measured[p]) / 1024.0
        elif what.endswith("_overhead"):
            # Two 10 ms sleeps at a time: 5 ms of every job is the job itself.
            floor = SLEEP_SECONDS / 2
            results[key] = min(w for w, _ in measured[p]) / plans[p][2] - floor
        else:
            results[key] = min(w for w, _ in measured[p]) / plans[p][2]
    shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])
