"""End-to-end tests of the pmap binary, compared with GNU parallel.

Each comparison runs the same options and inputs through pmap and through
GNU parallel (/usr/bin/parallel, with --will-cite, HOME in a temp dir and
PARALLEL_SHELL=/bin/sh so both use the same shell) and checks stdout and
the exit status. The rest checks pmap's own promises: no interleaving,
termination of whole process groups on SIGINT/SIGTERM, the progress bar in
a real terminal (tmux), errors.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

PMAP = None
PARALLEL = "/usr/bin/parallel"


def find_pmap():
    for a in sys.argv[1:]:
        if a.endswith("pmap"):
            return os.path.abspath(a)
    return os.environ.get("PMAP", "")


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pmap_e2e_", dir=os.environ.get("TEST_TMPDIR"))
        cls.home = os.path.join(cls.tmp, "home")
        os.mkdir(cls.home)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def env(self):
        e = dict(os.environ)
        e["HOME"] = self.home
        e["PARALLEL_SHELL"] = "/bin/sh"
        e["LC_ALL"] = "C"
        return e

    def run_tool(self, tool, args, stdin=None, timeout=30):
        cmd = ([PMAP] if tool == "pmap" else [PARALLEL, "--will-cite"]) + list(args)
        p = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=self.env(),
                           timeout=timeout, cwd=self.tmp)
        return p.returncode, p.stdout, p.stderr

    def pmap(self, args, stdin=None, timeout=30):
        return self.run_tool("pmap", args, stdin, timeout)

    def same(self, args, stdin=None, sort=False):
        """Runs both; asserts equal stdout and exit status; returns pmap's."""
        rc, out, err = self.pmap(args, stdin)
        prc, pout, perr = self.run_tool("parallel", args, stdin)
        if sort:
            out, pout = sorted(out.splitlines()), sorted(pout.splitlines())
        self.assertEqual(out, pout, "stdout differs for %r\npmap stderr: %s" % (args, err))
        self.assertEqual(rc, prc, "exit status differs for %r\npmap stderr: %s\nparallel stderr: %s"
                         % (args, err, perr))
        return rc, out, err


