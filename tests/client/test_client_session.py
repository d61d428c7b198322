#!/usr/bin/env python3
"""talknet client: the session around the commands, against a real
talknetd: the name from the first line, a taken name, end of input, a
refused connection, --raw, --json, the server going away, the options.
"""

import json
import os
import re
import socket
import subprocess
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest.talknet import (SKIP, TALKNET, Peer,  # noqa: E402
                            PipeClient, identified, run)
from tntest.steps import own_daemon  # noqa: E402


def test_name_from_first_line(ctx):
    a, b = ctx["name"]("al"), ctx["name"]("bo")
    with Peer(ctx["port"], b) as p, PipeClient(ctx["port"]) as c:
        c.send(a)
        c.expect("* identified as " + a)
        p.expect({"type": "NEW_USER", "username": a})
        c.send(">first")
        p.expect({"type": "PUBLIC_TEXT_FROM", "username": a,
                  "text": "first"})
        c.close_stdin()
        assert c.wait() == 0, c.err


def test_whole_script_at_once(ctx):
    """Commands piped before the IDENTIFY reply wait for it, in order."""
    a, b = ctx["name"]("al"), ctx["name"]("bo")
    with Peer(ctx["port"], b) as p, PipeClient(ctx["port"]) as c:
        c.proc.stdin.write(("%s\n>one\ntxfrom/%s/two\n>three"
                            % (a, b)).encode())
        c.close_stdin()
        p.expect({"type": "NEW_USER", "username": a})
        p.expect({"type": "PUBLIC_TEXT_FROM", "username": a,
                  "text": "one"})
        p.expect({"type": "TEXT_FROM", "username": a, "text": "two"})
        p.expect({"type": "PUBLIC_TEXT_FROM", "username": a,
                  "text": "three"})
        p.expect({"type": "DISCONNECTED", "username": a})
        assert c.wait() == 0, c.err


def test_name_taken_on_pipe(ctx):
    b = ctx["name"]("bo")
    with Peer(ctx["port"], b) as p:
        for args, first in ((("-n", b), None), ((), b)):
            with PipeClient(ctx["port"], *args) as c:
                if first:
                    c.send(first)
                # It exits without waiting on anything: within wait()'s
                # bound, however slow the machine.
                rc = c.wait()
                assert rc == 1, (rc, c.err)
                c.expect_err(re.compile(r"^talknet: .*%s.*already taken"
                                        % b))
        p.quiet((b,))


def test_invalid_name_on_pipe(ctx):
    for args in (("-n", "tab\tname"), ("-n", "")):
        with PipeClient(ctx["port"], *args) as c:
            assert c.wait() == 1, c.err
            c.expect_err(re.compile(r"^talknet: invalid username"))
    with PipeClient(ctx["port"]) as c:
        c.send("bad\x1bname")
        assert c.wait() == 1, c.err
        c.expect_err(re.compile(r"^talknet: invalid username"))


def test_end_of_input_before_name(ctx):
    with PipeClient(ctx["port"]) as c:
        c.close_stdin()
        assert c.wait() == 1, c.err
        c.expect_err("talknet: no username given")


def test_end_of_input_disconnects(ctx):
    a, b = ctx["name"]("al"), ctx["name"]("bo")
    with Peer(ctx["port"], b) as p, identified(ctx["port"], a) as c:
        p.expect({"type": "NEW_USER", "username": a})
        c.close_stdin()
        p.expect({"type": "DISCONNECTED", "username": a})
        assert c.wait() == 0, c.err
        c.kill()
        assert c.err == [], c.err


def test_refused(ctx):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with PipeClient(port, "-n", "x") as c:
        assert c.wait() == 1
        c.kill()
        assert c.err == ["talknet: connect to 127.0.0.1 port %d: "
                         "Connection refused" % port], c.err
        assert c.out == [], c.out


def test_localhost_name(ctx):
    """A host name resolves; every address is tried in turn."""
    a = ctx["name"]("lo")
    with PipeClient(ctx["port"], "-n", a, host="localhost") as c:
        c.expect("* identified as " + a)
        c.close_stdin()
        assert c.wait() == 0, c.err


