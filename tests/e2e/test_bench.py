"""talknet-bench against a real talknetd on loopback: the counts of each
workload (fanout public and in a room, private, connect, hold), the
server's process count, failures reported rather than hidden, charts,
usage errors, one meaning for each flag and the memory figures of hold,
every workload over TLS (--tls, through stunnel with a throwaway CA
made by the openssl CLI), and --nodes over two talknetd nodes of one
cluster (a redis-server of the test's own).  No test asserts a time or a rate, only
counts, consistency and shapes: the machine may be loaded."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
import tntest  # noqa: E402
from tntest import proc_title

BENCH = os.path.join(os.environ["TOP_BUILDDIR"], "src", "talknet-bench") \
    if os.environ.get("TOP_BUILDDIR") else \
    os.path.join(os.path.dirname(tntest.TALKNETD), "talknet-bench")
RUN_TIMEOUT = 30          # one bench run, far above what any run here needs
DRAIN = 5                 # ends as soon as every copy is in: costs no time
SVG_NS = "{http://www.w3.org/2000/svg}"
MEMINFO_KEYS = ("available", "anon", "page_tables", "kernel_stack", "slab",
                "shmem")
USAGE = 2
SETTLE_OFF = ["--settle", 0]  # hold waits for memory to settle: not here


class Server(tntest.Server):
    """talknetd without its pool of spare workers (--min-spare 0
    --max-spare 0): these tests hold talknet-bench's process counts
    and memory to what /proc shows, which an idle spare forked or
    retired during the run would blur.  tests/ops/test_spare_pool.py
    covers the pool."""

    def __init__(self, *opts, **kw):
        super().__init__("--min-spare", "0", "--max-spare", "0", *opts,
                         **kw)


def start(args):
    """Starts talknet-bench with args; the runner kills it if it stays."""
    if not os.access(BENCH, os.X_OK):
        raise tntest.Skip("talknet-bench not found at %s" % BENCH)
    return tntest.start_program([BENCH] + list(args))


def run(args, timeout=RUN_TIMEOUT):
    """Runs talknet-bench with args; returns (status, stdout, stderr)."""
    return tntest.finish_program(start(args), timeout)


def parse(out, err=""):
    """The one JSON object talknet-bench printed on stdout."""
    try:
        d = json.loads(out)
    except ValueError as e:
        raise AssertionError("stdout is not one JSON object (%s): %r; "
                             "stderr %r" % (e, out[:500], err[-1000:]))
    assert isinstance(d, dict), "JSON is not an object: %r" % out[:200]
    return d


def bench_json_out(server, *args, timeout=RUN_TIMEOUT):
    """A --json run that must exit 0 with ok true: (result, its stdout).
    server may be a list of nodes, given as --nodes."""
    where = ["-p", server.port] if not isinstance(server, list) else \
        ["--nodes", nodes_arg(server)]
    rc, out, err = run(where + ["--json", "--setup-timeout", 10]
                       + list(args), timeout)
    assert out.strip() or rc == 0, "exit %r and no JSON; stderr: %r" % (
        rc, err[:400])
    d = parse(out, err)
    assert rc == 0 and d.get("ok") is True and d.get("error") == "", \
        "exit %r, ok %r, error %r; stderr:\n%s" % (rc, d.get("ok"),
                                                   d.get("error"), err)
    return d, out


def nodes_arg(servers):
    """--nodes for servers: 127.0.0.1:PORT,..."""
    return ",".join("127.0.0.1:%s" % s.port for s in servers)


def bench_json(server, *args, timeout=RUN_TIMEOUT):
    """The result of bench_json_out alone."""
    return bench_json_out(server, *args, timeout=timeout)[0]


def dead_port():
    """A bound loopback socket that does not listen: connects are refused."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((tntest.LOOPBACK, 0))
    return s


