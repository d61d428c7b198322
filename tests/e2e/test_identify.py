"""IDENTIFY: success, NEW_USER to the others, USER_ALREADY_EXISTS, and a
second IDENTIFY on an identified connection (protocol.md, IDENTIFY)."""

import os
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
import tntest  # noqa: E402
from tntest import (Client, Server, connect_users, expect_nothing,
                    new_user, req, resp, settle, user_list)
from tntest.steps import cut_off, name_taken  # noqa: E402


def test_identify_success_exact_bytes():
    with Server() as s:
        c = Client(s)
        c.send(b'{"type":"IDENTIFY","username":"Kimberly"}\n')
        c.expect(b'{"type":"RESPONSE","operation":"IDENTIFY",'
                 b'"result":"SUCCESS","extra":"Kimberly"}\n')
        c.expect_nothing()


def test_new_user_to_others_not_sender_nor_unidentified():
    with Server() as s:
        a = Client(s).identify("Kimberly")
        u = Client(s)                      # connected, never identifies
        b = Client(s)
        b.send(req("IDENTIFY", username="Luis"))
        b.expect(resp("IDENTIFY", "SUCCESS", "Luis"))
        a.expect(b'{"type":"NEW_USER","username":"Luis"}\n')
        c = Client(s).identify("Antonio")
        a.expect(new_user("Antonio"))
        b.expect(new_user("Antonio"))
        expect_nothing(a, b, c, u)


def test_already_exists_keeps_connection_and_allows_retry():
    with Server() as s:
        a = Client(s).identify("Kimberly")
        b = Client(s)
        b.send(req("IDENTIFY", username="Kimberly"))
        b.expect(b'{"type":"RESPONSE","operation":"IDENTIFY",'
                 b'"result":"USER_ALREADY_EXISTS","extra":"Kimberly"}\n')
        expect_nothing(a, b)
        # Still open and unidentified: another name works.
        b.send(req("IDENTIFY", username="Luis"))
        b.expect(resp("IDENTIFY", "SUCCESS", "Luis"))
        a.expect(new_user("Luis"))
        assert b.users() == {"Kimberly": "ACTIVE", "Luis": "ACTIVE"}
        assert a.users() == {"Kimberly": "ACTIVE", "Luis": "ACTIVE"}
        expect_nothing(a, b)


def test_already_exists_twice_then_retry():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        c = Client(s)
        for n in ("Kimberly", "Luis", "Kimberly"):
            c.send(req("IDENTIFY", username=n))
            c.expect(resp("IDENTIFY", "USER_ALREADY_EXISTS", n))
        c.identify("Antonio")
        a.expect(new_user("Antonio"))
        b.expect(new_user("Antonio"))
        expect_nothing(a, b, c)


def test_already_exists_connection_stays_unidentified():
    with Server() as s:
        a = Client(s).identify("Kimberly")
        b = name_taken(s, "Kimberly")
        b.send(req("USERS"))
        b.expect_invalid_close("NOT_IDENTIFIED")
        # b was never Kimberly: its going away announces nothing.
        expect_nothing(a)
        assert a.users() == {"Kimberly": "ACTIVE"}


def test_failed_identify_then_close_does_not_touch_owner():
    with Server() as s:
        a, x = connect_users(s, "Kimberly", "Luis")
        b = name_taken(s, "Kimberly")
        b.close()
        expect_nothing(a, x)
        assert x.users() == {"Kimberly": "ACTIVE", "Luis": "ACTIVE"}
        x.send(req("TEXT", username="Kimberly", text="still there?"))
        a.expect(tntest.text_from("Luis", "still there?"))


def test_second_identify_is_invalid_and_closes():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        a.send(req("IDENTIFY", username="Other"))
        cut_off(a, "Kimberly", b)
        assert b.users() == {"Luis": "ACTIVE"}
        # The name is free again; "Other" was never taken.
        c = Client(s).identify("Kimberly")
        b.expect(new_user("Kimberly"))
        d = Client(s).identify("Other")
        b.expect(new_user("Other"))
        c.expect(new_user("Other"))
        expect_nothing(b, c, d)


def test_second_identify_same_name_is_invalid():
    with Server() as s:
        a, b = connect_users(s, "Kimberly", "Luis")
        b.send(req("IDENTIFY", username="Luis"))
        cut_off(b, "Luis", a)


def test_identify_with_escapes_and_multibyte():
    with Server() as s:
        a = Client(s)
        # \u00f1 and a surrogate pair decode to the same name as raw UTF-8.
        a.send(b'{"type":"IDENTIFY","username":"\\u00f1and\\ud83d\\ude00"}\n')
        a.expect(resp("IDENTIFY", "SUCCESS", "\u00f1and\U0001F600"))
        a.expect_nothing()
        b = Client(s)
        b.send(req("IDENTIFY", username="\u00f1and\U0001F600"))
        b.expect(resp("IDENTIFY", "USER_ALREADY_EXISTS",
                      "\u00f1and\U0001F600"))
        b.identify("\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9")
        a.expect(new_user("\u00e9" * 8))
        assert a.users() == {"\u00f1and\U0001F600": "ACTIVE",
                             "\u00e9" * 8: "ACTIVE"}


