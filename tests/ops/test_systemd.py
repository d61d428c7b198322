#!/usr/bin/env python3
"""talknetd under systemd (issue 4): socket activation through
systemd-socket-activate, and sd_notify readiness on a NOTIFY_SOCKET the
test creates (READY=1, STATUS=, RELOADING=1, STOPPING=1)."""

import os
import re
import signal
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest import ops  # noqa: E402
import tntest  # noqa: E402
from tntest import req, resp, new_user  # noqa: E402

T = tntest.TIMEOUT


def _sock_identify(s, name):
    """IDENTIFY on a plain socket; returns the reply line."""
    s.settimeout(T)
    s.sendall(tntest.compact(req("IDENTIFY", username=name)))
    return tntest.read_line(s, T)


def _ready_line(msg, pid):
    assert msg == "READY=1\nSTATUS=0 clients\nMAINPID=%d" % pid, \
        "first notify message %r, expected READY=1, STATUS=0 clients and " \
        "MAINPID=%d" % (msg, pid)


def _statuses(ns):
    return [m for m in ns.texts() if m.startswith("STATUS=")]


def test_socket_activation_identify():
    """A client IDENTIFYs through the socket systemd passed; talknetd
    binds nothing of its own."""
    s = tntest.ActivatedServer()
    port = s.ssa_port
    s.wait_log(r"listening on 127\.0\.0\.1:%d \(socket from systemd\)"
               % port)
    assert s.trigger is not None, "no connection reached " \
        "systemd-socket-activate"
    # The connection that woke it up was queued on the passed socket.
    got = _sock_identify(s.trigger, "first")
    assert got == tntest.compact(resp("IDENTIFY", "SUCCESS", "first")), \
        "IDENTIFY through the activating connection: %r" % got
    b = tntest.Client(port)
    b.identify("second")
    s.trigger.settimeout(T)
    got = s.trigger.recv(4096)
    assert got == tntest.compact(new_user("second")), got
    b.send(req("TEXT", username="first", text="via systemd"))
    got = s.trigger.recv(4096)
    assert got == tntest.compact(tntest.text_from("second", "via systemd")), \
        got
    # It used the passed socket only: no bind of the default *:8001.
    ports = tntest.listening_ports(s.pid)
    assert ports == {port}, "master listens on %r, expected only %d" \
        % (sorted(ports), port)
    assert "socket from systemd" in s.log_text()
    # LISTEN_* were for the master only, not for its children.
    hub = s.hub_pid()
    with open("/proc/%d/environ" % hub, "rb") as f:
        env = f.read().split(b"\0")
    leaked = [e for e in env if e.startswith((b"LISTEN_PID=",
                                              b"LISTEN_FDS="))]
    assert not leaked, "the hub inherited %r" % leaked
    s.trigger.close()
    assert s.terminate() == 0


def test_socket_activation_two_sockets():
    """Two passed sockets: talknetd serves both."""
    if tntest.SSA is None:
        raise tntest.Skip("systemd-socket-activate is not installed")
    p2 = tntest.free_port()

    class Two(tntest.ActivatedServer):
        def argv(self):
            a = super().argv()
            return a[:1] + ["-l", "127.0.0.1:%d" % p2] + a[1:]
    s = Two()
    s.wait_log(r"listening on 127\.0\.0\.1:%d \(socket from systemd\)" % p2)
    a = tntest.Client(s.ssa_port)
    a.identify("one")
    b = tntest.Client(p2)
    b.identify("two")
    a.expect(new_user("two"))
    assert tntest.listening_ports(s.pid) == {s.ssa_port, p2}
    s.trigger.close()


def test_listen_pid_of_another_process_is_ignored():
    """LISTEN_FDS meant for another pid (our parent, say) is not ours:
    talknetd binds its -l address as usual."""
    s = tntest.EnvServer(env={"LISTEN_PID": "1", "LISTEN_FDS": "1"})
    assert "socket from systemd" not in s.log_text(), s.log_text()
    c = tntest.Client(s)
    c.identify("solo")


def test_notify_foreground():
    """-f with NOTIFY_SOCKET: READY=1 with STATUS and MAINPID once
    serving, STATUS=N clients as the count changes, STOPPING=1 on
    SIGTERM."""
    ns = ops.NotifySocket()
    s = tntest.EnvServer(env=ns.env())
    _ready_line(ns.next(), s.pid)
    # READY means serving: a client gets in at once.
    a = tntest.Client(s)
    a.identify("a")
    b = tntest.Client(s)
    b.identify("b")
    a.expect(new_user("b"))
    ns.wait_for(lambda m: m == "STATUS=2 clients", timeout=4,
                what="STATUS=2 clients")
    a.close()
    b.close()
    ns.wait_for(lambda m: m == "STATUS=0 clients", timeout=5,
                what="STATUS=0 clients after both left")
    for m in ns.texts()[1:]:
        assert re.fullmatch(r"STATUS=\d+ clients", m), \
            "unexpected notify message %r" % m
    assert s.terminate() == 0
    ns.wait_for(lambda m: "STOPPING=1" in m, timeout=2, what="STOPPING=1")
    ns.drain(0.1)
    assert ns.texts()[-1] == "STOPPING=1", ns.texts()


