"""Framing: terminators, empty frames, split and batched reads, and the
shape of what the server sends (protocol.md, Transport and framing)."""

import random
import time

import tnlib
from tnlib import (Client, Server, connect_users, expect_nothing, public_from,
                   req, text_from)

SUCCESS_A = (b'{"type":"RESPONSE","operation":"IDENTIFY","result":"SUCCESS",'
             b'"extra":"A"}\n')


def test_newline_terminator():
    with Server() as s:
        c = Client(s)
        c.send(b'{"type":"IDENTIFY","username":"A"}\n')
        c.expect(SUCCESS_A)


def test_crlf_terminator():
    with Server() as s:
        c = Client(s)
        c.send(b'{"type":"IDENTIFY","username":"A"}\r\n')
        c.expect(SUCCESS_A)            # "\n" only: tnlib refuses a raw "\r"
        b = Client(s).identify("B")
        c.expect(tnlib.new_user("B"))
        c.send(b'{"type":"PUBLIC_TEXT","text":"crlf"}\r\n')
        b.expect(public_from("A", "crlf"))


def test_crlf_split_between_writes():
    with Server() as s:
        a, b = connect_users(s, "A", "B")
        a.send(b'{"type":"PUBLIC_TEXT","text":"x"}\r')
        time.sleep(0.05)
        a.send(b'\n{"type":"PUBLIC_TEXT","text":"y"}\r')
        time.sleep(0.05)
        a.send(b'\n')
        b.expect(public_from("A", "x"))
        b.expect(public_from("A", "y"))
        expect_nothing(a, b)


def test_nul_terminator():
    with Server() as s:
        c = Client(s)
        c.send(b'{"type":"IDENTIFY","username":"A"}\0')
        c.expect(SUCCESS_A)            # never "\0" on output
        b = Client(s).identify("B")
        c.expect(tnlib.new_user("B"))
        c.send(b'{"type":"TEXT","username":"B","text":"nul"}\0'
               b'{"type":"PUBLIC_TEXT","text":"nul2"}\0')
        b.expect(text_from("A", "nul"))
        b.expect(public_from("A", "nul2"))


def test_mixed_terminators_in_one_write():
    with Server() as s:
        a = Client(s).identify("A")
        a.send(b'{"type":"USERS"}\n{"type":"USERS"}\r\n{"type":"USERS"}\0'
               b'{"type":"USERS"}\n')
        for _ in range(4):
            a.expect(b'{"type":"USER_LIST","users":{"A":"ACTIVE"}}\n')
        a.expect_nothing()


def test_empty_frames_ignored():
    with Server() as s:
        c = Client(s)
        # Before IDENTIFY, empty frames are no request: no NOT_IDENTIFIED.
        c.send(b"\n\n\r\n\0\0\n\r\n")
        c.expect_nothing()
        c.send(b'\n\0{"type":"IDENTIFY","username":"A"}\n\n\r\n\0')
        c.expect(SUCCESS_A)
        c.send(b"\0\0\0\n\n\n\r\n\r\n")
        c.expect_nothing()
        c.send(b'\r\n{"type":"USERS"}\0\0\n')
        c.expect(b'{"type":"USER_LIST","users":{"A":"ACTIVE"}}\n')
        c.expect_nothing()


def test_lone_cr_is_not_a_terminator():
    with Server() as s:
        a = Client(s).identify("A")
        # The frame is '{"type":"USERS"}\r{"type":"USERS"}': not one object.
        a.send(b'{"type":"USERS"}\r{"type":"USERS"}\n')
        a.expect(tnlib.INVALID)
        a.expect_closed()


def test_one_byte_writes():
    with Server() as s:
        b = Client(s).identify("B")
        a = Client(s)
        a.send_slowly(b'{"type":"IDENTIFY","username":"A"}\n')
        a.expect(SUCCESS_A)
        b.expect(tnlib.new_user("A"))
        # Multibyte characters split between writes, CRLF split too.
        t = "\u00e9\u65e5\U0001F600 end"
        a.send_slowly(tnlib.compact(req("PUBLIC_TEXT", text=t))[:-1] +
                      b"\r\n")
        b.expect(public_from("A", t))
        a.send_slowly(b'{"type":"TEXT","username":"B","text":"\\ud83d\\ude00"}'
                      b'\0')
        b.expect(text_from("A", "\U0001F600"))
        expect_nothing(a, b)


