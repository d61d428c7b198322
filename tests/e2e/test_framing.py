"""Framing: terminators, empty frames, split and batched reads, and the
shape of what the server sends (protocol.md, Transport and framing)."""

import os
import random
import re
import signal
import tempfile
import time
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
import tntest  # noqa: E402
from tntest import (Client, Server, connect_users, expect_nothing, public_from,
                    req, text_from)
from tntest.steps import cut_off  # noqa: E402

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
        c.expect(SUCCESS_A)            # "\n" only: tntest refuses a raw "\r"
        b = Client(s).identify("B")
        c.expect(tntest.new_user("B"))
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
        c.expect(tntest.new_user("B"))
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
        # A frame that does not start with an object runs to "\n": the
        # "\r" does not end '[1]\r{"type":"USERS"}', which is INVALID.
        a.send(b'[1]\r{"type":"USERS"}\n')
        a.expect(tntest.INVALID)
        a.expect_closed()


def test_lone_cr_between_objects_is_whitespace():
    with Server() as s:
        a = Client(s).identify("A")
        # The first object ends the first frame; "\r" is JSON whitespace
        # before the second object, not a terminator.
        a.send(b'{"type":"USERS"}\r{"type":"USERS"}\n')
        a.expect(tntest.user_list({"A": "ACTIVE"}))
        a.expect(tntest.user_list({"A": "ACTIVE"}))
        a.expect_nothing()


