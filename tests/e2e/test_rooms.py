"""NEW_ROOM, JOIN_ROOM, ROOM_USERS, ROOM_TEXT and LEAVE_ROOM
(protocol.md, Rooms and the messages of the same names)."""

import os
import signal
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
import tntest  # noqa: E402
from tntest import (Client, Server, barrier, connect_users, expect_nothing,
                    invite, join, joined_room, left_room, make_room, new_room,
                    req, resp, room_text_from, room_user_list)
from tntest.steps import expect_room_users, leave_room  # noqa: E402

R = "Room 1"


def test_new_room_success_and_already_exists():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        a.send(b'{"type":"NEW_ROOM","roomname":"Room 1"}\n')
        a.expect(b'{"type":"RESPONSE","operation":"NEW_ROOM",'
                 b'"result":"SUCCESS","extra":"Room 1"}\n')
        a.send(req("NEW_ROOM", roomname=R))
        a.expect(b'{"type":"RESPONSE","operation":"NEW_ROOM",'
                 b'"result":"ROOM_ALREADY_EXISTS","extra":"Room 1"}\n')
        b.send(req("NEW_ROOM", roomname=R))
        b.expect(resp("NEW_ROOM", "ROOM_ALREADY_EXISTS", R))
        expect_nothing(a, b)
        # The creator is the only member.
        a.send(req("ROOM_USERS", roomname=R))
        a.expect(b'{"type":"ROOM_USER_LIST","roomname":"Room 1",'
                 b'"users":{"Kimberly":"ACTIVE"}}\n')
        b.send(req("ROOM_USERS", roomname=R))
        b.expect(resp("ROOM_USERS", "NOT_JOINED", R))


def test_room_names_case_sensitive():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        new_room(a, "Room")
        new_room(b, "room")
        new_room(a, "ROOM")
        a.send(req("NEW_ROOM", roomname="Room"))
        a.expect(resp("NEW_ROOM", "ROOM_ALREADY_EXISTS", "Room"))
        # An invitation to "room" does not let a join "Room".
        invite(b, "room", a)
        b.send(req("JOIN_ROOM", roomname="Room"))
        b.expect(resp("JOIN_ROOM", "NOT_INVITED", "Room"))
        join(a, "room", [b])
        expect_room_users(a, "room", {"Luis": "ACTIVE",
                                      "Kimberly": "ACTIVE"})
        b.send(req("ROOM_USERS", roomname="ROOM"))
        b.expect(resp("ROOM_USERS", "NOT_JOINED", "ROOM"))


def test_room_names_with_spaces_and_multibyte():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        for name in ("  Room  1 ", " ", "a b c d e f g h ",
                     "\u00e9" * 16, "\u65e5\u672c \U0001F600"):
            make_room(a, name, members=[b])
            a.send(req("ROOM_TEXT", roomname=name, text="in " + name))
            b.expect(room_text_from(name, "Kimberly", "in " + name))
            b.send(req("ROOM_USERS", roomname=name))
            assert b.recv() == room_user_list(
                name, {"Kimberly": "ACTIVE", "Luis": "ACTIVE"})
        # "Room 1" and "Room  1" are different rooms.
        new_room(a, "Room 1")
        new_room(a, "Room  1")
        expect_nothing(a, b)


def test_join_room_success_and_joined_room_to_others():
    with Server() as s:
        u = Client(s)
        a, b, c, d = connect_users(s, "Kimberly", "Luis", "Antonio", "Dora")
        make_room(a, R, members=[c])
        invite(a, R, b)
        b.send(b'{"type":"JOIN_ROOM","roomname":"Room 1"}\n')
        b.expect(b'{"type":"RESPONSE","operation":"JOIN_ROOM",'
                 b'"result":"SUCCESS","extra":"Room 1"}\n')
        a.expect(b'{"type":"JOINED_ROOM","roomname":"Room 1",'
                 b'"username":"Luis"}\n')
        c.expect(joined_room(R, "Luis"))
        barrier(b, d)
        expect_nothing(a, b, c, d, u)
        b.send(req("ROOM_USERS", roomname=R))
        assert b.recv() == room_user_list(
            R, {"Kimberly": "ACTIVE", "Luis": "ACTIVE", "Antonio": "ACTIVE"})


