"""tlslib: what the TLS tests (issue 18) add to tntest.

make_pki() makes a throwaway CA and certificates with the openssl CLI at
test time, in a private temporary directory (no key is ever committed):
a server certificate for localhost and 127.0.0.1, an expired one, one
for another host, a second valid one (rotation) and a client
certificate.  tls_server() starts a Server with a plain and a tls://
listener.  TlsClient is tntest's Client over TLS (Python's ssl module).
"""

import atexit
import os
import select
import shutil
import socket
import ssl
import subprocess
import tempfile
import time

import tntest
from tntest import client as tnclient

OPENSSL = shutil.which("openssl")
T = tntest.TIMEOUT

_CA_CONF = """
[ca]
default_ca = tca
[tca]
dir = %(dir)s
database = %(dir)s/index.txt
new_certs_dir = %(dir)s
serial = %(dir)s/serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = copy
[any]
commonName = supplied
"""


def _run(*args, cwd=None):
    r = subprocess.run(("openssl",) + args, cwd=cwd, capture_output=True,
                       timeout=60)
    if r.returncode != 0:
        raise AssertionError("openssl %s: %s" % (" ".join(args),
                                                 r.stderr.decode()[-500:]))


class Pki:
    """Paths of the throwaway CA's files (attributes named after them)."""

    def __init__(self, d):
        self.dir = d
        for n in ("ca", "server", "expired", "wronghost", "rotated",
                  "client"):
            setattr(self, n + "_cert", os.path.join(d, n + ".pem"))
            setattr(self, n + "_key", os.path.join(d, n + ".key"))


def _sign(p, name, cn, san, start=None, end=None):
    """A key and a certificate for cn (subjectAltName san), signed by the
    CA; start and end ("YYYYMMDDHHMMSSZ") make it expired."""
    key = os.path.join(p.dir, name + ".key")
    csr = os.path.join(p.dir, name + ".csr")
    _run("req", "-new", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out",
         csr, "-subj", "/CN=" + cn, "-addext", "subjectAltName=" + san)
    args = ["ca", "-batch", "-config", os.path.join(p.dir, "ca.cnf"),
            "-cert", p.ca_cert, "-keyfile", p.ca_key, "-in", csr, "-out",
            os.path.join(p.dir, name + ".pem"), "-notext"]
    if start:
        args += ["-startdate", start, "-enddate", end]
    else:
        args += ["-days", "2"]
    _run(*args)


def make_pki():
    """Makes the CA and every certificate; returns a Pki.  Skips the test
    when there is no openssl CLI."""
    if OPENSSL is None:
        raise tntest.Skip("no openssl command")
    d = tempfile.mkdtemp(prefix="tnpki-")
    atexit.register(shutil.rmtree, d, True)
    p = Pki(d)
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write(_CA_CONF % {"dir": d})
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "serial"), "w") as f:
        f.write("1000\n")
    _run("req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", p.ca_key,
         "-out", p.ca_cert, "-days", "2", "-subj", "/CN=talknet test CA")
    _sign(p, "server", "localhost", "DNS:localhost,IP:127.0.0.1")
    _sign(p, "rotated", "localhost", "DNS:localhost,IP:127.0.0.1")
    _sign(p, "wronghost", "elsewhere.example", "DNS:elsewhere.example")
    _sign(p, "expired", "localhost", "DNS:localhost,IP:127.0.0.1",
          "20200101000000Z", "20200102000000Z")
    _sign(p, "client", "client one", "DNS:client.example")
    # World-readable: some tests run the daemon as another user.
    os.chmod(d, 0o755)
    for n in os.listdir(d):
        os.chmod(os.path.join(d, n), 0o644)
    return p


_PKI = []


def pki():
    """The test run's Pki, made on first use (one per test file)."""
    if not _PKI:
        _PKI.append(make_pki())
    return _PKI[0]


def tls_opts(pki, cert=None, key=None):
    return ["--tls-cert", cert or pki.server_cert,
            "--tls-key", key or pki.server_key]


def tls_server(pki, *opts, cert=None, key=None, **kw):
    """A Server listening on a plain and a tls:// loopback port."""
    kw.setdefault("listen", ("127.0.0.1:0", "tls://127.0.0.1:0"))
    return tntest.Server(*(tls_opts(pki, cert, key) + list(opts)), **kw)


def tls_port(server):
    """The port of the server's tls:// listener."""
    for host, port in server.addrs:
        if host.startswith("tls://"):
            return port
    raise AssertionError("no tls:// listener in %r" % server.addrs)


def plain_port(server):
    """The port of the server's plain listener."""
    for host, port in server.addrs:
        if not host.startswith("tls://"):
            return port
    raise AssertionError("no plain listener in %r" % server.addrs)


