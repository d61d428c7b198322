"""Stress: 1,000 concurrent identified clients; one PUBLIC_TEXT reaches
all 999 others.  Prints the setup and delivery times and the memory of
the daemon's process tree (Rss/Pss sums from smaps_rollup, hub VmHWM)."""

import sys
import os
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest import stress  # noqa: E402
from tntest.stress import figure, note
import tntest  # noqa: E402
from tntest import Server, compact, req, resp
from tntest.steps import pool_settled  # noqa: E402

N = int(os.environ.get("TN_STRESS_CLIENTS", "1000"))


def test_thousand_clients_one_public_text():
    stress.raise_nofile(2 * N + 200)
    stress.need_processes(N)
    names = ["u%04d" % i for i in range(N)]
    newuser = {compact(tntest.new_user(n))[:-1]: n for n in names}
    ok_id = {compact(resp("IDENTIFY", "SUCCESS", n))[:-1]: n for n in names}
    text = "one for all %d" % time.monotonic_ns()
    public = compact(tntest.public_from(names[0], text))[:-1]
    st = {"identified": 0, "newuser": 0, "public": 0, "t_pub": {},
          "bad": []}

    def on_line(c, raw):
        if raw in newuser:
            st["newuser"] += 1
            return
        if raw == public:
            st["public"] += 1
            st["t_pub"][c.idx] = time.monotonic()
            if c.idx == 0:
                st["bad"].append("the sender got its own PUBLIC_TEXT")
            return
        if ok_id.get(raw) == c.name:
            st["identified"] += 1
            return
        if len(st["bad"]) < 20:
            st["bad"].append("%r got %r" % (c, raw[:200]))

    def on_eof(c):
        st["bad"].append("%r: connection closed by the server" % c)

    with Server("--max-clients", str(N + 100)) as s:
        hub = s.hub_pid()
        mem0 = stress.tree_memory(s)
        pool = stress.Pool(s.port, on_line, on_eof)
        try:
            t0 = time.monotonic()
            for n in names:
                c = pool.connect(n)
                c.send(req("IDENTIFY", username=n))
                pool.poll(0)
            t_conn = time.monotonic() - t0
            t_id, t_settled, want_nu = pool_settled(
                pool, st, N, "identified", "newuser", t0, 120)
            workers = len(s.children()) - 1
            assert workers == N, "expected %d workers, have %d" % (N, workers)
            mem1 = stress.tree_memory(s)

            sender = pool.conns[0]
            t1 = time.monotonic()
            sender.send(req("PUBLIC_TEXT", text=text))
            pool.run_until(lambda: st["public"] >= N - 1 or st["bad"], 30,
                           what=lambda: "PUBLIC_TEXT_FROM at all %d others "
                           "(have %d)" % (N - 1, st["public"]))
            t_del = time.monotonic() - t1
            times = sorted(v - t1 for v in st["t_pub"].values())
            # Nothing more for anyone (the sender included).
            pool.pump_for(0.5)
            assert not st["bad"], st["bad"]
            assert st["public"] == N - 1, st["public"]
            assert sum(1 for c in pool.conns if c.buf) == 0, "partial lines"
            mem2 = stress.tree_memory(s)
            assert tntest.pid_alive(hub) and s.titled("talknetd: hub") == [hub]
        finally:
            pool.close_all()

    peak = max((mem1, mem2), key=lambda m: m["pss_sum_kb"])
    figure("thousand.clients", N)
    figure("thousand.connect_time", "%.2f" % t_conn, "s")
    figure("thousand.identify_time", "%.2f" % t_id, "s")
    figure("thousand.setup_time", "%.2f" % t_settled,
           "s (all identified and all %d NEW_USER delivered)" % want_nu)
    figure("thousand.delivery_time", "%.1f" % (t_del * 1000),
           "ms (PUBLIC_TEXT to all %d others; median %.1f ms, first %.1f ms)"
           % (N - 1, times[len(times) // 2] * 1000, times[0] * 1000))
    figure("thousand.idle_tree", "Rss sum %d kB, Pss sum %d kB (%d procs)"
           % (mem0["rss_sum_kb"], mem0["pss_sum_kb"], mem0["procs"]))
    figure("thousand.peak_tree", "Rss sum %d kB, Pss sum %d kB (%d procs)"
           % (peak["rss_sum_kb"], peak["pss_sum_kb"], peak["procs"]))
    figure("thousand.pss_per_client", "%.1f kB"
           % ((peak["pss_sum_kb"] - mem0["pss_sum_kb"]) / N))
    figure("thousand.master_rss", "%s kB" % peak["master_rss_kb"])
    figure("thousand.hub", "VmRSS %s kB, VmHWM %s kB"
           % (mem2["hub_rss_kb"], mem2["hub_hwm_kb"]))


if __name__ == "__main__":
    tntest.main(globals())