def test_notify_status_is_rate_limited():
    """A burst of connections gives at most about one STATUS a second,
    and the last one tells the final count."""
    ns = ops.NotifySocket()
    s = tntest.EnvServer(env=ns.env())
    _ready_line(ns.next(), s.pid)
    t0 = time.monotonic()
    cs = []
    for i in range(12):
        cs.append(tntest.Client(s))
        time.sleep(0.1)
    ns.wait_for(lambda m: m == "STATUS=12 clients", timeout=4,
                what="STATUS=12 clients")
    elapsed = time.monotonic() - t0
    ns.drain(0.3)
    sts = [(t, m) for t, m in ns.msgs if m.startswith("STATUS=") and
           t >= t0]
    # One per calendar second at most: over `elapsed` seconds that is
    # at most elapsed + 1 (+1 for the final catch-up).
    assert len(sts) <= int(elapsed) + 2, \
        "%d STATUS messages in %.1f s: %r" % (len(sts), elapsed, sts)
    assert sts[-1][1] == "STATUS=12 clients", sts
    for c in cs:
        c.close()


def test_notify_abstract_socket():
    """NOTIFY_SOCKET=@name (the abstract namespace) works too."""
    ns = ops.NotifySocket(abstract=True)
    s = tntest.EnvServer(env=ns.env())
    _ready_line(ns.next(), s.pid)
    assert s.terminate() == 0
    ns.wait_for(lambda m: m == "STOPPING=1", timeout=2, what="STOPPING=1")


def test_notify_through_socket_activate():
    """systemd-socket-activate -E NOTIFY_SOCKET=...: READY=1 with the
    master's pid (systemd-socket-activate execs it in its own pid), then
    STATUS and STOPPING=1."""
    ns = ops.NotifySocket()
    s = tntest.ActivatedServer(setenv=ns.env())
    _ready_line(ns.next(), s.pid)
    got = _sock_identify(s.trigger, "woke")
    assert got == tntest.compact(resp("IDENTIFY", "SUCCESS", "woke")), got
    ns.wait_for(lambda m: m == "STATUS=1 clients", timeout=4,
                what="STATUS=1 clients")
    assert s.terminate() == 0
    ns.wait_for(lambda m: m == "STOPPING=1", timeout=2, what="STOPPING=1")
    s.trigger.close()


def test_notify_reloading_around_sighup():
    """SIGHUP: RELOADING=1, then READY=1 once the file is read again,
    also when the new file is broken (the old settings stay)."""
    conf = ops.conf_file("sighup", "max-line = 1024\n")
    ns = ops.NotifySocket()
    s = tntest.EnvServer("-c", conf, env=ns.env())
    _ready_line(ns.next(), s.pid)
    ops.write_file(conf, "max-line = 4096\n")
    os.kill(s.pid, signal.SIGHUP)
    assert ops.next_state(ns) == "RELOADING=1", ns.texts()
    assert ops.next_state(ns) == "READY=1", ns.texts()
    s.wait_log(r"reloaded")
    ops.write_file(conf, "max-line = lots\n")
    os.kill(s.pid, signal.SIGHUP)
    assert ops.next_state(ns) == "RELOADING=1", ns.texts()
    assert ops.next_state(ns) == "READY=1", ns.texts()
    s.wait_log(r"keeping the running configuration")
    c = tntest.Client(s)
    c.identify("still")
    assert s.terminate() == 0
    ns.wait_for(lambda m: m == "STOPPING=1", timeout=2, what="STOPPING=1")


def test_no_notify_socket_no_messages():
    """Without NOTIFY_SOCKET nothing is sent (the test's socket stays
    silent), and a NOTIFY_SOCKET that nobody listens on does no harm."""
    ns = ops.NotifySocket()
    s = tntest.EnvServer()
    c = tntest.Client(s)
    c.identify("quiet")
    ns.drain(0.3)
    assert ns.texts() == [], ns.texts()
    d = ops.tempdir("nobody-listens")
    s2 = tntest.EnvServer(env={"NOTIFY_SOCKET": os.path.join(d, "none")})
    c2 = tntest.Client(s2)
    c2.identify("quiet2")
    assert s2.terminate() == 0


if __name__ == "__main__":
    tntest.main(globals())
