#!/usr/bin/env python3
"""The protocol suite (tests/e2e) run across three nodes (issue 19).

Every Server an e2e test starts is a tntest.cluster.Cluster: three
talknetd nodes on the file's redis-server (started on a free loopback
port, persistence off, stopped by its pid at the end; each cluster on a
database of its own, emptied first), and each new client connects to
the next node in turn, once every node has read the others' streams.
The same requests, the same byte-exact replies, the same checks of
every line: each scenario runs once single-node (its own file) and once
here, across nodes."""

import os
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE + "/../lib")
sys.path.insert(0, HERE + "/../e2e")
import tntest  # noqa: E402
from tntest import daemon as tndaemon  # noqa: E402
from tntest import steps as tnsteps  # noqa: E402
from tntest import cluster  # noqa: E402

# The protocol's files.
MODULES = ["test_identify", "test_status_users", "test_text", "test_rooms",
           "test_invite", "test_disconnect", "test_errors", "test_framing",
           "test_ordering", "test_nc"]

# Left out, and why: each tests one process's mechanics, which are per
# node by design (every node runs them alone, as a single node does):
# test_limits: --max-clients (the master refuses at accept), per-IP
#   caps, --max-queue, the login timeout, the rate limit;
# test_flow: a slow reader's output queue and the hub's pacing of its
#   sender (one hub's flow control);
# test_processes: forking, reaping, SIGTERM of one master's tree;
# test_hostile_worker, test_peer_attack, test_rounds_attack: a forged
#   worker on one hub's socket, the peer layer's frames, the hub's
#   rounds (a compromised worker speaks to its own hub only);
# test_attack: flow control, reconnect rules and the hub's channel
#   under attack (one hub's queues and rows);
# test_cli: talknetd's command line (listen addresses, IPv6, a port in
#   use); test_bench: talknet-bench (it gains --nodes of its own).
# test_presence (its one test, the join storm): 2,000 joiners against
#   the hub's rounds under load (issue 15), checked against the one
#   hub's total order (every observer sees one sequence, each joiner
#   byte for byte what the observers got after its RESPONSE); across
#   nodes only each sender's own order holds (doc/design.md "Order"),
#   which test_cluster_mirror.py checks.  Presence itself (NEW_USER,
#   NEW_STATUS, DISCONNECTED, USERS) crosses nodes in the files above.
EXCLUDE = set()


def patch():
    # client.Server stays: port_of(server) asks isinstance(server, Server)
    # of a Cluster and of its nodes alike.
    tntest.Server = tndaemon.Server = tnsteps.Server = cluster.Cluster


def test_a_new_nodes_first_user_is_seen_at_once():
    """The suite's premise: a node that just joined is read by the others
    at once (its join wakes their XREAD), not after their blocked read
    of the streams known before times out (up to a second).  Compared
    with the same crossing once every node reads every stream."""
    with cluster.Cluster(start=False) as s:
        # Not Cluster.start, nor its port: they wait for every node to
        # read every stream, which is what this measures.
        for n in s.nodes:
            n.start()
        for n in s.nodes:
            n.wait_log(r"cluster: mirror of")
        a = tntest.Client(s.nodes[0]).identify("a")
        t0 = time.monotonic()
        b = tntest.Client(s.nodes[1]).identify("b")
        a.expect(tntest.new_user("b"))
        first = time.monotonic() - t0
        # b may have identified before node2 read a's identify, and is
        # then told NEW_USER a as news: read past it (USERS) first.
        cluster.wait_users(b, {"a": "ACTIVE", "b": "ACTIVE"})
        t0 = time.monotonic()
        c = tntest.Client(s.nodes[2]).identify("c")
        for x in (a, b):
            x.expect(tntest.new_user("c"))
        later = time.monotonic() - t0
        assert first < max(0.5, 10 * later), (first, later)


def main():
    """Runs the e2e files across nodes (or those named on the command
    line, MODULE or MODULE.test_name)."""
    if cluster.REDIS_SERVER is None:
        print("SKIP all: redis-server not installed")
        sys.exit(77)
    if not os.access(tntest.TALKNETD, os.X_OK):
        print("SKIP all: talknetd not found at %s" % tntest.TALKNETD)
        sys.exit(77)
    patch()
    own = [(n, f) for n, f in globals().items() if n.startswith("test_")]
    tntest.runner.run_modules(MODULES, EXCLUDE, own)


if __name__ == "__main__":
    main()
