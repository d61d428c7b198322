#!/usr/bin/env python3
"""talknetd's tls:// port against a hostile client (issue 18): a FIN
without close_notify, old and broken hellos, garbage after the handshake,
renegotiation and KeyUpdate floods, records cut every way a client may
cut them, zero-length records, many stalled handshakes at once, and
handshake floods while a chat runs.  Every assertion compares with a
baseline taken in the same run."""

import os
import select
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
import warnings

sys.dont_write_bytecode = True   # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE + "/../lib")
sys.path.insert(0, HERE)
import tntest  # noqa: E402
from tntest import ops, req, resp, compact  # noqa: E402
import tlslib  # noqa: E402
from tlslib import (pki, BioClient, tls_port, plain_port,  # noqa: E402
                    tls_server)

T = tntest.TIMEOUT


def bio(s, name=None, **kw):
    """A BioClient on s's TLS port, its handshake done (identified as
    name if given)."""
    c = BioClient(tls_port(s), tlslib.client_context(pki()), **kw)
    c.handshake()
    if name is not None:
        c.send(compact(req("IDENTIFY", username=name)))
        got = c.read()
        assert got == compact(resp("IDENTIFY", "SUCCESS", name)), got
    return c


def read_to_end(sock, timeout=T):
    """Everything a plain socket gets until EOF (or timeout)."""
    got = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            d = sock.recv(262144)
        except (socket.timeout, ConnectionResetError):
            break
        if not d:
            break
        got += d
    return got


def closed_within(sock, timeout):
    """Whether the server closed sock (EOF or reset) within timeout;
    what it sent before (alerts) is skipped."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
    return False


def test_fin_without_close_notify_keeps_the_queue():
    """A client that half-closes with a bare FIN (no close_notify, as
    many tools do when their input ends) still gets what was queued for
    it, over TLS as in clear.  It was cut: libtls read the FIN, failed
    the session with an alert, and the queue was dropped."""
    lines = 100
    text = "y" * 1000
    with tls_server(pki(), "--rate-limit", "0", "--send-buffer",
                    "4096") as s:
        tx = tntest.Client(plain_port(s)).identify("tx")
        got = {}
        for tls in (False, True):
            name = "rx%d" % tls
            if tls:
                rx = bio(s, name, rcvbuf=4096)
            else:
                rx = tntest.Client(plain_port(s), rcvbuf=4096).identify(name)
            tx.expect(tntest.new_user(name))
            tx.send(b"".join(compact(req("TEXT", username=name, text=text))
                             for i in range(lines)))
            # Queued in the worker while the client reads nothing.
            time.sleep(0.5)
            rx.sock.shutdown(socket.SHUT_WR)
            if tls:
                out = rx.read(lines, T * 2)
                out += rx.read(lines, 1)
                assert rx.end in ("close_notify", "eof"), rx.end
            else:
                out = read_to_end(rx.sock, T * 2)
            got[tls] = out.count(b'"TEXT_FROM"')
            rx.close()
            tx.expect(tntest.disconnected(name))
        assert got[True] == got[False] == lines, got


def _hello(version):
    """A ClientHello offering only version (TLSv1, TLSv1_1)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        c.check_hostname = False
        c.verify_mode = ssl.CERT_NONE
        c.set_ciphers("DEFAULT:@SECLEVEL=0")
        c.minimum_version = c.maximum_version = version
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = c.wrap_bio(inc, out)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


# An SSLv2-format ClientHello (version 3.1 inside), as very old clients
# and some scanners send.
SSL2_HELLO = bytes([0x80, 0x2e, 1, 3, 1, 0, 21, 0, 0, 0, 16]) + bytes(
    [0x03, 0x00, 0x80, 0x01, 0x00, 0x80, 0x07, 0x00, 0xc0, 0x00, 0x00,
     0x2f, 0x00, 0x00, 0x35, 0x00, 0x00, 0x0a, 0x00, 0x00, 0xff]) + b"C" * 16


