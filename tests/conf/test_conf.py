#!/usr/bin/env python3
"""Golden-file tests of talknetd's configuration check (issue 4).

For each tests/conf/NAME.conf, runs `TALKNETD -n -c .../NAME.conf` and
compares stdout with NAME.out and stderr with NAME.err (where @CONF@
stands for the path of the config file in both) and the exit status with NAME.status,
exactly.  A case without NAME.err (see PENDING) gets looser checks of its
stderr until its message is settled.  Plus: the command line over the
file, and a missing file.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
import tntest  # noqa: E402
import subprocess  # noqa: E402

os.environ["LC_ALL"] = "C"

# Cases whose stderr is not pinned yet, and why (what it should say).
PENDING = {}


def talknetd(*args):
    p = subprocess.run([tntest.TALKNETD] + list(args),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=10)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


def read(path):
    with open(path) as f:
        return f.read()


def cases():
    return sorted(n[:-5] for n in os.listdir(HERE) if n.endswith(".conf"))


def check_case(name):
    conf = os.path.join(HERE, name + ".conf")
    rc, out, err = talknetd("-n", "-c", conf)
    for pat in tntest.SANITIZER_PATTERNS:
        assert pat not in err, "sanitizer report:\n%s" % err
    want_rc = int(read(os.path.join(HERE, name + ".status")).strip())
    want_out = read(os.path.join(HERE, name + ".out")).replace("@CONF@",
                                                               conf)
    errfile = os.path.join(HERE, name + ".err")
    problems = []
    if rc != want_rc:
        problems.append("exit status %r, expected %r" % (rc, want_rc))
    if out != want_out:
        problems.append("stdout %r, expected %r" % (out, want_out))
    if os.path.exists(errfile):
        want_err = read(errfile).replace("@CONF@", conf)
        if err != want_err:
            problems.append("stderr %r, expected %r" % (err, want_err))
    else:
        # Not pinned (see PENDING): one line, ours, naming the file.
        assert name in PENDING, "%s.err is missing" % name
        if not (err.startswith("talknetd: ") and err.endswith("\n") and
                err.count("\n") == 1):
            problems.append("stderr %r is not one talknetd: line" % err)
    assert not problems, "talknetd -n -c %s:\n  %s" % (
        conf, "\n  ".join(problems))


def _make(name):
    def t():
        check_case(name)
    t.__name__ = "test_golden_" + name.replace("-", "_")
    return t


for _n in cases():
    _f = _make(_n)
    globals()[_f.__name__] = _f


def test_every_case_is_complete():
    names = cases()
    assert len(names) >= 15, names
    for n in names:
        for ext in (".out", ".status"):
            assert os.path.exists(os.path.join(HERE, n + ext)), \
                "%s%s is missing" % (n, ext)
    for n in PENDING:
        assert n in names, "PENDING names an unknown case %s" % n


def test_command_line_overrides_file():
    """Options are checked as command-line errors (64) even with a good
    file; a missing file is an error (1) that says why."""
    ok = os.path.join(HERE, "ok-minimal.conf")
    rc, out, err = talknetd("-n", "-c", ok, "--max-clients", "abc")
    assert rc == 64, "exit %r, stderr %r" % (rc, err)
    assert out == "", out
    assert err == "talknetd: --max-clients abc: invalid (1 to 100000)\n", \
        err
    rc, out, err = talknetd("-n", "-c", ok, "--max-clients", "7")
    assert (rc, out, err) == (0, "%s: configuration OK\n" % ok, ""), \
        (rc, out, err)
    missing = os.path.join(HERE, "no-such-file.conf")
    rc, out, err = talknetd("-n", "-c", missing)
    assert rc == 1, "exit %r, stderr %r" % (rc, err)
    assert out == ""
    assert err == "talknetd: %s: No such file or directory\n" % missing, \
        err
    # Without -n too, before anything starts.
    rc, out, err = talknetd("-f", "-c", missing, "-l", "127.0.0.1:0")
    assert rc == 1 and "No such file or directory" in err, (rc, err)


def _default_conf():
    """The default configuration file, as --help names it."""
    rc, out, err = talknetd("--help")
    assert rc == 0, (rc, err)
    for word in out.split():
        if word.endswith("/talknetd.conf)"):
            return word[:-1]
    raise AssertionError("--help names no default file:\n%s" % out)


def test_check_names_the_file():
    """(issue 16) -n says which file it checked; without -c and with no
    default file, it says that there was none; -c with a missing file is
    an error (above)."""
    ok = os.path.join(HERE, "ok-full.conf")
    rc, out, err = talknetd("-n", "-c", ok)
    assert (rc, out, err) == (0, "%s: configuration OK\n" % ok, ""), \
        (rc, out, err)
    default = _default_conf()
    rc, out, err = talknetd("-n", "-l", "127.0.0.1:0")
    if os.path.exists(default):
        assert rc in (0, 1), (rc, out, err)
        assert default in out + err, (out, err)
    else:
        assert (rc, err) == (0, ""), (rc, err)
        assert out == "%s: no such file; the defaults and the command " \
            "line: configuration OK\n" % default, out


def test_duplicate_listen_on_the_command_line():
    """(issue 16) -l twice with one address is a usage error, with -n and
    without, before anything binds; two -l ADDR:0 are two free ports."""
    for extra in (["-n"], ["-f"]):
        rc, out, err = talknetd(*(extra + ["-l", "127.0.0.1:8001", "-l",
                                           "127.0.0.1:8001"]))
        assert rc == 64, (rc, err)
        assert err == "talknetd: --listen 127.0.0.1:8001: already listed " \
            "(as 127.0.0.1:8001)\n", err
    rc, out, err = talknetd("-n", "-l", "127.0.0.1:0", "-l", "127.0.0.1:0")
    assert rc == 0, (rc, err)


if __name__ == "__main__":
    tntest.main(globals())
