#!/usr/bin/env python3
"""talknetd without -f (issue 4): it daemonizes, the starting process
exits 0 only once the daemon listens (non-zero if it cannot start), -p
writes a pidfile that keeps a second instance out and goes away on exit,
and SIGTERM leaves nothing behind."""

import os
import signal
import socket
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest import ops  # noqa: E402
import tntest  # noqa: E402

T = tntest.TIMEOUT
SUBREAPER = ops.become_subreaper()


class Daemon:
    """A talknetd started in daemon mode with a pidfile in a temp dir.
    stop() always ends it (and the processes it started), by pid."""

    def __init__(self, *opts, tag="daemon"):
        self.dir = ops.tempdir(tag)
        self.pidfile = os.path.join(self.dir, "tn.pid")
        self.argv = [tntest.TALKNETD, "-p", self.pidfile] + \
            tntest.control_opts(opts) + list(opts)
        self.pid = None
        self.kids = []

    def start(self):
        """Runs the starting process to its end: (status, stdout, stderr)."""
        # TMPDIR puts the hub's run directory where we can check it.
        rc, out, err = ops.run(self.argv, env={"TMPDIR": self.dir})
        probs = tntest.sanitizer_problems(out + err)
        assert not probs, "sanitizer report from the starting process: " \
            "%s" % err
        if os.path.exists(self.pidfile):
            text = open(self.pidfile).read()
            if text.strip().isdigit():
                self.pid = int(text.strip())
        return rc, out, err

    def port(self):
        ports = tntest.wait_until(lambda: tntest.listening_ports(self.pid),
                                  T, what="a listening socket of the daemon")
        assert len(ports) == 1, ports
        return ports.pop()

    def stop(self):
        if self.pid is not None and tntest.pid_alive(self.pid) and \
                tntest.is_talknetd(self.pid):
            ops.kill_tree(self.pid, tntest.tree_pids(self.pid))
        for k in self.kids:
            if tntest.pid_alive(k) and tntest.is_talknetd(k):
                ops.kill_tree(k)


def test_daemon_with_pidfile():
    d = Daemon("-l", "127.0.0.1:0")
    try:
        rc, out, err = d.start()
        assert rc == 0, "starting process: exit %r, stderr %r" % (rc, err)
        assert out == "", "stdout %r" % out
        assert "error" not in err, err
        # The pidfile holds the master's pid, written by libbsd (no
        # trailing newline, or at most one).
        text = open(d.pidfile).read()
        assert text.rstrip("\n").isdigit() and text.count("\n") <= 1, \
            "pidfile holds %r" % text
        pid = int(text)
        assert d.pid == pid
        assert tntest.pid_alive(pid), "no process %d" % pid
        assert tntest.proc_title(pid) == "talknetd: master", \
            tntest.proc_title(pid)
        # Detached: its own session, cwd /, stdio on /dev/null.
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
        fields = st[st.rfind(")") + 2:].split()
        sid = int(fields[3])
        assert sid == pid, "session %d, expected setsid (%d)" % (sid, pid)
        assert os.readlink("/proc/%d/cwd" % pid) == "/", \
            os.readlink("/proc/%d/cwd" % pid)
        fds = tntest.fd_targets(pid)
        for fd in (0, 1, 2):
            assert fds.get(fd) == "/dev/null", \
                "fd %d of the daemon is %r" % (fd, fds.get(fd))
        # Exit 0 meant "listening": the first connection gets in at once.
        port = d.port()
        a, b = tntest.connect_users(port, "daemon1", "daemon2")
        # The pool refills after the two clients took spares: a spare
        # just forked still has the master's title for a moment, so
        # wait until only the hub and the 2 workers are not spares.
        tntest.wait_until(
            lambda: len([k for k in tntest.tree_pids(pid)
                         if not tntest.is_spare(k)]) == 3, tntest.TIMEOUT,
            what=lambda: "the hub and 2 workers, have %r"
            % [(k, tntest.proc_title(k)) for k in tntest.tree_pids(pid)])
        kids = tntest.tree_pids(pid)
        shm = tntest.shm_path(pid)
        assert tntest.shm_mapped(pid), \
            "the daemon does not map its table, or %s is still there" % shm
        rundirs = [n for n in os.listdir(d.dir) if n.startswith("talknetd.")]
        assert len(rundirs) == 1, os.listdir(d.dir)

        # A second instance with the same pidfile is refused.
        rc2, out2, err2 = ops.run(d.argv)
        assert rc2 == 1, "second instance: exit %r, stderr %r" % (rc2, err2)
        assert "already running as pid %d" % pid in err2, err2
        assert open(d.pidfile).read() == text, "the pidfile changed"
        assert tntest.pid_alive(pid)
        a.send(tntest.req("PUBLIC_TEXT", text="still here"))
        b.expect(tntest.public_from("daemon1", "still here"))

        # SIGTERM: exit 0, the clients get EOF, nothing is left.
        os.kill(pid, signal.SIGTERM)
        a.expect_closed(timeout=5)
        b.expect_closed(timeout=5)
        status = ops.reap(pid, 6)
        assert status is not None, "daemon still running 6 s after SIGTERM"
        if SUBREAPER:
            assert status == 0, "daemon exit status %r" % status
        left = [k for k in kids if tntest.pid_alive(k)]
        assert not left, "left behind: %r" % left
        assert not os.path.exists(d.pidfile), "pidfile not removed"
        assert not os.path.exists(shm), "%s not removed" % shm
        rundirs = [n for n in os.listdir(d.dir) if n.startswith("talknetd.")]
        assert not rundirs, "run directory left: %r" % rundirs
    finally:
        d.stop()


