"""The daemon's limits: --max-name, --max-room, --max-line, --max-rooms,
--max-clients, --max-clients-per-ip, --max-queue, --login-timeout and
--rate-limit."""

import os
import select
import signal
import ssl
import time
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
import tntest  # noqa: E402
from tntest import (Client, Server, connect_users, disconnected,
                    expect_nothing, new_room, new_user, public_from, req, resp)
from tntest.steps import checked_lines, cut_off  # noqa: E402


def test_max_name_raises_the_name_limit():
    with Server("--max-name", "12") as s:
        a = Client(s).identify("ABCDEFGHIJKL")
        b = Client(s).identify("\u00e9" * 12)
        a.expect(new_user("\u00e9" * 12))
        b.send(req("TEXT", username="ABCDEFGHIJKL", text="hi"))
        a.expect(tntest.text_from("\u00e9" * 12, "hi"))
        new_room(a, "R")
        tntest.invite(a, "R", b)
        c = Client(s)
        c.send(req("IDENTIFY", username="ABCDEFGHIJKLM"))
        c.expect_invalid_close()
        expect_nothing(a, b)
        # The room limit stays at its default.
        a.send(req("NEW_ROOM", roomname="Q" * 17))
        a.expect_invalid_close()


def test_max_room_raises_the_room_limit():
    with Server("--max-room", "20") as s:
        a, b = connect_users(s, "A", "B")
        new_room(a, "R" * 20)
        new_room(a, "\u65e5" * 20)
        tntest.invite(a, "R" * 20, b)
        tntest.join(b, "R" * 20, [a])
        a.send(req("NEW_ROOM", roomname="R" * 21))
        a.expect_invalid_close()
        b.expect(tntest.left_room("R" * 20, "A"))
        b.expect(disconnected("A"))
        # The name limit stays at its default.
        c = Client(s)
        c.send(req("IDENTIFY", username="N" * 9))
        c.expect_invalid_close()


def line_of(n, text_char=b"x"):
    """A PUBLIC_TEXT line of exactly n bytes before its terminator."""
    head = b'{"type":"PUBLIC_TEXT","text":"'
    tail = b'"}'
    k = n - len(head) - len(tail)
    assert k >= 0
    return head + text_char * k + tail, "x" * k


def test_max_line_1024():
    with Server("--max-line", "1024") as s:
        a, b = connect_users(s, "A", "B")
        line, text = line_of(1024)
        a.send(line + b"\n")
        b.expect(public_from("A", text))
        a.send(line + b"\r\n")          # the "\r" is not part of the line
        b.expect(public_from("A", text))
        line, text = line_of(1025)
        a.send(line + b"\n", ignore_errors=True)
        cut_off(a, "A", b)


def test_endless_line_is_cut_off_promptly():
    with Server("--max-line", "1024") as s:
        obs = Client(s).identify("Obs")
        c = Client(s).identify("A")
        obs.expect(new_user("A"))
        chunk = b"y" * 65536
        sent = 0
        limit = 64 << 20            # far more than any socket buffers hold
        t0 = time.monotonic()
        c.send(b'{"type":"PUBLIC_TEXT","text":"')
        got_reply = False
        while sent < limit and time.monotonic() - t0 < 10:
            r, w, _ = select.select([c.sock], [c.sock], [], 0.5)
            if r:
                got_reply = True
                break
            if w:
                try:
                    sent += c.sock.send(chunk)
                except (BlockingIOError, ssl.SSLWantWriteError):
                    pass
                # Over TLS (tests/tls) a close under the write is an
                # SSLEOFError.
                except (BrokenPipeError, ConnectionResetError,
                        ssl.SSLEOFError):
                    got_reply = True
                    break
        dt = time.monotonic() - t0
        assert got_reply, ("still no reply nor close after streaming %d "
                           "bytes in %.1f s: the server buffers the line"
                           % (sent, dt))
        print("  cut off after %d bytes sent, %.2f s" % (sent, dt))
        cut_off(c, "A", obs)


