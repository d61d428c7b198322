#!/usr/bin/env python3
"""Attacks on the spare's early sandbox (a spare loads its seccomp filter
before it waits, and takes its client inside it; the master sets the
client socket's options).  Every worker, spare-served or forked at
accept, plain or TLS, after a reload or a hub restart, runs filtered;
the filter's new calls are only the hand-off's (getsockopt other than
SO_TYPE and setsockopt still kill); every client socket has
--send-buffer, TCP_NODELAY and O_NONBLOCK; a spare signalled while it
waits goes quietly; a TLS spare serves the certificate of the last
reload and a malformed ClientHello costs no SIGSYS.  Parts that need
root or gdb skip without them."""

import ctypes
import errno
import fcntl
import os
import pwd
import shutil
import signal
import socket
import struct
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE + "/../lib")
sys.path.insert(0, HERE + "/../tls")
sys.path.insert(0, HERE)
from tntest import ops  # noqa: E402
import tntest  # noqa: E402
from tntest import wait_until  # noqa: E402
import tlslib  # noqa: E402
from test_spare_pool import spares  # noqa: E402
from test_spare_attack import steal_fd  # noqa: E402
from test_sandbox import _skip_unless_sandboxed, _status  # noqa: E402
from test_sandbox import UidServer, _free_uid  # noqa: E402

T = tntest.TIMEOUT
CLIENT_FD = 3                    # WORKER_CLIENT_FD, src/daemon/worker.h
SOL_TCP, TCP_NODELAY, TCP_INFO = 6, 1, 11
SOL_SOCKET, SO_TYPE, SO_SNDBUF, SO_PEERCRED = 1, 3, 7, 17


def _filtered(pid, what):
    """Asserts pid shows Seccomp 2 and NoNewPrivs 1 (waits, bounded)."""
    wait_until(lambda: _status(pid, "Seccomp") == "2", T,
               what=lambda: "%s %d to show Seccomp 2 (has %r)"
               % (what, pid, _status(pid, "Seccomp")))
    assert _status(pid, "NoNewPrivs") == "1", "%s %d" % (what, pid)


def _clients(s, pki, tag):
    """A plain and a TLS client of s, identified; their workers."""
    p = tntest.Client(s, port=tlslib.plain_port(s))
    p.identify("p" + tag)
    t = tlslib.TlsClient(s, pki)
    t.identify("t" + tag)
    return [(p, s.worker_pid(p), "plain"), (t, s.worker_pid(t), "tls")]


def _pool(pool):
    return [] if pool else ["--min-spare", "0", "--max-spare", "0"]


def test_every_worker_runs_filtered_in_every_mode():
    """Pool on and off, plain and tls://, and after a reload and a hub
    restart: each client's worker shows Seccomp 2, and each idle spare
    too; with the pool off, no spare exists at all."""
    pki = tlslib.pki()
    for pool in (True, False):
        with tlslib.tls_server(pki, *_pool(pool)) as s:
            _skip_unless_sandboxed(s)
            seen = _clients(s, pki, "a")
            os.kill(s.pid, signal.SIGHUP)
            s.wait_log(r"reload")
            seen += _clients(s, pki, "b")
            hub = s.hub_pid()
            os.kill(hub, signal.SIGKILL)
            wait_until(lambda: s.hub_pid() != hub, T, what="a new hub")
            seen += _clients(s, pki, "c")
            for c, w, kind in seen:
                _filtered(w, "%s worker (pool %s)" % (kind, pool))
            for p in s.spares():
                _filtered(p, "idle spare")
            if not pool:
                assert s.spares() == [], s.spares()
            assert "SIGSYS" not in s.log_text(), s.log_text()[-2000:]


def test_workers_run_filtered_as_another_user():
    """-u nobody: spares and forked workers run as nobody, filtered."""
    if os.geteuid() != 0:
        raise tntest.Skip("needs root for -u")
    nobody = pwd.getpwnam("nobody").pw_uid
    pki = tlslib.pki()
    for pool in (True, False):
        with tlslib.tls_server(pki, "-u", "nobody", *_pool(pool)) as s:
            _skip_unless_sandboxed(s)
            procs = [w for c, w, kind in _clients(s, pki, "u")]
            procs += s.spares()
            for p in procs:
                _filtered(p, "worker")
                uids = _status(p, "Uid").split()
                assert uids == [str(nobody)] * 4, (p, uids)


