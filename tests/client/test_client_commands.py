#!/usr/bin/env python3
"""talknet client: every command of the table in both directions, against
a real talknetd with a raw-socket peer.  Outgoing: what the peer receives.
Incoming: what the client prints for each message type and error result.
"""

import contextlib
import os
import re
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest.talknet import Peer, identified, run  # noqa: E402
from tntest.steps import own_daemon  # noqa: E402


def finish(c):
    """Ends the client's input and checks that it exits 0."""
    c.close_stdin()
    rc = c.wait()
    c.kill()
    assert rc == 0, "exit status %r, stderr %r" % (rc, c.err)


@contextlib.contextmanager
def paired(ctx):
    """A peer and an identified client, (peer, client, client's name,
    peer's name); the client is killed and the peer closed at the end."""
    a, b = ctx["name"]("al"), ctx["name"]("bo")
    p = Peer(ctx["port"], b)
    c = identified(ctx["port"], a)
    p.expect({"type": "NEW_USER", "username": a})
    try:
        yield p, c, a, b
    finally:
        c.kill()
        p.close()


def sent_public(c, p, a, line, text):
    """The client a sends line; the peer gets PUBLIC_TEXT_FROM a, text."""
    c.send(line)
    p.expect({"type": "PUBLIC_TEXT_FROM", "username": a, "text": text})


def gone(c, p, a, status):
    """The peer is told the client a left; the client exits with status."""
    p.expect({"type": "DISCONNECTED", "username": a})
    rc = c.wait()
    assert rc == status, (rc, c.err)


def invited_joins(p, c, a, b, room, arg):
    """The peer b makes room and invites the client a, which is told so
    and joins it with JOIN/arg (room as the command line spells it)."""
    p.new_room(room)
    p.send({"type": "INVITE", "roomname": room, "usernames": [a]})
    c.expect("* invitation from %s to %s (JOIN/%s to accept)"
             % (b, room, arg))
    c.send("JOIN/" + arg)
    c.expect("* joined " + room)


def test_public_text(ctx):
    with paired(ctx) as (p, c, a, b):
        sent_public(c, p, a, ">hello world/with slash",
                    "hello world/with slash")
        p.send({"type": "PUBLIC_TEXT", "text": "yo \"there\" \\ ü"})
        c.expect("[public] %s: yo \"there\" \\ ü" % b)
        finish(c)


def test_private_text(ctx):
    with paired(ctx) as (p, c, a, b):
        c.send("txfrom/%s/a/b c" % b)
        p.expect({"type": "TEXT_FROM", "username": a, "text": "a/b c"})
        p.send({"type": "TEXT", "username": a, "text": "yo"})
        c.expect("[private] %s: yo" % b)
        finish(c)


def test_status_and_users(ctx):
    with paired(ctx) as (p, c, a, b):
        c.send("status/BUSY")
        p.expect({"type": "NEW_STATUS", "username": a, "status": "BUSY"})
        p.send({"type": "STATUS", "status": "AWAY"})
        c.expect("* %s is now AWAY" % b)
        c.send("status/ACTIVE")
        p.expect({"type": "NEW_STATUS", "username": a, "status": "ACTIVE"})
        c.send("all/")
        line = c.expect(re.compile(r"^users: "))
        assert "%s (ACTIVE)" % a in line, line
        assert "%s (AWAY)" % b in line, line
        c.send("status/SLEEPY")
        c.expect_err(re.compile(r"^talknet: malformed command"))
        finish(c)


def test_rooms_both_ways(ctx):
    with paired(ctx) as (p, c, a, b):
        room = "Room " + a
        c.send("room/" + room)
        c.expect("* created room " + room)
        c.send("room/" + room)
        c.expect("! room already exists: " + room)
        c.send("INVITE/ <%s> <%s>" % (b, room))
        p.expect({"type": "INVITATION", "username": a, "roomname": room})
        p.send({"type": "JOIN_ROOM", "roomname": room})
        p.expect({"type": "RESPONSE", "operation": "JOIN_ROOM",
                  "result": "SUCCESS", "extra": room})
        c.expect("* %s joined %s" % (b, room))
        c.send("ROOM_CONTENT/" + room)
        line = c.expect(re.compile("^users in %s: " % re.escape(room)))
        assert "%s (ACTIVE)" % a in line and "%s (ACTIVE)" % b in line, \
            line
        c.send("TX_ROOM/%s/hi all/x" % room)
        p.expect({"type": "ROOM_TEXT_FROM", "roomname": room,
                  "username": a, "text": "hi all/x"})
        p.send({"type": "ROOM_TEXT", "roomname": room, "text": "hey"})
        c.expect("[%s] %s: hey" % (room, b))
        c.send("LEAVE/" + room)
        p.expect({"type": "LEFT_ROOM", "roomname": room, "username": a})

        # The other way round: the peer's room, the client invited.
        room2 = "R2 " + b
        invited_joins(p, c, a, b, room2, room2)
        p.expect({"type": "JOINED_ROOM", "roomname": room2, "username": a})
        p.send({"type": "LEAVE_ROOM", "roomname": room2})
        c.expect("* %s left %s" % (b, room2))
        finish(c)