def test_max_rooms():
    with Server("--max-rooms", "2") as s:
        a, b = connect_users(s, "A", "B")
        new_room(a, "r1")
        new_room(b, "r2")
        a.send(req("NEW_ROOM", roomname="r3"))
        a.expect(b'{"type":"RESPONSE","operation":"NEW_ROOM",'
                 b'"result":"TOO_MANY_ROOMS","extra":"r3"}\n')
        b.send(req("NEW_ROOM", roomname="r4"))
        b.expect(resp("NEW_ROOM", "TOO_MANY_ROOMS", "r4"))
        # An existing name is still ROOM_ALREADY_EXISTS or TOO_MANY_ROOMS;
        # protocol.md does not order those two, so it is not checked.
        # The connection stays open and a freed slot can be used.
        a.send(req("LEAVE_ROOM", roomname="r1"))
        new_room(a, "r3")
        b.send(req("NEW_ROOM", roomname="r1"))
        b.expect(resp("NEW_ROOM", "TOO_MANY_ROOMS", "r1"))
        # A disconnect frees rooms too.
        b.send(req("DISCONNECT"))
        b.expect_closed()
        a.expect(disconnected("B"))
        new_room(a, "r4")
        expect_nothing(a)


def test_max_clients():
    with Server("--max-clients", "3") as s:
        a, b = connect_users(s, "A", "B")
        c = Client(s)                     # the third, unidentified
        time.sleep(0.1)
        d = Client(s)                     # the fourth: closed by the server
        lines = d.expect_closed(timeout=3, allow_lines=True)
        if lines:
            print("  note: the refused connection got %r" % lines)
        # The others are unaffected.
        expect_nothing(a, b, c)
        c.identify("C")
        a.expect(new_user("C"))
        b.expect(new_user("C"))
        # One leaves; then a new connection is accepted.
        c.send(req("DISCONNECT"))
        c.expect_closed()
        a.expect(disconnected("C"))
        b.expect(disconnected("C"))
        e = tntest.identify_new(s, "E")
        a.expect(new_user("E"))
        b.expect(new_user("E"))
        f = Client(s)
        f.expect_closed(timeout=3, allow_lines=True)
        expect_nothing(a, b, e)


def test_a_batch_over_max_queue_reaches_a_client_that_reads():
    """--max-queue counts what the client has not taken, so a reader that
    keeps up gets a batch larger than the limit in one piece."""
    with Server("--max-queue", "4096") as s:
        anna, ben = connect_users(s, "anna", "ben")
        texts = ["batch %02d %s" % (i, "y" * 140) for i in range(60)]
        # One write: the hub runs all 60 in one round and sends anna's
        # worker about 10 kB at once, more than twice her queue's limit.
        ben.send(b"".join(tntest.compact(req("PUBLIC_TEXT", text=t))
                          for t in texts))
        for t in texts:
            anna.expect(tntest.public_from("ben", t))
        expect_nothing(anna, ben)


def test_slow_reader_is_dropped_others_unaffected():
    with Server("--max-queue", "65536") as s:
        slow = Client(s, rcvbuf=4096)
        slow.identify("Slow")
        fl, rd = connect_users(s, "Flood", "Reader", existing=[slow])
        # From here on, slow never reads.
        text = "z" * 1000
        total_max = 40000                 # about 41 MB if ever needed
        window = 16
        out = b""
        sent = 0
        bufs = {fl: b"", rd: b""}
        rd_next = 0
        dropped = {fl: False, rd: False}
        drop_at = None
        t0 = time.monotonic()
        deadline = t0 + 40
        while time.monotonic() < deadline:
            if drop_at is None and all(dropped.values()):
                drop_at = sent
            stop_at = total_max if drop_at is None else \
                min(total_max, drop_at + 1000)
            # The flooder keeps at most `window` messages ahead of the
            # reader, so a client that does read never has more than about
            # 16 KiB queued; the one that never reads piles up without end.
            k = min(window - (sent - rd_next), stop_at - sent)
            if not out and k > 0:
                out = b"".join(tntest.compact(
                    req("PUBLIC_TEXT", text="%06d" % (sent + i) + text))
                    for i in range(k))
                sent += k
            if not out and sent >= stop_at and rd_next == sent and \
                    all(dropped.values()):
                break
            wlist = [fl.sock] if out else []
            r, w, _ = select.select([fl.sock, rd.sock], wlist, [], 0.5)
            if w:
                try:
                    n = fl.sock.send(out)
                    out = out[n:]
                except BlockingIOError:
                    pass
            for sk in r:
                c = fl if sk is fl.sock else rd
                got, bufs[c] = checked_lines(sk, bufs[c],
                                             "%r was closed by the server" % c)
                for m, line in got:
                    if m == disconnected("Slow") and not dropped[c]:
                        dropped[c] = True
                    elif c is rd and m["type"] == "PUBLIC_TEXT_FROM":
                        assert m["username"] == "Flood", m
                        seq = int(m["text"][:6])
                        assert seq == rd_next, \
                            "Reader got %d, expected %d" % (seq, rd_next)
                        assert m["text"][6:] == text
                        rd_next += 1
                    else:
                        raise AssertionError("%r got unexpected %r"
                                             % (c, line))
        dt = time.monotonic() - t0
        print("  flooded %d messages; Slow dropped: %r; Reader got %d; "
              "%.1f s" % (sent, list(dropped.values()), rd_next, dt))
        assert all(dropped.values()), \
            "Slow was never disconnected (DISCONNECTED seen by Flood/Reader: " \
            "%r) after %d messages" % (list(dropped.values()), sent)
        assert not out, "the flooder could not send it all"
        assert rd_next == sent, "Reader got %d of %d" % (rd_next, sent)
        # Slow: whatever was queued, then the end.
        slow.sock.setblocking(False)
        n = 0
        t1 = time.monotonic()
        while time.monotonic() - t1 < 10:
            try:
                slow.recv_raw(timeout=2)
                n += 1
            except tntest.Closed:
                break
        assert slow.eof, "Slow's connection was not closed"
        # The survivors still talk.
        rd.send(req("TEXT", username="Flood", text="ok?"))
        fl.expect(tntest.text_from("Reader", "ok?"))
        fl.send(req("USERS"))
        fl.expect(tntest.user_list({"Flood": "ACTIVE", "Reader": "ACTIVE"}))


