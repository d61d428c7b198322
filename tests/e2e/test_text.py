"""TEXT, PUBLIC_TEXT and the string rules of protocol.md (escapes,
surrogate pairs, control characters, raw UTF-8 on output)."""

import os
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
import tntest  # noqa: E402
from tntest import (Client, Server, barrier, connect_users, disconnected,
                    expect_nothing, public_from, req, resp, text_from)
from tntest.steps import name_taken  # noqa: E402


def test_text_goes_to_one_user_only():
    with Server() as s:
        u = Client(s)
        a, b, c = connect_users(s, "Kimberly", "Luis", "Antonio")
        a.send(b'{"type":"TEXT","username":"Luis","text":"Hi Luis"}\n')
        b.expect(b'{"type":"TEXT_FROM","username":"Kimberly",'
                 b'"text":"Hi Luis"}\n')
        barrier(a, c)            # c would have got it before the token
        expect_nothing(a, b, c, u)
        b.send(req("TEXT", username="Kimberly", text="Hi Kimberly"))
        a.expect(text_from("Luis", "Hi Kimberly"))
        expect_nothing(a, b, c, u)


def test_text_no_such_user():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        a.send(req("TEXT", username="Nobody", text="hello?"))
        a.expect(b'{"type":"RESPONSE","operation":"TEXT",'
                 b'"result":"NO_SUCH_USER","extra":"Nobody"}\n')
        # Names are exact: "luis" is not "Luis".
        a.send(req("TEXT", username="luis", text="hello?"))
        a.expect(resp("TEXT", "NO_SUCH_USER", "luis"))
        expect_nothing(a, b)
        # An unidentified connection has no name; a failed IDENTIFY
        # does not make one.
        u = name_taken(s, "Luis")
        b.send(req("DISCONNECT"))
        b.expect_closed()
        a.expect(disconnected("Luis"))
        a.send(req("TEXT", username="Luis", text="gone?"))
        a.expect(resp("TEXT", "NO_SUCH_USER", "Luis"))
        expect_nothing(a, u)


def test_public_text_to_every_other_identified_user():
    with Server() as s:
        u = Client(s)
        a, b, c = connect_users(s, "Kimberly", "Luis", "Antonio")
        u2 = Client(s)
        a.send(b'{"type":"PUBLIC_TEXT","text":"Hello everyone!"}\n')
        b.expect(b'{"type":"PUBLIC_TEXT_FROM","username":"Kimberly",'
                 b'"text":"Hello everyone!"}\n')
        c.expect(public_from("Kimberly", "Hello everyone!"))
        barrier(b, a)
        expect_nothing(a, b, c, u, u2)


def test_public_text_alone_gets_nothing():
    with Server() as s:
        a = Client(s).identify("Kimberly")
        a.send(req("PUBLIC_TEXT", text="anyone?"))
        a.send(req("USERS"))
        a.expect(tntest.user_list({"Kimberly": "ACTIVE"}))
        a.expect_nothing()


def test_unicode_text_raw_utf8():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        t = "h\u00e9llo w\u00f6rld \u2014 \u65e5\u672c\u8a9e \U0001F600 \u00ff"
        a.send(req("PUBLIC_TEXT", text=t))
        b.expect(('{"type":"PUBLIC_TEXT_FROM","username":"Kimberly",'
                  '"text":"%s"}\n' % t).encode("utf-8"))
        a.send(req("TEXT", username="Luis", text=t))
        b.expect(text_from("Kimberly", t))


def test_escapes_decoded_and_reencoded():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        a.send(b'{"type":"PUBLIC_TEXT","text":"a\\"b\\\\c\\/d\\u00e9\\u65E5"}\n')
        # '"' and '\' escaped; '/' and everything >= 0x20 raw.
        b.expect(b'{"type":"PUBLIC_TEXT_FROM","username":"Kimberly",'
                 b'"text":"a\\"b\\\\c/d\xc3\xa9\xe6\x97\xa5"}\n')
        a.send(b'{"type":"TEXT","username":"\\u004cuis","text":"\\u0041"}\n')
        b.expect(b'{"type":"TEXT_FROM","username":"Kimberly","text":"A"}\n')


