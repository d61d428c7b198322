#!/usr/bin/env python3
"""A node's hub killed and started again reads the other nodes' streams
on from where the dead one stopped (issue 19, 4ade999): attacked with
kills in a row under traffic, a torn place, a name that moved between
nodes while no hub ran, a stream trimmed past the place, and garbage in
the table's header."""

import os
import signal
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
import tntest  # noqa: E402
from tntest import Client, req, resp, public_from  # noqa: E402
import tntest.cluster  # noqa: E402
from tntest.cluster import (RESUMED, Redis, TAILS_HEAD,  # noqa: E402
                            kill_hub_with_tails, new_hub, nodes, resumes,
                            room_with, sigcont, stream_len, users_of,
                            two_nodes, wait_room, wait_users, FAST_TTL,
                            FAST_TTL_MS, reap_bound)

T = tntest.TIMEOUT
# A TTL for nodes whose hub a test holds down for seconds on purpose.
HELD_TTL_MS = 15000


def test_a_torn_place_does_not_stop_every_later_resume():
    """A hub killed while it wrote its place leaves the seqlock odd; the
    next hub takes a snapshot, and the one after that must read on
    again: the snapshot's own write has to leave the seqlock even."""
    def torn(f, row):
        f.seek(row - TAILS_HEAD)
        gen = int.from_bytes(f.read(8), "little")
        f.seek(row - TAILS_HEAD)
        f.write((gen | 1).to_bytes(8, "little"))

    with Redis() as r:
        a, b, cl = two_nodes(r, ("alice",), ("bob",))
        alice, bob = cl["alice"], cl["bob"]
        kill_hub_with_tails(b, torn)
        b.wait_log(r"cluster: the last hub died writing", 3 * T)
        b.wait_log(r"cluster: mirror of 1 users", 3 * T)
        alice.send(req("PUBLIC_TEXT", text="one"))
        bob.expect(public_from("alice", "one"), 3 * T)
        before = resumes(b)
        old = b.hub_pid()
        os.kill(old, signal.SIGKILL)
        new_hub(b, old)
        tntest.wait_until(lambda: resumes(b) > before, 3 * T,
                          what="the hub after the snapshot reads on")
        assert b.log_text().count("died writing") == 1, b.log_text()
        alice.send(req("PUBLIC_TEXT", text="two"))
        bob.expect(public_from("alice", "two"), 3 * T)


def name_moves_while_the_hub_is_down(first, then):
    """alice, a member of a room, leaves on node first and the name
    identifies again on node then while node2's hub is down.  The new
    hub learns from Redis that alice is then's; the old holder's "gone"
    must still drop the old row (its rooms, its status), whichever of
    the two streams is read first: B must not show the new alice in the
    old one's room.  B's users hear it as news: LEFT_ROOM, DISCONNECTED,
    NEW_USER."""
    with Redis() as r:
        ns = nodes(r, 3)
        a, b, c = ns[first - 1], ns[1], ns[then - 1]
        alice = Client(a).identify("alice")
        bob = Client(b).identify("bob")
        wait_users(bob, {"bob": "ACTIVE", "alice": "ACTIVE"})
        wait_users(alice, {"bob": "ACTIVE", "alice": "ACTIVE"})
        alice.drain()
        bob.drain()
        room_with(bob, "R", alice)
        alice.send(req("STATUS", status="BUSY"))
        wait_users(bob, {"bob": "ACTIVE", "alice": "BUSY"})
        wait_room(bob, "R", {"bob": "ACTIVE", "alice": "BUSY"})
        bob.drain()
        old = b.hub_pid()
        s1, s3 = "node%d" % first, "node%d" % then
        base1, base3 = stream_len(r, s1), stream_len(r, s3)
        os.kill(old, signal.SIGSTOP)
        try:
            alice.send(req("DISCONNECT"))
            alice.close()
            tntest.wait_until(lambda: stream_len(r, s1) > base1,
                              3 * T, what="alice's gone")
            tntest.wait_until(lambda: r.cmd("HGET", "tn:names",
                                            "alice") is None, 3 * T,
                              what="alice's name freed")
            alice2 = Client(c).identify("alice")
            tntest.wait_until(lambda: stream_len(r, s3) > base3,
                              3 * T, what="alice's user on the other")
        finally:
            os.kill(old, signal.SIGKILL)
            sigcont(old)
        new_hub(b, old)
        b.wait_log(RESUMED, 3 * T)
        seen = []
        while ("NEW_USER", "alice") not in seen and len(seen) < 20:
            m = bob.recv(3 * T)
            seen.append((m["type"], m.get("username")))
        assert seen == [("LEFT_ROOM", "alice"), ("DISCONNECTED", "alice"),
                        ("NEW_USER", "alice")], seen
        want = users_of(alice2)
        assert want == {"bob": "ACTIVE", "alice": "ACTIVE"}, want
        wait_users(bob, want)
        wait_room(bob, "R", {"bob": "ACTIVE"})
        # And what B says about alice now is the new one's.
        alice2.send(req("STATUS", status="AWAY"))
        wait_users(bob, {"bob": "ACTIVE", "alice": "AWAY"})