def test_big_messages_with_a_large_max_line():
    # The queue must hold one whole message.
    with Server("--max-line", "2000000", "--max-queue", "16000000") as s:
        a, b, c = connect_users(s, "A", "B", "C")
        t = ("0123456789\u00e9\u65e5\U0001F600\"\\" * 70000)[:1400000]
        a.send(req("PUBLIC_TEXT", text=t))
        b.expect(public_from("A", t), timeout=10)
        c.expect(public_from("A", t), timeout=10)
        a.send(req("TEXT", username="B", text=t))
        b.expect(tntest.text_from("A", t), timeout=10)
        tntest.make_room(a, "R", members=[b, c])
        c.send(req("ROOM_TEXT", roomname="R", text=t))
        a.expect(tntest.room_text_from("R", "C", t), timeout=10)
        b.expect(tntest.room_text_from("R", "C", t), timeout=10)
        expect_nothing(a, b, c)


def test_names_at_the_ceiling():
    with Server("--max-name", "256", "--max-room", "256") as s:
        n1 = "\U0001F600" * 256               # 1024 bytes
        n2 = "\u00e9" * 255 + "x"
        room = "\u65e5" * 255 + "\U0001F600"
        a, b = connect_users(s, n1, n2)
        new_room(a, room)
        tntest.invite(a, room, b)
        tntest.join(b, room, [a])
        b.send(req("ROOM_TEXT", roomname=room, text="hi"))
        a.expect(tntest.room_text_from(room, n2, "hi"))
        a.send(req("ROOM_USERS", roomname=room))
        a.expect(tntest.room_user_list(room, {n1: "ACTIVE", n2: "ACTIVE"}))
        assert b.users() == {n1: "ACTIVE", n2: "ACTIVE"}
        b.send(req("STATUS", status="AWAY"))
        a.expect(tntest.new_status(n2, "AWAY"))
        c = Client(s)
        c.send(req("IDENTIFY", username="\U0001F600" * 257))
        c.expect_invalid_close()
        a.send(req("NEW_ROOM", roomname="x" * 257))
        a.expect_invalid_close()
        b.expect(tntest.left_room(room, n1))
        b.expect(disconnected(n1))


