#!/usr/bin/env python3
"""Logs an admin can use (issue 16): one line when a user identifies,
one line when a session ends that names who, from where, why, how long
and how much each way; names escaped; crashes and a killed hub named by
their signal; log levels named; the root warning a whole sentence; the
worker's end-of-session report, which a compromised worker may forge,
never crashes the master or counts twice."""

import ctypes
import os
import re
import signal
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest import ops  # noqa: E402
import tntest  # noqa: E402
from tntest import req, resp  # noqa: E402
from tntest.steps import connect_as  # noqa: E402

T = tntest.TIMEOUT
END_RE = (r"info: session (\S+) from 127\.0\.0\.1:%d ended: (.+?) after "
          r"(\d+)\.(\d) s, in (\d+) lines/(\d+) bytes, out (\d+) lines/"
          r"(\d+) bytes$")


class Counted(tntest.Client):
    """A client that counts what it sends: lines and bytes."""

    def __init__(self, server, **kw):
        self.sent_bytes = 0
        self.sent_lines = 0
        super().__init__(server, **kw)

    def _sendall(self, data, timeout=T * 3):
        self.sent_bytes += len(data)
        self.sent_lines += bytes(data).count(b"\n")
        return super()._sendall(data, timeout)

    def got_bytes(self):
        return sum(len(x) for x in self.received) + len(self.buf)

    def got_lines(self):
        return len(self.received)


def end_line(s, c, timeout=T):
    """The end line of c's session, parsed: (name, reason, seconds, lines
    in, bytes in, lines out, bytes out)."""
    m = s.wait_log(END_RE % c.local_port, timeout=timeout)
    return (m.group(1), m.group(2), int(m.group(3)) + int(m.group(4)) / 10,
            int(m.group(5)), int(m.group(6)), int(m.group(7)),
            int(m.group(8)))


def assert_end(s, c, name, reason, timeout=T, exact_out=True):
    """c's session ended as said, with the counts c saw."""
    got = end_line(s, c, timeout)
    assert got[0] == name and got[1] == reason, \
        "expected %s/%s, got %r" % (name, reason, got)
    assert (got[3], got[4]) == (c.sent_lines, c.sent_bytes), \
        "in: logged %d lines/%d bytes, client sent %d/%d" \
        % (got[3], got[4], c.sent_lines, c.sent_bytes)
    if exact_out:
        assert (got[5], got[6]) == (c.got_lines(), c.got_bytes()), \
            "out: logged %d lines/%d bytes, client got %d/%d" \
            % (got[5], got[6], c.got_lines(), c.got_bytes())
    return got


def no_raw_controls(s):
    """No byte of a log line is a control character or past ASCII: peer
    data is escaped (the reader thread decodes as UTF-8)."""
    for line in s.log:
        bad = [ch for ch in line if ord(ch) < 0x20 or ord(ch) >= 0x7f]
        assert not bad, "unescaped %r in log line %r" % (bad, line)


# ---------------------------------------------------------------------------
# The identified line and each end reason

def test_identified_and_quit():
    s = tntest.Server()
    a = Counted(s)
    a.identify("alice")
    s.wait_log(r"info: alice identified from 127\.0\.0\.1:%d$"
               % a.local_port)
    b = Counted(s)
    b.identify("bob")
    a.expect(tntest.new_user("bob"))
    a.send(req("PUBLIC_TEXT", text="hello all"))
    b.expect(tntest.public_from("alice", "hello all"))
    a.send(req("DISCONNECT"))
    a.expect_closed(allow_lines=True)
    got = assert_end(s, a, "alice", "quit")
    assert got[3] == 3, got          # IDENTIFY, PUBLIC_TEXT, DISCONNECT
    # The hub no longer says "dropped" for a worker that quit.
    assert "dropped" not in s.log_text(), s.log_text()


def test_client_closed():
    s = tntest.Server()
    a = Counted(s)
    a.identify("carol")
    a.sock.shutdown(socket.SHUT_WR)
    a.expect_closed(allow_lines=True)
    assert_end(s, a, "carol", "client closed")


