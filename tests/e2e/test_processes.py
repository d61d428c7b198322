"""Processes: one forked worker per connection, the hub, process titles,
reaping, and a clean exit on SIGTERM."""

import os
import signal
import time
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
import tntest  # noqa: E402
from tntest import (Client, Server, compact, connect_users, pid_alive, proc_stat,
                    proc_title, req, resp, wait_until)


def titles(s):
    return {p: proc_title(p) for p in s.children()}


def smaps_private(pid):
    """[name, prev, last_named, Private_Dirty in kB] for each mapping of
    a process, in address order: name is "" for an anonymous mapping,
    prev the name of the mapping just before it, and last_named the
    last non-empty name before it."""
    out, prev, last_named = [], "", ""
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            first = line.split()[0]
            if not first.endswith(":"):         # a mapping's header line
                fields = line.split()
                name = fields[5] if len(fields) > 5 else ""
                out.append([name, prev, last_named, 0])
                prev, last_named = name, name or last_named
            elif first == "Private_Dirty:":
                out[-1][3] += int(line.split()[1])
    return out


def private_kib(pid, names):
    """Private_Dirty of a process's mappings whose name contains one of
    names, in kB (0 if none)."""
    return sum(kib for name, _, _, kib in smaps_private(pid)
               if any(n in name for n in names))


def heap_private_kib(pid):
    """Private_Dirty of a process's [heap] mapping, in kB (0 if none)."""
    return private_kib(pid, ["[heap]"])


def test_idle_workers_have_no_heap_page_of_their_own():
    """An idle worker holds no private copy of a heap page: its buffers
    start in its own state, so small traffic never calls malloc, and
    the master keeps its per-client records out of what children
    inherit, so later accepts leave no stale copy behind either."""
    with Server() as s:
        anna, ben = connect_users(s, "anna", "ben")
        ben.send(req("PUBLIC_TEXT", text="hello"))
        anna.expect(tntest.public_from("ben", "hello"))
        anna.send(req("TEXT", username="ben", text="hi ben"))
        ben.expect(tntest.text_from("anna", "hi ben"))
        # More accepts and exits after theirs.
        others = connect_users(s, "carl", "dora", existing=[anna, ben])
        for c in others:
            c.close()
            for o in (anna, ben):
                o.expect(tntest.disconnected(c.name))
        for c in (anna, ben):
            kib = heap_private_kib(s.worker_pid(c))
            assert kib == 0, "worker holds %d kB of private heap" % kib


def test_a_burst_of_lines_leaves_no_heap_page_either():
    """A batch from the hub larger than the worker's output store goes to
    the client straight from the read, so a burst calls no malloc."""
    with Server() as s:
        anna, ben = connect_users(s, "anna", "ben")
        texts = ["burst %02d %s" % (i, "x" * 120) for i in range(40)]
        # One write: ben's worker forwards it to the hub in one write,
        # and the hub runs it in one round, so anna's worker reads the
        # 40 lines (over 5 kB) as one batch.
        ben.send(b"".join(compact(req("PUBLIC_TEXT", text=t))
                          for t in texts))
        for t in texts:
            anna.expect(tntest.public_from("ben", t))
        kib = heap_private_kib(s.worker_pid(anna))
        assert kib == 0, "worker holds %d kB of private heap" % kib


def config_defines(name):
    """True if the build's config.h defines name (or cannot be found)."""
    top = os.environ.get("TOP_BUILDDIR") or \
        os.path.join(os.path.dirname(tntest.TALKNETD), "..")
    try:
        with open(os.path.join(top, "config.h")) as f:
            return ("#define %s 1" % name) in f.read()
    except OSError:
        return True


def test_workers_hold_no_copy_of_libc_or_ld_so_data():
    """A worker is forked without libc's fork bookkeeping (_Fork), which
    would reset ld.so's and libc's locks in both processes and so leave
    every worker a private copy of those pages.  Where libc has no
    _Fork the master forks workers with fork(), and they do."""
    if not config_defines("HAVE__FORK"):
        raise tntest.Skip("this libc has no _Fork: workers come from fork()")
    with Server() as s:
        anna, ben = connect_users(s, "anna", "ben")
        ben.send(req("PUBLIC_TEXT", text="hello"))
        anna.expect(tntest.public_from("ben", "hello"))
        for c in (anna, ben):
            pid = s.worker_pid(c)
            names = ["/libc.so", "/libc-", "/ld-linux"]
            with open("/proc/%d/maps" % pid) as f:
                if "libasan" in f.read():
                    # The sanitizer runtime binds its own calls lazily:
                    # a worker's first call of one writes ld.so's data.
                    names.remove("/ld-linux")
            kib = private_kib(pid, names)
            assert kib == 0, "worker holds %d kB of libc or ld.so data" % kib


