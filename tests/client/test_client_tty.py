#!/usr/bin/env python3
"""talknet client on a terminal, inside a private tmux server: the name
prompt, the line editor, incoming messages that must not garble the line
being typed, escaping, and the terminal restored on exit.
Skipped (77) when tmux is not installed.
"""

import contextlib
import os
import shlex
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest.talknet import (SKIP, TALKNET, TMUX, Peer, Skip,  # noqa: E402
                            Tmux, run)

class Pane(Tmux):
    """One tmux pane running a shell command, on a private server."""

    def __init__(self, command):
        super().__init__("talknet-tty-")
        self.tmux("-f", "/dev/null", "new-session", "-d", "-x", "100",
                  "-y", "30", "sh", "-c", command)

    def keys(self, *keys):
        self.tmux("send-keys", "-t", "0", *keys)

    def text(self, s):
        self.tmux("send-keys", "-t", "0", "-l", s)

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "0").rstrip("\n")

    def lines(self):
        return [x for x in self.screen().split("\n") if x.strip()]

    def wait(self, pred, what, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.screen()
            if pred(s):
                return s
            time.sleep(0.05)
        raise AssertionError("screen never showed %s:\n%s"
                             % (what, self.screen()))

    def answer(self, line):
        """Types line and Enter."""
        self.text(line)
        self.keys("Enter")

    def wait_exit(self):
        """Waits for the client's exit; it must be 0 with the terminal
        restored.  Returns the screen."""
        s = self.wait(lambda x: "EXIT=" in x, "the exit")
        assert "EXIT=0" in s and "TTY-RESTORED" in s, s
        return s

    def wait_last(self, want, timeout=5):
        """Waits until the last non-empty line is exactly want."""
        def last(s):
            ls = [x for x in s.split("\n") if x.strip()]
            return bool(ls) and ls[-1].rstrip() == want
        return self.wait(last, "last line %r" % want, timeout)


def start(ctx, *args):
    cmd = ("old=$(stty -g); %s %s 127.0.0.1 %d; rc=$?; "
           "[ \"$old\" = \"$(stty -g)\" ] && echo TTY-RESTORED; "
           "echo EXIT=$rc; sleep 30"
           % (shlex.quote(TALKNET), " ".join(shlex.quote(a) for a in args),
              ctx["port"]))
    return Pane(cmd)


@contextlib.contextmanager
def at_prompt(ctx):
    """A peer, and talknet in a pane at its "username:" prompt: (peer,
    pane, a name for the client, the peer's name)."""
    if TMUX is None:
        raise Skip("tmux is not installed")
    a, b = ctx["name"]("tt"), ctx["name"]("pe")
    with Peer(ctx["port"], b) as p, start(ctx) as pane:
        pane.wait_last("username:")
        yield p, pane, a, b


def test_editor_keeps_typed_line(ctx):
    with at_prompt(ctx) as (p, pane, a, b):
        pane.answer(a)
        pane.wait(lambda s: "* identified as " + a in s, "identified")
        pane.wait_last(a + ">")
        p.expect({"type": "NEW_USER", "username": a})

        # A message arrives while a line is half typed.
        pane.text(">partial typ")
        pane.wait_last(a + "> >partial typ")
        p.send({"type": "PUBLIC_TEXT", "text": "interrupt"})
        pane.wait(lambda x: "[public] %s: interrupt" % b in x, "the message")
        s = pane.wait_last(a + "> >partial typ")
        assert s.count(">partial typ") == 1, s
        lines = [x.rstrip() for x in s.split("\n") if x.strip()]
        assert lines[-2] == "[public] %s: interrupt" % b, s

        # Backspace, then finish the line.
        pane.keys("BSpace", "BSpace", "BSpace")
        pane.text("ed")
        pane.wait_last(a + "> >partial ed")
        pane.keys("Enter")
        p.expect({"type": "PUBLIC_TEXT_FROM", "username": a,
                  "text": "partial ed"})
        pane.wait_last(a + ">")

        # ^U erases the line; UTF-8 is typed and erased whole.
        pane.text("junk")
        pane.keys("C-u")
        pane.text(">héllo üé")
        pane.keys("BSpace")
        pane.wait_last(a + "> >héllo ü")
        pane.keys("Enter")
        p.expect({"type": "PUBLIC_TEXT_FROM", "username": a,
                  "text": "héllo ü"})

        # A peer cannot drive the terminal.
        p.send({"type": "TEXT", "username": a,
                "text": "\x1b[2J\x1b[31mred"})
        s = pane.wait(lambda x: "red" in x, "the escaped text")
        assert "[private] %s: \\x1b[2J\\x1b[31mred" % b in s, s

        # Many messages while typing: the typed line stays last.
        pane.text("txfrom/%s/xy" % b)
        for i in range(20):
            p.send({"type": "PUBLIC_TEXT", "text": "flood %d" % i})
        s = pane.wait(lambda x: "flood 19" in x, "the flood")
        pane.wait_last("%s> txfrom/%s/xy" % (a, b))
        pane.keys("Enter")
        p.expect({"type": "TEXT_FROM", "username": a, "text": "xy"})

        # ^D on an empty line quits; the terminal is restored.
        pane.keys("C-d")
        p.expect({"type": "DISCONNECTED", "username": a})
        s = pane.wait_exit()
        assert "connection closed" not in s, s


def _asked_again(pane, a, quit_key, p=None):
    """The client asks for a name again: a is taken (the peer p, if any,
    sees NEW_USER), then quit_key ends it (p sees DISCONNECTED).
    Returns the screen at exit."""
    pane.wait_last("username:")
    pane.answer(a)
    pane.wait_last(a + ">")
    if p:
        p.expect({"type": "NEW_USER", "username": a})
    pane.keys(quit_key)
    if p:
        p.expect({"type": "DISCONNECTED", "username": a})
    return pane.wait_exit()


def test_long_name_asks_again(ctx):
    """The server refuses a name over its limit and closes: on a
    terminal the client says why, connects again and asks again."""
    with at_prompt(ctx) as (p, pane, a, b):
        pane.answer("abcdefghijkl")
        pane.wait(lambda s: "invalid username: abcdefghijkl is 12 "
                  "characters, more than the server takes" in s, "why")
        s = _asked_again(pane, a, "C-d", p)
        assert "connection closed" not in s, s


def test_long_name_option_asks_again(ctx):
    """The same with -n: the name from the command line is refused."""
    if TMUX is None:
        return SKIP
    a = ctx["name"]("tt")
    with start(ctx, "-n", "abcdefghijklm") as pane:
        pane.wait(lambda s: "invalid username: abcdefghijklm is 13 "
                  "characters" in s, "why")
        _asked_again(pane, a, "C-c")


def test_taken_name_asks_again(ctx):
    with at_prompt(ctx) as (p, pane, a, b):
        pane.answer(b)
        pane.wait(lambda s: "! name already taken: " + b in s, "taken")
        _asked_again(pane, a, "C-c", p)


if __name__ == "__main__":
    run([test_editor_keeps_typed_line, test_taken_name_asks_again,
         test_long_name_asks_again, test_long_name_option_asks_again])
