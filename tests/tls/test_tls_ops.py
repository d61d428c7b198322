#!/usr/bin/env python3
"""talknetd's tls:// listeners (issue 18): openssl s_client as a client,
client certificates, plain text to the TLS port and a ClientHello to the
plain one, a stalled handshake, certificate rotation by SIGHUP under
traffic, a bad file on reload, -u nobody with a root-only key, socket
activation with both ports, start-up errors, and one TLS record per
queue flush."""

import os
import shutil
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
from tntest import ops  # noqa: E402
from tntest import req, resp, text_from, public_from  # noqa: E402
import tlslib  # noqa: E402
from tlslib import pki, TlsClient, tls_port, plain_port, tls_server  # noqa: E402

T = tntest.TIMEOUT
TALKNETCTL = os.environ.get("TALKNETCTL") or os.path.join(
    HERE, "..", "..", "src", "talknetctl")


def der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def served_cert(port):
    """The certificate the TLS port serves now (DER)."""
    s = tlslib.connect_tls(port, tlslib.client_context(pki()))
    try:
        return s.getpeercert(binary_form=True)
    finally:
        s.close()


def eof_within(sock, timeout):
    """(bytes read, how it ended: "eof", "reset" or "open")."""
    sock.settimeout(0.2)
    got = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            d = sock.recv(4096)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return got, "reset"
        if not d:
            return got, "eof"
        got += d
    return got, "open"


def test_protocol_mixed_plain_and_tls():
    """TLS and plain clients of one daemon talk to each other."""
    with tls_server(pki()) as s:
        a = TlsClient(s, pki()).identify("Ana")
        b = tntest.Client(plain_port(s)).identify("Bob")
        a.expect(tntest.new_user("Bob"))
        a.send(req("TEXT", username="Bob", text="over TLS"))
        b.expect(text_from("Ana", "over TLS"))
        b.send(req("PUBLIC_TEXT", text="in clear"))
        a.expect(public_from("Bob", "in clear"))
        assert sorted(a.users()) == ["Ana", "Bob"]
        s.wait_log(r"Ana identified from 127\.0\.0\.1:%d" % a.local_port)


