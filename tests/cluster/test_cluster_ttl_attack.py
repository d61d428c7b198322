#!/usr/bin/env python3
"""cluster-ttl-ms under attack: a hostile Redis user's 'ttl' field in a
live node's key (huge, negative, binary, 1 MB) neither crashes nor hangs
the live node, and the node it turns away is told so on one escaped,
bounded line; a node key without a 'ttl' (an older talknetd's) is still
accepted; the first node restarted with another TTL while the second
runs is refused, naming both values."""

import os
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
import tntest  # noqa: E402
from tntest import Client  # noqa: E402
from tntest.cluster import EXIT_CLUSTER, Redis, node, start_refused  # noqa: E402
from tntest.cluster import FAST_TTL, FAST_TTL_MS  # noqa: E402

T = tntest.TIMEOUT


def test_a_hostile_ttl_field_is_escaped_and_bounded():
    """Garbage in the 'ttl' of a live node's key: the live node keeps
    serving and writes its own ttl back at its next beat; and a node
    joining next to a key that keeps the garbage (a ghost node a
    hostile user keeps alive) is refused (75) on one line of printable
    bytes, at most a few hundred long."""
    with Redis() as r:
        a = node(r, "alpha", *FAST_TTL)
        a.wait_log(r"cluster: ok")
        r.cmd("SADD", "tn:nodes", "ghost")
        for bad in (b"9" * 40, b"-1", b"\x1b[31mred\x1b[0m\r\nforged: x",
                    b"\x00\xff" * 8, b"A" * (1 << 20)):
            r.cmd("HSET", "tn:node:alpha", "ttl", bad)
            r.cmd("HSET", "tn:node:ghost", "token", "t", "ttl", bad)
            r.cmd("PEXPIRE", "tn:node:ghost", str(60 * 1000))
            rc, err = start_refused(r.url, "beta", *FAST_TTL)
            assert rc == EXIT_CLUSTER, (rc, err[:300])
            lines = err.rstrip(b"\n").split(b"\n")
            assert len(lines) == 1, err[:300]
            assert all(32 <= ch < 127 for ch in lines[0]), err[:300]
            assert len(lines[0]) < 1024, len(lines[0])
            assert b"cluster-ttl-ms is %d" % FAST_TTL_MS in err, err[:300]
        Client(a).identify("ann")
        tntest.wait_until(
            lambda: r.cmd("HGET", "tn:node:alpha", "ttl") ==
            str(FAST_TTL_MS).encode(), T, what="alpha's own ttl again")
        assert a.alive()


def test_a_node_key_without_ttl_is_accepted():
    """An older talknetd writes no 'ttl' into its key: a new node joins
    next to it whatever its own TTL."""
    with Redis() as r:
        r.cmd("HSET", "tn:node:old", "token", "t", "host", "elsewhere",
              "pid", "1", "beat", "0")
        r.cmd("PEXPIRE", "tn:node:old", str(60 * 1000))
        r.cmd("SADD", "tn:nodes", "old")
        b = node(r, "beta", *FAST_TTL)
        b.wait_log(r"cluster: ok")


def test_the_first_node_restarted_with_another_ttl_is_refused():
    """alpha and beta on 1500 ms; alpha stops and comes back with 3000
    while beta runs: refused (75), naming both; with 1500 it joins."""
    with Redis() as r:
        a = node(r, "alpha", *FAST_TTL)
        a.wait_log(r"cluster: ok")
        b = node(r, "beta", *FAST_TTL)
        b.wait_log(r"cluster: ok")
        a.stop()
        rc, err = start_refused(r.url, "alpha", "--cluster-ttl-ms", "3000")
        assert rc == EXIT_CLUSTER, (rc, err)
        assert b"cluster-ttl-ms is 3000, node beta runs with %d" % \
            FAST_TTL_MS in err, err
        a = node(r, "alpha", *FAST_TTL)
        a.wait_log(r"cluster: ok")


if __name__ == "__main__":
    tntest.main(globals())
