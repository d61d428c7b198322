#!/usr/bin/env python3
"""Attacks on the pool of spare workers (issue 20): a compromised
worker that forges a "client closed" report for an idle spare, spares
that take the master's last fds, a spare stopped while it waits, reload
storms while clients connect, SIGTERM in the middle of a burst,
connections gone before their hand-off, TLS and plain kinds, fork
failures, bounds moved by reload, a restart on the same port, sockets
a child must not share with the master, --max-spare 1024, many
addresses against --max-clients-per-ip."""

import ctypes
import os
import shutil
import signal
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True   # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE + "/../lib")
sys.path.insert(0, HERE + "/../tls")
sys.path.insert(0, HERE)
from tntest import ops  # noqa: E402
import tntest  # noqa: E402
from tntest import wait_until  # noqa: E402
import tlslib  # noqa: E402
from test_spare_pool import TALKNETCTL, spares, stats  # noqa: E402

T = tntest.TIMEOUT
WORKER_RELEASE_FD = 4            # src/daemon/worker.h
SYS_PIDFD_GETFD = 438            # the same number on every Linux arch


def identified(s, name):
    """A client of s, identified as name."""
    c = tntest.Client(s)
    c.identify(name)
    return c


def steal_fd(pid, fd):
    """A copy of fd of process pid (pidfd_getfd): what a compromised
    process of the daemon's uid, with the rights of root, could do."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        got = libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
        if got < 0:
            raise tntest.Skip("pidfd_getfd: %s" %
                              os.strerror(ctypes.get_errno()))
        return got
    finally:
        os.close(pidfd)


def test_a_forged_release_for_an_idle_spare_changes_nothing():
    """A process with CAP_SYS_ADMIN on the release socket (a worker
    without -u had it until workers dropped every capability; here the
    test process sends, through a copy of a worker's release socket)
    can put any pid in the credentials of a "client closed" datagram.
    Claiming an idle spare's pid must not count as a client leaving: the spare was
    never counted, so the master's client count would wrap and refuse
    everyone from then on, and the spare would be killed as lingering."""
    ops.need_root("a forged pid in SCM_CREDENTIALS needs CAP_SYS_ADMIN")
    with tntest.Server("--min-spare", "2", "--max-spare", "2",
                       "--max-clients", "4") as s:
        a = identified(s, "anna")
        victims = spares(s, 2)
        fd = steal_fd(s.worker_pid(a), WORKER_RELEASE_FD)
        with socket.socket(fileno=fd) as rel:
            for v in victims:
                cred = struct.pack("iII", v, 0, 0)
                rel.sendmsg([b"forged"], [(socket.SOL_SOCKET,
                                           socket.SCM_CREDENTIALS, cred)])
        # Past the master's linger (500 ms): a spare taken for a released
        # worker would be killed by then.
        wait_until(lambda: stats(s)["clients"] == 1, T,
                   what="one client counted")
        time.sleep(0.8)
        assert all(tntest.pid_alive(v) for v in victims), victims
        others = [identified(s, "u%d" % i) for i in range(3)]
        st = stats(s)
        assert st["clients"] == 4, st
        assert st["spares_lost"] == 0, st
        for c in others + [a]:
            c.close()
        wait_until(lambda: stats(s)["clients"] == 0, T,
                   what="every client gone")
        identified(s, "again")


class LimitedServer(tntest.Server):
    """A talknetd whose open files limit cannot be raised."""

    def __init__(self, nofile, *opts):
        self.nofile = nofile
        super().__init__(*opts)

    def argv(self):
        return ["prlimit", "--nofile=%d:%d" % (self.nofile, self.nofile),
                "--"] + super().argv()


def test_spares_leave_the_master_fds_to_accept_with():
    """Each idle spare holds one of the master's fds.  Under a low hard
    limit (the master could not raise it) a big pool must stop short of
    the limit: with every fd taken by spares, accept fails with EMFILE
    and every client is refused while idle spares wait for one.  Nor
    may the master spin on the fork it cannot make."""
    if shutil.which("prlimit") is None:
        raise tntest.Skip("prlimit not found (util-linux)")
    with LimitedServer(48, "--min-spare", "60", "--max-spare", "60") as s:
        # The pool stops growing: at the limit, or short of it.
        last = [None]

        def still():
            n = len(s.spares())
            same = n == last[0]
            last[0] = n
            return same and n > 0
        wait_until(lambda: (time.sleep(0.3), still())[1], T,
                   what="the pool to stop growing")
        assert tntest.nfds(s.pid) < 48, tntest.nfds(s.pid)
        s.wait_log(r"warning: spare worker: \d+ idle, no more: the open "
                   r"files limit 48 must leave the master 16")
        t0 = tntest.cpu_ticks(s.pid)
        time.sleep(1.0)
        hz = os.sysconf("SC_CLK_TCK")
        assert tntest.cpu_ticks(s.pid) - t0 < hz // 4, \
            "the master spun: %d ticks in 1 s" % (tntest.cpu_ticks(s.pid) - t0)
        # Two talknetctl connections held open, then clients.
        ctl = []
        for _ in range(2):
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            u.connect(s.control)
            ctl.append(u)
        clients = [identified(s, "c%d" % i) for i in range(5)]
        assert "out of file descriptors" not in s.log_text(), s.log_text()
        for c in clients + ctl:
            c.close()
        assert s.log_text().count("idle, no more") == 1, s.log_text()


def test_a_stopped_spare_stalls_only_the_client_it_was_given():
    """SIGSTOP every idle spare: the connections handed to them wait
    (as with a stopped worker), the master does not: the pool refills
    and the next clients are served; SIGCONT and the waiting ones are
    served too."""
    with tntest.Server("--min-spare", "2", "--max-spare", "2") as s:
        stopped = spares(s, 2)
        for p in stopped:
            os.kill(p, signal.SIGSTOP)
        try:
            waiting = [tntest.Client(s) for _ in stopped]
            wait_until(lambda: len(set(s.spares()) - set(stopped)) == 2, T,
                       what="two new spares")
            fresh = identified(s, "fresh")
        finally:
            for p in stopped:
                os.kill(p, signal.SIGCONT)
        for i, c in enumerate(waiting):
            c.identify("late%d" % i)
        fresh.close()


def test_a_spare_killer_does_not_set_the_fork_pace():
    """A same-uid process that kills every idle spare as soon as it
    appears: after each loss the master waits a second before the next
    fork (clients meanwhile get a worker forked at accept), so the
    killer does not make it fork in a loop."""
    with tntest.Server("--min-spare", "2", "--max-spare", "2") as s:
        spares(s, 2)
        forked0 = stats(s)["spares_forked"]
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3:
            for p in s.spares():
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)
        forked = stats(s)["spares_forked"] - forked0
        # About one a second, two spares wanted: a loop would be hundreds.
        assert forked <= 10, "%d spares forked in 3 s of killing" % forked
        c = identified(s, "still")
        c.close()


def test_a_reload_storm_while_clients_connect():
    """150 SIGHUPs and 10 talknetctl reloads while 40 clients connect
    from another thread: every client is served, the retired spares
    exit quietly, and after it the pool, the master's fds and its
    children are as before."""
    with tntest.Server("--min-spare", "3", "--max-spare", "6") as s:
        spares(s, 3)
        fds0 = s.master_nfds_settled()
        clients, errors = [], []

        def connect():
            try:
                for i in range(40):
                    clients.append(identified(s, "r%d" % i))
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(e)
        th = threading.Thread(target=connect)
        th.start()
        for i in range(150):
            os.kill(s.pid, signal.SIGHUP)
            time.sleep(0.002)
            if i % 15 == 0:
                rc, _, err = ops.run([TALKNETCTL, "-s", s.control,
                                      "reload"], timeout=T)
                assert rc == 0, err
        th.join(4 * T)
        assert not errors and len(clients) == 40, (errors, len(clients))
        assert s.log_text().count("reloaded") >= 10
        for c in clients:
            c.close()
        wait_until(lambda: len(s.children()) == 1, T,
                   what="only the hub besides the spares (%r)"
                   % s.children())
        spares(s, 3)
        wait_until(lambda: s.master_nfds() == fds0, T,
                   what="the master's fds back to %d (%d)"
                   % (fds0, s.master_nfds()))
        assert "before it had a client" not in s.log_text()
        assert stats(s)["spares_lost"] == 0
        identified(s, "after")


def test_sigterm_in_a_burst_leaves_no_process():
    """SIGTERM while 40 connections arrive and the pool grows: the
    master exits 0 in time and no worker or spare is left."""
    s = tntest.Server("--min-spare", "2", "--max-spare", "16")
    spares(s, 2)
    socks = [socket.create_connection(("127.0.0.1", s.port), timeout=T)
             for _ in range(40)]
    pids = s.descendants()
    assert s.terminate(10) == 0
    wait_until(lambda: not any(tntest.pid_alive(p) for p in pids), T,
               what="no process of the daemon left")
    for so in socks:
        so.close()


def test_connections_gone_before_their_hand_off_leak_nothing():
    """60 connections reset (SO_LINGER 0) or half-closed right after
    connect, while two spares are idle: the master hands each on, or
    forks for it; all of them end, the per-address count comes back (a
    limit of 2 per address still lets 2 in), the master's fds too."""
    with tntest.Server("--min-spare", "2", "--max-spare", "4",
                       "--max-clients-per-ip", "2") as s:
        spares(s, 2)
        fds0 = s.master_nfds_settled()
        for i in range(60):
            so = socket.create_connection(("127.0.0.1", s.port), timeout=T)
            if i % 2:
                so.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                              struct.pack("ii", 1, 0))
            else:
                so.shutdown(socket.SHUT_WR)
            so.close()
        wait_until(lambda: len(s.children()) == 1, T,
                   what="every worker gone (%r)" % s.children())
        wait_until(lambda: stats(s)["clients"] == 0, T, what="no client")
        a, b = identified(s, "a"), identified(s, "b")
        wait_until(lambda: s.master_nfds() == fds0, T,
                   what="the master's fds back (%d, were %d)"
                   % (s.master_nfds(), fds0))
        a.close()
        b.close()


