"""Stress: connect bursts of 2,000 clients in 2 s (--max-clients 2100),
each IDENTIFYing at once; all are served (IDENTIFY SUCCESS and every
NEW_USER), then all go away (half DISCONNECT, half just close).  Three
bursts in a row; after each, the fd counts of master and hub and the
number of the master's children are back at baseline, and the master's
VmRSS stays flat: the first burst may raise it once (its heap holds one
record per child at the peak), later bursts must not; the hub's VmRSS,
once it has been quiet for a second, does not grow from one burst to
the next either.  Under a
sanitizer (libasan mapped in the master) the RSS is only reported: the
allocator's quarantine grows by design."""

import sys
import os
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest import stress  # noqa: E402
from tntest.stress import figure, note

HUB_TRIM_WAIT = 1.5      # the hub trims its heap after 1 s of quiet
import tntest  # noqa: E402
from tntest import Server, compact, req, resp
from tntest.steps import pool_settled  # noqa: E402

N = int(os.environ.get("TN_STRESS_BURST", "2000"))
SPREAD = 2.0                # seconds over which the N connects are spread
BURSTS = 3


def _burst(s, k, st):
    pool = stress.Pool(s.port)
    names = ["b%d_%04d" % (k, i) for i in range(N)]
    ok_id = {compact(resp("IDENTIFY", "SUCCESS", n))[:-1]: n for n in names}
    nu_prefix = b'{"type":"NEW_USER","username":"b%d_' % k
    gone_prefix = b'{"type":"DISCONNECTED","username":"b%d_' % k
    c_st = {"id": 0, "nu": 0, "gone": 0, "bad": []}

    def on_line(c, raw):
        if raw.startswith(nu_prefix):
            c_st["nu"] += 1
        elif raw.startswith(gone_prefix):
            c_st["gone"] += 1
        elif ok_id.get(raw) == c.name:
            c_st["id"] += 1
        elif len(c_st["bad"]) < 10:
            c_st["bad"].append("%r got %r" % (c, raw[:200]))

    def on_eof(c):
        if not c.data:
            c_st["bad"].append("%r: closed by the server" % c)

    pool.on_line = on_line
    pool.on_eof = on_eof
    try:
        t0 = time.monotonic()
        for i, n in enumerate(names):
            due = t0 + i * SPREAD / N
            while True:
                left = due - time.monotonic()
                if left <= 0:
                    break
                pool.poll(left)
            c = pool.connect(n, timeout=15)
            c.send(req("IDENTIFY", username=n))
        t_conn = time.monotonic() - t0
        t_id, t_all, _ = pool_settled(pool, c_st, N, "id", "nu", t0, 180)
        nkids = len(s.children())
        assert nkids == N + 1, "%d children for %d clients" % (nkids, N)
        mem = stress.tree_memory(s)
        # All go: half say DISCONNECT, half just close.
        t1 = time.monotonic()
        for c in pool.conns:
            c.data = True       # an EOF from now on is expected
            if c.idx % 2:
                c.send(req("DISCONNECT"))
            else:
                pool.close(c)
        pool.run_until(lambda: all(c.eof for c in pool.conns), 60,
                       what=lambda: "the DISCONNECTs to be answered with "
                       "EOF (%d left)" % sum(1 for c in pool.conns
                                             if not c.eof))
        assert not c_st["bad"], c_st["bad"]
    finally:
        pool.close_all()
    st["t_conn"].append(t_conn)
    st["t_id"].append(t_id)
    st["t_all"].append(t_all)
    st["mem"].append(mem)
    return t1


def test_connect_bursts():
    stress.raise_nofile(2 * N + 300)
    stress.need_processes(N)
    st = {"t_conn": [], "t_id": [], "t_all": [], "mem": [], "settle": [],
          "rss": []}
    with Server("--max-clients", str(N + 100)) as s:
        hub = s.hub_pid()
        tntest.wait_until(lambda: len(s.children()) == 1, 3, what="the hub")
        base = stress.baseline(s, hub)
        sanitized = tntest.sanitized(s.pid)
        rss0 = tntest.status_kb(s.pid, "VmRSS")
        hub_rss0 = tntest.status_kb(hub, "VmRSS")
        for k in range(BURSTS):
            t1 = _burst(s, k, st)
            stress.wait_baseline(s, hub, base, timeout=60)
            st["settle"].append(time.monotonic() - t1)
            st["rss"].append(tntest.status_kb(s.pid, "VmRSS"))
            # The hub gives freed memory back after 1 s of quiet.
            time.sleep(HUB_TRIM_WAIT)
            st.setdefault("hub_rss", []).append(
                tntest.status_kb(hub, "VmRSS"))
            assert s.titled("talknetd: hub") == [hub], "the hub changed"
        # Nobody is left.
        f = tntest.Client(s).identify("fresh")
        assert f.users() == {"fresh": "ACTIVE"}
        hwm_hub = tntest.status_kb(hub, "VmHWM")
    for k in range(BURSTS):
        m = st["mem"][k]
        figure("burst.%d.connect" % (k + 1), "%d connects in %.2f s; all "
               "identified after %.2f s; all %d NEW_USER after %.2f s"
               % (N, st["t_conn"][k], st["t_id"][k], N * (N - 1) // 2,
                  st["t_all"][k]))
        figure("burst.%d.tree" % (k + 1), "Pss sum %d kB over %d procs"
               % (m["pss_sum_kb"], m["procs"]))
        figure("burst.%d.teardown" % (k + 1), "%.2f s until fds and "
               "children back at baseline" % st["settle"][k])
    figure("burst.baseline", "master fds %d, hub fds %d, children %d "
           "(same after each burst)" % base)
    figure("burst.master_rss", "%d kB before, %s kB after the bursts"
           % (rss0, " kB, ".join(str(r) for r in st["rss"])))
    figure("burst.hub", "VmRSS %d kB before, %s kB after each burst; "
           "VmHWM %s kB" % (hub_rss0, " kB, ".join(str(r) for r in
                                                  st["hub_rss"]), hwm_hub))
    if sanitized:
        note("sanitizer build: the master's RSS is reported, not checked")
        return
    # Flat: the first burst may grow the heap once (about 64 bytes per
    # concurrent child); after that, not a page more per burst.  The
    # budgets are for 4 KiB pages; where pages are larger, RSS grows
    # by larger steps.
    scale = max(1, os.sysconf("SC_PAGE_SIZE") // 4096)
    grow = st["rss"][0] - rss0
    assert grow <= (256 + N * 128 // 1024) * scale, \
        "the master's RSS grew by %d kB in the first burst" % grow
    assert st["rss"][-1] - st["rss"][0] <= 64 * scale, \
        "the master's RSS grew between bursts: %r" % st["rss"]
    # The hub too: once quiet it is back near where it started (a burst
    # peaks at tens of MB: one channel and one user record per client).
    assert max(st["hub_rss"]) - hub_rss0 <= 4096 * scale, \
        "the hub kept %r kB after the bursts, %d kB before" \
        % (st["hub_rss"], hub_rss0)


if __name__ == "__main__":
    tntest.main(globals())