def unit_environment():
    """The Environment= settings of contrib/systemd/talknetd.service.in."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "..", "..", "contrib", "systemd",
                        "talknetd.service.in")
    env = {}
    with open(path) as f:
        for line in f:
            if line.startswith("Environment="):
                k, _, v = line[len("Environment="):].strip().partition("=")
                env[k] = v
    return env


def anon_private_kib(pid):
    """Private_Dirty of a process's nameless mappings but those after
    talknetd's own (its bss), in kB: the thread block, and anything
    else anonymous outside the heap and the stack."""
    return sum(kib for name, _, last_named, kib in smaps_private(pid)
               if name == "" and not last_named.endswith("/talknetd"))


def idle_worker_anon_kib(env):
    """anon_private_kib of an idle worker of a daemon run with env added
    to its environment, after a line each way; None under the sanitizer
    runtime, which has anonymous mappings of its own."""
    with Server(env=env) as s:
        anna, ben = connect_users(s, "anna", "ben")
        ben.send(req("PUBLIC_TEXT", text="hello"))
        anna.expect(tntest.public_from("ben", "hello"))
        pid = s.worker_pid(anna)
        with open("/proc/%d/maps" % pid) as f:
            if "libasan" in f.read():
                return None
        return anon_private_kib(pid)


def test_workers_under_the_unit_share_the_rseq_page():
    """Under the environment talknetd.service sets (glibc's rseq off), a
    worker owns no more of its thread block than without it, and one
    page less where glibc registers rseq and the area sits in a page of
    its own: the kernel writes the CPU number into a registered rseq
    area each time the process is scheduled.  Which page the area falls
    in depends on the machine's TLS layout, so the same run measures a
    worker under the default environment as the baseline."""
    env = unit_environment()
    assert env.get("GLIBC_TUNABLES") == "glibc.pthread.rseq=0", \
        "talknetd.service sets no GLIBC_TUNABLES=glibc.pthread.rseq=0: %r" \
        % env
    base = idle_worker_anon_kib({"GLIBC_TUNABLES": ""})
    if base is None:
        raise tntest.Skip("the sanitizer runtime has anonymous mappings of "
                          "its own")
    kib = idle_worker_anon_kib(env)
    assert kib <= base, "under the unit's environment a worker holds %d " \
        "kB of anonymous pages (its thread block and more), %d kB without " \
        "it" % (kib, base)
    print("  anonymous private: %d kB under the unit, %d kB without"
          % (kib, base))


def bss_private_kib(pid):
    """Private_Dirty of the nameless mapping right after talknetd's own
    (its bss, where the worker's state and read scratch are), in kB."""
    return sum(kib for name, prev, _, kib in smaps_private(pid)
               if name == "" and prev.endswith("/talknetd"))


def test_a_burst_leaves_no_scratch_pages_behind():
    """A worker that read a batch bigger than a page gives those pages of
    its read scratch back once it has been quiet for a second, and still
    reads the next batch whole.  How much of the bss an idle worker owns
    depends on the build and the machine (its state page, and whatever
    else the linker put near it), so the worker's own figure when idle,
    measured first, is the baseline it must come back to."""
    with Server() as s:
        anna, ben = connect_users(s, "anna", "ben")
        ben.send(req("PUBLIC_TEXT", text="hello"))
        anna.expect(tntest.public_from("ben", "hello"))
        pid = s.worker_pid(anna)
        # Quiet for longer than the worker waits before it gives pages
        # back: what is left is the idle worker's own.
        time.sleep(1.5)
        base = bss_private_kib(pid)
        texts = ["burst %02d %s" % (i, "b" * 150) for i in range(80)]
        peaks = []
        for rnd in range(3):
            # One write: the hub sends anna's worker about 14 kB at once.
            ben.send(b"".join(compact(req("PUBLIC_TEXT", text=t))
                              for t in texts))
            for t in texts:
                anna.expect(tntest.public_from("ben", t))
            peaks.append(bss_private_kib(pid))
            wait_until(lambda: bss_private_kib(pid) <= base, 10,
                       what=lambda: "anna's worker to give back its "
                       "scratch pages (bss private %d kB, %d kB when idle "
                       "before the burst)" % (bss_private_kib(pid), base))
        tntest.expect_nothing(anna, ben)
        # Read at once after the batch, the scratch shows the pages the
        # burst wrote; unless this process was kept off the CPU for the
        # worker's quiet second, every round, so one in three is plenty
        # to show the test saw the pages come and go.
        assert max(peaks) > base, "the bursts never showed in anna's " \
            "worker's bss (%d kB idle, %r kB after each burst)" % (base, peaks)
        print("  bss private: %d kB idle, %s kB after each burst"
              % (base, peaks))


def test_master_hub_and_one_worker_per_connection():
    with Server() as s:
        assert proc_title(s.pid) == "talknetd: master", proc_title(s.pid)
        hub = s.hub_pid()
        assert proc_stat(hub)[1] == s.pid, "the hub is not the master's child"
        cs = [Client(s) for _ in range(3)]

        def ready():
            t = titles(s)
            want = {"talknetd: hub"} | {
                "talknetd: worker (unidentified) 127.0.0.1:%d" % c.local_port
                for c in cs}
            return set(t.values()) == want and len(t) == 4 and t
        try:
            t = wait_until(ready, 3, what="hub + 3 unidentified workers")
        except AssertionError:
            raise AssertionError("children of the master: %r" % titles(s))
        workers = [p for p, v in t.items() if "worker" in v]
        assert len(set(workers)) == 3
        for p in workers:
            assert proc_stat(p)[1] == s.pid
            assert p != hub and p != s.pid
        # Each worker is its own process: it alone holds its client's
        # socket (not the master, the hub or another worker).
        for c in cs:
            wp = s.worker_pid(c)
            assert wp in workers
            holders = tntest.socket_holders([s.pid] + s.descendants(),
                                            s.port, c.local_port)
            assert holders == [wp], "socket of port %d held by %r, worker " \
                "%d" % (c.local_port, holders, wp)

        names = ["Kimberly", "Luis", "\u00e9t\u00e9"]
        for c, n in zip(cs, names):
            c.identify(n)
        for c in cs:
            c.drain(0.1)

        def renamed():
            t = titles(s)
            want = {"talknetd: hub"} | {
                "talknetd: worker %s 127.0.0.1:%d" % (n, c.local_port)
                for c, n in zip(cs, names)}
            return set(t.values()) == want and t
        try:
            wait_until(renamed, 3, what="workers titled with their user")
        except AssertionError:
            raise AssertionError("children of the master: %r" % titles(s))
        assert proc_title(s.pid) == "talknetd: master"


def test_worker_exits_and_is_reaped():
    with Server() as s:
        a, b = connect_users(s, "A", "B")
        wa = s.worker_pid(a)
        wb = s.worker_pid(b)
        a.send(tntest.req("DISCONNECT"))
        a.expect_closed()
        b.expect(tntest.disconnected("A"))
        b.close()
        # Gone, not left as a zombie child of the master.
        wait_until(lambda: proc_stat(wa) is None and proc_stat(wb) is None,
                   3, what=lambda: "the workers to exit and be reaped "
                   "(states %r %r)" % (proc_stat(wa), proc_stat(wb)))
        wait_until(lambda: len(s.children()) == 1, 3,
                   what=lambda: "only the hub left (children %r)" % titles(s))


def test_killed_worker_is_reaped_and_master_survives():
    with Server() as s:
        a, b = connect_users(s, "A", "B")
        wa = s.worker_pid(a)
        os.kill(wa, signal.SIGKILL)
        a.expect_closed()
        b.expect(tntest.disconnected("A"))
        wait_until(lambda: proc_stat(wa) is None, 3,
                   what=lambda: "the killed worker to be reaped (state %r)"
                   % (proc_stat(wa),))
        assert s.alive()
        c = Client(s).identify("A")
        b.expect(tntest.new_user("A"))


def test_many_connections_many_workers():
    with Server() as s:
        cs = [Client(s) for _ in range(20)]
        wait_until(lambda: len(s.children()) == 21, 5,
                   what=lambda: "21 children (have %r)" % titles(s))
        for c in cs:
            c.close()
        wait_until(lambda: len(s.children()) == 1, 5,
                   what=lambda: "the workers to be reaped (have %r)"
                   % titles(s))


def shm_mapped(pid):
    """The master maps its table, whose name is gone from /dev/shm."""
    shm = "/dev/shm/talknetd.%d" % pid
    with open("/proc/%d/maps" % pid) as f:
        maps = [line.rstrip("\n") for line in f if shm in line]
    return maps and all(m.endswith(" (deleted)") for m in maps) and \
        not os.path.exists(shm)


def test_sigterm_clean_exit():
    s = Server()
    try:
        a, b = connect_users(s, "A", "B")
        u = Client(s)
        tntest.new_room(a, "R")
        shm = "/dev/shm/talknetd.%d" % s.pid
        # The master unlinks the name once the table is mapped.
        assert shm_mapped(s.pid), "the master does not map %s" % shm
        wait_until(lambda: len(s.children()) == 4, 3,
                   what="hub + 3 workers")
        kids = s.descendants()
        t0 = time.monotonic()
        rc = s.terminate(5)
        dt = time.monotonic() - t0
        assert rc is not None, "the master did not exit within 5 s of SIGTERM"
        assert rc == 0, "exit status %r after SIGTERM" % rc
        wait_until(lambda: not any(pid_alive(k) for k in kids), 3,
                   what=lambda: "every child to exit (alive: %r)"
                   % [(k, proc_title(k)) for k in kids if pid_alive(k)])
        assert not os.path.exists(shm), "%s was not removed" % shm
        for c in (a, b, u):
            c.expect_closed(allow_lines=True)
        print("  exited in %.2f s" % dt)
    finally:
        s.stop()


def test_sigterm_idle():
    s = Server()
    try:
        shm = "/dev/shm/talknetd.%d" % s.pid
        wait_until(lambda: shm_mapped(s.pid), 3, what=shm)
        kids = s.descendants()
        rc = s.terminate(5)
        assert rc == 0, "exit status %r after SIGTERM" % rc
        wait_until(lambda: not any(pid_alive(k) for k in kids), 3,
                   what="the hub to exit")
        assert not os.path.exists(shm), "%s was not removed" % shm
    finally:
        s.stop()


def test_title_stays_unidentified_after_refused_name():
    with Server() as s:
        a = Client(s).identify("Kimberly")
        b = Client(s)
        b.send(tntest.req("IDENTIFY", username="Kimberly"))
        b.expect(tntest.resp("IDENTIFY", "USER_ALREADY_EXISTS", "Kimberly"))
        want = "talknetd: worker (unidentified) 127.0.0.1:%d" % b.local_port
        wait_until(lambda: want in titles(s).values(), 3,
                   what=lambda: "%r among %r" % (want, titles(s)))
        time.sleep(0.2)
        assert want in titles(s).values(), titles(s)
        b.identify("Luis")
        want = "talknetd: worker Luis 127.0.0.1:%d" % b.local_port
        wait_until(lambda: want in titles(s).values(), 3,
                   what=lambda: "%r among %r" % (want, titles(s)))


def test_no_fd_leak_in_master_and_hub():
    fd_churn()


def test_no_fd_leak_while_the_spare_pool_moves():
    # The pool starts empty, grows on each miss and halves every 100 ms:
    # spares come and go all through the churn.  The master's count
    # without the spares' sockets must still come back.
    fd_churn("--min-spare", "0", "--spare-decay-ms", "100")


def fd_churn(*opts):
    """Sixty clients come and go three ways (DISCONNECT, a close, a
    killed worker), half of them from a room: then the master and the
    hub hold as many fds as before."""
    with Server(*opts) as s:
        obs = Client(s).identify("obs")
        hub = s.hub_pid()
        tntest.new_room(obs, "R")
        wait_until(lambda: len(s.children()) == 2, 3, what="hub + 1 worker")
        base = (s.master_nfds_settled(), tntest.nfds(hub))
        for i in range(60):
            c = tntest.identify_new(s, "u%d" % (i % 5))
            obs.expect(tntest.new_user(c.name))
            tntest.invite(obs, "R", c)
            if i % 2:
                tntest.join(c, "R", [obs])
            if i % 3 == 0:
                c.send(tntest.req("DISCONNECT"))
            elif i % 3 == 1:
                c.close()
            else:
                os.kill(s.worker_pid(c), signal.SIGKILL)
            if i % 2:
                obs.expect(tntest.left_room("R", c.name))
            obs.expect(tntest.disconnected(c.name))
        wait_until(lambda: len(s.children()) == 2, 3,
                   what=lambda: "the workers to be reaped: %r" % titles(s))
        # The master's count less its spares' sockets: the pool grows on
        # a miss and decays on a timer, and the master's own count with it.
        wait_until(lambda: (s.master_nfds(), tntest.nfds(hub)) == base, 3,
                   what=lambda: "fds of master (but its spares') and hub "
                   "back to %r, have %r (%d spares)"
                   % (base, (s.master_nfds(), tntest.nfds(hub)),
                      len(s.spares())))


def test_hub_killed_is_restarted():
    # The master restarts a hub that died; the new hub resumes from the
    # shared table and the workers reconnect: clients stay connected and
    # keep their names, statuses, rooms and invitations.
    with Server() as s:
        a, b, c = tntest.connect_users(s, "A", "B", "C")
        b.send(req("STATUS", status="AWAY"))
        a.expect(tntest.new_status("B", "AWAY"))
        c.expect(tntest.new_status("B", "AWAY"))
        tntest.make_room(a, "R", members=[b])
        a.send(req("INVITE", roomname="R", usernames=["C"]))
        c.expect(tntest.invitation("A", "R"))
        hub = s.hub_pid()
        os.kill(hub, signal.SIGKILL)
        # At once, or a second after the last start: 5 s leaves a loaded
        # machine room, and a master that never restarts it still fails.
        wait_until(lambda: [p for p in s.titled("talknetd: hub") if p != hub],
                   5, what=lambda: "a new hub (children %r)" % titles(s))
        assert s.alive()
        # Nobody was disconnected, and the state is all there.
        assert a.users() == {"A": "ACTIVE", "B": "AWAY", "C": "ACTIVE"}
        a.send(req("ROOM_USERS", roomname="R"))
        a.expect(tntest.room_user_list("R", {"A": "ACTIVE", "B": "AWAY"}))
        c.send(req("JOIN_ROOM", roomname="R"))
        c.expect(resp("JOIN_ROOM", "SUCCESS", "R"))
        a.expect(tntest.joined_room("R", "C"))
        b.expect(tntest.joined_room("R", "C"))
        # Names stay taken; a newcomer is served as usual.
        d = Client(s)
        d.send(req("IDENTIFY", username="A"))
        d.expect(resp("IDENTIFY", "USER_ALREADY_EXISTS", "A"))
        d.identify("D")
        for x in (a, b, c):
            x.expect(tntest.new_user("D"))
        b.send(req("ROOM_TEXT", roomname="R", text="still here"))
        a.expect(tntest.room_text_from("R", "B", "still here"))
        c.expect(tntest.room_text_from("R", "B", "still here"))
        tntest.expect_nothing(a, b, c, d)


def test_worker_gone_while_hub_down():
    # A worker that dies while the hub is down is noticed by the new hub:
    # the others get its DISCONNECT semantics, and its name is free.
    with Server() as s:
        a, b = tntest.connect_users(s, "A", "B")
        tntest.make_room(a, "R", members=[b])
        hub = s.hub_pid()
        os.kill(hub, signal.SIGSTOP)
        try:
            wpid = s.worker_pid(b)
            os.kill(wpid, signal.SIGKILL)
            time.sleep(0.2)
            os.kill(hub, signal.SIGKILL)
        finally:
            try:
                os.kill(hub, signal.SIGCONT)
            except ProcessLookupError:
                pass
        a.expect(tntest.left_room("R", "B"), timeout=5)
        a.expect(tntest.disconnected("B"), timeout=5)
        e = tntest.identify_new(s, "B", timeout=5)
        a.expect(tntest.new_user("B"))
        tntest.expect_nothing(a, e)


def test_master_killed_leaves_no_orphans():
    # If the master dies (kill -9), the hub and every worker exit too
    # (PR_SET_PDEATHSIG): systemd then restarts a clean service.
    with Server() as s:
        a, b = connect_users(s, "A", "B")
        # The pool refills after the two hand-offs: a spare just forked
        # is titled as the master until it names itself, and counts.
        wait_until(lambda: len(s.children()) == 3, 5,
                   what=lambda: "the hub and two workers: %r" % titles(s))
        kids = list(s.children())
        s.terminated = True
        os.kill(s.pid, signal.SIGKILL)
        s.proc.wait(5)
        wait_until(lambda: not [k for k in kids if pid_alive(k)], 5,
                   what=lambda: "children %r to exit" % kids)
        a.expect_closed(timeout=5, allow_lines=True)
        b.expect_closed(timeout=5, allow_lines=True)
        # The master unlinked its table's name at start: a kill -9
        # leaves nothing in /dev/shm.
        assert not os.path.exists("/dev/shm/talknetd.%d" % s.pid)


if __name__ == "__main__":
    tntest.main(globals())