def test_user_list_longer_than_64k():
    with Server("--max-name", "256") as s:
        names = ["%03d" % i + "\U0001F600" * 253 for i in range(70)]
        cs = []
        for n in names:
            c = Client(s)
            c.identify(n)
            cs.append(c)
        for i, c in enumerate(cs):
            for n in names[i + 1:]:
                c.expect(new_user(n))
        want = {n: "ACTIVE" for n in names}
        cs[0].send(req("USERS"))
        raw, got = cs[0].recv_line()
        assert len(raw) > 65536, len(raw)
        assert got == tntest.user_list(want), "USER_LIST of %d bytes differs" \
            % len(raw)
        new_room(cs[5], "big")
        tntest.invite(cs[5], "big", *cs[6:])
        members = [cs[5]]
        for c in cs[6:]:
            tntest.join(c, "big", members)
            members.append(c)
        cs[7].send(req("ROOM_USERS", roomname="big"))
        got = cs[7].recv()
        assert got == tntest.room_user_list("big", {n: "ACTIVE"
                                                    for n in names[5:]})


def test_room_table_churn():
    with Server("--max-rooms", "50") as s:
        a, b = connect_users(s, "A", "B")
        for rnd in range(3):
            batch = b"".join(tntest.compact(req("NEW_ROOM",
                                                roomname="r%d-%d" % (rnd, i)))
                             for i in range(51))
            a.send(batch)
            for i in range(50):
                a.expect(resp("NEW_ROOM", "SUCCESS", "r%d-%d" % (rnd, i)))
            a.expect(resp("NEW_ROOM", "TOO_MANY_ROOMS", "r%d-50" % rnd))
            b.send(req("NEW_ROOM", roomname="b"))
            b.expect(resp("NEW_ROOM", "TOO_MANY_ROOMS", "b"))
            a.send(b"".join(tntest.compact(req("LEAVE_ROOM",
                                               roomname="r%d-%d" % (rnd, i)))
                            for i in range(50)))
            a.send(req("ROOM_USERS", roomname="r%d-49" % rnd))
            a.expect(resp("ROOM_USERS", "NO_SUCH_ROOM", "r%d-49" % rnd))
        expect_nothing(a, b)


def test_user_table_churn():
    with Server("--max-clients", "5") as s:
        obs = Client(s).identify("obs")
        for i in range(40):
            n = "u%d" % (i % 7)
            c = tntest.identify_new(s, n)
            obs.expect(new_user(n))
            c.send(req("PUBLIC_TEXT", text="hi %d" % i))
            obs.expect(public_from(n, "hi %d" % i))
            if i % 2:
                c.send(req("DISCONNECT"))
            else:
                c.close()
            obs.expect(disconnected(n))
        assert obs.users() == {"obs": "ACTIVE"}
        # The slots all came back: four more fit at once.
        more = []
        for n in ("w1", "w2", "w3", "w4"):
            more.append(tntest.identify_new(s, n))
            for o in [obs] + more[:-1]:
                o.expect(new_user(n))
        assert len(obs.users()) == 5


def test_client_that_never_reads_its_replies():
    # Requests pile up replies the client never reads: its own queue fills
    # and it is disconnected; nobody else notices anything but that.
    with Server("--max-queue", "65536") as s:
        a, b = connect_users(s, "A", "B")
        x = Client(s, rcvbuf=4096).identify("X")
        a.expect(new_user("X"))
        b.expect(new_user("X"))
        burst = b'{"type":"USERS"}\n' * 2000
        t0 = time.monotonic()
        sent = 0
        gone = False
        while time.monotonic() - t0 < 20 and sent < 200 and not gone:
            try:
                x._sendall(burst, timeout=0.5)
                sent += 1
            except (BrokenPipeError, ConnectionResetError):
                gone = True
            except AssertionError:          # x's send buffer is full
                pass
            # The others go on talking meanwhile.
            a.send(req("TEXT", username="B", text="ping %d" % sent))
            got = b.recv()
            while got == disconnected("X"):
                gone = True
                got = b.recv()
            assert got == tntest.text_from("A", "ping %d" % sent), got
        a.expect(disconnected("X"), timeout=5)
        if not gone:
            b.expect(disconnected("X"), timeout=5)
        expect_nothing(a, b)
        print("  X dropped after %d bursts of 2000 USERS" % sent)


def test_max_clients_per_ip():
    # The cap counts live connections from one address; 0 lifts it.
    with Server("--max-clients-per-ip", "2") as s:
        a, b = connect_users(s, "A", "B")
        c = Client(s)
        c.expect_closed(timeout=3)
        s.wait_log(r"refused: 2 from that address \(--max-clients-per-ip\)")
        b.send(req("DISCONNECT"))
        b.expect_closed()
        a.expect(disconnected("B"))
        d = tntest.identify_new(s, "D", timeout=5)
        a.expect(new_user("D"))
        expect_nothing(a, d)


