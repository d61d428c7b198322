#!/usr/bin/env python3
"""The cluster's admin side (issue 19): what the master does with it.

- Redis unreachable: the hub says "degraded" in the table's header; the
  master then closes new connections at accept (logged once per change
  of state, not per connection), says so in sd_notify STATUS and in
  `talknetctl show stats` (its "cluster" line: none, ok, degraded),
  and takes clients again once Redis is back.
- The Redis password: every worker inherits the master's configuration,
  and wipes the password right after fork; the hub keeps it (the scan
  of its memory finds it, which shows the scan works).
- `talknetctl show cluster`: the nodes, their clients, their stream lag
  and their last heartbeat, which the hub publishes in the table and
  the master checks before showing.
- --max-users: rows for the whole cluster's users, beyond max-clients;
  remote users take them, local connections stay bounded by
  max-clients."""

import json
import os
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
import tntest  # noqa: E402
from tntest import Client, Server, ops, req  # noqa: E402
from tntest.cluster import (Redis, hub_table, node, nodes,  # noqa: E402
                            users_of, wait_ok_again, FAST_TTL, FAST_TTL_MS)

T = tntest.TIMEOUT
PASSWORD = "Zq7-cluster-pw-4f1e9b"     # nothing else in memory looks like it


def ctl(server, *words, json_out=True):
    """talknetctl against server: (status, parsed JSON or text, stderr)."""
    tool = os.path.join(os.path.dirname(tntest.TALKNETD), "talknetctl")
    if not os.access(tool, os.X_OK):
        raise tntest.Skip("talknetctl not found at %s" % tool)
    argv = [tool, "-s", server.control] + (["--json"] if json_out else []) \
        + list(words)
    rc, out, err = ops.run(argv, timeout=10 * T)
    if json_out and rc in (0, 3):
        out = json.loads(out)
    return rc, out, err


def stats(server):
    rc, out, err = ctl(server, "show", "stats")
    assert rc == 0, (rc, err)
    return out["data"]


def refused_at_accept(server, timeout=T):
    """Whether a new connection is closed before it can say anything:
    the master closes it at once (EOF, or a reset), no worker read it;
    False if it is still open after timeout."""
    s = socket.create_connection(("127.0.0.1", server.port), T)
    s.settimeout(timeout)
    try:
        return s.recv(64) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    finally:
        s.close()


def test_degraded_refuses_at_accept_and_says_so():
    ns = ops.NotifySocket()
    with Redis() as r:
        (a,) = [tntest.EnvServer("--cluster", r.url, "--node-id", "solo",
                                 env=ns.env())]
        a.wait_log(r"cluster: ok")
        tntest.wait_until(lambda: stats(a).get("cluster") == "ok", T,
                          what="show stats: cluster ok")
        erin = Client(a).identify("erin")
        assert not refused_at_accept(a, 0.5)
        r.stop()
        a.wait_log(r"cluster: degraded")
        tntest.wait_until(lambda: stats(a)["cluster"] == "degraded", 3 * T,
                          what="show stats: cluster degraded")
        rc, text, err = ctl(a, "show", "stats", json_out=False)
        assert rc == 0 and "cluster" in text and "degraded" in text, text
        a.wait_log(r"connections refused: cluster degraded", 3 * T)
        for _ in range(5):
            assert refused_at_accept(a), "a new connection was served"
        assert stats(a)["cluster_refused"] >= 5
        # Logged once per change of state, not once per connection.
        assert a.log_text().count("connections refused: cluster "
                                  "degraded") == 1, a.log_text()
        ns.wait_for(lambda m: "cluster: degraded" in m, timeout=3 * T,
                    what="STATUS with cluster: degraded")
        # The listener stays polled but does not spin: the master idles.
        cpu0 = tntest.cpu_ticks(a.pid)
        time.sleep(1.0)
        ticks = tntest.cpu_ticks(a.pid) - cpu0
        assert ticks < 0.3 * os.sysconf("SC_CLK_TCK"), \
            "the master used %d ticks in 1 s while degraded" % ticks
        # The connected client is still served.
        erin.send(req("USERS"))
        assert list(erin.recv()["users"]) == ["erin"]
        r.start()
        wait_ok_again(a, 2)
        a.wait_log(r"connections accepted again: cluster ok", 3 * T)
        tntest.wait_until(lambda: stats(a)["cluster"] == "ok", 3 * T,
                          what="show stats: cluster ok again")
        ns.wait_for(lambda m: m.startswith("STATUS=") and
                    "cluster: ok" in m, timeout=3 * T,
                    what="STATUS with cluster: ok")
        Client(a).identify("frank")


