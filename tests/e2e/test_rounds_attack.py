#!/usr/bin/env python3
"""Attacks on the hub's round (src/daemon/hub_round.c): requesters first, then
everyone else in passes that gather under load.  Hostile clients, a
compromised worker, an impatient admin swinging max-gather, the hub
killed mid-pass.  Every assertion compares with a baseline of the same
run or checks an ordering property; every loop is bounded."""

import sys
import copy
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
import tntest  # noqa: E402
from tntest import stress  # noqa: E402
import test_hostile_worker as hw  # noqa: E402
from tntest import req  # noqa: E402

tntest.runner.TEST_TIMEOUT = int(os.environ.get("TN_TEST_TIMEOUT", "60"))


def _port(s):
    return tntest.port_of(s)


def _numbered_text(c, raw):
    """For a pool's on_line: marks c identified on its IDENTIFY answer;
    for a PUBLIC_TEXT_FROM whose text starts with a number, returns
    (sender, number), else None."""
    m = stress.parse(raw)
    if m["type"] == "RESPONSE" and m["operation"] == "IDENTIFY":
        c.data["ok"] = True
    if m["type"] != "PUBLIC_TEXT_FROM":
        return None
    return m["username"], int(m["text"].split(" ", 1)[0])


def _mark_lone(c, raw):
    """Pool on_line: c got a line; the time of the one with "lone"."""
    c.data["ok"] = True
    if b"lone" in raw:
        c.data["lone"] = time.monotonic()


def _identify_pool(pool, names, timeout=10, rcvbuf=None, data=None):
    """Connects and identifies each name (its c.data a copy of data, with
    "ok" False until a line arrives); returns the conns once every one
    has its IDENTIFY answer."""
    cs = []
    for n in names:
        c = pool.connect(name=n, rcvbuf=rcvbuf)
        c.data = copy.deepcopy(data or {})
        c.data["ok"] = False
        pool.send(c, req("IDENTIFY", username=n))
        cs.append(c)
    pool.run_until(lambda: all(c.data["ok"] for c in cs), timeout,
                   "IDENTIFY answers")
    return cs


def _on_numbered(on_text):
    """A pool's on_line that calls on_text(c, sender, number) for each
    numbered text (see _numbered_text)."""
    def on_line(c, raw):
        got = _numbered_text(c, raw)
        if got is not None:
            on_text(c, *got)
    return on_line


def _hub_rss_kb(pid):
    return tntest.status_kb(pid, "VmRSS")


# -- presence order ---------------------------------------------------------

def _presence_run(gather):
    """Watchers ask USERS again and again while others join and quit and
    texts flow; every USER_LIST must equal what the watcher's own
    NEW_USER/DISCONNECTED lines say, in the order it got them."""
    errors = []
    with tntest.Server(*(tntest.LIFT_LIMITS + ["--max-gather", str(gather)])) \
            as s:
        def on_line(c, raw):
            m = stress.parse(raw)
            t = m["type"]
            d = c.data
            if t == "RESPONSE" and m["operation"] == "IDENTIFY":
                d["ok"] = m["result"] == "SUCCESS"
                return
            if d.get("set") is None:
                if t == "USER_LIST":
                    d["set"] = set(m["users"])
                    d["asked"] -= 1
                return
            if t == "NEW_USER":
                if m["username"] in d["set"]:
                    errors.append("%s: NEW_USER %s twice" %
                                  (c.name, m["username"]))
                d["set"].add(m["username"])
            elif t == "DISCONNECTED":
                if m["username"] not in d["set"]:
                    errors.append("%s: DISCONNECTED %s unknown" %
                                  (c.name, m["username"]))
                d["set"].discard(m["username"])
            elif t == "USER_LIST":
                d["asked"] -= 1
                d["lists"] += 1
                if set(m["users"]) != d["set"]:
                    errors.append("%s: USER_LIST %s, lines say %s" %
                                  (c.name, sorted(m["users"]),
                                   sorted(d["set"])))

        pool = stress.Pool(_port(s), on_line=on_line)
        base = _identify_pool(pool, ["base%d" % i for i in range(30)])
        watchers = _identify_pool(pool, ["w%d" % i for i in range(6)])
        for w in watchers:
            w.data.update(set=None, asked=1, lists=0)
            pool.send(w, req("USERS"))
        pool.run_until(lambda: all(w.data["set"] is not None
                                   for w in watchers), 10, "first lists")
        churn = []
        end = time.monotonic() + 2.0
        k = 0
        while time.monotonic() < end and len(errors) < 5:
            # A few joins and quits, texts to all, and USERS from each
            # watcher that has no USERS in flight.
            if len(churn) < 8:
                c = pool.connect(name="c%d" % k)
                c.data = {"ok": False}
                pool.send(c, req("IDENTIFY", username="c%d" % k))
                churn.append(c)
                k += 1
            else:
                victim = churn.pop(0)
                if k % 2:
                    pool.send(victim, req("DISCONNECT"))
                else:
                    pool.close(victim, reset=True)
            for b in base[:10]:
                pool.send(b, req("PUBLIC_TEXT", text="x" * 200))
            for w in watchers:
                if w.data["asked"] == 0:
                    w.data["asked"] = 1
                    pool.send(w, req("USERS"))
            pool.poll(0.002)
        pool.run_until(lambda: all(w.data["asked"] == 0 for w in watchers),
                       10, "last lists")
        lists = sum(w.data["lists"] for w in watchers)
        pool.close_all()
    return errors, lists, k