def is_num(v):
    """True for a JSON number (not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_latency_shape(d):
    """Percentiles in order; the CDF climbs from (0, min) to (100, max)."""
    lat = d["latency_ms"]
    order = [lat[k] for k in ("min", "p50", "p90", "p99", "p999", "max")]
    assert order == sorted(order), "latency percentiles out of order: %r" \
        % lat
    cdf = d["cdf"]
    assert isinstance(cdf, list) and len(cdf) >= 2, "cdf: %r" % cdf
    for pt in cdf:
        assert isinstance(pt, list) and len(pt) == 2 and \
            all(is_num(v) for v in pt), "cdf point %r" % (pt,)
    assert cdf[0] == [0, lat["min"]], "cdf starts at %r, min %r" % (
        cdf[0], lat["min"])
    assert cdf[-1] == [100, lat["max"]], "cdf ends at %r, max %r" % (
        cdf[-1], lat["max"])
    for a, b in zip(cdf, cdf[1:]):
        assert a[0] <= b[0] and a[1] <= b[1], "cdf goes back: %r then %r" \
            % (a, b)


def check_fanout(d, clients, room):
    """Every copy of every message arrived once, in order, and timed."""
    assert d["workload"] == "fanout" and d["room"] is room, d
    assert d["setup"]["clients"] == clients, d["setup"]
    assert d["sent"] > 0, "nothing sent"
    assert d["expected"] == d["sent"] * (clients - 1), \
        "expected %r for %r sent to %d others" % (d["expected"], d["sent"],
                                                  clients - 1)
    assert d["delivered"] == d["expected"], "delivered %r of %r" % (
        d["delivered"], d["expected"])
    assert d["missing"] == 0 and d["misordered"] == 0, \
        "missing %r, misordered %r" % (d["missing"], d["misordered"])
    assert d["disconnects"] == 0 and d["server_errors"] == 0 and \
        d["foreign"] == 0, d
    assert d["delivered_pct"] == 100, d["delivered_pct"]
    assert d["latency_ms"]["count"] == d["delivered"], \
        "%r latencies for %r copies" % (d["latency_ms"]["count"],
                                        d["delivered"])
    check_latency_shape(d)


def test_fanout_public_every_copy_arrives():
    """fanout to everyone: N-1 copies of each message, all counted."""
    with Server() as s:
        d = bench_json(s, "fanout", "-c", 20, "-s", 2, "-r", 100, "-d", 1,
                       "--warmup", 0, "--drain", DRAIN)
        check_fanout(d, 20, False)
        assert d["senders"] == 2, d["senders"]


def test_fanout_room_every_copy_arrives():
    """fanout in one room: the same counts as to everyone."""
    with Server() as s:
        d = bench_json(s, "fanout", "--room", "-c", 20, "-s", 2, "-r", 100,
                       "-d", 1, "--warmup", 0, "--drain", DRAIN)
        check_fanout(d, 20, True)


def test_private_every_round_trip_comes_back():
    """private in pairs: each TEXT comes back once, and is timed."""
    with Server() as s:
        d = bench_json(s, "private", "-c", 4, "-r", 50, "-d", 1,
                       "--warmup", 0, "--drain", DRAIN)
        assert d["workload"] == "private" and d["senders"] == 2, d
        assert d["setup"]["clients"] == 4, d["setup"]
        assert d["sent"] > 0 and d["expected"] == d["sent"], d
        assert d["delivered"] == d["expected"] and d["missing"] == 0, d
        assert d["misordered"] == 0 and d["disconnects"] == 0, d
        assert d["latency_ms"]["count"] > 0, d["latency_ms"]
        assert d["latency_ms"]["count"] == d["delivered"], d["latency_ms"]
        check_latency_shape(d)


def test_connect_counts_every_connection():
    """connect: 200 connect, identify and disconnect, none fails."""
    with Server() as s:
        d = bench_json(s, "connect", "--connections", 200)
        assert d["connects"]["ok"] == 200, d["connects"]
        assert d["connects"]["failed"] == 0, d["connects"]
        assert d["setup"]["clients"] == 200, d["setup"]
        assert d["latency_ms"]["count"] == 200, d["latency_ms"]
        check_latency_shape(d)


def identified_workers(titles):
    """The titles of identified workers among {pid: title}."""
    return [t for t in titles.values()
            if t and t.startswith("talknetd: worker ")
            and "(unidentified)" not in t]


def test_hold_counts_master_hub_and_one_worker_per_client():
    """hold: server.procs is what /proc shows while the clients are held."""
    with Server() as s:
        args = ["-p", s.port, "--server-pid", s.pid, "--json", "hold",
                "-c", 20, "-d", 1] + SETTLE_OFF
        p = start(args)
        # Watch the tree while the bench holds its clients: keep the look
        # with the most identified workers (at the end, exiting workers
        # show no title while still counted).
        most, titles, best = 0, {}, -1
        deadline = time.monotonic() + RUN_TIMEOUT
        while p.poll() is None and time.monotonic() < deadline:
            kids = s.descendants()
            most = max(most, len(kids))
            look = {k: proc_title(k) for k in kids}
            n = len(identified_workers(look))
            if n > best:
                best, titles = n, look
            time.sleep(0.02)
        rc, out, err = tntest.finish_program(p, 5)
        d = parse(out, err)
        assert rc == 0 and d["ok"] is True, \
            "exit %r, error %r; stderr:\n%s" % (rc, d["error"], err)
        assert d["setup"]["clients"] == 20, d["setup"]
        workers = identified_workers(titles)
        hubs = [t for t in titles.values() if t == "talknetd: hub"]
        assert len(workers) == 20 and len(hubs) == 1 and most == 21, \
            "the master's descendants at most: %r" % titles
        assert d["server"]["pid"] == s.pid, d["server"]
        assert d["server"]["procs"] == 20 + 2 == most + 1, \
            "server.procs %r, /proc showed the master and %d descendants" \
            % (d["server"]["procs"], most)
        assert d["server"]["pss_kib"] > 0, d["server"]


class DefaultLimitsServer(Server):
    """A talknetd with its own default limits (16 clients per address)."""

    def argv(self):
        """The harness's command line without tntest.LIFT_LIMITS."""
        a = [tntest.TALKNETD, "-f"]
        for l in self.listen:
            a += ["-l", l]
        return a + self.opts


