"""Errors: NOT_IDENTIFIED before IDENTIFY, INVALID for bad messages, and
no impact on others (protocol.md, Errors)."""

import os
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
import tntest  # noqa: E402
from tntest import (Client, Server, connect_users, disconnected,
                    expect_nothing, left_room, make_room, new_user,
                    public_from, req, resp)
from tntest.steps import cut_off, name_taken  # noqa: E402

NOT_IDENTIFIED_LINE = (b'{"type":"RESPONSE","operation":"INVALID",'
                       b'"result":"NOT_IDENTIFIED"}\n')
INVALID_LINE = (b'{"type":"RESPONSE","operation":"INVALID",'
                b'"result":"INVALID"}\n')

# Well-formed requests of every type but IDENTIFY.
WELL_FORMED = [
    b'{"type":"STATUS","status":"AWAY"}',
    b'{"type":"USERS"}',
    b'{"type":"TEXT","username":"Kimberly","text":"hi"}',
    b'{"type":"PUBLIC_TEXT","text":"hi"}',
    b'{"type":"NEW_ROOM","roomname":"Room 1"}',
    b'{"type":"INVITE","roomname":"Room 1","usernames":["Kimberly"]}',
    b'{"type":"JOIN_ROOM","roomname":"Room 1"}',
    b'{"type":"ROOM_USERS","roomname":"Room 1"}',
    b'{"type":"ROOM_TEXT","roomname":"Room 1","text":"hi"}',
    b'{"type":"LEAVE_ROOM","roomname":"Room 1"}',
    b'{"type":"DISCONNECT"}',
]

