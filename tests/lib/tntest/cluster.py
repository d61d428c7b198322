"""The cluster fixture (issue 19): a redis-server of the test's own on a
free loopback port, persistence off, in its own directory, stopped by its
pid; nodes (Server with --cluster and a --node-id each) on it; and a
small RESP client to look at the keys (standard library only).

    with Redis() as r:
        a, b = nodes(r, 2)

Imported on demand: `from tntest import cluster`.  Without redis-server
the test skips (77)."""

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from . import runner
from .config import START_TIMEOUT, STOP_TIMEOUT, TALKNETD, TIMEOUT
from .daemon import Server, control_path, free_port
from .client import Client
from .procfs import ppid_map, descendants_of
from .proto import invitation, joined_room, req, resp
from .runner import Scoped, Skip, wait_until

REDIS_SERVER = shutil.which("redis-server")

# --cluster-ttl-ms: the daemon's default, and the one the tests that wait
# for a node to be reaped (or a heartbeat to go unanswered) give their
# nodes to wait half as long.  Not shorter: a hub held up by a busy
# machine (make -j2, sanitizers) must still beat within its TTL, or it
# is reaped when no test meant it.  The tests of the default TTL itself
# (test_cluster_core, test_cluster_failures's first) run without it.
DEFAULT_TTL_MS = 3000
FAST_TTL_MS = 1500
FAST_TTL = ("--cluster-ttl-ms", str(FAST_TTL_MS))


def reap_bound(ttl_ms=DEFAULT_TTL_MS):
    """A loose bound, in seconds, from a node's death to its reaping:
    its key lapses within ttl_ms, and a survivor's next heartbeat (every
    third of it) reaps it; twice that, for a loaded machine (8 s for the
    default TTL, as the tests always allowed)."""
    return 2 * (ttl_ms + ttl_ms / 3) / 1000


def _encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if not isinstance(a, bytes):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class RedisError(Exception):
    pass


