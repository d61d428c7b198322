#!/usr/bin/env python3
"""talknetd -u USER (issue 4): the hub and every worker run as USER with
only USER's group and no capabilities, the master stays root, chat works;
workers keep only the fds they need and map the table read-only.  Needs
root and a 'nobody' user (skips otherwise), but for the check that -u
fails closed without root, which runs as any user."""

import os
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest import ops  # noqa: E402
import tntest  # noqa: E402
from tntest import req  # noqa: E402


def _ids(pid):
    st = tntest.proc_status(pid)
    assert st is not None, "process %d is gone" % pid
    return ([int(x) for x in st["Uid"].split()],
            [int(x) for x in st["Gid"].split()],
            [int(x) for x in st["Groups"].split()],
            int(st["CapEff"], 16), int(st["CapPrm"], 16))


def _check_dropped(pid, uid, gid, what):
    uids, gids, groups, capeff, capprm = _ids(pid)
    assert uids == [uid] * 4, "%s %d: Uid %r, expected %d everywhere" \
        % (what, pid, uids, uid)
    assert gids == [gid] * 4, "%s %d: Gid %r, expected %d everywhere" \
        % (what, pid, gids, gid)
    assert groups == [gid], "%s %d: Groups %r, expected only %d" \
        % (what, pid, groups, gid)
    assert capeff == 0 and capprm == 0, \
        "%s %d keeps capabilities: CapEff %x CapPrm %x" \
        % (what, pid, capeff, capprm)


def test_hub_and_workers_run_as_nobody():
    uid, gid = ops.nobody_ids()
    s = tntest.Server("-u", "nobody")
    a, b = tntest.connect_users(s, "anna", "ben")
    unident = tntest.Client(s)
    # Chat works across processes that run as nobody.
    a.send(req("TEXT", username="ben", text="hi ben"))
    b.expect(tntest.text_from("anna", "hi ben"))
    tntest.make_room(a, "den", members=[b])
    b.send(req("ROOM_TEXT", roomname="den", text="in the den"))
    a.expect(tntest.room_text_from("den", "ben", "in the den"))
    assert a.users() == {"anna": "ACTIVE", "ben": "ACTIVE"}

    hub = s.hub_pid()
    workers = [s.worker_pid(c) for c in (a, b, unident)]
    _check_dropped(hub, uid, gid, "hub")
    for w in workers:
        _check_dropped(w, uid, gid, "worker")
    muids, mgids, _, _, _ = _ids(s.pid)
    assert muids == [0] * 4, "master Uid %r, expected root" % muids
    assert mgids[0] == 0, "master Gid %r" % mgids
    assert "running as root" not in s.log_text(), s.log_text()
    # A worker forked later runs as nobody too.
    c = tntest.Client(s)
    c.identify("cleo")
    _check_dropped(s.worker_pid(c), uid, gid, "late worker")
    assert s.terminate() == 0


def test_worker_fds_and_read_only_table():
    """A worker keeps stdio, its client socket, its hub channel, the
    socket on which it tells the master its client is closed, the
    two ends of its send pipe and its epoll set, and nothing else; its
    mapping of the table is read-only."""
    ops.nobody_ids()
    s = tntest.Server("-u", "nobody")
    a = tntest.Client(s)
    a.identify("fds")
    w = s.worker_pid(a)
    fds = tntest.fd_targets(w)
    extra = {fd: t for fd, t in fds.items() if fd > 2}
    socks = [t for t in extra.values() if t.startswith("socket:")]
    pipes = [t for t in extra.values() if t.startswith("pipe:")]
    polls = [t for t in extra.values() if t == "anon_inode:[eventpoll]"]
    # The worker sends to its client through the pipe, so the kernel
    # keeps no send page in the process (src/daemon/worker_out.c, worker_pipe_open);
    # it waits in an epoll set made once (src/daemon/worker_wait.c).
    assert len(extra) == 6 and len(socks) == 3 and len(pipes) == 2 \
        and pipes[0] == pipes[1] and len(polls) == 1, \
        "worker %d fds beyond stdio: %r (expected the client socket, " \
        "the hub channel, the release socket, both ends of one " \
        "pipe and one epoll set)" % (w, extra)
    shm = tntest.shm_path(s.pid)
    with open("/proc/%d/maps" % w) as f:
        maps = [line.split() for line in f if shm in line]
    assert maps, "worker %d has no mapping of %s" % (w, shm)
    for m in maps:
        assert "w" not in m[1], "worker maps %s writable: %r" % (shm, m)
    # And the hub, dropped to nobody, can still write the table: the
    # worker reads the users from it.
    assert a.users() == {"fds": "ACTIVE"}


def test_root_without_user_warns():
    """Running as root without -u logs a warning."""
    ops.need_root()
    s = tntest.Server()
    s.wait_log(r"warning: .*running as root")


def test_user_option_needs_root():
    """-u USER when not started as root fails closed, exit 1 (run as
    nobody from here when the tests run as root, as they are otherwise)."""
    if os.geteuid() == 0:
        uid, gid = ops.nobody_ids()

        def as_nobody():
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
    else:
        as_nobody = None
    rc, out, err = ops.run([tntest.TALKNETD, "-V"], preexec_fn=as_nobody)
    if rc != 0:
        raise tntest.Skip("nobody cannot run %s" % tntest.TALKNETD)
    d = ops.tempdir("notroot")
    os.chmod(d, 0o777)
    rc, out, err = ops.run([tntest.TALKNETD, "-f", "-u", "nobody", "-l",
                            "127.0.0.1:0"], preexec_fn=as_nobody,
                              env={"TMPDIR": d})
    assert rc == 1, "exit %r, stderr %r" % (rc, err)
    assert "needs talknetd to start as root" in err, err
    assert not tntest.sanitizer_problems(err), err
    assert os.listdir(d) == [], "left behind: %r" % os.listdir(d)


if __name__ == "__main__":
    tntest.main(globals())
