"""Stress: the hub killed with SIGKILL under traffic.

20 identified clients with statuses, two rooms and pending invitations;
5 of them send PUBLIC_TEXT with sequence numbers at a steady rate and a
sixth sends ROOM_TEXT, for about 5 s; the hub is killed three times
(1.2, 2.6 and 4.0 s into it).
Checked: no client is disconnected or sees anything but the traffic;
USERS and ROOM_USERS are unchanged and invitations still work; messages
flow again after the restart; per receiver and sender, no sequence
number arrives twice or out of order, and every message sent outside
the round the dead hub had in flight arrives (doc/design.md: delivery is
at most once for that round, exactly once otherwise).

Prints the hub restart time (kill -> new "talknetd: hub" pid -> first
message delivered again) and the messages lost and duplicated."""

import sys
import os
import selectors
import signal
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest import stress  # noqa: E402
from tntest.stress import figure, note
import tntest  # noqa: E402
from tntest import Client, Server, req, resp

NCLIENTS = 20
PUB_SENDERS = 5
RATE = 50.0                 # messages per second per sender
DURATION = 5.2
KILL_AT = (1.2, 2.6, 4.0)   # s into the traffic; > 1 s apart (the master
                            # restarts a hub at most once a second)
LOSS_BEFORE = 1.0           # a loss may only hit messages sent this long
SLACK = 0.05                # before the kill, up to this long after it


def _state(cs, r1owner, r2owner):
    users = cs[0].users()
    out = {"users": users}
    for owner, room in ((r1owner, "R1"), (r2owner, "R2")):
        owner.send(req("ROOM_USERS", roomname=room))
        got = owner.recv()
        assert got.get("type") == "ROOM_USER_LIST", got
        out[room] = got["users"]
    return out