def test_tls_and_plain_spares_serve_only_their_own_port():
    """Five clients on the tls:// port with two TLS spares idle: each
    is served (the misses fork), no plain spare is taken for one; then
    five on the plain port, and no TLS spare is taken."""
    pki = tlslib.pki()
    with tlslib.tls_server(pki, "--min-spare", "2", "--max-spare",
                           "2") as s:
        def kind(title):
            return [p for p in s.spares()
                    if tntest.proc_title(p) == "talknetd: " + title]
        wait_until(lambda: len(kind("worker (spare)")) == 2 and
                   len(kind("worker (spare, tls)")) == 2, T,
                   what="two spares of each kind (%r)" % s.spares())
        plain0 = set(kind("worker (spare)"))
        tls0 = set(kind("worker (spare, tls)"))
        t = [tlslib.TlsClient(s, pki) for _ in range(5)]
        for i, c in enumerate(t):
            c.identify("t%d" % i)
        assert plain0 <= set(kind("worker (spare)")), (plain0, s.spares())
        p = [tntest.Client(s, port=tlslib.plain_port(s)) for _ in range(5)]
        for i, c in enumerate(p):
            c.identify("p%d" % i)
        wait_until(lambda: len(kind("worker (spare, tls)")) == 2, T,
                   what="two TLS spares")
        for c in t:
            w = s.worker_pid(c)
            assert w not in plain0, "TLS client %d went to plain spare %d" \
                % (c.local_port, w)
        for c in p:
            assert s.worker_pid(c) not in tls0
        for c in t + p:
            c.close()