def test_rejoin_by_member_is_success_only():
    with Server() as s:
        a, b, c = connect_users(s, "Kimberly", "Luis", "Antonio")
        make_room(a, R, members=[b])
        for x in (b, a, b):
            x.send(req("JOIN_ROOM", roomname=R))
            x.expect(resp("JOIN_ROOM", "SUCCESS", R))
        # Had a JOINED_ROOM been sent, it would precede these room texts.
        b.send(req("ROOM_TEXT", roomname=R, text="sync-b"))
        a.expect(room_text_from(R, "Luis", "sync-b"))
        a.send(req("ROOM_TEXT", roomname=R, text="sync-a"))
        b.expect(room_text_from(R, "Kimberly", "sync-a"))
        expect_nothing(a, b, c)


def test_join_errors():
    with Server() as s:
        a, b, c = connect_users(s, "Kimberly", "Luis", "Antonio")
        c.send(req("JOIN_ROOM", roomname=R))
        c.expect(b'{"type":"RESPONSE","operation":"JOIN_ROOM",'
                 b'"result":"NO_SUCH_ROOM","extra":"Room 1"}\n')
        make_room(a, R, invited=[b])
        # Across nodes (test_suite_across_nodes), c's node has read the
        # room's creation, or the answer is NO_SUCH_ROOM.
        tntest.settle(c)
        c.send(req("JOIN_ROOM", roomname=R))
        c.expect(b'{"type":"RESPONSE","operation":"JOIN_ROOM",'
                 b'"result":"NOT_INVITED","extra":"Room 1"}\n')
        c.send(req("JOIN_ROOM", roomname="room 1"))
        c.expect(resp("JOIN_ROOM", "NO_SUCH_ROOM", "room 1"))
        expect_nothing(a, b, c)
        # The connection stays usable after an error reply.
        join(b, R, [a])


def test_invitation_used_up_after_join():
    with Server() as s:
        a, b, c = connect_users(s, "Kimberly", "Luis", "Antonio")
        make_room(a, R, members=[b])
        leave_room(b, R, a)
        # a is still a member, so the room exists: b needs a new invitation.
        b.send(req("JOIN_ROOM", roomname=R))
        b.expect(resp("JOIN_ROOM", "NOT_INVITED", R))
        invite(a, R, b)
        join(b, R, [a])
        expect_nothing(a, b, c)


def test_room_users():
    with Server() as s:
        a, b, c, d = connect_users(s, "Kimberly", "Luis", "Antonio", "Dora")
        a.send(req("STATUS", status="AWAY"))
        for x in (b, c, d):
            x.expect(tntest.new_status("Kimberly", "AWAY"))
        make_room(a, R, members=[b], invited=[c])
        b.send(req("STATUS", status="BUSY"))
        for x in (a, c, d):
            x.expect(tntest.new_status("Luis", "BUSY"))
        want = room_user_list(R, {"Kimberly": "AWAY", "Luis": "BUSY"})
        a.send(req("ROOM_USERS", roomname=R))
        got = a.expect(want)
        assert list(got.keys()) == ["type", "roomname", "users"]
        b.send(req("ROOM_USERS", roomname=R))
        b.expect(want)
        # Invited but not joined, and never invited: NOT_JOINED.
        c.send(req("ROOM_USERS", roomname=R))
        c.expect(b'{"type":"RESPONSE","operation":"ROOM_USERS",'
                 b'"result":"NOT_JOINED","extra":"Room 1"}\n')
        d.send(req("ROOM_USERS", roomname=R))
        d.expect(resp("ROOM_USERS", "NOT_JOINED", R))
        d.send(req("ROOM_USERS", roomname="Nope"))
        d.expect(b'{"type":"RESPONSE","operation":"ROOM_USERS",'
                 b'"result":"NO_SUCH_ROOM","extra":"Nope"}\n')
        expect_nothing(a, b, c, d)


def test_room_text_to_other_members_only():
    with Server() as s:
        u = Client(s)
        a, b, c, d, e = connect_users(s, "Kimberly", "Luis", "Antonio",
                                      "Dora", "Eva")
        make_room(a, R, members=[b, e], invited=[c])
        a.send(b'{"type":"ROOM_TEXT","roomname":"Room 1",'
               b'"text":"Hello Room 1!"}\n')
        b.expect(b'{"type":"ROOM_TEXT_FROM","roomname":"Room 1",'
                 b'"username":"Kimberly","text":"Hello Room 1!"}\n')
        e.expect(room_text_from(R, "Kimberly", "Hello Room 1!"))
        barrier(a, c, d)          # the invitee and the outsider got nothing
        expect_nothing(a, b, c, d, e, u)
        b.send(req("ROOM_TEXT", roomname=R, text="\u00e9\\\"\x01"))
        a.expect(room_text_from(R, "Luis", "\u00e9\\\"\x01"))
        e.expect(room_text_from(R, "Luis", "\u00e9\\\"\x01"))
        expect_nothing(a, b, c, d, e, u)


