#!/usr/bin/env python3
"""talknetd's TLS as an impatient admin runs it (issue 18): a reload
storm under TLS traffic, and reloads onto every kind of bad file the
master could be handed as certificate or key (a FIFO, /dev/zero, a
directory, a huge file, an empty one, a truncated PEM, a key of another
certificate, a symlink swapped to a FIFO), and some of those at start.
The master must neither hang nor read without bound, keep the old pair
and say why (at start: exit 1, leaving nothing behind); its fds and
memory after the storm match a baseline measured before it."""

import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True   # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE + "/../lib")
sys.path.insert(0, HERE)
import tntest  # noqa: E402
from tntest import ops, procfs  # noqa: E402
from tntest import req, text_from  # noqa: E402
import tlslib  # noqa: E402
from tlslib import pki, TlsClient, tls_port, tls_server  # noqa: E402
from test_tls_ops import (TALKNETCTL, der, served_cert,  # noqa: E402
                          _copy_pair)

T = tntest.TIMEOUT


def ctl_reload(s, timeout=10):
    """talknetctl reload: (exit status, output, seconds it took)."""
    t0 = time.monotonic()
    try:
        r = subprocess.run([TALKNETCTL, "-s", s.control, "reload"],
                           capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "talknetctl reload timed out", timeout
    return (r.returncode, (r.stdout + r.stderr).decode(errors="replace"),
            time.monotonic() - t0)


def unblock_fifo(path):
    """Opens path's write end if someone waits on its read end: a
    master stuck in open() on it is let go (the test then fails on its
    own assertion, not on a hung daemon)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as e:
        if e.errno in (errno.ENXIO, errno.ENOENT, errno.EISDIR,
                       errno.EINVAL):
            return
        raise
    os.close(fd)


def _bad_things(d, which, pem):
    """(name, make) pairs: each make() turns the file which (c.pem or
    k.pem) in d into something bad."""
    path = os.path.join(d, which)

    def clear():
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        elif os.path.lexists(path):
            os.unlink(path)

    def fifo():
        clear()
        os.mkfifo(path)

    def devzero():
        clear()
        os.symlink("/dev/zero", path)

    def directory():
        clear()
        os.mkdir(path)

    def huge():
        clear()
        with open(path, "wb") as f:     # sparse: costs no disk
            f.write(pem)
            f.truncate(256 * 1024 * 1024)

    def empty():
        clear()
        open(path, "wb").close()

    def truncated():
        clear()
        with open(path, "wb") as f:
            f.write(pem[:len(pem) // 2])

    def swapped_symlink():
        # certbot's live/ links, swapped to point at a FIFO.
        clear()
        fifo_path = os.path.join(d, "fifo-" + which)
        if not os.path.exists(fifo_path):
            os.mkfifo(fifo_path)
        tmp = path + ".new"
        os.symlink(fifo_path, tmp)
        os.replace(tmp, path)

    return [("fifo", fifo), ("/dev/zero", devzero),
            ("directory", directory), ("huge", huge), ("empty", empty),
            ("truncated", truncated), ("symlink to a fifo", swapped_symlink)]


def test_bad_files_on_reload():
    """Each bad certificate or key file: talknetctl reload comes back at
    once, fails and says why; the old pair is served on, the master has
    no fd more, and a good pair is taken by the next reload."""
    d = ops.tempdir("tlsbadfiles")
    _copy_pair(d, "server")
    with tls_server(pki(), cert=os.path.join(d, "c.pem"),
                    key=os.path.join(d, "k.pem")) as s:
        a = TlsClient(s, pki()).identify("a")
        good = der(pki().server_cert)
        r, out, took = ctl_reload(s)
        assert r == 0, out
        fds = s.master_nfds_settled()
        cases = []
        for which, src in (("c.pem", pki().server_cert),
                           ("k.pem", pki().server_key)):
            with open(src, "rb") as f:
                pem = f.read()
            cases += [(which, n, m) for n, m in _bad_things(d, which, pem)]
        # A key that belongs to another certificate.
        cases.append(("k.pem", "mismatched key", lambda: shutil.copy(
            pki().rotated_key, os.path.join(d, "k.pem"))))
        failed = []
        for which, name, make in cases:
            make()
            try:
                r, out, took = ctl_reload(s, timeout=8)
            finally:
                unblock_fifo(os.path.join(d, which))
                unblock_fifo(os.path.join(d, "fifo-" + which))
            if r is None or took > 5 or r == 0 or \
                    "keeping the certificate and key loaded before" \
                    not in out:
                failed.append((which, name, r, round(took, 1), out[-200:]))
            else:
                # The reason, on one line, names the file.
                tls_line = [x for x in out.splitlines() if "TLS: " in x]
                if len(tls_line) != 1 or which not in tls_line[0]:
                    failed.append((which, name, "reason", out[-200:]))
            if os.path.isdir(os.path.join(d, which)):
                os.rmdir(os.path.join(d, which))
            else:
                os.unlink(os.path.join(d, which))
            _copy_pair(d, "server")
        assert failed == [], failed
        assert served_cert(tls_port(s)) == good
        # talknetctl's connection may still be closing: wait for it.
        tntest.wait_until(lambda: s.master_nfds() <= fds, T,
                          what="%d fds, as before" % fds)
        _copy_pair(d, "rotated")
        r, out, took = ctl_reload(s)
        assert r == 0, out
        assert served_cert(tls_port(s)) == der(pki().rotated_cert)
        assert list(a.users()) == ["a"]


def test_bad_files_at_start():
    """A FIFO, /dev/zero or a directory as key at start: exit 1 at
    once naming the file, and nothing left behind: no pidfile, no
    control socket, no shared table."""
    d = ops.tempdir("tlsbadstart")
    os.mkfifo(os.path.join(d, "fifo"))
    for key in (os.path.join(d, "fifo"), "/dev/zero", d):
        pidfile, ctl = os.path.join(d, "pid"), os.path.join(d, "ctl")
        p = subprocess.Popen(
            [tntest.TALKNETD, "-f", "-c", "/dev/null", "-p", pidfile,
             "--control", ctl, "-l", "tls://127.0.0.1:0", "--tls-cert",
             pki().server_cert, "--tls-key", key],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        try:
            err = p.communicate(timeout=8)[1].decode(errors="replace")
        except subprocess.TimeoutExpired:
            unblock_fifo(os.path.join(d, "fifo"))
            err = "hung: " + p.communicate(timeout=8)[1].decode()
        assert p.returncode == 1 and "TLS: %s: " % key in err, (
            key, p.returncode, err)
        assert not os.path.exists(pidfile), key
        assert not os.path.exists(ctl), key
        # The shared table is named after the master's pid.
        assert not os.path.exists("/dev/shm/talknetd.%d" % p.pid), key


def _master_rss_kb(pid):
    return procfs.status_kb(pid, "VmRSS")


def test_reload_storm_under_traffic():
    """200 reloads in a row (SIGHUP and talknetctl reload, the pair
    swapped between two) while TLS clients chat and new ones connect:
    no line lost, no connection dropped, each new connection handshakes
    with a pair that was current, and the master's fds and memory after
    the storm are those of a baseline taken after a few reloads."""
    d = ops.tempdir("tlsstorm")
    # certbot's way: live is a symlink to the current pair's directory,
    # swapped atomically.  A reload reads the certificate, then the key:
    # a swap in between gives a pair that does not match, and the daemon
    # reads both once more (master_tls_reload) instead of warning.
    for sub, which in (("a", "server"), ("b", "rotated")):
        os.mkdir(os.path.join(d, sub))
        _copy_pair(os.path.join(d, sub), which)
    live = os.path.join(d, "live")
    os.symlink("a", live)

    def swap(sub):
        os.symlink(sub, live + ".new")
        os.replace(live + ".new", live)
    pairs = {der(pki().server_cert), der(pki().rotated_cert)}
    with tls_server(pki(), cert=os.path.join(live, "c.pem"),
                    key=os.path.join(live, "k.pem")) as s:
        a, b = tlslib.tls_users(s, pki(), "a", "b")
        # Warm up: the first reloads allocate what later ones reuse.
        for i in range(10):
            assert ctl_reload(s)[0] == 0
        base_fds = s.master_nfds_settled()
        base_rss = _master_rss_kb(s.pid)
        stop = threading.Event()
        sent = []
        seen = []
        errors = []

        def talk():
            i = 0
            while not stop.is_set() and i < 20000:
                a.send(req("TEXT", username="b", text="n%d" % i))
                sent.append(i)
                i += 1
                time.sleep(0.003)

        def newcomers():
            i = 0
            while not stop.is_set() and i < 200:
                try:
                    seen.append(served_cert(tls_port(s)))
                except Exception as e:  # noqa: BLE001
                    errors.append(repr(e))
                i += 1
        threads = [threading.Thread(target=talk, daemon=True),
                   threading.Thread(target=newcomers, daemon=True)]
        for t in threads:
            t.start()
        try:
            deadline = time.monotonic() + 30
            for i in range(200):
                assert time.monotonic() < deadline, "storm too slow: %d" % i
                if i % 20 == 0:
                    swap("b" if i % 40 == 0 else "a")
                if i % 2:
                    os.kill(s.pid, signal.SIGHUP)
                    time.sleep(0.002)
                else:
                    r, out, took = ctl_reload(s)
                    assert r == 0, out
        finally:
            stop.set()
            for t in threads:
                t.join(T * 3)
        for i in range(len(sent)):
            b.expect(text_from("a", "n%d" % i))
        assert errors == [], errors[:3]
        assert set(seen) == pairs, (len(seen), len(set(seen)))
        assert sorted(a.users()) == ["a", "b"]
        # And 200 SIGHUPs back to back, not waiting for any.
        for i in range(200):
            os.kill(s.pid, signal.SIGHUP)
        # Every SIGHUP handled: the last reloads are done.
        assert ctl_reload(s)[0] == 0
        a.send(req("TEXT", username="b", text="after"))
        b.expect(text_from("a", "after"))
        # The newcomers' workers are reaped: then no fd is left over.
        tntest.wait_until(lambda: s.master_nfds() <= base_fds, T,
                          what="%d fds, as before the storm" % base_fds)
        rss = _master_rss_kb(s.pid)
        print("storm: %d lines, %d new connections, master fds %d -> %d, "
              "VmRSS %d -> %d kB" % (len(sent), len(seen), base_fds,
                                     procfs.nfds(s.pid), base_rss, rss))
        # One context leaked per reload would be tens of MiB here.  Not
        # under a sanitizer: ASan holds freed memory in its quarantine
        # (its leak check at exit stands in for this bound).
        if not tntest.sanitized(s.pid):
            assert rss - base_rss < max(2048, base_rss // 4), \
                (rss, base_rss)
        assert "TLS" not in "".join(
            x for x in s.log_text().splitlines() if "warning" in x)


if __name__ == "__main__":
    tntest.main(globals())
