"""Messages as protocol.md spells them (key order matters), and the checks
that every line the server sends gets: framing, encoding, compact JSON."""

import json


def compact(obj):
    """The exact bytes the server must send for obj (when no escapes
    differ)."""
    return json.dumps(obj, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8") + b"\n"


def req(type_, **fields):
    d = {"type": type_}
    d.update(fields)
    return d


def resp(operation, result, extra=None):
    d = {"type": "RESPONSE", "operation": operation, "result": result}
    if extra is not None:
        d["extra"] = extra
    return d


INVALID = resp("INVALID", "INVALID")
NOT_IDENTIFIED = resp("INVALID", "NOT_IDENTIFIED")


def new_user(name):
    return {"type": "NEW_USER", "username": name}


def new_status(name, status):
    return {"type": "NEW_STATUS", "username": name, "status": status}


def user_list(users):
    return {"type": "USER_LIST", "users": dict(users)}


def text_from(name, text):
    return {"type": "TEXT_FROM", "username": name, "text": text}


def public_from(name, text):
    return {"type": "PUBLIC_TEXT_FROM", "username": name, "text": text}


def invitation(name, room):
    return {"type": "INVITATION", "username": name, "roomname": room}


def joined_room(room, name):
    return {"type": "JOINED_ROOM", "roomname": room, "username": name}


def room_user_list(room, users):
    return {"type": "ROOM_USER_LIST", "roomname": room, "users": dict(users)}


def room_text_from(room, name, text):
    return {"type": "ROOM_TEXT_FROM", "roomname": room, "username": name,
            "text": text}


def left_room(room, name):
    return {"type": "LEFT_ROOM", "roomname": room, "username": name}


def disconnected(name):
    return {"type": "DISCONNECTED", "username": name}


def canon(obj):
    """A hashable, order-free form of a message, for multiset comparisons."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False)


# ---------------------------------------------------------------------------
# Checks of every line the server sends

class ProtocolError(AssertionError):
    pass


def _scan_compact(line):
    """Checks a JSON line (bytes, without "\\n") token by token: no
    whitespace between tokens; inside strings only the escapes the server
    may use: \\" \\\\ and escapes of control characters below 0x20."""
    in_str = False
    i = 0
    n = len(line)
    while i < n:
        c = line[i]
        if in_str:
            if c == 0x5C:  # backslash
                if i + 1 >= n:
                    raise ProtocolError("dangling backslash in %r" % line)
                e = line[i + 1]
                if e in b'"\\':
                    i += 2
                    continue
                if e in b"bfnrt":
                    i += 2
                    continue
                if e == 0x75:  # u
                    hexd = line[i + 2:i + 6]
                    try:
                        cp = int(hexd.decode("ascii"), 16)
                    except (ValueError, UnicodeDecodeError):
                        raise ProtocolError("bad \\u escape in %r" % line)
                    if cp >= 0x20:
                        raise ProtocolError(
                            "server escaped U+%04X, which protocol.md says "
                            "is sent as raw UTF-8: %r" % (cp, line))
                    i += 6
                    continue
                raise ProtocolError("server used escape \\%s, protocol.md "
                                    "sends it raw: %r" % (chr(e), line))
            if c == 0x22:
                in_str = False
            i += 1
            continue
        if c == 0x22:
            in_str = True
        elif c in b" \t\r\n":
            raise ProtocolError("whitespace between JSON tokens (not "
                                "compact): %r" % line)
        i += 1
    if in_str:
        raise ProtocolError("unterminated string in %r" % line)


def _no_dup_keys(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ProtocolError("duplicate key %r in server message" % k)
        d[k] = v
    return d


def check_line(raw):
    """Checks one server line (bytes ending in exactly one "\\n") and returns
    it parsed.  Raises ProtocolError on any deviation from protocol.md."""
    if not raw.endswith(b"\n"):
        raise ProtocolError("line without \\n: %r" % raw)
    body = raw[:-1]
    for b in body:
        if b < 0x20:
            raise ProtocolError("raw control byte 0x%02x in server line "
                                "(must be escaped; never \\0 or \\r): %r"
                                % (b, raw))
    try:
        text = body.decode("utf-8", errors="strict")
    except UnicodeDecodeError as e:
        raise ProtocolError("server sent invalid UTF-8 (%s): %r" % (e, raw))
    try:
        obj = json.loads(text, object_pairs_hook=_no_dup_keys)
    except ValueError as e:
        raise ProtocolError("server sent a line that is not JSON (%s): %r"
                            % (e, raw))
    if not isinstance(obj, dict):
        raise ProtocolError("server sent JSON that is not an object: %r" % raw)
    if not isinstance(obj.get("type"), str):
        raise ProtocolError("server message without a string type: %r" % raw)
    _scan_compact(body)
    return obj


def _has_ctrl_or_nested(obj):
    for v in obj.values():
        if isinstance(v, dict):
            return True
        if isinstance(v, str) and any(ord(ch) < 0x20 for ch in v):
            return True
    return False


def match(raw, got, expected):
    """Asserts that a received line equals the expected message.  Exact
    bytes when they are unambiguous; otherwise the same content with the
    same key order."""
    if isinstance(expected, (bytes, bytearray)):
        if raw != bytes(expected):
            raise AssertionError("expected line %r\n          got %r"
                                 % (bytes(expected), raw))
        return
    if raw == compact(expected):
        return
    if got != expected:
        raise AssertionError("expected %s\n     got %r"
                             % (compact(expected)[:-1].decode(), raw))
    if list(got.keys()) != list(expected.keys()):
        raise AssertionError("right content, wrong key order: expected %r, "
                             "got %r" % (list(expected.keys()), raw))
    if not _has_ctrl_or_nested(expected):
        raise AssertionError("right content, wrong bytes: expected %r, got %r"
                             % (compact(expected), raw))



def padded_identify(name, size):
    """An IDENTIFY line of exactly size bytes (with its "\\n"); the
    padding is an unknown key, which the server ignores."""
    head = '{"type":"IDENTIFY","username":"%s","pad":"' % name
    tail = '"}\n'
    n = size - len(head) - len(tail)
    assert n > 0
    line = (head + "x" * n + tail).encode()
    assert len(line) == size
    return line
