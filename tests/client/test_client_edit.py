#!/usr/bin/env python3
"""talknet client on a pseudo-terminal, with libedit: the editing keys as
the escape sequences a terminal sends, history (Up, Down, ^R, the file
and its cap), a message arriving while the cursor is inside a half-typed
line, ^C and ^D ending quietly.  Skipped (77) when the client was built
without libedit.
"""

import os
import shutil
import stat
import sys
import tempfile

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest.talknet import SKIP, Peer, PtyClient, editor, run  # noqa: E402

LEFT, RIGHT, UP, DOWN = "\x1b[D", "\x1b[C", "\x1b[A", "\x1b[B"
HOME, END = "\x1b[H", "\x1b[F"
HOME_VT, END_VT = "\x1b[1~", "\x1b[4~"
CTRL_R, CTRL_C, CTRL_D = "\x12", "\x03", "\x04"


class Session:
    """A peer and a client on a terminal, with a private state dir."""

    def __init__(self, ctx, histsize=None, state=None):
        self.a, self.b = ctx["name"]("ed"), ctx["name"]("pe")
        self.own_state = state is None
        self.state = state or tempfile.mkdtemp(prefix="talknet-state-")
        env = {"XDG_STATE_HOME": self.state}
        if histsize is not None:
            env["TALKNET_HISTSIZE"] = str(histsize)
        self.p = Peer(ctx["port"], self.b)
        self.c = PtyClient(ctx["port"], "-n", self.a, env=env)
        self.c.wait_for("%s> " % self.a)
        self.p.expect({"type": "NEW_USER", "username": self.a})

    def line(self, keys, text):
        """Types keys, then Enter; the peer must get text, in public."""
        self.c.keys(keys)
        self.c.keys("\r")
        self.p.expect({"type": "PUBLIC_TEXT_FROM", "username": self.a,
                       "text": text})

    def history(self):
        return os.path.join(self.state, "talknet", "history")

    def close(self, remove=True):
        self.c.close()
        self.p.close()
        if remove and self.own_state:
            shutil.rmtree(self.state, ignore_errors=True)


def needs_libedit(f):
    def wrapped(ctx):
        if editor() != "libedit":
            return SKIP
        return f(ctx)
    wrapped.__name__ = f.__name__
    return wrapped


@needs_libedit
def test_cursor_keys(ctx):
    s = Session(ctx)
    try:
        # The issue's own example: >helo Left Left l End " world".
        s.line(">helo" + LEFT + LEFT + "l" + END + " world", "hello world")
        s.line("ello" + HOME + ">h", "hello")
        s.line(">hxllo" + HOME + RIGHT + RIGHT + RIGHT + "\x7f" + "e",
               "hello")
        s.line("bc" + HOME_VT + ">a" + END_VT + "d", "abcd")
    finally:
        s.close()


@needs_libedit
def test_history_keys(ctx):
    s = Session(ctx)
    try:
        s.line(">one", "one")
        s.line(">two", "two")
        s.line(UP + UP + DOWN, "two")
        # "two" twice in a row is kept once: Up Up is "one".
        s.line(UP + UP, "one")
        s.line(">alpha x", "alpha x")
        s.line(">beta y", "beta y")
        s.line("alp" + CTRL_R, "alpha x")
        # ^R again goes on to older lines that hold the text.
        s.line("a" + CTRL_R + CTRL_R, "beta y")
    finally:
        s.close()


@needs_libedit
def test_redraw_keeps_cursor(ctx):
    s = Session(ctx)
    try:
        s.c.keys(">partial" + LEFT + LEFT + LEFT)
        s.p.send({"type": "PUBLIC_TEXT", "text": "interrupt"})
        s.c.wait_for("[public] %s: interrupt" % s.b)
        s.c.keys("X")
        s.c.keys("\r")
        s.p.expect({"type": "PUBLIC_TEXT_FROM", "username": s.a,
                    "text": "partXial"})
        # After the redraw the prompt and the line are drawn again.
        tail = s.c.text().split("[public] %s: interrupt" % s.b, 1)[1]
        assert "%s> >partial" % s.a in tail, repr(tail)
    finally:
        s.close()


def paste(c, data, chunk=512):
    """Writes data in chunks while the client lives; returns the bytes
    written (fewer if it died, which must not leave the test blocked)."""
    data = data.encode("utf-8")
    for i in range(0, len(data), chunk):
        if c.proc.poll() is not None:
            return i
        c.keys(data[i:i + chunk], pause=0.02)
    return len(data)


@needs_libedit
def test_long_line(ctx):
    # libedit corrupts its heap past about 1 KB (talknet(1)): the
    # editor stops taking keys at 240 bytes, says so, and
    # Enter then sends nothing rather than a cut line.
    s = Session(ctx)
    try:
        near = "n" * 200
        s.line(">" + near, near)
        sent = paste(s.c, ">" + "x" * 40000)
        assert s.c.proc.poll() is None, \
            "client died after %d bytes: %r" % (sent, s.c.text()[-300:])
        # Slow: each byte of the paste is a key of its own.
        s.c.wait_for("line longer than 240 bytes: Enter will not send it",
                      timeout=60)
        s.c.keys("\r")
        s.c.wait_for("line longer than 240 bytes: not sent", timeout=60)
        s.p.quiet([s.a])
        # The editor goes on: the next line is sent, and the long one
        # was not kept in the history.
        s.line(">after", "after")
        s.line(UP + UP, near)
        # Keys that insert much at once are not passed: M-9 (a repeat
        # count), ^Y into a typed line, Tab (file name completion).
        s.line(">ab\x1b9\x1b9\x1b9x", "abx")
        s.line(">" + near + "\x01\x0b\x19\x19\x19", near)
        s.line(">q\t/", "q/")
        # UTF-8 counts in bytes: 200 bytes pass, 300 do not.
        s.line(">" + "\u00e9" * 100, "\u00e9" * 100)
        paste(s.c, ">" + "\u00e9" * 150)
        s.c.keys("\r")
        s.p.quiet([s.a])
        # After long lines, a line of 4-byte characters (what libedit
        # keeps of older lines is converted too).
        paste(s.c, ">" + "\U0001f600" * 100)
        s.c.keys("\r")
        s.p.quiet([s.a])
        s.line(">ok", "ok")
        assert s.c.proc.poll() is None, s.c.text()[-300:]
    finally:
        s.close()


@needs_libedit
def test_history_file(ctx):
    s = Session(ctx, histsize=3)
    state = s.state
    try:
        for i in range(5):
            s.line(">h%d" % i, "h%d" % i)
        s.c.keys(CTRL_D)
        assert s.c.wait() == 0, s.c.text()
        assert "connection closed" not in s.c.text(), s.c.text()
        path = s.history()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, \
            oct(os.stat(path).st_mode)
        d = os.path.dirname(path)
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700, \
            oct(os.stat(d).st_mode)
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [x for x in f.read().splitlines()
                     if not x.startswith("_HiStOrY_")]
        assert len(lines) == 3, lines
        assert lines[-1].endswith("h4") and "h1" not in "".join(lines), \
            lines
    finally:
        s.close(remove=False)
    # A new session starts from the saved history.
    s = Session(ctx, histsize=3, state=state)
    try:
        s.line(UP, "h4")
        s.c.keys(CTRL_C)
        assert s.c.wait() == 0, s.c.text()
        assert "connection closed" not in s.c.text(), s.c.text()
    finally:
        s.close(remove=False)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    run([test_cursor_keys, test_history_keys, test_redraw_keeps_cursor,
         test_long_line, test_history_file])