def test_invalid_message():
    s = tntest.Server()
    a = Counted(s)
    a.identify("dave")
    a.send(b"this is not json\n")
    a.expect_invalid_close()
    assert_end(s, a, "dave", "invalid message")
    # A request before IDENTIFY is invalid too, and the session
    # unidentified.
    b = Counted(s)
    b.send(req("USERS"))
    b.expect_invalid_close("NOT_IDENTIFIED")
    assert_end(s, b, "(unidentified)", "invalid message")
    assert "dropped" not in s.log_text(), s.log_text()


def test_line_too_long():
    s = tntest.Server("--max-line", "100")
    a = Counted(s)
    a.identify("erin")
    a.send(b"x" * 300 + b"\n")
    a.expect_invalid_close()
    got = end_line(s, a)
    assert got[:2] == ("erin", "invalid message"), got
    # The over-long line is one line in; its bytes all came in.
    assert got[3:5] == (2, a.sent_bytes), (got, a.sent_bytes)


def test_limit_hits_reported():
    # With a burst of 1, each line after the first of the batch waits for
    # a token (3), and the first too if the batch was read before the
    # token came (4): each counts as held back by the rate limit, once.
    s = tntest.Server("--log-level", "debug", "--rate-limit", "20",
                      "--rate-burst", "1")
    a = Counted(s)
    a.identify("rita")
    a.send(compact_lines(req("USERS"), req("USERS"), req("USERS"),
                         req("DISCONNECT")))
    a.expect_closed(allow_lines=True)
    assert a.got_lines() == 4, a.received
    s.wait_log(r"debug: worker \d+ \(127\.0\.0\.1:%d\): session report: "
               r"quit, in 5/%d, out 4/%d, hits: rate-limit [34]$"
               % (a.local_port, a.sent_bytes, a.got_bytes()))
    # The limits that end a session: max-line, login-timeout.
    s2 = tntest.Server("--log-level", "debug", "--max-line", "100",
                       "--login-timeout", "1")
    b = Counted(s2)
    b.send(b"y" * 200 + b"\n")
    b.expect_invalid_close()
    s2.wait_log(r"\(127\.0\.0\.1:%d\): session report: invalid message, "
                r"in 1/201, out 1/\d+, hits: max-line 1$" % b.local_port)
    c = Counted(s2)
    c.expect_closed(timeout=T + 2)
    s2.wait_log(r"\(127\.0\.0\.1:%d\): session report: login timeout, "
                r"in 0/0, out 0/0, hits: login-timeout 1$" % c.local_port)


def compact_lines(*msgs):
    return b"".join(tntest.compact(m) for m in msgs)


def test_login_timeout():
    s = tntest.Server("--login-timeout", "1")
    a = Counted(s)
    a.expect_closed(timeout=T + 2)
    got = assert_end(s, a, "(unidentified)", "login timeout")
    assert got[2] >= 0.9, got
    assert got[3:] == (0, 0, 0, 0), got


def test_queue_over_the_limit():
    # A client that reads nothing, with every buffer small: the texts for
    # it go over --max-queue, and it is cut.
    s = tntest.Server("--max-queue", "4096", "--stall-timeout", "0",
                      "--send-buffer", "4096")
    slow = Counted(s, rcvbuf=4096)
    slow.identify("slow")
    sender = Counted(s)
    sender.identify("sender")
    slow_line = "x" * 900
    deadline = time.monotonic() + 20
    pat = re.compile(END_RE % slow.local_port)
    n = 0
    while not any(pat.search(x) for x in s.log) and n < 5000:
        assert time.monotonic() < deadline, "slow was never cut"
        sender.send(req("TEXT", username="slow", text=slow_line))
        n += 1
        if n % 50 == 0:
            sender.drain(quiet=0.05)
    slow.expect_closed(timeout=T + 3, allow_lines=True, allow_partial=True)
    got = assert_end(s, slow, "slow", "queue over the limit",
                     exact_out=False)
    # Out counts what was handed to the kernel: at least what arrived.
    assert got[5] >= slow.got_lines() and got[6] >= slow.got_bytes(), \
        (got, slow.got_lines(), slow.got_bytes())


def test_server_shutdown():
    s = tntest.Server()
    a = Counted(s)
    a.identify("frank")
    assert s.terminate() == 0
    got = end_line(s, a)
    assert got[:2] == ("frank", "server shutdown"), got