def test_ipv6(ctx):
    """An IPv6 literal, against a daemon on ::1 (skipped without IPv6)."""
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
    except OSError:
        return SKIP
    with own_daemon(listen=["[::1]:0"]) as (d, kill_at_end):
        a = ctx["name"]("v6")
        c = kill_at_end(PipeClient(d.port, "-n", a, host="::1"))
        c.expect("* identified as " + a)
        c.close_stdin()
        assert c.wait() == 0, c.err


def test_raw_mode(ctx):
    r, b = ctx["name"]("ra"), ctx["name"]("bo")
    with Peer(ctx["port"], b) as p, PipeClient(ctx["port"], "--raw") as c:
        c.send('{"type":"IDENTIFY","username":"%s"}' % r)
        c.expect('{"type":"RESPONSE","operation":"IDENTIFY",'
                 '"result":"SUCCESS","extra":"%s"}' % r)
        p.expect({"type": "NEW_USER", "username": r})
        c.send('{"type":"PUBLIC_TEXT","text":"via raw"}')
        p.expect({"type": "PUBLIC_TEXT_FROM", "username": r,
                  "text": "via raw"})
        c.send(">not a command in raw mode")
        c.expect('{"type":"RESPONSE","operation":"INVALID",'
                 '"result":"INVALID"}')
        p.expect({"type": "DISCONNECTED", "username": r})
        assert c.wait() == 1, c.err
        c.expect_err("talknet: connection closed by server")


def test_raw_mode_sends_nothing_itself(ctx):
    """--raw sends no IDENTIFY; the end of input ends it with status 0."""
    with PipeClient(ctx["port"], "--raw") as c:
        c.send('{"type":"USERS"}')
        c.expect('{"type":"RESPONSE","operation":"INVALID",'
                 '"result":"NOT_IDENTIFIED"}')
        assert c.wait() == 1, c.err
    r, b = ctx["name"]("ra"), ctx["name"]("bo")
    with Peer(ctx["port"], b) as p, PipeClient(ctx["port"], "--raw") as c:
        c.send('{"type":"IDENTIFY","username":"%s"}' % r)
        p.expect({"type": "NEW_USER", "username": r})
        p.send({"type": "TEXT", "username": r, "text": "hi raw"})
        c.expect('{"type":"TEXT_FROM","username":"%s","text":"hi raw"}' % b)
        c.close_stdin()
        p.expect({"type": "DISCONNECTED", "username": r})
        assert c.wait() == 0, c.err


def test_json_mode(ctx):
    a, b, d = ctx["name"]("js"), ctx["name"]("bo"), ctx["name"]("wi")
    c = PipeClient(ctx["port"], "--json", "-n", a)
    p = w = None
    try:
        c.expect('{"type":"RESPONSE","operation":"IDENTIFY",'
                 '"result":"SUCCESS","extra":"%s"}' % a)
        w = Peer(ctx["port"], d)
        c.expect('{"type":"NEW_USER","username":"%s"}' % d)
        p = Peer(ctx["port"], b)
        c.expect('{"type":"NEW_USER","username":"%s"}' % b)
        # The witness gets the same line: the client prints it verbatim.
        p.send({"type": "PUBLIC_TEXT", "text": "é \x1b \"q\" \\"})
        while True:
            line = w.recv_line()
            assert line is not None
            if json.loads(line)["type"] == "PUBLIC_TEXT_FROM":
                break
        c.expect(line)
        c.send("all/")
        line = c.expect(re.compile(r'^\{"type":"USER_LIST"'))
        users = json.loads(line)["users"]
        assert users.get(a) == "ACTIVE" and users.get(b) == "ACTIVE", users
        c.send("txfrom/nobody/x")
        c.expect('{"type":"RESPONSE","operation":"TEXT",'
                 '"result":"NO_SUCH_USER","extra":"nobody"}')
        c.close_stdin()
        assert c.wait() == 0, c.err
    finally:
        c.kill()
        for x in (p, w):
            if x:
                x.close()


def test_server_goes_away(ctx):
    with own_daemon() as (d, kill_at_end):
        c = kill_at_end(identified(d.port, ctx["name"]("al")))
        d.stop()
        c.expect_err("talknet: connection closed by server")
        assert c.wait() == 1, c.err