def client_context(pki, cert=False):
    """A verifying client context trusting the test CA (with the client
    certificate if cert)."""
    c = ssl.create_default_context(cafile=pki.ca_cert)
    if cert:
        c.load_cert_chain(pki.client_cert, pki.client_key)
    return c


def connect_tls(port, context, host="localhost", timeout=T):
    """A blocking TLS socket, its handshake done."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s = context.wrap_socket(raw, server_hostname=host)
    s.settimeout(timeout)
    return s


class TlsClient(tnclient.Client):
    """tntest's Client over TLS: the same lines, checks and helpers."""

    def __init__(self, server, pki, cert=False, context=None, port=None,
                 name=None, rcvbuf=None):
        self.pki = pki
        self.ctx = context or client_context(pki, cert)
        self._tls_port = port if port is not None else tls_port(server)
        super().__init__(server, port=self._tls_port, name=name,
                         rcvbuf=rcvbuf)
        self._handshake()

    def __repr__(self):
        return "<TlsClient %s :%d>" % (self.name or "-", self.local_port)

    def _handshake(self):
        self.sock.setblocking(True)
        self.sock.settimeout(T)
        self.sock = self.ctx.wrap_socket(self.sock,
                                         server_hostname="localhost")
        self.sock.setblocking(False)

    def _fill(self, deadline):
        if not isinstance(self.sock, ssl.SSLSocket):
            self._handshake()
        try:
            # Bytes decrypted already are in the ssl object: poll cannot
            # see them, so they are read without a wait.
            if self.sock.pending() > 0 and not self.eof:
                self.buf += self.sock.recv(262144)
                return True
            return super()._fill(deadline)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return True
        except ssl.SSLError:
            self.eof = True
            self.reset = True
            return True

    def _sendall(self, data, timeout=T * 3):
        if not isinstance(self.sock, ssl.SSLSocket):
            self._handshake()
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        while view:
            try:
                n = self.sock.send(view[:16384])
                view = view[n:]
                continue
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError,
                    BlockingIOError):
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("send blocked for %.0f s" % timeout)
            tnclient._wait_fd(self.sock, select.POLLOUT | select.POLLIN,
                              min(left, 0.05))


def client_hello():
    """The first flight of a TLS client (a ClientHello), as bytes."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    c = ssl.create_default_context().wrap_bio(inc, out,
                                              server_hostname="localhost")
    try:
        c.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def tls_users(server, pki, *names):
    """Connects and identifies each name over TLS, as connect_users."""
    out = []
    for n in names:
        c = TlsClient(server, pki)
        c.identify(n)
        for o in out:
            o.expect(tntest.new_user(n))
        out.append(c)
    return out


class BioClient:
    """A TLS client over memory BIOs on a raw socket, for the attack tests:
    the test decides what goes on the wire and when (the handshake's last
    flight held back, records built one by one, raw bytes after)."""

    def __init__(self, port, context, host="localhost", rcvbuf=None,
                 addr="127.0.0.1"):
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind((addr, 0))
        self.sock.settimeout(T)
        self.sock.connect(("127.0.0.1", port))
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.inc, self.out, server_hostname=host)
        self.end = None

    def handshake(self, send_last=True):
        """Runs the handshake; returns the client's last flight, already
        sent unless send_last is false."""
        deadline = time.monotonic() + T
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.sock.sendall(self.out.read())
                d = self.sock.recv(65536)
                if not d or time.monotonic() > deadline:
                    raise AssertionError("closed in the handshake")
                self.inc.write(d)
        last = self.out.read()
        if send_last:
            self.sock.sendall(last)
        return last

    def record(self, data):
        """data as the TLS bytes of one record (not sent)."""
        self.obj.write(data)
        return self.out.read()

    def send(self, data):
        """data in one record, sent."""
        self.sock.sendall(self.record(data))

    def read(self, lines=1, timeout=T):
        """What arrives until lines lines, the end or timeout.  How the
        stream ended, if it did, is in self.end: "close_notify", "eof",
        "reset" or the TLS error."""
        got = b""
        deadline = time.monotonic() + timeout
        while got.count(b"\n") < lines and self.end is None:
            try:
                d = self.obj.read(262144)
                if not d:
                    self.end = "close_notify"
                    break
                got += d
                if time.monotonic() < deadline:
                    continue
                break
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:
                self.end = "close_notify"
                break
            except ssl.SSLError as e:
                self.end = str(e)
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(262144)
            except socket.timeout:
                break
            except ConnectionResetError:
                self.end = "reset"
                break
            if not d:
                self.end = "eof"
                break
            self.inc.write(d)
        return got

    def close_notify(self):
        """Sends close_notify (and keeps the socket open)."""
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass
        self.sock.sendall(self.out.read())

    def close(self):
        self.sock.close()