def test_identify_key_order_and_unknown_keys():
    with Server() as s:
        a = Client(s)
        a.send(b'{"username":"Kimberly","extra":{"x":[1,2.5,null,true]},'
               b'"type":"IDENTIFY"}\n')
        a.expect(resp("IDENTIFY", "SUCCESS", "Kimberly"))
        b = Client(s)
        b.send(b' { "type" : "IDENTIFY" , "username" : "Luis" } \n')
        b.expect(resp("IDENTIFY", "SUCCESS", "Luis"))
        a.expect(new_user("Luis"))


def test_names_with_spaces_and_case():
    with Server() as s:
        a = Client(s).identify("Kim Berl")
        b = Client(s).identify("kim berl")   # another name: case differs
        a.expect(new_user("kim berl"))
        c = Client(s).identify(" ")
        a.expect(new_user(" "))
        b.expect(new_user(" "))
        assert c.users() == {"Kim Berl": "ACTIVE", "kim berl": "ACTIVE",
                             " ": "ACTIVE"}


def test_concurrent_identify_same_name_one_wins():
    with Server() as s:
        cs = [Client(s) for _ in range(10)]
        for c in cs:
            c.send(req("IDENTIFY", username="Same"))
        results = []
        for c in cs:
            got = c.recv()
            assert got["type"] == "RESPONSE" and \
                got["operation"] == "IDENTIFY" and \
                got.get("extra") == "Same", got
            results.append(got["result"])
        assert results.count("SUCCESS") == 1, results
        assert results.count("USER_ALREADY_EXISTS") == 9, results
        winner = cs[results.index("SUCCESS")]
        winner.name = "Same"
        # The losers are still unidentified and may pick other names.
        done = [winner]
        for i, c in enumerate(cs):
            if c is not winner:
                # Across nodes, c's node may not have read the last
                # arrival yet, and would tell c of it after its own.
                settle(c)
                c.identify("n%d" % i)
                for o in done:
                    o.expect(new_user("n%d" % i))
                done.append(c)
        assert winner.users() == dict(
            [("Same", "ACTIVE")] +
            [("n%d" % i, "ACTIVE") for i, c in enumerate(cs)
             if c is not winner])
        expect_nothing(cs)

def test_names_with_quotes_and_backslashes():
    with Server() as s:
        a = Client(s)
        a.send(b'{"type":"IDENTIFY","username":"a\\"b\\\\c"}\n')
        a.expect(b'{"type":"RESPONSE","operation":"IDENTIFY",'
                 b'"result":"SUCCESS","extra":"a\\"b\\\\c"}\n')
        a.name = 'a"b\\c'
        b = Client(s).identify("{}[],:")
        a.expect(b'{"type":"NEW_USER","username":"{}[],:"}\n')
        b.send(req("TEXT", username='a"b\\c', text="x"))
        a.expect(tntest.text_from("{}[],:", "x"))


def test_identify_pipelined_with_more_requests():
    with Server() as s:
        a = Client(s).identify("Kimberly")
        # IDENTIFY and the requests after it in one write: they run as the
        # identified user.
        b = Client(s)
        b.send(b'{"type":"IDENTIFY","username":"Luis"}\n'
               b'{"type":"PUBLIC_TEXT","text":"first"}\n{"type":"USERS"}\n')
        b.expect(resp("IDENTIFY", "SUCCESS", "Luis"))
        b.expect(user_list({"Kimberly": "ACTIVE", "Luis": "ACTIVE"}))
        a.expect(new_user("Luis"))
        a.expect(tntest.public_from("Luis", "first"))
        # A taken name then a request: still unidentified.
        c = Client(s)
        c.send(b'{"type":"IDENTIFY","username":"Luis"}\n'
               b'{"type":"PUBLIC_TEXT","text":"sneaky"}\n')
        c.expect(resp("IDENTIFY", "USER_ALREADY_EXISTS", "Luis"))
        c.expect(tntest.NOT_IDENTIFIED)
        c.expect_closed()
        # A taken name, then a free one, then a request.
        d = Client(s)
        d.send(b'{"type":"IDENTIFY","username":"Luis"}\n'
               b'{"type":"IDENTIFY","username":"Dora"}\n'
               b'{"type":"TEXT","username":"Kimberly","text":"hi"}\n')
        d.expect(resp("IDENTIFY", "USER_ALREADY_EXISTS", "Luis"))
        d.expect(resp("IDENTIFY", "SUCCESS", "Dora"))
        a.expect(new_user("Dora"))
        a.expect(tntest.text_from("Dora", "hi"))
        b.expect(new_user("Dora"))
        expect_nothing(a, b, d)


if __name__ == "__main__":
    tntest.main(globals())