def test_openssl_s_client():
    """openssl s_client -quiet is a TLS nc: lines in, lines out."""
    with tls_server(pki()) as s:
        watcher = TlsClient(s, pki()).identify("watcher")
        p = subprocess.Popen(
            ["openssl", "s_client", "-quiet", "-verify_return_error",
             "-CAfile", pki().ca_cert, "-servername", "localhost",
             "-connect", "127.0.0.1:%d" % tls_port(s)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        try:
            p.stdin.write(tntest.compact(req("IDENTIFY", username="sc")))
            p.stdin.flush()
            watcher.expect(tntest.new_user("sc"))
            # Bounded by the runner's alarm, as every test.
            line = p.stdout.readline()
            assert line == tntest.compact(resp("IDENTIFY", "SUCCESS",
                                               "sc")), line
            watcher.send(req("TEXT", username="sc", text="hi s_client"))
            line = p.stdout.readline()
            assert line == tntest.compact(text_from("watcher",
                                                    "hi s_client")), line
            p.stdin.write(b'{"type":"DISCONNECT"}\n')
            p.stdin.flush()
            watcher.expect(tntest.disconnected("sc"))
            p.stdin.close()
            assert p.wait(T * 3) == 0, p.stderr.read()
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(5)


def test_client_certificate_required():
    """--tls-ca: a client with a certificate the CA signed gets in; one
    without is refused, and never reaches the protocol."""
    with tls_server(pki(), "--tls-ca", pki().ca_cert) as s:
        a = TlsClient(s, pki(), cert=True).identify("withcert")
        refused = False
        try:
            c = tlslib.connect_tls(tls_port(s), tlslib.client_context(pki()))
            c.sendall(tntest.compact(req("IDENTIFY", username="nocert")))
            got = c.recv(4096)
            refused = got == b""
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            refused = True
        assert refused, "a client without a certificate got %r" % got
        s.wait_log(r"TLS handshake: .*certificate")
        s.wait_log(r"session \(unidentified\) .* ended: .*\(TLS: ")
        assert list(a.users()) == ["withcert"]


def test_plain_text_to_tls_port():
    """Plain text (here HTTP) to the TLS port: a clean close (FIN, not
    a reset), one escaped log line, and the reason in the end line."""
    with tls_server(pki()) as s:
        c = socket.create_connection(("127.0.0.1", tls_port(s)), timeout=T)
        c.sendall(b'{"type":"IDENTIFY","username":"x"}\n' +
                  b"GET / HTTP/1.0\r\n\x01\xff\r\n" * 20)
        got, how = eof_within(c, T)
        assert how == "eof" and got == b"", (how, got)
        port = c.getsockname()[1]
        c.close()
        m = s.wait_log(r"session \(unidentified\) from 127\.0\.0\.1:%d "
                       r"ended: invalid message \(TLS: ([^)]*)\)" % port)
        assert m.group(1), m.group(0)
        fails = [l for l in s.log if "127.0.0.1:%d: TLS handshake" % port in l]
        assert len(fails) == 1, fails
        assert all(32 <= ord(ch) < 127 for ch in fails[0]), fails[0]
        # The daemon serves the next client as ever.
        TlsClient(s, pki()).identify("after")


def test_client_hello_to_plain_port_is_invalid():
    """A TLS ClientHello to the plain port is non-JSON: INVALID, then
    the close, as any garbage."""
    with tls_server(pki()) as s:
        c = socket.create_connection(("127.0.0.1", plain_port(s)), timeout=T)
        c.sendall(tlslib.client_hello())
        got, how = eof_within(c, T)
        assert how == "eof", how
        assert got == tntest.compact(resp("INVALID", "INVALID")), got


def test_stalled_handshake_cut_at_login_timeout():
    """A client that stops halfway through its ClientHello is cut at the
    login timeout, as a plain client that never identifies: both close
    in the same run within the same bounds."""
    with tls_server(pki(), "--login-timeout", "1") as s:
        hello = tlslib.client_hello()
        t0 = time.monotonic()
        stalled = socket.create_connection(("127.0.0.1", tls_port(s)),
                                           timeout=T)
        stalled.sendall(hello[:len(hello) // 2])
        plain = socket.create_connection(("127.0.0.1", plain_port(s)),
                                         timeout=T)
        plain.sendall(b'{"type":"USE')
        got, how = eof_within(stalled, 1 + T)
        dt_tls = time.monotonic() - t0
        got2, how2 = eof_within(plain, 1 + T)
        dt_plain = time.monotonic() - t0
        assert how == "eof" and got == b"", (how, got)
        assert how2 == "eof", how2
        assert 0.8 <= dt_tls <= 1 + T, dt_tls
        assert abs(dt_tls - dt_plain) < 1.0, (dt_tls, dt_plain)
        s.wait_log(r"from 127\.0\.0\.1:%d ended: login timeout"
                   % stalled.getsockname()[1])


def _copy_pair(d, which):
    shutil.copy(getattr(pki(), which + "_cert"), os.path.join(d, "c.pem"))
    shutil.copy(getattr(pki(), which + "_key"), os.path.join(d, "k.pem"))


def test_rotation_by_sighup_under_traffic():
    """certbot renews the pair, SIGHUP: new connections get the new
    certificate, the ones open keep theirs, and traffic across the
    reload loses no line and drops no connection."""
    d = ops.tempdir("tlsrot")
    _copy_pair(d, "server")
    with tls_server(pki(), cert=os.path.join(d, "c.pem"),
                    key=os.path.join(d, "k.pem")) as s:
        a, b = tlslib.tls_users(s, pki(), "a", "b")
        old = a.sock.getpeercert(binary_form=True)
        assert old == der(pki().server_cert)
        stop = threading.Event()
        sent = []

        def talk():
            i = 0
            while not stop.is_set() and i < 5000:
                a.send(req("TEXT", username="b", text="n%d" % i))
                sent.append(i)
                i += 1
                time.sleep(0.002)
        t = threading.Thread(target=talk, daemon=True)
        t.start()
        try:
            for i in range(20):
                b.expect(text_from("a", "n%d" % i))
            _copy_pair(d, "rotated")
            os.kill(s.pid, signal.SIGHUP)
            s.wait_log(r"reload: TLS certificate .* loaded")
            new = tntest.wait_until(
                lambda: (lambda c: c if c != old else None)(
                    served_cert(tls_port(s))), T, what="the new certificate")
            assert new == der(pki().rotated_cert)
            time.sleep(0.2)
        finally:
            stop.set()
            t.join(T * 3)
        for i in range(20, len(sent)):
            b.expect(text_from("a", "n%d" % i))
        assert a.sock.getpeercert(binary_form=True) == old
        c = TlsClient(s, pki()).identify("c")
        assert c.sock.getpeercert(binary_form=True) == new
        a.expect(tntest.new_user("c"))
        b.expect(tntest.new_user("c"))
        assert sorted(a.users()) == ["a", "b", "c"]


def test_bad_file_on_reload_keeps_the_old_pair():
    """A certificate file that does not load: talknetctl reload says why
    (and fails), the log too, and the old pair is served on."""
    d = ops.tempdir("tlsbad")
    _copy_pair(d, "server")
    with tls_server(pki(), cert=os.path.join(d, "c.pem"),
                    key=os.path.join(d, "k.pem")) as s:
        a = TlsClient(s, pki()).identify("a")
        ops.write_file(os.path.join(d, "c.pem"), "not a certificate\n")
        r = subprocess.run([TALKNETCTL, "-s", s.control, "reload"],
                           capture_output=True, timeout=15)
        out = (r.stdout + r.stderr).decode()
        assert r.returncode != 0, out
        assert "keeping the certificate and key loaded before" in out, out
        s.wait_log(r"warning: reload: TLS: .*c\.pem")
        assert served_cert(tls_port(s)) == der(pki().server_cert)
        # Fixed: the next reload takes it.
        _copy_pair(d, "rotated")
        r = subprocess.run([TALKNETCTL, "-s", s.control, "reload"],
                           capture_output=True, timeout=15)
        assert r.returncode == 0, r.stdout + r.stderr
        assert served_cert(tls_port(s)) == der(pki().rotated_cert)
        assert list(a.users()) == ["a"]


def test_user_nobody_with_root_only_key():
    """-u nobody: the master reads the 0600 root key before any child
    drops privileges; TLS workers run as nobody and serve."""
    uid, gid = ops.nobody_ids()
    d = ops.tempdir("tlsroot")
    os.chmod(d, 0o700)
    _copy_pair(d, "server")
    key = os.path.join(d, "k.pem")
    os.chmod(key, 0o600)
    cert = os.path.join(d, "c.pem")
    with tls_server(pki(), "-u", "nobody", cert=cert, key=key) as s:
        a = TlsClient(s, pki()).identify("a")
        # The hub and the workers (the TLS one among them) run as nobody.
        kids = s.descendants()
        assert len(kids) >= 2, kids
        for pid in kids:
            st = tntest.proc_status(pid) or {"Uid": str(uid)}
            assert st["Uid"].split()[0] == str(uid), (pid, st["Uid"])
        # nobody could not have read the key itself.
        r = subprocess.run(["setpriv", "--reuid", str(uid), "--regid",
                            str(gid), "--clear-groups", "cat", key],
                           capture_output=True, timeout=10)
        assert r.returncode != 0
        # And a reload, by the root master, reads it again.
        os.kill(s.pid, signal.SIGHUP)
        s.wait_log(r"reload: TLS certificate .* loaded")
        TlsClient(s, pki()).identify("b")
        a.expect(tntest.new_user("b"))


class TwoPortServer(tntest.ActivatedServer):
    """systemd-socket-activate with a plain and a TLS socket, named as a
    unit's FileDescriptorName= names them."""

    def __init__(self, *opts):
        self.tls_sport = tntest.free_port()
        super().__init__(*opts)

    def argv(self):
        a = super().argv()
        i = a.index(tntest.TALKNETD)
        return a[:i] + ["-l", "127.0.0.1:%d" % self.tls_sport,
                        "--fdname=plain:tls"] + a[i:]


def test_socket_activation_with_both_ports():
    """The socket unit passes both ports; the one named "tls" speaks
    TLS, the other plain."""
    s = TwoPortServer(*tlslib.tls_opts(pki()))
    s.wait_log(r"listening on 127\.0\.0\.1:%d \(socket from systemd\)"
               % s.ssa_port)
    s.wait_log(r"listening on tls://127\.0\.0\.1:%d \(socket from systemd\)"
               % s.tls_sport)
    a = TlsClient(s, pki(), port=s.tls_sport).identify("tls")
    p = tntest.Client(s.ssa_port).identify("plain")
    a.expect(tntest.new_user("plain"))
    s.trigger.close()


def test_startup_errors():
    """A tls:// listener without a pair, a key that does not load, bad
    protocols: each a clear error, before anything listens."""
    rc, out, err = ops.run([tntest.TALKNETD, "-f", "-l",
                            "tls://127.0.0.1:0"])
    assert rc == 1 and "needs --tls-cert and --tls-key" in err, (rc, err)
    rc, out, err = ops.run([tntest.TALKNETD, "-n", "-l", "tls://127.0.0.1:0",
                            "--tls-cert", pki().server_cert, "--tls-key",
                            pki().rotated_key])
    assert rc == 1 and "TLS:" in err, (rc, err)
    rc, out, err = ops.run([tntest.TALKNETD, "-n", "-l", "tls://127.0.0.1:0",
                            "--tls-cert", pki().server_cert, "--tls-key",
                            pki().server_key])
    assert rc == 0, (rc, err)
    rc, out, err = ops.run([tntest.TALKNETD, "-n", "--tls-protocols",
                            "tlsv9"])
    assert rc == 64 and "tls-protocols" in err, (rc, err)
    conf = ops.conf_file("tlsconf", "tls-listen = 127.0.0.1:0\n"
                         "tls-cert = %s\ntls-key = /nonexistent/key.pem\n"
                         % pki().server_cert)
    rc, out, err = ops.run([tntest.TALKNETD, "-f", "-c", conf])
    assert rc == 1 and "/nonexistent/key.pem" in err, (rc, err)


def _records(data):
    """(application data records, rest) of raw TLS bytes."""
    n = 0
    while len(data) >= 5:
        size = int.from_bytes(data[3:5], "big")
        if len(data) < 5 + size:
            break
        if data[0] == 23:
            n += 1
        data = data[5 + size:]
    return n, data


def test_one_record_per_flush():
    """Lines queued together leave in one TLS record, not one each: 300
    lines that arrive while the client does not read come in a handful
    of records (counted on the wire, under the client's TLS)."""
    with tls_server(pki()) as s:
        a = tntest.Client(plain_port(s)).identify("a")
        raw = socket.create_connection(("127.0.0.1", tls_port(s)), timeout=T)
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = tlslib.client_context(pki()).wrap_bio(
            inc, out, server_hostname="localhost")
        wire = b""
        deadline = time.monotonic() + T
        while time.monotonic() < deadline:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                raw.sendall(out.read())
                d = raw.recv(65536)
                assert d, "closed in the handshake"
                inc.write(d)
        raw.sendall(out.read())
        obj.write(tntest.compact(req("IDENTIFY", username="b")))
        raw.sendall(out.read())
        a.expect(tntest.new_user("b"))
        # Nothing read while they come; then all of it.
        lines = 300
        a.send(b"".join(tntest.compact(req("PUBLIC_TEXT", text="l%d" % i))
                        for i in range(lines)))
        time.sleep(0.5)
        text = b""
        records = 0
        deadline = time.monotonic() + T * 2
        while text.count(b"\n") < lines + 1 and time.monotonic() < deadline:
            d = raw.recv(65536)
            assert d, "closed"
            wire += d
            n, wire_rest = _records(wire)
            records += n
            inc.write(wire[:len(wire) - len(wire_rest)])
            wire = wire_rest
            while True:
                try:
                    text += obj.read(65536)
                except ssl.SSLWantReadError:
                    break
        assert text.count(b"\n") == lines + 1, text.count(b"\n")
        # TLS 1.3 sends session tickets as records of their own.
        assert records <= lines // 10, "%d records for %d lines" % (
            records, lines)
        raw.close()


if __name__ == "__main__":
    tntest.main(globals())