class Killer:
    """A forked helper that kills the hub on request and times its
    restart, so the figures do not depend on how busy the test's own loop
    is (a thread would be starved of the GIL by it).  It reports, per
    kill: the old pid, when it was killed, when it was dead (a zombie or
    reaped), the new hub's pid and when that pid first showed up as a
    child of the master titled "talknetd: hub".  Times are
    time.monotonic(), the same clock in both processes."""

    def __init__(self, master):
        cmd_r, cmd_w = os.pipe()
        res_r, res_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                keep = {0, 1, 2, cmd_r, res_w}
                for fd in os.listdir("/proc/self/fd"):
                    if int(fd) not in keep:
                        try:
                            os.close(int(fd))
                        except OSError:
                            pass
                self._child(master, cmd_r, res_w)
            finally:
                os._exit(0)
        os.close(cmd_r)
        os.close(res_w)
        os.set_blocking(res_r, False)
        self.pid = pid
        self.cmd = cmd_w
        self.res = res_r
        self.buf = b""
        self.results = []

    @staticmethod
    def _child(master, cmd_r, res_w):
        f = os.fdopen(cmd_r, "rb", buffering=0)
        while True:
            line = f.readline()
            if not line:
                return
            old = int(line)
            known = set(tntest.all_pids())
            t_kill = time.monotonic()
            os.kill(old, signal.SIGKILL)
            while True:
                st = tntest.proc_stat(old)
                if st is None or st[0] == "Z":
                    break
            t_dead = time.monotonic()
            new, t_new = 0, 0.0
            while not new and time.monotonic() - t_kill < 5:
                for p in tntest.all_pids():
                    if p in known:
                        continue
                    st = tntest.proc_stat(p)
                    if st is None or st[1] != master:
                        known.add(p)
                        continue
                    if tntest.proc_title(p) == "talknetd: hub":
                        new, t_new = p, time.monotonic()
                        break
            os.write(res_w, ("%d %r %r %d %r\n" % (old, t_kill, t_dead, new,
                                                   t_new)).encode())

    def kill(self, hub):
        os.write(self.cmd, b"%d\n" % hub)

    def poll(self, want=0, timeout=0.0):
        """Collects reports, waiting up to timeout s for `want` of them;
        returns how many have arrived."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                data = os.read(self.res, 4096)
            except BlockingIOError:
                data = None
            if data:
                self.buf += data
                while b"\n" in self.buf:
                    line, self.buf = self.buf.split(b"\n", 1)
                    old, tk, td, new, tn = line.split()
                    self.results.append({
                        "old": int(old), "t_kill": float(tk),
                        "t_dead": float(td), "new": int(new),
                        "t_new": float(tn)})
                continue
            if len(self.results) >= want or time.monotonic() >= deadline:
                return len(self.results)
            time.sleep(0.005)

    def close(self):
        os.close(self.cmd)
        os.close(self.res)
        for _ in range(500):
            if os.waitpid(self.pid, os.WNOHANG)[0]:
                return
            time.sleep(0.01)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)


def _hub_kill_under_traffic(burst, tag):
    stress.raise_nofile(256)
    names = ["P%02d" % i for i in range(NCLIENTS)]
    with Server() as s:
        t_start = time.monotonic()
        cs = tntest.connect_users(s, *names)
        by = dict(zip(names, cs))
        # State the new hub must keep: statuses, rooms, members, invites.
        by["P01"].send(req("STATUS", status="AWAY"))
        by["P02"].send(req("STATUS", status="BUSY"))
        for c in cs:
            want = [tntest.new_status(n, st) for n, st in
                    (("P01", "AWAY"), ("P02", "BUSY")) if n != c.name]
            c.expect_unordered(want)
        tntest.make_room(by["P00"], "R1",
                        members=[by[n] for n in names[1:6]],
                        invited=[by["P06"], by["P07"]])
        tntest.make_room(by["P10"], "R2", members=[by["P11"], by["P12"]],
                        invited=[by["P13"]])
        for c in cs:
            c.drain(0.05)
        tntest.barrier(by["P19"], *cs[:-1])
        before = _state(cs, by["P00"], by["P10"])
        assert before["users"]["P01"] == "AWAY", before
        assert len(before["R1"]) == 6 and len(before["R2"]) == 3, before
        hub = s.hub_pid()
        nchildren = len(s.children())
        assert nchildren == NCLIENTS + 1, nchildren
        # The master restarts a hub at most once a second.
        while time.monotonic() - t_start < 1.2:
            time.sleep(0.05)

        senders = [(by[n], "PUBLIC_TEXT", None) for n in names[:PUB_SENDERS]]
        senders.append((by["P05"], "ROOM_TEXT", "R1"))
        r1 = set(names[:6])
        sent = {c.name: [] for c, _, _ in senders}      # send times by seq
        # got[receiver][sender] = list of seqs in arrival order
        got = {n: {} for n in names}
        t_arrive = []          # (arrival time, sender, seq)
        bad = []
        sel = selectors.DefaultSelector()
        for c in cs:
            sel.register(c.sock, selectors.EVENT_READ, c)

        def read(c):
            try:
                data = c.sock.recv(262144)
            except BlockingIOError:
                return
            except ConnectionResetError:
                data = b""
            if not data:
                c.eof = True
                sel.unregister(c.sock)
                bad.append("%r was disconnected" % c)
                return
            c.buf += data
            now = time.monotonic()
            while b"\n" in c.buf:
                raw, c.buf = c.buf.split(b"\n", 1)
                m = tntest.check_line(raw + b"\n")
                t = m.get("type")
                if t in ("PUBLIC_TEXT_FROM", "ROOM_TEXT_FROM") and \
                        m["text"].startswith("seq "):
                    seq = int(m["text"].split()[1])
                    who = m["username"]
                    got[c.name].setdefault(who, []).append(seq)
                    t_arrive.append((now, who, seq))
                elif len(bad) < 20:
                    bad.append("%r got unexpected %r" % (c, raw[:200]))

        killer = Killer(s.pid)
        nkill = 0
        period = 1.0 / RATE
        t0 = time.monotonic()
        nxt = [t0 + i * period / len(senders) for i in range(len(senders))]
        end = t0 + DURATION
        while True:
            now = time.monotonic()
            if nkill < len(KILL_AT) and now >= t0 + KILL_AT[nkill]:
                if nkill:
                    assert killer.poll(nkill, 3) >= nkill, "no report of kill %d" \
                        % nkill
                    hub = killer.results[-1]["new"]
                    assert hub, "no new hub after kill %d" % nkill
                if burst:
                    # The hub is in the middle of routing these when it
                    # dies: the round in flight.
                    c = senders[0][0]
                    seq0 = len(sent[c.name])
                    c.send(b"".join(tntest.compact(req(
                        "PUBLIC_TEXT", text="seq %d %s" % (seq0 + j,
                                                           "y" * 40)))
                        for j in range(burst)))
                    sent[c.name].extend([time.monotonic()] * burst)
                    time.sleep(0.0005)
                killer.kill(hub)
                nkill += 1
            if now >= end:
                break
            for i, (c, typ, room) in enumerate(senders):
                if now >= nxt[i]:
                    seq = len(sent[c.name])
                    text = "seq %d %s" % (seq, "x" * 40)
                    if room:
                        c.send(req(typ, roomname=room, text=text))
                    else:
                        c.send(req(typ, text=text))
                    sent[c.name].append(time.monotonic())
                    nxt[i] += period
            wait = max(0.0, min(nxt) - time.monotonic())
            for key, _ in sel.select(min(wait, 0.02)):
                read(key.data)
        t_sent_end = time.monotonic()

        # Let everything still in flight arrive.
        def expected(rcv, snd):
            if rcv == snd:
                return 0
            if snd == "P05":
                return len(sent[snd]) if rcv in r1 else 0
            return len(sent[snd])

        def complete():
            return all(len(set(got[r].get(sn, ()))) >= expected(r, sn)
                       for r in names for sn in sent)
        # (Until all expected arrived, or nothing arrived for 1 s: what
        # the dead hub lost never comes.)  Then 0.3 s for extras.
        deadline = time.monotonic() + 5
        quiet = time.monotonic() + 1
        while not complete() and time.monotonic() < min(deadline, quiet):
            for key, _ in sel.select(0.05):
                read(key.data)
                quiet = time.monotonic() + 1
        quiet = time.monotonic() + 0.3
        while time.monotonic() < quiet:
            for key, _ in sel.select(0.05):
                read(key.data)
        sel.close()
        try:
            assert killer.poll(len(KILL_AT), 5) == len(KILL_AT), "kills reported: %r" \
                % killer.results
        finally:
            killer.close()
        kills = killer.results
        assert not bad, bad
        for i, k in enumerate(kills):
            assert k["new"], "no new hub after kill %d" % (i + 1)
            # Restarted: the first message sent once the old hub was dead
            # (so routed by the new one) that reached someone.
            later = [ta for ta, sn, sq in t_arrive
                     if sent[sn][sq] > k["t_dead"]]
            assert later, "nothing sent after kill %d was delivered" % i
            k["t_first"] = min(later)
        # Losses, duplicates and order, per receiver and sender.
        lost = []             # (receiver, sender, seq)
        dups = []
        order = []
        for r in names:
            for sn in sent:
                seqs = got[r].get(sn, [])
                want = expected(r, sn)
                if want == 0:
                    assert not seqs, "%s got %d messages of %s" \
                        % (r, len(seqs), sn)
                    continue
                seen = set()
                last = -1
                for q in seqs:
                    if q in seen:
                        dups.append((r, sn, q))
                    seen.add(q)
                    if q < last:
                        order.append((r, sn, last, q))
                    last = max(last, q)
                for q in range(want):
                    if q not in seen:
                        lost.append((r, sn, q))
        total = sum(expected(r, sn) for r in names for sn in sent)

        def rel(t):
            # (kill number, time relative to the nearest kill)
            i = min(range(len(kills)),
                    key=lambda j: abs(t - kills[j]["t_kill"]))
            return i, t - kills[i]["t_kill"]
        per_rcv = {}
        for r, sn, q in lost:
            per_rcv[r] = per_rcv.get(r, 0) + 1

        after = _state(cs, by["P00"], by["P10"])
        assert after == before, "state changed by the hub restart:\n" \
            "before %r\nafter  %r" % (before, after)
        # Invitations survived; names stay taken; the new hub serves.
        by["P06"].send(req("JOIN_ROOM", roomname="R1"))
        by["P06"].expect(resp("JOIN_ROOM", "SUCCESS", "R1"))
        for n in names[:6]:
            by[n].expect(tntest.joined_room("R1", "P06"))
        by["P13"].send(req("JOIN_ROOM", roomname="R2"))
        by["P13"].expect(resp("JOIN_ROOM", "SUCCESS", "R2"))
        for n in ("P10", "P11", "P12"):
            by[n].expect(tntest.joined_room("R2", "P13"))
        d = Client(s)
        d.send(req("IDENTIFY", username="P03"))
        d.expect(resp("IDENTIFY", "USER_ALREADY_EXISTS", "P03"))
        tntest.expect_nothing(*cs)
        assert s.titled("talknetd: hub") == [kills[-1]["new"]]
        assert len(s.children()) == nchildren + 1   # + d's worker
        for k in kills:
            s.wait_log(r"hub started, pid %d" % k["new"])

    figure(tag + ".traffic", "%d clients, %d PUBLIC_TEXT + 1 ROOM_TEXT "
           "senders at %.0f msg/s each for %.1f s; %d messages sent, %d "
           "deliveries expected" % (NCLIENTS, PUB_SENDERS, RATE, DURATION,
                                    sum(len(v) for v in sent.values()),
                                    total))
    for i, k in enumerate(kills):
        figure(tag + ".restart_%d" % (i + 1),
               "dead %.1f ms, new 'talknetd: hub' pid %.1f ms, first "
               "message routed by it delivered %.1f ms after the kill"
               % ((k["t_dead"] - k["t_kill"]) * 1000,
                  (k["t_new"] - k["t_kill"]) * 1000,
                  (k["t_first"] - k["t_kill"]) * 1000))
    figure(tag + ".restart_max", "%.1f" % max(
        (max(k["t_new"], k["t_first"]) - k["t_kill"]) * 1000
        for k in kills), "ms (kill -> new hub and delivering, worst of %d)"
        % len(kills))
    figure(tag + ".lost", "%d of %d deliveries (%s)" % (
        len(lost), total, ", ".join("%s: %d" % kv
                                    for kv in sorted(per_rcv.items()))
        or "none"))
    for i in range(len(kills)):
        mine = [(r, sn, q) for r, sn, q in lost
                if rel(sent[sn][q])[0] == i]
        if not mine:
            continue
        ts = [rel(sent[sn][q])[1] * 1000 for _, sn, q in mine]
        figure(tag + ".lost_at_kill_%d" % (i + 1),
               "%d deliveries of %d distinct messages, sent %+.1f to %+.1f "
               "ms around the kill" % (len(mine),
                                       len(set((sn, q) for _, sn, q in mine)),
                                       min(ts), max(ts)))
    figure(tag + ".duplicated", len(dups))
    figure(tag + ".out_of_order", len(order))
    assert not dups, "duplicates (receiver, sender, seq): %r" % dups[:20]
    assert not order, "out of order (receiver, sender, after, got): %r" \
        % order[:20]
    bad_loss = [(r, sn, q, "kill %d %+.3f s" % (rel(sent[sn][q])[0] + 1,
                                                 rel(sent[sn][q])[1]))
                for r, sn, q in lost
                if not any(-LOSS_BEFORE <= sent[sn][q] - k["t_kill"] <=
                           k["t_dead"] - k["t_kill"] + SLACK for k in kills)]
    assert not bad_loss, "lost outside the round in flight at the kill " \
        "(receiver, sender, seq, sent relative to the kill): %r" \
        % bad_loss[:20]


def test_hub_kill_under_traffic():
    _hub_kill_under_traffic(0, "hub_kill")


def test_hub_kill_mid_burst():
    # Each kill comes right after one sender wrote 300 messages at once,
    # so the hub dies while routing them: what is lost is measured; no
    # duplicates, no reordering, and nothing sent later is lost.
    _hub_kill_under_traffic(300, "hub_kill_burst")


if __name__ == "__main__":
    tntest.main(globals())
