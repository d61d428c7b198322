#!/usr/bin/env python3
"""A hostile worker (issue 6): a process that reaches the hub's socket
and speaks the worker protocol with lies in it.  The hub takes identity
from the channel, never from a frame: a forged peer field changes
nothing, a HELLO that claims another worker's row is refused, and a
request out of turn drops only the liar.  The real clients never see a
line they should not, and keep working."""

import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tnlib  # noqa: E402
from tnlib import req, new_user, public_from, expect_nothing  # noqa: E402

IPC_VERSION = 2
IPC_REQ_BASE = 0x0100
IPC_HELLO = 0x0180
IPC_LINE = 0x0200
IPC_IDENTIFIED = 0x0201
IPC_WELCOME = 0x0203
MSG_IDENTIFY = 1
MSG_PUBLIC_TEXT = 5
SLOT_NEW = 0xFFFFFFFF
HDR = struct.Struct("=HHIII")     # version, type, len, peer, seq


def hub_socket_path(s):
    """The hub's socket, found from the master's fds in /proc/net/unix."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % s.pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (s.pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    with open("/proc/net/unix") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            if len(cols) >= 8 and cols[6] in inodes and \
                    cols[7].endswith("/hub.sock"):
                return cols[7]
    raise AssertionError("no hub socket among the master's fds")


def frame(type_, payload=b"", peer=0, seq=0):
    return HDR.pack(IPC_VERSION, type_, len(payload), peer, seq) + payload


def strs(*items):
    return b"".join(struct.pack("=I", len(x)) + x for x in items)


def hello(slot, addr=b"evil"):
    return frame(IPC_HELLO, struct.pack("=II", slot, 0) +
                 addr.ljust(64, b"\0"))


class Liar:
    """A raw connection to the hub, as a worker would have."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(tnlib.TIMEOUT)
        self.sock.connect(path)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def next_frame(self):
        """(type, payload) of the next frame, or None at EOF."""
        while True:
            if len(self.buf) >= HDR.size:
                ver, type_, n, _, _ = HDR.unpack_from(self.buf)
                assert ver == IPC_VERSION, "hub sent version %d" % ver
                if len(self.buf) >= HDR.size + n:
                    p = self.buf[HDR.size:HDR.size + n]
                    self.buf = self.buf[HDR.size + n:]
                    return type_, p
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data

    def expect_dropped(self):
        """The hub closes the channel (frames before EOF are allowed)."""
        deadline = time.monotonic() + tnlib.TIMEOUT
        while time.monotonic() < deadline:
            try:
                if self.next_frame() is None:
                    return
            except ConnectionResetError:
                return
        raise AssertionError("the hub kept a lying channel open")

    def close(self):
        self.sock.close()


def _welcomed(liar):
    t, p = liar.next_frame()
    assert t == IPC_WELCOME, "expected WELCOME, got 0x%04x" % t
    return struct.unpack_from("=I", p)[0]


def test_forged_peer_field_changes_nothing():
    s = tnlib.Server()
    anna, bob = tnlib.connect_users(s, "anna", "bob")
    liar = Liar(hub_socket_path(s))
    liar.send(hello(SLOT_NEW))
    mine = _welcomed(liar)
    # Every frame claims to come from row 0, anna's or bob's: the hub
    # stamps the channel's own row.
    liar.send(frame(IPC_REQ_BASE + MSG_IDENTIFY, strs(b"mallory"),
                    peer=0, seq=1))
    t, p = liar.next_frame()
    while t == IPC_LINE:            # lines for its client may come first
        t, p = liar.next_frame()
    assert t == IPC_IDENTIFIED, "expected IDENTIFIED, got 0x%04x" % t
    ok, slot = struct.unpack("=II", p)
    assert ok == 1 and slot == mine, (ok, slot, mine)
    anna.expect(new_user("mallory"))
    bob.expect(new_user("mallory"))
    liar.send(frame(IPC_REQ_BASE + MSG_PUBLIC_TEXT, strs(b"I am anna"),
                    peer=0, seq=2))
    anna.expect(public_from("mallory", "I am anna"))
    bob.expect(public_from("mallory", "I am anna"))
    assert anna.users() == {"anna": "ACTIVE", "bob": "ACTIVE",
                            "mallory": "ACTIVE"}
    liar.close()
    anna.expect(tnlib.disconnected("mallory"))
    bob.expect(tnlib.disconnected("mallory"))


def test_hello_claiming_another_row_is_refused():
    s = tnlib.Server()
    anna, bob = tnlib.connect_users(s, "anna", "bob")
    path = hub_socket_path(s)
    # Whatever row it claims, it is not this process's: dropped, and the
    # row's owner never notices.
    for slot in range(4):
        liar = Liar(path)
        liar.send(hello(slot))
        liar.expect_dropped()
        liar.close()
    expect_nothing(anna, bob)
    anna.send(req("TEXT", username="bob", text="still here"))
    bob.expect(tnlib.text_from("anna", "still here"))
    s.wait_log(r"dropped: HELLO for a row that is not its own")


def test_requests_out_of_turn_drop_only_the_liar():
    s = tnlib.Server()
    anna, bob = tnlib.connect_users(s, "anna", "bob")
    path = hub_socket_path(s)
    # A request before HELLO.
    liar = Liar(path)
    liar.send(frame(IPC_REQ_BASE + MSG_PUBLIC_TEXT, strs(b"x"), seq=1))
    liar.expect_dropped()
    liar.close()
    # PUBLIC_TEXT without IDENTIFY: no user to send as.
    liar = Liar(path)
    liar.send(hello(SLOT_NEW))
    _welcomed(liar)
    liar.send(frame(IPC_REQ_BASE + MSG_PUBLIC_TEXT, strs(b"anon"), seq=1))
    liar.expect_dropped()
    liar.close()
    # A second HELLO on the same channel, and a skipped seq.
    for bad in (hello(SLOT_NEW) + hello(SLOT_NEW),
                hello(SLOT_NEW) + frame(IPC_REQ_BASE + MSG_IDENTIFY,
                                        strs(b"zed"), seq=7)):
        liar = Liar(path)
        liar.send(bad)
        liar.expect_dropped()
        liar.close()
    expect_nothing(anna, bob)
    assert anna.users() == {"anna": "ACTIVE", "bob": "ACTIVE"}
    bob.send(req("PUBLIC_TEXT", text="fine"))
    anna.expect(public_from("bob", "fine"))


if __name__ == "__main__":
    tnlib.main(globals())
