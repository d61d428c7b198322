"""INVITE: the order of checks, all or nothing, who gets INVITATION
(protocol.md, INVITE)."""

import os
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
import tntest  # noqa: E402
from tntest import (Client, Server, barrier, connect_users, disconnected,
                    expect_nothing, invitation, join, left_room, make_room,
                    new_room, req, resp)
from tntest.steps import cut_off, leave_room  # noqa: E402

R = "Room 1"


def test_invite_sends_invitation_to_each_invitee():
    with Server() as s:
        u = Client(s)
        a, b, c, d = connect_users(s, "Kimberly", "Luis", "Antonio", "Dora")
        new_room(a, R)
        a.send(b'{"type":"INVITE","roomname":"Room 1",'
               b'"usernames":["Luis","Antonio"]}\n')
        b.expect(b'{"type":"INVITATION","username":"Kimberly",'
                 b'"roomname":"Room 1"}\n')
        c.expect(invitation("Kimberly", R))
        barrier(a, d)
        # No reply to the inviter: a later reply comes first.
        a.send(req("USERS"))
        assert a.recv()["type"] == "USER_LIST"
        expect_nothing(a, b, c, d, u)
        join(b, R, [a])
        join(c, R, [a, b])


def test_invite_no_such_room_comes_first():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        a.send(req("INVITE", roomname=R, usernames=["Luis"]))
        a.expect(b'{"type":"RESPONSE","operation":"INVITE",'
                 b'"result":"NO_SUCH_ROOM","extra":"Room 1"}\n')
        # Missing users too: the room check still decides.
        a.send(req("INVITE", roomname=R, usernames=["Ghost", "Luis"]))
        a.expect(resp("INVITE", "NO_SUCH_ROOM", R))
        new_room(a, R)
        a.send(req("INVITE", roomname="room 1", usernames=["Luis"]))
        a.expect(resp("INVITE", "NO_SUCH_ROOM", "room 1"))
        expect_nothing(a, b)


def test_invite_not_joined_comes_second():
    with Server() as s:
        a, b, c = connect_users(s, "Kimberly", "Luis", "Antonio")
        make_room(a, R, invited=[b])
        # c is no member.
        c.send(req("INVITE", roomname=R, usernames=["Luis"]))
        c.expect(b'{"type":"RESPONSE","operation":"INVITE",'
                 b'"result":"NOT_JOINED","extra":"Room 1"}\n')
        # Before NO_SUCH_USER.
        c.send(req("INVITE", roomname=R, usernames=["Ghost"]))
        c.expect(resp("INVITE", "NOT_JOINED", R))
        # b is only invited, which is not a member.
        b.send(req("INVITE", roomname=R, usernames=["Antonio"]))
        b.expect(resp("INVITE", "NOT_JOINED", R))
        expect_nothing(a, b, c)
        # c was never invited by those attempts.
        c.send(req("JOIN_ROOM", roomname=R))
        c.expect(resp("JOIN_ROOM", "NOT_INVITED", R))


def test_invite_no_such_user_first_missing_all_or_nothing():
    with Server() as s:
        a, b, c = connect_users(s, "Kimberly", "Luis", "Antonio")
        new_room(a, R)
        a.send(req("INVITE", roomname=R,
                   usernames=["Luis", "Ghost1", "Antonio", "Ghost2"]))
        a.expect(b'{"type":"RESPONSE","operation":"INVITE",'
                 b'"result":"NO_SUCH_USER","extra":"Ghost1"}\n')
        a.send(req("INVITE", roomname=R, usernames=["Ghost2", "Ghost1"]))
        a.expect(resp("INVITE", "NO_SUCH_USER", "Ghost2"))
        a.send(req("INVITE", roomname=R, usernames=["Luis", "luis"]))
        a.expect(resp("INVITE", "NO_SUCH_USER", "luis"))
        barrier(a, b, c)
        expect_nothing(a, b, c)
        for x in (b, c):
            x.send(req("JOIN_ROOM", roomname=R))
            x.expect(resp("JOIN_ROOM", "NOT_INVITED", R))
        # A good list afterwards works.
        tntest.invite(a, R, b, c)


