"""Presence storm: 2,000 clients IDENTIFY concurrently while some of them
send PUBLIC_TEXT and some leave, so joins, texts and quits share the
hub's rounds (issue 15 lets a round grow under load and write the
requester's worker first; the semantics must not move).

Checked, for every observer (identified before the storm, reads all):
every NEW_USER exactly once; every DISCONNECTED exactly once, for a
quitter only, after its NEW_USER; each sender's PUBLIC_TEXT_FROM
complete, in order, between its NEW_USER and DISCONNECTED; every
USER_LIST (three asked mid-storm, one at the end) equal to what the
presence events before it on the same connection say.  For a sample of
joiners: the first line is the RESPONSE to their IDENTIFY, then exactly
what the observers saw after that join (NEW_USER of later joiners, in
order), without their own texts (protocol.md: IDENTIFY, PUBLIC_TEXT,
DISCONNECT, USERS, Ordering and delivery).

One process, one selector, non-blocking sockets; every wait is bounded
by one deadline.  TN_PRESENCE_JOINERS sets the number of joiners.
"""

import os
import resource
import selectors
import socket
import time

import tnlib
from tnlib import Server, compact, req, resp

N = int(os.environ.get("TN_PRESENCE_JOINERS", "2000"))
NOBS = 4            # observers: identified first, read and check all
INFLIGHT = 64       # joiners connected and waiting for their RESPONSE
SAMPLE_EVERY = 97   # joiner i is a sample (parsed and checked) if i % 97 == 0
OVERALL = 50.0      # seconds for the whole storm and its checks
MID = (N // 4, N // 2, 3 * N // 4)   # joins after which observers ask USERS

OBS, SAMPLE, PLAIN = "observer", "sample", "plain"


class Peer:
    """One connection of the storm and what the test knows of it."""
    __slots__ = ("sock", "name", "kind", "state", "buf", "out", "texter",
                 "quit", "pipelined", "abrupt", "lines", "events", "present",
                 "seen_new", "seen_gone", "seq", "asked", "lists")

    def __repr__(self):
        return "<%s %s %s>" % (self.kind, self.name, self.state)


def roles(i):
    """(texter, quitter, pipelined, abrupt) of joiner i.  Samples stay to
    the end and send texts; among the others every fifth leaves: half of
    those send IDENTIFY, texts and DISCONNECT in one write (join and quit
    then fall in one hub round), some of the rest just close."""
    if i % SAMPLE_EVERY == 0:
        return True, False, False, False
    q = i % 10
    return (i % 3 == 0, q in (1, 6), q == 1, i % 30 == 16)


def text_of(name, k):
    return "%s#%d" % (name, k)


def raise_nofile(need):
    """Raises the soft open files limit to need (the daemon, started
    afterwards, inherits it); skips when the hard limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        raise tnlib.Skip("RLIMIT_NOFILE hard limit %d < %d" % (hard, need))
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    if soft != resource.RLIM_INFINITY and soft < N + 500:
        raise tnlib.Skip("RLIMIT_NPROC %d < %d" % (soft, N + 500))


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
        self.obs_names = [c.name for c in observers]
        for c in observers:
            p = self._peer(c.sock, c.name, OBS)
            assert not c.buf, "%r: unread %r" % (c, c.buf)
            p.state = "on"
            self.obs.append(p)

    def _peer(self, sock, name, kind):
        p = Peer()
        p.sock, p.name, p.kind = sock, name, kind
        p.state, p.buf, p.out, p.lines, p.events = "id", b"", b"", [], []
        p.present, p.seen_new, p.seen_gone = set(), set(), set()
        p.seq, p.asked, p.lists = {}, 0, 0
        p.texter = p.quit = p.pipelined = p.abrupt = False
        self.sel.register(sock, selectors.EVENT_READ, p)
        return p

    def send(self, p, data):
        if p.out:
            p.out += data
            return
        n = p.sock.send(data)
        if n < len(data):
            p.out = data[n:]
            self.sel.modify(p.sock, selectors.EVENT_READ |
                            selectors.EVENT_WRITE, p)

    def start_joiners(self):
        """Keeps INFLIGHT joiners waiting for their RESPONSE."""
        while self.waiting < INFLIGHT and self.next < N:
            i = self.next
            self.next += 1
            name = self.names[i]
            s = socket.create_connection((tnlib.LOOPBACK, self.port), 10)
            s.setblocking(False)
            p = self._peer(s, name, SAMPLE if i % SAMPLE_EVERY == 0
                           else PLAIN)
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
        if self.joined in MID:
            self.ask_users()

    def ask_users(self):
        for o in self.obs:
            o.asked += 1
            self.send(o, compact(req("USERS")))

    def close(self, p):
        self.sel.unregister(p.sock)
        p.sock.close()
        p.state = "gone"
        self.gone += 1

    def pump(self, timeout):
        """One round of the selector."""
        for key, ev in self.sel.select(timeout):
            p = key.data
            if ev & selectors.EVENT_WRITE and p.out:
                n = p.sock.send(p.out)
                p.out = p.out[n:]
                if not p.out:
                    self.sel.modify(p.sock, selectors.EVENT_READ, p)
            if ev & selectors.EVENT_READ:
                self.read(p)
        self.start_joiners()

    def read(self, p):
        try:
            data = p.sock.recv(262144)
        except BlockingIOError:
            return
        except ConnectionResetError:
            data = b""
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
        if p.kind == PLAIN or not data:
            return
        p.buf += data
        *lines, p.buf = p.buf.split(b"\n")
        for raw in lines:
            m = tnlib.check_line(raw + b"\n")
            if p.kind == OBS:
                self.observe(p, raw, m)
            else:
                p.lines.append(raw)

    def observe(self, o, raw, m):
        """Checks one line an observer got against what it saw before."""
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

    def progress(self):
        return ("joined %d/%d, quitters gone %d/%d, observer events %r "
                "(want %d), USER_LIST %r/%d" % (
                    self.joined, N, self.gone, len(self.quitters),
                    [len(o.events) for o in self.obs],
                    N + len(self.quitters) + self.texts,
                    [o.lists for o in self.obs], self.obs[0].asked))

    def run_until(self, pred, deadline, what):
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for %s: %s"
                                     % (what, self.progress()))
            self.pump(min(left, 0.05))

    def close_all(self):
        for p in self.joiners + self.obs:
            if p.state != "gone":
                try:
                    self.sel.unregister(p.sock)
                except (KeyError, ValueError):
                    pass
                p.sock.close()
        self.sel.close()


def sample_expected(storm, p):
    """What sample joiner p must have got after its RESPONSE: what the
    first observer got after NEW_USER of p, less p's own texts."""
    ev = storm.obs[0].events
    at = ev.index(compact(tnlib.new_user(p.name))[:-1])
    mine = {compact(tnlib.public_from(p.name, text_of(p.name, k)))[:-1]
            for k in (1, 2)}
    return [raw for raw in ev[at + 1:] if raw not in mine]


def check_samples(storm, deadline):
    """Each sample joiner got exactly what the observers got after its
    join, in the same order, and none of its own texts."""
    samples = [p for p in storm.joiners if p.kind == SAMPLE]
    want = {p.name: sample_expected(storm, p) for p in samples}
    storm.run_until(lambda: all(len(p.lines) >= len(want[p.name])
                                for p in samples), deadline,
                    "the sample joiners' lines")
    for p in samples:
        own = b'"username":"%s"' % p.name.encode()
        echo = [raw for raw in p.lines if own in raw]
        assert not echo, "%r: got its own %r" % (p, echo[:3])
        w = want[p.name]
        if p.lines != w:
            i = next((i for i, (a, b) in enumerate(zip(p.lines, w))
                      if a != b), min(len(p.lines), len(w)))
            raise AssertionError(
                "%r: %d lines after its RESPONSE, the observers saw %d "
                "after its join; first difference at %d: got %r, "
                "expected %r" % (p, len(p.lines), len(w), i,
                                 p.lines[i:i + 3], w[i:i + 3]))
    return samples


def test_join_storm_presence():
    raise_nofile(N + NOBS + 200)
    opts = tnlib.LIFT_LIMITS + ["--max-clients", str(N + NOBS + 64)]
    with Server(*opts) as s:
        observers = tnlib.connect_users(s, *("obs%d" % i
                                            for i in range(NOBS)))
        storm = Storm(s, observers)
        try:
            t0 = time.monotonic()
            deadline = t0 + OVERALL
            storm.start_joiners()
            storm.run_until(storm.settled, deadline, "the storm to settle")
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
            samples = check_samples(storm, deadline)
            # Nothing more for the observers and the samples.
            end = time.monotonic() + 0.3
            storm.run_until(lambda: time.monotonic() >= end, deadline,
                            "a quiet moment")
            for p in storm.obs + samples:
                assert not p.buf, "%r: partial line %r" % (p, p.buf)
            for o in storm.obs:
                assert len(o.events) == N + len(storm.quitters) + \
                    storm.texts, "%r: %d events after the storm settled" \
                    % (o, len(o.events))
            for p in samples:
                assert p.lines == sample_expected(storm, p), \
                    "%r: lines after the storm settled" % p
            print("  %d joiners (%d quit, %d texts), %d observers, %d "
                  "samples (%d lines): settled in %.2f s, checked in %.2f s"
                  % (N, len(storm.quitters), storm.texts, NOBS,
                     len(samples), sum(len(p.lines) for p in samples),
                     t_storm, time.monotonic() - t0))
        finally:
            storm.close_all()


if __name__ == "__main__":
    tnlib.main(globals())