def test_second_instance_pidfile_from_config_file():
    """The pidfile key of the config file works like -p."""
    d = Daemon("-l", "127.0.0.1:0")
    conf = os.path.join(d.dir, "talknetd.conf")
    ops.write_file(conf, "pidfile = %s\nlisten = 127.0.0.1:0\n"
                   % d.pidfile)
    d.argv = [tntest.TALKNETD, "-c", conf] + tntest.control_opts([])
    try:
        rc, out, err = d.start()
        assert rc == 0, "exit %r, stderr %r" % (rc, err)
        assert d.pid and tntest.pid_alive(d.pid)
        rc2, out2, err2 = ops.run(d.argv + ["-f"])
        assert rc2 == 1, "second instance (-f): exit %r, stderr %r" \
            % (rc2, err2)
        assert "already running as pid %d" % d.pid in err2, err2
        tntest.Client(d.port()).identify("conf")
        os.kill(d.pid, signal.SIGTERM)
        assert ops.reap(d.pid, 6) is not None
        assert not os.path.exists(d.pidfile)
    finally:
        d.stop()


def test_cannot_bind_exits_nonzero():
    """The daemon cannot bind (port in use): the starting process exits
    non-zero, with the reason on its stderr, and no daemon stays."""
    hold = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    d = None
    try:
        hold.bind(("127.0.0.1", 0))
        hold.listen(1)
        port = hold.getsockname()[1]
        before = set(tntest.all_pids())
        d = Daemon("-l", "127.0.0.1:%d" % port)
        rc, out, err = d.start()
        assert rc != 0, "starting process exited 0 though the port was " \
            "taken; stderr %r" % err
        assert rc == 1, "exit %r (want 1)" % rc
        assert "Address already in use" in err, err
        # Other tests (make -j, other users of the machine) start their
        # own talknetd meanwhile: as subreaper, a daemon that detached
        # from the starting process is still ours to find.
        mine = set(tntest.tree_pids(os.getpid())) if SUBREAPER \
            else set(tntest.all_pids())
        new = [p for p in mine - before
               if tntest.pid_alive(p) and tntest.is_talknetd(p)]
        d.kids = new
        assert not new, "talknetd processes left: %r" % new
    finally:
        hold.close()
        if d is not None:
            d.stop()


def test_bad_config_fails_before_detaching():
    """Configuration errors in daemon mode reach the starting process's
    stderr: a bad option exits 64, a bad file 1 (naming file and line)."""
    d = Daemon("--max-line", "1")
    try:
        rc, out, err = d.start()
        assert rc == 64, "exit %r, stderr %r" % (rc, err)
        assert "--max-line" in err, err
        conf = os.path.join(d.dir, "bad.conf")
        ops.write_file(conf, "listen = 127.0.0.1:0\nmax-lines = 9\n")
        d.argv = [tntest.TALKNETD, "-c", conf] + tntest.control_opts([]) + tntest.control_opts([])
        rc, out, err = d.start()
        assert rc == 1, "exit %r, stderr %r" % (rc, err)
        assert err == "talknetd: %s:2: max-lines: unknown key\n" % conf, err
        assert not os.path.exists(d.pidfile)
    finally:
        d.stop()


if __name__ == "__main__":
    tntest.main(globals())