def test_server_error_after_hub_restart():
    # A worker that stays away (stopped) past the new hub's grace period
    # lost its row: the hub says CLOSE "gone", a server error.
    s = tntest.Server()
    a = Counted(s)
    a.identify("gina")
    w = s.worker_pid(a)
    hub = s.hub_pid()
    os.kill(w, signal.SIGSTOP)
    try:
        os.kill(hub, signal.SIGKILL)
        s.wait_log(r"hub started, pid (?!%d)\d+" % hub, timeout=T + 2)
        s.wait_log(r"dropped: did not come back", timeout=10)
    finally:
        os.kill(w, signal.SIGCONT)
    a.expect_closed(timeout=T + 3, allow_lines=True)
    got = end_line(s, a, timeout=T + 3)
    assert got[:2] == ("gina", "server error"), got


TALKNETCTL = os.path.join(os.path.dirname(tntest.TALKNETD), "talknetctl")


def test_kicked():
    # talknetctl drives the kick; the worker maps the hub's CLOSE_KICKED
    # to "kicked" (also unit-tested in check_session).
    if not os.access(TALKNETCTL, os.X_OK):
        raise tntest.Skip("talknetctl is not built")
    s = tntest.Server()
    a, b = connect_as(Counted, s, "mallory", "henry")
    ctl = s.opts[s.opts.index("--control") + 1]
    argv = [TALKNETCTL, "-s", ctl, "kick", "mallory"]
    rc, out, err = tntest.run_program(argv, 10)
    assert rc == 0, (rc, out, err)
    a.expect_closed(allow_lines=True)
    b.expect(tntest.disconnected("mallory"))
    got = end_line(s, a)
    assert got[:2] == ("mallory", "kicked"), got


# ---------------------------------------------------------------------------
# Escaping

def test_hostile_name_escaped():
    s = tntest.Server()
    # Not ASCII, a right-to-left override, a backslash and a format.
    name = "\u00e9\u202e\\%s"
    a = Counted(s)
    a.identify(name)
    esc = r"\\303\\251\\342\\200\\256\\\\%s"
    s.wait_log(r"info: %s identified from 127\.0\.0\.1:%d$"
               % (esc, a.local_port))
    # Control characters and ANSI escapes never make a name: refused.
    b = Counted(s)
    b.send(req("IDENTIFY", username="\u001b[2J"))
    b.expect_invalid_close()
    a.send(req("DISCONNECT"))
    a.expect_closed(allow_lines=True)
    got = end_line(s, a)
    assert got[0] == esc.replace("\\\\", "\\"), got
    end_line(s, b)
    no_raw_controls(s)


# ---------------------------------------------------------------------------
# How processes ended: named signals

def test_worker_crash_named():
    s = tntest.Server()
    a, b = connect_as(Counted, s, "ivan", "judy")
    w = s.worker_pid(b)
    # AddressSanitizer catches SIGSEGV and exits 1 with a report; it
    # leaves SIGILL to the kernel.
    sig = signal.SIGSEGV
    with open("/proc/%d/maps" % w) as f:
        if "libasan" in f.read():
            sig = signal.SIGILL
    os.kill(w, sig)
    s.wait_log(r"warning: worker %d \(127\.0\.0\.1:%d\) crashed: killed by "
               r"%s( \(core dumped\))?$" % (w, b.local_port, sig.name))
    a.expect(tntest.disconnected("judy"))
    # It sent no report, and logged no end line.
    assert not re.search(END_RE % b.local_port, s.log_text(), re.M)
    assert "signal 11" not in s.log_text()


def test_worker_exit_without_report_named():
    # A worker that exits on an error of its own (fatal()) sends no
    # report: the master names how it ended.  gdb makes it call _exit(3).
    import shutil
    gdb = shutil.which("gdb")
    if gdb is None or os.geteuid() != 0:
        raise tntest.Skip("needs gdb, and root to attach to a worker")
    s = tntest.Server()
    a = Counted(s)
    a.identify("kim")
    w = s.worker_pid(a)
    rc, out, err = ops.run([gdb, "-nx", "-batch", "-p", str(w), "-ex",
                            "call (void)_exit(3)"], timeout=120)
    s.wait_log(r"warning: worker %d \(127\.0\.0\.1:%d\) exited with status "
               r"3 without ending its session$" % (w, a.local_port),
               timeout=10)
    assert "crashed" not in s.log_text(), s.log_text()


