"""Stress: a slow reader (SO_RCVBUF 4096, never reads) while another
client floods 20,000 x 1 KB PUBLIC_TEXT (more where TCP's buffers may
grow larger) under the default --max-queue (1 MiB).  A third client
receives every one in order; the slow reader
is cut off (EOF or reset; the others get DISCONNECTED for it).  Prints
the time and the throughput."""

import sys
import os
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest import stress  # noqa: E402
from tntest.stress import figure, note
import tntest  # noqa: E402
from tntest import Server, compact, req

SIZE = 1000                 # bytes of text per message


def _flood_size():
    """Messages enough to overrun the slow reader's worker: the queue
    (1 MiB) and what the kernel may buffer for its socket, which is as
    large as this machine lets TCP send buffers grow (tcp_wmem), four
    times over; at least 20,000."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            wmem = int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        wmem = 4 << 20
    return max(20000, 4 * (wmem + (1 << 20)) // SIZE)


TOTAL = int(os.environ.get("TN_STRESS_FLOOD", "0")) or _flood_size()
WINDOW = 400                # messages the flooder may be ahead of the reader


def _flood(pool, fl, st, pad, deadline):
    """Flood sends TOTAL texts, WINDOW ahead of what Reader got, until
    Reader has them all and Flood and Reader saw Slow cut off."""
    while st["sent"] < TOTAL or st["rd_next"] < TOTAL or \
            len(st["slow_gone"]) < 2:
        assert time.monotonic() < deadline, \
            "flood not done in 90 s: sent %d, Reader got %d, " \
            "DISCONNECTED Slow seen by %r" % (
                st["sent"], st["rd_next"], list(st["slow_gone"]))
        assert not st["bad"], st["bad"]
        k = min(WINDOW - (st["sent"] - st["rd_next"]),
                TOTAL - st["sent"])
        if k > 0 and len(fl.out) < 65536:
            fl.send(b"".join(
                compact(req("PUBLIC_TEXT",
                            text="%06d%s" % (st["sent"] + i, pad)))
                for i in range(k)))
            st["sent"] += k
        pool.poll(0.05)


def _read_slow(slow, newusers, prefix):
    """Reads what was queued for Slow, in order, to its end (within 20 s);
    returns how many of the flood's lines it got."""
    got = 0
    nxt = 0
    t1 = time.monotonic()
    while not slow.eof and time.monotonic() - t1 < 20:
        slow._fill(time.monotonic() + 1)
        while b"\n" in slow.buf:
            line, slow.buf = slow.buf.split(b"\n", 1)
            if line in newusers and not got:
                continue
            assert line.startswith(b'{"type":"PUBLIC_TEXT_FROM",'
                                   b'"username":"Flood"'), line[:100]
            seq = int(line[len(prefix):len(prefix) + 6])
            assert seq == nxt, "Slow got seq %d, expected %d" \
                % (seq, nxt)
            nxt += 1
            got += 1
    assert slow.eof, "Slow's connection was not closed (got %d " \
        "lines)" % got
    return got


def test_slow_reader_cut_off_flood_delivered():
    stress.raise_nofile(256)
    pad = "x" * (SIZE - 6)
    prefix = b'{"type":"PUBLIC_TEXT_FROM","username":"Flood","text":"'
    suffix = pad.encode() + b'"}'
    newusers = {compact(tntest.new_user(n))[:-1] for n in ("Flood", "Reader")}
    gone_slow = compact(tntest.disconnected("Slow"))[:-1]
    st = {"rd_next": 0, "slow_gone": {}, "bad": [], "t_last": None}

    def on_line(c, raw):
        if c.name == "Reader" and raw.startswith(prefix):
            seq = int(raw[len(prefix):len(prefix) + 6])
            if seq != st["rd_next"] or raw[len(prefix) + 6:] != suffix:
                st["bad"].append("Reader got seq %d, expected %d (%r...)"
                                 % (seq, st["rd_next"], raw[:80]))
            st["rd_next"] += 1
            st["t_last"] = time.monotonic()
            return
        if raw == gone_slow and c.name not in st["slow_gone"]:
            st["slow_gone"][c.name] = (time.monotonic(), st["sent"])
            return
        if len(st["bad"]) < 10:
            st["bad"].append("%r got unexpected %r" % (c, raw[:200]))

    def on_eof(c):
        st["bad"].append("%r was closed by the server" % c)

    with Server() as s:
        slow = tntest.Client(s, rcvbuf=4096).identify("Slow")
        pool = stress.Pool(s.port, on_line, on_eof)
        st["sent"] = 0
        try:
            fl = pool.connect("Flood")
            rd = pool.connect("Reader")
            for c in (fl, rd):
                c.send(req("IDENTIFY", username=c.name))
                # The replies and NEW_USERs are not part of the flood.
                c.pool.on_line = lambda c, raw: None
            seen = {"n": 0}

            def setup_line(c, raw):
                seen["n"] += 1
            pool.on_line = setup_line
            # Flood: IDENTIFY reply + NEW_USER Reader; Reader: the reply.
            pool.run_until(lambda: seen["n"] >= 3, 5,
                           what="the IDENTIFY replies")
            pool.pump_for(0.1)
            pool.on_line = on_line
            # From here on, Slow never reads.
            t0 = time.monotonic()
            _flood(pool, fl, st, pad, t0 + 90)
            dt = st["t_last"] - t0
            assert not st["bad"], st["bad"]
            assert st["rd_next"] == TOTAL

            # Slow: whatever was queued for it, then the end.
            got = _read_slow(slow, newusers, prefix)
            partial = len(slow.buf)
            assert got < TOTAL, "Slow got everything: it was not cut off"

            # The survivors still talk; Slow is gone from the table.
            pool.on_line = lambda c, raw: st.setdefault("after", []).append(
                (c.name, raw))
            rd.send(req("USERS"))
            pool.run_until(lambda: st.get("after"), 5, what="USER_LIST")
            assert len(st["after"]) == 1 and st["after"][0][0] == "Reader", \
                st["after"]
            got_list = stress.parse(st["after"][0][1])
            assert got_list == tntest.user_list(
                {"Flood": "ACTIVE", "Reader": "ACTIVE"}), got_list
        finally:
            pool.close_all()

    mb = TOTAL * (len(prefix) + 6 + len(suffix) + 1) / 1e6
    figure("slow_reader.messages", "%d x %d B" % (TOTAL, SIZE))
    figure("slow_reader.time", "%.2f" % dt, "s (flood start to last "
           "message at the Reader)")
    figure("slow_reader.throughput", "%.0f msg/s, %.1f MB/s"
           % (TOTAL / dt, mb / dt))
    for who, (t, n) in sorted(st["slow_gone"].items()):
        figure("slow_reader.cut_off_seen_by_%s" % who,
               "%.2f s after flood start, after %d messages sent"
               % (t - t0, n))
    figure("slow_reader.slow_received",
           "%d whole lines then %s (%d bytes of a partial line)"
           % (got, "reset" if slow.reset else "EOF", partial))
    # protocol.md: the server never sends a partial line, even to a
    # client it cuts off.
    assert not partial, "the cut-off reader got %d bytes of a partial " \
        "line" % partial


if __name__ == "__main__":
    tntest.main(globals())