# Lines that are INVALID whoever sends them (without the terminator).
BAD = [
    ("not JSON", b"hello"),
    ("truncated JSON", b'{"type":"USERS"'),
    # An object ends its frame where it closes, so '{...} x' and
    # '{...}{...}' are a message and more (see test_framing.py).
    ("garbage before an object", b'x {"type":"USERS"}'),
    ("a closer before an object", b'}{"type":"USERS"}'),
    ("trailing comma", b'{"type":"USERS",}'),
    ("single quotes", b"{'type':'USERS'}"),
    ("bad escape", b'{"type":"PUBLIC_TEXT","text":"\\x41"}'),
    ("short \\u escape", b'{"type":"PUBLIC_TEXT","text":"\\u12"}'),
    ("raw control char in a string",
     b'{"type":"PUBLIC_TEXT","text":"a\x01b"}'),
    ("raw tab in a string", b'{"type":"PUBLIC_TEXT","text":"a\tb"}'),
    ("JSON array", b'["USERS"]'),
    ("JSON array of an object", b'[{"type":"USERS"}]'),
    ("JSON string", b'"USERS"'),
    ("JSON number", b"42"),
    ("JSON null", b"null"),
    ("JSON true", b"true"),
    ("empty object", b"{}"),
    ("missing type", b'{"username":"Kimberly"}'),
    ("type not a string", b'{"type":1}'),
    ("type null", b'{"type":null}'),
    ("type array", b'{"type":["USERS"]}'),
    ("unknown type", b'{"type":"HELLO"}'),
    ("lowercase type", b'{"type":"users"}'),
    ("type with a space", b'{"type":"USERS "}'),
    ("server type RESPONSE",
     b'{"type":"RESPONSE","operation":"IDENTIFY","result":"SUCCESS",'
     b'"extra":"x"}'),
    ("server type NEW_USER", b'{"type":"NEW_USER","username":"x"}'),
    ("server type USER_LIST", b'{"type":"USER_LIST","users":{}}'),
    ("server type TEXT_FROM", b'{"type":"TEXT_FROM","username":"x",'
     b'"text":"y"}'),
    ("server type DISCONNECTED", b'{"type":"DISCONNECTED","username":"x"}'),
    ("server type INVITATION", b'{"type":"INVITATION","username":"x",'
     b'"roomname":"y"}'),
    ("type INVALID", b'{"type":"INVALID"}'),
    ("IDENTIFY missing username", b'{"type":"IDENTIFY"}'),
    ("STATUS missing status", b'{"type":"STATUS"}'),
    ("TEXT missing text", b'{"type":"TEXT","username":"Kimberly"}'),
    ("TEXT missing username", b'{"type":"TEXT","text":"x"}'),
    ("PUBLIC_TEXT missing text", b'{"type":"PUBLIC_TEXT"}'),
    ("NEW_ROOM missing roomname", b'{"type":"NEW_ROOM"}'),
    ("INVITE missing usernames", b'{"type":"INVITE","roomname":"R"}'),
    ("INVITE missing roomname", b'{"type":"INVITE","usernames":["x"]}'),
    ("JOIN_ROOM missing roomname", b'{"type":"JOIN_ROOM"}'),
    ("ROOM_USERS missing roomname", b'{"type":"ROOM_USERS"}'),
    ("ROOM_TEXT missing text", b'{"type":"ROOM_TEXT","roomname":"R"}'),
    ("LEAVE_ROOM missing roomname", b'{"type":"LEAVE_ROOM"}'),
    ("IDENTIFY username number", b'{"type":"IDENTIFY","username":5}'),
    ("IDENTIFY username null", b'{"type":"IDENTIFY","username":null}'),
    ("STATUS status array", b'{"type":"STATUS","status":["AWAY"]}'),
    ("TEXT text object", b'{"type":"TEXT","username":"Kimberly",'
     b'"text":{}}'),
    ("PUBLIC_TEXT text number", b'{"type":"PUBLIC_TEXT","text":1}'),
    ("PUBLIC_TEXT text bool", b'{"type":"PUBLIC_TEXT","text":false}'),
    ("NEW_ROOM roomname number", b'{"type":"NEW_ROOM","roomname":1}'),
    ("INVITE usernames string", b'{"type":"INVITE","roomname":"R",'
     b'"usernames":"x"}'),
    ("INVITE usernames of numbers", b'{"type":"INVITE","roomname":"R",'
     b'"usernames":[1]}'),
    ("ROOM_TEXT roomname array", b'{"type":"ROOM_TEXT","roomname":["R"],'
     b'"text":"x"}'),
    ("bad status", b'{"type":"STATUS","status":"OFFLINE"}'),
    ("lowercase status", b'{"type":"STATUS","status":"busy"}'),
    ("name of 9 code points", b'{"type":"IDENTIFY","username":"ABCDEFGHI"}'),
    ("name of 9 multibyte code points",
     '{"type":"IDENTIFY","username":"\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9'
     '\u00e9\u00e9\u00e9"}'.encode()),
    ("empty name", b'{"type":"IDENTIFY","username":""}'),
    ("name with a control char",
     b'{"type":"IDENTIFY","username":"a\\u0001b"}'),
    ("name with a newline", b'{"type":"IDENTIFY","username":"a\\nb"}'),
    ("name with NUL", b'{"type":"IDENTIFY","username":"ab\\u0000"}'),
    ("name with DEL", b'{"type":"IDENTIFY","username":"a\\u007fb"}'),
    ("name with a C1 control", b'{"type":"IDENTIFY","username":"a\\u0085b"}'),
    ("TEXT to a too-long name", b'{"type":"TEXT","username":"ABCDEFGHI",'
     b'"text":"x"}'),
    ("room name of 17 code points",
     b'{"type":"NEW_ROOM","roomname":"ABCDEFGHIJKLMNOPQ"}'),
    ("empty room name", b'{"type":"NEW_ROOM","roomname":""}'),
    ("room name with a tab", b'{"type":"JOIN_ROOM","roomname":"a\\tb"}'),
    ("empty invite list", b'{"type":"INVITE","roomname":"R",'
     b'"usernames":[]}'),
    ("invalid UTF-8 0xff", b'{"type":"PUBLIC_TEXT","text":"\xff"}'),
    ("invalid UTF-8 continuation", b'{"type":"PUBLIC_TEXT","text":"\x80"}'),
    ("overlong UTF-8", b'{"type":"PUBLIC_TEXT","text":"\xc0\xaf"}'),
    ("UTF-8 surrogate", b'{"type":"PUBLIC_TEXT","text":"\xed\xa0\x80"}'),
    ("truncated UTF-8", b'{"type":"PUBLIC_TEXT","text":"\xe2\x82"}'),
    ("UTF-8 above U+10FFFF", b'{"type":"PUBLIC_TEXT",'
     b'"text":"\xf4\x90\x80\x80"}'),
    ("invalid UTF-8 in a key", b'{"type":"USERS","\xff":1}'),
    ("invalid UTF-8 in an unknown key's value",
     b'{"type":"USERS","x":"\xc3"}'),
    ("number with a leading zero", b'{"type":"USERS","x":01}'),
    ("number with a plus", b'{"type":"USERS","x":+1}'),
    ("number without integer part", b'{"type":"USERS","x":.5}'),
    ("number ending in a dot", b'{"type":"USERS","x":1.}'),
    ("NaN", b'{"type":"USERS","x":NaN}'),
    ("bad literal", b'{"type":"USERS","x":tru}'),
    ("capitalised literal", b'{"type":"USERS","x":True}'),
    ("unquoted key", b'{type:"USERS"}'),
    ("number as key", b'{1:"USERS"}'),
    ("missing colon", b'{"type" "USERS"}'),
    ("missing comma", b'{"type":"USERS" "x":1}'),
    ("unclosed array in unknown key", b'{"type":"USERS","x":[1,2}'),
    ("unterminated string", b'{"type":"USERS","x":"abc}'),
    ("escaped lone low surrogate", b'{"type":"PUBLIC_TEXT","text":"\\udc00"}'),
    ("high surrogate then non-surrogate",
     b'{"type":"PUBLIC_TEXT","text":"\\ud83d\\u0041"}'),
]


