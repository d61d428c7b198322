"""Presence storm: 2,000 clients IDENTIFY concurrently while some of them
send PUBLIC_TEXT and some leave, so joins, texts and quits share the
hub's rounds (issue 15 lets a round grow under load and write the
requester's worker first; the semantics must not move).

Checked, for every observer (identified before the storm, reads all):
every NEW_USER exactly once; every DISCONNECTED exactly once, for a
quitter only, after its NEW_USER; each sender's PUBLIC_TEXT_FROM
complete, in order, between its NEW_USER and DISCONNECTED; every
USER_LIST (asked all through the storm, and at the end) equal to what the
presence events before it on the same connection say.  For every joiner
(but those that just close): the first line is the RESPONSE to its
IDENTIFY, then byte for byte what the observers got between its NEW_USER
and its DISCONNECTED (NEW_USER of later joiners, in order), without its
own texts (protocol.md: IDENTIFY, PUBLIC_TEXT, DISCONNECT, USERS,
Ordering and delivery).  Observers parse and check every line; joiners
only keep their bytes, compared at the end.

One process, one selector, non-blocking sockets; every wait is bounded
by one deadline.  TN_PRESENCE_JOINERS sets the number of joiners.
"""

import os
import resource
import selectors
import socket
import time
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
import tntest  # noqa: E402
from tntest import Server, compact, recv_ready, req, resp, send_some

N = int(os.environ.get("TN_PRESENCE_JOINERS", "2000"))
NOBS = 4            # observers: identified first, read and check all
INFLIGHT = 64       # joiners connected and waiting for their RESPONSE
# Seconds for the whole storm and its checks: a backstop against a hang
# only, under the runner's 120 s alarm.  A run takes 5-7 s here, 14-16 s under
# ASan, and 43 s was seen under ASan with the load average at 120.
OVERALL = 100.0
# Seconds without a byte after which what is missing will not come: the
# failure then names it, rather than waiting for OVERALL.
SETTLE = 5.0
ASK_EVERY = 25      # every 25 joins, the next observer in turn asks USERS

OBS, JOINER = "observer", "joiner"


class Peer:
    """One connection of the storm and what the test knows of it."""
    __slots__ = ("sock", "name", "kind", "state", "buf", "out", "texter",
                 "quit", "pipelined", "abrupt", "chunks", "nbytes", "events",
                 "present", "seen_new", "seen_gone", "seq", "asked", "lists")

    def __repr__(self):
        return "<%s %s %s>" % (self.kind, self.name, self.state)


def roles(i):
    """(texter, quitter, pipelined, abrupt) of joiner i.  Every seventh
    sends two texts; every fifth leaves: half of those send IDENTIFY,
    texts and DISCONNECT in one write (join and quit then fall in one hub
    round), a third of the rest just close (and send no text, which the
    close could reset away)."""
    q = i % 10
    abrupt = i % 30 == 16
    return (i % 7 == 0 and not abrupt, q in (1, 6), q == 1, abrupt)


def text_of(name, k):
    """The text of the k-th PUBLIC_TEXT of a joiner."""
    return "%s#%d" % (name, k)