def test_random_splits_of_a_large_message():
    with Server() as s:
        a, b = connect_users(s, "A", "B")
        rnd = random.Random(1234)
        t = "".join(rnd.choice("ab\u00e9\u65e5\U0001F600\"\\\n")
                    for _ in range(12000))
        data = tnlib.compact(req("PUBLIC_TEXT", text=t))
        i = 0
        while i < len(data):
            n = rnd.randint(1, 4000)
            a.send(data[i:i + n])
            i += n
            time.sleep(0.001)
        b.expect(public_from("A", t), timeout=5)


def test_many_messages_in_one_write():
    with Server() as s:
        a, b = connect_users(s, "A", "B")
        n = 500
        a.send(b"".join(tnlib.compact(req("PUBLIC_TEXT", text="m%d" % i))
                        for i in range(n)))
        for i in range(n):
            b.expect(public_from("A", "m%d" % i))
        a.send(b'{"type":"USERS"}\n' * 200)
        for _ in range(200):
            a.expect(tnlib.user_list({"A": "ACTIVE", "B": "ACTIVE"}))
        expect_nothing(a, b)


def test_output_is_compact_json_lines():
    with Server() as s:
        a, b = connect_users(s, "A", "B")
        tnlib.make_room(a, "R 1", members=[b])
        a.send(req("STATUS", status="BUSY"))
        b.expect(tnlib.new_status("A", "BUSY"))
        a.send(req("ROOM_TEXT", roomname="R 1", text=" spaced  out \n "))
        lines = [b.recv_raw()]
        b.send(req("ROOM_USERS", roomname="R 1"))
        b.send(req("USERS"))
        lines += [b.recv_raw() for _ in range(2)]
        for raw in lines:
            tnlib.check_line(raw)
            assert raw.count(b"\n") == 1 and raw.endswith(b"\n"), raw
            assert b"\0" not in raw and b"\r" not in raw, raw
        assert lines[0] in (
            b'{"type":"ROOM_TEXT_FROM","roomname":"R 1","username":"A",'
            b'"text":" spaced  out \\n "}\n',
            b'{"type":"ROOM_TEXT_FROM","roomname":"R 1","username":"A",'
            b'"text":" spaced  out \\u000a "}\n',
            b'{"type":"ROOM_TEXT_FROM","roomname":"R 1","username":"A",'
            b'"text":" spaced  out \\u000A "}\n'), lines[0]
        assert lines[1] in (
            b'{"type":"ROOM_USER_LIST","roomname":"R 1",'
            b'"users":{"A":"BUSY","B":"ACTIVE"}}\n',
            b'{"type":"ROOM_USER_LIST","roomname":"R 1",'
            b'"users":{"B":"ACTIVE","A":"BUSY"}}\n'), lines[1]
        assert lines[2] in (
            b'{"type":"USER_LIST","users":{"A":"BUSY","B":"ACTIVE"}}\n',
            b'{"type":"USER_LIST","users":{"B":"ACTIVE","A":"BUSY"}}\n'), \
            lines[2]


def test_terminator_bytes_inside_strings_are_escaped_input():
    # An escaped \n or \u0000 inside a string does not end the frame.
    with Server() as s:
        a, b = connect_users(s, "A", "B")
        a.send(b'{"type":"PUBLIC_TEXT","text":"1\\n2\\u0000 3\\r\\n"}\n')
        b.expect(public_from("A", "1\n2\x00 3\r\n"))
        expect_nothing(a, b)


def test_raw_nul_inside_a_string_ends_the_frame():
    with Server() as s:
        a, b = connect_users(s, "A", "B")
        # "\0" is a terminator even inside quotes: the frame is cut short.
        a.send(b'{"type":"PUBLIC_TEXT","text":"a\0b"}\n')
        a.expect(tnlib.INVALID)
        a.expect_closed()
        b.expect(tnlib.disconnected("A"))
        expect_nothing(b)


def test_max_length_line_with_each_terminator():
    with Server("--max-line", "200") as s:
        a, b = connect_users(s, "A", "B")
        head = b'{"type":"PUBLIC_TEXT","text":"'
        for term in (b"\n", b"\r\n", b"\0"):
            body = head + b"t" * (200 - len(head) - 2) + b'"}'
            assert len(body) == 200
            a.send(body + term)
            b.expect(public_from("A", "t" * (200 - len(head) - 2)))
        # A line split at every byte near the limit still counts right.
        a.send_slowly(body[:150], chunk=50, pause=0.01)
        a.send_slowly(body[150:] + b"\r\n", chunk=1, pause=0.002)
        b.expect(public_from("A", "t" * (200 - len(head) - 2)))
        a.send(body[:-2] + b'x"}\n', ignore_errors=True)
        a.expect(tnlib.INVALID)
        a.expect_closed()


if __name__ == "__main__":
    tnlib.main(globals())
