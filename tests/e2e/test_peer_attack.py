#!/usr/bin/env python3
"""Attacks on the peer layer (issue 17): one read/feed/dispatch/drop
path for the hub's worker channels and the master's control socket.  A
compromised worker cuts its frames at every byte, sends one exactly at
the length limit and one over, another version's header, good frames
then a bad one in one write, and ends in the middle of a frame; a
hostile talknetctl peer half-closes, pipelines, and fills every place.
Whatever comes before a bad frame runs, the liar alone is dropped, with
the reason, and everyone else keeps talking."""

import os
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../ops")
import tntest  # noqa: E402
from tntest import req, new_user, public_from, disconnected  # noqa: E402
from test_hostile_worker import (Liar, frame, strs, hello, _welcomed,  # noqa
                                 hub_socket_path, IPC_REQ_BASE, HDR,
                                 MSG_IDENTIFY, MSG_PUBLIC_TEXT, SLOT_NEW)
from test_ctl import frame as ctl_frame, raw_conn, closed_soon  # noqa: E402

T = tntest.TIMEOUT
MAX_LINE = 1024
MAX_FRAME = 2 * MAX_LINE + 4096          # hub.c: the hub's frame limit
CTL_MAX_REQUEST = 4096


def identify(name, seq=1):
    return frame(IPC_REQ_BASE + MSG_IDENTIFY, strs(name), seq=seq)


def public(text, seq):
    return frame(IPC_REQ_BASE + MSG_PUBLIC_TEXT, strs(text), seq=seq)


def mallory_in(s, anna, split=False):
    """A liar that said HELLO and IDENTIFY as mallory (anna saw it)."""
    liar = Liar(hub_socket_path(s))
    data = hello(SLOT_NEW) + identify(b"mallory")
    if split:
        for i in range(len(data)):
            liar.send(data[i:i + 1])
            time.sleep(0.001)
    else:
        liar.send(data)
    anna.expect(new_user("mallory"))
    return liar


def still_talking(s, anna, bob, text):
    """The master is the same, and a chat round trip works."""
    bob.send(req("PUBLIC_TEXT", text=text))
    anna.expect(public_from("bob", text))
    assert s.alive()


def test_frames_cut_at_every_byte():
    """Every frame sent one byte a write: each runs once it is whole."""
    s = tntest.Server()
    anna, bob = tntest.connect_users(s, "anna", "bob")
    liar = mallory_in(s, anna, split=True)
    data = public(b"one", 2) + public(b"two", 3)
    for i in range(len(data)):
        liar.send(data[i:i + 1])
        time.sleep(0.001)
    anna.expect(public_from("mallory", "one"))
    anna.expect(public_from("mallory", "two"))
    bob.expect(new_user("mallory"))
    bob.expect(public_from("mallory", "one"))
    bob.expect(public_from("mallory", "two"))
    liar.close()
    anna.expect(disconnected("mallory"))
    still_talking(s, anna, bob, "after")


def _dropped_for(s, anna, liar, why):
    liar.expect_dropped()
    anna.expect(disconnected("mallory"))
    s.wait_log(why)


def test_frame_at_the_limit_runs_one_over_drops():
    """A payload of exactly the hub's limit runs (the hub bounds frames,
    the worker lines); one byte more drops the liar for its length,
    before its payload arrives."""
    s = tntest.Server("--max-line", str(MAX_LINE))
    anna, bob = tntest.connect_users(s, "anna", "bob")
    liar = mallory_in(s, anna)
    text = b"x" * (MAX_FRAME - 4)
    at = frame(IPC_REQ_BASE + MSG_PUBLIC_TEXT, strs(text), seq=2)
    assert len(at) == HDR.size + MAX_FRAME
    liar.send(at)
    anna.expect(public_from("mallory", text.decode()))
    liar.close()
    anna.expect(disconnected("mallory"))
    assert "over the length limit" not in s.log_text()
    liar = mallory_in(s, anna)
    liar.send(frame(IPC_REQ_BASE + MSG_PUBLIC_TEXT,
                    strs(b"x" * (MAX_FRAME - 3)), seq=2)[:HDR.size])
    _dropped_for(s, anna, liar, "a frame over the length limit")
    still_talking(s, anna, bob, "after")


def test_other_version_drops_only_the_liar():
    """A header of the control protocol's version (1) or any other."""
    s = tntest.Server()
    anna, bob = tntest.connect_users(s, "anna", "bob")
    for version in (1, 3, 0xffff):
        liar = mallory_in(s, anna)
        bad = HDR.pack(version, IPC_REQ_BASE + MSG_PUBLIC_TEXT, 0, 0, 2)
        liar.send(bad)
        _dropped_for(s, anna, liar, "a frame of another IPC version")
        bob.expect(new_user("mallory"))
        bob.expect(disconnected("mallory"))
    still_talking(s, anna, bob, "after")


