#!/usr/bin/env python3
"""The cluster's foundation (issue 19): nodes on one redis-server of the
test's own.  A node's id is claimed before it starts (a second node with
a live id exits 75) and kept alive by its hub's heartbeat; a user name
is claimed in Redis, so it is unique across nodes (the race: 50 rounds,
exactly one winner each); an IDENTIFY waits for Redis on its own channel
only; a node whose Redis goes away refuses new users and comes back when
Redis does; and without --cluster no connection to Redis is made."""

import os
import re
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
import tntest  # noqa: E402
from tntest import Client, Server, req, resp, new_user  # noqa: E402
from tntest import cluster  # noqa: E402
from tntest.cluster import (EXIT_CLUSTER, Redis, node, nodes,  # noqa: E402
                            start_refused)
from tntest.cluster import FAST_TTL, FAST_TTL_MS  # noqa: E402

T = tntest.TIMEOUT


def test_the_node_key_lives_and_is_refreshed():
    with Redis() as r:
        a = node(r, "alpha")
        a.wait_log(r"cluster: ok")
        h = r.cmd("HGETALL", "tn:node:alpha")
        fields = dict(zip(h[::2], h[1::2]))
        assert set(fields) >= {b"token", b"host", b"pid", b"beat"}, fields
        # The hub writes its master's pid.
        tntest.wait_until(
            lambda: r.cmd("HGET", "tn:node:alpha", "pid") ==
            str(a.pid).encode(), T, what="the master's pid in the key")
        assert b"alpha" in r.cmd("SMEMBERS", "tn:nodes")
        # A TTL of about 3 s, refreshed: still there after a TTL, and
        # its beat refreshed again after that (not once only).
        ttl = r.cmd("PTTL", "tn:node:alpha")
        assert 0 < ttl <= 3000, ttl
        time.sleep(3.0 + 0.5)
        ttl = r.cmd("PTTL", "tn:node:alpha")
        assert 0 < ttl <= 3000, ttl
        beat = r.cmd("HGET", "tn:node:alpha", "beat")
        assert beat != fields[b"beat"], beat
        tntest.wait_until(
            lambda: r.cmd("HGET", "tn:node:alpha", "beat") not in
            (beat, None), 3 * T, what="one more beat")
        ttl = r.cmd("PTTL", "tn:node:alpha")
        assert 0 < ttl <= 3000, ttl
        assert r.cmd("HGET", "tn:node:alpha", "token") == fields[b"token"]


def test_cluster_ttl_ms_sets_the_key_life_and_the_beat():
    """--cluster-ttl-ms 1500: the key lives 1.5 s, not the default 3 s,
    says so (ttl), and is refreshed every third of it: it never lapses,
    and beats more often than the default's once a second."""
    with Redis() as r:
        a = node(r, "alpha", *FAST_TTL)
        a.wait_log(r"cluster: ok")
        assert r.cmd("HGET", "tn:node:alpha", "ttl") == \
            str(FAST_TTL_MS).encode()
        beats = set()
        end = time.monotonic() + 1.1 * FAST_TTL_MS / 1000
        while time.monotonic() < end:
            ttl = r.cmd("PTTL", "tn:node:alpha")
            assert 0 < ttl <= FAST_TTL_MS, ttl
            beats.add(r.cmd("HGET", "tn:node:alpha", "beat"))
            time.sleep(0.02)
        # Past a TTL: refreshed.  Every 0.5 s for 1.65 s: 3 or 4 beats;
        # the default's once a second, 2 at most.
        assert len(beats) >= 3, beats


def test_a_node_with_another_ttl_is_refused():
    """Every node of a cluster must have the same --cluster-ttl-ms (a
    node's reap grace follows its own heartbeat): one that differs from
    a live node's exits 75 before it starts, saying which; the same TTL
    joins."""
    with Redis() as r:
        a = node(r, "alpha", *FAST_TTL)
        a.wait_log(r"cluster: ok")
        rc, err = start_refused(r.url, "beta")
        err = err.decode()
        assert rc == EXIT_CLUSTER, (rc, err)
        assert "cluster-ttl-ms is 3000, node alpha runs with %d" % \
            FAST_TTL_MS in err, err
        assert "listening on" not in err, err
        b = node(r, "beta", *FAST_TTL)
        b.wait_log(r"cluster: ok")


def test_a_second_node_with_a_live_id_is_refused():
    with Redis() as r:
        a = node(r, "alpha")
        a.wait_log(r"cluster: ok")
        rc, err = start_refused(r.url, "alpha")
        err = err.decode()
        assert rc == EXIT_CLUSTER, (rc, err)
        assert "node id alpha is in use by a live node" in err, err
        assert "listening on" not in err, err
        # The live node kept its key and its token.
        assert a.alive()
        tntest.wait_until(lambda: r.cmd("PTTL", "tn:node:alpha") > 0, T)


