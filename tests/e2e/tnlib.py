"""tnlib: the end-to-end test harness for talknetd (Python 3, stdlib only).

A test file defines functions named test_* and ends with

    if __name__ == "__main__":
        tnlib.main(globals())

main() runs the functions in source order and prints "PASS name" or
"FAIL name" (with the traceback and, for failures only, the daemon's log).
It exits 0 when all ran and passed, 1 when one failed, 77 when all skipped.

Server starts `$TALKNETD -f -l 127.0.0.1:0 ...` and waits for its
"listening on ADDR:PORT" log lines.  Client is one TCP connection that
reads whole lines and checks every line the server sends against the
framing and encoding rules of protocol.md.  Every wait has a timeout.
"""

import atexit
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

# ---------------------------------------------------------------------------
# Configuration

TALKNETD = os.environ.get("TALKNETD") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "talknetd")
TALKNETD = os.path.abspath(TALKNETD)

TIMEOUT = float(os.environ.get("TN_TIMEOUT", "3"))   # one expected message
QUIET = float(os.environ.get("TN_QUIET", "0.25"))    # "nothing arrives"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
TEST_TIMEOUT = int(os.environ.get("TN_TEST_TIMEOUT", "120"))

SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "runtime error:",
                      "LeakSanitizer")

LOOPBACK = "127.0.0.1"

# The daemon binds its hub's socket at $TMPDIR/talknetd.XXXXXX/hub.sock,
# and the tests bind theirs in temporary directories too; a Unix
# socket's path has room for 107 bytes (sun_path).  Where TMPDIR is deep
# (a CI runner's workspace) every test would fail before its first line,
# so they all run under a short private TMPDIR instead.
SHORT_TMPDIR = 40


def use_short_tmpdir():
    """Points TMPDIR (for this process and every child) at a private
    directory under /tmp if the current one leaves too little room for
    a socket's path; the directory is removed at exit."""
    if len(tempfile.gettempdir()) <= SHORT_TMPDIR:
        return
    try:
        d = tempfile.mkdtemp(prefix="tn-", dir="/tmp")
    except OSError:
        return
    # Sticky and open to all, as /tmp is: daemons run as another user
    # (-u nobody) make their run directories here too.
    os.chmod(d, 0o1777)
    os.environ["TMPDIR"] = d
    tempfile.tempdir = d
    atexit.register(shutil.rmtree, d, True)


use_short_tmpdir()

# ---------------------------------------------------------------------------
# Messages, as protocol.md spells them (key order matters)


# Options that switch off the flood limits meant for the internet.
LIFT_LIMITS = ["--max-clients-per-ip", "0", "--rate-limit", "0",
               "--max-rooms-per-user", "0"]