def _as(uid, gid):
    """A command prefix that runs what follows as uid:gid."""
    return ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid,
            "--clear-groups", "--"]


class NobodyServer(tntest.Server):
    """A talknetd whose master itself runs as nobody (RLIMIT_NPROC does
    not bind root)."""

    def __init__(self, uid, gid, *opts):
        self.uid, self.gid = uid, gid
        super().__init__(*opts)

    def argv(self):
        return _as(self.uid, self.gid) + super().argv()


def test_fork_failures_while_the_pool_refills_do_not_spin():
    """RLIMIT_NPROC leaves no room for a process: the spares used or
    lost cannot be replaced.  The master retries once a second (no
    spin, a few log lines), the spares left still serve, and once the
    limit is back the pool refills."""
    uid, gid = ops.nobody_ids()
    for tool in ("setpriv", "prlimit"):
        if shutil.which(tool) is None:
            raise tntest.Skip("%s not found (util-linux)" % tool)
    if ops.run(_as(uid, gid) + ["test", "-x", tntest.TALKNETD])[0] != 0:
        raise tntest.Skip("nobody cannot run %s" % tntest.TALKNETD)
    with NobodyServer(uid, gid, "--min-spare", "3", "--max-spare",
                      "3") as s:
        spares(s, 3)
        with open("/proc/%d/limits" % s.pid) as f:
            soft = [ln.split()[2] for ln in f
                    if ln.startswith("Max processes")][0]

        def nproc(n):
            st = ops.run(_as(uid, gid) + ["prlimit", "--pid", str(s.pid),
                                          "--nproc=%s:" % n])
            assert st[0] == 0, "prlimit failed: %r" % (st,)
        nproc(1)
        try:
            a = identified(s, "a")
            s.wait_log(r"spare worker: fork: Resource temporarily")
            since = time.monotonic()
            t0 = tntest.cpu_ticks(s.pid)
            time.sleep(1.5)
            hz = os.sysconf("SC_CLK_TCK")
            assert tntest.cpu_ticks(s.pid) - t0 < hz // 4, \
                "the master spun: %d ticks in 1.5 s" % (tntest.cpu_ticks(s.pid) - t0)
            # One a second (MASTER_SPARE_RETRY_MS), the first included.
            most = int(time.monotonic() - since) + 2
            assert s.log_text().count("spare worker: fork") <= most, \
                s.log_text()
            b = identified(s, "b")
        finally:
            nproc(soft)
        spares(s, 3)
        a.close()
        b.close()


