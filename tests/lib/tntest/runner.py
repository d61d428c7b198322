"""The runner: a test file's test_* functions run in source order, each
under a time limit; everything a test opened is closed after it; the
verdict is "PASS name", "SKIP name: why" or "FAIL name" (with the
traceback, the problems and the daemons' logs, then "FAIL name: last line"
again so that a tail shows it).  The file ends with "FILE: N passed, N
failed, N skipped" and exits 0 when all ran and passed, 1 when one failed,
77 when all skipped."""

import os
import signal
import subprocess
import sys
import time
import traceback

from .config import SANITIZER_PATTERNS, TALKNETD

# One test's limit; a stress test's module raises it.
TEST_TIMEOUT = int(os.environ.get("TN_TEST_TIMEOUT", "120"))


class Skip(Exception):
    pass


class Scoped:
    """A with block whose end calls self.end() (stop, close, kill)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.end()
        return False


# ---------------------------------------------------------------------------
# Per-test bookkeeping: everything a test opens is closed by the runner

class _Ctx:
    def __init__(self):
        self.servers = []
        self.clients = []
        self.procs = []


_ctx = _Ctx()


def ctx():
    """The running test's bookkeeping: its servers, clients, programs."""
    return _ctx


def start_program(argv):
    """Starts a program with stdin closed and its output piped; the runner
    kills it if it is still running when the test ends."""
    p = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _ctx.procs.append(p)
    return p


def finish_program(p, timeout):
    """Waits for a started program; returns (status, stdout, stderr).  One
    that keeps running is killed and the test fails, as it does on a
    sanitizer report."""
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate(timeout=5)
        raise AssertionError("%s still running after %d s; killed. "
                             "stderr: %r" % (" ".join(p.args), timeout,
                                             err[-2000:]))
    out = out.decode("utf-8", "replace")
    err = err.decode("utf-8", "replace")
    for pat in SANITIZER_PATTERNS:
        assert pat not in err, "sanitizer report:\n%s" % err
    return p.returncode, out, err


def run_program(argv, timeout):
    """Runs a program to its end: start_program, then finish_program."""
    return finish_program(start_program(argv), timeout)


def wait_until(pred, timeout, interval=0.02, what="condition"):
    """Polls pred() until it returns a true value (returned) or raises
    AssertionError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            if callable(what):
                what = what()
            raise AssertionError("timed out after %.1f s waiting for %s"
                                 % (timeout, what))
        time.sleep(interval)


# ---------------------------------------------------------------------------
# The runner

def _alarm(signum, frame):
    raise TimeoutError("test took longer than %d s" % TEST_TIMEOUT)


def _cleanup(c):
    """Closes what the test c opened; returns the problems found."""
    problems = []
    for cl in c.clients:
        cl.close()
    for s in c.servers:
        try:
            s.stop()
        except Exception as e:  # keep stopping the others
            problems.append("stopping the daemon failed: %r" % e)
        problems += s.problems
    for p in c.procs:
        if p.poll() is None:
            p.kill()
            p.wait(5)
    return problems


def _print_logs(servers):
    """The logs of the daemons, the last 300 lines of each."""
    for i, s in enumerate(servers):
        print("  ---- daemon log %d (pid %s, %s) ----"
              % (i, s.pid, " ".join(s.argv()[1:])))
        lines = s.log
        if len(lines) > 300:
            print("  ... %d lines skipped" % (len(lines) - 300))
            lines = lines[-300:]
        for line in lines:
            print("  | " + line)


def _report_fail(name, dt, err, problems, servers):
    print("FAIL %s (%.2f s)" % (name, dt))
    if err:
        print(err.rstrip())
    for p in problems:
        print("  problem: %s" % p)
    _print_logs(servers)
    if err and servers:
        # Again after the logs, so that a tail shows it.
        print("FAIL %s: %s" % (name, err.rstrip().splitlines()[-1]))


def _run_one(name, f, shared):
    """Runs one test; returns "pass", "fail" or "skip" once reported."""
    global _ctx
    _ctx = _Ctx()
    t0 = time.monotonic()
    err = None
    skipped = None
    signal.alarm(TEST_TIMEOUT)
    try:
        f()
    except Skip as e:
        skipped = str(e)
    except BaseException:
        if sys.exc_info()[0] is KeyboardInterrupt:
            _cleanup(_ctx)
            raise
        err = traceback.format_exc()
    finally:
        signal.alarm(0)
    try:
        problems = _cleanup(_ctx)
    except BaseException:
        problems = ["cleanup failed:\n" + traceback.format_exc()]
    dt = time.monotonic() - t0
    if err or problems:
        _report_fail(name, dt, err, problems, _ctx.servers + list(shared))
        return "fail"
    if skipped is not None:
        print("SKIP %s: %s" % (name, skipped))
        return "skip"
    print("PASS %s (%.2f s)" % (name, dt))
    return "pass"


def _stop_shared(shared):
    """Stops the daemons the tests shared; a problem fails the file."""
    c = _Ctx()
    c.servers = list(shared)
    problems = _cleanup(c)
    if problems:
        _report_fail("daemon", 0.0, None, problems, shared)
        return 1
    return 0


def run_tests(tests, shared=()):
    """Runs tests, [(name, function)], in turn; shared are daemons that
    live for the whole file (stopped and checked at the end).  Exits."""
    signal.signal(signal.SIGALRM, _alarm)
    n = {"pass": 0, "fail": 0, "skip": 0}
    try:
        for name, f in tests:
            n[_run_one(name, f, shared)] += 1
            sys.stdout.flush()
    finally:
        n["fail"] += _stop_shared(shared)
    print("%s: %d passed, %d failed, %d skipped"
          % (os.path.basename(sys.argv[0]), n["pass"], n["fail"], n["skip"]))
    if n["fail"]:
        sys.exit(1)
    if n["skip"] and not n["pass"]:
        sys.exit(77)
    sys.exit(0)


def main(g):
    """Runs every test_* function of the module globals g in source order
    (or those named on the command line)."""
    tests = sorted((f.__code__.co_firstlineno, name, f)
                   for name, f in g.items()
                   if name.startswith("test_") and callable(f)
                   and hasattr(f, "__code__"))
    only = sys.argv[1:]
    if only:
        tests = [t for t in tests if t[1] in only]
    if not os.access(TALKNETD, os.X_OK):
        print("SKIP all: talknetd not found at %s (set TALKNETD)" % TALKNETD)
        sys.exit(77)
    run_tests([(name, f) for _, name, f in tests])


def run_modules(modules, exclude=(), own=()):
    """Runs own [(name, function)], then the test_* functions of the
    modules (names on sys.path), each module's in source order, less
    those named MODULE.test_name in exclude; or only the modules and
    tests named on the command line (MODULE, MODULE.test_name, or an own
    test's name; a MODULE not in modules runs too).  Exits (run_tests)."""
    import importlib
    only = sys.argv[1:]
    names = list(modules) + [m for m in only if "." not in m and
                             m not in modules and m not in dict(own)]
    tests = list(own)
    for m in names:
        g = vars(importlib.import_module(m))
        fs = sorted((f.__code__.co_firstlineno, n, f) for n, f in g.items()
                    if n.startswith("test_") and callable(f)
                    and hasattr(f, "__code__"))
        tests += [("%s.%s" % (m, n), f) for _, n, f in fs
                  if "%s.%s" % (m, n) not in exclude]
    run_tests([t for t in tests if not only or t[0] in only
               or t[0].split(".")[0] in only])
