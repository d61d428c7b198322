#!/usr/bin/env python3
"""Docs that are true (issue 16): --help's usage line, the README's
Options block and talknetd(8) list every option the daemon takes; the
man page lists every signal the master handles or ignores; the README
cites no file the repository lacks, and its nc script works as shown."""

import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../lib")
from tntest import ops  # noqa: E402
import tntest  # noqa: E402

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _read(*path):
    with open(os.path.join(TOP, *path)) as f:
        return f.read()


def _options():
    """{long name: short letter or None}, from talknetd.c's table."""
    src = _read("src", "daemon", "talknetd.c")
    table = src[src.index("talknetd_options[] = {"):]
    table = table[:table.index("};")]
    out = {}
    for name, letter in re.findall(r'\{\s*"([a-z-]+)",\s*\w+,\s*NULL,\s*'
                                   r"(?:'(\w)'|0)\s*\}", table):
        out[name] = letter or None
    assert len(out) >= 20, out
    return out


def _help():
    rc, out, err = ops.run([tntest.TALKNETD, "--help"])
    assert rc == 0, (rc, err)
    return out


def _synopsis(lines):
    """The words of a synopsis, "usage:" and the program's name left out."""
    words = " ".join(lines).split()
    if words and words[0] == "usage:":
        words = words[1:]
    assert words[0] == "talknetd", words
    return words[1:]


def _covered(words, name, letter):
    text = " ".join(words)
    if "--" + name in re.findall(r"--[a-z-]+", text):
        return True
    if letter is None:
        return False
    # -c FILE, or a letter in a cluster such as [-dfhnV].
    return bool(re.search(r"\[-(\w*%s\w*)[\] ]" % letter, text))


def _help_synopsis(text):
    lines = []
    for line in text.splitlines():
        if line.startswith("  -") or line.startswith("      --"):
            break
        lines.append(line)
    return lines


def test_help_usage_lists_every_option():
    opts = _options()
    text = _help()
    words = _synopsis(_help_synopsis(text))
    missing = [n for n, l in opts.items()
               if n not in ("help", "version", "debug", "check",
                            "foreground") and not _covered(words, n, l)]
    missing += [n for n, l in opts.items()
                if n in ("help", "version", "debug", "check", "foreground")
                and not _covered(words, n, l)]
    assert not missing, "--help's usage line lacks %r" % missing
    # And each has its line of explanation.
    for n in opts:
        assert re.search(r"^\s+(-\w, )?--%s\b" % re.escape(n), text, re.M), \
            "--help does not explain --%s" % n


def _readme_options_block():
    readme = _read("README.md")
    sec = readme[readme.index("## Options"):]
    sec = sec[:sec.index("\n## ", 3)]
    block = [line[4:] for line in sec.splitlines()
             if line.startswith("    ")]
    assert block and block[0].startswith("talknetd "), block
    return block


def test_readme_options_block_is_the_usage_line():
    """The README's Options block is --help's synopsis, word for word, so
    neither can gain an option without the other."""
    block = _synopsis(_readme_options_block())
    usage = _synopsis(_help_synopsis(_help()))
    assert block == usage, "README Options block:\n  %s\n--help:\n  %s" \
        % (" ".join(block), " ".join(usage))


def test_man_page_lists_every_option():
    man = _read("doc", "talknetd.8.in")
    syn = man[man.index(".Sh SYNOPSIS"):man.index(".Sh DESCRIPTION")]
    body = man[man.index(".Sh DESCRIPTION"):]
    for name, letter in _options().items():
        long_ = r"Fl \\-%s\b" % re.escape(name)
        if letter:
            in_syn = re.search(r"Fl %s\b" % letter, syn) or \
                re.search(r"^\.Op Fl [a-zA-Z]*%s[a-zA-Z]*$" % letter, syn,
                          re.M)
        else:
            in_syn = re.search(long_, syn)
        assert in_syn, "talknetd.8 SYNOPSIS lacks --%s" % name
        item = r"^\.It Fl %s , Fl \\-%s\b" % (letter, re.escape(name)) \
            if letter else r"^\.It %s" % long_
        assert re.search(item, body, re.M), \
            "talknetd.8 does not describe --%s" % name


def _master_signals():
    """Every signal master.c and master_sig.c name."""
    names = set()
    for f in ("master.c", "master_sig.c"):
        names |= set(re.findall(r"\bSIG(?!_IGN|_DFL|INFO)[A-Z0-9]+\b",
                                _read("src", "daemon", f)))
    names.discard("SIGRTMIN")
    names.discard("SIGRTMAX")
    return names


