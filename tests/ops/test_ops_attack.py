#!/usr/bin/env python3
"""Attacks on what issue 16 added for admins (logs, signals, start-up):
the stale clean-up at start, signal storms, peer data in log lines and
the session accounting.  Each test here failed before the fix named in
its comment."""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import opslib  # noqa: E402
from opslib import tnlib  # noqa: E402

T = opslib.TIMEOUT


def _rundirs(d):
    return sorted(n for n in os.listdir(d) if n.startswith("talknetd."))


class NamedServer(opslib.EnvServer):
    """talknetd started through a link of another name (a packager's
    "chatd", or exec -a): its titles read "chatd: master"."""

    def __init__(self, link, *opts, **kw):
        self.link = link
        super().__init__(*opts, **kw)

    def argv(self):
        a = super().argv()
        a[0] = self.link
        return a


# Failed before the run directory was locked: the start-up clean-up took
# a run directory for stale when its pid's command line did not say
# "talknetd", so a second daemon removed a live one's hub socket, and the
# first daemon accepted nobody from then on.
def test_live_daemon_under_another_name_keeps_its_run_directory():
    d = opslib.tempdir("name")
    link = os.path.join(d, "chatd")
    os.symlink(opslib.TALKNETD, link)
    a = NamedServer(link, env={"TMPDIR": d})
    a.wait_log(r"hub started")
    mine = _rundirs(d)
    assert len(mine) == 1, os.listdir(d)
    b = opslib.EnvServer(env={"TMPDIR": d})
    b.wait_log(r"hub started")
    assert mine[0] in _rundirs(d), "a live daemon's run directory was " \
        "removed: %s" % b.log_text()
    assert "removed" not in b.log_text(), b.log_text()
    # Still served: a new worker reaches the hub through its socket.
    c = tnlib.identify_new(a, "still")
    assert c.local_port
    # And its own exit still removes it.
    a.stop()
    assert mine[0] not in _rundirs(d)


if __name__ == "__main__":
    opslib.main(globals())