def test_not_identified_for_every_other_request():
    with Server() as s:
        obs = Client(s).identify("Kimberly")
        for line in WELL_FORMED:
            c = Client(s)
            c.send(line + b"\n")
            try:
                c.expect(NOT_IDENTIFIED_LINE)
                c.expect_closed()
            except AssertionError as e:
                raise AssertionError("after %r: %s" % (line, e))
        expect_nothing(obs)
        assert obs.users() == {"Kimberly": "ACTIVE"}


def test_not_identified_after_failed_identify():
    with Server() as s:
        obs = Client(s).identify("Kimberly")
        c = name_taken(s, "Kimberly")
        c.send(req("PUBLIC_TEXT", text="sneaky"))
        c.expect(NOT_IDENTIFIED_LINE)
        c.expect_closed()
        expect_nothing(obs)


def _each_bad(obs, connect, check):
    """Each line of BAD on a new connection from connect(), then check(c)
    (a failure names the line); then nothing more for obs."""
    for what, line in BAD:
        c = connect()
        c.send(line + b"\n")
        try:
            check(c)
        except AssertionError as e:
            raise AssertionError("%s %r: %s" % (what, line, e))
    expect_nothing(obs)


def test_bad_messages_unidentified_get_invalid():
    with Server() as s:
        obs = Client(s).identify("Kimberly")
        _each_bad(obs, lambda: Client(s),
                  lambda c: cut_off(c, None, line=INVALID_LINE, quiet=False))
        assert obs.users() == {"Kimberly": "ACTIVE"}


def test_bad_messages_identified_get_invalid_others_see_disconnect():
    with Server() as s:
        obs = Client(s).identify("Observer")

        def connect():
            c = Client(s).identify("Kimberly")
            obs.expect(new_user("Kimberly"))
            return c
        _each_bad(obs, connect, lambda c: cut_off(c, "Kimberly", obs,
                                                  line=INVALID_LINE,
                                                  quiet=False))
        assert obs.users() == {"Observer": "ACTIVE"}


def test_multibyte_names_at_the_limit_are_fine():
    with Server() as s:
        a = Client(s).identify("\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
                               "\u20ac")                  # 8 code points
        b = Client(s).identify("\U0001F600" * 8)         # 32 bytes
        a.expect(new_user("\U0001F600" * 8))
        tntest.new_room(a, "\u65e5" * 16)
        tntest.new_room(b, "ABCDEFGHIJKLMNOP")
        c = Client(s).identify("ABCDEFGH")
        for x in (a, b):
            x.expect(new_user("ABCDEFGH"))


