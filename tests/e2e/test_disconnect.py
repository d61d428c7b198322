"""DISCONNECT, and connections that close, break or whose worker dies
(protocol.md, DISCONNECT)."""

import os
import signal
import socket
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
import tntest  # noqa: E402
from tntest import (Client, Server, canon, connect_users, disconnected,
                    expect_nothing, left_room, make_room, new_room, new_user,
                    req, resp, room_user_list)
from tntest.steps import expect_room_users, name_taken  # noqa: E402


def expect_leave(client, rooms, name):
    """LEFT_ROOM for each room (any order among rooms), then DISCONNECTED,
    then nothing."""
    got = [client.recv() for _ in range(len(rooms) + 1)]
    want_left = sorted(canon(left_room(r, name)) for r in rooms)
    assert sorted(canon(g) for g in got[:-1]) == want_left, \
        "%r: expected LEFT_ROOM for %r then DISCONNECTED, got %r" \
        % (client, rooms, got)
    assert got[-1] == disconnected(name), \
        "%r: expected DISCONNECTED %s last, got %r" % (client, name, got)


def scenario(s, how):
    u = Client(s)
    a, b, c, d = connect_users(s, "Kimberly", "Luis", "Antonio", "Dora")
    make_room(a, "R1", members=[b])
    make_room(b, "R2", members=[a, c])
    new_room(b, "R3")                           # b alone
    make_room(b, "R4", invited=[c])             # b, and c only invited
    make_room(a, "R5", invited=[b])             # b only invited
    expect_nothing(a, b, c, d, u)

    if how == "disconnect":
        b.send(b'{"type":"DISCONNECT"}\n')
    elif how == "close":
        b.close()
    elif how == "reset":
        b.abort()
    elif how == "shutdown":
        b.sock.shutdown(socket.SHUT_WR)
    elif how == "kill":
        pid = s.worker_pid(b)
        assert pid != s.pid
        os.kill(pid, signal.SIGKILL)
    else:
        raise ValueError(how)
    if how in ("disconnect", "shutdown", "kill"):
        b.expect_closed()              # no reply, just EOF

    expect_leave(a, ["R1", "R2"], "Luis")
    expect_leave(c, ["R2"], "Luis")
    d.expect(b'{"type":"DISCONNECTED","username":"Luis"}\n')
    expect_nothing(a, c, d, u)

    # Rooms keep their other members; rooms left empty are gone.
    a.send(req("ROOM_USERS", roomname="R1"))
    a.expect(room_user_list("R1", {"Kimberly": "ACTIVE"}))
    expect_room_users(c, "R2", {"Kimberly": "ACTIVE",
                                "Antonio": "ACTIVE"})
    c.send(req("JOIN_ROOM", roomname="R4"))
    c.expect(resp("JOIN_ROOM", "NO_SUCH_ROOM", "R4"))
    new_room(a, "R3")
    assert d.users() == {"Kimberly": "ACTIVE", "Antonio": "ACTIVE",
                         "Dora": "ACTIVE"}

    # The name is free; the new Luis has no rooms and no invitations.
    b2 = Client(s).identify("Luis")
    for x in (a, c, d):
        x.expect(new_user("Luis"))
    for room in ("R5", "R1", "R2"):
        b2.send(req("JOIN_ROOM", roomname=room))
        b2.expect(resp("JOIN_ROOM", "NOT_INVITED", room))
    b2.send(req("ROOM_USERS", roomname="R1"))
    b2.expect(resp("ROOM_USERS", "NOT_JOINED", "R1"))
    a.send(req("TEXT", username="Luis", text="welcome back"))
    b2.expect(tntest.text_from("Kimberly", "welcome back"))
    expect_nothing(a, b2, c, d, u)


def _scenario_test(how):
    """A test of its own for scenario(how), on a new server."""
    def test():
        with Server() as s:
            scenario(s, how)
    return test


for _name, _how in (("test_disconnect_message", "disconnect"),
                    ("test_abrupt_close", "close"),
                    ("test_connection_reset", "reset"),
                    ("test_half_close", "shutdown")):
    globals()[_name] = _scenario_test(_how)


def test_worker_killed():
    with Server() as s:
        scenario(s, "kill")
        # The daemon goes on serving new connections.
        e = Client(s).identify("Eva")
        assert "Eva" in e.users()


def test_disconnect_no_reply_and_nothing_after_it():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        b.send(b'{"type":"DISCONNECT"}\n{"type":"PUBLIC_TEXT","text":"late"}\n')
        b.expect_closed()
        a.expect(disconnected("Luis"))
        expect_nothing(a)