def test_invite_many(ctx):
    with paired(ctx) as (p, c, a, b):
        d = ctx["name"]("ca")
        p2 = Peer(ctx["port"], d)
        room = "Big " + a
        c.send("room/" + room)
        c.expect("* created room " + room)
        c.send("INVITE/  <%s   %s>   <%s>  " % (b, d, room))
        p.expect({"type": "INVITATION", "username": a, "roomname": room})
        p2.expect({"type": "INVITATION", "username": a, "roomname": room})
        c.send("INVITE/ <> <%s>" % room)
        c.expect_err(re.compile(r"^talknet: malformed command"))
        c.send("INVITE/ %s %s" % (b, room))
        c.expect_err(re.compile(r"^talknet: malformed command"))
        finish(c)
        p2.close()


def test_error_results(ctx):
    with paired(ctx) as (p, c, a, b):
        ghost = ctx["name"]("gh")
        proom = "P " + b
        c.send("txfrom/%s/boo" % ghost)
        c.expect("! no such user: " + ghost)
        for cmd in ("JOIN/nope", "TX_ROOM/nope/x", "ROOM_CONTENT/nope",
                    "LEAVE/nope", "INVITE/ <%s> <nope>" % b):
            c.send(cmd)
            c.expect("! no such room: nope")
        p.new_room(proom)
        c.send("JOIN/" + proom)
        c.expect("! not invited to room: " + proom)
        for cmd in ("ROOM_CONTENT/" + proom, "TX_ROOM/%s/x" % proom,
                    "LEAVE/" + proom, "INVITE/ <%s> <%s>" % (b, proom)):
            c.send(cmd)
            c.expect("! not a member of room: " + proom)
        room = "Mine " + a
        c.send("room/" + room)
        c.expect("* created room " + room)
        c.send("INVITE/ <%s %s> <%s>" % (b, ghost, room))
        c.expect("! no such user: " + ghost)
        p.quiet((a, b, ghost))
        finish(c)


def test_new_user_and_disconnected(ctx):
    a, b = ctx["name"]("al"), ctx["name"]("bo")
    c = identified(ctx["port"], a)
    p = None
    try:
        p = Peer(ctx["port"], b)
        c.expect("* %s connected" % b)
        p.send({"type": "DISCONNECT"})
        c.expect("* %s disconnected" % b)
        finish(c)
    finally:
        c.kill()
        if p:
            p.close()


def test_raw_json_line(ctx):
    with paired(ctx) as (p, c, a, b):
        sent_public(c, p, a,
                    '{"type":"PUBLIC_TEXT","text":"raw!","extra_key":1}',
                    "raw!")
        c.send('{"type":"DISCONNECT"}')
        gone(c, p, a, 0)


def test_invalid_closes(ctx):
    with paired(ctx) as (p, c, a, b):
        c.send('{"type":"BOGUS"}')
        c.expect("! the server rejected a message as invalid")
        c.expect_err("talknet: connection closed by server")
        gone(c, p, a, 1)


def test_escapes_control_chars(ctx):
    with paired(ctx) as (p, c, a, b):
        p.send({"type": "PUBLIC_TEXT", "text": "\x1b[2Jboom\x07\ttab"})
        c.expect("[public] %s: \\x1b[2Jboom\\x07\\x09tab" % b)
        p.send({"type": "TEXT", "username": a,
                "text": "c1\u009b31m del\x7f nul\x00 end"})
        c.expect("[private] %s: c1\\u009b31m del\\x7f nul\\x00 end" % b)
        finish(c)