def test_per_address_limit_is_reported_as_a_failure():
    """hold -c 20 against the default cap of 16 fails, and says why."""
    with DefaultLimitsServer() as s:
        rc, out, err = run(["-p", s.port, "--json", "--setup-timeout", 10,
                            "hold", "-c", 20, "-d", 1] + SETTLE_OFF)
        s.wait_log(r"max-clients-per-ip")
        d = parse(out, err)
        assert rc != 0 and d["ok"] is False, \
            "exit %r and ok %r with the server refusing clients" % (
                rc, d["ok"])
        assert isinstance(d["error"], str) and d["error"].strip(), \
            "no error: %r" % d["error"]
        assert d["setup"]["clients"] < 20, d["setup"]
        # The table (on stderr with --json) leaves out the machine's
        # memory, which says nothing of a run cut short.
        assert "FAILED" in err and "memavail" not in err, err


def test_dead_port_fails_with_a_message():
    """Nothing listens: --json says ok false and why, exit 1, promptly."""
    with dead_port() as hole:
        port = hole.getsockname()[1]
        rc, out, err = run(["-p", port, "--json", "--setup-timeout", 5,
                            "fanout", "-c", 4, "-s", 1, "-r", 10, "-d", 1,
                            "--warmup", 0, "--drain", 1], timeout=20)
        d = parse(out, err)
        assert rc == 1, "exit %r; stderr %r" % (rc, err)
        assert d["ok"] is False, d
        assert "refused" in d["error"].lower(), "error: %r" % d["error"]
        assert "refused" in err.lower(), "stderr: %r" % err


def test_dead_port_message_on_stderr_without_json():
    """Nothing listens, plain output: exit 1, the reason on stderr."""
    with dead_port() as hole:
        port = hole.getsockname()[1]
        rc, out, err = run(["-p", port, "--setup-timeout", 5, "fanout",
                            "-c", 4, "-s", 1, "-r", 10, "-d", 1,
                            "--warmup", 0, "--drain", 1], timeout=20)
        assert rc == 1, "exit %r; stderr %r" % (rc, err)
        assert "refused" in err.lower(), \
            "the failure is not on stderr: stderr %r, stdout %r" % (err, out)


def test_connect_to_dead_port_is_a_failure():
    """connect where every connection is refused is not an ok run."""
    with dead_port() as hole:
        port = hole.getsockname()[1]
        rc, out, err = run(["-p", port, "--json", "connect", "--connections", 5,
                            "-d", 2, "--drain", 1], timeout=20)
        d = parse(out, err)
        assert d["connects"]["ok"] == 0, d["connects"]
        assert d["connects"]["ok"] + d["connects"]["failed"] == 5, \
            d["connects"]
        assert rc != 0 and d["ok"] is False and d["error"], \
            "0 of 5 connections, yet exit %r, ok %r, error %r" % (
                rc, d["ok"], d["error"])