def test_root_workers_hold_no_capability():
    """Run as root without -u, a worker is root: with CAP_SYS_ADMIN it
    could put another worker's pid in the SCM_CREDENTIALS of a release
    datagram, and the master would free that client's places and
    SIGKILL it as lingering.  Every worker and spare, plain and TLS,
    pool on and off, holds no capability (CapPrm, CapEff 0)."""
    if os.geteuid() != 0:
        raise tntest.Skip("needs root")
    pki = tlslib.pki()
    for pool in (True, False):
        with tlslib.tls_server(pki, *_pool(pool)) as s:
            _skip_unless_sandboxed(s)
            procs = [w for c, w, kind in _clients(s, pki, "r")]
            procs += s.spares()
            for p in procs:
                _filtered(p, "worker")
                for key in ("CapPrm", "CapEff", "CapInh", "CapAmb"):
                    assert int(_status(p, key), 16) == 0, \
                        "worker %d (pool %s): %s %s" % (p, pool, key,
                                                        _status(p, key))


def test_a_root_worker_cannot_forge_another_workers_release():
    """gdb makes mallory's worker (root, no -u) send a release datagram
    whose SCM_CREDENTIALS name anna's worker: the kernel refuses the pid
    (no CAP_SYS_ADMIN), so the master neither frees anna's places nor
    kills her worker as lingering."""
    s = tntest.Server()
    with s:
        _skip_unless_sandboxed(s)
        if os.geteuid() != 0:
            raise tntest.Skip("needs root: the workers are root then")
        a, m = tntest.connect_users(s, "anna", "mallory")
        anna, victim = s.worker_pid(a), s.worker_pid(m)
        # iovec at $a, msghdr at $a+64, cmsghdr+ucred at $a+128, data
        # at $a+200; sendmsg is 46 on x86_64, the release fd is 4.
        cmds = ["set $a = (long)malloc(512)",
                "set {long}($a) = $a + 200", "set {long}($a + 8) = 6",
                "set {long}($a + 64) = 0", "set {long}($a + 72) = 0",
                "set {long}($a + 80) = $a", "set {long}($a + 88) = 1",
                "set {long}($a + 96) = $a + 128",
                "set {long}($a + 104) = 32", "set {long}($a + 112) = 0",
                "set {long}($a + 128) = 28",
                "set {int}($a + 136) = %d" % SOL_SOCKET,
                "set {int}($a + 140) = %d" % socket.SCM_CREDENTIALS,
                "set {int}($a + 144) = %d" % anna,
                "set {int}($a + 148) = 0", "set {int}($a + 152) = 0"]
        cmds += ["set {char}($a + %d) = %d" % (200 + i, b)
                 for i, b in enumerate(b"forged")]
        cmds += ["print (long)syscall(46, 4, $a + 64, 0)",
                 "print *(int *)__errno_location()"]
        out = _gdb_raw(victim, cmds)
        assert "$1 = -1" in out and "$2 = %d" % errno.EPERM in out, \
            "the forged release was sent: %r" % out[-600:]
        assert "bad session report" not in s.log_text(), s.log_text()
        m.send(tntest.req("TEXT", username="anna", text="still here"))
        a.expect(tntest.text_from("mallory", "still here"))
        assert tntest.pid_alive(anna)


def _sockopts(pid):
    """(SO_SNDBUF, TCP_NODELAY, O_NONBLOCK) of pid's client socket, read
    through a copy of its fd (the socket and its file are shared)."""
    fd = steal_fd(pid, CLIENT_FD)
    try:
        with socket.socket(fileno=os.dup(fd)) as sk:
            return (sk.getsockopt(SOL_SOCKET, SO_SNDBUF),
                    sk.getsockopt(SOL_TCP, TCP_NODELAY),
                    bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK))
    finally:
        os.close(fd)


