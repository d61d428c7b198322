"""What /proc tells about processes: state, parent, title, children, open
files, sockets, memory.  The one reader of /proc for every test."""

import os
import re

# ---------------------------------------------------------------------------
# One process


def _read(path, mode="r"):
    """The whole file, or None if it cannot be read (the process is gone)."""
    try:
        with open(path, mode) as f:
            return f.read()
    except OSError:
        return None


def proc_stat(pid):
    """(state, ppid) of pid, or None if it does not exist."""
    data = _read("/proc/%d/stat" % pid, "rb")
    if data is None:
        return None
    data = data.decode("ascii", "replace")
    rest = data[data.rfind(")") + 2:].split()
    return rest[0], int(rest[1])


def cpu_ticks(pid):
    """utime + stime of pid in clock ticks (os.sysconf("SC_CLK_TCK")
    a second), or None if it is gone."""
    data = _read("/proc/%d/stat" % pid, "rb")
    if data is None:
        return None
    rest = data[data.rfind(b")") + 2:].split()
    return int(rest[11]) + int(rest[12])


def proc_title(pid):
    """The process title from /proc/PID/cmdline, trailing NULs/spaces
    stripped, inner NULs shown as spaces; None if the process is gone."""
    data = _read("/proc/%d/cmdline" % pid, "rb")
    if data is None:
        return None
    data = data.rstrip(b"\0 ").replace(b"\0", b" ").rstrip(b" ")
    return data.decode("utf-8", "replace")


# An idle worker forked ahead of its client (talknetd --min-spare).
SPARE_TITLE = "talknetd: worker (spare"


def is_spare(pid):
    """True if pid is an idle spare worker, not yet a client's."""
    return (proc_title(pid) or "").startswith(SPARE_TITLE)


def is_talknetd(pid):
    """True if pid's title names talknetd."""
    return "talknetd" in (proc_title(pid) or "")


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    st = proc_stat(pid)
    return st is not None and st[0] != "Z"


def _fields(path):
    """A "Key: value" file as {key: value string}; None if unreadable."""
    text = _read(path)
    if text is None:
        return None
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def proc_status(pid):
    """/proc/PID/status as {key: value string}; None if pid is gone."""
    return _fields("/proc/%d/status" % pid)


def status_kb(pid, field):
    """A "kB" field of /proc/PID/status (VmRSS, VmHWM...), or None."""
    v = (proc_status(pid) or {}).get(field)
    return int(v.split()[0]) if v else None


def smaps_rollup(pid):
    """(Rss, Pss) in kB from /proc/PID/smaps_rollup, or None."""
    kb = _fields("/proc/%d/smaps_rollup" % pid) or {}
    if "Rss" not in kb or "Pss" not in kb:
        return None
    return int(kb["Rss"].split()[0]), int(kb["Pss"].split()[0])


def sanitized(pid):
    """True if the process has a sanitizer runtime mapped (ASan, UBSan)."""
    maps = _read("/proc/%d/maps" % pid) or ""
    return "libasan" in maps or "libubsan" in maps or "libtsan" in maps


def memory_holds(pid, patterns):
    """Whether pid's anonymous memory (heap, stack, mappings of no file)
    holds any of patterns (bytes); None if it cannot be read here (a
    non-dumpable process without root)."""
    try:
        mem = open("/proc/%d/mem" % pid, "rb")
    except PermissionError:
        return None
    with mem, open("/proc/%d/maps" % pid) as maps:
        for line in maps:
            f = line.split()
            name = f[5] if len(f) > 5 else ""
            if not f[1].startswith("r") or name.startswith("/") or \
                    name in ("[vvar]", "[vdso]", "[vsyscall]"):
                continue
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except OSError:
                continue
            if any(p in data for p in patterns):
                return True
    return False


def shm_path(master_pid):
    """The table's name while the master creates it; it unlinks the name
    once the table is mapped, so the path exists only in /proc/PID/maps,
    marked " (deleted)"."""
    return "/dev/shm/talknetd.%d" % master_pid


def shm_mapped(master_pid):
    """True if the master maps its table and the name is gone."""
    shm = shm_path(master_pid)
    text = _read("/proc/%d/maps" % master_pid)
    if text is None:
        return False
    maps = [line for line in text.splitlines() if shm in line]
    return bool(maps) and not os.path.exists(shm) and \
        all(line.endswith(" (deleted)") for line in maps)


# ---------------------------------------------------------------------------
# Open files and sockets

def fd_targets(pid):
    """{fd: readlink target} of pid's open files."""
    out = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out[int(fd)] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            pass
    return out


def nfds(pid):
    """How many files pid has open."""
    return len(os.listdir("/proc/%d/fd" % pid))


def socket_inodes(pid):
    """The inodes (strings) of pid's sockets; empty if pid is gone."""
    try:
        targets = fd_targets(pid).values()
    except OSError:
        return set()
    return {m.group(1) for m in
            (re.match(r"socket:\[(\d+)\]$", t) for t in targets) if m}


def tcp_table(names=("/proc/net/tcp",)):
    """The rows of /proc/net/tcp (and tcp6 if named), each split in
    fields: [1] local, [2] remote, [3] state, [9] inode."""
    rows = []
    for name in names:
        text = _read(name)
        if text is not None:
            rows += [line.split() for line in text.splitlines()[1:]]
    return rows


def listening_ports(pid):
    """TCP ports on which pid holds a listening socket (IPv4 and IPv6)."""
    inodes = socket_inodes(pid)
    if not inodes:
        return set()
    return {int(f[1].rsplit(":", 1)[1], 16)
            for f in tcp_table(("/proc/net/tcp", "/proc/net/tcp6"))
            if f[3] == "0A" and f[9] in inodes}    # LISTEN


def socket_holders(pids, server_port, client_port):
    """PIDs among pids holding the server side of 127.0.0.1:client_port."""
    want = ("0100007F:%04X" % server_port, "0100007F:%04X" % client_port)
    inode = None
    for f in tcp_table():
        if (f[1], f[2]) == want:
            inode = f[9]
            break
    if not inode or inode == "0":
        return []
    return [p for p in pids if inode in socket_inodes(p)]


# ---------------------------------------------------------------------------
# Process trees

def all_pids():
    """Every PID in /proc."""
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def ppid_map():
    """{pid: ppid} of every process, from one scan of /proc."""
    m = {}
    for p in all_pids():
        st = proc_stat(p)
        if st:
            m[p] = st[1]
    return m


def children_of(pid, ppids=None):
    """Direct children of pid (zombies included)."""
    if ppids is None:
        ppids = ppid_map()
    return sorted(p for p, pp in ppids.items() if pp == pid)


def descendants_of(pid, ppids=None):
    """Every descendant of pid, from one scan of /proc (or ppids, one
    made for several trees)."""
    kids = {}
    if ppids is None:
        ppids = ppid_map()
    for p, pp in ppids.items():
        kids.setdefault(pp, []).append(p)
    out = []
    todo = [pid]
    seen = {pid}
    while todo:
        for k in kids.get(todo.pop(), []):
            if k not in seen:
                seen.add(k)
                out.append(k)
                todo.append(k)
    return sorted(out)


def tree_pids(pid):
    """pid's descendants, from /proc/PID/task/PID/children (recursively),
    plus a scan of every ppid, so nothing is missed."""
    out = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        text = _read("/proc/%d/task/%d/children" % (p, p)) or ""
        for k in (int(x) for x in text.split()):
            if k not in out:
                out.add(k)
                todo.append(k)
    out.update(descendants_of(pid))
    out.discard(pid)
    return sorted(out)