def compact(obj):
    """The exact bytes the server must send for obj (when no escapes differ)."""
    return json.dumps(obj, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8") + b"\n"


def req(type_, **fields):
    d = {"type": type_}
    d.update(fields)
    return d


def resp(operation, result, extra=None):
    d = {"type": "RESPONSE", "operation": operation, "result": result}
    if extra is not None:
        d["extra"] = extra
    return d


INVALID = resp("INVALID", "INVALID")
NOT_IDENTIFIED = resp("INVALID", "NOT_IDENTIFIED")


def new_user(name):
    return {"type": "NEW_USER", "username": name}


def new_status(name, status):
    return {"type": "NEW_STATUS", "username": name, "status": status}


def user_list(users):
    return {"type": "USER_LIST", "users": dict(users)}


def text_from(name, text):
    return {"type": "TEXT_FROM", "username": name, "text": text}


def public_from(name, text):
    return {"type": "PUBLIC_TEXT_FROM", "username": name, "text": text}


def invitation(name, room):
    return {"type": "INVITATION", "username": name, "roomname": room}


def joined_room(room, name):
    return {"type": "JOINED_ROOM", "roomname": room, "username": name}


def room_user_list(room, users):
    return {"type": "ROOM_USER_LIST", "roomname": room, "users": dict(users)}


def room_text_from(room, name, text):
    return {"type": "ROOM_TEXT_FROM", "roomname": room, "username": name,
            "text": text}


def left_room(room, name):
    return {"type": "LEFT_ROOM", "roomname": room, "username": name}


def disconnected(name):
    return {"type": "DISCONNECTED", "username": name}


def canon(obj):
    """A hashable, order-free form of a message, for multiset comparisons."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False)


# ---------------------------------------------------------------------------
# Checks of every line the server sends

class ProtocolError(AssertionError):
    pass


def _scan_compact(line):
    """Checks a JSON line (bytes, without "\\n") token by token: no
    whitespace between tokens; inside strings only the escapes the server
    may use: \\" \\\\ and escapes of control characters below 0x20."""
    in_str = False
    i = 0
    n = len(line)
    while i < n:
        c = line[i]
        if in_str:
            if c == 0x5C:  # backslash
                if i + 1 >= n:
                    raise ProtocolError("dangling backslash in %r" % line)
                e = line[i + 1]
                if e in b'"\\':
                    i += 2
                    continue
                if e in b"bfnrt":
                    i += 2
                    continue
                if e == 0x75:  # u
                    hexd = line[i + 2:i + 6]
                    try:
                        cp = int(hexd.decode("ascii"), 16)
                    except (ValueError, UnicodeDecodeError):
                        raise ProtocolError("bad \\u escape in %r" % line)
                    if cp >= 0x20:
                        raise ProtocolError(
                            "server escaped U+%04X, which protocol.md says "
                            "is sent as raw UTF-8: %r" % (cp, line))
                    i += 6
                    continue
                raise ProtocolError("server used escape \\%s, protocol.md "
                                    "sends it raw: %r" % (chr(e), line))
            if c == 0x22:
                in_str = False
            i += 1
            continue
        if c == 0x22:
            in_str = True
        elif c in b" \t\r\n":
            raise ProtocolError("whitespace between JSON tokens (not compact): "
                                "%r" % line)
        i += 1
    if in_str:
        raise ProtocolError("unterminated string in %r" % line)


def _no_dup_keys(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ProtocolError("duplicate key %r in server message" % k)
        d[k] = v
    return d


def check_line(raw):
    """Checks one server line (bytes ending in exactly one "\\n") and returns
    it parsed.  Raises ProtocolError on any deviation from protocol.md."""
    if not raw.endswith(b"\n"):
        raise ProtocolError("line without \\n: %r" % raw)
    body = raw[:-1]
    for b in body:
        if b < 0x20:
            raise ProtocolError("raw control byte 0x%02x in server line "
                                "(must be escaped; never \\0 or \\r): %r"
                                % (b, raw))
    try:
        text = body.decode("utf-8", errors="strict")
    except UnicodeDecodeError as e:
        raise ProtocolError("server sent invalid UTF-8 (%s): %r" % (e, raw))
    try:
        obj = json.loads(text, object_pairs_hook=_no_dup_keys)
    except ValueError as e:
        raise ProtocolError("server sent a line that is not JSON (%s): %r"
                            % (e, raw))
    if not isinstance(obj, dict):
        raise ProtocolError("server sent JSON that is not an object: %r" % raw)
    if not isinstance(obj.get("type"), str):
        raise ProtocolError("server message without a string type: %r" % raw)
    _scan_compact(body)
    return obj


def _has_ctrl_or_nested(obj):
    for v in obj.values():
        if isinstance(v, dict):
            return True
        if isinstance(v, str) and any(ord(ch) < 0x20 for ch in v):
            return True
    return False


def match(raw, got, expected):
    """Asserts that a received line equals the expected message.  Exact
    bytes when they are unambiguous; otherwise the same content with the
    same key order."""
    if isinstance(expected, (bytes, bytearray)):
        if raw != bytes(expected):
            raise AssertionError("expected line %r\n          got %r"
                                 % (bytes(expected), raw))
        return
    if raw == compact(expected):
        return
    if got != expected:
        raise AssertionError("expected %s\n     got %r"
                             % (compact(expected)[:-1].decode(), raw))
    if list(got.keys()) != list(expected.keys()):
        raise AssertionError("right content, wrong key order: expected %r, "
                             "got %r" % (list(expected.keys()), raw))
    if not _has_ctrl_or_nested(expected):
        raise AssertionError("right content, wrong bytes: expected %r, got %r"
                             % (compact(expected), raw))


# ---------------------------------------------------------------------------
# Per-test bookkeeping: everything a test opens is closed by the runner

class _Ctx:
    def __init__(self):
        self.servers = []
        self.clients = []
        self.procs = []


_ctx = _Ctx()


class Skip(Exception):
    pass


def start_program(argv):
    """Starts a program with stdin closed and its output piped; the runner
    kills it if it is still running when the test ends."""
    p = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _ctx.procs.append(p)
    return p


def finish_program(p, timeout):
    """Waits for a started program; returns (status, stdout, stderr).  One
    that keeps running is killed and the test fails, as it does on a
    sanitizer report."""
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate(timeout=5)
        raise AssertionError("%s still running after %d s; killed. "
                             "stderr: %r" % (" ".join(p.args), timeout,
                                             err[-2000:]))
    out = out.decode("utf-8", "replace")
    err = err.decode("utf-8", "replace")
    for pat in SANITIZER_PATTERNS:
        assert pat not in err, "sanitizer report:\n%s" % err
    return p.returncode, out, err


def run_program(argv, timeout):
    """Runs a program to its end: start_program, then finish_program."""
    return finish_program(start_program(argv), timeout)


# ---------------------------------------------------------------------------
# /proc helpers

def proc_stat(pid):
    """(state, ppid) of pid, or None if it does not exist."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    rest = data[data.rfind(")") + 2:].split()
    return rest[0], int(rest[1])


def proc_title(pid):
    """The process title from /proc/PID/cmdline, trailing NULs/spaces
    stripped, inner NULs shown as spaces; None if the process is gone."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    data = data.rstrip(b"\0 ").replace(b"\0", b" ").rstrip(b" ")
    return data.decode("utf-8", "replace")


def all_pids():
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            out.append(int(name))
    return out


def _ppid_map():
    """{pid: ppid} of every process, from one scan of /proc."""
    m = {}
    for p in all_pids():
        st = proc_stat(p)
        if st:
            m[p] = st[1]
    return m


def children_of(pid, ppids=None):
    """Direct children of pid (zombies included)."""
    if ppids is None:
        ppids = _ppid_map()
    return sorted(p for p, pp in ppids.items() if pp == pid)


def descendants_of(pid):
    ppids = _ppid_map()
    kids = {}
    for p, pp in ppids.items():
        kids.setdefault(pp, []).append(p)
    out = []
    todo = [pid]
    seen = {pid}
    while todo:
        for k in kids.get(todo.pop(), []):
            if k not in seen:
                seen.add(k)
                out.append(k)
                todo.append(k)
    return sorted(out)


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    st = proc_stat(pid)
    return st is not None and st[0] != "Z"


def wait_until(pred, timeout, interval=0.02, what="condition"):
    """Polls pred() until it returns a true value (returned) or raises
    AssertionError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            if callable(what):
                what = what()
            raise AssertionError("timed out after %.1f s waiting for %s"
                                 % (timeout, what))
        time.sleep(interval)


# ---------------------------------------------------------------------------
# The daemon

_LISTEN_RE = re.compile(r"listening on (\[[^\]]*\]|[^\s\[\]]+?):(\d+)")


def control_path():
    """A control socket path of the caller's own (talknetctl): daemons of
    tests that run at once never share the default /run/talknetd/control."""
    d = tempfile.mkdtemp(prefix="tnc-")
    # Sticky and open to all, as /tmp is: some tests start the daemon
    # as another user (setpriv), and it must bind its socket here.
    os.chmod(d, 0o1777)
    atexit.register(shutil.rmtree, d, True)
    return os.path.join(d, "ctl")


def control_opts(opts):
    """["--control", PATH] unless opts set one already."""
    if "--control" in opts:
        return []
    return ["--control", control_path()]


class Server:
    """A talknetd in the foreground on loopback, port chosen by the kernel."""

    def __init__(self, *opts, listen=("127.0.0.1:0",), start=True, env=None):
        self.opts = list(opts)
        self.listen = list(listen)
        self.env = env         # added to the daemon's environment
        self.opts = control_opts(self.opts) + self.opts
        self.control = self.opts[self.opts.index("--control") + 1]
        self.proc = None
        self.pid = None
        self.log = []          # decoded stderr lines
        self.addrs = []        # [(host, port)] from "listening on" lines
        self.port = None
        self.problems = []     # reasons to fail the test, found at stop
        self.exit_status = None
        self.stopped = False
        self.terminated = False
        self._cond = threading.Condition()
        self._threads = []
        self._eof = 0
        _ctx.servers.append(self)
        if start:
            self.start()

    def argv(self):
        # Every test client comes from 127.0.0.1 and many send fast: lift
        # the per-address cap and the rate limit unless a test sets them.
        a = [TALKNETD, "-f"] + LIFT_LIMITS
        for l in self.listen:
            a += ["-l", l]
        return a + self.opts

    def _reader(self, stream, prefix):
        try:
            for raw in iter(stream.readline, b""):
                line = prefix + raw.decode("utf-8", "replace").rstrip("\n")
                with self._cond:
                    self.log.append(line)
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self._eof += 1
                self._cond.notify_all()

    def start(self):
        if not os.access(TALKNETD, os.X_OK):
            raise Skip("talknetd not found at %s" % TALKNETD)
        env = dict(os.environ, **self.env) if self.env else None
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        self.pid = self.proc.pid
        for stream, prefix in ((self.proc.stderr, ""),
                               (self.proc.stdout, "[stdout] ")):
            t = threading.Thread(target=self._reader, args=(stream, prefix),
                                 daemon=True)
            t.start()
            self._threads.append(t)
        want = len(self.listen)
        deadline = time.monotonic() + START_TIMEOUT
        with self._cond:
            while True:
                self.addrs = []
                for line in self.log:
                    m = _LISTEN_RE.search(line)
                    if m:
                        self.addrs.append((m.group(1).strip("[]"),
                                           int(m.group(2))))
                if len(self.addrs) >= want:
                    break
                if self.proc.poll() is not None:
                    raise AssertionError(
                        "talknetd exited with status %s before listening"
                        % self.proc.returncode)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "talknetd did not log 'listening on' within %.0f s"
                        % START_TIMEOUT)
                self._cond.wait(min(left, 0.1))
        self.port = self.addrs[0][1]
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def log_text(self):
        with self._cond:
            return "\n".join(self.log)

    def wait_log(self, pattern, timeout=TIMEOUT):
        """Waits for a log line matching the regex; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.log:
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no log line matching %r within "
                                         "%.1f s" % (pattern, timeout))
                self._cond.wait(min(left, 0.1))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def children(self):
        """Direct children of the master (zombies included)."""
        return children_of(self.pid)

    def descendants(self):
        return descendants_of(self.pid)

    def titled(self, title):
        """PIDs of the master's descendants whose title is exactly title."""
        return [p for p in self.descendants() if proc_title(p) == title]

    def hub_pid(self, timeout=TIMEOUT):
        pids = wait_until(lambda: self.titled("talknetd: hub"), timeout,
                          what="a 'talknetd: hub' child")
        return pids[0]

    def worker_pid(self, client, timeout=TIMEOUT):
        """The worker serving client: by its title (ends in the client's
        address), or else by who holds the server side of its socket."""
        suffix = " %s:%d" % (LOOPBACK, client.local_port)

        def find():
            hits = []
            for p in self.descendants():
                t = proc_title(p)
                if t and "worker" in t and t.endswith(suffix):
                    hits.append(p)
            if len(hits) == 1:
                return hits[0]
            holders = _socket_holders(self.descendants(), self.port,
                                      client.local_port)
            holders = [p for p in holders if p != self.pid]
            if len(holders) == 1:
                return holders[0]
            return None
        return wait_until(find, timeout, what="the worker of port %d"
                          % client.local_port)

    def terminate(self, timeout=5):
        """Sends SIGTERM and waits for the master's exit; returns its
        status, or None if it is still running after timeout."""
        os.kill(self.pid, signal.SIGTERM)
        self.terminated = True
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, expect_status=0):
        """SIGTERM, wait, SIGKILL if needed; records problems found."""
        if self.proc is None or self.stopped:
            return
        self.stopped = True
        kids = []
        if self.proc.poll() is not None:
            if not self.terminated:
                self.problems.append("talknetd exited on its own during the "
                                     "test (status %s)" % self.proc.returncode)
        else:
            kids = self.descendants()
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.problems.append("talknetd did not exit within %.0f s of "
                                     "SIGTERM; killed" % STOP_TIMEOUT)
                self.proc.kill()
                self.proc.wait(5)
            if expect_status is not None and \
                    self.proc.returncode != expect_status:
                self.problems.append("talknetd exited with status %s after "
                                     "SIGTERM (expected %s)"
                                     % (self.proc.returncode, expect_status))
        self.exit_status = self.proc.returncode
        # Children must go with the master.
        deadline = time.monotonic() + 3
        left = [k for k in kids if pid_alive(k)]
        while left and time.monotonic() < deadline:
            time.sleep(0.02)
            left = [k for k in left if pid_alive(k)]
        for k in left:
            t = proc_title(k) or ""
            if "talknetd" in t:
                self.problems.append("child %d (%r) still running after the "
                                     "master exited; killed" % (k, t))
                try:
                    os.kill(k, signal.SIGKILL)
                except OSError:
                    pass
        for t in self._threads:
            t.join(3)
        for s in (self.proc.stdout, self.proc.stderr):
            try:
                s.close()
            except OSError:
                pass
        self.check_sanitizers()

    def check_sanitizers(self):
        text = self.log_text()
        for pat in SANITIZER_PATTERNS:
            if pat in text:
                self.problems.append("sanitizer report in the daemon log (%r)"
                                     % pat)