def test_send_buffer_and_nodelay_on_every_client():
    """--send-buffer, TCP_NODELAY and O_NONBLOCK on every client socket:
    spare-served and forked at accept, plain and TLS; a reload that
    changes --send-buffer applies it to the clients after it (spares
    forked with the old value are retired)."""
    if os.geteuid() != 0:
        raise tntest.Skip("needs root to copy a worker's fd")
    pki = tlslib.pki()
    conf = os.path.join(ops.tempdir("sbxatk"), "t.conf")
    for pool in (True, False):
        ops.write_file(conf, "send-buffer = 24576\n")
        with tlslib.tls_server(pki, "-c", conf, *_pool(pool)) as s:
            for size, tag in ((24576, "a"), (49152, "b")):
                if tag == "b":
                    ops.write_file(conf, "send-buffer = 49152\n")
                    os.kill(s.pid, signal.SIGHUP)
                    s.wait_log(r"reload")
                for c, w, kind in _clients(s, pki, tag):
                    got = _sockopts(w)
                    # The kernel doubles what is set (socket(7)).
                    assert got == (2 * size, 1, True), \
                        "%s client, pool %s, send-buffer %d: (SO_SNDBUF, " \
                        "TCP_NODELAY, O_NONBLOCK) = %r" % (kind, pool, size,
                                                           got)


def _gdb_calls(pid, *calls):
    """Has gdb make pid call each syscall(...) in turn; gdb's output."""
    gdb = shutil.which("gdb")
    if gdb is None:
        raise tntest.Skip("gdb is not installed")
    if os.geteuid() != 0:
        raise tntest.Skip("needs root to ptrace a non-dumpable worker")
    if os.uname().machine != "x86_64":
        raise tntest.Skip("system-call numbers below are x86_64's")
    argv = [gdb, "-nx", "-batch", "-p", str(pid)]
    for c in calls:
        argv += ["-ex", "print (long)syscall(%s)" % c]
    rc, out, err = ops.run(argv, timeout=120)
    return out + err


def _sigsys(s, pid, out):
    m = s.wait_log(r"(?:worker|spare worker) %d .*killed by SIG(\w+)" % pid,
                   timeout=10)
    assert m.group(1) == "SYS", "%d died by SIG%s (gdb: %r)" \
        % (pid, m.group(1), out[-600:])
    wait_until(lambda: not tntest.pid_alive(pid), T, what="%d gone" % pid)


def test_forbidden_socket_calls_kill_spares_and_workers():
    """Inside the filter, a spare may getsockopt(SOL_SOCKET, SO_TYPE)
    (its hand-off check; here EFAULT) and live on, but getsockopt of
    another level or option and setsockopt kill it (SIGSYS), idle or
    serving, and so does SO_TYPE's number at another level; the pool
    refills and the others chat on."""
    # x86_64: getsockopt 55, setsockopt 54.
    s = tntest.Server("--min-spare", "3", "--max-spare", "3")
    with s:
        _skip_unless_sandboxed(s)
        a = tntest.Client(s)
        a.identify("anna")
        b = tntest.Client(s)
        b.identify("ben")
        idle = spares(s, 3)
        out = _gdb_calls(idle[0], "55, %d, %d, %d, 0, 0" % (CLIENT_FD,
                                                            SOL_SOCKET,
                                                            SO_TYPE))
        assert tntest.pid_alive(idle[0]), "getsockopt(SO_TYPE) killed " \
            "spare %d: %r" % (idle[0], out[-600:])
        assert "$1 = -1" in out, out[-600:]
        out = _gdb_calls(idle[0], "55, %d, %d, %d, 0, 0" % (CLIENT_FD,
                                                            SOL_TCP,
                                                            TCP_INFO))
        _sigsys(s, idle[0], out)
        out = _gdb_calls(idle[1], "54, %d, %d, %d, 0, 0" % (CLIENT_FD,
                                                            SOL_SOCKET,
                                                            SO_SNDBUF))
        _sigsys(s, idle[1], out)
        # SO_TYPE's number at another level (TCP_CORK): both are checked.
        out = _gdb_calls(idle[2], "55, %d, %d, %d, 0, 0" % (CLIENT_FD,
                                                            SOL_TCP,
                                                            SO_TYPE))
        _sigsys(s, idle[2], out)
        victim = s.worker_pid(b)
        out = _gdb_calls(victim, "55, %d, %d, %d, 0, 0" % (CLIENT_FD,
                                                           SOL_SOCKET,
                                                           SO_PEERCRED))
        _sigsys(s, victim, out)
        got = a.drain(quiet=0.5)
        assert tntest.disconnected("ben") in got, got
        wait_until(lambda: len(s.spares()) == 3, T * 2,
                   what=lambda: "the pool refilled (%r)" % s.spares())
        c = tntest.Client(s)
        c.identify("ben")
        a.expect(tntest.new_user("ben"))
        assert a.users() == {"anna": "ACTIVE", "ben": "ACTIVE"}