def raise_nofile(need):
    """Raises the soft open files limit to need (the daemon, started
    afterwards, inherits it); skips when the hard limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        raise tntest.Skip("RLIMIT_NOFILE hard limit %d < %d" % (hard, need))
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    if soft != resource.RLIM_INFINITY and soft < N + 500:
        raise tntest.Skip("RLIMIT_NPROC %d < %d" % (soft, N + 500))


class Storm:
    """The storm's connections, selector and counters."""

    def __init__(self, server, observers):
        self.port = server.port
        self.sel = selectors.DefaultSelector()
        self.obs = []
        self.joiners = []
        self.names = ["j%04d" % i for i in range(N)]
        self.index = {n: i for i, n in enumerate(self.names)}
        self.quitters = set()
        self.texts = 0          # PUBLIC_TEXT each observer must get
        self.next = 0           # next joiner to start
        self.waiting = 0        # joiners waiting for their RESPONSE
        self.joined = 0
        self.gone = 0           # quitters whose connection has ended
        self.last_rx = time.monotonic()   # a joiner's last bytes
        self.last_ev = time.monotonic()   # an observer's last line
        self.obs_names = [c.name for c in observers]
        for c in observers:
            p = self._peer(c.sock, c.name, OBS)
            assert not c.buf, "%r: unread %r" % (c, c.buf)
            p.state = "on"
            self.obs.append(p)

    def _peer(self, sock, name, kind):
        """A new Peer of sock, registered for reading."""
        p = Peer()
        p.sock, p.name, p.kind = sock, name, kind
        p.state, p.buf, p.out, p.chunks, p.events = "id", b"", b"", [], []
        p.present, p.seen_new, p.seen_gone = set(), set(), set()
        p.seq, p.asked, p.lists, p.nbytes = {}, 0, 0, 0
        p.texter = p.quit = p.pipelined = p.abrupt = False
        self.sel.register(sock, selectors.EVENT_READ, p)
        return p

    def send(self, p, data):
        """Sends now what the socket takes; the selector sends the rest."""
        if p.out:
            p.out += data
            return
        p.out = send_some(p.sock, data)
        if p.out:
            self.sel.modify(p.sock, selectors.EVENT_READ |
                            selectors.EVENT_WRITE, p)

    def start_joiners(self):
        """Keeps INFLIGHT joiners waiting for their RESPONSE."""
        while self.waiting < INFLIGHT and self.next < N:
            i = self.next
            self.next += 1
            name = self.names[i]
            s = socket.create_connection((tntest.LOOPBACK, self.port), 10)
            s.setblocking(False)
            p = self._peer(s, name, JOINER)
            p.texter, p.quit, p.pipelined, p.abrupt = roles(i)
            self.joiners.append(p)
            if p.texter:
                self.texts += 2
            if p.quit:
                self.quitters.add(name)
            self.waiting += 1
            out = compact(req("IDENTIFY", username=name))
            if p.pipelined:
                out += self._after(p)
            self.send(p, out)

    def _after(self, p):
        """What a joiner sends once identified: its texts, then its
        DISCONNECT if it is a quitter that says so."""
        out = b""
        if p.texter:
            for k in (1, 2):
                out += compact(req("PUBLIC_TEXT", text=text_of(p.name, k)))
        if p.quit and not p.abrupt:
            out += compact(req("DISCONNECT"))
        return out

    def identified(self, p):
        """The joiner's first line was its RESPONSE."""
        self.waiting -= 1
        self.joined += 1
        p.state = "leaving" if p.quit else "on"
        if not p.pipelined:
            out = self._after(p)
            if out:
                self.send(p, out)
        if p.abrupt:
            self.close(p)
        if self.joined % ASK_EVERY == 0:
            # One observer at a time, so the requests fall in different
            # hub rounds, among the joins, texts and quits of each.
            self.ask_users(self.obs[self.joined // ASK_EVERY % NOBS])

    def ask_users(self, *obs):
        """The observers given (all if none) send USERS."""
        for o in obs or self.obs:
            o.asked += 1
            self.send(o, compact(req("USERS")))

    def close(self, p):
        """Closes a joiner's connection: it is gone."""
        self.sel.unregister(p.sock)
        p.sock.close()
        p.state = "gone"
        self.gone += 1

    def pump(self, timeout):
        """One round of the selector."""
        for key, ev in self.sel.select(timeout):
            p = key.data
            if ev & selectors.EVENT_WRITE and p.out:
                try:
                    n = p.sock.send(p.out)
                except BlockingIOError:
                    n = 0
                p.out = p.out[n:]
                if not p.out:
                    self.sel.modify(p.sock, selectors.EVENT_READ, p)
            if ev & selectors.EVENT_READ:
                self.read(p)
        self.start_joiners()

    def read(self, p):
        """Reads what came for p: a joiner's first line must be its
        RESPONSE, then its bytes are kept; an observer's lines are
        checked one by one."""
        data, _ = recv_ready(p.sock)
        if data is None:
            return
        if not data:
            assert p.state == "leaving", \
                "%r: the server closed the connection" % p
            self.close(p)
            return
        if p.state == "id":
            p.buf += data
            i = p.buf.find(b"\n")
            if i < 0:
                return
            first, data, p.buf = p.buf[:i + 1], p.buf[i + 1:], b""
            want = compact(resp("IDENTIFY", "SUCCESS", p.name))
            assert first == want, "%r: first line %r, not the RESPONSE " \
                "to its IDENTIFY %r" % (p, first, want)
            self.identified(p)
        if not data:
            return
        if p.kind == JOINER:
            self.last_rx = time.monotonic()
            p.nbytes += len(data)
            if not p.abrupt:
                p.chunks.append(data)
            return
        p.buf += data
        *lines, p.buf = p.buf.split(b"\n")
        for raw in lines:
            self.observe(p, raw, tntest.check_line(raw + b"\n"))

    def observe(self, o, raw, m):
        """Checks one line an observer got against what it saw before."""
        self.last_ev = time.monotonic()
        t, who = m.get("type"), m.get("username")
        where = "%r got %r" % (o, raw)
        if t == "NEW_USER":
            assert who in self.index, where + ": not a joiner"
            assert who not in o.seen_new, where + ": twice"
            assert who not in o.seen_gone, where + ": after DISCONNECTED"
            o.seen_new.add(who)
            o.present.add(who)
        elif t == "DISCONNECTED":
            assert who in self.quitters, where + ": it did not leave"
            assert who in o.seen_new, where + ": before its NEW_USER"
            assert who not in o.seen_gone, where + ": twice"
            o.seen_gone.add(who)
            o.present.discard(who)
        elif t == "PUBLIC_TEXT_FROM":
            assert who in o.present, where + ": not between its NEW_USER " \
                "and DISCONNECTED"
            k = o.seq.get(who, 0) + 1
            assert m["text"] == text_of(who, k), where + \
                ": expected text %r next" % text_of(who, k)
            o.seq[who] = k
        elif t == "USER_LIST":
            assert o.lists < o.asked, where + ": not asked for"
            o.lists += 1
            want = set(self.obs_names) | o.present
            got = m["users"]
            assert set(got) == want, "%r: USER_LIST %d has %d users, the " \
                "events before it say %d; extra %r, missing %r" % (
                    o, o.lists, len(got), len(want),
                    sorted(set(got) - want)[:5], sorted(want - set(got))[:5])
            assert set(got.values()) == {"ACTIVE"}, where
            return
        else:
            raise AssertionError(where + ": unexpected")
        o.events.append(raw)

    def settled(self):
        """True once every joiner has joined, every quitter is gone and
        the observers have every event and every USER_LIST."""
        if self.joined < N or self.gone < len(self.quitters):
            return False
        want = N + len(self.quitters) + self.texts
        return all(len(o.events) == want and o.lists == o.asked
                   for o in self.obs)

    def quiet(self):
        """True once all joined and left, and the observers got nothing
        for SETTLE seconds: what they miss will not come."""
        return (self.joined == N and self.gone == len(self.quitters) and
                time.monotonic() - self.last_ev > SETTLE)

    def progress(self):
        """What the storm has got so far, for a failure message."""
        o = self.obs[0]
        texts = sum(o.seq.values())
        return ("joined %d/%d, quitters gone %d/%d, observer events %r "
                "(want %d), USER_LIST %r/%r; %r misses NEW_USER of %r, "
                "DISCONNECTED of %r, %d texts" % (
                    self.joined, N, self.gone, len(self.quitters),
                    [len(o.events) for o in self.obs],
                    N + len(self.quitters) + self.texts,
                    [o.lists for o in self.obs],
                    [o.asked for o in self.obs], o,
                    sorted(set(self.names) - o.seen_new)[:5],
                    sorted(self.quitters - o.seen_gone)[:5],
                    self.texts - texts))

    def run_until(self, pred, deadline, what):
        """Pumps until pred() is true; AssertionError at the deadline."""
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for %s: %s"
                                     % (what, self.progress()))
            self.pump(min(left, 0.05))

    def close_all(self):
        """Closes every connection still open."""
        for p in self.joiners + self.obs:
            if p.state != "gone":
                try:
                    self.sel.unregister(p.sock)
                except (KeyError, ValueError):
                    pass
                p.sock.close()
        self.sel.close()


class Expected:
    """What each joiner must get after its RESPONSE: what the first
    observer got after the joiner's NEW_USER (up to its DISCONNECTED if
    it left), less the joiner's own texts; slices of one byte string."""

    def __init__(self, storm):
        ev = storm.obs[0].events
        self.blob = b"".join(raw + b"\n" for raw in ev)
        off = [0]
        at = {}
        for k, raw in enumerate(ev):
            off.append(off[-1] + len(raw) + 1)
            if raw.startswith(b'{"type":"NEW_USER"') or \
                    raw.startswith(b'{"type":"DISCONNECTED"'):
                at.setdefault(tntest.check_line(raw + b"\n")["username"],
                              []).append(k)
        self.span = {}
        for p in storm.joiners:
            if p.abrupt:
                continue
            k = at[p.name]
            a, b = off[k[0] + 1], off[k[1]] if len(k) > 1 else off[-1]
            n = b - a
            if p.texter:
                n -= sum(len(line) for line in own_texts(p))
            self.span[p] = (a, b, n)

    def size(self, p):
        return self.span[p][2]

    def bytes(self, p):
        a, b, _ = self.span[p]
        w = self.blob[a:b]
        for line in own_texts(p) if p.texter else ():
            w = w.replace(line, b"", 1)
        return w


def own_texts(p):
    """The lines others get of p's texts."""
    return [compact(tntest.public_from(p.name, text_of(p.name, k)))
            for k in (1, 2)]


def check_joiners(storm, deadline):
    """Each joiner got exactly what the observers got while it was
    there, in the same order, and none of its own texts."""
    want = Expected(storm)
    # A joiner short of its bytes is reported below, once nothing more
    # came for SETTLE seconds, rather than as a timeout.
    storm.run_until(lambda: all(p.nbytes >= want.size(p)
                                for p in want.span) or
                    time.monotonic() - storm.last_rx > SETTLE, deadline,
                    "every joiner's lines")
    for p in want.span:
        got = b"".join(p.chunks)
        p.chunks = []
        w = want.bytes(p)
        own = b'{"type":"PUBLIC_TEXT_FROM","username":"%s",' % p.name.encode()
        assert own not in got, "%r: got its own text" % p
        if got != w:
            i = next((i for i in range(min(len(got), len(w)))
                      if got[i] != w[i]), min(len(got), len(w)))
            i = got.rfind(b"\n", 0, i) + 1
            raise AssertionError(
                "%r: %d bytes after its RESPONSE, the observers got %d while "
                "it was there; first difference at byte %d: got %r, "
                "expected %r" % (p, len(got), len(w), i, got[i:i + 150],
                                 w[i:i + 150]))
    return want


def test_join_storm_presence():
    raise_nofile(N + NOBS + 200)
    opts = tntest.LIFT_LIMITS + ["--max-clients", str(N + NOBS + 64)]
    with Server(*opts) as s:
        observers = tntest.connect_users(s, *("obs%d" % i
                                            for i in range(NOBS)))
        storm = Storm(s, observers)
        try:
            t0 = time.monotonic()
            deadline = t0 + OVERALL
            storm.start_joiners()
            storm.run_until(lambda: storm.settled() or storm.quiet(),
                            deadline, "the storm to settle")
            assert storm.settled(), "the observers are short: " + \
                storm.progress()
            t_storm = time.monotonic() - t0
            # Every observer got the same events in the same order: the
            # hub routes one request at a time to every worker's queue.
            for o in storm.obs[1:]:
                assert o.events == storm.obs[0].events, \
                    "%r and %r saw the events in different orders" % (
                        storm.obs[0], o)
            for o in storm.obs:
                assert o.seen_gone == storm.quitters, o
                assert len(o.seen_new) == N, o
            storm.ask_users()
            storm.run_until(lambda: all(o.lists == o.asked
                                        for o in storm.obs),
                            deadline, "the final USER_LIST")
            want = check_joiners(storm, deadline)
            # Nothing more for anyone.
            end = time.monotonic() + 0.3
            storm.run_until(lambda: time.monotonic() >= end, deadline,
                            "a quiet moment")
            for p in storm.obs:
                assert not p.buf, "%r: partial line %r" % (p, p.buf)
            for o in storm.obs:
                assert len(o.events) == N + len(storm.quitters) + \
                    storm.texts, "%r: %d events after the storm settled" \
                    % (o, len(o.events))
            for p in want.span:
                n = p.nbytes - want.size(p)
                assert n == 0, "%r: %d bytes more after the storm " \
                    "settled" % (p, n)
            print("  %d joiners (%d quit, %d texts), %d observers, %d "
                  "streams checked (%d bytes): settled in %.2f s, checked "
                  "in %.2f s" % (N, len(storm.quitters), storm.texts, NOBS,
                                 len(want.span), sum(p.nbytes for p in
                                                     want.span),
                                 t_storm, time.monotonic() - t0))
        finally:
            storm.close_all()


if __name__ == "__main__":
    tntest.main(globals())