def test_invalid_from_member_looks_like_disconnect():
    with Server() as s:
        u = Client(s)
        a, b, c, d = connect_users(s, "Kimberly", "Luis", "Antonio", "Dora")
        make_room(a, "R1", members=[b])
        make_room(b, "R2", members=[a, c])
        make_room(a, "R3", invited=[b])
        tntest.new_room(b, "R4")
        b.send(b"this is not json\n")
        b.expect(INVALID_LINE)
        b.expect_closed()
        got = [a.recv() for _ in range(3)]
        assert sorted(tntest.canon(g) for g in got[:2]) == sorted(
            tntest.canon(left_room(r, "Luis")) for r in ("R1", "R2")), got
        assert got[2] == disconnected("Luis"), got
        c.expect(left_room("R2", "Luis"))
        c.expect(disconnected("Luis"))
        d.expect(disconnected("Luis"))
        expect_nothing(a, c, d, u)
        # Unaffected clients keep working.
        a.send(req("PUBLIC_TEXT", text="still here"))
        for x in (c, d):
            x.expect(public_from("Kimberly", "still here"))
        a.send(req("ROOM_TEXT", roomname="R2", text="r2"))
        c.expect(tntest.room_text_from("R2", "Kimberly", "r2"))
        tntest.new_room(d, "R4")          # b's lone room is gone
        b2 = Client(s).identify("Luis")  # and its name is free
        for x in (a, c, d):
            x.expect(new_user("Luis"))
        b2.send(req("JOIN_ROOM", roomname="R3"))
        b2.expect(resp("JOIN_ROOM", "NOT_INVITED", "R3"))
        expect_nothing(a, b2, c, d, u)


def test_replies_before_invalid_in_same_batch():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        a.send(b'{"type":"USERS"}\n{"type":"PUBLIC_TEXT","text":"before"}\n'
               b'garbage\n{"type":"PUBLIC_TEXT","text":"after"}\n'
               b'{"type":"USERS"}\n')
        a.expect(tntest.user_list({"Kimberly": "ACTIVE", "Luis": "ACTIVE"}))
        a.expect(INVALID_LINE)
        a.expect_closed()
        b.expect(public_from("Kimberly", "before"))
        b.expect(disconnected("Kimberly"))
        expect_nothing(b)


def test_users_then_garbage_one_write():
    with Server() as s:
        a = Client(s).identify("Kimberly")
        a.send(b'{"type":"USERS"}\n\xff\xfe\n')
        a.expect(b'{"type":"USER_LIST","users":{"Kimberly":"ACTIVE"}}\n')
        a.expect(INVALID_LINE)
        a.expect_closed()


def test_not_identified_after_valid_batch():
    with Server() as s:
        c = Client(s)
        c.send(b'\n{"type":"IDENTIFY","username":"x"}\n'
               b'{"type":"IDENTIFY","username":"y"}\n')
        c.expect(resp("IDENTIFY", "SUCCESS", "x"))
        c.expect(INVALID_LINE)
        c.expect_closed()
        d = Client(s)
        d.send(b'{"type":"USERS"}\n{"type":"IDENTIFY","username":"x"}\n')
        d.expect(NOT_IDENTIFIED_LINE)
        d.expect_closed()
        Client(s).identify_eventually("x")   # the name did not stay taken


def test_line_over_default_limit():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        head = b'{"type":"PUBLIC_TEXT","text":"'
        tail = b'"}'
        # Exactly 65536 bytes before the terminator: accepted.
        fill = 65536 - len(head) - len(tail)
        a.send(head + b"x" * fill + tail + b"\n")
        b.expect(public_from("Kimberly", "x" * fill))
        # One more byte: INVALID.
        a.send(head + b"x" * (fill + 1) + tail + b"\n", ignore_errors=True)
        cut_off(a, "Kimberly", b, line=INVALID_LINE)


def test_unknown_keys_and_whitespace_are_accepted():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        a.send(b'\t{ "type" :\t"PUBLIC_TEXT" , "text" : "ok",'
               b' "n": -1.5e3, "o": {"a": [true, false, null]} } \n')
        b.expect(public_from("Kimberly", "ok"))
        a.send(b'{"type":"USERS","users":{"x":"BUSY"},"text":5}\n')
        assert a.recv()["users"] == {"Kimberly": "ACTIVE", "Luis": "ACTIVE"}


