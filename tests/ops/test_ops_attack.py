#!/usr/bin/env python3
"""Attacks on what issue 16 added for admins (logs, signals, start-up):
the stale clean-up at start, signal storms, peer data in log lines and
the session accounting.  Each test here failed before the fix named in
its comment."""

import os
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest import ops  # noqa: E402
import tntest  # noqa: E402

T = tntest.TIMEOUT


def _rundirs(d):
    return sorted(n for n in os.listdir(d) if n.startswith("talknetd."))


class NamedServer(tntest.EnvServer):
    """talknetd started through a link of another name (a packager's
    "chatd", or exec -a): its titles read "chatd: master"."""

    def __init__(self, link, *opts, **kw):
        self.link = link
        super().__init__(*opts, **kw)

    def argv(self):
        a = super().argv()
        a[0] = self.link
        return a


# Failed before the run directory was locked: the start-up clean-up took
# a run directory for stale when its pid's command line did not say
# "talknetd", so a second daemon removed a live one's hub socket, and the
# first daemon accepted nobody from then on.
def test_live_daemon_under_another_name_keeps_its_run_directory():
    d = ops.tempdir("name")
    link = os.path.join(d, "chatd")
    os.symlink(tntest.TALKNETD, link)
    a = NamedServer(link, env={"TMPDIR": d})
    a.wait_log(r"hub started")
    mine = _rundirs(d)
    assert len(mine) == 1, os.listdir(d)
    b = tntest.EnvServer(env={"TMPDIR": d})
    b.wait_log(r"hub started")
    assert mine[0] in _rundirs(d), "a live daemon's run directory was " \
        "removed: %s" % b.log_text()
    assert "removed" not in b.log_text(), b.log_text()
    # Still served: a new worker reaches the hub through its socket.
    c = tntest.identify_new(a, "still")
    assert c.local_port
    # And its own exit still removes it.
    a.stop()
    assert mine[0] not in _rundirs(d)


def _start_with_mask(d, block, pending):
    """talknetd -f started with the signals in block blocked, as some
    starters leave them (the mask survives exec), and those in pending
    already sent: they wait for the master to unblock them.  Returns the
    Popen and the paths of its pidfile, control socket and TMPDIR."""
    pf = os.path.join(d, "tn.pid")
    ctl = os.path.join(d, "ctl")
    tmp = os.path.join(d, "tmp")
    os.mkdir(tmp)

    def pre():
        signal.pthread_sigmask(signal.SIG_BLOCK, set(block))
        for sig in pending:
            os.kill(os.getpid(), sig)
    p = subprocess.Popen([tntest.TALKNETD, "-f", "-l", "127.0.0.1:0",
                          "-p", pf, "--control", ctl],
                         env=dict(os.environ, TMPDIR=tmp),
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, preexec_fn=pre)
    return p, pf, ctl, tmp


def _kill_tree(p):
    """SIGKILL to p and its descendants, each by pid."""
    for k in tntest.tree_pids(p.pid) + [p.pid]:
        if tntest.pid_alive(k):
            os.kill(k, signal.SIGKILL)


def _finish(p, timeout):
    """p's exit status and stderr; kills it (by pid) if it hangs."""
    try:
        err = p.communicate(timeout=timeout)[1].decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        _kill_tree(p)
        err = p.communicate(timeout=T)[1].decode("utf-8", "replace")
        raise AssertionError("talknetd did not end on its signal:\n" + err)
    return p.returncode, err


def _early_sigterm():
    """One start with a SIGTERM waiting: its seconds to exit."""
    d = ops.tempdir("early")
    t0 = time.monotonic()
    p, pf, ctl, tmp = _start_with_mask(d, [signal.SIGTERM],
                                       [signal.SIGTERM])
    rc, err = _finish(p, T * 4)
    took = time.monotonic() - t0
    assert rc == 0, (rc, err)
    assert "shutting down" in err, err
    left = [n for n in (pf, ctl) if os.path.exists(n)] + os.listdir(tmp)
    assert left == [], "left behind: %r\n%s" % (left, err)
    return took


def _plain_start_stop():
    """A start, "hub started", then SIGTERM: the run's baseline."""
    t0 = time.monotonic()
    s = tntest.EnvServer()
    s.wait_log(r"hub started")
    s.stop()
    return time.monotonic() - t0


# Failed before master_signals_hold/_release: a SIGTERM that comes while
# the master makes its pidfile and control socket, before its handlers
# are in (here: one already waiting at exec) ended it with both left
# behind, or, arriving blocked, was never seen at all.  And a SIGTERM
# that reached the hub between fork and its reset of the handlers ran
# the master's handler in the hub, which lived on until the master's
# SIGKILL 3 s later: far over a plain start and stop.
def test_sigterm_during_start_up_cleans_up():
    early = max(_early_sigterm() for _ in range(3))
    base = sorted(_plain_start_stop() for _ in range(3))[1]
    assert early < base + 1.5, "a SIGTERM at start took %.2f s to end " \
        "the master, a plain start and stop %.2f s" % (early, base)


# Failed before master_signals_release: a master started with SIGHUP
# blocked never reloaded, and with SIGTERM blocked never stopped.
def test_signals_blocked_by_the_starter_still_reach_the_master():
    d = ops.tempdir("mask")
    p, pf, ctl, tmp = _start_with_mask(
        d, [signal.SIGHUP, signal.SIGTERM, signal.SIGUSR1], [])
    try:
        tntest.wait_until(lambda: os.listdir(tmp), T * 2,
                          what="the run directory")
        time.sleep(0.2)
        os.kill(p.pid, signal.SIGUSR1)
        time.sleep(0.2)
        os.kill(p.pid, signal.SIGHUP)
        time.sleep(0.2)
        os.kill(p.pid, signal.SIGTERM)
    except BaseException:
        _kill_tree(p)
        p.wait()
        raise
    rc, err = _finish(p, T * 2)
    assert rc == 0, (rc, err)
    assert "info: stats: " in err, err
    assert "info: reloaded: " in err, err
    assert os.listdir(tmp) == [] and not os.path.exists(pf), err


if __name__ == "__main__":
    tntest.main(globals())
