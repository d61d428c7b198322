#!/usr/bin/env python3
"""Start-up and clean-up errors: a failed start leaves no pidfile,
relative -c/-p survive daemon mode, and each error says what and where.
Each test once failed against the daemon (found writing the issue-4
tests) and guards the fix."""

import os
import signal
import socket
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest import ops  # noqa: E402
import tntest  # noqa: E402
from tntest import resp  # noqa: E402

SUBREAPER = ops.become_subreaper()


def _pid_from(pidfile):
    try:
        text = open(pidfile).read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _stop(pid):
    if pid and tntest.pid_alive(pid) and tntest.is_talknetd(pid):
        ops.kill_tree(pid, tntest.tree_pids(pid))


def test_failed_start_removes_pidfile():
    """(test_daemon.py) A daemon that cannot bind must not leave its
    pidfile behind: pidfile_open() created it (empty) before the bind,
    and nothing removes it on that exit path.  Same with -f."""
    hold = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    d = ops.tempdir("bug-pidfile")
    pidfile = os.path.join(d, "tn.pid")
    try:
        hold.bind(("127.0.0.1", 0))
        hold.listen(1)
        port = hold.getsockname()[1]
        for fg in ([], ["-f"]):
            rc, out, err = ops.run([tntest.TALKNETD, "-p", pidfile, "-l",
                                    "127.0.0.1:%d" % port] + fg)
            assert rc == 1, (rc, err)
            assert not os.path.exists(pidfile), \
                "%s: failed start left the pidfile %s (%r)" \
                % (" ".join(fg) or "daemon mode", pidfile,
                   open(pidfile).read())
    finally:
        hold.close()


def test_relative_paths_in_daemon_mode():
    """(test_daemon.py) Relative -c and -p are resolved before the
    daemon's chdir("/"): SIGHUP must re-read the same file, and SIGTERM
    must remove the pidfile it wrote."""
    d = ops.tempdir("bug-relative")
    conf = os.path.join(d, "rel.conf")
    ops.write_file(conf, "listen = 127.0.0.1:0\nmax-line = 1024\n")
    pidfile = os.path.join(d, "rel.pid")
    pid = None
    ns = ops.NotifySocket()
    try:
        rc, out, err = ops.run([tntest.TALKNETD, "-c", "rel.conf", "-p",
                                "rel.pid"], cwd=d, env=ns.env())
        assert rc == 0, (rc, err)
        pid = _pid_from(pidfile)
        assert pid, "no pid in %s" % pidfile
        port = tntest.wait_until(lambda: tntest.listening_ports(pid), 3,
                                 what="the daemon's port").pop()
        ops.write_file(conf, "listen = 127.0.0.1:0\nmax-line = 4096\n")
        assert ns.next().startswith("READY=1"), ns.texts()
        os.kill(pid, signal.SIGHUP)
        assert ns.next_state() == "RELOADING=1", ns.texts()
        assert ns.next_state() == "READY=1", ns.texts()
        c = tntest.Client(port)
        c.send(tntest.padded_identify("big", 2000))
        got = c.recv()
        c.close()
        problems = []
        if got != resp("IDENTIFY", "SUCCESS", "big"):
            problems.append("after SIGHUP a 2000-byte line under max-line "
                            "4096 got %r: the reload did not find rel.conf"
                            % got)
        os.kill(pid, signal.SIGTERM)
        ops.reap(pid, 6)
        if os.path.exists(pidfile):
            problems.append("the relative pidfile was not removed on exit")
        assert not problems, "; ".join(problems)
    finally:
        _stop(pid)


def test_pidfile_too_long_says_why():
    """(tests/conf: pidfile-too-long.err) The error is cut off at 255
    bytes, before its reason ("longer than 255 bytes"): conf_set()'s
    message goes into a 256-byte buffer and begins with the long value."""
    d = ops.tempdir("bug-long")
    conf = os.path.join(d, "long.conf")
    ops.write_file(conf, "pidfile = /run/%s.pid\n" % ("p" * 260))
    rc, out, err = ops.run([tntest.TALKNETD, "-n", "-c", conf])
    assert rc == 1, (rc, err)
    assert err.endswith(": longer than 255 bytes\n"), \
        "stderr does not say why: %r" % err[-80:]


def test_unknown_user_names_file_and_line():
    """(tests/conf: unknown-user.err) Every other error in the file says
    FILE:LINE: KEY:, an unknown user does not."""
    d = ops.tempdir("bug-user")
    conf = os.path.join(d, "user.conf")
    ops.write_file(conf, "# run as\nuser = no-such-user-xyz\n")
    rc, out, err = ops.run([tntest.TALKNETD, "-n", "-c", conf])
    assert rc == 1, (rc, err)
    assert err.startswith("talknetd: %s:2: user: " % conf), err


def test_bind_error_names_the_port():
    """(test_daemon.py) "bind 127.0.0.1: Address already in use" does not
    say which port (a listen_addr's text is its host only)."""
    hold = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        hold.bind(("127.0.0.1", 0))
        hold.listen(1)
        port = hold.getsockname()[1]
        rc, out, err = ops.run([tntest.TALKNETD, "-f", "-l",
                                "127.0.0.1:%d" % port])
        assert rc == 1, (rc, err)
        assert "127.0.0.1:%d" % port in err, err
    finally:
        hold.close()


if __name__ == "__main__":
    tntest.main(globals())