def test_reloads_move_the_bounds_up_down_to_zero_and_to_the_ceiling():
    """--min-spare/--max-spare by reload: up, to 0 (no pool: a fork per
    accept, every spare gone), to --max-spare 1024 (the ceiling), down
    again; a client is served at each step and the pool is what the
    step says, no more."""
    conf = os.path.join(ops.tempdir("spareatk"), "t.conf")

    def step(lo, hi):
        with open(conf, "w") as f:
            f.write("min-spare = %d\nmax-spare = %d\n" % (lo, hi))
        rc, out, err = ops.run([TALKNETCTL, "-s", s.control, "reload"],
                               timeout=T)
        assert rc == 0, (out, err)
    with open(conf, "w") as f:
        f.write("min-spare = 2\nmax-spare = 2\n")
    with tntest.Server("-c", conf) as s:
        spares(s, 2)
        for i, (lo, hi, n) in enumerate(((8, 16, 8), (0, 0, 0),
                                         (1, 1024, 1), (3, 3, 3))):
            step(lo, hi)
            got = spares(s, n)
            c = identified(s, "s%d" % i)
            c.close()
            time.sleep(0.2)
            assert len(s.spares()) <= max(n, 1) + 1, (lo, hi, got,
                                                      s.spares())
        spares(s, 3)
        wait_until(lambda: len(s.children()) == 1, T,
                   what="only the hub besides the spares")
        assert stats(s)["spares_lost"] == 0


def test_a_restart_on_the_same_port_finds_it_free():
    """A systemd-style restart: the master killed with SIGKILL (its
    spares die with it), a new one started at once on the same port:
    no spare of the old one holds the listening socket."""
    s = tntest.Server("--min-spare", "4", "--max-spare", "4")
    old = spares(s, 4)
    port = s.port
    os.kill(s.pid, signal.SIGKILL)
    s.terminated = True
    s.proc.wait(T)
    with tntest.Server("--min-spare", "4", "--max-spare", "4",
                       listen=("127.0.0.1:%d" % port,)) as s2:
        identified(s2, "back")
    wait_until(lambda: not any(tntest.pid_alive(p) for p in old), T,
               what="the old spares gone")


