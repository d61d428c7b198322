#!/usr/bin/env python3
"""talknet --tls: the session over TLS and every refusal before it.

The certificates are made here, at test time, with the openssl CLI: a
throwaway CA, a server certificate for localhost and 127.0.0.1 signed
by it, an expired one, one for another host, and a self-signed one.
No key is committed.  Each test runs against every TLS server there is
here: stunnel4 in the foreground in front of the shared plain talknetd,
and talknetd's own tls:// listener when it has one; a Peer on the plain
port sees what the server saw.  Skipped when talknet was built without
TLS (one test checks that --tls is then a clear error), or when openssl
is missing, or both kinds of server.
"""

import atexit
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest.talknet import (TALKNET, TALKNETD, Peer,  # noqa: E402
                            PipeClient, PtyClient, Server, identified,
                            run)
from tntest import LIFT_LIMITS, Skip, free_port, runner  # noqa: E402
from tntest.runner import Scoped  # noqa: E402

OPENSSL = shutil.which("openssl")
STUNNEL = shutil.which("stunnel4") or shutil.which("stunnel")
REFUSED = re.compile(r"^talknet: TLS handshake with \S+ port \d+ failed: ")


def tls_built():
    """True unless this talknet says it was built without TLS."""
    r = subprocess.run([TALKNET, "--tls", "--raw", "127.0.0.1", "1"],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=10)
    return b"built without TLS" not in r.stderr


class Certs:
    """The test's PKI in a private directory, made with openssl."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tn-tls-")
        atexit.register(shutil.rmtree, self.dir, True)
        self.ca = self.path("ca.crt")
        self._ca()
        self.good = self._signed("good", "localhost",
                                 "DNS:localhost,IP:127.0.0.1")
        self.wrong = self._signed("wrong", "wrong.example",
                                  "DNS:wrong.example")
        self.expired = self._signed("expired", "localhost",
                                    "DNS:localhost,IP:127.0.0.1",
                                    dates=("20200101000000Z",
                                           "20200102000000Z"))
        self.selfsigned = self._selfsigned()

    def path(self, name):
        return os.path.join(self.dir, name)

    def ssl(self, *args):
        r = subprocess.run([OPENSSL] + list(args), capture_output=True,
                           timeout=30, cwd=self.dir)
        assert r.returncode == 0, (args, r.stderr)

    def _ca(self):
        """The throwaway CA: one EC key, self-signed for a day."""
        self.ssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                 "-subj", "/CN=talknet test CA", "-keyout", "ca.key",
                 "-out", "ca.crt", "-addext",
                 "basicConstraints=critical,CA:TRUE", "-addext",
                 "keyUsage=critical,keyCertSign,cRLSign")
        with open(self.path("index.txt"), "w"):
            pass
        with open(self.path("ca.cnf"), "w") as f:
            f.write("[ca]\ndefault_ca = tn\n[tn]\n"
                    "database = index.txt\nnew_certs_dir = .\n"
                    "certificate = ca.crt\nprivate_key = ca.key\n"
                    "serial = serial\ndefault_md = sha256\n"
                    "policy = any\ncopy_extensions = copy\n"
                    "unique_subject = no\n[any]\ncommonName = supplied\n")
        with open(self.path("serial"), "w") as f:
            f.write("1000\n")

    def _signed(self, name, cn, san, dates=None):
        """A server key and a certificate from the CA for cn and san;
        returns (cert, key)."""
        key, csr, crt = name + ".key", name + ".csr", name + ".crt"
        self.ssl("req", "-new", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:prime256v1", "-nodes", "-subj",
                 "/CN=" + cn, "-addext", "subjectAltName=" + san,
                 "-keyout", key, "-out", csr)
        when = (["-startdate", dates[0], "-enddate", dates[1]] if dates
                else ["-days", "1"])
        self.ssl("ca", "-batch", "-config", "ca.cnf", "-notext", "-in",
                 csr, "-out", crt, *when)
        return self.path(crt), self.path(key)

    def _selfsigned(self):
        """A self-signed certificate for localhost and 127.0.0.1."""
        self.ssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                 "-subj", "/CN=localhost", "-addext",
                 "subjectAltName=DNS:localhost,IP:127.0.0.1",
                 "-keyout", "self.key", "-out", "self.crt")
        return self.path("self.crt"), self.path("self.key")


class Stunnel(Scoped):
    """stunnel4 in the foreground on a free loopback port, serving pair
    (cert, key) in front of the shared daemon; stopped by its PID.  Its
    log goes to a file: a pipe nobody reads could fill and stop it."""

    kind = "stunnel4"

    def __init__(self, pair, ctx, tmpdir):
        self.daemon, self.plain = ctx["daemon"], ctx["port"]
        self.conf = os.path.join(tmpdir, "stunnel-%d.conf" % self.plain)
        self.log = open(os.path.join(tmpdir, "stunnel.log"), "ab")
        for _ in range(3):      # the free port may be taken meanwhile
            self.port = free_port()
            with open(self.conf, "w") as f:
                f.write("foreground = yes\npid =\nsyslog = no\n"
                        "debug = 4\n[tn]\naccept = 127.0.0.1:%d\n"
                        "connect = 127.0.0.1:%d\ncert = %s\nkey = %s\n"
                        % (self.port, self.plain, pair[0], pair[1]))
            self.proc = subprocess.Popen([STUNNEL, self.conf],
                                         stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL,
                                         stderr=self.log)
            # Killed by the runner if a failed test leaves it behind.
            runner.ctx().procs.append(self.proc)
            if self._ready():
                return
            self._stop()
        self.log.close()
        raise AssertionError("stunnel4 never listened")

    def _ready(self, timeout=10):
        """Waits until the port takes connections; False if it died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port),
                                         timeout=1).close()
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def _stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def end(self):
        self._stop()
        self.log.close()


