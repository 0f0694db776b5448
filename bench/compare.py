#!/usr/bin/env python3
"""Side-by-side comparison runner: mp against its peers, in one run.

Each area (process, ipc, sync, pool, pmap) lists its comparisons in
bench/comparisons/<area>.py as `COMPARISONS = [Comparison(...), ...]`.
A comparison names two measurements and a goal:

    Comparison("Process start+join (fork) vs bare fork+waitpid",
               mp=Bench("process_benchmark", "BM_ProcessStartJoin/fork"),
               peer=Bench("process_benchmark", "BM_BareForkWaitpid"),
               goal=within(1.5))

A measurement is seconds per item:
  * Bench(binary, name): a Google Benchmark case of //bench:<binary>, built
    with -c opt. Per item = 1/items_per_second when the case sets it,
    otherwise its real time per iteration.
  * Script(path, key): any executable under bench/ (Python programs in
    bench/python/, shell scripts) that, run as `path key1 key2 ...`, prints
    one JSON object {key: seconds_per_item} on its last line of stdout.

ratio = peer / mp seconds per item: "how many times faster mp is".
Goals: at_least(x) means ratio >= x; within(x) means mp <= x * peer, i.e.
ratio >= 1/x; fraction(x) (for bandwidth) means ratio >= x.

Usage (MP_BAZEL overrides the bazel command, e.g. to add --output_base):
  bench/compare.py [--area A ...] [--write-docs] [--min-time 0.5]
Prints a table; --write-docs replaces the area's table in
docs/PERFORMANCE.md (between <!-- compare:AREA --> markers) with the
machine and date. Exit status 1 when a goal is missed (--strict).
"""
import argparse
import datetime
import glob
import importlib.util
import json
import os
import platform
import re
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Bench:
    def __init__(self, binary, name):
        self.binary, self.name = binary, name

    def label(self):
        return "%s:%s" % (self.binary, self.name)


class Script:
    def __init__(self, path, key):
        self.path, self.key = path, key

    def label(self):
        return "%s:%s" % (self.path, self.key)


class Goal:
    def __init__(self, kind, x):
        self.kind, self.x = kind, x

    def threshold(self):
        return 1.0 / self.x if self.kind == "within" else self.x

    def met(self, ratio):
        return ratio >= self.threshold() * (1 - 1e-9)

    def __str__(self):
        if self.kind == "at_least":
            return ">= %gx faster" % self.x
        if self.kind == "within":
            return "within %gx" % self.x
        return ">= %d%% of peer" % round(self.x * 100)


def at_least(x):
    return Goal("at_least", x)


def within(x):
    return Goal("within", x)


def fraction(x):
    return Goal("fraction", x)


class Comparison:
    def __init__(self, title, mp, peer, goal):
        self.title, self.mp, self.peer, self.goal = title, mp, peer, goal
        self.area = None


def load_comparisons(areas):
    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "bench", "comparisons", "*.py"))):
        area = os.path.splitext(os.path.basename(path))[0]
        if area.startswith("_") or (areas and area not in areas):
            continue
        spec = importlib.util.spec_from_file_location("cmp_" + area, path)
        mod = importlib.util.module_from_spec(spec)
        mod.__dict__.update(Bench=Bench, Script=Script, Comparison=Comparison,
                            at_least=at_least, within=within, fraction=fraction)
        spec.loader.exec_module(mod)
        for c in mod.COMPARISONS:
            c.area = area
            out.append(c)
    return out


def seconds_per_item(entry):
    if entry.get("items_per_second"):
        return 1.0 / entry["items_per_second"]
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[entry.get("time_unit", "ns")]
    return entry["real_time"] * scale


def parse_benchmark_json(text):
    """Maps case name -> seconds per item from Google Benchmark's JSON."""
    data = json.loads(text)
    result = {}
    for b in data.get("benchmarks", []):
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        name = b.get("run_name") or b["name"]
        result[name] = seconds_per_item(b)
    return result


def parse_script_output(text):
    lines = [l for l in text.strip().splitlines() if l.strip()]
    if not lines:
        raise ValueError("script printed nothing")
    return {k: float(v) for k, v in json.loads(lines[-1]).items()}


def measurements(comparisons, kind):
    """Maps each source (a benchmark binary or a script) of `kind` to the set
    of names or keys the comparisons need from it."""
    needed = {}
    for c in comparisons:
        for m in (c.mp, c.peer):
            if isinstance(m, kind):
                source, item = (m.binary, m.name) if kind is Bench else (m.path, m.key)
                needed.setdefault(source, set()).add(item)
    return needed


