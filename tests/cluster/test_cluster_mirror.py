#!/usr/bin/env python3
"""Users and messages across nodes (issue 19): each node reads every
other node's stream and mirrors their users in its table.  USERS on B
lists A's users; NEW_USER, NEW_STATUS, DISCONNECTED, PUBLIC_TEXT and
TEXT cross; a node that starts later takes a snapshot; 10,000 messages
from one sender on A arrive in order on B and C; one XADD per message
whatever the recipients."""

import json
import os
import re
import signal
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
import tntest  # noqa: E402
from tntest import (Client, req, resp, new_user, new_status,  # noqa: E402
                    disconnected, public_from, text_from)
from tntest.cluster import (Redis, node, nodes, users_of,  # noqa: E402
                            know_all, one_user_each)

T = tntest.TIMEOUT



def wait_users(c, want, timeout=3 * T):
    """Asks USERS until it is want (a dict of name to status)."""
    deadline = time.monotonic() + timeout
    while True:
        got = users_of(c)
        if got == want or time.monotonic() >= deadline:
            assert got == want, (got, want)
            return
        time.sleep(0.05)



def test_users_and_presence_cross_nodes():
    with Redis() as r:
        a, b = nodes(r, 2)
        bob = Client(b).identify("bob")
        alice = Client(a).identify("alice")
        bob.expect(new_user("alice"), 3 * T)
        wait_users(bob, {"bob": "ACTIVE", "alice": "ACTIVE"})
        wait_users(alice, {"bob": "ACTIVE", "alice": "ACTIVE"})
        alice.send(req("STATUS", status="AWAY"))
        bob.expect(new_status("alice", "AWAY"), 3 * T)
        assert users_of(bob)["alice"] == "AWAY"
        alice.close()
        bob.expect(disconnected("alice"), 3 * T)
        assert users_of(bob) == {"bob": "ACTIVE"}


def test_public_and_private_texts_cross_nodes():
    with Redis() as r:
        a, b, c = nodes(r, 3)
        alice, bob, carol = one_user_each((a, b, c), ("alice", "bob", "carol"))
        alice.send(req("PUBLIC_TEXT", text="hello all"))
        bob.expect(public_from("alice", "hello all"), 3 * T)
        carol.expect(public_from("alice", "hello all"), 3 * T)
        alice.expect_nothing()
        bob.send(req("TEXT", username="carol", text="psst"))
        carol.expect(text_from("bob", "psst"), 3 * T)
        tntest.expect_nothing(alice, bob)
        carol.send(req("TEXT", username="nobody", text="x"))
        carol.expect(resp("TEXT", "NO_SUCH_USER", "nobody"))


def test_a_name_that_moves_to_another_node_stays_listed():
    with Redis() as r:
        a, b, c = nodes(r, 3)
        carol = Client(c).identify("carol")
        x = Client(a).identify("x")
        know_all((carol,), ("x", "carol"))
        x.close()
        carol.expect(disconnected("x"), 3 * T)
        x2 = Client(b).identify_eventually("x")
        carol.expect(new_user("x"), 3 * T)
        x2.send(req("TEXT", username="carol", text="it is me"))
        carol.expect(text_from("x", "it is me"), 3 * T)
        assert users_of(carol) == {"carol": "ACTIVE", "x": "ACTIVE"}


def test_a_node_that_starts_later_takes_a_snapshot():
    with Redis() as r:
        (a,) = nodes(r, 1)
        alice = Client(a).identify("alice")
        alice.send(req("STATUS", status="BUSY"))
        alice.send(req("USERS"))
        alice.recv()
        b = node(r, "late")
        b.wait_log(r"cluster: mirror of 1 users")
        bob = Client(b).identify("bob")
        assert users_of(bob) == {"alice": "BUSY", "bob": "ACTIVE"}
        alice.expect(new_user("bob"), 3 * T)
        bob.send(req("IDENTIFY", username="alice"))


def test_one_xadd_per_message_whatever_the_recipients():
    with Redis() as r:
        a, b, c = nodes(r, 3)
        alice = Client(a).identify("alice")
        others = [Client(n).identify("u%d" % i)
                  for i, n in enumerate((a, b, c, b, c))]
        know_all(others, ["alice"] + ["u%d" % i for i in range(5)])

        def calls():
            st = r.info("commandstats")
            m = re.search(r"calls=(\d+)", st.get("cmdstat_xadd", ""))
            return int(m.group(1)) if m else 0
        before = calls()
        for i in range(20):
            alice.send(req("PUBLIC_TEXT", text="m%d" % i))
        for o in others:
            for i in range(20):
                o.expect(public_from("alice", "m%d" % i), 3 * T)
        assert calls() - before == 20, calls() - before


def test_a_hub_killed_keeps_its_mirror_and_reads_on():
    with Redis() as r:
        a, b = nodes(r, 2)
        alice = Client(a).identify("alice")
        bob = Client(b).identify("bob")
        wait_users(bob, {"bob": "ACTIVE", "alice": "ACTIVE"})
        bob.drain()
        old = b.hub_pid()
        os.kill(old, signal.SIGKILL)
        tntest.wait_until(lambda: b.hub_pid() != old, 3 * T,
                          what="a new hub")
        b.wait_log(r"hub: resumed 2 users")
        # The new hub's snapshot finds alice already mirrored: no news.
        b.wait_log(r"cluster: mirror of 1 users", 3 * T)
        bob.send(req("USERS"))
        got = bob.recv()
        assert got["type"] == "USER_LIST", got
        assert got["users"] == {"bob": "ACTIVE", "alice": "ACTIVE"}, got
        alice.send(req("PUBLIC_TEXT", text="still there?"))
        bob.expect(public_from("alice", "still there?"), 3 * T)
        carol = Client(a).identify("carol")
        bob.expect(new_user("carol"), 3 * T)
        carol.close()
        bob.expect(disconnected("carol"), 3 * T)


def read_until(c, n, deadline):
    """n PUBLIC_TEXT_FROM texts from c, in the order they came."""
    got = []
    while len(got) < n:
        left = deadline - time.monotonic()
        assert left > 0, "only %d of %d in time" % (len(got), n)
        raw = c.recv_raw(left)
        for line in raw.splitlines():
            m = json.loads(line)
            if m.get("type") == "PUBLIC_TEXT_FROM":
                got.append(m["text"])
    return got


def test_ten_thousand_messages_from_a_arrive_in_order_on_b_and_c():
    with Redis() as r:
        a, b, c = nodes(r, 3)
        sender = Client(a).identify("sender")
        rb = Client(b).identify("rb")
        rc = Client(c).identify("rc")
        know_all((rb, rc), ("sender", "rb", "rc"))
        n = 10000
        lines = b"".join(tntest.compact(req("PUBLIC_TEXT", text="%05d" % i))
                         for i in range(n))
        t0 = time.monotonic()
        sender.sock.sendall(lines)
        deadline = t0 + 60
        for cl in (rb, rc):
            got = read_until(cl, n, deadline)
            assert got == ["%05d" % i for i in range(n)], \
                "out of order on %r" % cl
        print("10,000 messages on B and C in %.2f s"
              % (time.monotonic() - t0))


if __name__ == "__main__":
    tntest.main(globals())