class Native(Scoped):
    """A talknetd of its own serving pair on a tls:// listener beside a
    plain one."""

    kind = "talknetd tls://"

    def __init__(self, pair, ctx, tmpdir):
        self.daemon = Server("--tls-cert", pair[0], "--tls-key", pair[1],
                             listen=("127.0.0.1:0", "tls://127.0.0.1:0"))
        ports = dict((h.startswith("tls://"), p)
                     for h, p in self.daemon.addrs)
        self.port, self.plain = ports[True], ports[False]

    def end(self):
        self.daemon.stop()


def native_tls():
    """True if this talknetd serves tls:// listeners."""
    r = subprocess.run([TALKNETD, "--help"], capture_output=True,
                       timeout=10)
    return b"--tls-cert" in r.stdout + r.stderr


def tls_ctx(ctx):
    """The certificates, made once for the file; raises Skip when the
    test cannot run here."""
    if not ctx.setdefault("tls", tls_built()):
        raise Skip("talknet was built without TLS")
    if OPENSSL is None:
        raise Skip("needs openssl")
    if "fronts" not in ctx:
        ctx["fronts"] = ([Stunnel] if STUNNEL else []) + \
            ([Native] if native_tls() else [])
    if not ctx["fronts"]:
        raise Skip("needs stunnel4 or a talknetd with tls://")
    if "certs" not in ctx:
        ctx["certs"] = Certs()
    return ctx["certs"]


def fronts(ctx, pair):
    """The TLS servers to run a test against, one after the other, each
    serving pair: stunnel4 and talknetd itself, where they are."""
    certs = tls_ctx(ctx)
    for kind in ctx["fronts"]:
        with kind(pair, ctx, certs.dir) as f:
            yield f


def refused(c, why=None):
    """Asserts that client c exited 1 with a clear TLS error (saying
    why), having printed nothing on stdout."""
    rc = c.wait()
    assert rc == 1, (rc, c.err)
    line = c.expect_err(REFUSED)
    assert why is None or why.search(line), (why, line)
    assert c.out == [], c.out


def test_without_tls_build(ctx):
    """Built without libtls, --tls is a clear error with status 1."""
    if tls_built():
        raise Skip("talknet was built with TLS")
    r = subprocess.run([TALKNET, "--tls", "127.0.0.1", "1"],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=10)
    assert r.returncode == 1 and r.stderr.startswith(
        b"talknet: --tls: this talknet was built without TLS"), r


def test_session_over_tls(ctx):
    """identify, text both ways, quit: through TLS with --ca."""
    certs = tls_ctx(ctx)
    for s in fronts(ctx, certs.good):
        a, b = ctx["name"]("al"), ctx["name"]("bo")
        with Peer(s.plain, b) as p, \
                identified(s.port, a, "--tls", "--ca", certs.ca) as c:
            p.expect({"type": "NEW_USER", "username": a})
            p.send({"type": "PUBLIC_TEXT", "text": "to all"})
            c.expect("[public] %s: to all" % b)
            c.send("txfrom/%s/over tls" % b)
            p.expect({"type": "TEXT_FROM", "username": a,
                      "text": "over tls"})
            c.send("quit/")
            assert c.wait() == 0, (s.kind, c.err)
            p.expect({"type": "DISCONNECTED", "username": a})
            assert c.err == [], (s.kind, c.err)


