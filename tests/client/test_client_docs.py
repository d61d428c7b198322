#!/usr/bin/env python3
"""talknet client docs that must stay true: the README's terminal
example is replayed in two tmux panes and each pane must show exactly
the README's lines; talknet(1) has a real date and documents the
options, keys, aliases, history file and exit codes.
"""

import os
import re
import shlex
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest.talknet import SKIP, TALKNET, TMUX, Tmux, run  # noqa: E402

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
RIGHT_COL = 44		# where the README's second column starts


def readme_example():
    """Returns the two columns of the README's terminal example as
    {who: [lines]} and the typed commands as [(who, command, seen)],
    where seen is how many lines of that column come before it."""
    with open(os.path.join(TOP, "README.md"), encoding="utf-8") as f:
        text = f.read()
    block = text.split("    terminal 1 ", 1)[1].split("\n\n", 1)[0]
    cols = {}
    who = {}
    typed = []
    for raw in block.split("\n")[1:]:
        side = "right" if raw.startswith(" " * RIGHT_COL) else "left"
        line = raw.strip()
        if line.startswith("terminal") or line.startswith("$"):
            m = re.match(r"\$ src/talknet -n (\w+)", line)
            if m:
                who[side] = m.group(1)
                cols[m.group(1)] = []
            continue
        name = who[side]
        m = re.match(r"%s> (.+)$" % name, line)
        if m:
            typed.append((name, m.group(1), len(cols[name])))
        cols[name].append(line)
    return cols, typed


class Panes(Tmux):
    """Named tmux sessions on a private server."""

    def __init__(self):
        super().__init__("talknet-doc-")
        self.first = True

    def start(self, name, command):
        extra = ["-f", "/dev/null"] if self.first else []
        self.first = False
        self.tmux(*extra, "new-session", "-d", "-s", name, "-x", "100",
                  "-y", "40", "sh", "-c", command + "; sleep 30")

    def lines(self, name):
        out = self.tmux("capture-pane", "-p", "-t", name)
        return [x.rstrip() for x in out.split("\n") if x.strip()]

    def wait(self, name, want, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.lines(name)
            if got[:len(want)] == want:
                return
            time.sleep(0.05)
        raise AssertionError("pane %s shows %r, want %r first"
                             % (name, self.lines(name), want))


def test_readme_terminal_example(ctx):
    if TMUX is None:
        return SKIP
    cols, typed = readme_example()
    assert set(cols) == {"alice", "bob"} and len(typed) >= 5, (cols, typed)
    panes = Panes()
    try:
        for name in ("alice", "bob"):
            panes.start(name, "%s -n %s 127.0.0.1 %d"
                        % (shlex.quote(TALKNET), name, ctx["port"]))
            panes.wait(name, ["* identified as " + name])
        for name, command, seen in typed:
            panes.wait(name, cols[name][:seen])
            panes.tmux("send-keys", "-t", name, "-l", command)
            panes.tmux("send-keys", "-t", name, "Enter")
        for name in ("alice", "bob"):
            panes.wait(name, cols[name])
            assert panes.lines(name) == cols[name], (name,
                                                     panes.lines(name))
    finally:
        panes.close()


def test_man_page(ctx):
    with open(os.path.join(TOP, "doc", "talknet.1"), encoding="utf-8") as f:
        man = f.read()
    assert "$Mdocdate" not in man
    assert re.search(r"^\.Dd [A-Z][a-z]+ \d{1,2}, \d{4}$", man, re.M), \
        man[:40]
    r = subprocess.run([TALKNET, "--help"], capture_output=True, timeout=5)
    for opt in re.findall(r"--?[a-zA-Z][-a-z]*", r.stdout.decode()):
        assert "Fl %s" % opt.lstrip("-").replace("-", "\\-", 1) in \
            man.replace("Fl \\-", "Fl "), opt
    for word in ("/quit", "/help", "^R", "Home", "Up", "TALKNET_HISTSIZE",
                 "talknet/history", "XDG_STATE_HOME", "bad port",
                 "a\\e/b", "0600"):
        assert word in man, word
    assert re.search(r"\.Sh EXIT STATUS\n(.|\n)*Fl \\-raw(.|\n)*exits 1",
                     man), "exit status of --raw"


if __name__ == "__main__":
    run([test_readme_terminal_example, test_man_page])