def test_a_spare_signalled_while_it_waits_goes_quietly():
    """SIGTERM to an idle spare, and to a stopped one then let go: each
    exits 0 (no crash, no SIGSYS), the pool forks others, which serve."""
    with tntest.Server("--min-spare", "2", "--max-spare", "2") as s:
        _skip_unless_sandboxed(s)
        idle = spares(s, 2)
        os.kill(idle[0], signal.SIGTERM)
        os.kill(idle[1], signal.SIGSTOP)
        os.kill(idle[1], signal.SIGTERM)
        os.kill(idle[1], signal.SIGCONT)
        for p in idle:
            m = s.wait_log(r"spare worker %d (.*) before it had a client"
                           % p, timeout=10)
            assert m.group(1) == "exited with status 0", m.group(0)
        wait_until(lambda: len(s.spares()) == 2 and
                   not set(s.spares()) & set(idle), T * 2,
                   what=lambda: "two new spares (%r)" % s.spares())
        c = tntest.Client(s)
        c.identify("after")
        assert c.users() == {"after": "ACTIVE"}
        assert "SIG" not in s.log_text(), s.log_text()[-2000:]


def _steal_as(uid, pid):
    """In a child of ours become uid: pidfd_getfd of pid's fd 3 (a spare's
    hand-off socket, where its client will come), ptrace(PTRACE_ATTACH)
    and a read of /proc/pid/mem; the errno names (or "ok")."""
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            libc = ctypes.CDLL(None, use_errno=True)
            libc.ptrace.restype = ctypes.c_long
            libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long,
                                    ctypes.c_void_p, ctypes.c_void_p]
            out = []
            try:
                pidfd = os.pidfd_open(pid)
                got = libc.syscall(438, pidfd, CLIENT_FD, 0)
                out.append("ok" if got >= 0 else
                           errno.errorcode[ctypes.get_errno()])
            except OSError as e:
                out.append(errno.errorcode[e.errno])
            if libc.ptrace(16, pid, None, None) == 0:    # PTRACE_ATTACH
                out.append("ok")
            else:
                out.append(errno.errorcode[ctypes.get_errno()])
            try:
                with open("/proc/%d/mem" % pid, "rb") as f:
                    f.read(1)
                out.append("ok")
            except OSError as e:
                out.append(errno.errorcode[e.errno])
            os.write(w, " ".join(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read().decode()
    os.waitpid(child, 0)
    return data.split()


def test_a_same_uid_process_cannot_steal_a_spares_hand_off():
    """The daemon run as a uid of its own (no -u): another process of
    that uid can neither copy an idle spare's hand-off socket (and so
    take the next client's fd before it), nor ptrace it, nor read its
    memory: the spare is not dumpable, as the master."""
    if os.geteuid() != 0:
        raise tntest.Skip("needs root to run as another uid")
    uid = _free_uid()
    d = ops.tempdir("sbxuid")
    os.chmod(d, 0o777)
    s = UidServer(uid, uid, d)
    with s:
        idle = wait_until(s.spares, T, what="idle spares")
        for p in idle:
            assert os.stat("/proc/%d" % p).st_uid == uid
            got = _steal_as(uid, p)
            assert len(got) == 3 and "ok" not in got, \
                "spare %d: (pidfd_getfd, ptrace, mem) = %r" % (p, got)
            assert tntest.pid_alive(p)
        c = tntest.Client(s)
        c.identify("whole")


def test_tls_and_plain_spares_die_with_a_killed_master():
    """SIGKILL to the master while plain and TLS spares wait in ppoll
    (SIGTERM let in): PR_SET_PDEATHSIG's SIGTERM ends every one, with
    a served client's worker too."""
    pki = tlslib.pki()
    s = tlslib.tls_server(pki, "--min-spare", "2", "--max-spare", "2")
    pids = wait_until(lambda: (lambda p: p if len(p) == 4 else None)(
        s.spares()), T, what="four spares")
    c = tlslib.TlsClient(s, pki)
    c.identify("held")
    pids.append(s.worker_pid(c))
    os.kill(s.pid, signal.SIGKILL)
    s.terminated = True
    s.proc.wait(T)
    wait_until(lambda: not any(tntest.pid_alive(p) for p in pids), T,
               what=lambda: "no spare left (%r)"
               % [p for p in pids if tntest.pid_alive(p)])


def _ctl_request(*words):
    """A talknetctl request frame (src/common/control_wire.h)."""
    payload = b"".join(struct.pack("<I", len(w)) + w.encode()
                       for w in words)
    return struct.pack("<HHI", 1, 1, len(payload)) + payload


def _ctl_cmds(s, req, die):
    """gdb commands: connect to s's control socket, send req, and exit
    if die (x86_64: socket 41, brk 12, connect 42, write 1, exit 231)."""
    addr = struct.pack("<H", socket.AF_UNIX) + s.control.encode() + b"\0"
    cmds = ["set $fd = (long)syscall(41, 1, 1, 0)",
            "set $a = (long)syscall(12, 0)",
            "print (long)syscall(12, $a + 4096) - $a"]
    cmds += ["set {unsigned char}($a + %d) = %d" % (i, b)
             for i, b in enumerate(addr + req)]
    cmds += ["print (long)syscall(42, $fd, $a, %d)" % len(addr),
             "print (long)syscall(1, $fd, $a + %d, %d)"
             % (len(addr), len(req))]
    return cmds + (["print (long)syscall(231, 0)"] if die else [])


def test_a_dead_workers_control_request_is_refused():
    """A compromised worker connects to the control socket, sends "kick
    anna" and exits before the master takes the connection (the master
    busy: here stopped).  The master reaps the worker first, then
    accepts: the peer's pid is no child of its any more, and its uid is
    the daemon's.  The request must still be refused, as a live
    worker's or spare's is: a peer gone before it is taken is turned
    away."""
    s = tntest.Server("--min-spare", "1", "--max-spare", "1")
    with s:
        _skip_unless_sandboxed(s)
        a, m = tntest.connect_users(s, "anna", "mallory")
        req = _ctl_request("kick", "anna")
        # A live idle spare first: its own worker, refused.
        spare = spares(s, 1)[0]
        # (Turned away at once: its write may meet the closed end.)
        out = _gdb_raw(spare, _ctl_cmds(s, req, False))
        assert "$2 = 0" in out, out[-800:]
        s.wait_log(r"control: pid %d, talknetd's own worker, refused"
                   % spare)
        victim = s.worker_pid(m)
        os.kill(s.pid, signal.SIGSTOP)
        try:
            out = _gdb_raw(victim, _ctl_cmds(s, req, True))
            assert "$2 = 0" in out and "$3 = %d" % len(req) in out, \
                out[-800:]
            wait_until(lambda: _status(victim, "State")[0] == "Z", T,
                       what="the worker to be dead")
        finally:
            os.kill(s.pid, signal.SIGCONT)
        tntest.wait_until(lambda: "control: pid %d" % victim in
                          s.log_text() or "kicked" in s.log_text(), T,
                          what="the master to take the connection (gdb: "
                          "%r)" % out[-800:])
        assert "kicked anna" not in s.log_text(), s.log_text()[-2000:]
        a.expect(tntest.disconnected("mallory"))
        assert a.users() == {"anna": "ACTIVE"}, "anna was kicked"


def _gdb_raw(pid, cmds):
    """Has gdb run each command in pid (syscall numbers: x86_64's)."""
    _gdb_calls(pid)     # the skips: no gdb, not root, not x86_64
    argv = [shutil.which("gdb"), "-nx", "-batch", "-p", str(pid)]
    # A write to a peer that closed: EPIPE, not a stop inside the call
    # (the process would go on in gdb's dummy frame after the detach).
    for c in ["handle SIGPIPE nostop noprint pass",
              "set unwindonsignal on"] + cmds:
        argv += ["-ex", c]
    rc, out, err = ops.run(argv, timeout=120)
    return out + err


def _copy_pair(d, name, pki):
    for src, dst in ((getattr(pki, name + "_cert"), "c.pem"),
                     (getattr(pki, name + "_key"), "k.pem")):
        with open(src, "rb") as f:
            ops.write_file(os.path.join(d, dst), f.read().decode())


def _der(path):
    import ssl
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def test_tls_spares_serve_the_certificate_of_the_last_reload():
    """TLS spares make their context ahead: the first handshake after a
    reload's log line, with spares idle, already gets the new
    certificate (the old spares were retired before any accept)."""
    pki = tlslib.pki()
    d = ops.tempdir("sbxcert")
    _copy_pair(d, "server", pki)
    with tlslib.tls_server(pki, "--min-spare", "2", "--max-spare", "2",
                           cert=os.path.join(d, "c.pem"),
                           key=os.path.join(d, "k.pem")) as s:
        wait_until(lambda: len(s.spares()) == 4, T, what="four spares")
        a = tlslib.TlsClient(s, pki)
        assert a.sock.getpeercert(binary_form=True) == _der(pki.server_cert)
        _copy_pair(d, "rotated", pki)
        os.kill(s.pid, signal.SIGHUP)
        s.wait_log(r"reload: TLS certificate .* loaded")
        for i in range(3):
            c = tlslib.TlsClient(s, pki)
            got = c.sock.getpeercert(binary_form=True)
            assert got == _der(pki.rotated_cert), "handshake %d after the " \
                "reload got the old certificate" % i
            c.close()


def test_malformed_client_hellos_to_tls_spares_cost_no_sigsys():
    """Garbage, a cut ClientHello, a ClientHello then garbage, and a
    reset mid-handshake, each to a spare-served TLS worker: each ends
    without a SIGSYS (libtls's error paths run inside the filter), and
    a real client is served after."""
    pki = tlslib.pki()
    hello = tlslib.client_hello()
    bad = [b"\x16\x03\x01\x00\x05hello", hello[:len(hello) // 2],
           hello + b"\x17\x03\x03\x00\x10" + b"x" * 16,
           b"\x80\x2e\x01\x03\x01" + b"\x00" * 40, b"GET / HTTP/1.0\r\n\r\n"]
    with tlslib.tls_server(pki, "--min-spare", "2", "--max-spare", "2") as s:
        _skip_unless_sandboxed(s)
        port = tlslib.tls_port(s)
        for i, data in enumerate(bad + [hello]):
            raw = socket.create_connection(("127.0.0.1", port), timeout=T)
            raw.sendall(data)
            if i == len(bad):   # reset with the handshake under way
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                               b"\x01\x00\x00\x00\x00\x00\x00\x00")
            else:
                raw.shutdown(socket.SHUT_WR)
                raw.settimeout(T)
                try:
                    while raw.recv(4096):
                        pass
                except OSError:
                    pass
            raw.close()
        c = tlslib.TlsClient(s, pki)
        c.identify("fine")
        assert c.users() == {"fine": "ACTIVE"}
        wait_until(lambda: len(s.spares()) >= 2, T, what="spares back")
        assert "SIGSYS" not in s.log_text() and \
            "crashed" not in s.log_text(), s.log_text()[-3000:]


if __name__ == "__main__":
    tntest.main(globals())