def test_chart_of_two_results_is_svg():
    """--svg with two --compare results writes XML: an <svg>, two lines."""
    labels = ['fan <&> "one"', "private two"]
    with Server() as s, tempfile.TemporaryDirectory() as tmp:
        a = os.path.join(tmp, "a.json")
        b = os.path.join(tmp, "b.json")
        svg = os.path.join(tmp, "cdf.svg")
        for path, label, args in (
                (a, labels[0], ["fanout", "-c", 6, "-s", 1, "-r", 50]),
                (b, labels[1], ["private", "-c", 2, "-r", 20])):
            d, out = bench_json_out(s, "--label", label, *args, "-d", 1,
                                    "--warmup", 0, "--drain", DRAIN)
            assert d["label"] == label, d["label"]
            with open(path, "w") as f:
                f.write(out)            # as `talknet-bench --json > a.json`
        rc, out, err = run(["--svg", svg, "--compare", a, "--compare", b])
        assert rc == 0, "exit %r; stderr %r" % (rc, err)
        root = ET.parse(svg).getroot()
        assert root.tag in ("svg", SVG_NS + "svg"), root.tag
        lines = list(root.iter(SVG_NS + "polyline"))
        assert len(lines) == 2, "%d lines in the chart" % len(lines)
        for l in lines:
            assert len(l.get("points", "").split()) >= 2, l.attrib
        texts = [t.text for t in root.iter(SVG_NS + "text")]
        for label in labels:
            assert label in texts, "legend %r not in %r" % (label, texts)

        # A result pretty-printed by another tool still draws.
        pretty = os.path.join(tmp, "pretty.json")
        with open(a) as f, open(pretty, "w") as g:
            json.dump(json.load(f), g, indent=2)
        rc, out, err = run(["--svg", svg, "--compare", pretty])
        assert rc == 0, "pretty-printed: exit %r; stderr %r" % (rc, err)
        assert len(list(ET.parse(svg).getroot().iter(
            SVG_NS + "polyline"))) == 1

        # One that cannot be read is an error, though the rest is drawn.
        rc, out, err = run(["--svg", svg, "--compare", a, "--compare",
                            os.path.join(tmp, "missing.json")])
        assert rc == 1 and "missing.json" in err, \
            "unreadable --compare: exit %r; stderr %r" % (rc, err)
        assert len(list(ET.parse(svg).getroot().iter(
            SVG_NS + "polyline"))) == 1


def test_bad_options_exit_2_with_a_message():
    """Usage errors: status 2, a message on stderr, nothing on stdout."""
    with dead_port() as hole:
        port = hole.getsockname()[1]
        for args, word in ((["--clients", "0", "hold"], "--clients"),
                           (["-c", "abc", "fanout"], "abc"),
                           (["nope"], "nope"),
                           (["--proto", "nope", "hold"], "nope"),
                           (["-r", "0", "fanout"], "rate"),
                           (["-c", "2", "-s", "5", "fanout"], "senders"),
                           (["--compare", "x.json", "fanout"], "--svg"),
                           (["-H", "10.1.2.3", "hold"], "loopback"),
                           (["--nodes", "127.0.0.1:1", "hold"],
                            "--nodes takes the place"),
                           ([], "usage")):
            rc, out, err = run(["-p", port] + args, timeout=10)
            assert rc == USAGE, "%r: exit %r (want 2), stderr %r" % (
                args, rc, err)
            assert word in err, "%r: %r not in stderr %r" % (args, word, err)
            assert out == "", "%r: stdout %r" % (args, out)


def test_json_has_no_duplicate_keys():
    """Each key of the JSON result, at every level, appears once."""
    def no_dups(pairs):
        """A dict of pairs, or AssertionError on a repeated key."""
        keys = [k for k, _ in pairs]
        dups = sorted(set(k for k in keys if keys.count(k) > 1))
        assert not dups, "duplicate keys %r in %r" % (dups, keys)
        return dict(pairs)
    with Server() as s:
        rc, out, err = run(["-p", s.port, "--server-pid", s.pid, "--json",
                            "connect", "--connections", 5])
        assert rc == 0, "exit %r; stderr %r" % (rc, err)
        json.loads(out, object_pairs_hook=no_dups)


def check_meminfo(d):
    """meminfo_per_client_kib holds the six counters, all numbers."""
    m = d.get("meminfo_per_client_kib")
    assert isinstance(m, dict), "meminfo_per_client_kib: %r" % (m,)
    for k in MEMINFO_KEYS:
        assert k in m and is_num(m[k]), "meminfo_per_client_kib.%s: %r" % (
            k, m)


