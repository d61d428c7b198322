#!/usr/bin/env python3
"""The protocol suite (tests/e2e) run across three nodes (issue 19).

Every Server an e2e test starts is a tntest.cluster.Cluster: three
talknetd nodes on one redis-server of its own (a free loopback port,
persistence off, stopped by its pid), and each new client connects to
the next node in turn.  The same requests, the same byte-exact replies,
the same checks of every line: each scenario runs once single-node (its
own file) and once here, across nodes."""

import os
import sys

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
           "test_presence", "test_ordering", "test_nc"]

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
# test_presence.test_join_storm_presence: every observer sees one
#   sequence, the one hub's order of every request; across nodes only
#   each sender's own order holds (doc/design.md "Order"), which
#   test_cluster_mirror.py checks.
EXCLUDE = {"test_presence.test_join_storm_presence"}


def patch():
    # client.Server stays: port_of(server) asks isinstance(server, Server)
    # of a Cluster and of its nodes alike.
    tntest.Server = tndaemon.Server = tnsteps.Server = cluster.Cluster


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
    tntest.runner.run_modules(MODULES, EXCLUDE)


if __name__ == "__main__":
    main()