def test_escapes_in_keys_and_values_are_decoded():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        # Keys and values are JSON strings: their escapes are decoded too.
        a.send(b'{"t\\u0079pe":"US\\u0045RS"}\n')
        a.expect(tntest.user_list({"Kimberly": "ACTIVE", "Luis": "ACTIVE"}))
        a.send(b'{"type":"STATUS","\\u0073tatus":"\\u0041WAY"}\n')
        b.expect(tntest.new_status("Kimberly", "AWAY"))
        a.send(b'{"type":"TEXT","username":"L\\u0075is","t\\u0065xt":"x"}\n')
        b.expect(tntest.text_from("Kimberly", "x"))
        # A surrogate pair is one code point of a name.
        c = Client(s)
        c.send(b'{"type":"IDENTIFY","username":"' + b'\\ud83d\\ude00' * 8 +
               b'"}\n')
        c.expect(resp("IDENTIFY", "SUCCESS", "\U0001F600" * 8))
        a.expect(new_user("\U0001F600" * 8))
        b.expect(new_user("\U0001F600" * 8))
        expect_nothing(a, b, c)


def test_any_valid_json_in_unknown_keys():
    with Server() as s:
        a = Client(s).identify("Kimberly")
        ok = [b'-0.0e+5', b'1E400', b'123456789012345678901234567890',
              b'[' + b'1,' * 15000 + b'1]',
              # RFC 8259 lets a parser bound nesting; 40 levels is modest.
              b'[' * 40 + b']' * 40,
              b'{"a":' * 40 + b'null' + b'}' * 40,
              b'"\\u0000\\ud83d\\ude00\\/\\b\\f"',
              b'{}', b'[]', b'""', b'true', b'false', b'null']
        for v in ok:
            a.send(b'{"type":"USERS","x":' + v + b'}\n')
            try:
                a.expect(tntest.user_list({"Kimberly": "ACTIVE"}))
            except AssertionError as e:
                raise AssertionError("unknown key with %r: %s" % (v[:60], e))
        # JSON whitespace includes a lone CR (not a terminator here).
        a.send(b'{"type":\r"USERS"}\n')
        a.expect(tntest.user_list({"Kimberly": "ACTIVE"}))


def test_very_deep_nesting_does_not_hurt():
    # protocol.md does not bound nesting and RFC 8259 lets a parser do so:
    # accepting or refusing (INVALID) 30000 levels are both fine, but the
    # daemon must survive it.
    with Server() as s:
        obs = Client(s).identify("Obs")
        a = Client(s).identify("Kimberly")
        obs.expect(new_user("Kimberly"))
        a.send(b'{"type":"USERS","x":' + b'[' * 30000 + b']' * 30000 +
               b'}\n')
        got = a.recv()
        if got == tntest.INVALID:
            a.expect_closed()
            obs.expect(disconnected("Kimberly"))
        else:
            assert got["type"] == "USER_LIST", got
        obs.send(req("USERS"))
        assert obs.recv()["type"] == "USER_LIST"


def test_invalid_after_a_backlog_ends_on_whole_lines():
    """A client that stops reading with lines queued, then sends garbage,
    gets whole lines and the INVALID reply: never a line cut where the
    socket stopped taking bytes, glued to the reply."""
    n = 6000
    with Server("--max-queue", str(64 << 20)) as s:
        slow = Client(s, rcvbuf=4096)
        slow.identify("Slow")
        fl, = connect_users(s, "Flood", existing=[slow])
        text = "q" * 900
        # About 5.5 MB for Slow, who reads nothing meanwhile: more than
        # the kernel takes, so lines wait in its worker's queue.
        fl.send(b"".join(tntest.compact(req("PUBLIC_TEXT",
                                            text="%04d" % i + text))
                         for i in range(n)))
        fl.send(req("USERS"))
        fl.expect(tntest.user_list({"Slow": "ACTIVE", "Flood": "ACTIVE"}))
        slow.send(b"garbage\n")
        lines = slow.expect_closed(timeout=20, allow_lines=True)
        assert lines, "Slow got nothing before the close"
        got = [tntest.check_line(line) for line in lines]
        assert lines[-1] == INVALID_LINE, \
            "the last line is %r, not INVALID" % lines[-1][:120]
        seqs = [int(m["text"][:4]) for m in got[:-1]
                if m["type"] == "PUBLIC_TEXT_FROM"]
        assert seqs == list(range(len(seqs))), \
            "texts out of order or with gaps: %r" % seqs[:20]
        print("  Slow got %d of %d texts, then INVALID" % (len(seqs), n))
        fl.expect(disconnected("Slow"))


if __name__ == "__main__":
    tntest.main(globals())