def test_one_byte_writes():
    with Server() as s:
        b = Client(s).identify("B")
        a = Client(s)
        a.send_slowly(b'{"type":"IDENTIFY","username":"A"}\n')
        a.expect(SUCCESS_A)
        b.expect(tntest.new_user("A"))
        # Multibyte characters split between writes, CRLF split too.
        t = "\u00e9\u65e5\U0001F600 end"
        a.send_slowly(tntest.compact(req("PUBLIC_TEXT", text=t))[:-1] +
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
        data = tntest.compact(req("PUBLIC_TEXT", text=t))
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
        a.send(b"".join(tntest.compact(req("PUBLIC_TEXT", text="m%d" % i))
                        for i in range(n)))
        for i in range(n):
            b.expect(public_from("A", "m%d" % i))
        a.send(b'{"type":"USERS"}\n' * 200)
        for _ in range(200):
            a.expect(tntest.user_list({"A": "ACTIVE", "B": "ACTIVE"}))
        expect_nothing(a, b)


def test_output_is_compact_json_lines():
    with Server() as s:
        a, b = connect_users(s, "A", "B")
        tntest.make_room(a, "R 1", members=[b])
        a.send(req("STATUS", status="BUSY"))
        b.expect(tntest.new_status("A", "BUSY"))
        a.send(req("ROOM_TEXT", roomname="R 1", text=" spaced  out \n "))
        lines = [b.recv_raw()]
        b.send(req("ROOM_USERS", roomname="R 1"))
        b.send(req("USERS"))
        lines += [b.recv_raw() for _ in range(2)]
        for raw in lines:
            tntest.check_line(raw)
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
        cut_off(a, "A", b)


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
        a.expect(tntest.INVALID)
        a.expect_closed()


# --- JSON objects end their own frame (protocol.md, "What the server
# accepts as a terminator": the close of a top-level JSON object)

def bare(msg):
    """msg as the original TalkNet client writes it: compact JSON, no
    terminator."""
    return tntest.compact(msg)[:-1]


class RustClient(Client):
    """Behaves like the original project's Rust client (MarcoRG345/TalkNet):
    each request is one JSON object written with one write(2), with no
    terminator at all, and then the client waits for the server's reply."""

    def request(self, msg):
        data = bare(msg)
        n = self.sock.send(data)
        assert n == len(data), "short write %d of %d" % (n, len(data))


def test_original_client_without_terminator():
    with Server() as s:
        peer = Client(s).identify("peer")
        r = RustClient(s)
        r.request(req("IDENTIFY", username="rusty"))
        r.expect(tntest.resp("IDENTIFY", "SUCCESS", "rusty"))
        peer.expect(tntest.new_user("rusty"))
        r.request(req("USERS"))
        r.expect(tntest.user_list({"peer": "ACTIVE", "rusty": "ACTIVE"}))
        r.request(req("NEW_ROOM", roomname="sala"))
        r.expect(tntest.resp("NEW_ROOM", "SUCCESS", "sala"))
        r.request(req("PUBLIC_TEXT", text="hola {todos}"))
        peer.expect(public_from("rusty", "hola {todos}"))
        r.request(req("TEXT", username="nadie", text="x"))
        r.expect(tntest.resp("TEXT", "NO_SUCH_USER", "nadie"))
        r.request(req("DISCONNECT"))
        r.expect_closed()
        peer.expect(tntest.disconnected("rusty"))
        expect_nothing(peer)


def test_two_objects_in_one_write():
    with Server() as s:
        c = Client(s)
        c.send(bare(req("IDENTIFY", username="A")) + bare(req("USERS")))
        c.expect(SUCCESS_A)
        c.expect(tntest.user_list({"A": "ACTIVE"}))
        b = Client(s).identify("B")
        c.expect(tntest.new_user("B"))
        # Ten in a row, and whitespace between them.
        c.send(b" \t".join(bare(req("PUBLIC_TEXT", text="m%d" % i))
                           for i in range(10)))
        for i in range(10):
            b.expect(public_from("A", "m%d" % i))
        expect_nothing(b, c)


def test_object_split_byte_by_byte_without_terminator():
    with Server() as s:
        a, b = connect_users(s, "A", "B")
        t = 'x}{"]\\[\u00e9}'
        msg = bare(req("PUBLIC_TEXT", text=t))
        a.send_slowly(msg[:-1], chunk=1, pause=0.002)
        # Nothing runs before the last "}" arrives.
        expect_nothing(a, b)
        a.send(msg[-1:])
        b.expect(public_from("A", t))
        expect_nothing(a, b)


def test_braces_and_escapes_inside_strings():
    with Server() as s:
        a, b = connect_users(s, "A", "B")
        # Each text would end (or never end) the frame early if braces,
        # brackets or escaped quotes inside strings were counted.
        texts = ['}', '{', '}}}"', '"}', '\\', '\\"}', '\\\\', ']', '[{',
                 '{"type":"USERS"}']
        a.send(b"".join(bare(req("PUBLIC_TEXT", text=t)) for t in texts))
        for t in texts:
            b.expect(public_from("A", t))
        # Escapes written by hand: \" and \\ before the closing quote.
        a.send(b'{"type":"PUBLIC_TEXT","text":"a\\"}\\\\"}')
        b.expect(public_from("A", 'a"}\\'))
        # A key with a brace, and nested values in an unknown key.
        a.send(b'{"}{":"x","type":"USERS","n":[{"a":[1,{}]},[]]}')
        a.expect(tntest.user_list({"A": "ACTIVE", "B": "ACTIVE"}))
        expect_nothing(a, b)


def test_object_then_garbage_in_one_write():
    with Server() as s:
        a, b = connect_users(s, "A", "B")
        # The object is a message; what follows it is not an object, so
        # it runs to its terminator and is INVALID, as before.
        a.send(b'{"type":"USERS"}[{"type":"USERS"}]\n', ignore_errors=True)
        a.expect(tntest.user_list({"A": "ACTIVE", "B": "ACTIVE"}))
        cut_off(a, "A", b, quiet=False)


def test_non_object_garbage_waits_for_its_terminator():
    with Server() as s:
        a = Client(s).identify("A")
        # No object starts here, so the braces inside do not end it.
        a.send(b'x{"type":"USERS"}{"type":"USERS"}')
        a.expect_nothing()
        a.send(b'\n', ignore_errors=True)
        a.expect(tntest.INVALID)
        a.expect_closed()
        c = Client(s)
        c.send(b'}{"type":"IDENTIFY","username":"C"}')
        c.expect_nothing()
        c.send(b'\r\n', ignore_errors=True)
        c.expect(tntest.INVALID)
        c.expect_closed()


def test_terminator_after_object_is_consumed():
    with Server() as s:
        c = Client(s)
        c.send(bare(req("IDENTIFY", username="A")))
        c.expect(SUCCESS_A)
        # The "\r\n" that follows later is the old object's terminator:
        # no empty frame, no INVALID, nothing at all.
        c.send(b"\r")
        c.expect_nothing()
        c.send(b"\n")
        c.expect_nothing()
        for term in (b"\n", b"\r\n", b"\0", b" \r\n", b"\t\n"):
            c.send(bare(req("USERS")))
            c.expect(tntest.user_list({"A": "ACTIVE"}))
            c.send(term)
            c.expect_nothing()
        c.send(bare(req("USERS")) + b"\r\n" + bare(req("USERS")) + b"\0")
        c.expect(tntest.user_list({"A": "ACTIVE"}))
        c.expect(tntest.user_list({"A": "ACTIVE"}))
        c.expect_nothing()


def test_object_at_the_line_limit_without_terminator():
    with Server("--max-line", "200") as s:
        a, b = connect_users(s, "A", "B")
        head = b'{"type":"PUBLIC_TEXT","text":"'
        body = head + b"t" * (200 - len(head) - 2) + b'"}'
        assert len(body) == 200
        a.send(body)
        b.expect(public_from("A", "t" * (200 - len(head) - 2)))
        # One byte more, and still no terminator: INVALID at once.
        a.send(body[:-2] + b'x"}', ignore_errors=True)
        cut_off(a, "A", b, quiet=False)


def test_unclosed_string_counts_toward_the_limit():
    with Server("--max-line", "200") as s:
        a, b = connect_users(s, "A", "B")
        # A string that never closes hides every "}" after it.
        a.send(b'{"type":"PUBLIC_TEXT","text":"' + b"}" * 150)
        a.expect_nothing()
        a.send(b"}" * 100, ignore_errors=True)
        cut_off(a, "A", b, quiet=False)


def test_hostile_nesting_without_terminator():
    with Server() as s:
        obs = Client(s).identify("Obs")
        a = Client(s).identify("A")
        obs.expect(tntest.new_user("A"))
        # The framer stops counting at its depth cap and ends the frame
        # there; the codec finds it is not a JSON object.
        a.send(b'{"type":"USERS","x":' + b"[" * 30000, ignore_errors=True)
        cut_off(a, "A", obs)


def test_login_timeout_default_is_60():
    # Clients of other authors connect first and then ask a person for a
    # name: the default gives a slow typist a minute (issue 14).  The
    # running daemon says what it uses when it reloads.
    rc, out, err = tntest.run_program([tntest.TALKNETD, "--help"], 10)
    assert rc == 0, (rc, err)
    assert re.search(r"--login-timeout S[^\n]*\n?[^\n]*\(default 60;",
                     out), out
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as conf:
        conf.write("# nothing: every setting at its default\n")
        conf.flush()
        with Server("-c", conf.name) as s:
            os.kill(s.pid, signal.SIGHUP)
            m = s.wait_log(r"reloaded: .*login-timeout (\d+)")
            assert m.group(1) == "60", m.group(0)


if __name__ == "__main__":
    tntest.main(globals())
