"""vg_drive: the load valgrind.sh puts on a talknetd running under
valgrind.  Not a test of its own.

usage: vg_drive.py PORT MASTER_PID DAEMON_LOG KILLED_FILE

50 clients: names, statuses, rooms, invitations, joins, leaves, room,
public and private texts, errors (invalid JSON, an over-long line, a
request before IDENTIFY), abrupt closes and resets, a worker killed with
SIGKILL, a slow reader cut off at --max-queue, a hub killed with SIGKILL
(the new hub resumes from the table) and finally SIGTERM to the master
with 20 clients still connected.  The pids killed with SIGKILL (whose
valgrind logs end without a summary) are written to KILLED_FILE.
Exits 0 when every step behaved, 1 otherwise.
"""

import os
import re
import signal
import sys
import time

os.environ.setdefault("TN_TIMEOUT", "30")   # valgrind is slow
os.environ.setdefault("TN_QUIET", "0.5")
sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
import tntest  # noqa: E402
from tntest import Client, req, resp  # noqa: E402

port = int(sys.argv[1])
master = int(sys.argv[2])
daemon_log = sys.argv[3]
killed_file = sys.argv[4]


def step(msg):
    print("vg_drive: %s" % msg)
    sys.stdout.flush()


def killed(pid):
    with open(killed_file, "a") as f:
        f.write("%d\n" % pid)


def worker_of(c):
    def find():
        h = tntest.socket_holders(tntest.descendants_of(master), port,
                                  c.local_port)
        h = [p for p in h if p != master]
        return h[0] if len(h) == 1 else None
    return tntest.wait_until(find, 20, what="the worker of %r" % c)


def hub_pids():
    with open(daemon_log, errors="replace") as f:
        return [int(m) for m in re.findall(r"hub started, pid (\d+)",
                                           f.read())]


def statuses(cs, by):
    """Two statuses, seen by all."""
    step("statuses")
    by["v01"].send(req("STATUS", status="AWAY"))
    by["v02"].send(req("STATUS", status="BUSY"))
    for c in cs:
        c.expect_unordered([tntest.new_status(n, s) for n, s in
                            (("v01", "AWAY"), ("v02", "BUSY"))
                            if n != c.name])


def rooms(by):
    """Rooms A and B, invitations, refusals, room texts; returns the
    members of A and of B."""
    step("rooms and invitations")
    a = tntest.make_room(by["v00"], "A",
                         members=[by["v%02d" % i] for i in range(1, 6)],
                         invited=[by["v%02d" % i] for i in range(6, 10)])
    b = tntest.make_room(by["v10"], "B", members=[by["v11"], by["v12"]],
                         invited=[by["v13"], by["v14"]])
    by["v00"].send(req("INVITE", roomname="A", usernames=["v15", "nobody"]))
    by["v00"].expect(resp("INVITE", "NO_SUCH_USER", "nobody"))
    by["v20"].send(req("JOIN_ROOM", roomname="A"))
    by["v20"].expect(resp("JOIN_ROOM", "NOT_INVITED", "A"))
    by["v20"].send(req("NEW_ROOM", roomname="A"))
    by["v20"].expect(resp("NEW_ROOM", "ROOM_ALREADY_EXISTS", "A"))
    by["v01"].send(req("ROOM_TEXT", roomname="A", text="hello A"))
    for m in a:
        if m is not by["v01"]:
            m.expect(tntest.room_text_from("A", "v01", "hello A"))
    by["v03"].send(req("LEAVE_ROOM", roomname="A"))
    a.remove(by["v03"])
    for m in a:
        m.expect(tntest.left_room("A", "v03"))
    by["v00"].send(req("ROOM_USERS", roomname="A"))
    got = by["v00"].recv()
    assert got["type"] == "ROOM_USER_LIST" and len(got["users"]) == 5, got
    for i in range(5):
        by["v11"].send(req("ROOM_TEXT", roomname="B", text="b%d" % i))
    for m in (by["v10"], by["v12"]):
        for i in range(5):
            m.expect(tntest.room_text_from("B", "v11", "b%d" % i))
    return a, b


def texts(cs, by):
    """Public and private texts, USERS."""
    step("texts")
    for i in range(5):
        by["v%02d" % i].send(req("PUBLIC_TEXT", text="pub %d" % i))
    for c in cs:
        c.expect_unordered([tntest.public_from("v%02d" % i, "pub %d" % i)
                            for i in range(5) if c.name != "v%02d" % i])
    by["v00"].send(req("TEXT", username="v49", text="psst"))
    by["v49"].expect(tntest.text_from("v00", "psst"))
    by["v00"].send(req("TEXT", username="ghost", text="?"))
    by["v00"].expect(resp("TEXT", "NO_SUCH_USER", "ghost"))
    assert len(by["v48"].users()) == 50


