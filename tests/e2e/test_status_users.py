"""STATUS and USERS (protocol.md, STATUS and USERS)."""

import os
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
import tntest  # noqa: E402
from tntest import (Client, Server, barrier, connect_users, disconnected,
                    expect_nothing, new_status, public_from, req)
from tntest.steps import cut_off, say_all, set_status  # noqa: E402


def test_status_change_goes_to_every_other_identified_user():
    with Server() as s:
        u = Client(s)                              # unidentified
        a, b, c = connect_users(s, "Kimberly", "Luis", "Antonio")
        a.send(b'{"type":"STATUS","status":"AWAY"}\n')
        b.expect(b'{"type":"NEW_STATUS","username":"Kimberly",'
                 b'"status":"AWAY"}\n')
        c.expect(new_status("Kimberly", "AWAY"))
        expect_nothing(a, b, c, u)
        for st in ("BUSY", "ACTIVE", "AWAY"):
            set_status(a, st, b, c)
        expect_nothing(a, b, c, u)


def test_same_status_does_nothing():
    with Server() as s:
        a, b, c = connect_users(s, "Kimberly", "Luis", "Antonio")
        # Every user starts ACTIVE: ACTIVE is no change.
        a.send(req("STATUS", status="ACTIVE"))
        say_all(a, "after ACTIVE", b, c)
        set_status(a, "BUSY", b, c)
        a.send(req("STATUS", status="BUSY"))
        a.send(req("STATUS", status="BUSY"))
        # Messages from one sender keep their order: had BUSY been
        # announced again it would come before this text.
        say_all(a, "after BUSY", b, c)
        expect_nothing(a, b, c)
        assert b.users()["Kimberly"] == "BUSY"


def test_status_only_to_others():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        set_status(a, "AWAY", b)
        barrier(b, a)           # a got nothing before b's token
        expect_nothing(a, b)


def test_bad_status_is_invalid():
    with Server() as s:
        obs = connect_users(s, "Luis")[0]
        for bad in ('"away"', '"OFFLINE"', '""', '"ACTIVE "', '" AWAY"',
                    '"BUSY\\u0000"'):
            a = Client(s).identify("Kim")
            obs.expect(tntest.new_user("Kim"))
            a.send(('{"type":"STATUS","status":%s}\n' % bad).encode())
            cut_off(a, "Kim", obs, quiet=False)
        expect_nothing(obs)
        assert obs.users() == {"Luis": "ACTIVE"}


def test_users_lists_everyone_with_status():
    with Server() as s:
        a = Client(s).identify("Kimberly")
        a.send(b'{"type":"USERS"}\n')
        a.expect(b'{"type":"USER_LIST","users":{"Kimberly":"ACTIVE"}}\n')
        u = Client(s)                              # unidentified: not listed
        b, c = connect_users(s, "Luis", "Antonio", existing=[a])
        set_status(b, "AWAY", a, c)
        set_status(c, "BUSY", a, b)
        want = {"Kimberly": "ACTIVE", "Luis": "AWAY", "Antonio": "BUSY"}
        for x in (a, b, c):
            assert x.users() == want
        b.send(req("USERS"))
        b.expect(tntest.user_list(want))
        expect_nothing(a, b, c, u)


def test_users_after_disconnect():
    with Server() as s:
        a, b, c = connect_users(s, "Kimberly", "Luis", "Antonio")
        b.send(req("DISCONNECT"))
        b.expect_closed()
        a.expect(disconnected("Luis"))
        c.expect(disconnected("Luis"))
        assert a.users() == {"Kimberly": "ACTIVE", "Antonio": "ACTIVE"}


def test_users_replies_in_request_order():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        a.send(b'{"type":"USERS"}\n{"type":"STATUS","status":"AWAY"}\n'
               b'{"type":"USERS"}\n')
        assert a.recv()["users"] == {"Kimberly": "ACTIVE", "Luis": "ACTIVE"}
        assert a.recv()["users"] == {"Kimberly": "AWAY", "Luis": "ACTIVE"}
        b.expect(new_status("Kimberly", "AWAY"))
        expect_nothing(a, b)


if __name__ == "__main__":
    tntest.main(globals())
