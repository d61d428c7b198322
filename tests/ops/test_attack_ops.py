#!/usr/bin/env python3
"""An impatient admin against the live limits and the reconnect rules
(issue 14, items 1 and 2): reloads that change a limit under a client
already affected by it, SIGHUP storms while traffic flows, and a hub
killed again and again.  CPU is compared with a baseline of the same
run, never with an absolute figure."""

import os
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest import ops  # noqa: E402
import tntest  # noqa: E402
from tntest import req, new_user, compact  # noqa: E402

T = tntest.TIMEOUT
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _conf_server(text, *opts):
    conf = ops.conf_file("atk", text)
    s, ns = ops.ready_server(conf, *opts)
    return s, conf, ns


def _reload(s, ns, conf, text):
    ops.write_file(conf, text)
    os.kill(s.pid, signal.SIGHUP)
    assert ops.next_state(ns) == "RELOADING=1", ns.texts()
    assert ops.next_state(ns) == "READY=1", ns.texts()


def _cpu_ticks(pids):
    """utime + stime of each pid that still exists."""
    return sum(t for t in map(tntest.cpu_ticks, pids) if t is not None)


# Failed on 921b309: a stall-timeout switched on by a reload never reaches
# a client that had already stopped reading.  The worker starts its stall
# check only when the socket takes bytes (worker_sent); a client whose
# window is shut takes none, so the check never starts, and the client
# holds its worker for good.  The reload's promise is that stall-timeout
# holds in every process at once.
def test_stall_timeout_switched_on_by_reload_reaches_a_stalled_client():
    s, conf, ns = _conf_server("stall-timeout = 0\nrate-limit = 0\n"
                               "max-clients-per-ip = 0\n")
    talker = tntest.Client(s)
    talker.identify("talker")
    stuck = tntest.Client(s, rcvbuf=4096)
    stuck.identify("stuck")
    talker.expect(new_user("stuck"))
    # Far under the hub's cap: only a stall timeout can cut it.
    for i in range(40):
        talker.send(req("PUBLIC_TEXT", text="%02d %s" % (i, "z" * 30000)))
    time.sleep(1.0)
    _reload(s, ns, conf, "stall-timeout = 1\nrate-limit = 0\n"
            "max-clients-per-ip = 0\n")
    s.wait_log(r"127\.0\.0\.1:%d: client took nothing for 1 s"
               % stuck.local_port, timeout=6)
    talker.expect(tntest.disconnected("stuck"), timeout=T * 2)


def _storm_once():
    """One storm: forty reloads, 50 ms apart, under a flood of 30,000
    lines to a reader taking 32 KB every 10 ms.  Returns None, or how
    the reader was cut."""
    base = "rate-limit = 0\nmax-clients-per-ip = 0\nstall-timeout = 0\n"
    conf = ops.conf_file("storm", base)
    s = tntest.EnvServer("-c", conf)
    sender = tntest.Client(s)
    sender.identify("sender")
    reader = tntest.Client(s)
    reader.identify("reader")
    sender.expect(new_user("reader"))
    n = 30000
    data = b"".join(compact(req("PUBLIC_TEXT", text="%05d %s" % (i, "s" *
                                                                 200)))
                    for i in range(n))
    sender.sock.setblocking(True)
    t = threading.Thread(target=sender.sock.sendall, args=(data,),
                         daemon=True)
    t.start()
    got = 0
    buf = b""
    sock = reader.sock
    sock.setblocking(False)
    deadline = time.monotonic() + 15
    k = 0
    next_hup = 0
    while got < n and time.monotonic() < deadline:
        if k < 40 and time.monotonic() >= next_hup:
            next_hup = time.monotonic() + 0.05
            q = 4096 if k % 2 else 16 * 1024 * 1024
            ml = 65536 if k % 4 < 2 else 512
            ops.write_file(conf, base + "max-queue = %d\nmax-line = %d\n"
                           % (q, ml))
            os.kill(s.pid, signal.SIGHUP)
            k += 1
        try:
            part = sock.recv(32768)
        except BlockingIOError:
            part = None
        if part == b"":
            why = [x for x in s.log if "dropped" in x]
            s.stop()
            return "cut after %d lines: %s" % (got, why)
        if part:
            buf += part
            lines = buf.split(b"\n")
            buf = lines.pop()
            for x in lines:
                if b"PUBLIC_TEXT_FROM" not in x:
                    continue
                i = int(x.split(b'"text":"')[1][:5])
                assert i == got, "line %d came as %d" % (i, got)
                got += 1
        time.sleep(0.01)
    t.join(5)
    assert got == n, "%d of %d lines; log: %s" % (got, n, s.log[-20:])
    assert s.alive()
    assert "dropped" not in s.log_text(), s.log_text()
    s.stop()
    return None


