#!/usr/bin/env python3
"""spare-decay-ms and control-idle-ms under attack: a reload (SIGHUP)
applies control-idle-ms to a connection already open; a bad value on
reload is refused, the old one kept and the daemon serving; the
command line wins over the file, at start and on reload; values with a
unit, an exponent or in hex are refused; control-idle-ms at its
minimum still lets a long listing through; spare-decay-ms at its
minimum under repeated bursts neither forks in a storm nor leaks a
spare."""

import os
import signal
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest import ops  # noqa: E402
import tntest  # noqa: E402
from tntest import wait_until  # noqa: E402
from test_ctl import ctl, ctl_json, raw_conn, closed_soon  # noqa: E402

T = tntest.TIMEOUT


def _conf(path, text):
    ops.write_file(path, text)
    return path


def idle_closed(c, idle_ms):
    """Whether the raw control peer c is closed within a loose bound of
    idle_ms (well under a minute)."""
    return closed_soon(c, 15 * idle_ms / 1000)


def sighup(s):
    """Reloads s by SIGHUP and waits for its answer in the log: the
    'reload:' or 'reloaded:' line after the ones already there."""
    n = len(s.log)
    os.kill(s.pid, signal.SIGHUP)
    wait_until(lambda: any("reload" in line for line in s.log[n:]), T,
               what="the reload's log line")
    return s.log[n:]


def test_sighup_applies_control_idle_ms_to_an_open_connection():
    """A peer connected under control-idle-ms 60000 is closed soon after
    a SIGHUP sets 300: the idle time is measured against the live value,
    not the one at accept.  The reload's log line and talknetctl's
    answer name the new values."""
    d = ops.tempdir("tidle")
    conf = _conf(os.path.join(d, "t.conf"), "control-idle-ms = 60000\n")
    s = tntest.Server("-c", conf)
    c = raw_conn(s)
    _conf(conf, "control-idle-ms = 300\nspare-decay-ms = 700\n")
    new = sighup(s)
    # The reload's line tells what now runs, these keys as the others.
    assert any("reloaded: " in line and "spare-decay-ms 700," in line and
               "control-idle-ms 300" in line for line in new), new
    assert idle_closed(c, 300), "the open peer kept the old 60 s"
    s.wait_log(r"sent no request in time")
    _conf(conf, "control-idle-ms = 400\n")
    rc, out, err = ctl(s, "reload")
    assert rc == 0 and "control-idle-ms 400" in out, \
        (rc, out, err)


def test_a_bad_timer_value_on_reload_keeps_the_running_one():
    """A reload of a file with a bad -ms value is refused, naming the
    file, the line, the key and the bounds; the running value stays (a
    peer is still closed after 0.3 s) and clients are served."""
    d = ops.tempdir("tbad")
    conf = _conf(os.path.join(d, "t.conf"), "control-idle-ms = 300\n")
    s = tntest.Server("-c", conf)
    for bad, why in (("control-idle-ms = 3s", "invalid"),
                     ("control-idle-ms = 99", "too small"),
                     ("spare-decay-ms = 3600001", "too large"),
                     ("cluster-ttl-ms = 0x10", "invalid")):
        _conf(conf, "control-idle-ms = 300\n" + bad + "\n")
        rc, out, err = ctl(s, "reload")
        key = bad.split()[0]
        assert rc == 1 and "t.conf:2: %s" % key in err and why in err, \
            (bad, rc, out, err)
        assert "keeping the running configuration" in err, err
        new = sighup(s)
        assert any("t.conf:2: %s" % key in line and "keeping" in line
                   for line in new), new
    c = raw_conn(s)
    t0 = time.monotonic()
    assert idle_closed(c, 300)
    assert time.monotonic() - t0 < 5, "not the running 300 ms"
    tntest.Client(s).identify("a")