def test_disconnect_alone():
    with Server() as s:
        a = Client(s).identify("Kimberly")
        new_room(a, "R")
        a.send(req("DISCONNECT"))
        a.expect_closed()
        b = Client(s).identify_eventually("Kimberly")
        new_room(b, "R")


def test_unidentified_close_notifies_nobody():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        u1 = Client(s)
        u1.close()
        u2 = Client(s)
        u2.send(b"\n")                   # an empty frame, then gone
        u2.abort()
        u3 = name_taken(s, "Kimberly")
        u3.close()
        expect_nothing(a, b, timeout=0.5)
        assert a.users() == {"Kimberly": "ACTIVE", "Luis": "ACTIVE"}


def test_unidentified_worker_killed_notifies_nobody():
    with Server() as s:
        a = Client(s).identify("Kimberly")
        u = Client(s)
        os.kill(s.worker_pid(u), signal.SIGKILL)
        u.expect_closed()
        expect_nothing(a, timeout=0.5)
        assert a.users() == {"Kimberly": "ACTIVE"}


def test_many_disconnects_in_a_row():
    with Server() as s:
        a = Client(s).identify("Kimberly")
        new_room(a, "R")
        for i in range(20):
            x = Client(s).identify("x%d" % i)
            a.expect(new_user("x%d" % i))
            tntest.invite(a, "R", x)
            tntest.join(x, "R", [a])
            if i % 3 == 0:
                x.send(req("DISCONNECT"))
            elif i % 3 == 1:
                x.close()
            else:
                x.abort()
            a.expect(left_room("R", "x%d" % i))
            a.expect(disconnected("x%d" % i))
        assert a.users() == {"Kimberly": "ACTIVE"}
        a.send(req("ROOM_USERS", roomname="R"))
        a.expect(room_user_list("R", {"Kimberly": "ACTIVE"}))


def test_last_words_before_close_are_delivered():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        for how in ("shutdown", "close", "disconnect"):
            a.send(req("PUBLIC_TEXT", text="last words " + how))
            if how == "shutdown":
                a.sock.shutdown(socket.SHUT_WR)
            elif how == "close":
                a.close()
            else:
                a.send(req("DISCONNECT"))
            b.expect(tntest.public_from("Kimberly", "last words " + how))
            b.expect(disconnected("Kimberly"))
            a = tntest.identify_new(s, "Kimberly")
            b.expect(new_user("Kimberly"))
        expect_nothing(a, b)


def test_mixed_messages_keep_their_order():
    with Server() as s:
        a, b, c = connect_users(s, "Kimberly", "Luis", "Antonio")
        make_room(a, "R", members=[b])
        seq = []
        want = []
        sts = ["AWAY", "BUSY", "ACTIVE"]
        for i in range(60):
            k = i % 4
            if k == 0:
                seq.append(req("TEXT", username="Luis", text="t%d" % i))
                want.append(tntest.text_from("Kimberly", "t%d" % i))
            elif k == 1:
                seq.append(req("PUBLIC_TEXT", text="p%d" % i))
                want.append(tntest.public_from("Kimberly", "p%d" % i))
            elif k == 2:
                seq.append(req("ROOM_TEXT", roomname="R", text="r%d" % i))
                want.append(tntest.room_text_from("R", "Kimberly", "r%d" % i))
            else:
                st = sts[(i // 4) % 3]
                seq.append(req("STATUS", status=st))
                want.append(tntest.new_status("Kimberly", st))
        a.send(b"".join(tntest.compact(m) for m in seq))
        for w in want:
            b.expect(w)
        for w in want:
            if w["type"] in ("PUBLIC_TEXT_FROM", "NEW_STATUS"):
                c.expect(w)
        expect_nothing(a, b, c)


def test_disconnect_from_many_rooms():
    with Server() as s:
        a, b, c = connect_users(s, "Kimberly", "Luis", "Antonio")
        rooms = ["room %d" % i for i in range(100)]
        for r in rooms:
            new_room(b, r)
        b.send(b"".join(tntest.compact(req("INVITE", roomname=r,
                                           usernames=["Kimberly"]))
                        for r in rooms))
        for r in rooms:
            a.expect(tntest.invitation("Luis", r))
        a.send(b"".join(tntest.compact(req("JOIN_ROOM", roomname=r))
                        for r in rooms))
        for r in rooms:
            a.expect(resp("JOIN_ROOM", "SUCCESS", r))
        for r in rooms:
            b.expect(tntest.joined_room(r, "Kimberly"))
        b.close()
        expect_leave(a, rooms, "Luis")
        c.expect(disconnected("Luis"))
        expect_nothing(a, c)
        for r in rooms[:3]:
            a.send(req("ROOM_USERS", roomname=r))
            a.expect(room_user_list(r, {"Kimberly": "ACTIVE"}))


if __name__ == "__main__":
    tntest.main(globals())