def test_presence_order_under_churn_and_users():
    for gather in (20, 1000):
        errors, lists, joins = _presence_run(gather)
        stress.note("max-gather %d: %d USER_LISTs checked, %d joins"
                    % (gather, lists, joins))
        assert not errors, "max-gather %d: %s" % (gather, errors[:5])
        assert lists > 20, "only %d USER_LISTs" % lists


# -- EPOLLOUT while gathering ---------------------------------------------

def _repeated_out_waits(path):
    """(epoll_wait calls, calls that reported only EPOLLOUT, for the same
    channels as the call before) in an strace output file."""
    prev, rep, total = None, 0, 0
    with open(path) as f:
        for line in f:
            if "epoll_wait(" not in line or "unfinished" in line or \
                    "resumed" in line:
                continue
            total += 1
            evs = frozenset(re.findall(
                r"events=(\w+), data=\{u32=\d+, u64=(\d+)\}", line))
            if evs and all(e == "EPOLLOUT" for e, _ in evs) and evs == prev:
                rep += 1
            prev = evs
    return total, rep


# Failed on 6e4fabb: a channel with room again is only marked dirty and
# waits for the next pass, but stays armed for EPOLLOUT; epoll is level-
# triggered, so every epoll_wait of the gather gap returned at once with
# the same channels and the hub spun at 100% CPU until the pass (here
# 1,824 of 2,260 waits in 1.5 s; none once EPOLLOUT is disarmed).
def test_no_spin_on_epollout_while_gathering():
    strace = shutil.which("strace")
    if strace is None:
        raise tntest.Skip("strace not installed")
    with tntest.Server(*(tntest.LIFT_LIMITS + ["--max-gather", "1000"])) as s:
        hub = s.hub_pid()

        def on_line(c, raw):
            c.data["ok"] = True
        pool = stress.Pool(_port(s), on_line=on_line)
        # Small receive buffers: the readers' channels fill and empty
        # again and again, so EPOLLOUT fires while lines are gathered.
        cs = _identify_pool(pool, ["r%d" % i for i in range(40)],
                            rcvbuf=4096)
        out = os.path.join(tempfile.mkdtemp(), "trace")
        st = subprocess.Popen([strace, "-o", out, "-e", "trace=epoll_wait",
                               "-p", str(hub)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.3)
            end = time.monotonic() + 1.5
            while time.monotonic() < end:
                for c in cs[:5]:
                    pool.send(c, req("PUBLIC_TEXT", text="y" * 2000))
                pool.poll(0.001)
        finally:
            st.send_signal(signal.SIGINT)
            st.wait(10)
        total, rep = _repeated_out_waits(out)
        shutil.rmtree(os.path.dirname(out), ignore_errors=True)
        pool.close_all()
    if total < 20:
        raise tntest.Skip("strace could not follow the hub (%d waits)" % total)
    stress.note("%d epoll_wait, %d repeated EPOLLOUT-only" % (total, rep))
    assert rep * 10 <= total, \
        "hub spins on EPOLLOUT: %d of %d epoll_wait returned at once " \
        "with the same EPOLLOUT channels" % (rep, total)


# -- max-gather lowered by a reload ----------------------------------------

def _long_pass(s, nlog, at_least_us):
    for l in s.log[nlog:]:
        m = re.search(r"pass \d+ wrote \d+ workers in (\d+) us", l)
        if m and int(m.group(1)) >= at_least_us:
            return int(m.group(1))
    return None


def _stop_mid_pass(s, hub, pool, cs, stop_s):
    """SIGSTOPs the hub for stop_s while a pass writes 60 KB lines to the
    clients cs (a slow or loaded CPU's long pass), until the debug log
    shows a pass that took most of the stop: its length in us, or None
    after 8 tries."""
    for attempt in range(8):
        nlog = len(s.log)
        for c in cs[2:7]:
            pool.send(c, req("PUBLIC_TEXT", text="z" * 60000))
        time.sleep(0.002 * (attempt % 3))
        os.kill(hub, signal.SIGSTOP)
        time.sleep(stop_s)
        os.kill(hub, signal.SIGCONT)
        t = time.monotonic()
        while time.monotonic() < t + 0.1:
            pool.poll(0.005)
            took = _long_pass(s, nlog, int(stop_s * 1e6 * 0.8))
            if took is not None:
                return took
        pool.pump_for(0.5)
    return None


def _stopped_pass_or_skip(stop_s, reload_to_0):
    """_stopped_pass_then_lone, or the test is skipped when no stop
    landed in a pass."""
    r = _stopped_pass_then_lone(stop_s, reload_to_0)
    if r is None:
        raise tntest.Skip("no stop landed in a pass in 8 tries")
    return r


def _stopped_pass_then_lone(stop_s, reload_to_0):
    """(pass time in us, quiet latency, latency of a lone TEXT) after a
    pass the hub was SIGSTOPped in for stop_s, at max-gather 1000, then
    reloaded to 0 if reload_to_0.  None if no stop landed in a pass."""
    d = tempfile.mkdtemp()
    conf = os.path.join(d, "talknetd.conf")
    with open(conf, "w") as f:
        f.write("max-gather = 1000\nlog-level = debug\n")
    with tntest.Server("-c", conf) as s:
        hub = s.hub_pid()
        pool = stress.Pool(_port(s), on_line=_mark_lone)
        cs = _identify_pool(pool, ["r%d" % i for i in range(50)])
        a, b = cs[0], cs[1]

        def lone():
            b.data.pop("lone", None)
            t0 = time.monotonic()
            pool.send(a, req("TEXT", username="r1", text="lone"))
            pool.run_until(lambda: "lone" in b.data, 5, "the lone TEXT")
            return b.data["lone"] - t0
        quiet = sorted(lone() for _ in range(5))[2]
        # Stop the hub while a pass writes 60 KB lines to 50 readers,
        # until one pass is seen to have taken the whole stop.
        took = _stop_mid_pass(s, hub, pool, cs, stop_s)
        if took is None:
            pool.close_all()
            shutil.rmtree(d, ignore_errors=True)
            return None
        # Only b's backlog stands before the lone TEXT now: reading the
        # 48 other readers' 300 KB each is the test's own load, which
        # under the sanitizers and make -j2 once took over 0.45 s.
        for c in cs[2:]:
            pool.close(c, reset=True)
        if not reload_to_0:
            pool.pump_for(0.05)
        nlog = len(s.log)
        if reload_to_0:
            with open(conf, "w") as f:
                f.write("max-gather = 0\nlog-level = debug\n")
            os.kill(s.pid, signal.SIGHUP)
            pool.run_until(lambda: any("limits reloaded" in l
                                       for l in s.log[nlog:]), 5,
                           "the reload")
        late = lone()
        pool.close_all()
    shutil.rmtree(d, ignore_errors=True)
    return took, quiet, late


# Failed on 6e4fabb: the gap before the next pass was fixed at the end of
# the last pass with the max-gather then in force.  After a pass that took
# 0.5 s (the hub stopped mid-pass: a slow or loaded CPU), a reload to
# max-gather 0 left a lone TEXT waiting out the old gap (0.5-0.6 s against
# 0.0004 s quiet).
def test_reload_to_max_gather_0_cuts_the_gap_under_way():
    stop_s = 0.6
    took, quiet, late = _stopped_pass_or_skip(stop_s, True)
    stress.note("pass took %d us; lone TEXT quiet %.4f s, after the "
                "reload to 0 %.4f s" % (took, quiet, late))
    # Not cut, the lone TEXT waits out a gap as long as the pass (took).
    # Cut, it waits only for its reader's backlog to drain.
    assert late < 0.75 * took / 1e6, \
        "max-gather 0 reloaded, yet a lone TEXT took %.3f s (quiet %.4f s)" \
        " after a pass of %.3f s" % (late, quiet, took / 1e6)


# KNOWN WEAK on ff95d8f, not fixed (run with TN_XFAIL=1 to see it fail):
# a pass's length is wall time, so a pass the hub was preempted in (a
# slow or loaded CPU; here SIGSTOP for 0.5 s) makes the next pass wait as
# long again, up to max-gather, on a server that is quiet by then: a lone
# TEXT 50 ms after it took 0.45 s at max-gather 1000.  Measuring the pass
# in CPU time would fix this case, but the gathering was made for a hub
# preempted by the workers it wakes, which CPU time would not see: a
# design choice, left to the maintainers.
def test_pass_stretched_by_preemption_does_not_delay_a_lone_text():
    if os.environ.get("TN_XFAIL") != "1":
        raise tntest.Skip("known weak, see the comment; TN_XFAIL=1 runs it")
    stop_s = 0.5
    took, quiet, late = _stopped_pass_or_skip(stop_s, False)
    stress.note("pass took %d us; lone TEXT quiet %.4f s, then %.4f s"
                % (took, quiet, late))
    assert late < stop_s / 4, \
        "a lone TEXT took %.3f s (quiet %.4f s) after a pass the hub was " \
        "stopped in for %.3f s" % (late, quiet, took / 1e6)



# -- the hub killed mid-pass -----------------------------------------------

def test_hub_killed_mid_pass_loses_no_order():
    """SIGKILL the hub right after bursts of big public texts, while its
    passes write 30 readers: what the dead hub had not written is lost
    (at most once), but no reader sees a sender's number twice or out of
    order, and texts flow again from the new hub."""
    bad = []
    last = {}                  # (reader, sender) -> last number seen
    with tntest.Server() as s:
        t0 = time.monotonic()

        def on_text(c, sender, n):
            key = (c.name, sender)
            if last.get(key, -1) >= n:
                bad.append("%s got %s #%d after #%d" %
                           (c.name, sender, n, last[key]))
            last[key] = n
            c.data["got"] += 1

        pool = stress.Pool(_port(s), on_line=_on_numbered(on_text))
        cs = _identify_pool(pool, ["k%d" % i for i in range(30)],
                            data={"got": 0})
        senders = cs[:4]
        seq = [0]

        def burst(k):
            for _ in range(k):
                for c in senders:
                    pool.send(c, req("PUBLIC_TEXT", text="%d %s" %
                                     (seq[0], "p" * 20000)))
                seq[0] += 1
        # The master restarts a hub at most once a second.
        while time.monotonic() - t0 < 1.1:
            pool.poll(0.05)
        for kill in range(3):
            hub = s.hub_pid()
            burst(5)
            pool.poll(0.003)
            os.kill(hub, signal.SIGKILL)
            tntest.wait_until(lambda: s.titled("talknetd: hub") not in
                              ([], [hub]), 5, what="a new hub")
            pool.pump_for(1.05)
        # Texts flow again: the last burst reaches everyone.
        before = {c.name: c.data["got"] for c in cs}
        burst(1)
        # (a sender is not sent its own text)
        want = {c.name: 3 if c in senders else 4 for c in cs}
        pool.run_until(lambda: all(c.data["got"] >= before[c.name] +
                                   want[c.name] for c in cs), 10, lambda:
                       "texts after restarts: %s" %
                       [(c.name, c.data["got"] - before[c.name], c.eof)
                        for c in cs])
        eofs = [c.name for c in cs if c.eof]
        pool.close_all()
    assert not bad, bad[:5]
    assert not eofs, "clients cut by the restarts: %s" % eofs


# -- an impatient admin, and workers killed mid-pass -------------------------

class _Port:
    def __init__(self, port):
        self.local_port = port


def test_max_gather_swings_and_kills_mid_pass_keep_every_line():
    """max-gather reloaded 0 <-> 1000 every 40 ms while numbered texts go
    to 24 readers and readers' workers are SIGKILLed mid-pass: the hub
    never dies, and every reader left gets every text exactly once, in
    order."""
    d = tempfile.mkdtemp()
    conf = os.path.join(d, "talknetd.conf")
    with open(conf, "w") as f:
        f.write("max-gather = 1000\n")
    bad = []
    with tntest.Server("-c", conf) as s:
        hub = s.hub_pid()

        def on_text(c, sender, n):
            seen = c.data["seen"].setdefault(sender, [])
            if seen and seen[-1] >= n:
                bad.append("%s: %s #%d after #%d" % (c.name, sender,
                                                      n, seen[-1]))
            seen.append(n)

        pool = stress.Pool(_port(s), on_line=_on_numbered(on_text))
        cs = _identify_pool(pool, ["m%d" % i for i in range(24)],
                            data={"seen": {}})
        senders, victims = cs[:3], cs[18:]
        vpids = [s.worker_pid(_Port(v.port)) for v in victims]
        n = 0
        for k in range(40):
            with open(conf, "w") as f:
                f.write("max-gather = %d\n" % (1000 if k % 2 else 0))
            os.kill(s.pid, signal.SIGHUP)
            for c in senders:
                pool.send(c, req("PUBLIC_TEXT", text="%d %s" %
                                 (n, "q" * (500 + 300 * (k % 7)))))
            n += 1
            if k % 6 == 3 and vpids:
                os.kill(vpids.pop(), signal.SIGKILL)
            pool.pump_for(0.04)
        # Everyone left gets the last text of each sender, then all of
        # them must be there.
        kept = [c for c in cs if c not in victims]

        def done():
            return all(len(c.data["seen"].get(x.name, ())) == n
                       for c in kept for x in senders if x is not c)
        pool.run_until(done, 10, lambda: "all texts: %s" % [
            (c.name, {k: len(v) for k, v in c.data["seen"].items()})
            for c in kept if not done()][:3])
        assert s.hub_pid() == hub, "the hub was restarted"
        eofs = [c.name for c in kept if c.eof]
        pool.close_all()
    shutil.rmtree(d, ignore_errors=True)
    assert not bad, bad[:5]
    assert not eofs, eofs


# -- a quiet server at max-gather 1000 -------------------------------------

def _lone_latency(gather):
    """Median time for a lone PUBLIC_TEXT to reach 5 others, each sent
    100 ms after a burst of big texts to 30 readers (passes long enough
    to gather), at this max-gather."""
    with tntest.Server("--max-gather", str(gather)) as s:
        pool = stress.Pool(_port(s), on_line=_mark_lone)
        cs = _identify_pool(pool, ["q%d" % i for i in range(30)])
        lat = []
        for k in range(7):
            for c in cs[1:4]:
                pool.send(c, req("PUBLIC_TEXT", text="b" * 30000))
            pool.pump_for(0.1)
            for c in cs:
                c.data.pop("lone", None)
            t0 = time.monotonic()
            pool.send(cs[0], req("PUBLIC_TEXT", text="lone %d" % k))
            pool.run_until(lambda: all("lone" in c.data for c in cs[1:6]),
                           5, "the lone text")
            lat.append(max(c.data["lone"] for c in cs[1:6]) - t0)
        pool.close_all()
    return sorted(lat)[len(lat) // 2]


def test_lone_text_after_a_burst_is_prompt_at_max_gather_1000():
    # Noise on a shared machine: the worse of two tries must fail.
    for attempt in range(2):
        base = _lone_latency(0)
        slow = _lone_latency(1000)
        stress.note("lone text, median: max-gather 0 %.4f s, 1000 %.4f s"
                    % (base, slow))
        if slow <= 3 * base + 0.01:
            return
    raise AssertionError("a lone text 100 ms after a burst took %.4f s at "
                         "max-gather 1000, %.4f s at 0" % (slow, base))


# -- a compromised worker in the middle of passes --------------------------

def _liar_frames(liar, k):
    """k numbered PUBLIC_TEXTs, every fifth followed by a USERS: the liar
    is a requester again and again while passes write to it."""
    out = []
    for _ in range(k):
        out.append(hw.frame(hw.IPC_REQ_BASE + hw.MSG_PUBLIC_TEXT,
                            hw.strs(b"%d %s" % (liar.n, b"e" * 300)),
                            seq=liar.seq))
        liar.seq += 1
        if liar.n % 5 == 0:
            out.append(hw.frame(hw.IPC_REQ_BASE + MSG_USERS, b"",
                                seq=liar.seq))
            liar.seq += 1
        liar.n += 1
    return b"".join(out)


MSG_USERS = 3


def test_compromised_worker_flooding_mid_pass():
    """A raw worker floods numbered PUBLIC_TEXTs, each with a USERS behind
    it, unthrottled, and reads its channel a little at a time; a real
    client sends numbered texts too.  The readers get both in order and
    exactly once, no reader is cut, the hub stays up and its RSS stops
    growing once the flood is under way."""
    bad = []
    with tntest.Server("--max-gather", "1000") as s:
        hub = s.hub_pid()

        def on_text(c, sender, n):
            want = c.data["next"].get(sender, 0)
            if n != want:
                bad.append("%s: %s #%d, expected #%d" %
                           (c.name, sender, n, want))
            c.data["next"][sender] = n + 1

        pool = stress.Pool(_port(s), on_line=_on_numbered(on_text))
        cs = _identify_pool(pool, ["h%d" % i for i in range(15)],
                            data={"next": {}})
        liar = hw.Liar(hw.hub_socket_path(s))
        liar.send(hw.hello(hw.SLOT_NEW))
        hw._welcomed(liar)
        liar.send(hw.frame(hw.IPC_REQ_BASE + hw.MSG_IDENTIFY,
                           hw.strs(b"evil"), seq=1))
        liar.seq, liar.n = 2, 0
        pool.pump_for(0.2)
        liar.sock.setblocking(False)
        rss = []
        sent_by_real = 0
        pending = b""
        end = time.monotonic() + 3.0
        next_sample = time.monotonic() + 0.5
        while time.monotonic() < end and len(bad) < 5:
            if not pending:
                pending = _liar_frames(liar, 20)
            try:
                pending = pending[liar.sock.send(pending):]
            except BlockingIOError:
                pass
            try:
                liar.sock.recv(16384)        # a little, now and then
            except BlockingIOError:
                pass
            pool.send(cs[0], req("PUBLIC_TEXT", text="%d real" %
                                 sent_by_real))
            sent_by_real += 1
            pool.poll(0.002)
            if time.monotonic() >= next_sample:
                next_sample += 0.5
                rss.append(_hub_rss_kb(hub))
        liar.sock.setblocking(True)
        if pending:
            liar.sock.sendall(pending)
        n_liar = liar.n

        def done():
            return all(c.data["next"].get("evil", 0) == n_liar and
                       (c is cs[0] or c.data["next"].get("h0", 0) ==
                        sent_by_real) for c in cs)
        pool.run_until(done, 15, lambda: "texts: %s" % [
            (c.name, c.data["next"]) for c in cs if not done()][:3])
        assert s.hub_pid() == hub, "the hub was restarted"
        eofs = [c.name for c in cs if c.eof]
        liar_cut = "dropped" in s.log_text()
        # ASan keeps freed memory in quarantine: RSS says nothing then.
        asan = tntest.sanitized(hub)
        liar.close()
        pool.close_all()
    stress.note("liar sent %d texts, real %d; hub VmRSS kB every 0.5 s: %s"
                % (n_liar, sent_by_real, rss))
    assert not bad, bad[:5]
    assert not eofs, eofs
    assert not liar_cut, "a worker was dropped"
    half = len(rss) // 2
    assert asan or max(rss[half:]) <= 2 * max(rss[:half]) + 4096, \
        "hub RSS still growing: %s" % rss


# Failed on 3cb9514: lines gathered for a reader count in its backlog, and
# a reader over q_cap is cut however well it reads.  After a pass the hub
# was stopped in for 0.5 s (a slow or loaded CPU) at max-gather 1000, 40
# clients each sending one 60 KB text over 0.3 s had 20 of 45 clients,
# all reading as fast as they could, cut "queue over the limit"; none at
# max-gather 0.  A reader over the high-water mark with room in its
# channel now ends the gather.
def test_readers_that_read_well_are_not_cut_for_a_long_gather():
    with tntest.Server("--max-gather", "1000", "-d") as s:
        hub = s.hub_pid()

        def on_line(c, raw):
            c.data["ok"] = True
            c.data["n"] += 1
        pool = stress.Pool(_port(s), on_line=on_line)
        cs = _identify_pool(pool, ["w%d" % i for i in range(45)],
                            data={"n": 0})
        took = _stop_mid_pass(s, hub, pool, cs, 0.5)
        if took is None:
            pool.close_all()
            raise tntest.Skip("no stop landed in a pass in 8 tries")
        # One 60 KB text from each of 40 clients, within the gap.
        for c in cs[5:45]:
            pool.send(c, req("PUBLIC_TEXT", text="w" * 60000))
            pool.pump_for(0.0075)
        # Each client gets the 39 texts of the others.
        pool.run_until(lambda: all(c.eof or c.data["n"] >= 39 for c in cs),
                       10, "the texts")
        cut = [c.name for c in cs if c.eof]
        dropped = [l for l in s.log if "dropped" in l]
        pool.close_all()
    stress.note("pass took %d us; %d clients cut" % (took, len(cut)))
    assert not cut and not dropped, \
        "%d readers that read well were cut: %s" % (len(cut), dropped[:3])


if __name__ == "__main__":
    tntest.main(globals())