def test_hold_settle_0_takes_the_baseline_at_once():
    """--settle 0: settle_s is 0; outside hold settling is off by default."""
    with Server() as s:
        d = bench_json(s, "--server-pid", s.pid, "hold", "-c", 20, "-d", 1,
                       "--settle", 0)
        assert is_num(d.get("settle_s")) and d["settle_s"] == 0, \
            "settle_s: %r" % d.get("settle_s")
        assert isinstance(d.get("settled"), bool), "settled: %r" % (
            d.get("settled"),)
        check_meminfo(d)
        d = bench_json(s, "connect", "--connections", 10)
        assert is_num(d.get("settle_s")) and d["settle_s"] == 0, \
            "connect: settle_s %r" % d.get("settle_s")


def test_hold_settle_2_and_memory_per_client():
    """--settle 2 waits at most about 2 s; the memory counters are numbers.
    (Any bound under the default 30 s shows it is kept; on a busy
    machine the wait runs to it, so a short one costs little.)"""
    # Not their values: they are the whole machine's, and even KernelStack
    # per client went below 0 while other tests' workers exited (make -j).
    with Server() as s:
        d = bench_json(s, "--server-pid", s.pid, "hold", "-c", 20, "-d", 1,
                       "--settle", 2)
        assert is_num(d.get("settle_s")) and 0 <= d["settle_s"] <= 2 + 1, \
            "settle_s: %r" % d.get("settle_s")
        assert isinstance(d.get("settled"), bool), "settled: %r" % (
            d.get("settled"),)
        check_meminfo(d)
        assert d["server"]["procs"] == 22, d["server"]


def check_dist(dist, count):
    """A {count, min, p50, p99, max} of count samples, in order, above 0."""
    assert isinstance(dist, dict) and dist.get("count") == count, \
        "%r: count is not %r" % (dist, count)
    order = [dist[k] for k in ("min", "p50", "p99", "max")]
    assert all(is_num(v) for v in order) and order == sorted(order), \
        "out of order: %r" % dist
    assert order[0] > 0, "a time of 0: %r" % dist


def test_machine_prints_its_figures():
    """machine: forks, wake-ups and their CPU, the CPU model and kernel."""
    rc, out, err = run(["--json", "-q", "machine"])
    d = parse(out, err)
    assert rc == 0 and d["ok"] is True and d["error"] == "", (rc, d, err)
    assert d["workload"] == "machine", d
    assert isinstance(d["forks"], int) and d["forks"] > 0, d
    assert d["fork_per_s"] > 0 and d["fork_seconds"] > 0, d
    assert d["wakeup_rounds"] > 0, d
    assert 0 < d["wakeup_min_us"] <= d["wakeup_us"], d
    assert d["wakeup_cpu_us"] > 0, d
    assert d["cpus"] >= 1, d
    assert isinstance(d["cpu_model"], str) and d["cpu_model"], d
    assert d["kernel"].startswith("Linux "), d
    # Issue 20: the Unix-socket ping-pong's p50 and p99 beside it.
    assert 0 < d["pingpong_p50_us"] <= d["pingpong_p99_us"], d


def test_settle_waits_within_its_bound_and_says_how_it_ended():
    """settle: waits for MemAvailable and the CPUs to hold still, at
    most --settle seconds, and says whether it settled or hit the
    bound, with what it saw."""
    t0 = time.monotonic()
    rc, out, err = run(["--json", "--settle", "3", "settle"])
    took = time.monotonic() - t0
    d = parse(out, err)
    assert rc == 0 and d["ok"] is True, (rc, d, err)
    assert d["workload"] == "settle" and d["max_s"] == 3, d
    assert d["ended"] in ("settled", "bound"), d
    assert d["settled"] == (d["ended"] == "settled"), d
    assert 0 < d["settle_s"] <= 3.5 and took < 10, (d, took)
    assert d["memavail_range_kib"] >= 0 and 0 <= d["cpu_busy_pct"] <= 100, d


def test_join_times_every_newcomer():
    """join: 20 held, 5 newcomers timed, response before close in each."""
    with Server() as s:
        d = bench_json(s, "--server-pid", s.pid, "join", "-c", 20,
                       "--repeat", 5)
        assert d["workload"] == "join" and d["clients"] == 20, d
        assert d["setup"]["clients"] == 20 and d["steps"] == 5, d
        assert d["lost"] == 0 and d["server_errors"] == 0, d
        check_dist(d["join_ms"], 5)
        check_dist(d["response_ms"], 5)
        # Each newcomer's RESPONSE comes before its close: so do the
        # order statistics.
        for k in ("min", "p50", "p99", "max"):
            assert d["response_ms"][k] <= d["join_ms"][k], d
        assert d["server"]["procs"] >= 22, d["server"]
        assert is_num(d["server"]["cpu_us_per_join"]) and \
            d["server"]["cpu_us_per_join"] >= 0, d["server"]


