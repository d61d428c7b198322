#!/usr/bin/env python3
"""Attacks on OpenSSL's arenas (issue 18, src/daemon/tls_arena.c): an
impatient admin, a hostile client, another machine.

- Commit charge: with vm.overcommit_memory=2 the kernel charges every
  writable private page a process maps, MAP_NORESERVE or not, and
  charges it again at each fork.  Arenas mapped writable whole (64 MiB
  each) cost the master 128 MiB and each TLS worker 160 MiB of it: on
  such a machine forks fail long before --max-clients.  The arenas are
  reserved PROT_NONE and made writable as they grow: the master and a
  TLS worker map about what a plain daemon's do.
- A reload storm (new pairs, other key types, bad files, a key of
  another certificate, between them): the master neither keeps arenas
  (8 slots) nor grows in memory or mappings per reload, and a hub
  restarted after it, and a plain worker forked after it, hold nothing
  of either key.
- A TLS worker that crashes is reaped, and the next client is served.
- Each TLS worker's random generator is its own: the warm-up seeds
  the master's before any fork, and workers are forked by _Fork, which
  runs no atfork handler; OpenSSL must still reseed in each (it goes by
  the pid).  Two workers with one state would send the same randoms.
- A TLS worker under a flood of long lines and KeyUpdates: its arena
  stops growing (its writable part after the last round as after the
  second)."""

import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True   # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE + "/../lib")
sys.path.insert(0, HERE)
import tntest  # noqa: E402
from tntest import compact, ops, req  # noqa: E402
from tlslib import (OPENSSL, pki, TlsClient, plain_port,  # noqa: E402
                    tls_port, tls_server)
from test_tls_attack import _hello  # noqa: E402
from test_tls_memory import holds, key_scalar  # noqa: E402

T = tntest.TIMEOUT
TALKNETCTL = os.environ.get("TALKNETCTL") or os.path.join(
    HERE, "..", "..", "src", "talknetctl")
SLACK_KB = 16 * 1024     # writable memory a TLS process may add, kB
RELOADS = 60             # the storm (after a first round of 12)
BIG = 16 << 20           # an arena's reservation is at least this


def maps(pid):
    """/proc/PID/maps as [(size in bytes, perms, name)]."""
    out = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            x = line.split()
            lo, hi = (int(v, 16) for v in x[0].split("-"))
            out.append((hi - lo, x[1], x[5] if len(x) > 5 else ""))
    return out


def writable_kb(pid):
    """kB of private writable memory not of a file: what strict
    overcommit charges the process."""
    return sum(n for n, perm, name in maps(pid)
               if perm == "rw-p" and not name.startswith("/")) >> 10


def reserved(pid):
    """Big anonymous reservations not writable: arenas' unused parts."""
    return sum(1 for n, perm, name in maps(pid)
               if perm == "---p" and not name and n >= BIG)


def arena_kb(pid):
    """kB of the arenas made writable (minus a constant): what their
    reservations lost."""
    return -sum(n for n, perm, name in maps(pid)
                if perm == "---p" and not name and n >= BIG) >> 10


def rss_kb(pid):
    return tntest.proc_status(pid)["VmRSS"].split()[0]


def test_commit_charge_of_arenas():
    """The master and a TLS worker map about what a plain daemon's
    master and worker map writable (the arenas reserve, not commit)."""
    with tntest.Server() as s:
        if tntest.sanitized(s.pid):
            raise tntest.Skip("a sanitizer build: its shadow memory")
        c = tntest.Client(s.port).identify("p")
        base_m, base_w = writable_kb(s.pid), writable_kb(s.worker_pid(c))
        c.close()
    with tls_server(pki()) as s:
        p = tntest.Client(plain_port(s)).identify("p")
        t = TlsClient(s, pki()).identify("t")
        m, w = writable_kb(s.pid), writable_kb(s.worker_pid(t))
        pw, hub = writable_kb(s.worker_pid(p)), writable_kb(s.hub_pid())
        p.close()
        t.close()
    print("writable kB: plain daemon master %d worker %d; TLS daemon "
          "master %d, TLS worker %d, plain worker %d, hub %d"
          % (base_m, base_w, m, w, pw, hub))
    assert m <= base_m + SLACK_KB, "the master maps %d kB writable" % m
    assert w <= base_w + SLACK_KB, "a TLS worker maps %d kB writable" % w
    assert pw <= base_w + SLACK_KB, "a plain worker maps %d kB" % pw