def test_lingering_worker_killed_is_no_crash():
    s = tntest.Server("--login-timeout", "1")
    c = Counted(s)
    w = s.worker_pid(c)
    c.expect_closed(timeout=5)
    os.kill(w, signal.SIGSTOP)
    try:
        s.wait_log(r"info: worker %d \(127\.0\.0\.1:%d\) killed by SIGKILL: "
                   r"still running \d+ ms after its session ended"
                   % (w, c.local_port), timeout=6)
    finally:
        if tntest.pid_alive(w):
            os.kill(w, signal.SIGCONT)
    assert "crashed" not in s.log_text(), s.log_text()


def test_hub_kill_named():
    s = tntest.Server()
    hub = s.hub_pid()
    os.kill(hub, signal.SIGKILL)
    s.wait_log(r"warning: hub %d killed by SIGKILL; starting another" % hub)
    s.wait_log(r"hub started, pid (?!%d)\d+" % hub)
    assert "status 0x" not in s.log_text(), s.log_text()


# ---------------------------------------------------------------------------
# Levels and wording

def test_reload_names_the_level():
    conf = ops.conf_file("lvl", "log-level = info\n")
    s = tntest.Server("-c", conf)
    ops.write_file(conf, "log-level = debug\n")
    os.kill(s.pid, signal.SIGHUP)
    s.wait_log(r"info: reloaded: log-level debug, max-line")
    assert not re.search(r"log-level \d", s.log_text()), s.log_text()


def test_root_warning_is_a_sentence():
    if os.geteuid() != 0:
        raise tntest.Skip("the warning is for root only")
    s = tntest.Server()
    s.wait_log(r"warning: running as root without -u USER: the hub and the "
               r"workers, which serve untrusted clients, run as root too; "
               r"start with -u USER to run them as that user instead$")


# ---------------------------------------------------------------------------
# Daemon mode: "listening on" reaches syslog

# In a mount namespace of its own, the daemon's /dev is a tmpfs with the
# host's null, zero, random, urandom and shm, and a /dev/log that is our
# socket: what it sends to syslog, we read.
_SYSLOG_NS = """set -e
mount --bind /dev "$D/olddev"
mount -t tmpfs -o mode=755 tmpfs /dev
for x in null zero full random urandom; do
    touch /dev/$x; mount --bind "$D/olddev/$x" /dev/$x
done
mkdir /dev/shm; mount --bind "$D/olddev/shm" /dev/shm
ln -s "$D/log" /dev/log
exec "$TALKNETD" -l 127.0.0.1:0 -p "$D/pid"
"""


def test_daemon_logs_listening_to_syslog():
    import shutil
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        raise tntest.Skip("needs root and unshare(1) for a private /dev/log")
    d = ops.tempdir("syslog")
    os.mkdir(os.path.join(d, "olddev"))
    r = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    r.bind(os.path.join(d, "log"))
    r.settimeout(T)
    rc, out, err = ops.run(["unshare", "-m", "--propagation", "private",
                            "sh", "-c", _SYSLOG_NS], timeout=20,
                              env={"D": d, "TALKNETD": tntest.TALKNETD})
    pidfile = os.path.join(d, "pid")
    if rc != 0 and not os.path.exists(pidfile):
        r.close()
        raise tntest.Skip("no private mount namespace here: %s" % err[-300:])
    pid = int(open(pidfile).read())
    try:
        assert rc == 0, (rc, err)
        m = re.search(r"info: listening on (127\.0\.0\.1:\d+)", err)
        assert m, err
        got = []
        deadline = time.monotonic() + T
        while time.monotonic() < deadline and \
                not any("hub started" in g for g in got):
            try:
                got.append(r.recv(4096).decode("utf-8", "replace"))
            except socket.timeout:
                break
        want = "talknetd[%d]: info: listening on %s" % (pid, m.group(1))
        assert any(g.endswith(want) for g in got), \
            "syslog got %r, not %r" % (got, want)
        # A session's lines reach syslog too, the end line from a
        # sandboxed worker that reconnects to /dev/log.
        c = Counted(int(m.group(1).rsplit(":", 1)[1]))
        c.identify("sam")
        c.send(req("DISCONNECT"))
        c.expect_closed(allow_lines=True)
        ended = re.compile(r"info: session sam from 127\.0\.0\.1:%d ended: "
                           r"quit after " % c.local_port)
        deadline = time.monotonic() + T
        while time.monotonic() < deadline and \
                not any(ended.search(g) for g in got):
            try:
                got.append(r.recv(4096).decode("utf-8", "replace"))
            except socket.timeout:
                break
        assert any(re.search(r"info: sam identified from 127\.0\.0\.1:%d$"
                             % c.local_port, g) for g in got), got
        assert any(ended.search(g) for g in got), got
    finally:
        ops.kill_tree(pid, tntest.tree_pids(pid))
        r.close()