def test_broadcast_every_copy_arrives():
    """broadcast: 2 texts to 20 held, each of the 19 copies once."""
    with Server() as s:
        d = bench_json(s, "--server-pid", s.pid, "broadcast", "-c", 20,
                       "--repeat", 2)
        assert d["workload"] == "broadcast" and d["steps"] == 2, d
        assert d["setup"]["clients"] == 20, d
        assert d["copies"] == {"expected": 38, "delivered": 38,
                               "duplicates": 0}, d["copies"]
        assert d["lost"] == 0 and d["server_errors"] == 0, d
        check_dist(d["last_copy_ms"], 2)
        assert is_num(d["server"]["cpu_us_per_copy"]) and \
            d["server"]["cpu_us_per_copy"] >= 0, d["server"]
        assert d["server"]["cpu_from"] in ("schedstat", "ticks"), d["server"]


class MuteServer:
    """A fake TalkNet server: IDENTIFY succeeds, nothing else is answered
    or relayed, and it never closes a connection itself."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((tntest.LOOPBACK, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        """Accepts and answers until stopped (bounded by the stop event)."""
        self.sock.settimeout(0.05)
        pending = {}
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
                c.setblocking(False)
                self.conns.append(c)
                pending[c] = b""
            except socket.timeout:
                pass
            for c in list(pending):
                try:
                    data = c.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    del pending[c]      # EOF: keep it open, say nothing
                    continue
                pending[c] += data
                while b"\n" in pending[c]:
                    line, pending[c] = pending[c].split(b"\n", 1)
                    m = json.loads(line)
                    if m.get("type") == "IDENTIFY":
                        c.sendall(json.dumps({
                            "type": "RESPONSE", "operation": "IDENTIFY",
                            "result": "SUCCESS",
                            "extra": m["username"]}).encode() + b"\n")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


def test_join_and_broadcast_fail_when_the_server_is_mute():
    """A server that relays nothing and never closes: both fail, promptly,
    and say why."""
    with MuteServer() as m:
        for args, word in ((["broadcast", "-c", 3, "--repeat", 1],
                            "copies"),
                           (["join", "-c", 3, "--repeat", 1], "not done")):
            rc, out, err = run(["-p", m.port, "--json", "--step-timeout", 1,
                                "--setup-timeout", 5] + args, timeout=20)
            d = parse(out, err)
            assert rc == 1 and d["ok"] is False, (rc, d, err)
            assert word in d["error"], "%r: error %r" % (args, d["error"])
            assert d["steps"] == 0, d


def test_duration_is_the_measured_phase_of_every_workload():
    """One --duration, one meaning: the measured phase of fanout, private,
    connect and hold lasts exactly that long (measured_s in the JSON).
    1 s is no workload's default (hold's is 2 s, the others' 10 s)."""
    dur = 1
    with Server() as s:
        # The four side by side: each times its own phase.
        runs = [(args[0], start(["-p", s.port, "--json", "--setup-timeout",
                                 10, "-d", dur] + args))
                for args in (["fanout", "-c", 4, "-s", 1, "-r", 20,
                              "--warmup", 0],
                             ["private", "-c", 2, "-r", 20, "--warmup", 0],
                             # More than 1 s can open: the duration ends it.
                             ["connect", "--connections", 50000,
                              "--concurrency", 2],
                             ["hold", "-c", 4] + SETTLE_OFF)]
        for wl, proc in runs:
            rc, out, err = tntest.finish_program(proc, RUN_TIMEOUT)
            d = parse(out, err)
            assert rc == 0 and d.get("ok") is True, (wl, rc, err[-400:])
            assert d["duration"] == dur, "%s: duration %r" % (
                wl, d["duration"])
            assert abs(d["measured_s"] - dur) < 1e-3, \
                "%s: -d %d measured %r s" % (wl, dur, d["measured_s"])
        assert d["clients"] == 4, "hold: clients %r" % d["clients"]