def _self_signed(d, name, newkey):
    """A throwaway key and certificate of another type, in d."""
    cert, key = os.path.join(d, name + ".pem"), os.path.join(d, name + ".k")
    r = subprocess.run([OPENSSL, "req", "-x509", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost", "-keyout", key, "-out",
                        cert] + newkey, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr[-300:]
    return cert, key


def _put(d, cert, key):
    """Copies a pair where the daemon reads it (c.pem, k.pem)."""
    for src, dst in ((cert, "c.pem"), (key, "k.pem")):
        with open(src, "rb") as f:
            data = f.read()
        with open(os.path.join(d, dst), "wb") as f:
            f.write(data)


def _reload(s):
    """talknetctl reload: its status (1: the pair did not load)."""
    return subprocess.run([TALKNETCTL, "-s", s.control, "reload"],
                          capture_output=True, timeout=15).returncode


def _storm_pairs(d):
    """The pairs a storm cycles through: (cert, key, loads)."""
    k = pki()
    junk = os.path.join(d, "junk")
    ops.write_file(junk, "not a certificate\n")
    rsa = _self_signed(d, "rsa", ["-newkey", "rsa:2048"])
    ed = _self_signed(d, "ed", ["-newkey", "ed25519"])
    return [(k.rotated_cert, k.rotated_key, True),
            (junk, k.server_key, False),
            rsa + (True,),
            (k.server_cert, k.rotated_key, False),
            ed + (True,),
            (k.server_cert, k.server_key, True)]


def test_reload_storm():
    """Reloads of every kind: the master keeps no arena per reload nor
    grows; a hub restarted and a plain worker forked after hold nothing
    of either key, and TLS still serves the pair loaded last."""
    if OPENSSL is None:
        raise tntest.Skip("no openssl command")
    keys = [key_scalar(pki().server_key), key_scalar(pki().rotated_key)]
    d = ops.tempdir("arena")
    pairs = _storm_pairs(d)
    _put(d, pki().server_cert, pki().server_key)
    with tls_server(pki(), cert=os.path.join(d, "c.pem"),
                    key=os.path.join(d, "k.pem")) as s:
        # A sanitizer build runs the reloads, not the measures.
        measure = not tntest.sanitized(s.pid)
        first = None
        deadline = time.monotonic() + 25
        for i in range(2 * len(pairs) + RELOADS):
            cert, key, loads = pairs[i % len(pairs)]
            _put(d, cert, key)
            assert _reload(s) == (0 if loads else 1), (i, cert, key)
            if i == 2 * len(pairs) - 1:
                first = (reserved(s.pid), len(maps(s.pid)), rss_kb(s.pid))
            assert time.monotonic() < deadline, "reloads take too long"
        if not measure:
            TlsClient(s, pki()).identify("tls")
            return
        last = (reserved(s.pid), len(maps(s.pid)), rss_kb(s.pid))
        print("arenas, mappings, VmRSS kB: after %d reloads %s, after %d %s"
              % (2 * len(pairs), first, i + 1, last))
        assert last[0] <= first[0], "the master keeps arenas per reload"
        assert last[1] <= first[1] + 2, "the master's mappings grow"
        assert int(last[2]) <= int(first[2]) + 1024, "the master grows"
        old_hub = s.hub_pid()
        os.kill(old_hub, signal.SIGKILL)
        hub = tntest.wait_until(
            lambda: [p for p in s.titled("talknetd: hub") if p != old_hub],
            T * 3, what="a new hub")[0]
        p = tntest.Client(plain_port(s)).identify("plain")
        t = TlsClient(s, pki()).identify("tls")
        for who, pid in (("the new hub", hub),
                         ("a plain worker", s.worker_pid(p))):
            for k in keys:
                assert not holds(pid, k), "%s holds a private key" % who
        assert holds(s.pid, keys[0]), "the scan does not find the key"
        p.close()
        t.close()


def test_tls_worker_crash_is_reaped():
    """A TLS worker killed by SIGSEGV: the master reaps it, the others
    are served on, and a new TLS client too."""
    with tls_server(pki()) as s:
        a, b = (TlsClient(s, pki()).identify(n) for n in ("a", "b"))
        a.expect(tntest.new_user("b"))
        victim = s.worker_pid(b)
        # ASan reports a SIGSEGV as an error of its own: SIGKILL there.
        os.kill(victim, signal.SIGKILL if tntest.sanitized(victim) else
                signal.SIGSEGV)
        a.expect(tntest.disconnected("b"))
        tntest.wait_until(lambda: victim not in s.children(), T,
                          what="the crashed worker reaped")
        c = TlsClient(s, pki()).identify("c")
        a.expect(tntest.new_user("c"))
        assert sorted(c.users()) == ["a", "c"]


def _server_random(port):
    """The 32 random bytes of the server's hello to a new connection."""
    hello = _hello(ssl.TLSVersion.TLSv1_3)
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=T) as sock:
        sock.sendall(hello)
        while len(data) < 43:
            d = sock.recv(4096)
            if not d:
                break
            data += d
    # A handshake record (22) whose first message is a ServerHello (2).
    assert len(data) >= 43 and data[0] == 22 and data[5] == 2, data[:16]
    return data[11:43]