def _hexport(p):
    return "%04X" % p


def _socket_holders(pids, server_port, client_port):
    """PIDs among pids holding the server side of 127.0.0.1:client_port."""
    inode = None
    want_local = "0100007F:" + _hexport(server_port)
    want_rem = "0100007F:" + _hexport(client_port)
    try:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[1] == want_local and fields[2] == want_rem:
                    inode = fields[9]
                    break
    except OSError:
        return []
    if not inode or inode == "0":
        return []
    target = "socket:[%s]" % inode
    out = []
    for p in pids:
        try:
            for fd in os.listdir("/proc/%d/fd" % p):
                try:
                    if os.readlink("/proc/%d/fd/%s" % (p, fd)) == target:
                        out.append(p)
                        break
                except OSError:
                    pass
        except OSError:
            pass
    return out


# ---------------------------------------------------------------------------
# A client connection

class Closed(AssertionError):
    pass


def _wait_fd(sock, events, timeout):
    """poll() (not select(), which fails past fd 1023) one socket; true if
    it is ready (or in error) before timeout seconds."""
    p = select.poll()
    p.register(sock, events)
    return bool(p.poll(max(0, int(timeout * 1000 + 0.999))))


def _port_of(server):
    return server.port if isinstance(server, Server) else int(server)


class Client:
    """One TCP connection to the daemon."""

    def __init__(self, server, host=LOOPBACK, port=None, rcvbuf=None,
                 name=None):
        if port is None:
            port = _port_of(server)
        self.host = host
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.local_port = self.sock.getsockname()[1]
        self.buf = b""
        self.eof = False
        self.reset = False
        self.name = name
        self.received = []   # every raw line, for diagnostics
        _ctx.clients.append(self)

    def __repr__(self):
        return "<Client %s :%d>" % (self.name or "-", self.local_port)

    # -- sending

    def send(self, msg, ignore_errors=False):
        """Sends a dict (as one compact JSON line), str or raw bytes."""
        if isinstance(msg, dict):
            data = compact(msg)
        elif isinstance(msg, str):
            data = msg.encode("utf-8")
        else:
            data = bytes(msg)
        try:
            self._sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            if not ignore_errors:
                raise

    def _sendall(self, data, timeout=TIMEOUT * 3):
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        while view:
            try:
                n = self.sock.send(view)
                view = view[n:]
                continue
            except BlockingIOError:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("send blocked for %.0f s" % timeout)
            _wait_fd(self.sock, select.POLLOUT, min(left, 0.5))

    def send_slowly(self, data, chunk=1, pause=0.002):
        """Writes data a few bytes at a time, with small pauses."""
        if isinstance(data, dict):
            data = compact(data)
        for i in range(0, len(data), chunk):
            self._sendall(data[i:i + chunk])
            time.sleep(pause)

    # -- receiving

    def _fill(self, deadline):
        """Reads once; returns False if nothing arrived before deadline."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left < 0:
            left = 0
        if not _wait_fd(self.sock, select.POLLIN, left):
            return False
        try:
            data = self.sock.recv(262144)
        except BlockingIOError:
            return True
        except ConnectionResetError:
            self.eof = True
            self.reset = True
            return True
        if not data:
            self.eof = True
        self.buf += data
        return True

    def recv_raw(self, timeout=TIMEOUT):
        """One raw line (with its "\\n"); AssertionError on timeout/EOF."""
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = self.buf[:i + 1]
                self.buf = self.buf[i + 1:]
                self.received.append(line)
                return line
            if self.eof:
                raise Closed("%r: connection closed while waiting for a "
                             "message%s" % (self, " (partial data %r)"
                                            % self.buf[:200]
                                            if self.buf else ""))
            if not self._fill(deadline) and time.monotonic() >= deadline:
                raise AssertionError("%r: no message within %.1f s%s"
                                     % (self, timeout,
                                        " (partial data %r)" % self.buf[:200]
                                        if self.buf else ""))

    def recv_line(self, timeout=TIMEOUT):
        """(raw, parsed) for the next line; the line is checked."""
        raw = self.recv_raw(timeout)
        return raw, check_line(raw)

    def recv(self, timeout=TIMEOUT):
        return self.recv_line(timeout)[1]

    def expect(self, expected, timeout=TIMEOUT):
        """The next line must be expected (dict, or exact bytes)."""
        raw, got = self.recv_line(timeout)
        try:
            match(raw, got, expected)
        except AssertionError as e:
            raise AssertionError("%r: %s" % (self, e))
        return got

    def expect_unordered(self, expected, timeout=TIMEOUT):
        """The next len(expected) lines must be these messages, any order."""
        want = sorted(canon(e) for e in expected)
        got = []
        for _ in expected:
            got.append(self.recv(timeout))
        if sorted(canon(g) for g in got) != want:
            raise AssertionError("%r: expected (any order)\n  %s\ngot\n  %s"
                                 % (self, "\n  ".join(want),
                                    "\n  ".join(canon(g) for g in got)))
        return got

    def expect_nothing(self, timeout=QUIET):
        expect_nothing(self, timeout=timeout)

    def expect_closed(self, timeout=TIMEOUT, allow_lines=False,
                      allow_partial=False):
        """The server must close the connection: EOF (or a reset) within
        timeout, with no further lines unless allow_lines."""
        deadline = time.monotonic() + timeout
        lines = []
        while True:
            while b"\n" in self.buf:
                i = self.buf.find(b"\n")
                line = self.buf[:i + 1]
                self.buf = self.buf[i + 1:]
                self.received.append(line)
                lines.append(line)
            if lines and not allow_lines:
                raise AssertionError("%r: expected the connection to close, "
                                     "got %r" % (self, lines))
            if self.eof:
                if self.buf and not allow_partial:
                    raise AssertionError("%r: connection closed after a "
                                         "partial line %r" % (self, self.buf))
                return lines
            if not self._fill(deadline) and time.monotonic() >= deadline:
                raise AssertionError("%r: connection still open after %.1f s"
                                     "%s" % (self, timeout,
                                             " (got %r)" % lines
                                             if lines else ""))

    def expect_invalid_close(self, result="INVALID", timeout=TIMEOUT):
        """The INVALID reply (exact bytes), then EOF."""
        self.expect(resp("INVALID", result), timeout)
        self.expect_closed(timeout)

    def drain(self, quiet=QUIET, limit=100000):
        """Reads and returns every parsed line until quiet for `quiet` s."""
        out = []
        while len(out) < limit:
            try:
                out.append(self.recv(quiet))
            except Closed:
                break
            except AssertionError as e:
                if "no message within" in str(e):
                    break
                raise
        return out

    # -- helpers

    def identify(self, name, timeout=TIMEOUT):
        self.send(req("IDENTIFY", username=name))
        self.expect(resp("IDENTIFY", "SUCCESS", name), timeout)
        self.name = name
        return self

    def identify_eventually(self, name, timeout=TIMEOUT):
        """IDENTIFY, retried while the name is still taken (the server may
        take a moment to forget a user that just went away)."""
        deadline = time.monotonic() + timeout
        while True:
            self.send(req("IDENTIFY", username=name))
            got = self.recv(timeout)
            if got == resp("IDENTIFY", "SUCCESS", name):
                self.name = name
                return self
            if got != resp("IDENTIFY", "USER_ALREADY_EXISTS", name) or \
                    time.monotonic() >= deadline:
                raise AssertionError("%r: IDENTIFY %s: got %r"
                                     % (self, name, got))
            time.sleep(0.05)

    def users(self):
        self.send(req("USERS"))
        raw, got = self.recv_line()
        if got.get("type") != "USER_LIST":
            raise AssertionError("%r: expected USER_LIST, got %r"
                                 % (self, raw))
        if list(got.keys()) != ["type", "users"]:
            raise AssertionError("USER_LIST keys out of order: %r" % raw)
        return got["users"]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Closes with a TCP reset (SO_LINGER 0)."""
        import struct
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()


