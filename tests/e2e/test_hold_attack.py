#!/usr/bin/env python3
"""Attacks on the hub's hold (doc/design.md, "Flow control: readers that
keep reading are never cut"): a text that would reach a reader over the
high-water mark waits, whole, in its sender's input until that reader
drains.  A reader that never reads must not hold anyone for long, the
held frame runs once and in order, a reader that goes away (DISCONNECT,
kick, LEAVE_ROOM) lets its senders go at once, a hub restart or a
reload in the middle loses and repeats nothing, senders that flood each
other do not deadlock, and a hostile worker holds up nobody else.

Every time bound is relative to one measured in the same test."""

import os
import re
import select
import signal
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../ops")
import tntest  # noqa: E402
from tntest import Client, Server, req, compact, wait_until  # noqa: E402
from test_hostile_worker import (Liar, frame, strs, hello,  # noqa: E402
                                 hub_socket_path, IPC_REQ_BASE,
                                 MSG_IDENTIFY, MSG_PUBLIC_TEXT, SLOT_NEW)
from test_ctl import ctl  # noqa: E402

T = tntest.TIMEOUT
PAD = "p" * 1000
MARK = re.compile(rb'#(\w+):(\d+)#')
MSG_TEXT = 4


def _texts(tag, n, kind="PUBLIC_TEXT", start=0, **fields):
    """n requests of about 1 KB, numbered "#tag:n#"."""
    return b"".join(compact(req(kind, text="#%s:%06d#%s" % (tag, i, PAD),
                                **fields))
                    for i in range(start, start + n))


class Reader:
    """Reads a client's socket in a thread (at most rate bytes a second
    if rate is set) and records each numbered line: who sent it, its
    number, when it came.  Every other line is kept too."""

    def __init__(self, client, rate=None, chunk=16384):
        self.client = client
        self.rate = rate
        self.chunk = chunk
        self.seen = {}            # tag -> [numbers, in order]
        self.times = []           # arrival of each numbered line
        self.other = []           # every other line
        self.eof = False
        self.error = None
        self.bytes = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        sock = self.client.sock
        buf = self.client.buf
        self.client.buf = b""
        t0 = time.monotonic()
        try:
            while not self.stop.is_set():
                if self.rate:
                    ahead = self.bytes / self.rate - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(min(ahead, 0.05))
                        continue
                # The socket blocks, for a sender thread's sendall too.
                if not select.select([sock], [], [], 0.2)[0]:
                    continue
                data = sock.recv(self.chunk)
                if not data:
                    self.eof = True
                    break
                self.bytes += len(data)
                buf += data
                lines = buf.split(b"\n")
                buf = lines.pop()
                now = time.monotonic()
                with self.lock:
                    for line in lines:
                        m = MARK.search(line)
                        if m is None:
                            self.other.append(line)
                            continue
                        self.seen.setdefault(m.group(1).decode(),
                                             []).append(int(m.group(2)))
                        self.times.append(now)
        except (OSError, ValueError) as e:
            # ValueError: the test closed the socket under the thread.
            self.eof = True
            self.error = e

    def count(self, tag=None):
        with self.lock:
            if tag is None:
                return sum(len(v) for v in self.seen.values())
            return len(self.seen.get(tag, []))

    def last(self):
        with self.lock:
            return self.times[-1] if self.times else None

    def saw_other(self, needle):
        with self.lock:
            return any(needle in x for x in self.other)

    def check(self, tag, n, start=0):
        """tag's lines start..start+n-1 came, each once, in order."""
        with self.lock:
            got = self.seen.get(tag, [])
        assert got == list(range(start, start + n)), \
            "%s: %d lines, first wrong at %s" % (
                tag, len(got), next((i for i, (a, b) in enumerate(
                    zip(got, range(start, start + n))) if a != b),
                    len(got)))

    def close(self):
        self.stop.set()
        self.thread.join(3)