def test_drain_is_the_wait_for_what_is_in_flight():
    """One --drain, one meaning: with nothing ever answered, fanout,
    private and connect each wait that long after the measured phase;
    hold, with nothing in flight, takes no --drain at all.  1 s is not
    the default (5 s)."""
    drain = 1
    with MuteServer() as m:
        # The three side by side: each waits out its own drain.
        runs = [(args[0], start(["-p", m.port, "--json", "--setup-timeout",
                                 5, "-d", 1, "--drain", drain] + args))
                for args in (["fanout", "-c", 3, "-s", 1, "-r", 20,
                              "--warmup", 0],
                             ["private", "-c", 2, "-r", 20, "--warmup", 0],
                             ["connect", "--connections", 3])]
        for wl, proc in runs:
            rc, out, err = tntest.finish_program(proc, RUN_TIMEOUT)
            d = parse(out, err)
            assert d["drain"] == drain, (wl, d["drain"])
            assert d["drained_s"] >= drain, \
                "%s: --drain %d, waited %r s" % (wl, drain, d["drained_s"])
        rc, out, err = run(["-p", m.port, "--json", "hold", "-c", 3,
                            "-d", 1, "--drain", drain] + SETTLE_OFF)
        assert rc == USAGE and out == "" and "--drain" in err, (rc, err)


def test_a_flag_given_a_second_meaning_is_refused():
    """Where a workload once read a flag its own way, the flag is refused
    and the message names the flag that now has that meaning."""
    with dead_port() as hole:
        port = hole.getsockname()[1]
        for args, word in ((["connect", "-c", 5], "--connections"),
                           (["join", "-d", 5], "--repeat"),
                           (["broadcast", "--duration", 5], "--repeat"),
                           (["join", "--drain", 5], "--step-timeout"),
                           (["broadcast", "--drain", 5], "--step-timeout"),
                           (["hold", "--warmup", 1], "--warmup"),
                           (["private", "-s", 1], "--senders"),
                           (["fanout", "--connections", 5],
                            "--connections"),
                           (["fanout", "--step-timeout", 5],
                            "--step-timeout")):
            rc, out, err = run(["-p", port] + args, timeout=10)
            assert rc == USAGE and out == "", "%r: exit %r, stdout %r" % (
                args, rc, out)
            assert word in err, "%r: %r not in stderr %r" % (args, word,
                                                             err)


def test_join_fails_when_nothing_listens():
    """join against a dead port: exit 1, ok false, the reason given."""
    with dead_port() as hole:
        port = hole.getsockname()[1]
        rc, out, err = run(["-p", port, "--json", "--setup-timeout", 5,
                            "join", "-c", 2, "--repeat", 1], timeout=20)
        d = parse(out, err)
        assert rc == 1 and d["ok"] is False, (rc, d, err)
        assert "refused" in d["error"].lower(), d["error"]


def tls_built():
    """Whether talknet-bench speaks TLS; a build without must say so, 2."""
    with dead_port() as hole:
        rc, out, err = run(["--tls", "--insecure", "-p",
                            hole.getsockname()[1], "connect",
                            "--connections", 1], timeout=10)
    if rc == USAGE:
        assert "without TLS" in err and out == "", (rc, out, err)
        return False
    assert rc == 1, "--tls to a dead port: exit %r, stderr %r" % (rc, err)
    return True