def test_a_name_that_moved_while_the_hub_was_down_leaves_no_ghost():
    """The old holder's stream is read first (node1 before node3)."""
    name_moves_while_the_hub_is_down(1, 3)


def test_a_name_that_moved_back_while_the_hub_was_down_leaves_no_ghost():
    """The new holder's stream is read first: its "user" replaces the
    former holder's row before that one's "gone" comes."""
    name_moves_while_the_hub_is_down(3, 1)


def test_a_stream_trimmed_past_the_place_means_a_snapshot():
    """A's stream trimmed (XTRIM MAXLEN 0, as MAXLEN ~ does to a node
    that writes fast) past where B's dead hub stopped: reading on from
    there would miss dave's departure and carol's arrival for good (a
    ghost, a user never shown).  The new hub must see the gap and take
    a snapshot: the presence is right, the texts of the gap are lost,
    and the gap is logged."""
    with Redis() as r:
        a, b, cl = two_nodes(r, ("alice", "dave"), ("bob",))
        alice, dave, bob = cl["alice"], cl["dave"], cl["bob"]
        bob.drain()
        old = b.hub_pid()
        base = stream_len(r, "node1")
        os.kill(old, signal.SIGSTOP)
        try:
            dave.send(req("DISCONNECT"))
            carol = Client(a).identify("carol")
            alice.send(req("PUBLIC_TEXT", text="lost in the gap"))
            tntest.wait_until(lambda: stream_len(r, "node1") >= base + 3,
                              3 * T, what="three entries in node1's stream")
            r.cmd("XTRIM", "tn:stream:node1", "MAXLEN", "0")
        finally:
            os.kill(old, signal.SIGKILL)
            sigcont(old)
        new_hub(b, old)
        wait_users(bob, {"bob": "ACTIVE", "alice": "ACTIVE",
                         "carol": "ACTIVE"})
        b.wait_log(r"cluster: node1's stream lost entries after where the "
                   r"last hub stopped", 3 * T)
        carol.send(req("PUBLIC_TEXT", text="after the gap"))
        bob.expect(public_from("carol", "after the gap"), 3 * T)


def test_a_new_hub_killed_while_it_resumes():
    """B's hub is killed, and the next one too before it has read on;
    the third reads on from the first one's place: the text, newcomer
    and departure of the gap reach bob once each."""
    with Redis() as r:
        # Node2 goes without a heartbeat from the first hub's SIGSTOP to
        # the third hub's join: 1.9 to 2.7 s measured under make -j3,
        # plus up to a third of the TTL since its last beat, against
        # the default TTL of 3 s.  Reaped, it is fenced and takes a
        # snapshot (no "reading on"): not what this test is about.
        a, b, cl = two_nodes(r, ("alice", "dave"), ("bob",),
                             "--cluster-ttl-ms", str(HELD_TTL_MS))
        alice, dave, bob = cl["alice"], cl["dave"], cl["bob"]
        bob.drain()
        # dave's NEW_USER bob has come (read past): his next line is
        # alice's text below.
        wait_users(dave, {"alice": "ACTIVE", "dave": "ACTIVE",
                          "bob": "ACTIVE"})
        old = b.hub_pid()
        base = stream_len(r, "node1")
        os.kill(old, signal.SIGSTOP)
        try:
            alice.send(req("PUBLIC_TEXT", text="while you were out"))
            # Node1's hub has written the text on its stream before
            # carol comes: alice's worker may forward it late, after
            # carol's IDENTIFY (another worker), and bob rightly gets
            # the entries in the stream's order.
            dave.expect(public_from("alice", "while you were out"))
            Client(a).identify("carol")
            dave.send(req("DISCONNECT"))
            tntest.wait_until(lambda: stream_len(r, "node1") >= base + 3,
                              3 * T, what="three entries in node1's stream")
        finally:
            os.kill(old, signal.SIGKILL)
            sigcont(old)
        # Redis stopped: the next hub's requests wait, and it is killed
        # while it resumes (its "joining" logged, nothing read on).
        os.kill(r.pid, signal.SIGSTOP)
        try:
            for _ in range(2):
                second = new_hub(b, old)
                b.wait_log(r"talknetd\[%d\]: info: cluster: node node2 "
                           r"joining" % second, 3 * T)
                time.sleep(0.2)
                os.kill(second, signal.SIGKILL)
                old = second
        finally:
            os.kill(r.pid, signal.SIGCONT)
        assert resumes(b) == 0, b.log_text()
        new_hub(b, old)
        b.wait_log(RESUMED, 3 * T)
        want = [("PUBLIC_TEXT_FROM", "alice", "while you were out"),
                ("NEW_USER", "carol", None), ("DISCONNECTED", "dave", None)]
        got = []
        while len(got) < len(want):
            m = bob.recv(3 * T)
            got.append((m["type"], m.get("username"), m.get("text")))
        got += [(m["type"], m.get("username"), m.get("text"))
                for m in bob.drain()]
        assert got == want, got
        wait_users(bob, {"bob": "ACTIVE", "alice": "ACTIVE",
                         "carol": "ACTIVE"})
        alice.send(req("PUBLIC_TEXT", text="and on"))
        bob.expect(public_from("alice", "and on"), 3 * T)