def test_no_child_shares_a_socket_with_the_master():
    """What a worker inherits: no hub, worker or spare holds any of the
    master's sockets (another spare's hand-off end would let it send
    that spare a client of its choosing, and keep it from seeing a
    retire), with spares idle, workers forked on misses meanwhile, and
    a hub restarted while they wait."""
    from tntest import procfs
    with tntest.Server("--min-spare", "3", "--max-spare", "3") as s:
        spares(s, 3)
        hub = s.hub_pid()
        os.kill(hub, signal.SIGKILL)
        wait_until(lambda: s.hub_pid() != hub, 5, what="a new hub")

        def seqpacket():
            """Inodes of SOCK_SEQPACKET Unix sockets: the hand-offs."""
            with open("/proc/net/unix") as f:
                next(f)
                return {ln.split()[6] for ln in f
                        if len(ln.split()) >= 7 and ln.split()[4] == "0005"}

        def shared():
            mine = procfs.socket_inodes(s.pid) & seqpacket()
            assert len(mine) >= 3, "the master's hand-off sockets: %r" % mine
            return {p: mine & procfs.socket_inodes(p)
                    for p in s.descendants()
                    if mine & procfs.socket_inodes(p)}
        assert shared() == {}, shared()
        clients = [identified(s, "k%d" % i) for i in range(8)]
        wait_until(lambda: len(s.children()) == 9, T,
                   what="the hub and 8 workers (%r)" % s.children())
        assert shared() == {}, shared()
        # The spares forked before the hub's restart serve with the new hub.
        late = [identified(s, "l%d" % i) for i in range(3)]
        clients[0].send(tntest.req("PUBLIC_TEXT", text="hi"))
        late[-1].expect(tntest.public_from("k0", "hi"))
        for c in clients + late:
            c.close()


def test_a_burst_with_max_spare_1024():
    """--max-spare 1024 from the start: a burst of 150 connections is
    served, the pool grows toward it one miss at a time (never past the
    connections that missed), and the master stays within its fds."""
    with tntest.Server("--min-spare", "1", "--max-spare", "1024") as s:
        spares(s, 1)
        socks = [socket.create_connection(("127.0.0.1", s.port), timeout=T)
                 for _ in range(150)]
        for i, so in enumerate(socks):
            so.sendall(b'{"type":"IDENTIFY","username":"b%d"}\n' % i)
        for i, so in enumerate(socks):
            f = so.makefile("rb")
            assert b'"SUCCESS"' in f.readline(), i
            f.close()
        st = stats(s)
        assert st["clients"] == 150, st
        assert st["spares_idle"] <= st["spares_missed"] + 1, st
        for so in socks:
            so.close()
        wait_until(lambda: len(s.children()) == 1, 2 * T,
                   what="every worker gone")


def test_many_addresses_against_max_clients_per_ip():
    """Clients from 20 loopback addresses, two each under
    --max-clients-per-ip 1: the first of each is handed to a spare or
    a fork, the second refused; once they leave, each address gets its
    place back (the hand-off moved the count with the client)."""
    with tntest.Server("--min-spare", "4", "--max-spare", "8",
                       "--max-clients-per-ip", "1",
                       listen=("0.0.0.0:0",)) as s:
        spares(s, 4)

        def conn(i):
            so = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            so.settimeout(T)
            so.bind(("127.0.0.%d" % (i + 2), 0))
            so.connect(("127.0.0.1", s.port))
            return so

        def served(so, name):
            so.sendall(b'{"type":"IDENTIFY","username":"%s"}\n' % name)
            f = so.makefile("rb")
            line = f.readline()
            f.close()
            return b'"SUCCESS"' in line
        for rnd in range(2):
            first = [conn(i) for i in range(20)]
            second = [conn(i) for i in range(20)]
            for i, so in enumerate(first):
                assert served(so, b"a%d_%d" % (rnd, i)), (rnd, i)
            for i, so in enumerate(second):
                try:
                    assert not served(so, b"b%d_%d" % (rnd, i)), (rnd, i)
                except OSError:
                    pass    # reset: refused all the same
            for so in first + second:
                so.close()
            wait_until(lambda: stats(s)["clients"] == 0, T,
                       what="every client gone")
        assert len(s.spares()) <= 8


if __name__ == "__main__":
    tntest.main(globals())