def test_unknown_and_malformed(ctx):
    with paired(ctx) as (p, c, a, b):
        for line in ("hello", "ALL/", "txfrom/nobody", "room/",
                     "TX_ROOM/only", "JOIN/", "status/"):
            c.send(line)
            c.expect_err(re.compile(r"^talknet: (unknown|malformed) "
                                    r"command.*help/"))
        c.send(">after")
        msg = p.expect({"type": "PUBLIC_TEXT_FROM", "username": a})
        assert msg["text"] == "after", msg
        c.send("help/")
        c.expect(re.compile(r"^\s+txfrom/USER/text\s"))
        c.expect(re.compile(r"^\s+INVITE/ <USER \.\.\.> <ROOM>\s"))
        c.expect(re.compile(r"^\s+quit/\s"))
        p.quiet((a, b))
        finish(c)


def test_quit(ctx):
    with paired(ctx) as (p, c, a, b):
        c.send("quit/")
        p.expect({"type": "DISCONNECTED", "username": a})
        rc = c.wait()
        assert rc == 0, (rc, c.err)
        c.kill()
        # A clean quit says nothing about the connection.
        assert not any("connection closed" in x for x in c.err), c.err


def test_aliases(ctx):
    with paired(ctx) as (p, c, a, b):
        c.send("/help")
        c.expect("commands, one per line:")
        c.expect(re.compile(r"^  quit/ or /quit "))
        c.send("/quit")
        p.expect({"type": "DISCONNECTED", "username": a})
        assert c.wait() == 0, c.err
        c.kill()
        assert not any("unknown command" in x for x in c.err), c.err
        assert not any("connection closed" in x for x in c.err), c.err


def test_echo_and_confirmations(ctx):
    """The server sends nobody their own texts back: the client echoes
    them as sent, and confirms a status of any kind."""
    with paired(ctx) as (p, c, a, b):
        room = "R " + a
        c.send(">hi all")
        c.expect("[public] %s: hi all" % a)
        c.send("txfrom/%s/psst" % b)
        c.expect("[private] %s -> %s: psst" % (a, b))
        p.expect({"type": "TEXT_FROM", "username": a, "text": "psst"})
        c.send("room/" + room)
        c.expect("* created room " + room)
        c.send("TX_ROOM/%s/in here" % room)
        c.expect("[%s] %s: in here" % (room, a))
        for st in ("AWAY", "BUSY", "ACTIVE"):
            c.send("status/" + st)
            c.expect("* %s is now %s" % (a, st))
        finish(c)


def test_slash_names(ctx):
    """The server takes the name a/b; in a command a backslash escapes
    the '/' (and itself), so txfrom/ and the room commands reach it."""
    a, b = ctx["name"]("sl"), ctx["name"]("x")[:3] + "/\\"
    with Peer(ctx["port"], b) as p, identified(ctx["port"], a) as c:
        p.expect({"type": "NEW_USER", "username": a})
        esc = b.replace("\\", "\\\\").replace("/", "\\/")
        c.send("txfrom/%s/hi a/b" % esc)
        p.expect({"type": "TEXT_FROM", "username": a, "text": "hi a/b"})
        c.expect("[private] %s -> %s: hi a/b" % (a, b))
        # Unescaped, the name ends at the first '/'.
        c.send("txfrom/%s/hi" % b)
        c.expect("! no such user: " + b.split("/")[0])
        room = "r/" + a
        invited_joins(p, c, a, b, room, "r\\/" + a)
        c.send("TX_ROOM/r\\/%s/x/y" % a)
        p.expect({"type": "ROOM_TEXT_FROM", "roomname": room,
                  "username": a, "text": "x/y"})
        c.send("room/q\\/" + a)
        c.expect("* created room q/" + a)
        c.send("INVITE/ <%s> <q\\/%s>" % (esc, a))
        p.expect({"type": "INVITATION", "username": a,
                  "roomname": "q/" + a})
        finish(c)


def test_too_many_rooms(ctx):
    with own_daemon("--max-rooms", "1") as (d, kill_at_end):
        c = kill_at_end(identified(d.port, ctx["name"]("al")))
        c.send("room/first")
        c.expect("* created room first")
        c.send("room/second")
        c.expect("! too many rooms on the server: second")
        finish(c)


if __name__ == "__main__":
    run([test_public_text, test_private_text, test_status_and_users,
         test_rooms_both_ways, test_invite_many, test_error_results,
         test_new_user_and_disconnected, test_raw_json_line,
         test_invalid_closes, test_escapes_control_chars,
         test_unknown_and_malformed, test_quit, test_too_many_rooms,
         test_aliases, test_echo_and_confirmations, test_slash_names])
