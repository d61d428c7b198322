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
from tntest.cluster import (Redis, TAILS_HEAD, know_all,  # noqa: E402
                            kill_hub_with_tails, new_hub, node, nodes,
                            one_user_each, sigcont, stream_len, users_of,
                            two_nodes, wait_users)

T = tntest.TIMEOUT


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
        a, b, cl = two_nodes(r, ("alice",), ("bob",))
        alice, bob = cl["alice"], cl["bob"]
        bob.drain()
        old = b.hub_pid()
        os.kill(old, signal.SIGKILL)
        new_hub(b, old)
        b.wait_log(r"hub: resumed 2 users")
        # The new hub reads on from the dead one's place: no news.
        b.wait_log(r"cluster: reading on from where the last hub stopped, "
                   r"in 1 streams", 3 * T)
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


def test_a_new_hub_reads_on_where_the_dead_one_stopped():
    """What another node's users did while no hub ran here reaches this
    node's users as news once the master has started a new hub: a text,
    a newcomer, a departure and a status, each sender's in its order.  The dead
    hub's place in each stream is kept in the table; a new hub that
    took a snapshot instead would have mirrored carol and dropped dave
    quietly, and lost the text."""
    with Redis() as r:
        a, b, cl = two_nodes(r, ("alice", "dave"), ("bob",))
        alice, dave, bob = cl["alice"], cl["dave"], cl["bob"]
        bob.drain()
        old = b.hub_pid()
        base = stream_len(r, "node1")
        os.kill(old, signal.SIGSTOP)
        try:
            alice.send(req("PUBLIC_TEXT", text="while you were out"))
            carol = Client(a).identify("carol")
            dave.send(req("DISCONNECT"))
            # Two clients: dave's gone first in the stream, then alice's
            # status (node1's hub may read alice's line first otherwise).
            tntest.wait_until(lambda: stream_len(r, "node1") >= base + 3,
                              3 * T, what="dave's gone in node1's stream")
            alice.send(req("STATUS", status="BUSY"))
            # All four are in node1's stream before the new hub starts.
            tntest.wait_until(lambda: stream_len(r, "node1") >= base + 4,
                              3 * T, what="four entries in node1's stream")
        finally:
            os.kill(old, signal.SIGKILL)
            sigcont(old)
        new_hub(b, old)
        b.wait_log(r"cluster: reading on from where the last hub stopped",
                   3 * T)
        got = [bob.recv(3 * T) for _ in range(4)]
        want = [public_from("alice", "while you were out"),
                new_user("carol"), disconnected("dave"),
                new_status("alice", "BUSY")]
        def canon(m):
            return json.dumps(m, sort_keys=True)
        assert sorted(map(canon, got)) == sorted(map(canon, want)), got
        # Three senders: only each one's own order holds.
        assert got.index(want[0]) < got.index(want[3]), got
        wait_users(bob, {"bob": "ACTIVE", "alice": "BUSY",
                         "carol": "ACTIVE"})
        # And on from there, as before.
        carol.send(req("PUBLIC_TEXT", text="hello bob"))
        bob.expect(public_from("carol", "hello bob"), 3 * T)


def test_a_new_hub_does_not_read_on_from_a_torn_or_bad_place():
    """A dead hub's last ids that are torn (killed while it wrote them)
    or not stream ids are not read on from: the new hub logs it and
    takes a snapshot, and the mirror is right and reads on."""
    def torn(f, row):
        f.seek(row - TAILS_HEAD)
        gen = int.from_bytes(f.read(8), "little")
        f.seek(row - TAILS_HEAD)
        f.write((gen | 1).to_bytes(8, "little"))

    def bad_id(f, row):
        f.seek(row + 128)
        f.write(b"9-9-9\0")

    for edit, why in ((torn, "died writing"), (bad_id, "not sound")):
        with Redis() as r:
            a, b, cl = two_nodes(r, ("alice",), ("bob",))
            alice, bob = cl["alice"], cl["bob"]
            bob.drain()
            kill_hub_with_tails(b, edit)
            b.wait_log(r"cluster: the last hub.*%s.*a snapshot instead" % why,
                       3 * T)
            b.wait_log(r"cluster: mirror of 1 users", 3 * T)
            wait_users(bob, {"bob": "ACTIVE", "alice": "ACTIVE"})
            alice.send(req("PUBLIC_TEXT", text="after " + why))
            bob.expect(public_from("alice", "after " + why), 3 * T)


def test_more_streams_than_the_table_keeps_mean_a_snapshot():
    """The table keeps the place of 64 streams: with more nodes a new hub
    takes a snapshot, and the mirror is still right."""
    with Redis() as r:
        a, b, cl = two_nodes(r, ("alice",), ("bob",))
        alice, bob = cl["alice"], cl["bob"]
        # Nodes with a heartbeat (a key that lasts the test), no stream.
        fakes = ["fake%02d" % i for i in range(70)]
        for n in fakes:
            r.cmd("HSET", "tn:node:" + n, "token", "t", "pid", "1")
        r.cmd("SADD", "tn:nodes", *fakes)
        b.wait_log(r"cluster: 7\d streams, over the 64 the table keeps",
                   3 * T)
        old = b.hub_pid()
        os.kill(old, signal.SIGKILL)
        new_hub(b, old)
        b.wait_log(r"cluster: mirror of 1 users", 3 * T)
        assert "reading on from where" not in b.log_text()
        alice.send(req("PUBLIC_TEXT", text="many"))
        bob.expect(public_from("alice", "many"), 3 * T)


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
