"""Steps that several test files take the same way: a server with users,
a refused name, a connection cut off for a bad line, the ways a client
leaves, ROOM_USERS checked as a set, lines read from a non-blocking socket,
a client that floods.
Each keeps the assertions the tests made inline before."""

import contextlib
import os
import signal
import time

from .config import sanitizer_report
from .client import Client, connect_users, expect_nothing
from .daemon import Server
from .proto import (INVALID, check_line, disconnected, left_room,
                    new_status, new_user, public_from, req, resp,
                    room_user_list)


@contextlib.contextmanager
def served(*names, opts=()):
    """A Server started with opts and the names connected and identified
    in turn (connect_users); yields (server, client, ...)."""
    with Server(*opts) as s:
        yield (s, *connect_users(s, *names))


def connect_as(cls, server, *names):
    """connect_users with clients of class cls (a Client subclass): each
    new name must reach every client identified before it."""
    out = []
    for n in names:
        out.append(cls(server).identify(n))
        for o in out[:-1]:
            o.expect(new_user(n))
    return out


def name_taken(server, name):
    """A new connection asks for name that is in use: it gets
    USER_ALREADY_EXISTS and stays open, unidentified.  Returns it."""
    c = Client(server)
    c.send(req("IDENTIFY", username=name))
    c.expect(resp("IDENTIFY", "USER_ALREADY_EXISTS", name))
    return c


def cut_off(c, name, *observers, line=INVALID, quiet=True):
    """c gets line (INVALID by default) and then EOF; each observer is
    told DISCONNECTED name and, with quiet, nothing more."""
    c.expect(line)
    c.expect_closed()
    for o in observers:
        o.expect(disconnected(name))
    if quiet:
        expect_nothing(*observers)


def leave_room(client, room, *members):
    """client sends LEAVE_ROOM; each member left in room gets LEFT_ROOM."""
    client.send(req("LEAVE_ROOM", roomname=room))
    for m in members:
        m.expect(left_room(room, client.name))


def expect_room_users(client, room, users):
    """client asks ROOM_USERS room; the list must equal users (a dict:
    the order of the names is free)."""
    client.send(req("ROOM_USERS", roomname=room))
    got = client.recv()
    assert got == room_user_list(room, users), got


def end_client(c, how, server=None, **closed):
    """Ends c's connection: "disconnect" (DISCONNECT, then EOF), "close",
    "reset" (RST), "invalid" (a non-object line: INVALID, then EOF) or
    "kill" (SIGKILL to its worker, then EOF; needs server).  closed goes
    to expect_closed; returns the lines it saw (none for close, reset)."""
    if how == "disconnect":
        c.send(req("DISCONNECT"))
    elif how == "close":
        c.close()
        return []
    elif how == "reset":
        c.abort()
        return []
    elif how == "invalid":
        c.send(b"[]\n")
        c.expect(INVALID)
    elif how == "kill":
        os.kill(server.worker_pid(c), signal.SIGKILL)
    else:
        raise ValueError(how)
    return c.expect_closed(**closed)


def read_lines(sock, buf, gone):
    """Reads what non-blocking sock has and splits buf + it into lines.
    Returns (complete lines without "\\n", the rest); ([], buf) when
    nothing was ready.  EOF fails with the message gone."""
    try:
        data = sock.recv(1 << 20)
    except BlockingIOError:
        return [], buf
    assert data, gone
    *lines, rest = (buf + data).split(b"\n")
    return lines, rest


def flood(sock, data, stop, seconds, pause=0.0):
    """A flooder thread's body: sends data on sock again and again, with
    pause seconds between (none by default), until stop (an Event) is
    set, seconds have passed or the socket fails."""
    deadline = time.monotonic() + seconds
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            sock.sendall(data)
        except OSError:
            return
        if pause:
            time.sleep(pause)


def checked_lines(sock, buf, gone):
    """read_lines, each line checked (check_line): (messages, rest)."""
    lines, rest = read_lines(sock, buf, gone)
    return [(check_line(ln + b"\n"), ln) for ln in lines], rest


def pool_settled(pool, st, n, ident, met, t0, met_timeout):
    """A stress Pool of n connections that each sent IDENTIFY: waits for
    the n SUCCESS replies (st[ident]) and then for all n * (n - 1) / 2
    NEW_USER (st[met]), failing on anything in st["bad"].  Returns the
    seconds from t0 to each, and the NEW_USER count."""
    bad = st["bad"]
    pool.run_until(lambda: st[ident] == n or bad, 60,
                   what=lambda: "%d IDENTIFY SUCCESS (have %d)"
                   % (n, st[ident]))
    assert not bad, bad
    t_id = time.monotonic() - t0
    want = n * (n - 1) // 2
    pool.run_until(lambda: st[met] == want or bad, met_timeout,
                   what=lambda: "%d NEW_USER (have %d)" % (want, st[met]))
    assert not bad, bad
    return t_id, time.monotonic() - t0, want


def set_status(client, status, *others):
    """client sends STATUS status; each of the others gets NEW_STATUS."""
    client.send(req("STATUS", status=status))
    for o in others:
        o.expect(new_status(client.name, status))


def say_all(client, text, *others):
    """client sends PUBLIC_TEXT text; each of the others gets it."""
    client.send(req("PUBLIC_TEXT", text=text))
    for o in others:
        o.expect(public_from(client.name, text))


@contextlib.contextmanager
def own_daemon(*opts, **kw):
    """A talknetd of the test's own, Server(*opts, **kw), for a test that
    stops it itself; yields it and a function that marks a client (a
    talknet process) to kill at the end.  At the end the daemon must stop
    without a sanitizer report."""
    d = Server(*opts, **kw)
    clients = []

    def kill_at_end(c):
        clients.append(c)
        return c
    try:
        yield d, kill_at_end
    finally:
        for c in clients:
            c.kill()
        rep = sanitizer_report(d.stop())
        assert rep is None, rep