def test_room_text_errors():
    with Server() as s:
        a, b, c = connect_users(s, "Kimberly", "Luis", "Antonio")
        make_room(a, R, invited=[b])
        b.send(req("ROOM_TEXT", roomname=R, text="x"))
        b.expect(b'{"type":"RESPONSE","operation":"ROOM_TEXT",'
                 b'"result":"NOT_JOINED","extra":"Room 1"}\n')
        c.send(req("ROOM_TEXT", roomname=R, text="x"))
        c.expect(resp("ROOM_TEXT", "NOT_JOINED", R))
        c.send(req("ROOM_TEXT", roomname="Nope", text="x"))
        c.expect(b'{"type":"RESPONSE","operation":"ROOM_TEXT",'
                 b'"result":"NO_SUCH_ROOM","extra":"Nope"}\n')
        expect_nothing(a, b, c)


def test_leave_room():
    with Server() as s:
        a, b, c, d = connect_users(s, "Kimberly", "Luis", "Antonio", "Dora")
        make_room(a, R, members=[b, c])
        b.send(b'{"type":"LEAVE_ROOM","roomname":"Room 1"}\n')
        a.expect(b'{"type":"LEFT_ROOM","roomname":"Room 1",'
                 b'"username":"Luis"}\n')
        c.expect(left_room(R, "Luis"))
        barrier(b, d)
        expect_nothing(a, b, c, d)
        expect_room_users(a, R, {"Kimberly": "ACTIVE",
                                 "Antonio": "ACTIVE"})
        # b is no longer a member.
        b.send(req("ROOM_TEXT", roomname=R, text="x"))
        b.expect(resp("ROOM_TEXT", "NOT_JOINED", R))
        a.send(req("ROOM_TEXT", roomname=R, text="after"))
        c.expect(room_text_from(R, "Kimberly", "after"))
        expect_nothing(a, b, c, d)


def test_leave_room_errors():
    with Server() as s:
        a, b, c = connect_users(s, "Kimberly", "Luis", "Antonio")
        make_room(a, R, members=[b], invited=[c])
        leave_room(b, R, a)
        b.send(req("LEAVE_ROOM", roomname=R))
        b.expect(b'{"type":"RESPONSE","operation":"LEAVE_ROOM",'
                 b'"result":"NOT_JOINED","extra":"Room 1"}\n')
        c.send(req("LEAVE_ROOM", roomname=R))        # invited only
        c.expect(resp("LEAVE_ROOM", "NOT_JOINED", R))
        c.send(req("LEAVE_ROOM", roomname="Nope"))
        c.expect(b'{"type":"RESPONSE","operation":"LEAVE_ROOM",'
                 b'"result":"NO_SUCH_ROOM","extra":"Nope"}\n')
        expect_nothing(a, b, c)


def test_room_disappears_when_last_member_leaves():
    with Server() as s:
        a, b, c = connect_users(s, "Kimberly", "Luis", "Antonio")
        make_room(a, R, members=[b], invited=[c])
        leave_room(b, R, a)
        a.send(req("LEAVE_ROOM", roomname=R))
        # Nobody is left to be told.
        expect_nothing(a, b, c)
        for x, op, extra in ((a, "ROOM_USERS", {}), (a, "ROOM_TEXT",
                                                     {"text": "x"}),
                             (a, "LEAVE_ROOM", {}), (c, "JOIN_ROOM", {}),
                             (b, "JOIN_ROOM", {})):
            x.send(req(op, roomname=R, **extra))
            x.expect(resp(op, "NO_SUCH_ROOM", R))
        a.send(req("INVITE", roomname=R, usernames=["Luis"]))
        a.expect(resp("INVITE", "NO_SUCH_ROOM", R))
        # The name is free again and the old invitation is gone.
        b.send(req("NEW_ROOM", roomname=R))
        b.expect(resp("NEW_ROOM", "SUCCESS", R))
        c.send(req("JOIN_ROOM", roomname=R))
        c.expect(resp("JOIN_ROOM", "NOT_INVITED", R))
        a.send(req("JOIN_ROOM", roomname=R))
        a.expect(resp("JOIN_ROOM", "NOT_INVITED", R))
        b.send(req("ROOM_USERS", roomname=R))
        b.expect(room_user_list(R, {"Luis": "ACTIVE"}))
        expect_nothing(a, b, c)