def make_certs(d):
    """A throwaway CA and a server certificate for 127.0.0.1 in d."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes"]
    steps = [
        ["req", "-x509"] + ec + ["-keyout", "ca.key", "-out", "ca.pem",
                                 "-days", "1", "-subj", "/CN=bench-ca"],
        ["req"] + ec + ["-keyout", "key.pem", "-out", "req.pem",
                        "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", "req.pem", "-CA", "ca.pem", "-CAkey",
         "ca.key", "-CAcreateserial", "-days", "1", "-extfile", "ext.cnf",
         "-out", "cert.pem"]]
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for argv in steps:
        subprocess.run(["openssl"] + argv, cwd=d, check=True, timeout=30,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


def start_stunnel(d, backend):
    """stunnel in front of backend on a free port: (its process, port)."""
    port = tntest.free_port()
    conf = os.path.join(d, "stunnel.conf")
    with open(conf, "w") as f:
        f.write("foreground = yes\npid =\ndebug = 3\noutput = %s\n"
                "[tn]\naccept = %s:%d\nconnect = %s:%s\ncert = %s\n"
                "key = %s\n" % (os.path.join(d, "stunnel.log"),
                                 tntest.LOOPBACK, port, tntest.LOOPBACK,
                                 backend, os.path.join(d, "cert.pem"),
                                 os.path.join(d, "key.pem")))
    p = subprocess.Popen([shutil.which("stunnel4"), conf],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection((tntest.LOOPBACK, port), 1).close()
            return p, port
        except OSError:
            if p.poll() is not None:
                break
            time.sleep(0.05)
    p.kill()
    p.wait(5)
    raise AssertionError("stunnel did not listen on %d" % port)


def test_every_workload_over_tls():
    """--tls through stunnel: each workload counts as it does in clear;
    without --ca the throwaway CA is refused, with --insecure it is not."""
    if not tls_built():
        return
    for prog in ("openssl", "stunnel4"):
        if shutil.which(prog) is None:
            raise tntest.Skip("%s is not installed" % prog)
    d = tempfile.mkdtemp(prefix="bench-tls.")
    try:
        make_certs(d)
        with Server() as s:
            st, port = start_stunnel(d, s.port)
            try:
                check_tls_workloads(port, os.path.join(d, "ca.pem"))
            finally:
                st.kill()
                st.wait(5)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def check_tls_workloads(port, ca):
    """The counts of every workload against the TLS port."""
    class Tls:
        pass
    t = Tls()
    t.port = port
    tls = ("--tls", "--ca", ca)
    d = bench_json(t, *tls, "fanout", "--room", "-c", 10, "-s", 2,
                   "-r", 100, "-d", 1, "--warmup", 0, "--drain", DRAIN)
    check_fanout(d, 10, True)
    d = bench_json(t, *tls, "connect", "--connections", 20)
    assert d["connects"]["ok"] == 20 and d["connects"]["failed"] == 0, d
    assert d["latency_ms"]["count"] == 20, d["latency_ms"]
    d = bench_json(t, *tls, "private", "-c", 4, "-r", 50, "-d", 1,
                   "--warmup", 0, "--drain", DRAIN)
    assert d["sent"] > 0 and d["delivered"] == d["expected"] == d["sent"], d
    d = bench_json(t, *tls, "hold", "-c", 5, "-d", 1, *SETTLE_OFF)
    assert d["setup"]["clients"] == 5 and d["disconnects"] == 0, d
    d = bench_json(t, *tls, "join", "-c", 5, "--repeat", 2)
    assert d["ok"] is True, d
    d = bench_json(t, "--insecure", "--tls", "broadcast", "-c", 5,
                   "--repeat", 2)
    assert d["ok"] is True, d
    rc, out, err = run(["-p", port, "--json", "--setup-timeout", 10,
                        "--tls", "connect", "--connections", 2])
    d = parse(out, err)
    assert rc == 1 and d["ok"] is False, (rc, d, err)
    assert "TLS" in d["error"] or "TLS" in d.get("note", ""), d


def test_nodes_spread_every_workload_over_a_cluster():
    """--nodes over two talknetd nodes on one redis-server: clients go
    round robin (each node holds half, senders on both), fanout to
    everyone and in a room delivers every copy across the nodes, and
    each private pair, split over the two nodes, gets every round trip
    back."""
    from tntest import cluster
    cluster.need_cluster()
    with cluster.Redis() as r:
        a, b = cluster.nodes(r, 2)
        both = nodes_arg([a, b])
        for room in ([], ["--room"]):
            d = bench_json([a, b], "fanout", *room, "-c", 20, "-s", 4,
                           "-r", 100, "-d", 1, "--warmup", 0, "--drain",
                           DRAIN)
            check_fanout(d, 20, bool(room))
            assert d["nodes"] == 2 and d["address"] == both, d["address"]
        d = bench_json([a, b], "private", "-c", 6, "-r", 60, "-d", 1,
                       "--warmup", 0, "--drain", DRAIN)
        assert d["sent"] > 0 and d["missing"] == 0, d
        assert d["delivered"] == d["expected"] == d["sent"], d
        assert d["misordered"] == 0 and d["server_errors"] == 0, d
        d = bench_json([a, b], "connect", "--connections", 40)
        assert d["connects"]["ok"] == 40, d["connects"]
        assert d["connects"]["failed"] == 0, d["connects"]
        d = bench_json([a, b], "broadcast", "-c", 6, "--repeat", 2)
        assert d["ok"] is True and d["nodes"] == 2, d
        # A hold: while it holds, each node's name set in Redis has half.
        p = start(["--nodes", both, "hold", "-c", 10, "-d", 2,
                   "--setup-timeout", 10] + SETTLE_OFF)
        shares = []

        def split():
            shares[:] = [r.cmd("SCARD", "tn:names:%s" % n)
                         for n in ("node1", "node2")]
            return shares == [5, 5]
        tntest.wait_until(split, RUN_TIMEOUT, interval=0.05,
                          what="5 names on each node")
        rc, out, err = tntest.finish_program(p, RUN_TIMEOUT)
        assert rc == 0, (rc, err)


if __name__ == "__main__":
    tntest.main(globals())