# Failed on 921b309, intermittently (2 runs in 5 here; three storms a
# run): a reload that lowers max-queue cuts a reader that drains well but was
# behind under the higher limit.  max-queue swings between 4096 and
# 16 MiB.  Under 16 MiB the hub lets megabytes build before it paces
# anyone, while the reader's worker, which nothing wakes to apply the
# new limit (it waits for POLLOUT on a large send buffer), may still
# read the hub only under 4096 bytes; the next reload makes the hub's
# cap about 200 KiB at once and the next line cuts the reader
# ("dropped: queue over the limit", not "draining too slowly"), though
# it reads about 3 MB/s.  The hub could pace the senders until such a
# reader is under the new limit and cut only a stuck one; the worker
# could be woken (or poll with a short timeout) to apply new limits.
def test_sighup_storm_with_max_queue_swinging_under_a_flood():
    """Forty reloads, max-queue swinging between its floor (4096) and
    16 MiB and max-line between 512 and 65536, while a sender floods a
    steady reader: the daemon stays up, the reader is never cut, and
    gets every line whole and in order.  Three storms."""
    for k in range(3):
        why = _storm_once()
        assert why is None, "storm %d: the reader was %s" % (k + 1, why)


def test_a_hub_killed_again_and_again_leaves_no_worker_spinning():
    """The hub is killed -9 five times, once a second as the master
    restarts it; the workers reconnect each time and cost about what
    they cost idle: no loop, and everyone is still served."""
    s, conf, ns = _conf_server("rate-limit = 0\nmax-clients-per-ip = 0\n")
    clients = tntest.connect_users(s, *["w%d" % i for i in range(6)])
    workers = [s.worker_pid(c) for c in clients]
    t0 = _cpu_ticks(workers)
    time.sleep(2.0)
    idle = _cpu_ticks(workers) - t0
    t0 = _cpu_ticks(workers)
    start = time.monotonic()
    for _ in range(5):
        old = s.hub_pid()
        os.kill(old, signal.SIGKILL)
        tntest.wait_until(lambda: [p for p in s.titled("talknetd: hub")
                                   if p != old], 5, what="a new hub")
    spent = time.monotonic() - start
    busy = _cpu_ticks(workers) - t0
    print("  6 workers: %d ticks in 2 s idle, %d ticks in %.1f s of hub "
          "kills" % (idle, busy, spent))
    # A loop would cost a CPU per worker: hundreds of ticks a second.
    assert busy <= 10 * idle + CLK_TCK * spent * 0.05 * len(workers), \
        "workers spent %d ticks in %.1f s" % (busy, spent)
    # Every worker back on the last hub, then a line to everyone.
    last = "talknetd[%d]: " % s.hub_pid()
    tntest.wait_until(lambda: sum(1 for x in s.log if x.startswith(last)
                                  and "): back on row" in x) == 6, T * 2,
                      what="the 6 workers back on the last hub")
    clients[0].send(req("PUBLIC_TEXT", text="still here"))
    for c in clients[1:]:
        c.expect(tntest.public_from("w0", "still here"), timeout=T * 2)


# Failed on 921b309: the master blocks for good in sendto() to a
# NOTIFY_SOCKET whose reader is slow.  A datagram socket queues 10
# messages (net.unix.max_dgram_qlen); each reload sends two (RELOADING=1,
# READY=1), so a few SIGHUPs while the service manager is busy fill it,
# and the master, blocked in systemd_notify, accepts no client and takes
# no SIGTERM.  systemd_notify could send with MSG_DONTWAIT and drop a
# message (STATUS lines are best effort anyway).
def test_a_notify_socket_that_is_not_read_does_not_block_the_master():
    s, conf, ns = _conf_server("rate-limit = 0\nmax-clients-per-ip = 0\n")
    for i in range(8):
        ops.write_file(conf, "rate-limit = 0\nmax-clients-per-ip = 0\n"
                       "max-line = %d\n" % (2048 + i))
        os.kill(s.pid, signal.SIGHUP)
        time.sleep(0.1)
    c = tntest.Client(s)
    c.identify("after", timeout=T)
    status = s.terminate(timeout=5)
    assert status is not None, "the master did not stop within 5 s"


if __name__ == "__main__":
    tntest.main(globals())