def expect_nothing(*clients, timeout=QUIET):
    """Asserts that none of the clients receives anything (data or EOF)
    within timeout seconds (one wait shared by all)."""
    if len(clients) == 1 and isinstance(clients[0], (list, tuple)):
        clients = clients[0]
    deadline = time.monotonic() + timeout
    live = list(clients)
    for c in live:
        if c.buf:
            raise AssertionError("%r: expected nothing, got %r" % (c, c.buf))
        if c.eof:
            raise AssertionError("%r: expected nothing, but it is closed" % c)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        poller = select.poll()
        byfd = {}
        for c in live:
            poller.register(c.sock, select.POLLIN)
            byfd[c.sock.fileno()] = c
        for fd, _ in poller.poll(max(1, int(left * 1000))):
            c = byfd[fd]
            c._fill(time.monotonic())
            if c.buf:
                raise AssertionError("%r: expected nothing, got %r"
                                     % (c, c.buf[:500]))
            if c.eof:
                raise AssertionError("%r: expected nothing, but the server "
                                     "closed the connection" % c)


def connect_users(server, *names, existing=()):
    """Connects and identifies each name in turn; every client already
    identified (the new ones and `existing`) must get NEW_USER for it."""
    out = []
    existing = list(existing)
    for n in names:
        c = Client(server)
        c.identify(n)
        for o in existing + out:
            o.expect(new_user(n))
        out.append(c)
    return out