def leaver(cs, gone, a, b):
    """went(c, rooms): c has gone; the members of its rooms get
    LEFT_ROOM, everyone DISCONNECTED."""
    def went(c, rooms=()):
        cs.remove(c)
        gone.append(c.name)
        for room_members in rooms:
            if c in room_members:
                room_members.remove(c)
                for m in room_members:
                    m.expect(tntest.left_room(
                        "A" if room_members is a else "B", c.name))
        for o in cs:
            o.expect(tntest.disconnected(c.name))
    return went


def errors(by, went):
    """Invalid JSON, an over-long line, NOT_IDENTIFIED."""
    step("errors: invalid JSON, an over-long line, NOT_IDENTIFIED")
    by["v20"].send(b"{not json\n")
    by["v20"].expect_invalid_close()
    went(by["v20"])
    by["v21"].send(b'{"type":"PUBLIC_TEXT","text":"' + b"x" * 70000 + b'"}\n')
    by["v21"].expect_invalid_close()
    went(by["v21"])
    u = Client(port)
    u.send(req("USERS"))
    u.expect_invalid_close("NOT_IDENTIFIED")
    u2 = Client(port)
    u2.send(req("IDENTIFY", username="v00"))
    u2.expect(resp("IDENTIFY", "USER_ALREADY_EXISTS", "v00"))
    u2.close()


def abrupt_ends(by, went, a, b):
    """Close, reset, kill -9 of a worker, DISCONNECT."""
    step("abrupt ends: close, reset, kill -9 of a worker, DISCONNECT")
    by["v02"].close()
    went(by["v02"], [a])
    by["v04"].abort()
    went(by["v04"], [a])
    wk = worker_of(by["v05"])
    killed(wk)
    os.kill(wk, signal.SIGKILL)
    by["v05"].expect_closed(allow_partial=True)
    went(by["v05"], [a])
    by["v12"].send(req("DISCONNECT"))
    by["v12"].expect_closed()
    went(by["v12"], [b])


def slow_reader(cs, by):
    """A slow reader cut off at --max-queue."""
    step("a slow reader cut off at --max-queue")
    slow = Client(port, rcvbuf=4096).identify("slow")
    for o in cs:
        o.expect(tntest.new_user("slow"))
    tntest.new_room(slow, "S")
    tntest.invite(slow, "S", by["v40"])
    tntest.join(by["v40"], "S", [slow])
    # slow never reads from here on; only it is in S with v40.
    # The kernel's buffers on the way to slow absorb a few MB first.
    big = b"".join(tntest.compact(req("ROOM_TEXT", roomname="S",
                                      text="%04d" % i + "y" * 1000))
                   for i in range(8000))
    by["v40"].send(big)
    by["v40"].expect(tntest.left_room("S", "slow"), timeout=60)
    for o in cs:
        o.expect(tntest.disconnected("slow"), timeout=60)
    slow.close()


def hub_killed(cs, by, a, gone, t_start):
    """The hub killed with SIGKILL: the table and the rooms live on."""
    step("the hub killed with SIGKILL")
    while time.monotonic() - t_start < 1.5:
        time.sleep(0.1)
    old = hub_pids()[-1]
    killed(old)
    os.kill(old, signal.SIGKILL)
    tntest.wait_until(lambda: len(hub_pids()) == 2, 20, what="a new hub")
    users = by["v00"].users()
    assert sorted(users) == sorted(c.name for c in cs), (users, gone)
    assert users["v01"] == "AWAY", users
    by["v06"].send(req("JOIN_ROOM", roomname="A"))
    by["v06"].expect(resp("JOIN_ROOM", "SUCCESS", "A"))
    for m in a:
        m.expect(tntest.joined_room("A", "v06"))
    a.append(by["v06"])
    by["v49"].send(req("PUBLIC_TEXT", text="after the hub"))
    for c in cs:
        if c is not by["v49"]:
            c.expect(tntest.public_from("v49", "after the hub"))


def shutdown(cs):
    """Most leave; SIGTERM to the master with 20 still connected."""
    step("most leave; SIGTERM to the master with %d still connected" % 20)
    leaving = [c for c in cs if c.name >= "v25"][:len(cs) - 20]
    for c in leaving:
        c.send(req("DISCONNECT"))
        c.expect_closed(allow_lines=True)
        c.close()
    stay = [c for c in cs if c not in leaving]
    for c in stay:
        c.drain(0.2)
    os.kill(master, signal.SIGTERM)
    for c in stay:
        c.expect_closed(timeout=60, allow_lines=True, allow_partial=True)
    step("done")


def main():
    names = ["v%02d" % i for i in range(50)]
    t_start = time.monotonic()
    step("50 clients")
    cs = tntest.connect_users(port, *names)
    by = dict(zip(names, cs))
    statuses(cs, by)
    a, b = rooms(by)
    texts(cs, by)
    gone = []
    went = leaver(cs, gone, a, b)
    errors(by, went)
    abrupt_ends(by, went, a, b)
    slow_reader(cs, by)
    hub_killed(cs, by, a, gone, t_start)
    shutdown(cs)


if __name__ == "__main__":
    try:
        main()
    except BaseException:
        import traceback
        traceback.print_exc()
        sys.exit(1)
    sys.exit(0)
