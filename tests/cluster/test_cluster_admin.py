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
from tntest.cluster import Redis, node, nodes, wait_ok_again  # noqa: E402

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


def cpu_ticks(pid):
    """User and system clock ticks pid has used."""
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


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
        cpu0 = cpu_ticks(a.pid)
        time.sleep(1.0)
        ticks = cpu_ticks(a.pid) - cpu0
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
    """Whether pid's anonymous memory (heap, stack, mappings of no file)
    holds secret."""
    try:
        mem = open("/proc/%d/mem" % pid, "rb")
    except PermissionError:
        raise tntest.Skip("cannot read the daemon's memory here")
    with mem, open("/proc/%d/maps" % pid) as maps:
        for line in maps:
            f = line.split()
            name = f[5] if len(f) > 5 else ""
            if not f[1].startswith("r") or name.startswith("/") or \
                    name in ("[vvar]", "[vdso]", "[vsyscall]"):
                continue
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except OSError:
                continue
            if secret in data:
                return True
    return False


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
        for opts in (("--cluster-password-file", path),
                     ("--cluster-password", PASSWORD)):
            found = password_holders(r, *opts)
            print("%s: holds the password: %s" % (opts[0], found))
            assert found["hub"], "the scan does not find the hub's copy"
            assert not found["worker"], "a worker holds the password"
            assert not found["worker after a reload"], \
                "a worker forked after a reload holds the password"


if __name__ == "__main__":
    tntest.main(globals())