def identify_new(server, name, timeout=TIMEOUT):
    """Connects and identifies, retrying while the server refuses the
    connection (--max-clients slots free up when the worker process has
    exited, a moment after the others were told DISCONNECTED) or the name
    is still taken."""
    deadline = time.monotonic() + timeout
    while True:
        c = Client(server)
        try:
            c.send(req("IDENTIFY", username=name))
            got = c.recv(timeout)
        except (Closed, BrokenPipeError, ConnectionResetError):
            got = None
        if got == resp("IDENTIFY", "SUCCESS", name):
            c.name = name
            return c
        if got not in (None, resp("IDENTIFY", "USER_ALREADY_EXISTS", name)) \
                or time.monotonic() >= deadline:
            raise AssertionError("IDENTIFY %s on a new connection: got %r"
                                 % (name, got))
        c.close()
        time.sleep(0.05)


def barrier(sender, *receivers):
    """Orders: sender sends each receiver a private TEXT token and waits for
    it.  Messages from one sender arrive in order, so anything sender caused
    earlier for a receiver has arrived before the token."""
    for r in receivers:
        tok = "sync-%d-%d" % (sender.local_port, time.monotonic_ns())
        sender.send(req("TEXT", username=r.name, text=tok))
        r.expect(text_from(sender.name, tok))


