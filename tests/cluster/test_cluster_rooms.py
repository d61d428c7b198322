#!/usr/bin/env python3
"""Rooms across nodes (issue 19): creating, inviting, joining and leaving
are scripts in Redis, so two nodes never both create one room (50
rounds, exactly one winner each) and an invitation is used once; the
events cross in the sender's stream, so a JOINED_ROOM is never seen
after that user's next ROOM_TEXT; ROOM_USERS lists members of every
node; a member that disconnects leaves its rooms everywhere."""

import os
import sys
import threading

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
import tntest  # noqa: E402
from tntest import (Client, req, resp, invitation, joined_room,  # noqa: E402
                    left_room, room_text_from, disconnected)
from tntest.cluster import (Redis, nodes, know_all,  # noqa: E402
                            one_user_each, room_with)

T = tntest.TIMEOUT




def room_users(c, room):
    c.send(req("ROOM_USERS", roomname=room))
    m = c.recv()
    assert m.get("type") == "ROOM_USER_LIST", m
    return m["users"]


def test_a_room_across_two_nodes():
    with Redis() as r:
        a, b = nodes(r, 2)
        alice = Client(a).identify("alice")
        bob = Client(b).identify("bob")
        know_all((alice, bob), ("alice", "bob"))
        alice.send(req("NEW_ROOM", roomname="lobby"))
        alice.expect(resp("NEW_ROOM", "SUCCESS", "lobby"))
        bob.send(req("NEW_ROOM", roomname="lobby"))
        bob.expect(resp("NEW_ROOM", "ROOM_ALREADY_EXISTS", "lobby"))
        alice.send(req("INVITE", roomname="lobby", usernames=["bob"]))
        bob.expect(invitation("alice", "lobby"), 3 * T)
        bob.send(req("JOIN_ROOM", roomname="lobby"))
        bob.expect(resp("JOIN_ROOM", "SUCCESS", "lobby"))
        # Join, then text: never seen the other way round on A.
        bob.send(req("ROOM_TEXT", roomname="lobby", text="hi"))
        alice.expect(joined_room("lobby", "bob"), 3 * T)
        alice.expect(room_text_from("lobby", "bob", "hi"), 3 * T)
        assert room_users(alice, "lobby") == {"alice": "ACTIVE",
                                              "bob": "ACTIVE"}
        assert room_users(bob, "lobby") == {"alice": "ACTIVE",
                                            "bob": "ACTIVE"}
        alice.send(req("ROOM_TEXT", roomname="lobby", text="hello"))
        bob.expect(room_text_from("lobby", "alice", "hello"), 3 * T)
        assert r.cmd("SMEMBERS", "tn:rm:lobby") in (
            [b"alice", b"bob"], [b"bob", b"alice"])
        bob.send(req("LEAVE_ROOM", roomname="lobby"))
        alice.expect(left_room("lobby", "bob"), 3 * T)
        bob.send(req("ROOM_TEXT", roomname="lobby", text="x"))
        bob.expect(resp("ROOM_TEXT", "NOT_JOINED", "lobby"))
        # An invitation is used up: joining again needs another.
        bob.send(req("JOIN_ROOM", roomname="lobby"))
        bob.expect(resp("JOIN_ROOM", "NOT_INVITED", "lobby"))


def test_a_member_gone_leaves_its_rooms_everywhere():
    with Redis() as r:
        a, b, c = nodes(r, 3)
        alice, bob, carol = one_user_each((a, b, c), ("alice", "bob", "carol"))
        # Not joins by hand: node3 may read bob's join only after
        # carol's own, and then tells carol JOINED_ROOM bob where the
        # LEFT_ROOM below is awaited; room_with waits that out.
        room_with(alice, "r1", bob, carol)
        alice.close()
        for cl in (bob, carol):
            cl.expect(left_room("r1", "alice"), 3 * T)
            cl.expect(disconnected("alice"), 3 * T)
        assert room_users(carol, "r1") == {"bob": "ACTIVE",
                                           "carol": "ACTIVE"}
        tntest.wait_until(lambda: r.cmd("SMEMBERS", "tn:rm:r1") in (
            [b"bob", b"carol"], [b"carol", b"bob"]), T)
        bob.close()
        carol.expect(left_room("r1", "bob"), 3 * T)
        carol.close()
        tntest.wait_until(lambda: r.cmd("EXISTS", "tn:room:r1") == 0, T,
                          what="the empty room dropped in Redis")
        assert r.cmd("SMEMBERS", "tn:rooms") == []


def test_two_nodes_race_to_create_one_room_exactly_one_wins():
    with Redis() as r:
        a, b = nodes(r, 2)
        ca = Client(a).identify("ua")
        cb = Client(b).identify("ub")
        know_all((ca, cb), ("ua", "ub"))
        wins = [0, 0]
        for i in range(50):
            room = "room%d" % i
            lines = [tntest.compact(req("NEW_ROOM", roomname=room))] * 2
            go = threading.Barrier(2)

            def send(c, line):
                go.wait(T)
                c.sock.sendall(line)
            ts = [threading.Thread(target=send, args=(c, ln))
                  for c, ln in zip((ca, cb), lines)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(T)
            res = [c.recv()["result"] for c in (ca, cb)]
            assert sorted(res) == ["ROOM_ALREADY_EXISTS", "SUCCESS"], \
                (i, res)
            wins[res.index("SUCCESS")] += 1
        print("room race: node1 won %d, node2 won %d" % tuple(wins))


if __name__ == "__main__":
    tntest.main(globals())