def test_man_page_lists_every_signal():
    man = _read("doc", "talknetd.8.in")
    sec = man[man.index(".Sh SIGNALS"):man.index(".Sh FILES")]
    named = set(re.findall(r"\bSIG[A-Z0-9]+\b", sec))
    missing = sorted(_master_signals() - named)
    assert not missing, "talknetd.8 SIGNALS does not list %r" % missing
    for s in ("SIGUSR1", "SIGUSR2", "SIGKILL", "SIGRTMIN"):
        assert s in named, "talknetd.8 SIGNALS does not list %s" % s


def test_man_page_exit_status_is_true():
    """talknetd.8 says -n exits 1 on an error, and a bad option 64: the
    daemon does just that."""
    man = _read("doc", "talknetd.8.in")
    sec = man[man.index(".Sh EXIT STATUS"):man.index(".Sh EXAMPLES")]
    assert "64 for a bad option" in sec, sec
    item = man[man.index(".It Fl n , Fl \\-check"):]
    item = item[:item.index("\n.It ")]
    assert "64" in item, "the -n item does not say a bad option exits " \
        "64:\n%s" % item
    rc, out, err = ops.run([tntest.TALKNETD, "-n", "--max-clients", "x"])
    assert rc == 64, (rc, err)
    rc, out, err = ops.run([tntest.TALKNETD, "-n", "--no-such-option"])
    assert rc == 64, (rc, err)
    d = ops.tempdir("docs")
    bad = os.path.join(d, "bad.conf")
    ops.write_file(bad, "max-clients = x\n")
    rc, out, err = ops.run([tntest.TALKNETD, "-n", "-c", bad])
    assert rc == 1, (rc, err)


def test_readme_cites_what_exists():
    """The README points at files and pages that are there."""
    readme = _read("README.md")
    assert "shared/protocol.md" not in readme
    for path in re.findall(r"`((?:doc|src|tests|contrib)/[\w./-]+)`",
                           readme):
        if "*" in path or "[" in path:
            continue
        # A built program counts by its source.
        assert any(os.path.exists(os.path.join(TOP, path + ext))
                   for ext in ("", ".in", ".c")), \
            "README cites %s, which is not in the tree" % path
    for page in re.findall(r"`([a-z-]+)\(([0-9])\)`", readme):
        if page[0] == "talknetctl":
            continue        # comes with talknetctl itself
        assert os.path.exists(os.path.join(TOP, "doc", "%s.%s" % page)) or \
            os.path.exists(os.path.join(TOP, "doc", "%s.%s.in" % page)) or \
            page[0] in ("syslog", "nc", "man"), "README cites %s(%s)" % page


def test_man_pages_have_real_dates():
    # $Mdocdate$ is expanded by OpenBSD's CVS only; here it stays as is
    # and man prints it literally in the page's footer.
    pages = [n for n in os.listdir(os.path.join(TOP, "doc"))
             if re.search(r"\.[178](\.in)?$", n)]
    assert len(pages) >= 5, pages
    for n in pages:
        first = _read("doc", n).split("\n", 1)[0]
        assert re.match(r"\.Dd [A-Z][a-z]+ \d{1,2}, \d{4}$", first), (n, first)


def test_readme_quick_start_is_two_commands():
    readme = _read("README.md")
    sec = readme[readme.index("## Quick start"):]
    sec = sec[:sec.index("\n## ", 3)]
    cmds = [x for x in sec.splitlines() if x.startswith("    ")]
    assert len(cmds) == 2, cmds


def test_readme_nc_script_runs_as_shown():
    """The README's "nc -q 1" line, run as it stands against a server,
    prints what the README shows under it."""
    if not shutil.which("nc"):
        raise tntest.Skip("nc is not installed")
    readme = _read("README.md").splitlines()
    at = [i for i, x in enumerate(readme) if "| nc -q 1 " in x]
    assert len(at) == 1, "no single nc -q 1 line in the README"
    i = at[0]
    cmd = readme[i].strip()
    assert cmd.startswith("$ ")
    shown = []
    for x in readme[i + 1:]:
        if not x.startswith("    "):
            break
        shown.append(x.strip())
    s = tntest.Server()
    cmd = cmd[2:].replace(" 8001", " %d" % s.port)
    p = subprocess.run(["sh", "-c", cmd], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=15)
    got = p.stdout.decode().splitlines()
    assert p.returncode == 0, (p.returncode, p.stderr)
    assert got == shown, "README shows %r, nc printed %r" % (shown, got)


if __name__ == "__main__":
    tntest.main(globals())