def new_room(owner, room):
    """owner creates room (must succeed)."""
    owner.send(req("NEW_ROOM", roomname=room))
    owner.expect(resp("NEW_ROOM", "SUCCESS", room))


def invite(inviter, room, *invitees):
    """inviter invites the clients; each must get its INVITATION."""
    inviter.send(req("INVITE", roomname=room,
                     usernames=[c.name for c in invitees]))
    for c in invitees:
        c.expect(invitation(inviter.name, room))


def join(client, room, members=()):
    """client joins room (must succeed); members get JOINED_ROOM."""
    client.send(req("JOIN_ROOM", roomname=room))
    client.expect(resp("JOIN_ROOM", "SUCCESS", room))
    for m in members:
        m.expect(joined_room(room, client.name))


def make_room(owner, room, members=(), invited=()):
    """Creates room with owner, the members joined and the others only
    invited.  Returns the list of members (owner first)."""
    new_room(owner, room)
    if members or invited:
        invite(owner, room, *(list(members) + list(invited)))
    cur = [owner]
    for m in members:
        join(m, room, cur)
        cur.append(m)
    return cur


# ---------------------------------------------------------------------------
# The runner

def _alarm(signum, frame):
    raise TimeoutError("test took longer than %d s" % TEST_TIMEOUT)