def _send_in_thread(client, data):
    """sendall on a blocking socket, in a thread: TCP paces it."""
    box = {}

    def run():
        s = client.sock
        try:
            s.sendall(data)
            box["ok"] = True
        except OSError as e:
            box["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def _blocking(client):
    """The client's socket blocking, for a Reader and a sender."""
    client.sock.setblocking(True)


def _wait_for_hold(prompt, floor, limit):
    """Waits until the prompt reader has had no numbered line for floor
    seconds (a sender is held) after two earlier gaps that long, and
    returns the longest gap seen before: the time a held sender waits
    for the slow reader to drain.  limit bounds the whole wait."""
    deadline = time.monotonic() + limit
    gaps = []
    prev = None
    in_gap = False
    while time.monotonic() < deadline:
        time.sleep(0.01)
        last = prompt.last()
        if last is None:
            continue
        quiet = time.monotonic() - last
        if prev is not None and last != prev and in_gap:
            gaps.append(last - prev)
            in_gap = False
        if quiet >= floor and not in_gap:
            in_gap = True
            if len(gaps) >= 2:
                return max(gaps)
        prev = last
    raise AssertionError("no sender held for the slow reader in %.0f s "
                         "(gaps %r)" % (limit, gaps))


SLOW_RATE = 200000     # bytes/s: three times the 64 KiB/s a reader must
                       # drain to pace anyone, slow beside a flood


def _release(action, room=False):
    """A flooder whose texts reach a slow but legal reader is held in
    turns; once it is, action(server, slow, slow_reader) makes the slow
    one no longer a recipient.  The flooder must go on at once: within
    half the time a hold lasted before, measured in this run."""
    s = Server("--stall-timeout", "0")
    f, p, slow = tntest.connect_users(s, "flood", "prompt", "slow")
    kind, fields = "PUBLIC_TEXT", {}
    if room:
        tntest.make_room(f, "R", members=[p, slow])
        kind, fields = "ROOM_TEXT", {"roomname": "R"}
    for c in (f, p, slow):
        _blocking(c)
    pr = Reader(p)
    fr = Reader(f)
    sr = Reader(slow, rate=SLOW_RATE)
    n = 12000
    t, box = _send_in_thread(f, _texts("F", n, kind, **fields))
    before = _wait_for_hold(pr, 0.3, 30)
    t0 = time.monotonic()
    action(s, slow, sr)
    after = None
    deadline = t0 + before + 10
    while time.monotonic() < deadline:
        last = pr.last()
        if last is not None and last > t0:
            after = last - t0
            break
        time.sleep(0.005)
    assert after is not None, "the flooder never went on"
    print("hold %.2f s, after the reader left %.2f s" % (before, after))
    assert after < before / 2, \
        "the flooder waited %.2f s for a reader that left (a hold " \
        "lasted %.2f s before)" % (after, before)
    # The rest of the flood reaches the prompt reader, whole and in order.
    t.join(60)
    assert box.get("ok"), box
    wait_until(lambda: pr.count("F") == n, 60,
               what=lambda: "all %d texts (got %d)" % (n, pr.count("F")))
    pr.check("F", n)
    for r in (pr, fr, sr):
        r.close()
    assert "dropped: queue over" not in s.log_text()
    s.stop()


def test_a_reader_that_disconnects_lets_its_senders_go_at_once():
    def leave(s, slow, sr):
        slow.sock.sendall(compact(req("DISCONNECT")))
    _release(leave)


def test_a_reader_that_is_kicked_lets_its_senders_go_at_once():
    def kick(s, slow, sr):
        rc, out, err = ctl(s, "kick", "slow", "bye")
        assert rc == 0, (rc, out, err)
    _release(kick)


def test_a_reader_that_leaves_the_room_lets_its_senders_go_at_once():
    def leave(s, slow, sr):
        slow.sock.sendall(compact(req("LEAVE_ROOM", roomname="R")))
    _release(leave, room=True)


if __name__ == "__main__":
    tntest.main(globals())