def test_surrogate_pair_decoding():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        a.send(b'{"type":"PUBLIC_TEXT","text":"x\\ud83d\\ude00y\\uD834\\uDD1E"}\n')
        b.expect(b'{"type":"PUBLIC_TEXT_FROM","username":"Kimberly",'
                 b'"text":"x\xf0\x9f\x98\x80y\xf0\x9d\x84\x9e"}\n')


def test_lone_surrogate_never_yields_invalid_utf8():
    # protocol.md does not say whether a lone surrogate escape is refused;
    # either it is INVALID, or what goes out is still valid UTF-8 (every
    # line is checked by tntest).
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        a.send(b'{"type":"PUBLIC_TEXT","text":"x\\ud83dy"}\n')
        a.send(req("USERS"))
        got = a.recv()
        if got == tntest.INVALID:
            a.expect_closed()
            b.expect(disconnected("Kimberly"))
        else:
            assert got["type"] == "USER_LIST", got
            m = b.recv()
            assert m["type"] == "PUBLIC_TEXT_FROM", m


def test_control_chars_escaped_on_output():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        t = "".join(chr(i) for i in range(1, 0x20)) + "|\x7f|end"
        a.send(req("PUBLIC_TEXT", text=t))
        raw, got = b.recv_line()
        # check_line already refused any raw byte below 0x20.
        assert got == public_from("Kimberly", t), (raw, got)
        assert raw.count(b"\n") == 1 and raw.endswith(b"\n")
        a.send(b'{"type":"TEXT","username":"Luis","text":"l1\\nl2\\r\\tx"}\n')
        raw, got = b.recv_line()
        assert got == text_from("Kimberly", "l1\nl2\r\tx"), raw
        assert raw.count(b"\n") == 1 and b"\r" not in raw and b"\t" not in raw


def test_nul_inside_text_round_trips():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        a.send(b'{"type":"PUBLIC_TEXT","text":"a\\u0000b"}\n')
        b.expect(b'{"type":"PUBLIC_TEXT_FROM","username":"Kimberly",'
                 b'"text":"a\\u0000b"}\n')
        a.send(b'{"type":"TEXT","username":"Luis","text":"\\u0000\\u0000x\\u0000"}\n')
        b.expect(b'{"type":"TEXT_FROM","username":"Kimberly",'
                 b'"text":"\\u0000\\u0000x\\u0000"}\n')
        expect_nothing(a, b)


def test_empty_and_long_text():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        a.send(req("PUBLIC_TEXT", text=""))
        b.expect(b'{"type":"PUBLIC_TEXT_FROM","username":"Kimberly",'
                 b'"text":""}\n')
        long_t = ("0123456789\u00e9" * 5000)          # 60000 bytes of UTF-8
        a.send(req("TEXT", username="Luis", text=long_t))
        b.expect(text_from("Kimberly", long_t))
        a.send(req("PUBLIC_TEXT", text=long_t))
        b.expect(public_from("Kimberly", long_t))


def test_text_unknown_keys_ignored():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        a.send(b'{"type":"TEXT","text":"hi","x":{"y":[]},"username":"Luis",'
               b'"z":false}\n')
        b.expect(text_from("Kimberly", "hi"))


def test_many_texts_in_order_third_party_nothing():
    # Only the addressee gets TEXT_FROM; a third party gets nothing.
    with Server() as s:
        a, b, c = connect_users(s, "Kimberly", "Luis", "Antonio")
        for i in range(20):
            a.send(req("TEXT", username="Luis", text="m%d" % i))
        for i in range(20):
            b.expect(text_from("Kimberly", "m%d" % i))
        barrier(a, c)
        expect_nothing(a, b, c)


if __name__ == "__main__":
    tntest.main(globals())
