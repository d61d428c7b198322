#!/usr/bin/env python3
"""Start-up (issue 16): sockets passed by systemd are served in daemon
mode too, -l next to them is refused, and an address that cannot be
bound is an error-level line that names it."""

import os
import re
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest import ops  # noqa: E402
import tntest  # noqa: E402
from tntest import req, resp, new_user  # noqa: E402

T = tntest.TIMEOUT
SUBREAPER = ops.become_subreaper()


def _knock(port, timeout):
    """Connects to port as soon as something listens there."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=1)
        except OSError:
            if time.monotonic() >= deadline:
                raise AssertionError("nothing listens on %d" % port)
            time.sleep(0.02)


def _line(sock):
    return tntest.read_line(sock, T)


def _pid_from(pidfile, timeout):
    def get():
        try:
            t = open(pidfile).read().strip()
        except OSError:
            return None
        return int(t) if t.isdigit() else None
    return tntest.wait_until(get, timeout, what="a pid in %s" % pidfile)


def test_socket_activation_in_daemon_mode():
    """systemd-socket-activate -l PORT talknetd (no -f): the daemon
    serves the socket it was given, and binds nothing else (it used to
    ignore it and bind *:8001, and the client on PORT hung)."""
    if tntest.SSA is None:
        raise tntest.Skip("systemd-socket-activate is not installed")
    d = ops.tempdir("ssa-daemon")
    pidfile = os.path.join(d, "tn.pid")
    port = tntest.free_port()
    argv = [tntest.SSA, "-l", "127.0.0.1:%d" % port, tntest.TALKNETD,
            "-p", pidfile] + tntest.LIFT_LIMITS
    env = dict(os.environ, TMPDIR=d)
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env)
    pid = None
    try:
        first = _knock(port, tntest.START_TIMEOUT)
        # The starting process (systemd-socket-activate's own pid, which
        # exec'd talknetd) exits 0 once the daemon is ready.
        _, err = p.communicate(timeout=tntest.START_TIMEOUT)
        assert p.returncode == 0, (p.returncode, err)
        pid = _pid_from(pidfile, T)
        assert pid != p.pid, "did not daemonize"
        first.sendall(tntest.compact(req("IDENTIFY", username="first")))
        got = _line(first)
        assert got == tntest.compact(resp("IDENTIFY", "SUCCESS", "first")), \
            "IDENTIFY through the activating connection: %r" % got
        c = tntest.Client(port)
        c.identify("second")
        assert _line(first) == tntest.compact(new_user("second"))
        ports = tntest.listening_ports(pid)
        assert ports == {port}, "the daemon listens on %r, not only %d" \
            % (sorted(ports), port)
        first.close()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
        if pid and tntest.pid_alive(pid) and tntest.is_talknetd(pid):
            ops.kill_tree(pid, tntest.tree_pids(pid))


def test_listen_next_to_passed_sockets_is_refused():
    """-l next to sockets from systemd: a usage error (64) that says
    why, in daemon mode and with -f; nothing is bound."""
    if tntest.SSA is None:
        raise tntest.Skip("systemd-socket-activate is not installed")
    d = ops.tempdir("ssa-refused")
    pidfile = os.path.join(d, "tn.pid")
    for fg in ([], ["-f"]):
        port = tntest.free_port()
        other = tntest.free_port()
        p = subprocess.Popen([tntest.SSA, "-l", "127.0.0.1:%d" % port,
                              tntest.TALKNETD, "-p", pidfile] + fg +
                             ["-l", "127.0.0.1:%d" % other],
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            s = _knock(port, tntest.START_TIMEOUT)
            _, err = p.communicate(timeout=T)
            s.close()
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(5)
            # A daemon that started anyway (the bug) is stopped here.
            try:
                pid = int(open(pidfile).read().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and tntest.pid_alive(pid) and tntest.is_talknetd(pid):
                ops.kill_tree(pid, tntest.tree_pids(pid))
        err = err.decode()
        assert p.returncode == 64, (p.returncode, err)
        assert "-l cannot be used with the sockets systemd passed" in err, \
            err


def _error_line(err, addr):
    pat = r"^talknetd\[\d+\]: error: cannot listen on %s: " % re.escape(addr)
    return [x for x in err.splitlines() if re.search(pat, x)]


def test_port_in_use_is_an_error_naming_it():
    """A port in use: exit 1 and an error-level line that names the
    address, with -f and in daemon mode (the starting process's stderr)."""
    hold = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        hold.bind(("127.0.0.1", 0))
        hold.listen(1)
        addr = "127.0.0.1:%d" % hold.getsockname()[1]
        for fg in (["-f"], []):
            d = ops.tempdir("inuse")
            rc, out, err = ops.run([tntest.TALKNETD, "-l", addr] + fg,
                                   env={"TMPDIR": d})
            assert rc == 1, (rc, err)
            assert _error_line(err, addr), err
            assert "Address already in use" in err, err
            assert os.listdir(d) == [], os.listdir(d)
    finally:
        hold.close()


def test_address_not_on_this_host_is_an_error():
    """192.0.2.1 (TEST-NET-1) is on no host: an error line names it."""
    try:
        with open("/proc/sys/net/ipv4/ip_nonlocal_bind") as f:
            if f.read().strip() != "0":
                raise tntest.Skip("ip_nonlocal_bind is set")
    except OSError:
        pass
    addr = "192.0.2.1:%d" % tntest.free_port()
    rc, out, err = ops.run([tntest.TALKNETD, "-f", "-l", addr])
    assert rc == 1, (rc, err)
    assert _error_line(err, addr), err


def test_duplicate_listen_in_the_file_at_start():
    """A file that lists one address twice: the daemon does not start
    (exit 1, the file and line named), as with -n."""
    d = ops.tempdir("dup")
    conf = os.path.join(d, "dup.conf")
    port = tntest.free_port()
    ops.write_file(conf, "listen = 127.0.0.1:%d\nlisten = 127.0.0.1:%d\n"
                   % (port, port))
    for extra in (["-n"], ["-f"]):
        rc, out, err = ops.run([tntest.TALKNETD, "-c", conf] + extra)
        assert rc == 1, (rc, err)
        assert err.startswith("talknetd: %s:2: listen: 127.0.0.1:%d: "
                              "already listed" % (conf, port)), err


if __name__ == "__main__":
    tntest.main(globals())
