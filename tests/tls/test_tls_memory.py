#!/usr/bin/env python3
"""What an idle client costs in memory (issue 18: native TLS against
stunnel on memory), measured in one run against a baseline of the same
run: an idle plain worker of a daemon without TLS.  And what is left of
the private key in the processes that must not hold it.

- A plain worker of a daemon that also serves TLS must cost what the
  baseline costs: it drops the inherited server context (and the key
  in it) by unmapping OpenSSL's arenas, which copies no page.  Before,
  tls_free wrote to every page of the context: about 6x the baseline.
- A TLS worker costs its connection's state (OpenSSL's SSL object and
  record buffers, in an arena of its own) and the pages of the master's
  that OpenSSL writes in each process (locks, reference counts, its
  random generator's reseed): about 7x the baseline, measured.  The
  bound (10x) catches a change that copies the master's OpenSSL state
  wholesale (its global arena alone is some 30x the baseline).

The figure is Private_Dirty from smaps_rollup: pages the worker has
written, its own.  Pss is printed too, but with a handful of processes
it is mostly shared pages (libcrypto's text, the master's heap) split
among few; as clients grow a client's Pss tends to its private pages,
which is what make bench's hold 1000 reports.

The key: the hub and a plain worker must hold no copy of the private
key's scalar, live or freed (before the arenas, a temporary OpenSSL
freed while it parsed the key was left in the heap every child
inherits); the master holds it, which shows the scan finds it, and so
does a TLS worker (documented in doc/design.md)."""

import os
import re
import shutil
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE + "/../lib")
sys.path.insert(0, HERE)
import tntest  # noqa: E402
from tlslib import pki, TlsClient, plain_port, tls_server  # noqa: E402

K = 3                   # idle clients of each kind
SETTLE = 0.5            # s after the last identify, for the queues to drain
PLAIN_OF_TLS_MAX = 1.5  # x the baseline
TLS_MAX = 10.0          # x the baseline


def rollup(pid):
    """smaps_rollup's kB fields as {name: int}."""
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            v = v.split()
            if v and v[0].isdigit():
                out[k] = int(v[0])
    return out


def cost(server, clients):
    """Median Private_Dirty and Pss (kB) of the workers of clients."""
    r = [rollup(server.worker_pid(c)) for c in clients]
    return (statistics.median(x["Private_Dirty"] for x in r),
            statistics.median(x["Pss"] for x in r))


def test_memory_per_idle_client():
    """Plain workers of a TLS daemon cost a plain daemon's; TLS workers
    within TLS_MAX of it."""
    # Twice K on the plain daemon: as many processes share its master's
    # pages as share the TLS daemon's (K plain, K TLS).
    with tntest.Server() as s:
        if tntest.sanitized(s.pid):
            raise tntest.Skip("a sanitizer build: its shadow memory")
        cs = [tntest.Client(s.port).identify("p%d" % i)
              for i in range(2 * K)]
        time.sleep(SETTLE)
        base, base_pss = cost(s, cs)
        for c in cs:
            c.close()
    with tls_server(pki()) as s:
        ps = [tntest.Client(plain_port(s)).identify("p%d" % i)
              for i in range(K)]
        ts = [TlsClient(s, pki()).identify("t%d" % i) for i in range(K)]
        time.sleep(SETTLE)
        plain, plain_pss = cost(s, ps)
        tls, tls_pss = cost(s, ts)
        for c in ps + ts:
            c.close()
    print("Private_Dirty kB: plain daemon's worker %d, plain worker of a "
          "TLS daemon %d (%.2fx), TLS worker %d (%.2fx); Pss kB %d, %d, %d"
          % (base, plain, plain / base, tls, tls / base, base_pss,
             plain_pss, tls_pss))
    assert plain <= PLAIN_OF_TLS_MAX * base, \
        "a plain worker of a TLS daemon: %d kB, baseline %d" % (plain, base)
    assert tls <= TLS_MAX * base, \
        "a TLS worker: %d kB, baseline %d" % (tls, base)


def key_scalar(path):
    """The EC private key's scalar, big-endian, from openssl pkey."""
    if shutil.which("openssl") is None:
        raise tntest.Skip("no openssl command")
    out = subprocess.run(["openssl", "pkey", "-in", path, "-text",
                          "-noout"], capture_output=True, text=True,
                         timeout=30).stdout
    m = re.search(r"priv:\s*((?:[0-9a-f]{2}:?\s*)+)", out)
    assert m, "no private scalar in openssl pkey's output"
    return bytes.fromhex(re.sub(r"[:\s]", "", m.group(1)))[-32:]


def holds(pid, secret):
    """Whether pid's anonymous memory (heap, stack, mappings of no file)
    has either half of secret, in either byte order."""
    pats = [secret[:16], secret[16:], secret[::-1][:16], secret[::-1][16:]]
    found = tntest.memory_holds(pid, pats)
    if found is None:
        raise tntest.Skip("cannot read the daemon's memory here")
    return found


def test_key_only_where_served():
    """The hub, plain workers and plain spares hold nothing of the key;
    the master, a TLS worker and a TLS spare do."""
    secret = key_scalar(pki().server_key)
    with tls_server(pki()) as s:
        if tntest.sanitized(s.pid):
            raise tntest.Skip("a sanitizer build")
        p = tntest.Client(plain_port(s)).identify("plain")
        t = TlsClient(s, pki()).identify("tls")
        # Idle spares of each kind (--min-spare): a plain one has
        # dropped the key before it waits, as a plain worker has.
        plain_spare = tntest.wait_until(
            lambda: s.titled("talknetd: worker (spare)"), tntest.TIMEOUT,
            what="a plain spare")[0]
        tls_spare = tntest.wait_until(
            lambda: s.titled("talknetd: worker (spare, tls)"),
            tntest.TIMEOUT, what="a TLS spare")[0]
        who = {"master": s.pid, "hub": s.hub_pid(),
               "plain worker": s.worker_pid(p),
               "TLS worker": s.worker_pid(t),
               "plain spare": plain_spare, "TLS spare": tls_spare}
        found = {k: holds(v, secret) for k, v in who.items()}
        p.close()
        t.close()
    print("holds the key: %s" % found)
    assert found["master"], "the scan does not find the master's key"
    assert found["TLS worker"], "the scan does not find a TLS worker's key"
    assert not found["hub"], "the hub holds the private key"
    assert not found["plain worker"], "a plain worker holds the private key"
    assert not found["plain spare"], "a plain spare holds the private key"
    assert found["TLS spare"], "the scan does not find a TLS spare's key"


if __name__ == "__main__":
    tntest.main(globals())
