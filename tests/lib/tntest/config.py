"""Where the programs are, how long every wait may take, and what a
sanitizer report looks like: the one set for every Python test."""

import atexit
import os
import shutil
import tempfile

_TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                    "..")


def _program(env, name):
    """The absolute path of a built program: $env, else src/NAME of this
    source tree."""
    return os.path.abspath(os.environ.get(env) or
                           os.path.join(_TOP, "src", name))


def tool(env, name):
    """The path of a built program (see _program), or None if it is not
    there to run."""
    path = _program(env, name)
    return path if os.access(path, os.X_OK) else None


TALKNETD = _program("TALKNETD", "talknetd")
TALKNET = tool("TALKNET", "talknet")

TIMEOUT = float(os.environ.get("TN_TIMEOUT", "3"))   # one expected message
QUIET = float(os.environ.get("TN_QUIET", "0.25"))    # "nothing arrives"
# expect_nothing waits QUIET_RTTS times the median of the recent
# IDENTIFY round trips (the machine's pace now), within [QUIET_MIN,
# QUIET] (tntest.client.quiet).
QUIET_RTTS = 40
QUIET_MIN = min(0.05, QUIET)
# One line that the talknet client prints (it reads, decodes, renders).
PROGRAM_TIMEOUT = 5.0
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0

SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "runtime error:",
                      "LeakSanitizer")

LOOPBACK = "127.0.0.1"

# Options that switch off the flood limits meant for the internet.
LIFT_LIMITS = ["--max-clients-per-ip", "0", "--rate-limit", "0",
               "--max-rooms-per-user", "0"]

# The daemon binds its hub's socket at $TMPDIR/talknetd.XXXXXX/hub.sock,
# and the tests bind theirs in temporary directories too; a Unix
# socket's path has room for 107 bytes (sun_path).  Where TMPDIR is deep
# (a CI runner's workspace) every test would fail before its first line,
# so they all run under a short private TMPDIR instead.
SHORT_TMPDIR = 40


def use_short_tmpdir():
    """Points TMPDIR (for this process and every child) at a private
    directory under /tmp if the current one leaves too little room for
    a socket's path; the directory is removed at exit."""
    if len(tempfile.gettempdir()) <= SHORT_TMPDIR:
        return
    try:
        d = tempfile.mkdtemp(prefix="tn-", dir="/tmp")
    except OSError:
        return
    # Sticky and open to all, as /tmp is: daemons run as another user
    # (-u nobody) make their run directories here too.
    os.chmod(d, 0o1777)
    os.environ["TMPDIR"] = d
    tempfile.tempdir = d
    atexit.register(shutil.rmtree, d, True)


use_short_tmpdir()


def sanitizer_problems(text):
    """The sanitizer patterns found in text."""
    return [p for p in SANITIZER_PATTERNS if p in text]


def sanitizer_report(text):
    """The first line of text with a sanitizer pattern, or None."""
    for line in text.splitlines():
        if sanitizer_problems(line):
            return line
    return None
