#!/usr/bin/env python3
"""Attacks on the talknet client (issue 16): what another user of the
machine can prepare for it.  Each test failed before the fix named in
its comment.  Skipped (77) without libedit where it needs the history."""

import os
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest.talknet import SKIP, Peer, PtyClient, editor, run  # noqa: E402

CTRL_D = "\x04"


# Failed before hist_setup checked the directory: with XDG_STATE_HOME on a
# shared directory (sticky and open to all, as /tmp), another user made
# talknet/ and talknet/history first, open to all, and the client wrote
# its history (private messages) into that user's file.
def test_history_in_a_directory_another_user_prepared(ctx):
    if editor() != "libedit":
        return SKIP
    shared = tempfile.mkdtemp(prefix="talknet-shared-")
    try:
        os.chmod(shared, 0o1777)
        d = os.path.join(shared, "talknet")
        os.mkdir(d)
        hist = os.path.join(d, "history")
        with open(hist, "w"):
            pass
        if os.getuid() == 0:
            os.chown(d, 65534, 65534)
            os.chown(hist, 65534, 65534)
        os.chmod(d, 0o777)
        os.chmod(hist, 0o666)
        a, b = ctx["name"]("vi"), ctx["name"]("pe")
        p = Peer(ctx["port"], b)
        c = PtyClient(ctx["port"], "-n", a,
                      env={"XDG_STATE_HOME": shared})
        try:
            c.wait_for("%s> " % a)
            p.expect({"type": "NEW_USER", "username": a})
            c.keys(">secret words")
            c.keys("\r")
            p.expect({"type": "PUBLIC_TEXT_FROM", "username": a,
                      "text": "secret words"})
            c.keys(CTRL_D)
            assert c.wait() == 0, c.text()
        finally:
            c.close()
            p.close()
        with open(hist, encoding="utf-8", errors="replace") as f:
            got = f.read()
        assert "secret" not in got, "history written to another " \
            "user's file: %r" % got
        assert "no history" in c.text(), c.text()
    finally:
        shutil.rmtree(shared, ignore_errors=True)


if __name__ == "__main__":
    run([test_history_in_a_directory_another_user_prepared])
