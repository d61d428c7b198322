#!/usr/bin/env python3
"""talknet client: renderings a conforming talknetd never sends (unknown
types and results, broken lines, C1 controls, bad UTF-8) and the time
limits, against a small scripted server on a loopback port.  The real
daemon is covered by test_client_commands.py and test_client_session.py.
"""

import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest.talknet import PipeClient, run  # noqa: E402


class Script:
    """A one-connection server: reads the IDENTIFY, then runs a script."""

    def __init__(self, lines, close=True, identify=True, bye=False):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(1)
        self.lsock.settimeout(5)
        self.port = self.lsock.getsockname()[1]
        self.lines = lines
        self.close = close
        self.identify = identify
        self.bye = bye
        self.got = b""
        self.done = threading.Event()
        threading.Thread(target=self.serve, daemon=True).start()

    def read_line(self, s):
        while b"\n" not in self.got:
            data = s.recv(4096)
            if not data:
                return
            self.got += data

    def serve(self):
        try:
            s, _ = self.lsock.accept()
        except OSError:
            return
        s.settimeout(5)
        try:
            if self.identify:
                self.read_line(s)
                s.sendall(b'{"type":"RESPONSE","operation":"IDENTIFY",'
                          b'"result":"SUCCESS","extra":"me"}\n')
            for line in self.lines:
                s.sendall(line)
            self.done.set()
            if self.close:
                s.close()
            else:
                # Ignore DISCONNECT: the client must give up by itself.
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    try:
                        data = s.recv(4096)
                    except OSError:
                        break
                    if not data:
                        break
                    self.got += data
                    if self.bye and b'"DISCONNECT"' in self.got:
                        break
                s.close()
        except OSError:
            pass
        finally:
            self.lsock.close()


def test_renderings(ctx):
    srv = Script([
        b'{"type":"RESPONSE","operation":"NEW_ROOM",'
        b'"result":"TOO_MANY_ROOMS","extra":"R9"}\n',
        b'{"type":"RESPONSE","operation":"INVALID",'
        b'"result":"NOT_IDENTIFIED"}\n',
        b'{"type":"RESPONSE","operation":"TEXT","result":"SOMEDAY",'
        b'"extra":"x"}\n',
        b'{"type":"FUTURE_THING","a":1}\n',
        b'not json at all\n',
        b'{"type":"USER_LIST","users":{}}\n',
        b'{"type":"RESPONSE","operation":"USERS","result":"SUCCESS",'
        b'"extra":"x"}\n',
        b'{"type":"PUBLIC_TEXT_FROM","username":"ev\\u009bil",'
        b'"text":"a\\u007fb"}\n',
        b'{"type":"TEXT_FROM","username":"z","text":"\xc2\x9b2J"}\r\n',
        b'raw\x7f\x1b[31m\xff\xfe\n',
        b'{"type":"NEW_STATUS","username":"q","status":"NAPPING"}\x00',
        b'{"type":"DISCONNECTED","username":"q"}\n',
    ])
    with PipeClient(srv.port, "-n", "me") as c:
        c.expect("* identified as me")
        c.expect("! too many rooms on the server: R9")
        c.expect("! not identified: the server refused the request")
        c.expect('{"type":"RESPONSE","operation":"TEXT","result":"SOMEDAY",'
                 '"extra":"x"}')
        c.expect('{"type":"FUTURE_THING","a":1}')
        c.expect("not json at all")
        c.expect("users: (none)")
        c.expect('{"type":"RESPONSE","operation":"USERS","result":"SUCCESS",'
                 '"extra":"x"}')
        c.expect("[public] ev\\u009bil: a\\x7fb")
        c.expect("[private] z: \\u009b2J")
        c.expect("raw\\x7f\\x1b[31m\\xff\\xfe")
        c.expect("* q is now NAPPING")
        c.expect("* q disconnected")
        c.expect_err("talknet: connection closed by server")
        assert c.wait() == 1, c.err


def test_quit_gives_up_after_2s(ctx):
    srv = Script([], close=False)
    with PipeClient(srv.port, "-n", "me") as c:
        c.expect("* identified as me")
        start = time.monotonic()
        c.send("quit/")
        # Never before the 2 s are up; a loaded machine may take longer
        # to notice, so the upper bound only says the client gave up.
        assert c.wait(timeout=10) == 0, c.err
        took = time.monotonic() - start
        assert 1.5 < took < 10, took
        assert b'{"type":"DISCONNECT"}\n' in srv.got, srv.got


def test_json_mode_exact(ctx):
    line = b'{"type":"PUBLIC_TEXT_FROM", "username":"x","text":"\xc3\xa9"}'
    srv = Script([line + b"\n"])
    with PipeClient(srv.port, "--json", "-n", "me") as c:
        c.expect('{"type":"RESPONSE","operation":"IDENTIFY",'
                 '"result":"SUCCESS","extra":"me"}')
        c.expect(line.decode())
        assert c.wait() == 1, c.err


def test_identify_is_encoded(ctx):
    srv = Script([], close=False, bye=True)
    with PipeClient(srv.port, "-n", 'q"\\é') as c:
        c.expect('* identified as me')
        c.close_stdin()
        assert c.wait() == 0, c.err
        first = srv.got.split(b"\n")[0]
        assert first == ('{"type":"IDENTIFY","username":"q\\"\\\\é"}'
                         .encode()), first


if __name__ == "__main__":
    run([test_renderings, test_quit_gives_up_after_2s, test_json_mode_exact,
         test_identify_is_encoded], need_daemon=False)