def test_a_node_restarted_at_once_takes_its_id_back():
    with Redis() as r:
        a = node(r, "alpha")
        a.wait_log(r"cluster: ok")
        a.stop()
        # Its key lives on for up to 3 s, but its master is gone.
        assert r.cmd("EXISTS", "tn:node:alpha") == 1
        t0 = time.monotonic()
        b = node(r, "alpha")
        b.wait_log(r"cluster: ok")
        assert time.monotonic() - t0 < 3.0
        b.wait_log(r"taking it over")


def test_unreachable_redis_at_start_is_refused():
    port = tntest.free_port()
    rc, err = start_refused("redis://127.0.0.1:%d" % port, "alpha")
    err = err.decode()
    assert rc == EXIT_CLUSTER, (rc, err)
    assert "cannot reach redis" in err, err


def test_auth_from_a_password_file_and_a_wrong_password():
    with Redis(password="s3cret pw") as r:
        path = os.path.join(r.dir, "pw")
        with open(path, "w") as f:
            f.write("s3cret pw\n")
        os.chmod(path, 0o600)
        a = node(r, "alpha", "--cluster-password-file", path)
        a.wait_log(r"cluster: ok")
        Client(a).identify("ann")
        assert r.cmd("HGET", "tn:names", "ann") == b"alpha"
        with open(path, "w") as f:
            f.write("wrong\n")
        rc, err = start_refused(r.url, "beta", "--cluster-password-file",
                                path)
        err = err.decode()
        assert rc == EXIT_CLUSTER, (rc, err)
        assert "AUTH" in err and "wrong" not in err, err


def test_a_name_is_unique_across_nodes():
    with Redis() as r:
        a, b = nodes(r, 2)
        alice = Client(a).identify("alice")
        other = Client(b)
        other.send(req("IDENTIFY", username="alice"))
        other.expect(resp("IDENTIFY", "USER_ALREADY_EXISTS", "alice"))
        assert r.cmd("HGET", "tn:names", "alice") == b"node1"
        # Gone from A, the name is free on B.
        alice.close()
        tntest.wait_until(lambda: r.cmd("HEXISTS", "tn:names", "alice") == 0,
                          T, what="alice released")
        # B may not have read A's "gone" yet: taken until it has.
        other.identify_eventually("alice")
        assert r.cmd("HGET", "tn:names", "alice") == b"node2"
        assert r.cmd("SMEMBERS", "tn:names:node2") == [b"alice"]
        assert r.cmd("SMEMBERS", "tn:names:node1") == []


def test_a_name_this_node_holds_with_nobody_here_is_granted_again():
    # As if a hub had died between Redis's grant and its answer: the
    # worker's IDENTIFY comes again to the next hub.
    with Redis() as r:
        a, b = nodes(r, 2)
        r.cmd("HSET", "tn:names", "ghost", "node1")
        r.cmd("SADD", "tn:names:node1", "ghost")
        r.cmd("HSET", "tn:since", "ghost", "1000")
        other = Client(b)
        other.send(req("IDENTIFY", username="ghost"))
        other.expect(resp("IDENTIFY", "USER_ALREADY_EXISTS", "ghost"))
        g = Client(a).identify("ghost")
        twin = Client(a)
        twin.send(req("IDENTIFY", username="ghost"))
        twin.expect(resp("IDENTIFY", "USER_ALREADY_EXISTS", "ghost"))
        g.close()
        tntest.wait_until(lambda: r.cmd("HEXISTS", "tn:names", "ghost") == 0,
                          3 * T, what="ghost released")


def test_the_claim_and_its_event_are_one_write():
    with Redis() as r:
        (a,) = nodes(r, 1)
        before = r.info("commandstats")
        Client(a).identify("bob")
        after = r.info("commandstats")

        def calls(stats, cmd):
            m = re.search(r"calls=(\d+)", stats.get("cmdstat_" + cmd, ""))
            return int(m.group(1)) if m else 0
        # One EVAL for the claim (heartbeats are EVALs too: allow them).
        assert calls(after, "xadd") - calls(before, "xadd") == 1
        entries = r.cmd("XRANGE", "tn:stream:node1", "-", "+")
        assert [e[1] for e in entries] == [[b"e", b"user", b"n", b"bob"]]