def test_only_the_hub_maps_the_places_writable():
    """The places are in the table's header: a worker (a client's, or a
    spare) maps the table read-only, from a read-only descriptor (the
    unit test check_shm shows mprotect cannot upgrade it), so a
    compromised worker cannot steer the next hub.  The hub maps it
    writable; the master, which made it, too."""
    with Redis() as r:
        a, b = nodes(r, 2)
        Client(a).identify("alice")
        Client(b).identify("bob")
        Client(b)       # one not identified yet
        hub = b.hub_pid()
        seen = 0
        for pid in b.descendants():
            try:
                with open("/proc/%d/maps" % pid) as maps:
                    modes = [line.split()[1] for line in maps
                             if "/dev/shm/talknetd." in line]
            except FileNotFoundError:
                continue    # a spare that went meanwhile
            if pid == hub:
                assert any(m.startswith("rw") for m in modes), modes
            else:
                assert modes and all("w" not in m for m in modes), \
                    (pid, modes)
                seen += 1
        assert seen >= 2, seen


def test_a_node_restarted_while_the_hub_was_down():
    """node1 stopped (its users leave: their gone go in its stream) and
    started again (its join empties its stream) while node2's hub is
    down: the gones node2's next hub would read on to are gone with the
    old stream.  alice must not stay on node2 as a ghost; carol, on the
    new node1, is news."""
    with Redis() as r:
        a, b = nodes(r, 2)
        Client(a).identify("alice")
        bob = Client(b).identify("bob")
        wait_users(bob, {"bob": "ACTIVE", "alice": "ACTIVE"})
        bob.drain()
        old = b.hub_pid()
        os.kill(old, signal.SIGSTOP)
        try:
            a.stop()
            a = tntest.cluster.node(r, "node1")
            a.wait_log(r"cluster: ok")
            carol = Client(a).identify("carol")
        finally:
            os.kill(old, signal.SIGKILL)
            sigcont(old)
        new_hub(b, old)
        b.wait_log(r"node1's stream lost entries after where the last hub "
                   r"stopped", 3 * T)
        wait_users(bob, {"bob": "ACTIVE", "carol": "ACTIVE"})
        carol.send(req("PUBLIC_TEXT", text="new node1"))
        bob.expect(public_from("carol", "new node1"), 3 * T)


def test_redis_back_empty_while_the_hub_was_down():
    """Redis restarted empty while node2's hub is down: node1 re-asserts
    alice, and carol comes; node2's next hub sees the same as node1's
    users, and reads on.  Then a FLUSHALL while it is down again, and
    carol leaves meanwhile: no ghost."""
    with Redis() as r:
        a, b, cl = two_nodes(r, ("alice",), ("bob",))
        alice, bob = cl["alice"], cl["bob"]
        bob.drain()
        old = b.hub_pid()
        os.kill(old, signal.SIGSTOP)
        try:
            r.stop()
            r.start()
            tntest.cluster.wait_ok_again(a, 2)
            carol = Client(a).identify("carol")
        finally:
            os.kill(old, signal.SIGKILL)
            sigcont(old)
        new_hub(b, old)
        tntest.cluster.wait_ok_again(b, 2)
        want = {"bob": "ACTIVE", "alice": "ACTIVE", "carol": "ACTIVE"}
        wait_users(bob, want, 5 * T)
        wait_users(alice, want, 5 * T)
        carol.send(req("PUBLIC_TEXT", text="after redis"))
        bob.expect(public_from("carol", "after redis"), 3 * T)
        # Then a FLUSHALL while node2's hub is down, and carol leaves.
        bob.drain()
        old = b.hub_pid()
        os.kill(old, signal.SIGSTOP)
        try:
            r.cmd("FLUSHALL")
            tntest.wait_until(lambda: r.cmd("HGET", "tn:names", "alice")
                              == b"node1", 5 * T, what="node1 re-asserts")
            carol.send(req("DISCONNECT"))
            tntest.wait_until(lambda: r.cmd("HGET", "tn:names", "carol")
                              is None, 3 * T, what="carol's release")
        finally:
            os.kill(old, signal.SIGKILL)
            sigcont(old)
        new_hub(b, old)
        want = {"bob": "ACTIVE", "alice": "ACTIVE"}
        wait_users(bob, want, 5 * T)
        wait_users(alice, want, 5 * T)
        alice.send(req("PUBLIC_TEXT", text="after flushall"))
        bob.expect(public_from("alice", "after flushall"), 3 * T)