def test_the_command_line_wins_at_start_and_on_reload():
    """control-idle-ms 60000 in the file, --control-idle-ms 300: 300, and
    still 300 after a reload of a file that says 120000."""
    d = ops.tempdir("tcli")
    conf = _conf(os.path.join(d, "t.conf"), "control-idle-ms = 60000\n")
    s = tntest.Server("-c", conf, "--control-idle-ms", "300")
    assert idle_closed(raw_conn(s), 300), "the file's 60 s won"
    _conf(conf, "control-idle-ms = 120000\n")
    rc, out, err = ctl(s, "reload")
    assert rc == 0, (rc, out, err)
    assert idle_closed(raw_conn(s), 300), "the reload's 120 s won"


def check(*args):
    """talknetd -n with args: (status, stdout + stderr)."""
    p = subprocess.run([tntest.TALKNETD, "-n", *args],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=10 * T)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def test_values_with_units_or_in_another_base_are_refused():
    """'3s', '1e3', '0x10', '3000ms', '' are refused on the command line
    and in the file, naming the key; '3000' with white space around it
    in the file is 3000."""
    d = ops.tempdir("tunits")
    for key in ("spare-decay-ms", "control-idle-ms", "cluster-ttl-ms"):
        for v in ("3s", "1e3", "0x10", "3000ms", "", "3000.0"):
            rc, out = check("-c", "/dev/null", "--" + key, v)
            assert rc != 0 and key in out, (key, v, rc, out)
            conf = _conf(os.path.join(d, "t.conf"), "%s = %s\n" % (key, v))
            rc, out = check("-c", conf)
            assert rc != 0 and "t.conf:1: " + key in out, (key, v, rc, out)
        conf = _conf(os.path.join(d, "t.conf"), "%s =  3000 \t\n" % key)
        rc, out = check("-c", conf)
        assert rc == 0, (key, rc, out)


def test_control_idle_ms_minimum_lets_a_long_listing_through():
    """--control-idle-ms 100 and 300 users: talknetctl show users lists
    them all (an answer that is being read is progress)."""
    with tntest.Server("--control-idle-ms", "100",
                       "--max-clients-per-ip", "0") as s:
        names = ["u%03d" % i for i in range(300)]
        clients = []
        for n in names:
            clients.append(tntest.Client(s).identify(n))
        wait_until(lambda: len(ctl_json(s, "show", "users")["data"]) ==
                   len(names), 3 * T, what="300 users listed")
        for _ in range(5):
            rc, out, err = ctl(s, "show", "users")
            assert rc == 0, (rc, err)
            assert all(n in out for n in names), out[-200:]


def test_spare_decay_ms_minimum_under_bursts_no_storm_no_leak():
    """--spare-decay-ms 100, bursts of 16 connections every 0.15 s: the
    forks stay within a small multiple of the connections, and once the
    bursts stop the pool settles at --min-spare with no spare left
    behind."""
    with tntest.Server("--min-spare", "1", "--max-spare", "8",
                       "--max-clients-per-ip", "0",
                       "--spare-decay-ms", "100") as s:
        wait_until(lambda: len(s.spares()) == 1, T, what="1 spare")
        before = ctl_json(s, "show", "stats")["data"]["spares_forked"]
        conns = 0
        for _ in range(12):
            socks = [socket.create_connection(("127.0.0.1", s.port),
                                              timeout=T) for _ in range(16)]
            conns += len(socks)
            time.sleep(0.15)
            for so in socks:
                so.close()
        wait_until(lambda: len(s.spares()) == 1 and
                   len(s.descendants(spares=False)) == 1, 10 * T,
                   what="the pool back at 1 and only the hub (%r, %r)" %
                   (s.spares(), s.descendants(spares=False)))
        st = ctl_json(s, "show", "stats")["data"]
        forks = st["spares_forked"] - before
        print("%d connections, %d forks, %d handed, %d missed" %
              (conns, forks, st["spares_handed"], st["spares_missed"]))
        assert forks <= 2 * conns, (forks, conns, st)
        time.sleep(0.5)
        assert len(s.spares()) == 1, s.spares()


