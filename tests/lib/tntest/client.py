"""The protocol client: Client, one TCP connection that reads whole lines
and checks every line the server sends against protocol.md, and the
steps most tests take with it (identify, rooms, barriers)."""

import collections
import select
import socket
import struct
import time

from . import runner
from .config import LOOPBACK, QUIET, QUIET_MIN, QUIET_RTTS, TIMEOUT
from .daemon import Server
from .proto import (canon, check_line, compact, invitation, joined_room,
                    match, new_user, req, resp, text_from)

class Closed(AssertionError):
    pass


# The last IDENTIFY round trips (send to reply, through worker and hub,
# and Redis in a cluster), each server's first left out (it waits for
# a worker to be forked): the baseline of quiet().
_rtts = collections.deque(maxlen=32)


def quiet():
    """How long "nothing arrives" waits: QUIET_RTTS times the median of
    the recent IDENTIFY round trips of this run, so that what the server
    would send has had many round trips' time to come, on a loaded
    machine too; within [QUIET_MIN, QUIET] (QUIET before any)."""
    if not _rtts:
        return QUIET
    median = sorted(_rtts)[len(_rtts) // 2]
    return min(QUIET, max(QUIET_MIN, QUIET_RTTS * median))


def _wait_fd(sock, events, timeout):
    """poll() (not select(), which fails past fd 1023) one socket; true if
    it is ready (or in error) before timeout seconds."""
    p = select.poll()
    p.register(sock, events)
    return bool(p.poll(max(0, int(timeout * 1000 + 0.999))))


def recv_ready(sock):
    """(data, reset) from a non-blocking socket that select() found
    ready: data None if nothing came after all, b"" at the end (reset
    true when that end was a reset)."""
    try:
        return sock.recv(262144), False
    except BlockingIOError:
        return None, False
    except ConnectionResetError:
        return b"", True


def send_some(sock, data):
    """Sends what a non-blocking socket takes now; returns the rest."""
    try:
        n = sock.send(data)
    except BlockingIOError:
        n = 0
    return data[n:]


def read_line(sock, timeout=TIMEOUT):
    """What a plain (blocking) socket sends up to its first "\\n", its
    end or timeout s, whichever comes first."""
    sock.settimeout(timeout)
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf and time.monotonic() < deadline:
        d = sock.recv(4096)
        if not d:
            break
        buf += d
    return buf


def port_of(server):
    """The port of a Server, or the port given."""
    return server.port if isinstance(server, Server) else int(server)


class Client:
    """One TCP connection to the daemon."""

    def __init__(self, server, host=LOOPBACK, port=None, rcvbuf=None,
                 name=None):
        if port is None:
            port = port_of(server)
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
        self.server = server  # Server.stop closes it first
        runner.ctx().clients.append(self)

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

    def expect_nothing(self, timeout=None):
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
        t0 = time.monotonic()
        self.send(req("IDENTIFY", username=name))
        self.expect(resp("IDENTIFY", "SUCCESS", name), timeout)
        server = getattr(self, "server", None)
        if not isinstance(server, Server) or server.__dict__.get(
                "rtt_seen"):
            _rtts.append(time.monotonic() - t0)
        else:
            server.rtt_seen = True
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
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()


def expect_nothing(*clients, timeout=None):
    """Asserts that none of the clients receives anything (data or EOF)
    within timeout seconds (one wait shared by all; quiet() if None)."""
    if timeout is None:
        timeout = quiet()
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


def settle(*clients):
    """What the clients caused has reached every node of their servers
    (a no-op on one node: see tntest.cluster.Cluster.settle)."""
    done = []
    for c in clients:
        s = getattr(c, "server", None)
        if hasattr(s, "settle") and s not in done:
            s.settle()
            done.append(s)


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
    # The members' own joins have reached client's node first: across
    # nodes it would otherwise be told of a join it came after.
    settle(client)
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