def test_without_cluster_stats_say_none_and_status_is_unchanged():
    ns = ops.NotifySocket()
    s = tntest.EnvServer(env=ns.env())
    assert stats(s)["cluster"] == "none"
    Client(s).identify("solo")
    ns.wait_for(lambda m: m == "STATUS=1 clients", timeout=4,
                what="STATUS=1 clients")


def holds(pid, secret):
    """Whether pid's anonymous memory holds secret."""
    found = tntest.memory_holds(pid, [secret])
    if found is None:
        raise tntest.Skip("cannot read the daemon's memory here")
    return found


def password_holders(r, *opts):
    """Which of a node's processes hold the password: master, hub, and
    a worker forked after a reload (the reload reads the file again)."""
    a = node(r, "alpha", *opts)
    a.wait_log(r"cluster: ok")
    if tntest.sanitized(a.pid):
        raise tntest.Skip("a sanitizer build")
    c = Client(a).identify("ann")
    os.kill(a.pid, signal.SIGHUP)
    a.wait_log(r"reloaded")
    # The wiped argument is not taken for a changed password.
    assert "cluster-password changed" not in a.log_text(), a.log_text()
    d = Client(a).identify("bob")
    secret = PASSWORD.encode()
    found = {"hub": holds(a.hub_pid(), secret),
             "worker": holds(a.worker_pid(c), secret),
             "worker after a reload": holds(a.worker_pid(d), secret)}
    c.close()
    d.close()
    a.stop()
    return found


def test_workers_hold_no_cluster_password():
    with Redis(password=PASSWORD) as r:
        path = os.path.join(r.dir, "pw")
        with open(path, "w") as f:
            f.write(PASSWORD + "\n")
        os.chmod(path, 0o600)
        conf = os.path.join(r.dir, "talknetd.conf")
        with open(conf, "w") as f:
            f.write("cluster-password = %s\n" % PASSWORD)
        for opts in (("--cluster-password-file", path),
                     ("--cluster-password", PASSWORD), ("-c", conf)):
            found = password_holders(r, *opts)
            print("%s: holds the password: %s" % (opts[0], found))
            assert found["hub"], "the scan does not find the hub's copy"
            assert not found["worker"], "a worker holds the password"
            assert not found["worker after a reload"], \
                "a worker forked after a reload holds the password"


def show_cluster(server):
    """show cluster's rows, {node: row}; None if it was refused."""
    rc, out, err = ctl(server, "show", "cluster")
    if rc != 0:
        return None
    return {row["node"]: row for row in out["data"]}


def test_show_cluster_lists_nodes_clients_lag_and_heartbeat():
    with Redis() as r:
        a, b, c = nodes(r, 3, *FAST_TTL)
        ann = Client(a).identify("ann")
        Client(a).identify("amy")
        Client(b).identify("bob")
        # A message from B, so A has read something of B's stream.
        ann.drain()

        def complete():
            rows = show_cluster(a)
            return rows is not None and set(rows) == \
                {"node1", "node2", "node3"} and \
                [rows[n]["clients"] for n in ("node1", "node2", "node3")] \
                == [2, 1, 0] and rows["node2"]["lag_ms"] == 0
        tntest.wait_until(complete, 5 * T, what="show cluster complete")
        rows = show_cluster(a)
        print("show cluster on node1: %s" % rows)
        assert rows["node1"]["here"] == "yes"
        assert rows["node2"]["here"] == "" and rows["node3"]["here"] == ""
        for n in ("node1", "node2", "node3"):
            assert rows[n]["state"] == "live", rows
            assert 0 <= rows[n]["heartbeat_ms"] <= FAST_TTL_MS, rows
        # Its own stream is not read here: no lag to show.
        assert rows["node1"]["lag_ms"] == "-", rows
        rc, text, err = ctl(a, "show", "cluster", json_out=False)
        assert rc == 0 and "3 nodes, read from Redis" in text, text
        # Node 3 stops: its heartbeat ages, then it is reaped and gone.
        c.stop()
        tntest.wait_until(lambda: set(show_cluster(a) or ()) ==
                          {"node1", "node2"}, 5 * T,
                          what="node3 gone from show cluster")


def test_show_cluster_without_a_cluster_is_refused():
    s = Server()
    rc, out, err = ctl(s, "show", "cluster", json_out=False)
    assert rc != 0 and "not in a cluster" in err, (rc, out, err)