class CompareWithParallel(Base):
    def test_cross_product(self):
        self.same(["-k", "echo", ":::", "a", "b", ":::", "1", "2"])

    def test_linked_sources(self):
        self.same(["-k", "echo", "{1}-{2}", ":::", "a", "b", ":::+", "1", "2", "3"])

    def test_max_args(self):
        self.same(["-k", "-n2", "echo", ":::", "a", "b", "c"])
        self.same(["-k", "-n2", "echo", "{2}", "{1}"], stdin=b"a\nb\nc\nd\n")

    def test_stdin_and_empty_lines(self):
        self.same(["-k", "echo", "x{}"], stdin=b"a\n\nb\n")
        self.same(["-k", "echo"], stdin=b"no trailing newline")

    def test_colsep(self):
        self.same(["-k", "--colsep", "\t", "echo", "{1}={2}={}"], stdin=b"x y\tz\nq\tr\n")

    def test_path_replacements(self):
        self.same(["-k", "echo", "{.}", "{/}", "{//}", "{/.}", ":::", "/x/y.tar.gz", "z", "a/b.c"])
        self.same(["-k", "echo", "{1.}", "{2/}", ":::", "x.y", ":::", "p/q"])

    def test_seq_and_slot(self):
        self.same(["-j1", "-k", "echo", "{#}", "{%}", ":::", "a", "b", "c"])

    def test_job_environment(self):
        self.same(["-j1", "-k", "echo $PARALLEL_SEQ $PARALLEL_JOBSLOT {}", ":::", "a", "b"])

    def test_tag(self):
        self.same(["--tag", "-k", "echo", "hi", ":::", "a", "b", ":::", "c"])

    def test_keep_order_while_parallel(self):
        self.same(["-k", "-j4", "sleep {}; echo {}", ":::", "0.3", "0.1", "0.2", "0"])

    def test_hostile_inputs_are_passed_literally(self):
        hostile = ["a  b", "$(echo hi)", "`echo x`", '"', "\\", "*", ";ls", "&", "|",
                   ">", "<", "(", ")", " ", "!", "-e", "-n", "it's", "'", "a\nb", "",
                   "~", "$HOME", "{}", "%s", "a'b\"c", "\t", "#x", "é", "--", "-"]
        data = b"\0".join(h.encode() for h in hostile) + b"\0"
        rc, out, _ = self.same(["-k", "-0", "printf '<%s>\\n' {}"], stdin=data)
        self.assertEqual(rc, 0)
        expected = "".join("<%s>\n" % h for h in hostile).encode()
        self.assertEqual(out, expected)
        # Also through ::: words and with the value inside a word.
        words = [h for h in hostile if "\n" not in h]
        self.same(["-k", "printf '[%s]\\n' x{}y", ":::"] + words)
        # Without a shell the same values arrive as argv.
        rc, out, _ = self.same(["-k", "-q", "printf", "<%s>\\n", ":::"] + words)
        self.assertEqual(out, "".join("<%s>\n" % h for h in words).encode())

    def test_dry_run_quoting(self):
        self.same(["-k", "--dry-run", "echo", ":::", "a b", "it's", "$x", "abc", "a=b", "'", "a'"])

    def test_exit_status_counts_failures(self):
        self.same(["exit {}", ":::", "0", "1", "2"])
        self.same(["-j4", "false", ":::"] + [str(i) for i in range(102)])  # 101
        self.same(["exit 300 {}", ":::", "1"])

    def test_halt(self):
        self.same(["-j1", "--halt", "now,fail=1", "echo {}; exit {}", ":::", "0", "3", "4", "0"])
        self.same(["-j1", "--halt", "soon,fail=2", "echo {}; exit {}", ":::", "0", "3", "4", "0", "5"])
        self.same(["-j1", "--halt", "now,success=1", "echo {}; exit {}", ":::", "2", "0", "3"])
        self.same(["-j1", "--halt", "now,done=2", "echo {}; exit {}", ":::", "2", "0", "3"])

    def test_retries_print_only_the_last_attempt(self):
        counter = os.path.join(self.tmp, "count")
        for tool in ("pmap", "parallel"):
            if os.path.exists(counter):
                os.unlink(counter)
            rc, out, _ = self.run_tool(tool, ["-j1", "--retries", "3",
                                              "echo x >> %s; echo try; exit 1" % counter, ":::", "a"])
            self.assertEqual((rc, out), (1, b"try\n"), tool)
            with open(counter) as f:
                self.assertEqual(f.read(), "x\nx\nx\n", tool)

    def test_missing_program(self):
        self.same(["nonexistent_cmd_xyz", ":::", "1"])
        rc, _, err = self.pmap(["-q", "nonexistent_cmd_xyz", ":::", "1"])
        self.assertEqual(rc, 1)
        self.assertIn(b"nonexistent_cmd_xyz", err)

    def test_input_files(self):
        f = os.path.join(self.tmp, "inputs.txt")
        with open(f, "w") as fh:
            fh.write("l1\nl2\n")
        self.same(["-k", "echo", "::::", f])
        self.same(["-k", "-a", f, "echo"])
        self.same(["-k", "echo", ":::", "a", "::::", f])

    def test_delimiter(self):
        self.same(["-k", "-d", ",", "echo"], stdin=b"a,b,c")

    def test_joblog_and_resume(self):
        logs = {}
        for tool in ("pmap", "parallel"):
            log = os.path.join(self.tmp, "joblog_" + tool)
            script = "echo {}; exit {}"
            rc1, _, _ = self.run_tool(tool, ["-k", "-j1", "--joblog", log, script, ":::", "0", "1", "3"])
            rc2, out2, _ = self.run_tool(tool, ["-k", "-j1", "--resume", "--joblog", log, script,
                                                ":::", "0", "1", "3", "4"])
            rc3, out3, _ = self.run_tool(tool, ["-k", "-j1", "--resume-failed", "--joblog", log,
                                                script, ":::", "0", "1", "3", "4"])
            with open(log) as fh:
                lines = fh.read().splitlines()
            logs[tool] = (rc1, rc2, out2, rc3, out3, lines)
        self.assertEqual(logs["pmap"][:5], logs["parallel"][:5])
        plines, glines = logs["pmap"][5], logs["parallel"][5]
        self.assertEqual(len(plines), len(glines))
        self.assertEqual(plines[0], glines[0])  # header
        for p, g in zip(plines[1:], glines[1:]):
            pf, gf = p.split("\t"), g.split("\t")
            self.assertEqual(len(pf), 9)
            self.assertRegex(pf[2], r"^\d+\.\d{3}$")
            self.assertRegex(pf[3], r"^ *\d+\.\d{3}$")
            self.assertEqual(len(pf[3]), 10)
            # Seq, Host, Send, Receive, Exitval, Signal, Command
            self.assertEqual([pf[i] for i in (0, 1, 4, 5, 6, 7, 8)],
                             [gf[i] for i in (0, 1, 4, 5, 6, 7, 8)])

    def test_timeout(self):
        log = os.path.join(self.tmp, "timeout_log")
        start = time.time()
        rc, out, err = self.pmap(["--joblog", log, "--timeout", "0.5", "sleep {}; echo {}",
                                  ":::", "0.1", "5"])
        self.assertLess(time.time() - start, 4)
        prc, pout, _ = self.run_tool("parallel", ["--timeout", "0.5", "sleep {}; echo {}",
                                                  ":::", "0.1", "5"])
        self.assertEqual((rc, out), (prc, pout))
        self.assertEqual(rc, 1)
        with open(log) as fh:
            last = fh.read().splitlines()[-1].split("\t")
        self.assertEqual((last[6], last[7]), ("-1", "15"))
        self.assertIn(b"timed out", err)

    def test_bad_option_is_255(self):
        rc, _, err = self.pmap(["--bogus", "echo"])
        prc, _, _ = self.run_tool("parallel", ["--bogus", "echo"])
        self.assertEqual((rc, prc), (255, 255))
        self.assertIn(b"unknown option: --bogus", err)