def test_old_and_broken_hellos_refused_and_logged():
    """TLS 1.0 and 1.1 hellos, an SSLv2-format one, and a bad record
    (MAC) after a good handshake: each is closed at once, its end line
    names why, and the clients already in are untouched."""
    with tls_server(pki()) as s:
        watcher = bio(s, "watcher")
        for hello in (_hello(ssl.TLSVersion.TLSv1),
                      _hello(ssl.TLSVersion.TLSv1_1), SSL2_HELLO):
            c = socket.create_connection(("127.0.0.1", tls_port(s)),
                                         timeout=T)
            c.sendall(hello)
            assert closed_within(c, T), hello[:8]
            s.wait_log(r"from 127\.0\.0\.1:%d ended: invalid message "
                       r"\(TLS: handshake failed: .*(unsupported protocol|"
                       r"wrong version number)" % c.getsockname()[1])
            c.close()
        g = bio(s, "garbage")
        watcher.read(1)
        g.sock.sendall(b"\x17\x03\x03\x00\x20" + b"\x00" * 32)
        g.read(1)
        assert g.end is not None and "bad record mac" in g.end.lower() \
            or g.end in ("eof", "reset"), g.end
        s.wait_log(r"session garbage from 127\.0\.0\.1:%d ended: client "
                   r"closed \(TLS: read failed: .*bad record mac\)"
                   % g.sock.getsockname()[1])
        got = watcher.read(1)
        assert got == compact(tntest.disconnected("garbage")), got
        watcher.send(compact(req("USERS")))
        got = watcher.read(1)
        assert got == compact(tntest.user_list({"watcher": "ACTIVE"})), got


def _s_client(port, *args):
    return subprocess.Popen(
        ["openssl", "s_client", "-CAfile", pki().ca_cert, "-servername",
         "localhost", "-connect", "127.0.0.1:%d" % port] + list(args),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)


def _wait_output(p, marker, timeout):
    """p's output until marker (bytes) shows, p ends, or timeout."""
    out = b""
    deadline = time.monotonic() + timeout
    while marker not in out and time.monotonic() < deadline:
        r, _, _ = select.select([p.stdout], [], [],
                                max(0.01, deadline - time.monotonic()))
        if not r:
            continue
        d = os.read(p.stdout.fileno(), 65536)
        if not d:
            break
        out += d
    return out


def _s_client_steps(port, version, steps):
    """openssl s_client (version) identified as "sc", then each step:
    (what to type, line by line, and what its output must then show).
    s_client takes a command only at the start of what one read got."""
    p = _s_client(port, version)
    try:
        for typed, want in [([compact(req("IDENTIFY", username="sc"))],
                             b'"extra":"sc"')] + steps:
            for line in typed:
                p.stdin.write(line)
                p.stdin.flush()
                time.sleep(0.002)
            out = _wait_output(p, want, T)
            assert want in out, out[-500:]
    finally:
        p.stdin.close()
        p.wait(T)


def test_renegotiation_refused_and_key_updates_served():
    """A TLS 1.2 client asking to renegotiate is refused (no new
    handshake in the worker); a TLS 1.3 client sending 50 KeyUpdates
    that each ask for one back stays served."""
    with tls_server(pki()) as s:
        watcher = bio(s, "watcher")
        _s_client_steps(tls_port(s), "-tls1_2",
                        [([b"R\n"], b"no renegotiation")])
        assert watcher.read(2).count(b"\n") == 2
        _s_client_steps(tls_port(s), "-tls1_3",
                        [([b"K\n"] * 50 + [compact(req("USERS"))],
                          b'"sc":"ACTIVE"')])