def race_round(ca, cb, name):
    """Both send IDENTIFY name at once; returns the two results."""
    line = tntest.compact(req("IDENTIFY", username=name))
    go = threading.Barrier(2)

    def send(c):
        go.wait(T)
        c.sock.sendall(line)
    ts = [threading.Thread(target=send, args=(c,)) for c in (ca, cb)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(T)
    return [c.recv()["result"] for c in (ca, cb)]


def test_two_nodes_race_for_one_name_exactly_one_wins():
    with Redis() as r:
        a, b = nodes(r, 2)
        wins = {"a": 0, "b": 0}
        for i in range(50):
            ca, cb = Client(a), Client(b)
            name = "race%d" % i
            res = race_round(ca, cb, name)
            assert sorted(res) == ["SUCCESS", "USER_ALREADY_EXISTS"], \
                (i, res)
            wins["a" if res[0] == "SUCCESS" else "b"] += 1
            owner = r.cmd("HGET", "tn:names", name)
            assert owner == (b"node1" if res[0] == "SUCCESS" else b"node2")
            ca.close()
            cb.close()
        assert wins["a"] + wins["b"] == 50
        print("race: node1 won %d, node2 won %d" % (wins["a"], wins["b"]))


def test_a_claim_waits_on_its_own_channel_only():
    # DEBUG SLEEP stalls Redis: the claim waits, other channels do not.
    with Redis("--enable-debug-command", "yes") as r:
        (a,) = nodes(r, 1)
        carol = Client(a).identify("carol")
        dave = Client(a)
        stall = r.conn()
        try:
            stall.send("DEBUG", "SLEEP", "1.5")
            time.sleep(0.1)
            t0 = time.monotonic()
            dave.send(req("IDENTIFY", username="dave"))
            dave.send(req("USERS"))
            carol.send(req("USERS"))
            assert list(carol.recv()["users"]) == ["carol"]
            assert time.monotonic() - t0 < 1.0
            # dave's USERS waited behind its IDENTIFY, in order.
            dave.expect(resp("IDENTIFY", "SUCCESS", "dave"), 3 * T)
            assert time.monotonic() - t0 > 1.0
            assert sorted(dave.recv()["users"]) == ["carol", "dave"]
            carol.expect(new_user("dave"))
            assert stall.read() == b"OK"
        finally:
            stall.close()


def test_without_redis_a_node_refuses_new_users_then_recovers():
    with Redis() as r:
        (a,) = nodes(r, 1)
        erin = Client(a).identify("erin")
        r.stop()
        a.wait_log(r"cluster: degraded")
        frank = Client(a)
        frank.send(req("IDENTIFY", username="frank"))
        frank.expect_closed()
        # The connected user is served meanwhile.
        erin.send(req("USERS"))
        assert list(erin.recv()["users"]) == ["erin"]
        r.start()
        cluster.wait_ok_again(a, 2)
        Client(a).identify("frank")


def test_a_release_while_redis_hangs_is_sent_when_it_answers():
    with Redis() as r:
        (a,) = nodes(r, 1, *FAST_TTL)
        erin = Client(a).identify("erin")
        os.kill(r.pid, signal.SIGSTOP)
        try:
            # The heartbeat goes unanswered for the TTL: degraded.
            a.wait_log(r"cluster: degraded", 10 * T)
            erin.close()
            a.wait_log(r"session erin .* ended", 3 * T)
        finally:
            os.kill(r.pid, signal.SIGCONT)
        cluster.wait_ok_again(a, 2)
        tntest.wait_until(lambda: r.cmd("HEXISTS", "tn:names", "erin") == 0,
                          3 * T, what="erin released once redis answered")
        Client(a).identify("erin")


def tcp_peers(pids):
    """The remote ports of the TCP sockets the processes pids hold."""
    inodes = set()
    for p in pids:
        inodes |= tntest.socket_inodes(p)
    return {int(f[2].rsplit(":", 1)[1], 16)
            for f in tntest.tcp_table(("/proc/net/tcp", "/proc/net/tcp6"))
            if f[9] in inodes}


def test_without_cluster_no_redis_connection_is_made():
    with Redis() as r:
        before = int(r.info("stats")["total_connections_received"])
        s = Server()
        hub = s.hub_pid()
        c = Client(s).identify("gina")
        c.send(req("PUBLIC_TEXT", text="hi"))
        c.send(req("USERS"))
        c.recv()
        # No process of the daemon holds a socket to Redis's port...
        assert r.port not in tcp_peers(s.descendants() + [s.pid])
        # ...nor any TCP socket but the listener and its clients'.
        assert tcp_peers([hub]) <= {0}, tcp_peers([hub])
        s.stop()
        after = int(r.info("stats")["total_connections_received"])
        # Only this test's own INFO connection.
        assert after - before == 1, (before, after)
        assert "cluster" not in s.log_text()


if __name__ == "__main__":
    tntest.main(globals())