def test_single_member_room_leave_and_recreate():
    with Server() as s:
        a = Client(s).identify("Kimberly")
        for _ in range(5):
            new_room(a, R)
            a.send(req("LEAVE_ROOM", roomname=R))
        a.send(req("ROOM_USERS", roomname=R))
        a.expect(resp("ROOM_USERS", "NO_SUCH_ROOM", R))


def test_rooms_are_separate():
    with Server() as s:
        a, b, c = connect_users(s, "Kimberly", "Luis", "Antonio")
        make_room(a, "R1", members=[b])
        make_room(a, "R2", members=[c])
        make_room(b, "R3", members=[c])
        a.send(req("ROOM_TEXT", roomname="R1", text="one"))
        b.expect(room_text_from("R1", "Kimberly", "one"))
        a.send(req("ROOM_TEXT", roomname="R2", text="two"))
        c.expect(room_text_from("R2", "Kimberly", "two"))
        c.send(req("ROOM_TEXT", roomname="R3", text="three"))
        b.expect(room_text_from("R3", "Antonio", "three"))
        a.send(req("ROOM_TEXT", roomname="R3", text="x"))
        a.expect(resp("ROOM_TEXT", "NOT_JOINED", "R3"))
        expect_nothing(a, b, c)
        leave_room(c, "R2", a)
        c.send(req("ROOM_TEXT", roomname="R3", text="still"))
        b.expect(room_text_from("R3", "Antonio", "still"))
        expect_nothing(a, b, c)


def test_invitation_survives_inviter_leaving():
    with Server() as s:
        a, b, c = connect_users(s, "Kimberly", "Luis", "Antonio")
        make_room(a, R, members=[c], invited=[b])
        leave_room(a, R, c)
        # The room still exists (c), so b's invitation still stands.
        join(b, R, [c])
        expect_room_users(b, R, {"Antonio": "ACTIVE",
                                 "Luis": "ACTIVE"})
        expect_nothing(a, b, c)


def test_invitation_survives_inviter_disconnect():
    with Server() as s:
        a, b, c = connect_users(s, "Kimberly", "Luis", "Antonio")
        make_room(a, R, members=[c], invited=[b])
        a.send(req("DISCONNECT"))
        a.expect_closed()
        c.expect(left_room(R, "Kimberly"))
        c.expect(tntest.disconnected("Kimberly"))
        b.expect(tntest.disconnected("Kimberly"))
        join(b, R, [c])
        expect_nothing(b, c)


# --- --max-rooms-per-user (issue 14): the rooms a user created that still
# exist; past the cap NEW_ROOM answers TOO_MANY_ROOMS.

class DefaultRoomsServer(Server):
    """A talknetd with the default rooms-per-user cap: the harness lifts
    it (tntest.LIFT_LIMITS) along with the other flood limits."""

    def argv(self):
        a = super().argv()
        i = a.index("--max-rooms-per-user")
        return a[:i] + a[i + 2:]


def refused_room(client, room):
    """client's NEW_ROOM is refused: it has too many rooms."""
    client.send(req("NEW_ROOM", roomname=room))
    client.expect(too_many(room))


def leave_last(client, room):
    """client, the last member, leaves room, which is then gone."""
    client.send(req("LEAVE_ROOM", roomname=room))
    client.send(req("ROOM_USERS", roomname=room))
    client.expect(resp("ROOM_USERS", "NO_SUCH_ROOM", room))
    # Gone on every node (across nodes the others read it a moment later).
    tntest.settle(client)


def two_rooms_of_a(s):
    """A and B on s; A made r1 and left it to B, then made r2: two
    rooms count for A."""
    a, b = connect_users(s, "A", "B")
    make_room(a, "r1", members=[b])
    leave_room(a, "r1", b)
    new_room(a, "r2")
    return a, b


def last_room(client, room, refused):
    """client may create room, and then no more: refused is refused."""
    new_room(client, room)
    refused_room(client, refused)


def r1_gone_frees_one(a, b):
    """B leaves r1, the last: A may create one room more, r3, not r4."""
    leave_last(b, "r1")
    last_room(a, "r3", "r4")


def too_many(room):
    return resp("NEW_ROOM", "TOO_MANY_ROOMS", room)