class PmapOwn(Base):
    def test_missing_command_and_bad_values(self):
        for args in ([], [":::", "a"], ["-j", "x", "echo"], ["--halt", "bad", "echo"],
                     ["--colsep", "(", "echo", ":::", "a"], ["echo", "::::", "/nonexistent/f"],
                     ["--timeout", "abc", "echo"], ["--resume", "echo"]):
            rc, out, err = self.pmap(args)
            self.assertEqual(rc, 255, args)
            self.assertTrue(err.startswith(b"pmap: "), (args, err))
            self.assertEqual(out, b"")

    def test_help_documents_options(self):
        rc, out, _ = self.pmap(["--help"])
        self.assertEqual(rc, 0)
        for opt in ("--jobs", "--keep-order", "--line-buffer", "--ungroup", "--tag", "--joblog",
                    "--resume-failed", "--bar", "--timeout", "--retries", "--halt", "--term-seq",
                    "--delay", "--dry-run", "--colsep", "--match", "--filter", "--null",
                    "{//}", "{#}", "{%}", ":::+", "::::"):
            self.assertIn(opt.encode(), out, opt)

    def test_group_output_is_never_interleaved(self):
        script = "for i in 1 2 3 4; do echo {}-$i; sleep 0.02; done; echo {}-err >&2"
        rc, out, err = self.pmap(["-j4", script, ":::", "a", "b", "c", "d"])
        self.assertEqual(rc, 0)
        lines = out.decode().splitlines()
        self.assertEqual(len(lines), 16)
        for k in range(0, 16, 4):
            tag = lines[k].split("-")[0]
            self.assertEqual(lines[k:k + 4], ["%s-%d" % (tag, i) for i in range(1, 5)])
        self.assertEqual(sorted(err.decode().splitlines()), ["a-err", "b-err", "c-err", "d-err"])

    def test_line_buffer_and_ungroup(self):
        script = "echo {}-1; sleep 0.05; echo {}-2"
        for mode in ("--line-buffer", "-u"):
            rc, out, _ = self.pmap([mode, "-j2", script, ":::", "a", "b"])
            self.assertEqual(rc, 0)
            self.assertEqual(sorted(out.decode().splitlines()), ["a-1", "a-2", "b-1", "b-2"])
        rc, out, _ = self.pmap(["--line-buffer", "--tag", "-j2", "printf 'x\\ny'", ":::", "a"])
        self.assertEqual(out, b"a\tx\na\ty")

    def test_match_and_filter(self):
        rc, out, err = self.pmap(["-k", "--match", r"(\w+)-(\d+)", "echo", "{m2}:{m1}",
                                  ":::", "ab-12", "nope", "c-3"])
        self.assertEqual((rc, out), (0, b"12:ab\n3:c\n"))
        self.assertIn(b"skipped 1 input", err)
        rc, out, _ = self.pmap(["-k", "--filter", "^a", "echo", ":::", "ab", "b", "ac"])
        self.assertEqual(out, b"ab\nac\n")

    def test_delay_spaces_starts(self):
        log = os.path.join(self.tmp, "delay_log")
        self.pmap(["-j3", "--delay", "0.2", "--joblog", log, "true", ":::", "1", "2", "3"])
        with open(log) as fh:
            starts = sorted(float(l.split("\t")[2]) for l in fh.read().splitlines()[1:])
        self.assertEqual(len(starts), 3)
        self.assertGreaterEqual(starts[1] - starts[0], 0.19)
        self.assertGreaterEqual(starts[2] - starts[1], 0.19)

    def test_direct_exec_matches_shell(self):
        # `sleep`, `cat` need no shell: pmap execs them; results must match sh.
        f = os.path.join(self.tmp, "a file")
        with open(f, "w") as fh:
            fh.write("content\n")
        rc, out, _ = self.pmap(["-k", "cat", ":::", f, f])
        self.assertEqual((rc, out), (0, b"content\ncontent\n"))
        rc, out, err = self.pmap(["-k", "cat", ":::", "/nonexistent"])
        self.assertEqual(rc, 1)
        self.assertIn(b"/nonexistent", err)

    def test_script_without_shebang_runs_like_in_sh(self):
        d = tempfile.mkdtemp(dir=self.tmp)
        with open(os.path.join(d, "noshebang"), "w") as f:
            f.write("echo script:$1\n")
        os.chmod(os.path.join(d, "noshebang"), 0o755)
        env = self.env()
        env["PATH"] = d + ":" + env["PATH"]
        p = subprocess.run([PMAP, "-k", "noshebang", ":::", "a", "b"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual((p.returncode, p.stdout), (0, b"script:a\nscript:b\n"), p.stderr)

    def _wait_for_pids(self, d, names, per_file):
        deadline = time.time() + 10
        while time.time() < deadline:
            pids = []
            ok = True
            for n in names:
                try:
                    with open(os.path.join(d, n)) as fh:
                        got = [int(x) for x in fh.read().split()]
                except (OSError, ValueError):
                    got = []
                if len(got) < per_file:
                    ok = False
                pids += got
            if ok:
                return pids
            time.sleep(0.05)
        self.fail("jobs did not start")

    def _alive(self, pid):
        try:
            with open("/proc/%d/stat" % pid) as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
            return state != "Z"
        except OSError:
            return False

    def _signal_test(self, sig, expected_rc):
        d = tempfile.mkdtemp(dir=self.tmp)
        script = ("echo $$ > %s/{}.tmp; sleep 100 & echo $! >> %s/{}.tmp; "
                  "mv %s/{}.tmp %s/{}; sleep 100") % (d, d, d, d)
        p = subprocess.Popen([PMAP, "-j2", script, ":::", "a", "b", "c"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=self.env(), start_new_session=True)
        pids = self._wait_for_pids(d, ["a", "b"], 2)
        for pid in pids:
            self.assertTrue(self._alive(pid))
        p.send_signal(sig)
        out, err = p.communicate(timeout=10)
        self.assertEqual(p.returncode, expected_rc, err)
        deadline = time.time() + 5
        while time.time() < deadline and any(self._alive(x) for x in pids):
            time.sleep(0.05)
        self.assertEqual([x for x in pids if self._alive(x)], [])
        self.assertFalse(os.path.exists(os.path.join(d, "c")))  # no new job

    def test_sigint_terminates_whole_process_groups(self):
        self._signal_test(signal.SIGINT, 130)

    def test_sigterm_terminates_whole_process_groups(self):
        self._signal_test(signal.SIGTERM, 143)

    def test_halt_now_kills_running_jobs(self):
        start = time.time()
        rc, out, _ = self.pmap(["-j2", "--halt", "now,fail=1", "sleep {}; exit 7", ":::", "0.1", "30"])
        self.assertEqual(rc, 7)
        self.assertLess(time.time() - start, 10)

    def test_huge_outputs_are_whole(self):
        script = "head -c 3000000 /dev/zero | tr '\\0' {}"
        rc, out, _ = self.pmap(["-j2", script, ":::", "a", "b"])
        self.assertEqual(rc, 0)
        self.assertEqual(len(out), 6000000)
        first = out[:1]
        self.assertEqual(out[:3000000], first * 3000000)
        self.assertEqual(set(out[3000000:]), {b"b"[0] if first == b"a" else b"a"[0]})

    def test_closed_stdout_stops_the_run(self):
        d = tempfile.mkdtemp(dir=self.tmp)
        p = subprocess.Popen("%s -k -j2 'echo {}; touch %s/{}' ::: $(seq 1000) | head -1"
                             % (PMAP, d), shell=True, stdout=subprocess.PIPE, env=self.env())
        out, _ = p.communicate(timeout=20)
        self.assertEqual(out, b"1\n")
        self.assertLess(len(os.listdir(d)), 1000)

    def test_keep_order_large_run_bounded(self):
        n = 2000
        rc, out, _ = self.pmap(["-k", "-j4", "echo"], stdin="".join("%d\n" % i for i in range(n)).encode())
        self.assertEqual(rc, 0)
        self.assertEqual(out.decode().splitlines(), [str(i) for i in range(n)])

    @unittest.skipUnless(shutil.which("tmux"), "tmux not installed")
    def test_progress_bar_in_terminal(self):
        sock = "pmaptest%d" % os.getpid()
        done = os.path.join(self.tmp, "bar_done")
        out = os.path.join(self.tmp, "bar_out")
        cmd = "%s --bar -j2 sleep ::: %s > %s; echo $? > %s; sleep 30" % (
            PMAP, " ".join(["0.3"] * 8), out, done)
        env = self.env()
        env.pop("TMUX", None)
        # A short private directory for the socket (sun_path has 108 bytes),
        # removed afterwards.
        sock_dir = tempfile.mkdtemp(prefix="pmt", dir="/tmp")
        env["TMUX_TMPDIR"] = sock_dir
        try:
            subprocess.run(["tmux", "-L", sock, "-f", "/dev/null", "new-session", "-d",
                            "-x", "120", "-y", "30", "sh", "-c", cmd], check=True, env=env)
            seen_partial = False
            deadline = time.time() + 20
            while time.time() < deadline and not os.path.exists(done):
                pane = subprocess.run(["tmux", "-L", sock, "capture-pane", "-p"],
                                      stdout=subprocess.PIPE, env=env).stdout.decode()
                if re.search(r"\b([1-9]|[1-9]\d)% \d+:\d+=\d+:\d\d ETA \[#*\.+\]", pane):
                    seen_partial = True
                time.sleep(0.1)
            time.sleep(0.2)
            pane = subprocess.run(["tmux", "-L", sock, "capture-pane", "-p"],
                                  stdout=subprocess.PIPE, env=env).stdout.decode()
            with open(done) as fh:
                self.assertEqual(fh.read().strip(), "0")
            self.assertIn("100% 8:0=0:00 ETA [", pane)
            self.assertTrue(seen_partial, pane)
        finally:
            subprocess.run(["tmux", "-L", sock, "kill-server"], stderr=subprocess.DEVNULL, env=env)
            shutil.rmtree(sock_dir, ignore_errors=True)
        # Not a terminal: no bar at all.
        rc, _, err = self.pmap(["--bar", "true", ":::", "1"])
        self.assertEqual((rc, err), (0, b""))


if __name__ == "__main__":
    PMAP = find_pmap()
    if not PMAP or not os.path.exists(PMAP):
        sys.exit("pass the pmap binary as an argument or in $PMAP")
    unittest.main(argv=[sys.argv[0]])