def test_login_timeout():
    # A connection that does not identify in time is closed; one that
    # identified is never timed out for being idle.
    with Server("--login-timeout", "1") as s:
        a = Client(s).identify("A")
        lazy = Client(s)
        t0 = time.monotonic()
        # Not before the second is up, and long before the default of
        # 20 s: a loaded machine may well take a few seconds more.
        lazy.expect_closed(timeout=10)
        dt = time.monotonic() - t0
        assert 0.8 <= dt <= 10, dt
        time.sleep(1.2)
        a.send(req("USERS"))
        a.expect(tntest.user_list({"A": "ACTIVE"}))
        expect_nothing(a)


def test_rate_limit_slows_but_never_drops():
    # 10 a second with a burst of 5: 25 messages take about 2 s, and every
    # one of them arrives, in order.  No machine is fast enough to beat
    # the bucket; a loaded one may take longer, so the upper bound only
    # tells a rate of 10 from one of a few a second.
    with Server("--rate-limit", "10", "--rate-burst", "5") as s:
        a, b = connect_users(s, "A", "B")
        t0 = time.monotonic()
        for i in range(25):
            a.send(req("PUBLIC_TEXT", text="m%d" % i))
        for i in range(25):
            b.expect(public_from("A", "m%d" % i), timeout=10)
        dt = time.monotonic() - t0
        assert 1.5 <= dt <= 10, "25 messages at 10/s burst 5 took %.2f s" % dt
        expect_nothing(a, b)


def _accepted_after_close(s, n, rounds):
    """n clients are closed by the login timeout; as soon as each has seen
    the end, n new ones connect and all are served.  Then those leave
    with DISCONNECT, and the next round's n connect as soon as they have
    seen the end.  A place counts until the server has closed, no longer:
    the worker's linger after its half-close does not hold it."""
    for r in range(rounds):
        lazy = [Client(s) for _ in range(n)]
        t0 = time.monotonic()
        for c in lazy:
            c.expect_closed(timeout=5)
        # Accepted, not refused at once: they lasted to the timeout.
        dt = time.monotonic() - t0
        assert dt >= 0.5, "round %d: closed after %.2f s: refused" % (r, dt)
        fresh = []
        for i in range(n):
            c = Client(s)
            c.send(req("IDENTIFY", username="r%d-%d" % (r, i)))
            fresh.append(c)
        for i, c in enumerate(fresh):
            try:
                got = c.recv()
            except tntest.Closed:
                raise AssertionError("round %d: client %d refused right "
                                     "after the others were closed"
                                     % (r, i))
            assert got == resp("IDENTIFY", "SUCCESS", "r%d-%d" % (r, i)), \
                got
        for c in fresh:
            c.send(req("DISCONNECT"))
        for c in fresh:
            c.expect_closed(allow_lines=True)


def test_a_closed_client_frees_its_place_at_once():
    with Server("--max-clients", "3", "--login-timeout", "1") as s:
        _accepted_after_close(s, 3, 2)


def test_a_closed_client_frees_its_address_place_at_once():
    with Server("--max-clients-per-ip", "2", "--login-timeout", "1") as s:
        _accepted_after_close(s, 2, 2)
        assert "from that address" not in s.log_text()


def test_a_closed_worker_that_stays_is_killed():
    # Once its client is closed a worker no longer counts against the
    # limits; one that does not exit then (stopped here, as a hostile
    # one might be) is killed, so uncounted processes cannot pile up.
    with Server("--login-timeout", "1") as s:
        c = Client(s)
        w = s.worker_pid(c)
        c.expect_closed(timeout=5)
        os.kill(w, signal.SIGSTOP)
        try:
            tntest.wait_until(lambda: not tntest.pid_alive(w), 6,
                              what="worker %d to be killed" % w)
        finally:
            if tntest.pid_alive(w):
                os.kill(w, signal.SIGCONT)
        s.wait_log(r"worker %d \(.*\) killed by SIGKILL: still running" % w)
        d = Client(s).identify("after")
        d.send(req("USERS"))
        d.expect(tntest.user_list({"after": "ACTIVE"}))


if __name__ == "__main__":
    tntest.main(globals())