def test_ca_and_host_name(ctx):
    """--ca with the name localhost (DNS) as well as 127.0.0.1 (IP)."""
    certs = tls_ctx(ctx)
    for s in fronts(ctx, certs.good):
        a = ctx["name"]("lo")
        with PipeClient(s.port, "--tls", "--ca", certs.ca, "-n", a,
                        host="localhost") as c:
            c.expect("* identified as " + a)
            c.close_stdin()
            assert c.wait() == 0, (s.kind, c.err)


def test_system_cas_refuse_test_ca(ctx):
    """Without --ca the system's CAs are used: they do not know ours."""
    certs = tls_ctx(ctx)
    for s in fronts(ctx, certs.good):
        a, b = ctx["name"]("sy"), ctx["name"]("bo")
        with Peer(s.plain, b) as p, \
                PipeClient(s.port, "--tls", "-n", a) as c:
            refused(c, re.compile("verif"))
            p.quiet((a,))
        assert " %s identified " % a not in s.daemon.log_text(), s.kind


def check_refused(ctx, pair, why):
    """A server with certificate pair is refused: exit 1, the reason on
    stderr, and the server sees no IDENTIFY, from -n or from --raw."""
    certs = tls_ctx(ctx)
    for s in fronts(ctx, pair):
        a, b = ctx["name"]("no"), ctx["name"]("bo")
        with Peer(s.plain, b) as p:
            with PipeClient(s.port, "--tls", "--ca", certs.ca, "-n",
                            a) as c:
                refused(c, why)
            with PipeClient(s.port, "--tls", "--ca", certs.ca,
                            "--raw") as c:
                try:    # it may have exited already: that is fine
                    c.send('{"type":"IDENTIFY","username":"%s"}' % a)
                except BrokenPipeError:
                    pass
                c.close_stdin()
                refused(c, why)
            p.quiet((a,), timeout=0.5)
        assert " %s identified " % a not in s.daemon.log_text(), s.kind


def test_wrong_host_refused(ctx):
    certs = tls_ctx(ctx)
    check_refused(ctx, certs.wrong, re.compile(r"name|not present"))


def test_expired_refused(ctx):
    certs = tls_ctx(ctx)
    check_refused(ctx, certs.expired, re.compile(r"expired"))


def test_self_signed(ctx):
    """A self-signed server: refused, then accepted with --insecure,
    which warns on stderr."""
    certs = tls_ctx(ctx)
    for s in fronts(ctx, certs.selfsigned):
        a = ctx["name"]("ss")
        with PipeClient(s.port, "--tls", "-n", a) as c:
            refused(c)
        with PipeClient(s.port, "--tls", "--insecure", "-n", a) as c:
            c.expect_err(re.compile(r"^talknet: warning: --insecure: "))
            c.expect("* identified as " + a)
            c.send("quit/")
            assert c.wait() == 0, (s.kind, c.err)


def test_tls_to_plain_server(ctx):
    """--tls against a plain port: a clear error, status 1, in time."""
    certs = tls_ctx(ctx)
    a = ctx["name"]("pl")
    t0 = time.monotonic()
    with PipeClient(ctx["port"], "--tls", "--ca", certs.ca, "-n", a) as c:
        rc = c.wait(timeout=10)
        assert rc == 1, (rc, c.err)
        c.expect_err(re.compile(r"^talknet: TLS handshake with \S+ port "
                                r"%d failed: .*not a TLS one" % ctx["port"]))
        assert c.out == [], c.out
    assert time.monotonic() - t0 < 10


def test_raw_over_tls(ctx):
    """--raw through TLS: the end of input ends the session at once,
    with the server's last lines printed."""
    certs = tls_ctx(ctx)
    for s in fronts(ctx, certs.good):
        a = ctx["name"]("rw")
        with PipeClient(s.port, "--tls", "--ca", certs.ca, "--raw") as c:
            c.proc.stdin.write(('{"type":"IDENTIFY","username":"%s"}\n'
                                '{"type":"USERS"}\n' % a).encode())
            c.close_stdin()
            c.expect(re.compile(r'"operation":"IDENTIFY".*"SUCCESS"'))
            c.expect(re.compile(r'"USER_LIST"'))
            assert c.wait() == 0, (s.kind, c.err)
            assert c.err == [], (s.kind, c.err)


def test_burst_over_tls(ctx):
    """Many lines at once: bytes libtls holds are never left unread."""
    certs = tls_ctx(ctx)
    n = 3000
    pad = "x" * 100
    for s in fronts(ctx, certs.good):
        a, b = ctx["name"]("bu"), ctx["name"]("bo")
        with Peer(s.plain, b) as p, \
                identified(s.port, a, "--tls", "--ca", certs.ca) as c:
            for i in range(n):
                p.send({"type": "TEXT", "username": a,
                        "text": "%d %s" % (i, pad)})
            c.expect("[private] %s: %d %s" % (b, n - 1, pad), timeout=30)
            got = [x for x in c.out if x.startswith("[private] ")]
            assert len(got) == n, (s.kind, len(got), got[-3:])
            c.send("quit/")
            assert c.wait() == 0, (s.kind, c.err)