def test_sighup_applies_spare_decay_ms():
    """spare-decay-ms 3600000 then, by SIGHUP, 100: a burst after the
    reload grows the pool, which is back at --min-spare within a second
    or so, not an hour."""
    d = ops.tempdir("tdecay")
    conf = _conf(os.path.join(d, "t.conf"), "spare-decay-ms = 3600000\n")
    with tntest.Server("-c", conf, "--min-spare", "1", "--max-spare", "4",
                       "--max-clients-per-ip", "0") as s:
        wait_until(lambda: len(s.spares()) == 1, T, what="1 spare")
        _conf(conf, "spare-decay-ms = 100\n")
        sighup(s)
        socks = [socket.create_connection(("127.0.0.1", s.port), timeout=T)
                 for _ in range(20)]
        wait_until(lambda: len(s.spares()) >= 2, T,
                   what="a grown pool (%r)" % s.spares())
        for so in socks:
            so.close()
        wait_until(lambda: len(s.spares()) == 1, 10 * 0.1 * 4,
                   what="the pool back at 1 (%r)" % s.spares())




def _slow_reader_episode(s, sender, name, n=30, size=20000):
    """A client of name that reads nothing gets n private texts of size
    bytes from sender: the hub paces sender, then finds the reader too
    slow.  Returns (ms, rate) from the hub's log line about it."""
    r = tntest.Client(s, rcvbuf=4096)
    r.identify(name)
    sender.expect(tntest.new_user(name))
    pad = "p" * size
    for i in range(n):
        sender.send(tntest.req("TEXT", username=name, text="%02d %s"
                               % (i, pad)))
    m = s.wait_log(r"\(127\.0\.0\.1:%d\): read \d+ bytes in (\d+) ms, "
                   r"under (\d+) a second" % r.local_port, timeout=T * 3)
    # Cut at the cap, or not yet: it leaves now, and is gone once.  The
    # texts that came after a cut were answered NO_SUCH_USER; a USERS
    # round trip, answered after all of them, ends the episode.
    r.close()
    _skip_missed(sender, name, lambda g: g == tntest.disconnected(name))
    sender.send(tntest.req("USERS"))
    _skip_missed(sender, name, lambda g: g.get("type") == "USER_LIST")
    return int(m.group(1)), int(m.group(2))


def _skip_missed(sender, name, done):
    """Reads sender's lines until one that done() accepts, passing over
    the NO_SUCH_USER answers for texts to name; any other line fails."""
    for _ in range(100):
        got = sender.recv(timeout=T * 3)
        if done(got):
            return
        assert got.get("type") == "RESPONSE" and got.get("extra") == name \
            and got.get("result") == "NO_SUCH_USER", got
    raise AssertionError("no end after 100 lines")


def test_pace_min_rate_and_window_are_honoured_and_live():
    """A reader that takes nothing is found too slow after pace-window-ms
    against pace-min-rate: first 200 ms and 1 GiB/s from the command
    line's file, then, after a SIGHUP, 1500 ms (more than the default
    1000) and 2048 for the next one."""
    d = ops.tempdir("tpace")
    conf = _conf(os.path.join(d, "t.conf"),
                 "pace-window-ms = 200\npace-min-rate = 1073741824\n")
    s = tntest.Server("-c", conf, "--max-queue", "65536",
                      "--stall-timeout", "0", "--rate-limit", "0")
    sender = tntest.identify_new(s, "sender")
    ms, rate = _slow_reader_episode(s, sender, "slow1")
    assert rate == 1073741824 and ms >= 200, (ms, rate)
    _conf(conf, "pace-window-ms = 1500\npace-min-rate = 2048\n")
    new = sighup(s)
    assert any("pace-min-rate 2048, pace-window-ms 1500" in line
               for line in new), new
    ms, rate = _slow_reader_episode(s, sender, "slow2")
    assert rate == 2048 and ms >= 1500, (ms, rate)
    # The sender was let go each time: it is served.
    assert "sender" in sender.users()


if __name__ == "__main__":
    tntest.main(globals())