# ---------------------------------------------------------------------------
# A compromised worker's report

SYS_PIDFD_GETFD = 438          # the same number on every architecture
RELEASE_FD = 4                 # WORKER_RELEASE_FD


def _grab_release_socket(worker):
    """The worker's release socket (its fd 4), taken with pidfd_getfd:
    we then send on it as that worker would.  Needs root (the workers
    are not dumpable) and Linux 5.6."""
    if os.geteuid() != 0:
        raise tntest.Skip("taking a worker's fd needs root")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    try:
        pidfd = os.pidfd_open(worker)
    except (AttributeError, OSError) as e:
        raise tntest.Skip("pidfd_open: %s" % e)
    try:
        fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, RELEASE_FD, 0)
        if fd < 0:
            raise tntest.Skip("pidfd_getfd: %s"
                              % os.strerror(ctypes.get_errno()))
    finally:
        os.close(pidfd)
    return socket.socket(fileno=fd)


def _send_as(sock, pid, data):
    """One datagram that the kernel stamps as sent by pid (root may)."""
    creds = struct.pack("iII", pid, os.getuid(), os.getgid())
    sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS,
                           creds)])


REPORT = struct.Struct("=HHI4Q7Q")


def test_forged_reports():
    s = tntest.Server("--log-level", "debug", "--max-clients-per-ip", "4")
    victims = []
    for i in range(4):
        c = Counted(s)
        c.identify("v%d" % i)
        victims.append((c, s.worker_pid(c)))
    sock = _grab_release_socket(victims[0][1])
    bad = [b"\0",                                   # short (the old byte)
           b"\0" * 4096,                            # oversized
           REPORT.pack(1, 8, 0, 1, 1, 1, 1, *[0] * 7),   # "crashed"
           REPORT.pack(1, 1, 0, 10, 1, 0, 0, *[0] * 7)]  # lines > bytes
    for (c, w), data in zip(victims, bad):
        _send_as(sock, w, data)
        s.wait_log(r"warning: worker %d \(127\.0\.0\.1:%d\): bad session "
                   r"report \(%d bytes\), counted as unknown"
                   % (w, c.local_port, len(data)))
    # A second datagram, even a well-formed one, counts for nothing.
    c0, w0 = victims[0]
    _send_as(sock, w0, REPORT.pack(1, 1, 0, 1, 1, 1, 1, *[0] * 7))
    sock.close()
    # Their places were given back: four more from this address fit.
    more = [Counted(s).identify("m%d" % i) for i in range(4)]
    # The victims' own reports, later, are second datagrams: ignored.
    for c, w in victims:
        c.send(req("DISCONNECT"))
        c.expect_closed(allow_lines=True)
        end_line(s, c)
    time.sleep(0.3)
    for c, w in victims:
        assert not re.search(r"worker %d \(.*\): session report:" % w,
                             s.log_text()), s.log_text()
        assert len(re.findall(r"worker %d \(.*\): bad session report" % w,
                              s.log_text())) == 1
    # An honest session still reports, and the master is fine.
    more[0].send(req("DISCONNECT"))
    more[0].expect_closed(allow_lines=True)
    s.wait_log(r"debug: worker \d+ \(127\.0\.0\.1:%d\): session report: "
               r"quit, in 2/\d+" % more[0].local_port)
    assert s.alive()
    d = Counted(s)
    d.identify("after")


if __name__ == "__main__":
    tntest.main(globals())
