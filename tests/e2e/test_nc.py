"""nc alone holds a session (protocol.md: "nc HOST PORT is a usable
client").  Skipped when nc is not installed."""

import json
import shutil
import subprocess
import os
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
import tntest  # noqa: E402
from tntest import Client, Server, req


def find_nc():
    """nc with -q (OpenBSD or traditional netcat), or Skip."""
    nc = shutil.which("nc")
    if not nc:
        raise tntest.Skip("nc is not installed")
    try:
        h = subprocess.run([nc, "-h"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        raise tntest.Skip("nc -h failed")
    if b"-q" not in h:
        raise tntest.Skip("this nc has no -q option")
    return nc


def _nc(nc, s, data):
    """nc -q1 to s with data as its input, run to its end (15 s)."""
    try:
        return subprocess.run([nc, "-q1", "127.0.0.1", str(s.port)],
                              input=data, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=15)
    except subprocess.TimeoutExpired:
        raise AssertionError("nc did not finish within 15 s")


def test_nc_session():
    nc = find_nc()
    with Server() as s:
        peer = Client(s).identify("peer")
        lines = [
            req("IDENTIFY", username="ncuser"),
            req("PUBLIC_TEXT", text="hello from nc"),
            req("TEXT", username="peer", text="psst \u00e9"),
            req("USERS"),
            req("DISCONNECT"),
        ]
        data = b"".join(tntest.compact(m) for m in lines)
        p = _nc(nc, s, data)
        out = p.stdout
        got = out.split(b"\n")
        assert got[-1] == b"", "nc's output does not end in a newline: %r" \
            % out
        got = got[:-1]
        assert len(got) == 2, "nc got %r" % out
        assert got[0] + b"\n" == (b'{"type":"RESPONSE","operation":"IDENTIFY",'
                                  b'"result":"SUCCESS","extra":"ncuser"}\n'), \
            got[0]
        ul = tntest.check_line(got[1] + b"\n")
        assert ul == tntest.user_list({"peer": "ACTIVE",
                                       "ncuser": "ACTIVE"}), \
            got[1]
        peer.expect(tntest.new_user("ncuser"))
        peer.expect(tntest.public_from("ncuser", "hello from nc"))
        peer.expect(tntest.text_from("ncuser", "psst \u00e9"))
        peer.expect(tntest.disconnected("ncuser"))
        peer.expect_nothing()


def test_nc_plain_lines_typed_by_hand():
    nc = find_nc()
    with Server() as s:
        peer = Client(s).identify("peer")
        # What a person types: CRLF line ends, spaces, blank lines.
        data = (b'{ "type": "IDENTIFY", "username": "typist" }\r\n'
                b'\r\n'
                b'{ "type": "TEXT", "username": "peer", "text": "hi" }\r\n'
                b'{ "type": "TEXT", "username": "nobody", "text": "hi" }\r\n')
        p = _nc(nc, s, data)
        got = [json.loads(x) for x in p.stdout.splitlines()]
        assert got == [tntest.resp("IDENTIFY", "SUCCESS", "typist"),
                       tntest.resp("TEXT", "NO_SUCH_USER", "nobody")], p.stdout
        peer.expect(tntest.new_user("typist"))
        peer.expect(tntest.text_from("typist", "hi"))
        # nc quits one second after its input ends: a plain close.
        peer.expect(tntest.disconnected("typist"), timeout=5)


if __name__ == "__main__":
    tntest.main(globals())