def test_records_cut_every_way():
    """IDENTIFY in the same flight as the handshake's Finished; one
    record of many lines; a record sent a byte a segment; a line over
    --max-line split over records (INVALID, as in clear); lines sent and
    the socket closed at once (still delivered to the others)."""
    with tls_server(pki(), "--rate-limit", "0", "--max-line",
                    "20000") as s:
        watcher = tntest.Client(plain_port(s)).identify("watcher")
        c = bio(s)
        p = BioClient(tls_port(s), tlslib.client_context(pki()))
        last = p.handshake(send_last=False)
        p.sock.sendall(last + p.record(compact(req("IDENTIFY",
                                                   username="pipe"))))
        assert p.read() == compact(resp("IDENTIFY", "SUCCESS", "pipe"))
        watcher.expect(tntest.new_user("pipe"))
        p.send(compact(req("USERS")) * 300)
        assert p.read(300).count(b'"USER_LIST"') == 300
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for b in c.record(compact(req("IDENTIFY", username="bytes"))):
            c.sock.sendall(bytes([b]))
        assert c.read() == compact(resp("IDENTIFY", "SUCCESS", "bytes"))
        watcher.expect(tntest.new_user("bytes"))
        for i in range(3):
            c.send(b"x" * 9000)
        assert c.read() == compact(resp("INVALID", "INVALID"))
        watcher.expect(tntest.disconnected("bytes"))
        q = bio(s)
        q.send(compact(req("IDENTIFY", username="quick")) +
               compact(req("PUBLIC_TEXT", text="bye now")))
        q.close()
        watcher.expect(tntest.new_user("quick"))
        watcher.expect(tntest.public_from("quick", "bye now"))
        watcher.expect(tntest.disconnected("quick"))


def test_zero_length_records():
    """Zero-length records between the parts of a line are nothing; a
    run of them (OpenSSL allows 32) is a clean close, named.  Records are
    built by hand with the session's TLS 1.3 keys."""
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
        from cryptography.hazmat.primitives import hashes
    except ImportError:
        raise tntest.Skip("no python3-cryptography")

    def label(secret, name, length, h):
        full = b"tls13 " + name
        info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\0"
        return HKDFExpand(h, length, info).derive(secret)

    keylog = os.path.join(ops.tempdir("tlskeys"), "keys")
    ctx = tlslib.client_context(pki())
    ctx.keylog_filename = keylog
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    with tls_server(pki()) as s:
        c = BioClient(tls_port(s), ctx)
        c.handshake()
        with open(keylog) as f:
            secret = [bytes.fromhex(ln.split()[2]) for ln in f
                      if ln.startswith("CLIENT_TRAFFIC_SECRET_0")][-1]
        suite = c.obj.cipher()[0]
        h = hashes.SHA384() if suite.endswith("SHA384") else hashes.SHA256()
        assert "AES" in suite and "GCM" in suite, suite
        aead = AESGCM(label(secret, b"key", 32 if "256" in suite else 16, h))
        iv = label(secret, b"iv", 12, h)
        seq = [0]

        def rec(data):
            inner = data + b"\x17"
            hdr = b"\x17\x03\x03" + (len(inner) + 16).to_bytes(2, "big")
            nonce = bytes(a ^ b for a, b in
                          zip(iv, seq[0].to_bytes(12, "big")))
            seq[0] += 1
            return hdr + aead.encrypt(nonce, inner, hdr)

        line = compact(req("IDENTIFY", username="zero"))
        c.sock.sendall(rec(b"") + rec(line[:10]) + rec(b"") + rec(b"") +
                       rec(line[10:]))
        assert c.read() == compact(resp("IDENTIFY", "SUCCESS", "zero"))
        c.sock.sendall(b"".join(rec(b"") for i in range(40)))
        c.read(1)
        assert c.end is not None, "still open"
        s.wait_log(r"session zero from .* ended: client closed \(TLS: "
                   r"read failed: .*record too small\)")


def _rtts(a, b, n):
    """n private round trips a -> b over TLS: their times (s)."""
    out = []
    for i in range(n):
        t = time.monotonic()
        a.send(compact(req("TEXT", username="B", text="p%d" % i)))
        got = b.read(1)
        assert got == compact(tntest.text_from("A", "p%d" % i)), got
        out.append(time.monotonic() - t)
    return out


