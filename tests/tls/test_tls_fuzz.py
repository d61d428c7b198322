#!/usr/bin/env python3
"""The TLS port receiving random bytes (issue 18): random payloads,
ClientHello-like prefixes, real ClientHellos cut and flipped at random,
and garbage after a good handshake.  The daemon must survive all of
them (no worker crashes, nothing a sanitizer reports), close each such
connection, and still serve a real TLS client and the plain port after.

TN_TLS_FUZZ=N sets how many payloads of each kind (default 60); the
seed is printed, and TN_TLS_FUZZ_SEED replays a run."""

import os
import random
import socket
import ssl
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE + "/../lib")
sys.path.insert(0, HERE)
import tntest  # noqa: E402
import tlslib  # noqa: E402
from tlslib import pki, TlsClient, plain_port, tls_port, tls_server  # noqa: E402

N = int(os.environ.get("TN_TLS_FUZZ", "60"))
SEED = int(os.environ.get("TN_TLS_FUZZ_SEED") or time.time_ns() % 2**32)


def payloads(rng):
    """Every payload, each kind N times."""
    h = tlslib.client_hello()
    for _ in range(N):
        yield bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 2048)))
    for _ in range(N):
        # A record header that claims a handshake, then noise.
        yield bytes([22, 3, rng.randint(0, 4)]) + \
            rng.randint(0, 65535).to_bytes(2, "big") + \
            bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 600)))
    for _ in range(N):
        b = bytearray(h[:rng.randint(1, len(h))])
        for _ in range(rng.randint(0, 8)):
            b[rng.randrange(len(b))] = rng.getrandbits(8)
        yield bytes(b)


def send_one(port, data):
    """Sends data, then reads until the server closes (bounded)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=tntest.TIMEOUT)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + tntest.TIMEOUT
        while time.monotonic() < deadline:
            try:
                if not s.recv(65536):
                    return True
            except (ConnectionResetError, BrokenPipeError):
                return True
            except socket.timeout:
                break
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True
    finally:
        s.close()


def test_random_bytes_to_the_tls_port():
    print("seed %d (TN_TLS_FUZZ_SEED to replay)" % SEED)
    rng = random.Random(SEED)
    with tls_server(pki(), "--login-timeout", "2") as s:
        n = 0
        for data in payloads(rng):
            assert send_one(tls_port(s), data), \
                "still open after payload %d (%r...)" % (n, data[:40])
            n += 1
        # Garbage after a good handshake: a TLS client's socket underneath.
        for _ in range(N // 4 + 1):
            c = tlslib.connect_tls(tls_port(s), tlslib.client_context(pki()))
            raw = socket.socket(fileno=os.dup(c.fileno()))
            raw.sendall(bytes(rng.getrandbits(8) for _ in range(300)))
            raw.close()
            c.settimeout(tntest.TIMEOUT)
            try:
                assert c.recv(4096) == b""
            except (ssl.SSLError, ConnectionResetError):
                pass
            c.close()
        a = TlsClient(s, pki()).identify("survivor")
        b = tntest.Client(plain_port(s)).identify("plain")
        a.expect(tntest.new_user("plain"))
        assert sorted(a.users()) == ["plain", "survivor"]
        crashed = [l for l in s.log if "crashed" in l or "SIGSYS" in l]
        assert not crashed, crashed[:5]


if __name__ == "__main__":
    tntest.main(globals())