def test_rooms_per_user_default_is_10():
    with DefaultRoomsServer() as s:
        a, b = connect_users(s, "A", "B")
        for i in range(10):
            new_room(a, "r%d" % i)
        a.send(req("NEW_ROOM", roomname="r10"))
        a.expect(b'{"type":"RESPONSE","operation":"NEW_ROOM",'
                 b'"result":"TOO_MANY_ROOMS","extra":"r10"}\n')
        # The cap is A's: B creates as usual, and the name A was refused
        # is free.
        new_room(b, "r10")
        # Once one of A's rooms is gone, A may create again.
        leave_room(a, "r3")
        last_room(a, "r11", "r12")
        expect_nothing(a, b)


def test_rooms_per_user_counts_rooms_left_that_still_exist():
    with Server("--max-rooms-per-user", "2") as s:
        # r1 still exists (B is in it): it still counts for A.
        a, b = two_rooms_of_a(s)
        refused_room(a, "r3")
        # It stops counting when it disappears.
        r1_gone_frees_one(a, b)
        # B's rooms are B's: joining r2 and r3 costs B nothing.
        invite(a, "r2", b)
        join(b, "r2", [a])
        new_room(b, "b1")
        last_room(b, "b2", "b3")
        expect_nothing(a, b)


def test_rooms_per_user_zero_lifts_the_cap():
    with Server("--max-rooms-per-user", "0", "--max-rooms", "40") as s:
        a = Client(s).identify("A")
        a.send(b"".join(tntest.compact(req("NEW_ROOM", roomname="r%d" % i))
                        for i in range(41)))
        for i in range(40):
            a.expect(resp("NEW_ROOM", "SUCCESS", "r%d" % i))
        # Only the server's cap is left.
        a.expect(too_many("r40"))


def test_rooms_per_user_belong_to_the_user_not_its_row():
    # Two rows only: the newcomer gets the row A had.
    with Server("--max-rooms-per-user", "2", "--max-clients", "2") as s:
        a, b = connect_users(s, "A", "B")
        make_room(a, "r1", members=[b])
        make_room(a, "r2", members=[b])
        a.send(req("DISCONNECT"))
        a.expect_closed()
        b.expect_unordered([left_room("r1", "A"), left_room("r2", "A")])
        b.expect(tntest.disconnected("A"))
        # A newcomer in A's row, even one named A, starts at zero while
        # A's rooms live on with B.
        c = tntest.identify_new(s, "A")
        b.expect(tntest.new_user("A"))
        new_room(c, "c1")
        # A's rooms disappearing does not count for the newcomer.
        leave_room(b, "r1")
        leave_last(b, "r2")
        last_room(c, "c2", "c3")
        expect_nothing(b, c)


def test_rooms_per_user_survive_a_hub_restart():
    with Server("--max-rooms-per-user", "2") as s:
        a, b = two_rooms_of_a(s)
        hub = s.hub_pid()
        os.kill(hub, signal.SIGKILL)
        tntest.wait_until(lambda: [p for p in s.titled("talknetd: hub")
                                   if p != hub], 3, what="a new hub")
        # Across nodes, the new hub must reach Redis before a room can
        # be claimed there (a no-op on one node).
        tntest.settle(a, b)
        # The new hub counted them again from the table: still two.
        refused_room(a, "r3")
        r1_gone_frees_one(a, b)
        expect_nothing(a, b)


def test_room_flood_from_one_address_leaves_rooms_for_others():
    # The attack of issue 14: 16 connections from one address create
    # rooms as fast as they can.  Each gets its 10; the table is never
    # full, so anyone else can still create a room.
    with DefaultRoomsServer() as s:
        names = ["f%02d" % i for i in range(16)]
        flood = connect_users(s, *names)
        for c in flood:
            c.send(b"".join(tntest.compact(req("NEW_ROOM",
                                               roomname="%s-%d" % (c.name, i)))
                            for i in range(100)))
        for c in flood:
            got = [c.recv(timeout=10) for _ in range(100)]
            ok = [m for m in got if m.get("type") == "RESPONSE" and
                  m.get("result") == "SUCCESS"]
            assert len(ok) == 10, (c.name, len(ok))
            assert got[10:] == [too_many("%s-%d" % (c.name, i))
                                for i in range(10, 100)], c.name
        victim = Client(s).identify("victim")
        new_room(victim, "mine")


if __name__ == "__main__":
    tntest.main(globals())