def test_reconnect_over_tls(ctx):
    """A name the server refuses and closes on: on a terminal the client
    connects again, with a new handshake, and asks again."""
    certs = tls_ctx(ctx)
    for s in fronts(ctx, certs.good):
        a, b = ctx["name"]("re"), ctx["name"]("bo")
        with Peer(s.plain, b) as p, \
                PtyClient(s.port, "--tls", "--ca", certs.ca) as t:
            t.wait_for("username: ")
            t.keys("abcdefghijkl\r")
            t.wait_for("invalid username: abcdefghijkl")
            deadline = time.monotonic() + 5
            while t.text().count("username: ") < 2:
                assert time.monotonic() < deadline, t.text()
                time.sleep(0.02)
            t.keys(a + "\r")
            t.wait_for("* identified as " + a)
            p.expect({"type": "NEW_USER", "username": a})
            t.keys("\x04")
            p.expect({"type": "DISCONNECTED", "username": a})
            assert t.wait() == 0, (s.kind, t.text())


def test_openssl_s_client(ctx):
    """The README's nc of TLS: openssl s_client, strict as talknet with
    -verify_return_error and -verify_hostname, holds a session and
    refuses the wrong host."""
    certs = tls_ctx(ctx)
    for pair, ok in ((certs.good, True), (certs.wrong, False)):
        for s in fronts(ctx, pair):
            a = ctx["name"]("os")
            lines = ('{"type":"IDENTIFY","username":"%s"}\n'
                     '{"type":"USERS"}\n{"type":"DISCONNECT"}\n'
                     % a).encode()
            r = subprocess.run(
                [OPENSSL, "s_client", "-quiet", "-verify_return_error",
                 "-CAfile", certs.ca, "-verify_hostname", "localhost",
                 "-connect", "127.0.0.1:%d" % s.port], input=lines,
                capture_output=True, timeout=20)
            out = r.stdout.decode()
            if ok:
                assert r.returncode == 0 and '"SUCCESS"' in out and \
                    '"USER_LIST"' in out, (s.kind, out, r.stderr)
            else:
                assert r.returncode != 0 and out == "", (s.kind, out)
            # The log line comes through a pipe and a reader thread: it
            # may be read a moment after s_client has its answer.
            if ok:
                s.daemon.wait_log(r" %s identified " % re.escape(a))
            else:
                assert " %s identified " % a not in s.daemon.log_text()


def test_default_port_and_options(ctx):
    """--tls alone goes to port 8443; --ca needs --tls; a CA file that
    cannot be read is an error."""
    certs = tls_ctx(ctx)

    def call(*args):
        r = subprocess.run([TALKNET] + list(args), capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=15)
        return r.returncode, r.stderr.decode()

    rc, err = call("--tls", "--ca", certs.ca, "--raw", "127.0.0.1")
    assert rc == 1 and "port 8443" in err, (rc, err)
    rc, err = call("--ca", certs.ca, "127.0.0.1", "1")
    assert rc == 1 and "--ca and --insecure go with --tls" in err, err
    rc, err = call("--insecure", "127.0.0.1", "1")
    assert rc == 1 and "go with --tls" in err, err
    rc, err = call("--tls", "--ca", certs.path("nope.crt"), "127.0.0.1",
                   "1")
    assert rc == 1 and err.startswith("talknet: CA file "), err


def test_docs_show_tls(ctx):
    """README and talknet(1) show --tls and the nc of TLS (run whatever
    the build: the docs are the same)."""
    top = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                       "..")
    for doc in ("README.md", "doc/talknet.1"):
        with open(os.path.join(top, doc), encoding="utf-8") as f:
            text = f.read().replace("\\-", "-")
        for want in ("talknet --tls", "--ca", "--insecure", "8443",
                     "openssl s_client -quiet -connect",
                     "ncat --ssl", "-verify_return_error"):
            assert want in text, (doc, want)


if __name__ == "__main__":
    run([test_without_tls_build, test_session_over_tls,
         test_ca_and_host_name, test_system_cas_refuse_test_ca,
         test_wrong_host_refused, test_expired_refused, test_self_signed,
         test_tls_to_plain_server, test_raw_over_tls, test_burst_over_tls,
         test_reconnect_over_tls, test_openssl_s_client,
         test_default_port_and_options, test_docs_show_tls],
        daemon_args=LIFT_LIMITS)