def _cleanup():
    problems = []
    for c in _ctx.clients:
        c.close()
    for s in _ctx.servers:
        try:
            s.stop()
        except Exception as e:  # keep stopping the others
            problems.append("stopping the daemon failed: %r" % e)
        problems += s.problems
    for p in _ctx.procs:
        if p.poll() is None:
            p.kill()
            p.wait(5)
    return problems


def main(g):
    """Runs every test_* function of the module globals g in source order."""
    tests = sorted((f.__code__.co_firstlineno, name, f)
                   for name, f in g.items()
                   if name.startswith("test_") and callable(f)
                   and hasattr(f, "__code__"))
    only = sys.argv[1:]
    if only:
        tests = [t for t in tests if t[1] in only]
    if not os.access(TALKNETD, os.X_OK):
        print("SKIP all: talknetd not found at %s (set TALKNETD)" % TALKNETD)
        sys.exit(77)
    global _ctx
    signal.signal(signal.SIGALRM, _alarm)
    nfail = npass = nskip = 0
    for _, name, f in tests:
        _ctx = _Ctx()
        t0 = time.monotonic()
        err = None
        skipped = None
        signal.alarm(TEST_TIMEOUT)
        try:
            f()
        except Skip as e:
            skipped = str(e)
        except BaseException:
            if sys.exc_info()[0] is KeyboardInterrupt:
                _cleanup()
                raise
            err = traceback.format_exc()
        finally:
            signal.alarm(0)
        try:
            problems = _cleanup()
        except BaseException:
            problems = ["cleanup failed:\n" + traceback.format_exc()]
        dt = time.monotonic() - t0
        if err or problems:
            nfail += 1
            print("FAIL %s (%.2f s)" % (name, dt))
            if err:
                print(err.rstrip())
            for p in problems:
                print("  problem: %s" % p)
            for i, s in enumerate(_ctx.servers):
                print("  ---- daemon log %d (pid %s, %s) ----"
                      % (i, s.pid, " ".join(s.argv()[1:])))
                lines = s.log
                if len(lines) > 300:
                    print("  ... %d lines skipped" % (len(lines) - 300))
                    lines = lines[-300:]
                for line in lines:
                    print("  | " + line)
            if err and _ctx.servers:
                # Again after the logs, so that a tail shows it.
                print("FAIL %s: %s" % (name, err.rstrip().splitlines()[-1]))
        elif skipped is not None:
            nskip += 1
            print("SKIP %s: %s" % (name, skipped))
        else:
            npass += 1
            print("PASS %s (%.2f s)" % (name, dt))
        sys.stdout.flush()
    print("%s: %d passed, %d failed, %d skipped"
          % (os.path.basename(sys.argv[0]), npass, nfail, nskip))
    if nfail:
        sys.exit(1)
    if nskip and not npass:
        sys.exit(77)
    sys.exit(0)