def test_invite_skips_members_invited_and_inviter():
    with Server() as s:
        a, b, c, d, e = connect_users(s, "Kimberly", "Luis", "Antonio",
                                      "Dora", "Eva")
        make_room(a, R, members=[b], invited=[c])
        a.send(req("INVITE", roomname=R,
                   usernames=["Kimberly", "Luis", "Antonio", "Dora"]))
        d.expect(invitation("Kimberly", R))
        barrier(a, b, c, e)
        expect_nothing(a, b, c, d, e)
        # A member other than the creator may invite too.
        b.send(req("INVITE", roomname=R,
                   usernames=["Antonio", "Eva", "Luis", "Dora"]))
        e.expect(b'{"type":"INVITATION","username":"Luis",'
                 b'"roomname":"Room 1"}\n')
        barrier(b, a, c, d)
        expect_nothing(a, b, c, d, e)
        join(e, R, [a, b])
        join(c, R, [a, b, e])


def test_invite_everyone_already_there_is_silent():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        make_room(a, R, members=[b])
        a.send(req("INVITE", roomname=R, usernames=["Kimberly"]))
        a.send(req("INVITE", roomname=R, usernames=["Luis", "Kimberly"]))
        barrier(a, b)
        a.send(req("USERS"))
        assert a.recv()["type"] == "USER_LIST"
        expect_nothing(a, b)


def test_invite_duplicates_one_invitation():
    with Server() as s:
        a, b, c = connect_users(s, "Kimberly", "Luis", "Antonio")
        new_room(a, R)
        a.send(req("INVITE", roomname=R,
                   usernames=["Luis", "Luis", "Antonio", "Luis", "Antonio"]))
        b.expect(invitation("Kimberly", R))
        c.expect(invitation("Kimberly", R))
        barrier(a, b, c)
        expect_nothing(a, b, c)


def test_invite_again_after_leaving():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        make_room(a, R, members=[b])
        leave_room(b, R, a)
        # b is neither member nor invited any more: invited anew.
        tntest.invite(a, R, b)
        join(b, R, [a])


def test_invite_empty_list_is_invalid():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        make_room(a, R, members=[b])
        a.send(b'{"type":"INVITE","roomname":"Room 1","usernames":[]}\n')
        a.expect_invalid_close()
        b.expect(left_room(R, "Kimberly"))
        b.expect(disconnected("Kimberly"))
        expect_nothing(b)


def test_invite_empty_name_is_invalid():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        new_room(a, R)
        a.send(req("INVITE", roomname=R, usernames=["Luis", ""]))
        cut_off(a, "Kimberly", b)


def test_invite_bad_names_are_invalid():
    with Server() as s:
        obs = Client(s).identify("Luis")
        for bad in (b'["Luis","ABCDEFGHI"]', b'["Luis",1]', b'"Luis"',
                    b'["a\\u0001b"]', b'[null]', b'{"0":"Luis"}',
                    b'[["Luis"]]'):
            a = Client(s).identify("Kim")
            obs.expect(tntest.new_user("Kim"))
            new_room(a, R)
            a.send(b'{"type":"INVITE","roomname":"Room 1","usernames":'
                   + bad + b'}\n')
            cut_off(a, "Kim", obs, quiet=False)
        expect_nothing(obs)


def test_invitations_for_several_rooms():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        new_room(a, "R1")
        new_room(a, "R2")
        tntest.invite(a, "R1", b)
        tntest.invite(a, "R2", b)
        join(b, "R2", [a])
        join(b, "R1", [a])


def test_invite_long_lists():
    with Server() as s:
        a, b, c = connect_users(s, "Kimberly", "Luis", "Antonio")
        new_room(a, R)
        # 3000 names, the last one missing: nobody is invited.
        names = ["Luis", "Antonio", "Kimberly"] * 999 + ["Luis", "Antonio",
                                                        "Nobody"]
        a.send(req("INVITE", roomname=R, usernames=names))
        a.expect(resp("INVITE", "NO_SUCH_USER", "Nobody"))
        barrier(a, b, c)
        a.send(req("INVITE", roomname=R, usernames=names[:-1]))
        b.expect(invitation("Kimberly", R))
        c.expect(invitation("Kimberly", R))
        barrier(a, b, c)
        expect_nothing(a, b, c)


if __name__ == "__main__":
    tntest.main(globals())