NODE = 128 + 4 + 4 + 8 + 8      # struct shm_node
NODES_HEAD = 8 + 4 + 4 + 4 + 4 + 8  # struct shm_nodes before node[]


def test_show_cluster_checks_what_the_hub_wrote():
    """A hub that writes nonsense into the node array (a bad count, an
    id with no end, unknown flags) gets it refused or left out."""
    with Redis() as r:
        a, b = nodes(r, 2)
        tntest.wait_until(lambda: set(show_cluster(a) or ()) ==
                          {"node1", "node2"}, 5 * T, what="two nodes")
        hub = a.hub_pid()
        f = hub_table(a)
        head = f.read(64 * 1024)
        at = head.find(b"node1\0")
        assert at > 0, "node1's row not found in the table's header"
        base = at - NODES_HEAD
        os.kill(hub, signal.SIGSTOP)
        try:
            # A count over the array's size: the whole list is refused.
            f.seek(base + 12)
            f.write((999).to_bytes(4, "little"))
            f.flush()
            rc, out, err = ctl(a, "show", "cluster", json_out=False)
            assert rc != 0 and "not readable" in err, (rc, out, err)
            # A sane count, but row 0's id without its NUL and row 1's
            # unknown flags: both rows are left out.
            f.seek(base + 12)
            f.write((2).to_bytes(4, "little"))
            f.seek(base + NODES_HEAD)
            f.write(b"A" * 128)
            f.seek(base + NODES_HEAD + NODE + 128)
            f.write((0xff).to_bytes(4, "little"))
            f.flush()
            rc, out, err = ctl(a, "show", "cluster")
            assert rc == 0 and out["data"] == [], (rc, out, err)
            assert "0 shown" in out["message"][0], out
        finally:
            os.kill(hub, signal.SIGCONT)
            f.close()
        # The hub writes it whole again at its next heartbeat.
        tntest.wait_until(lambda: set(show_cluster(a) or ()) ==
                          {"node1", "node2"}, 5 * T, what="rewritten")
        assert b.alive()


def test_max_users_below_max_clients_is_refused():
    argv = [tntest.TALKNETD, "-n", "--max-clients", "10", "--max-users",
            "5"]
    rc, out, err = ops.run(argv, timeout=10 * T)
    assert rc == 1 and "max-users (5) must be at least max-clients (10)" \
        in err, (rc, out, err)
    rc, out, err = ops.run([tntest.TALKNETD, "-n", "--max-clients", "10",
                            "--max-users", "10"], timeout=10 * T)
    assert rc == 0, (rc, out, err)


def test_max_users_changes_at_a_restart_only():
    conf = ops.conf_file("maxusers", "max-users = 2000\n")
    s = Server("-c", conf)
    s.wait_log(r"for 2000 users \(1000 clients here\)")
    ops.write_file(conf, "max-users = 3000\n")
    os.kill(s.pid, signal.SIGHUP)
    s.wait_log(r"reload: max-users changed: refused, it needs a restart")
    Client(s).identify("still")


def test_max_users_gives_remote_users_rows_beyond_max_clients():
    """Node 1 takes 2 clients but has rows for 6 users: node 2's four
    users are mirrored and node 1's two clients identify too; a third
    client of node 1 is refused by max-clients, and a fifth user of
    node 2 finds no row on node 1 (logged)."""
    with Redis() as r:
        (a,) = nodes(r, 1, "--max-clients", "2", "--max-users", "6")
        (b,) = nodes(r, 1, prefix="far")
        a.wait_log(r"for 6 users \(2 clients here\)")
        far = [Client(b).identify("far%d" % i) for i in range(4)]
        local = [Client(a).identify("near%d" % i) for i in range(2)]
        names = {"far0", "far1", "far2", "far3", "near0", "near1"}
        tntest.wait_until(lambda: set(users_of(local[0])) == names, 3 * T,
                          what="all six users on node 1")
        # Local connections stay bounded by max-clients.
        third = Client(a)
        third.send(req("IDENTIFY", username="near2"))
        third.expect_closed()
        a.wait_log(r"refused: 2 clients \(--max-clients\)")
        # Every row of node 1 is taken: a fifth remote user is not.
        Client(b).identify("far4")
        a.wait_log(r"cluster: no row for far4", 3 * T)
        assert set(users_of(far[0])) >= names | {"far4"}


if __name__ == "__main__":
    tntest.main(globals())