def test_options(ctx):
    def call(*args):
        r = subprocess.run([TALKNET] + list(args), stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=5)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    rc, out, err = call("-h")
    assert rc == 0 and out.startswith("usage: talknet ") and "--raw" in out
    rc, out, err = call("--help")
    assert rc == 0 and out.startswith("usage: talknet ")
    rc, out, err = call("-V")
    assert rc == 0 and re.match(r"^talknet \d+\.\d+", out), out
    rc, out, err = call("--version")
    assert rc == 0 and out.startswith("talknet ")
    for bad in (("--bogus",), ("-n",), ("a", "1", "extra"),
                ("--raw", "-n", "x", "127.0.0.1", str(ctx["port"])),
                ("127.0.0.1", "0"), ("127.0.0.1", "65536")):
        rc, out, err = call(*bad)
        assert rc == 1, (bad, rc, err)
        assert err.startswith("talknet: ") or err.startswith("usage:") \
            or "option" in err, (bad, err)


def test_bad_port(ctx):
    for port, want in (("abc", "talknet: bad port: abc"),
                       ("80x", "talknet: bad port: 80x"),
                       ("", "talknet: bad port: ")):
        r = subprocess.run([TALKNET, "127.0.0.1", port],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=5)
        err = r.stderr.decode()
        assert r.returncode == 1, (port, r.returncode, err)
        assert err.splitlines() == [want], (port, err)
    r = subprocess.run([TALKNET, "127.0.0.1", "70000"],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=5)
    assert r.returncode == 1 and \
        r.stderr.decode().startswith("talknet: bad port: 70000"), r


def test_name_too_long_on_pipe(ctx):
    """The server refuses a name over its limit and closes: the client
    says why, and exits 1 on a pipe."""
    long_name = "abcdefghijk"
    for args, first in ((("-n", long_name), None), ((), long_name)):
        with PipeClient(ctx["port"], *args) as c:
            if first:
                c.send(first)
            assert c.wait() == 1, c.err
            c.kill()
            assert c.err == ["talknet: invalid username: %s is 11 "
                             "characters, more than the server takes (8 "
                             "unless it was configured otherwise)"
                             % long_name], c.err


def test_empty_first_line(ctx):
    """Empty and blank lines on a pipe are skipped before the name, and
    empty lines after it: not a name, not a command."""
    a = ctx["name"]("em")
    with PipeClient(ctx["port"]) as c:
        c.send("")
        c.send("  ")
        c.send("\r")
        c.send(a + "\r")
        c.expect("* identified as " + a)
        c.send("")
        c.send(">x")
        c.expect("[public] %s: x" % a)
        c.close_stdin()
        assert c.wait() == 0, c.err
        c.kill()
        assert c.err == [], c.err


def test_raw_exit_status(ctx):
    """--raw: 1 when the server closes on its own (here after INVALID),
    even once the input is over; 0 after a DISCONNECT line."""
    with PipeClient(ctx["port"], "--raw") as c:
        c.send("not json")
        c.close_stdin()
        c.expect('{"type":"RESPONSE","operation":"INVALID",'
                 '"result":"INVALID"}')
        assert c.wait() == 1, c.err
        c.expect_err("talknet: connection closed by server")
    r = ctx["name"]("rw")
    with PipeClient(ctx["port"], "--raw") as c:
        c.send('{"type":"IDENTIFY","username":"%s"}' % r)
        c.send('{"type":"DISCONNECT"}')
        assert c.wait() == 0, c.err
        c.kill()
        assert c.err == [], c.err


if __name__ == "__main__":
    run([test_name_from_first_line, test_whole_script_at_once,
         test_name_taken_on_pipe, test_invalid_name_on_pipe,
         test_end_of_input_before_name, test_end_of_input_disconnects,
         test_refused, test_localhost_name, test_ipv6, test_raw_mode,
         test_raw_mode_sends_nothing_itself, test_json_mode,
         test_server_goes_away, test_options, test_bad_port,
         test_name_too_long_on_pipe, test_empty_first_line,
         test_raw_exit_status])