def test_a_hub_killed_inside_its_fence_leaves_no_name_twice():
    """The heartbeat that tells a node it was reaped takes the tombstone
    and the node's key again; a hub killed before it has closed its
    clients leaves them to the next hub, whose heartbeat finds nothing
    wrong.  Made exact here: node2's hub stopped, node1 reaps it, the
    tombstone taken and the key put back by hand (as that heartbeat
    does), the hub killed.  bob, still on node2, holds a name Redis
    freed: a client of node1 could take it, two bobs at once.  The next
    hub re-asserts its users once: bob's name is node2's again, and
    node1 refuses a second bob."""
    with Redis() as r:
        a, b, cl = two_nodes(r, ("alice",), ("bob",), *FAST_TTL)
        alice, bob = cl["alice"], cl["bob"]
        key = r.cmd("HGETALL", "tn:node:node2")
        hub = b.hub_pid()
        os.kill(hub, signal.SIGSTOP)
        try:
            tntest.wait_until(lambda: r.cmd("EXISTS", "tn:reaped:node2")
                              == 1, reap_bound(FAST_TTL_MS),
                              what="node2 reaped")
            r.cmd("DEL", "tn:reaped:node2")
            r.cmd("HSET", "tn:node:node2", *key)
            r.cmd("PEXPIRE", "tn:node:node2", str(FAST_TTL_MS))
            r.cmd("SADD", "tn:nodes", "node2")
        finally:
            os.kill(hub, signal.SIGKILL)
            sigcont(hub)
        new_hub(b, hub)
        tntest.wait_until(lambda: r.cmd("HGET", "tn:names", "bob")
                          == b"node2", 3 * T, what="bob's name node2's again")
        other = Client(a)
        other.send(req("IDENTIFY", username="bob"))
        other.expect(resp("IDENTIFY", "USER_ALREADY_EXISTS", "bob"),
                     3 * T)
        wait_users(alice, {"bob": "ACTIVE", "alice": "ACTIVE"})
        wait_users(bob, {"bob": "ACTIVE", "alice": "ACTIVE"})


def test_a_restarted_hub_yields_a_name_freed_here_and_taken_there():
    """bob's release ran in Redis (as a hub killed right after it would
    leave it: the row still in the table), and a client of node1 took
    the name; node2's next hub re-asserts its users, and must give bob
    up rather than win on the older claim and close node1's bob."""
    with Redis() as r:
        a, b = nodes(r, 2)
        alice = Client(a).identify("alice")
        bob = Client(b).identify("bob")
        wait_users(alice, {"bob": "ACTIVE", "alice": "ACTIVE"})
        alice.drain()
        hub = b.hub_pid()
        os.kill(hub, signal.SIGSTOP)
        try:
            r.cmd("HDEL", "tn:names", "bob")
            r.cmd("HDEL", "tn:since", "bob")
            r.cmd("SREM", "tn:names:node2", "bob")
            r.cmd("XADD", "tn:stream:node2", "*", "e", "gone", "n", "bob")
            alice.expect(tntest.disconnected("bob"), 3 * T)
            bob1 = Client(a).identify("bob")
        finally:
            os.kill(hub, signal.SIGKILL)
            sigcont(hub)
        new_hub(b, hub)
        bob.expect_closed(3 * T, allow_lines=True)
        assert r.cmd("HGET", "tn:names", "bob") == b"node1"
        want = {"bob": "ACTIVE", "alice": "ACTIVE"}
        wait_users(bob1, want)
        carol = Client(b).identify("carol")
        want["carol"] = "ACTIVE"
        wait_users(carol, want)
        bob1.send(req("PUBLIC_TEXT", text="still here"))
        carol.expect(public_from("bob", "still here"), 3 * T)


if __name__ == "__main__":
    tntest.main(globals())
