#!/usr/bin/env python3
"""nc alone can hold a whole TalkNet session (identify, public message,
private message, disconnect), and the talknet client talks to an nc peer.
Skipped (77) when nc is not installed.
"""

import json
import os
import queue
import shutil
import subprocess
import sys
import threading

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest.talknet import (SKIP, TIMEOUT, Peer, identified,  # noqa: E402
                            lines_reader, run)

NC = shutil.which("nc")


class Nc:
    """nc 127.0.0.1 PORT, fed through a pipe."""

    def __init__(self, port):
        self.proc = subprocess.Popen([NC, "127.0.0.1", str(port)],
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        self.q = queue.Queue()
        self.out = []
        threading.Thread(target=lines_reader,
                         args=(self.proc.stdout, self.q, self.out),
                         daemon=True).start()

    def send(self, obj):
        line = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def expect(self, want):
        while True:
            try:
                line = self.q.get(timeout=TIMEOUT)
            except queue.Empty:
                raise AssertionError("nc never got %r: %r" % (want, self.out))
            if line is None:
                raise AssertionError("nc output ended: %r" % self.out)
            msg = json.loads(line)
            if all(msg.get(k) == v for k, v in want.items()):
                return line

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=5)
        try:
            self.proc.stdin.close()
        except OSError:
            pass


def test_nc_alone_holds_a_session(ctx):
    if NC is None:
        return SKIP
    a, b = ctx["name"]("nc"), ctx["name"]("pe")
    p = Peer(ctx["port"], b)
    n = Nc(ctx["port"])
    try:
        n.send({"type": "IDENTIFY", "username": a})
        n.expect({"type": "RESPONSE", "operation": "IDENTIFY",
                  "result": "SUCCESS", "extra": a})
        p.expect({"type": "NEW_USER", "username": a})
        n.send({"type": "PUBLIC_TEXT", "text": "hello from nc"})
        p.expect({"type": "PUBLIC_TEXT_FROM", "username": a,
                  "text": "hello from nc"})
        n.send({"type": "TEXT", "username": b, "text": "psst"})
        p.expect({"type": "TEXT_FROM", "username": a, "text": "psst"})
        p.send({"type": "TEXT", "username": a, "text": "back"})
        n.expect({"type": "TEXT_FROM", "username": b, "text": "back"})
        n.send({"type": "DISCONNECT"})
        p.expect({"type": "DISCONNECTED", "username": a})
    finally:
        n.stop()
        p.close()


def test_client_with_nc_peer(ctx):
    if NC is None:
        return SKIP
    a, b = ctx["name"]("cl"), ctx["name"]("nc")
    n = Nc(ctx["port"])
    n.send({"type": "IDENTIFY", "username": b})
    n.expect({"type": "RESPONSE", "result": "SUCCESS"})
    c = identified(ctx["port"], a)
    try:
        n.expect({"type": "NEW_USER", "username": a})
        c.send(">hi nc")
        n.expect({"type": "PUBLIC_TEXT_FROM", "username": a,
                  "text": "hi nc"})
        n.send({"type": "TEXT", "username": a, "text": "hi client"})
        c.expect("[private] %s: hi client" % b)
        c.send("txfrom/%s/bye" % b)
        n.expect({"type": "TEXT_FROM", "username": a, "text": "bye"})
        c.send("quit/")
        n.expect({"type": "DISCONNECTED", "username": a})
        assert c.wait() == 0, c.err
    finally:
        c.kill()
        n.stop()


if __name__ == "__main__":
    run([test_nc_alone_holds_a_session, test_client_with_nc_peer])