class Conn:
    """One RESP connection: cmd("HGETALL", key) -> the decoded reply
    (bytes for strings, int, list, None; an error reply raises)."""

    def __init__(self, port, timeout=TIMEOUT, password=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.f = self.sock.makefile("rb")
        if password is not None:
            self.cmd("AUTH", password)

    def send(self, *args):
        self.sock.sendall(_encode(args))

    def read(self):
        line = self.f.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RedisError("bad reply line %r" % line)

    def cmd(self, *args):
        self.send(*args)
        return self.read()

    def close(self):
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass


class Redis(Scoped):
    """redis-server on 127.0.0.1:<free port>, no persistence, its files
    in a directory of its own; the runner kills it at the end of the test
    if the test did not stop it."""

    def __init__(self, *extra, port=None, password=None, keep=False):
        if REDIS_SERVER is None:
            raise Skip("redis-server not installed (Debian: redis-server)")
        self.dir = tempfile.mkdtemp(prefix="tnredis-")
        self.port = port or free_port()
        self.extra = list(extra)
        self.password = password
        # keep: it outlives the test (a file's shared Redis), stopped by
        # its pid when the file's process exits.
        self.keep = keep
        if password is not None:
            self.extra += ["--requirepass", password]
        self.proc = None
        self.start()

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def start(self):
        argv = [REDIS_SERVER, "--port", str(self.port),
                "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", self.dir, "--daemonize", "no",
                "--logfile", os.path.join(self.dir, "redis.log")] + self.extra
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        if self.keep:
            atexit.register(self.end)
        else:
            runner.ctx().procs.append(self.proc)
        self.pid = self.proc.pid

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("redis-server exited with status %s"
                                     % self.proc.returncode)
            try:
                c = Conn(self.port, 0.5, self.password)
            except OSError:
                return False
            try:
                return c.cmd("PING") == b"PONG"
            except (OSError, RedisError):
                return False
            finally:
                c.close()
        wait_until(up, START_TIMEOUT, interval=0.05,
                   what="redis-server on port %d" % self.port)
        return self

    def stop(self):
        """SIGTERM to its pid, and wait (SIGKILL after STOP_TIMEOUT)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.pid, signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def end(self):
        self.stop()
        shutil.rmtree(self.dir, True)

    def conn(self):
        return Conn(self.port, password=self.password)

    def cmd(self, *args):
        c = Conn(self.port, password=self.password)
        try:
            return c.cmd(*args)
        finally:
            c.close()

    def info(self, section):
        """INFO section as a dict of str to str."""
        out = {}
        for line in self.cmd("INFO", section).decode().splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k] = v
        return out


def node(redis, node_id, *opts, start=True):
    """A talknetd in the cluster of redis, as node node_id."""
    return Server("--cluster", redis.url, "--node-id", node_id, *opts,
                  start=start)


def nodes(redis, n, *opts, prefix="node"):
    """n nodes on redis, named node1 .. nodeN, each up and connected to
    Redis (its hub logged "cluster: ok")."""
    out = []
    for i in range(n):
        s = node(redis, "%s%d" % (prefix, i + 1), *opts)
        out.append(s)
    for s in out:
        s.wait_log(r"cluster: ok")
    return out


def wait_ok_again(server, count, timeout=10 * TIMEOUT):
    """Waits until server logged "cluster: ok" count times in all."""
    def enough():
        return server.log_text().count("cluster: ok") >= count
    wait_until(enough, timeout, interval=0.05,
               what="'cluster: ok' %d times" % count)


def users_of(c):
    """USERS' answer (a dict of name to status); presence lines that
    come first (NEW_USER from another node) are skipped."""
    c.send(req("USERS"))
    for _ in range(1000):
        m = c.recv()
        if m.get("type") == "USER_LIST":
            return m["users"]
    raise AssertionError("no USER_LIST")


def know_all(clients, names, timeout=3 * TIMEOUT):
    """Waits until USERS of each client lists every one of names (the
    other nodes' streams were read), then drains each of the NEW_USER
    lines that came meanwhile."""
    for cl in clients:
        wait_until(lambda: set(users_of(cl)) >= set(names), timeout,
                   what="every user known")
    for cl in clients:
        cl.drain()


def one_user_each(nodes, names):
    """One client identified on each node as names, in turn, once every
    one of them knows all the others (their NEW_USER lines drained)."""
    clients = [Client(n).identify(name) for n, name in zip(nodes, names)]
    know_all(clients, names)
    return clients


def room_with(owner, room, *members):
    """owner makes room and invites members, each on any node; they
    join in turn, and every member so far sees each JOINED_ROOM."""
    owner.send(req("NEW_ROOM", roomname=room))
    owner.expect(resp("NEW_ROOM", "SUCCESS", room))
    owner.send(req("INVITE", roomname=room,
                   usernames=[m.name for m in members]))
    joined = [owner]
    for m in members:
        m.expect(invitation(owner.name, room), 3 * TIMEOUT)
        m.send(req("JOIN_ROOM", roomname=room))
        m.expect(resp("JOIN_ROOM", "SUCCESS", room))
        for j in joined:
            j.expect(joined_room(room, m.name), 3 * TIMEOUT)
        joined.append(m)
        # m's node may read an earlier join only after m's own, and then
        # tells m of it (it learnt of it later): once m sees every member
        # so far, any such line has come, and is skipped here.
        wait_room(m, room, {j.name: "ACTIVE" for j in joined})


def now():
    return time.monotonic()


def wait_users(c, want, timeout=3 * TIMEOUT):
    """Asks USERS until it is want (a dict of name to status)."""
    deadline = time.monotonic() + timeout
    while True:
        got = users_of(c)
        if got == want or time.monotonic() >= deadline:
            assert got == want, (got, want)
            return
        time.sleep(0.05)


def two_nodes(r, on_a, on_b, *opts):
    """Two nodes on r (with the options opts), a client identified on the
    first for each name of on_a and on the second for each of on_b, once
    the last of on_b lists them all: (a, b, the clients by name)."""
    a, b = nodes(r, 2, *opts)
    cl = {n: Client(a).identify(n) for n in on_a}
    cl.update({n: Client(b).identify(n) for n in on_b})
    wait_users(cl[on_b[-1]], {n: "ACTIVE" for n in cl})
    return a, b, cl


def stream_len(r, node_id):
    """How many entries node_id's stream holds."""
    return int(r.cmd("XLEN", "tn:stream:" + node_id))


def sigcont(pid):
    """SIGCONT to a process just killed, which its master may have
    reaped already."""
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


def new_hub(server, old):
    """Waits for the hub the master starts after old; its pid."""
    wait_until(lambda: server.hub_pid() != old, 3 * TIMEOUT,
               what="a new hub")
    return server.hub_pid()


TAILS_HEAD = 8 + 4 + 4 + 48     # struct shm_tails before tail[]


def kill_hub_with_tails(server, edit):
    """Stops server's hub, lets edit(f, row) change the table's places in
    the streams (row: the offset of tail[0]), kills the hub, and returns
    the next one's pid.  server is node2 of two: node1 is a row of "show
    cluster" first, then node2's tail[0]."""
    hub = server.hub_pid()
    f = hub_table(server)
    head = f.read(64 * 1024)
    at = head.rfind(b"node1\0")
    assert at > 0, "no tail of node1 in the table's header"
    os.kill(hub, signal.SIGSTOP)
    try:
        edit(f, at)
        f.flush()
    finally:
        f.close()
        os.kill(hub, signal.SIGKILL)
        sigcont(hub)
    return new_hub(server, hub)


RESUMED = r"cluster: reading on from where the last hub stopped"


def resumes(server):
    """How many hubs of server read on from the dead one's place."""
    return len(re.findall(RESUMED, server.log_text()))


def room_users(c, room):
    """ROOM_USERS' answer (a dict), other lines skipped."""
    c.send(req("ROOM_USERS", roomname=room))
    for _ in range(1000):
        m = c.recv()
        if m.get("type") == "ROOM_USER_LIST":
            return m["users"]
    raise AssertionError("no ROOM_USER_LIST")


def wait_room(c, room, want, timeout=3 * TIMEOUT):
    """Asks ROOM_USERS until it is want."""
    deadline = time.monotonic() + timeout
    while True:
        got = room_users(c, room)
        if got == want or time.monotonic() >= deadline:
            assert got == want, (got, want)
            return
        time.sleep(0.05)


def cluster_built():
    """True if talknetd knows --cluster (built with hiredis)."""
    p = subprocess.run([TALKNETD, "-h"], capture_output=True, timeout=10)
    return b"--cluster" in p.stdout + p.stderr


def need_cluster():
    """Skips a test outside tests/cluster/ when talknetd has no --cluster."""
    if not cluster_built():
        raise Skip("talknetd built without hiredis (no --cluster)")


def hub_table(server):
    """The hub's writable mapping of the table (its name is unlinked),
    opened through /proc/PID/map_files as a read-write file."""
    hub = server.hub_pid()
    with open("/proc/%d/maps" % hub) as maps:
        for line in maps:
            f = line.split()
            if len(f) > 5 and f[5].startswith("/dev/shm/talknetd.") and \
                    f[1].startswith("rw"):
                try:
                    return open("/proc/%d/map_files/%s" % (hub, f[0]),
                                "r+b")
                except PermissionError:
                    raise Skip("cannot open the hub's mapping")
    raise AssertionError("no writable table among the hub's mappings")


# ---------------------------------------------------------------------------
# The suite's fixture: one Server that stands for three nodes

_shared = []


def _shared_redis():
    """The redis-server every Cluster of this process uses in turn
    (started again if a test stopped or killed it): one per test would
    cost a start and a stop, a fifth of a second, each time."""
    if not _shared or _shared[0].proc.poll() is not None:
        _shared[:] = [Redis(keep=True)]
    return _shared[0]


def _each(nodes, f):
    """f(node) for every node at once (each waits on its own daemon);
    the first exception is raised again here."""
    errs = []

    def run(n):
        try:
            f(n)
        except BaseException as e:  # noqa: B902 (raised again below)
            errs.append(e)
    ts = [threading.Thread(target=run, args=(n,)) for n in nodes]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errs:
        raise errs[0]


class _Node(Server):
    """One node of a Cluster: its argv is the cluster's (so that a test's
    subclass of Server, which edits argv, edits every node's) plus the
    node's own options."""

    def __init__(self, cluster, node_id, listen, env):
        self.cluster = cluster
        self.node_id = node_id
        super().__init__("--cluster", "%s/%d" % (cluster.redis.url,
                                                 cluster.db),
                         "--node-id", node_id, listen=listen, env=env,
                         start=False)

    def argv(self):
        return self.cluster.argv() + self.opts

    def descendants(self):
        # At the cluster's stop, one scan of /proc serves every node.
        return descendants_of(self.pid, self.cluster.ppids)


# What a node refused at start exits with (EX_TEMPFAIL).
EXIT_CLUSTER = 75


def start_refused(url, node_id, *opts):
    """Runs a node on redis url that is expected to be refused at start:
    (its exit status, its stderr as bytes)."""
    p = subprocess.run(
        [TALKNETD, "-f", "-l", "127.0.0.1:0", "--control", control_path(),
         "--cluster", url, "--node-id", node_id, *opts],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=10 * TIMEOUT)
    return p.returncode, p.stderr


class Cluster(Server):
    """Server(*opts) as N nodes (three by default) on a redis-server (one
    for the whole process, a database of its own emptied first): each
    new Client, and each read of .port, goes to the next node in turn,
    so the clients of a test spread over the nodes.  The rest of
    Server's face: pid and hub_pid are the first node's (a signal sent
    to pid reaches one node), log, log_text and wait_log cover every
    node, worker_pid finds the node of the client's connection, stop
    stops every node.  The nodes are Servers of the test (the runner
    stops them, checks them and prints their logs); this object is
    not."""

    N = 3
    runs = 0    # node ids differ from one test to the next
    live = []   # the Clusters not stopped yet, each on its database

    def __init__(self, *opts, listen=("127.0.0.1:0",), start=True,
                 env=None):
        # Server.__init__ is not called: this is no daemon of its own.
        self.opts = list(opts)
        self.listen = list(listen)
        self.env = env
        self.problems = []
        self.stopped = False
        self.turn = 0
        self.ppids = None
        self.redis = _shared_redis()
        # A database of its own while it runs (a test may run two), and
        # emptied of what an earlier test's nodes left in it.
        for c in [c for c in Cluster.live
                  if all(n.stopped for n in c.nodes)]:
            # Its nodes were stopped by the runner, not by its stop().
            c._redis_conn.close()
            Cluster.live.remove(c)
        used = [c.db for c in Cluster.live]
        self.db = min(set(range(16)) - set(used))
        Cluster.live.append(self)
        self._redis_conn = self.redis.conn()
        self._redis_conn.cmd("SELECT", self.db)
        self._redis_conn.cmd("FLUSHDB")
        Cluster.runs += 1
        self.nodes = []
        for i in range(self.N):
            nid = "n%d-%d" % (i + 1, Cluster.runs)
            self.nodes.append(_Node(self, nid, self.listen, env))
        self.node_ids = [n.node_id for n in self.nodes]
        self.readers = {"talknetd:%s:streams" % n for n in self.node_ids}
        if start:
            self.start()

    def start(self):
        _each(self.nodes, lambda n: n.start())
        for n in self.nodes:
            n.wait_log(r"cluster: ok")
        self.settle()
        return self

    # -- where clients go

    @property
    def port(self):
        """The next node's port, once every node read what the others
        wrote: a client that connects now sees the cluster as a client
        of one node would see that node (the cross-node path is
        asynchronous: without this, a newcomer on C could still get the
        DISCONNECTED of a user that B's clients saw leave before it
        came)."""
        self.settle()
        n = self.nodes[self.turn % len(self.nodes)]
        self.turn += 1
        return n.port

    def _reading(self):
        """Whether every node's streams connection is blocked in XREAD:
        it read every stream to its end and applied what it read (a
        hub applies a reply before it reads again)."""
        # A node that is gone waits for nothing (the test fails elsewhere).
        if self.stopped or not all(n.alive() for n in self.nodes):
            return True
        blocked = 0
        for line in self._redis_conn.cmd("CLIENT", "LIST").decode() \
                .splitlines():
            f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
            if f.get("name") in self.readers and \
                    "b" in f.get("flags", "") and f.get("cmd") == "xread":
                blocked += 1
        return blocked == len(self.nodes)

    def _written(self):
        """What the nodes have written so far: each node's stream's last
        entry and the number of names claimed."""
        c = self._redis_conn
        return ([c.cmd("XREVRANGE", "tn:stream:%s" % n, "+", "-", "COUNT",
                       "1") for n in self.node_ids],
                c.cmd("HLEN", "tn:names"))

    def settle(self, timeout=3 * TIMEOUT):
        """Waits until every node has read and applied everything the
        others wrote to Redis so far: every node blocked in XREAD before
        and after a short gap in which nothing new was written.  A
        node's write may still be on its way to Redis when its own
        clients already saw what it tells of (a user's DISCONNECTED, and
        the release of the name)."""
        def still():
            before = self._written()
            if not self._reading():
                return False
            time.sleep(0.003)
            return self._reading() and self._written() == before
        wait_until(still, timeout, interval=0.005,
                   what="every node reading the others' streams")

    def node_of(self, client):
        """The node a client's connection went to."""
        port = client.sock.getpeername()[1]
        for n in self.nodes:
            if port in [p for _, p in n.addrs]:
                return n
        raise AssertionError("%r is on none of the nodes" % client)

    # -- the first node's process

    @property
    def pid(self):
        return self.nodes[0].pid

    @property
    def proc(self):
        return self.nodes[0].proc

    @property
    def addrs(self):
        return self.nodes[0].addrs

    def hub_pid(self, timeout=TIMEOUT):
        return self.nodes[0].hub_pid(timeout)

    def children(self):
        return self.nodes[0].children()

    def terminate(self, timeout=5):
        for n in self.nodes[1:]:
            n.terminate(timeout)
        return self.nodes[0].terminate(timeout)

    # -- every node

    def descendants(self):
        return [p for n in self.nodes for p in n.descendants()]

    def titled(self, title):
        return [p for n in self.nodes for p in n.titled(title)]

    def worker_pid(self, client, timeout=TIMEOUT):
        return self.node_of(client).worker_pid(client, timeout)

    def alive(self):
        return all(n.alive() for n in self.nodes)

    @property
    def log(self):
        return [line for n in self.nodes for line in n.log]

    def log_text(self):
        return "\n".join(n.log_text() for n in self.nodes)

    def wait_log(self, pattern, timeout=TIMEOUT):
        """The first match of pattern in any node's log, within timeout."""
        rx = re.compile(pattern)

        def found():
            for n in self.nodes:
                m = rx.search(n.log_text())
                if m:
                    return m
            return None
        return wait_until(found, timeout, interval=0.02,
                          what="a log line matching %r" % pattern)

    def stop(self, expect_status=0):
        if not self.stopped:
            self.stopped = True
            # Its clients close first, as Server.stop does them.
            for cl in runner.ctx().clients:
                if getattr(cl, "server", None) is self:
                    cl.close()
            # At once: each waits for its master's exit.
            self.ppids = ppid_map()
            _each(self.nodes, lambda n: n.stop(expect_status))
            self.ppids = None
            self._redis_conn.close()
            Cluster.live.remove(self)
        return self.log_text()

    def end(self):
        self.stop()

    def check_sanitizers(self):
        for n in self.nodes:
            n.check_sanitizers()