def run_logged(cmd, timeout):
    """Runs cmd from the repository root; its stdout, or None (with the
    reason on stderr) when it fails or outlives `timeout` seconds, so that one
    broken peer leaves its rows "not measured" instead of ending the run."""
    print("+ " + " ".join(cmd), file=sys.stderr)
    try:
        return subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.PIPE,
                              text=True, timeout=timeout).stdout
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        print("compare.py: %s" % e, file=sys.stderr)
        return None


def run_benches(comparisons, min_time, opt, timeout):
    needed = measurements(comparisons, Bench)
    results = {}
    if not needed:
        return results
    # MP_BAZEL lets several checkouts or engineers use their own output base:
    # MP_BAZEL="bazel --output_base=$HOME/.cache/bazel/mine" bench/compare.py
    bazel = shlex.split(os.environ.get("MP_BAZEL", "bazel"))
    targets = ["//bench:%s" % b for b in sorted(needed)]
    subprocess.run(bazel + ["build", "-c", opt] + targets, cwd=ROOT, check=True)
    bin_dir = subprocess.run(bazel + ["info", "-c", opt, "bazel-bin"], cwd=ROOT,
                             check=True, stdout=subprocess.PIPE,
                             text=True).stdout.strip()
    for binary, names in sorted(needed.items()):
        filt = "^(%s)$" % "|".join(re.escape(n) for n in sorted(names))
        out = run_logged([os.path.join(bin_dir, "bench", binary),
                          "--benchmark_format=json", "--benchmark_filter=" + filt,
                          "--benchmark_min_time=%g" % min_time], timeout)
        if out is not None:
            for name, v in parse_benchmark_json(out).items():
                results["%s:%s" % (binary, name)] = v
    return results


def run_scripts(comparisons, timeout):
    results = {}
    for path, keys in sorted(measurements(comparisons, Script).items()):
        exe = os.path.join(ROOT, "bench", path)
        cmd = ([sys.executable, exe] if path.endswith(".py") else [exe]) + sorted(keys)
        out = run_logged(cmd, timeout)
        if out is not None:
            for k, v in parse_script_output(out).items():
                results["%s:%s" % (path, k)] = v
    return results


def human(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return "%.3g %s" % (seconds / scale, unit)
    return "%.3g ns" % (seconds / 1e-9)


def table(rows):
    lines = ["| comparison | mp | peer | ratio (peer/mp) | goal | met |",
             "| --- | --- | --- | --- | --- | --- |"]
    for c, mp_s, peer_s in rows:
        if mp_s is None or peer_s is None:
            lines.append("| %s | %s | %s | - | %s | not measured |" % (
                c.title, human(mp_s) if mp_s else "-",
                human(peer_s) if peer_s else "-", c.goal))
            continue
        ratio = peer_s / mp_s
        lines.append("| %s | %s | %s | %.2fx | %s | %s |" % (
            c.title, human(mp_s), human(peer_s), ratio, c.goal,
            "yes" if c.goal.met(ratio) else "**no**"))
    return "\n".join(lines)


def machine_line():
    cpu = platform.processor() or "unknown cpu"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return "%s, %d cores, Linux %s, Python %s; %s UTC" % (
        cpu, os.cpu_count(), platform.release(), platform.python_version(),
        datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"))


def write_docs(area, text):
    path = os.path.join(ROOT, "docs", "PERFORMANCE.md")
    doc = open(path).read() if os.path.exists(path) else "# Performance\n"
    begin, end = "<!-- compare:%s -->" % area, "<!-- /compare:%s -->" % area
    block = "%s\n%s\n%s" % (begin, text, end)
    if begin in doc and end in doc:
        head, rest = doc.split(begin, 1)
        doc = head + block + rest.split(end, 1)[1]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    open(path, "w").write(doc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--area", action="append", default=[])
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--strict", action="store_true")
    ap.add_argument("-c", dest="opt", default="opt")
    ap.add_argument("--timeout", type=float, default=1200,
                    help="seconds one benchmark binary or script may take")
    args = ap.parse_args()
    comps = load_comparisons(set(args.area))
    if not comps:
        sys.exit("compare.py: no comparisons for %s" % (args.area or "any area"))
    results = run_benches(comps, args.min_time, args.opt, args.timeout)
    results.update(run_scripts(comps, args.timeout))
    missed = 0
    for area in sorted({c.area for c in comps}):
        rows = []
        for c in comps:
            if c.area != area:
                continue
            mp_s, peer_s = results.get(c.mp.label()), results.get(c.peer.label())
            rows.append((c, mp_s, peer_s))
            if mp_s is None or peer_s is None or not c.goal.met(peer_s / mp_s):
                missed += 1
        text = "Measured %s.\n\n%s" % (machine_line(), table(rows))
        print("\n## %s\n%s" % (area, text))
        if args.write_docs:
            write_docs(area, text)
    if args.strict and missed:
        sys.exit(1)


if __name__ == "__main__":
    main()
