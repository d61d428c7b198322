"""The command line: --help, --version, bad options and numbers, listen
addresses, IPv6, several listeners and a port in use."""

import re
import socket
import os
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
import tntest  # noqa: E402
from tntest import Client, Server, TALKNETD, new_user, req

EX_USAGE = 64


def run(args, timeout=10):
    """Runs talknetd with args; returns (status, stdout, stderr).  A daemon
    that keeps running is killed and the test fails."""
    return tntest.run_program([TALKNETD] + args, timeout)


def test_help():
    for opt in ("--help", "-h"):
        rc, out, err = run([opt])
        assert rc == 0, "%s: exit %r, stderr %r" % (opt, rc, err)
        assert "usage" in out.lower(), "%s: no usage on stdout: %r" % (opt,
                                                                        out)
        for word in ("--listen", "--max-clients", "--foreground"):
            assert word in out, "%s: %s not in the usage: %r" % (opt, word,
                                                                  out)


def test_version():
    for opt in ("--version", "-V"):
        rc, out, err = run([opt])
        assert rc == 0, "%s: exit %r, stderr %r" % (opt, rc, err)
        assert re.search(r"\d+\.\d+", out), "%s: no version in %r" % (opt,
                                                                       out)


def test_unknown_option():
    for args in (["--bogus"], ["-x"], ["-f", "--frobnicate", "-l",
                                       "127.0.0.1:0"]):
        rc, out, err = run(args)
        assert rc == EX_USAGE, "%r: exit %r (want 64), stderr %r" % (
            args, rc, err)
        lines = [l for l in err.splitlines() if l.strip()]
        assert len(lines) == 1, "%r: want a one-line error on stderr, got " \
            "%r" % (args, err)


def test_bad_numbers():
    for args in (["--max-clients", "abc"], ["--max-clients", "0"],
                 ["--max-clients", "-1"], ["--max-clients", "12abc"],
                 ["--max-clients", ""], ["--max-clients", "99999999999999999999"],
                 ["--max-rooms", "abc"], ["--max-name", "0"],
                 ["--max-room", "x"], ["--max-line", "lots"],
                 ["--max-queue", "-5"], ["--max-gather", "1001"],
                 ["--max-gather", "x"], ["--max-clients"]):
        rc, out, err = run(["-f", "-l", "127.0.0.1:0"] + args)
        assert rc == EX_USAGE, "%r: exit %r (want 64), stderr %r" % (
            args, rc, err)
        assert err.strip(), "%r: no error message" % (args,)


def test_unusable_addresses():
    for addr in ("256.1.1.1:5", "127.0.0.1:99999", "nonsense",
                 "127.0.0.1:", ":", "127.0.0.1:-1", "127.0.0.1:http0"):
        rc, out, err = run(["-f", "-l", addr])
        assert rc in (EX_USAGE, 1), "-l %s: exit %r (want 64 or 1), " \
            "stderr %r" % (addr, rc, err)
        assert err.strip(), "-l %s: no error message" % addr


def test_ipv6_loopback():
    try:
        t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        t.bind(("::1", 0))
        t.close()
    except OSError:
        raise tntest.Skip("no IPv6 loopback")
    with Server(listen=["[::1]:0"]) as s:
        host, port = s.addrs[0]
        assert host == "::1", s.addrs
        a = Client(s, host="::1", port=port).identify("six")
        b = Client(s, host="::1", port=port).identify("six2")
        a.expect(new_user("six2"))
        b.send(req("TEXT", username="six", text="over v6"))
        a.expect(tntest.text_from("six2", "over v6"))


def test_two_listeners():
    with Server(listen=["127.0.0.1:0", "127.0.0.1:0"]) as s:
        assert len(s.addrs) == 2, s.addrs
        p1, p2 = s.addrs[0][1], s.addrs[1][1]
        assert p1 != p2 and p1 > 0 and p2 > 0, s.addrs
        a = Client(s, port=p1).identify("one")
        b = Client(s, port=p2).identify("two")
        a.expect(new_user("two"))
        b.send(req("PUBLIC_TEXT", text="across"))
        a.expect(tntest.public_from("two", "across"))


def test_port_in_use():
    hold = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        hold.bind(("127.0.0.1", 0))
        hold.listen(1)
        port = hold.getsockname()[1]
        rc, out, err = run(["-f", "-l", "127.0.0.1:%d" % port])
        assert rc == 1, "exit %r (want 1), stderr %r" % (rc, err)
        assert err.strip(), "no error message"
    finally:
        hold.close()


def test_listens_where_told_and_reports_port():
    hold = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hold.bind(("127.0.0.1", 0))
    port = hold.getsockname()[1]
    hold.close()                      # a free port, most probably
    with Server(listen=["127.0.0.1:%d" % port]) as s:
        assert s.addrs == [("127.0.0.1", port)], s.addrs
        Client(s).identify("x")


if __name__ == "__main__":
    tntest.main(globals())