def test_many_stalled_handshakes():
    """40 handshakes stalled at once (half a ClientHello, or a whole one
    then silence) from 20 addresses: each is cut at the login timeout,
    the per-address limit still holds, and a pair already identified
    is not slowed (round trips against its own before)."""
    login = 2
    hello = tlslib.client_hello()
    with tls_server(pki(), "--login-timeout", str(login),
                    "--max-clients-per-ip", "4") as s:
        a, b = bio(s, "A"), bio(s, "B")
        a.read(1)
        base = statistics.median(_rtts(a, b, 30))
        t0 = time.monotonic()
        stalled = []
        for i in range(40):
            c = socket.socket()
            c.bind(("127.0.0.%d" % (2 + i // 2), 0))
            c.connect(("127.0.0.1", tls_port(s)))
            c.sendall(hello[:len(hello) // 2] if i % 2 else hello)
            stalled.append(c)
        over = []
        for i in range(6):
            c = socket.socket()
            c.bind(("127.0.0.100", 0))
            c.connect(("127.0.0.1", tls_port(s)))
            c.sendall(hello)
            over.append(c)
        # 4 of the 6 from one address are served, 2 closed at once: well
        # before the login timeout closes any.  Waited for, not slept
        # on: under ASan on a loaded machine the master took over 0.3 s
        # to reach the last of the 46 (CI: 1 of 2 closed by then).
        cut = set()

        def refused():
            cut.update(k for k, c in enumerate(over)
                       if k not in cut and closed_within(c, 0.01))
            return len(cut) >= 2
        tntest.wait_until(refused, max(0.1, t0 + login * 0.75 -
                                       time.monotonic()),
                          what=lambda: "2 of 6 refused (%d)" % len(cut))
        refused()
        assert time.monotonic() - t0 < login * 0.8
        assert len(cut) == 2, sorted(cut)
        under = statistics.median(_rtts(a, b, 30))
        assert under < base * 5 + 0.005, (base, under)
        ends = []
        for c in stalled + over:
            assert closed_within(c, t0 + login + T - time.monotonic())
            ends.append(time.monotonic() - t0)
            c.close()
        assert min(ends) >= login * 0.8, min(ends)
        # Still in, and as quick.
        after = statistics.median(_rtts(a, b, 30))
        assert after < base * 5 + 0.005, (base, after)


def test_handshake_flood_during_chat():
    """300 connections that send a ClientHello and close (half with a
    reset) while two TLS clients exchange 300 private lines: none is
    lost or reordered."""
    hello = tlslib.client_hello()
    with tls_server(pki(), "--rate-limit", "0") as s:
        a, b = bio(s, "A"), bio(s, "B")
        a.read(1)
        done = threading.Event()
        flooded = [0]

        def flood():
            for i in range(300):
                if done.is_set():
                    break
                c = socket.socket()
                c.bind(("127.0.0.%d" % (2 + i % 100), 0))
                try:
                    c.connect(("127.0.0.1", tls_port(s)))
                    c.sendall(hello)
                    if i % 2:
                        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     b"\x01\0\0\0\0\0\0\0")
                except OSError:
                    pass
                c.close()
                flooded[0] += 1

        th = threading.Thread(target=flood)
        th.start()
        try:
            got = b""
            for i in range(300):
                a.send(compact(req("TEXT", username="B", text="m%d" % i)))
                if i % 20 == 19:
                    got += b.read(i + 1 - got.count(b"\n"))
        finally:
            done.set()
            th.join(T)
        assert flooded[0] > 50, flooded[0]
        want = b"".join(compact(tntest.text_from("A", "m%d" % i))
                        for i in range(300))
        got += b.read(300 - got.count(b"\n"))
        assert got == want, (len(got), len(want))


if __name__ == "__main__":
    tntest.main(globals())