def test_each_tls_worker_has_its_own_randoms():
    """Server hellos from four TLS workers: four different randoms."""
    with tls_server(pki()) as s:
        got = {_server_random(tls_port(s)) for _ in range(4)}
    assert len(got) == 4, "TLS workers share a random generator"


def _flood(sender, peers, lines):
    """lines long TEXTs from sender to peers in turn, each read by its
    peer before it returns."""
    big = "x" * 60000
    got = [0] * len(peers)
    deadline = time.monotonic() + 10 * T

    def drain(j, c):
        while got[j] < lines // len(peers) and \
                time.monotonic() < deadline:
            try:
                c.recv_raw(timeout=0.2)
                got[j] += 1
                c.received.clear()
            except AssertionError:
                pass
    ts = [threading.Thread(target=drain, args=(j, c), daemon=True)
          for j, c in enumerate(peers)]
    for t in ts:
        t.start()
    for i in range(lines):
        sender.send(req("TEXT", username=peers[i % len(peers)].name,
                        text=big))
    for t in ts:
        t.join(10 * T)
    assert got == [lines // len(peers)] * len(peers), got


def test_tls_worker_arena_stops_growing():
    """A flood of 60 kB lines, then of KeyUpdates: the writable part of
    the workers' arenas after the last round is what it was after the
    second."""
    with tls_server(pki(), "--max-queue", "4194304") as s:
        measure = not tntest.sanitized(s.pid)
        a = TlsClient(s, pki()).identify("a")
        rs = [TlsClient(s, pki()).identify("r%d" % i) for i in range(2)]
        pids = [s.worker_pid(c) for c in [a] + rs]
        seen = []
        for r in range(3):
            _flood(a, rs, 150)
            seen.append([arena_kb(p) for p in pids])
        print("arena kB of the sender's and receivers' workers by "
              "round: %s" % seen)
        assert not measure or seen[2] <= [x + 64 for x in seen[1]], seen
        _key_updates(s, 300, measure)


def _key_updates(s, n, measure):
    """openssl s_client sends n KeyUpdates (each asking for one back):
    its worker's arena after the last is what it was after the first
    n / 3."""
    before = set(s.descendants())
    p = subprocess.Popen(
        [OPENSSL, "s_client", "-tls1_3", "-CAfile", pki().ca_cert,
         "-servername", "localhost", "-connect", "127.0.0.1:%d"
         % tls_port(s)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        p.stdin.write(compact(req("IDENTIFY", username="ku")))
        p.stdin.flush()
        pid = tntest.wait_until(
            lambda: [x for x in s.descendants() if x not in before] or
            None, T, what="the s_client's worker")
        seen = []
        for r in range(3):
            for i in range(n // 3):
                p.stdin.write(b"K\n")
                p.stdin.flush()
                time.sleep(0.002)
            time.sleep(0.2)
            seen.append(arena_kb(pid[0]))
        print("arena kB of a worker by 100 KeyUpdates: %s" % seen)
        assert not measure or seen[2] <= seen[0] + 64, seen
        assert p.poll() is None, "s_client's connection ended"
    finally:
        p.stdin.close()
        p.wait(T)


if __name__ == "__main__":
    tntest.main(globals())
