#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_ipc (tests/fuzz/corpus-ipc/).

Each seed is the two control bytes of fuzz_ipc.c (read pattern, limits)
followed by frames as a worker sends them to the hub: the 16-byte header
of src/daemon/ipc.h in host byte order, then the payload.  Run it from anywhere;
it rewrites the seeds next to it.
"""
import os
import struct

IPC_VERSION = 2
IPC_REQ_BASE = 0x0100
IPC_HELLO = 0x0180
IPC_SLOT_NEW = 0xFFFFFFFF
(IDENTIFY, STATUS, USERS, TEXT, PUBLIC_TEXT, NEW_ROOM, INVITE, JOIN_ROOM,
 ROOM_USERS, ROOM_TEXT, LEAVE_ROOM, DISCONNECT) = range(1, 13)
LIMITS = 0xF7           # max_name 8, max_room 16: the protocol defaults


def frame(ftype, payload=b"", seq=0, version=IPC_VERSION, peer=0):
    return struct.pack("=HHIII", version, ftype, len(payload), peer,
                       seq) + payload


def hello(addr=b"127.0.0.1:40000", slot=IPC_SLOT_NEW):
    return frame(IPC_HELLO, struct.pack("=II64s", slot, 0, addr))


def req(msg, strs, seq):
    payload = b"".join(struct.pack("=I", len(s)) + s for s in strs)
    return frame(IPC_REQ_BASE + msg, payload, seq)


def seed(mode, *frames, limits=LIMITS):
    return bytes([mode, limits]) + b"".join(frames)


def main():
    ident = req(IDENTIFY, [b"alice"], 1)
    after = {
        "status": req(STATUS, [b"AWAY"], 2),
        "users": req(USERS, [], 2),
        "text": req(TEXT, [b"bob", b"hello \xe2\x82\xac"], 2),
        "public-text": req(PUBLIC_TEXT, [b"hi all"], 2),
        "new-room": req(NEW_ROOM, [b"lobby"], 2),
        "invite": req(INVITE, [b"lobby", b"bob", b"carol", b"d\xc3\xa9"],
                      2),
        "join-room": req(JOIN_ROOM, [b"lobby"], 2),
        "room-users": req(ROOM_USERS, [b"lobby"], 2),
        "room-text": req(ROOM_TEXT, [b"lobby", b"hello room"], 2),
        "leave-room": req(LEAVE_ROOM, [b"lobby"], 2),
        "disconnect": req(DISCONNECT, [], 2),
    }
    seeds = {
        "hello": seed(0, hello()),
        "hello-back": seed(1, hello(b"[::1]:5000", slot=3)),
        "identify": seed(2, hello(), ident),
        "bad-version": seed(0, frame(IPC_HELLO, b"",
                                     version=IPC_VERSION + 1)),
        "resent": seed(3, hello(), ident, ident, req(USERS, [], 2)),
        "disconnect-first": seed(0, hello(), req(DISCONNECT, [], 1)),
    }
    for i, (name, f) in enumerate(after.items()):
        seeds[name] = seed(i & 3, hello(), ident, f)
    seq = 2
    stream = [hello(), ident]
    for f in (req(NEW_ROOM, [b"r"], 0), req(INVITE, [b"r", b"bob"], 0),
              req(ROOM_TEXT, [b"r", b"x"], 0), req(LEAVE_ROOM, [b"r"], 0),
              req(DISCONNECT, [], 0)):
        hdr = bytearray(f)
        struct.pack_into("=I", hdr, 12, seq)
        stream.append(bytes(hdr))
        seq += 1
    seeds["session"] = seed(2, *stream)

    out = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "corpus-ipc")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(seeds.items()):
        with open(os.path.join(out, "seed-" + name + ".bin"), "wb") as fp:
            fp.write(data)


if __name__ == "__main__":
    main()