def test_good_frames_before_a_bad_one_run():
    """Good frames then a bad one in one write: the good ones run, in
    order, then the liar is dropped; its bytes after the bad one never
    run."""
    s = tntest.Server()
    anna, bob = tntest.connect_users(s, "anna", "bob")
    liar = mallory_in(s, anna)
    good = b"".join(public(b"m%d" % i, 2 + i) for i in range(20))
    bad = HDR.pack(7, 0, 0, 0, 0)
    liar.send(good + bad + public(b"never", 40))
    for i in range(20):
        anna.expect(public_from("mallory", "m%d" % i))
    _dropped_for(s, anna, liar, "a frame of another IPC version")
    tntest.expect_nothing(anna)
    still_talking(s, anna, bob, "after")


def test_eof_in_the_middle_of_a_frame():
    """A whole frame, half of the next, then the end: the whole one
    runs, the half is forgotten with the channel."""
    s = tntest.Server()
    anna, bob = tntest.connect_users(s, "anna", "bob")
    liar = mallory_in(s, anna)
    half = public(b"half of it", 3)
    liar.send(public(b"whole", 2) + half[:len(half) // 2])
    anna.expect(public_from("mallory", "whole"))
    liar.sock.shutdown(socket.SHUT_WR)
    anna.expect(disconnected("mallory"))
    liar.expect_dropped()
    tntest.expect_nothing(anna)
    still_talking(s, anna, bob, "after")


def _answer(c):
    data = b""
    c.settimeout(T)
    while True:
        try:
            d = c.recv(65536)
        except ConnectionResetError:
            break
        if not d:
            break
        data += d
    return data


def test_control_request_then_half_close():
    """talknetctl sends its request and half-closes: it gets its whole
    answer all the same."""
    s = tntest.Server()
    tntest.connect_users(s, "anna", "bob")
    c = raw_conn(s)
    c.sendall(ctl_frame([b"show", b"users"]))
    c.shutdown(socket.SHUT_WR)
    data = _answer(c)
    assert b"anna" in data and b"bob" in data, data


def test_control_request_at_the_limit_and_over():
    """A request of exactly CTL_MAX_REQUEST payload bytes is read and
    answered (an unknown command); one byte more closes it unanswered."""
    s = tntest.Server()
    anna, bob = tntest.connect_users(s, "anna", "bob")
    word = b"x" * (CTL_MAX_REQUEST - 4)
    c = raw_conn(s)
    c.sendall(ctl_frame([word]))
    data = _answer(c)
    assert len(data) > 0, "no answer to a request at the limit"
    c = raw_conn(s)
    c.sendall(ctl_frame([word + b"y"])[:8])
    assert closed_soon(c, T)
    assert _answer(c) == b""
    s.wait_log("a request too long")
    still_talking(s, anna, bob, "after")


def test_control_other_version_and_trailing_bytes():
    """The hub's IPC version on the control socket closes the peer; a
    request followed by bytes of another is answered once."""
    s = tntest.Server()
    anna, bob = tntest.connect_users(s, "anna", "bob")
    c = raw_conn(s)
    c.sendall(ctl_frame([b"show", b"stats"], version=2))
    assert closed_soon(c, T)
    s.wait_log("a frame of another version")
    c = raw_conn(s)
    c.sendall(ctl_frame([b"show", b"stats"]) + b"\x01\x00")
    data = _answer(c)
    assert b"uptime" in data, data
    still_talking(s, anna, bob, "after")


def test_all_places_taken_then_one_more():
    """Eight peers hold every place, one of them mid-request: a ninth,
    talknetctl, is answered; the place it took was an idle one's."""
    s = tntest.Server()
    anna, bob = tntest.connect_users(s, "anna", "bob")
    idle = [raw_conn(s) for _ in range(8)]
    idle[3].sendall(ctl_frame([b"show", b"stats"])[:5])
    time.sleep(0.2)
    c = raw_conn(s)
    c.sendall(ctl_frame([b"show", b"stats"]))
    data = _answer(c)
    assert b"uptime" in data, data
    s.wait_log("idle while all places were taken")
    gone = [i for i in range(8) if closed_soon(idle[i], 0.2)]
    assert len(gone) == 1, gone
    for i in range(8):
        idle[i].close()
    still_talking(s, anna, bob, "after")


if __name__ == "__main__":
    tntest.main(globals())
