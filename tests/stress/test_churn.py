"""Stress: 300 cycles of connect, IDENTIFY, NEW_ROOM, DISCONNECT.
Afterwards the fd counts of master and hub and the number of the
master's children are back at baseline, USERS from a fresh client lists
only itself and every old room name is free again.  A second test does
the same with connections that end abruptly (close, reset, a killed
worker) instead of DISCONNECT."""

import sys
import os
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest import stress  # noqa: E402
from tntest.stress import figure, note
import tntest  # noqa: E402
from tntest import Client, Server, req, resp
from tntest.steps import end_client  # noqa: E402

CYCLES = int(os.environ.get("TN_STRESS_CYCLES", "300"))


def _fresh_client_sees_nothing_left(s, rooms):
    f = Client(s).identify("fresh")
    last = [None]

    def alone():
        last[0] = f.users()
        return last[0] == {"fresh": "ACTIVE"}
    # The workers are gone by now; allow the hub a moment for the last.
    tntest.wait_until(alone, 3, interval=0.1,
                      what=lambda: "USERS to list only 'fresh', not %r"
                      % sorted(last[0]))
    for r in rooms:
        f.send(req("NEW_ROOM", roomname=r))
    for r in rooms:
        f.expect(resp("NEW_ROOM", "SUCCESS", r))
    tntest.expect_nothing(f)
    f.send(req("DISCONNECT"))
    f.expect_closed()


def _churn(s, how):
    hub = s.hub_pid()
    tntest.wait_until(lambda: len(s.children()) == 1, 3, what="only the hub")
    base = stress.baseline(s, hub)
    mem0 = tntest.status_kb(s.pid, "VmRSS")
    rooms = []
    gone = set()
    t0 = time.monotonic()
    for i in range(CYCLES):
        name = "c%d" % i
        room = "room %d" % i
        c = Client(s).identify(name)
        c.send(req("NEW_ROOM", roomname=room))
        while True:
            got = c.recv()
            # A connection that ended abruptly just before may be
            # announced now.
            if got.get("type") != "DISCONNECTED" or \
                    got["username"] not in gone:
                break
        assert got == resp("NEW_ROOM", "SUCCESS", room), got
        rooms.append(room)
        gone.add(name)
        mode = how(i)
        # The ending of the connection before may be announced even
        # after the NEW_ROOM reply, right up to this one's end.
        late = end_client(c, mode, s, allow_partial=True, allow_lines=True)
        for line in late:
            got = tntest.check_line(line)
            assert got.get("type") == "DISCONNECTED" and \
                got["username"] in gone - {name}, (name, mode, line)
        c.close()
        # Do not keep 300 closed Client objects around.
        tntest.ctx().clients.remove(c)
    dt = time.monotonic() - t0
    t1 = time.monotonic()
    after = stress.wait_baseline(s, hub, base, timeout=15)
    settle = time.monotonic() - t1
    assert tntest.pid_alive(hub) and s.titled("talknetd: hub") == [hub], \
        "the hub changed"
    _fresh_client_sees_nothing_left(s, rooms)
    stress.wait_baseline(s, hub, base, timeout=10)
    mem1 = tntest.status_kb(s.pid, "VmRSS")
    return dt, settle, base, after, mem0, mem1


def test_churn_disconnect():
    stress.raise_nofile(256)
    with Server() as s:
        dt, settle, base, after, m0, m1 = _churn(s, lambda i: "disconnect")
    figure("churn.cycles", "%d in %.2f s (%.1f ms per cycle)"
           % (CYCLES, dt, dt * 1000 / CYCLES))
    figure("churn.settle", "%.2f" % settle, "s until back at baseline")
    figure("churn.baseline", "master fds %d, hub fds %d, children %d; "
           "after: %d, %d, %d" % (base + after))
    figure("churn.master_rss", "%s kB before, %s kB after" % (m0, m1))


def test_churn_abrupt_endings():
    stress.raise_nofile(256)
    modes = ("close", "reset", "kill", "disconnect")
    with Server() as s:
        dt, settle, base, after, m0, m1 = _churn(
            s, lambda i: modes[i % len(modes)])
    figure("churn_abrupt.cycles", "%d in %.2f s (close/reset/kill -9/"
           "DISCONNECT in turn)" % (CYCLES, dt))
    figure("churn_abrupt.baseline", "master fds %d, hub fds %d, children "
           "%d; after: %d, %d, %d" % (base + after))


if __name__ == "__main__":
    tntest.main(globals())
