#!/bin/sh
# test_install.sh: "make install DESTDIR=..." puts every file where it
# belongs, the installed man pages render without a warning, the
# installed systemd units pass "systemd-analyze verify", and
# "make uninstall" removes every file again.
#
# Environment: TOP_BUILDDIR, a configured and built build directory
# (default: the current directory).
# Exit status: 0 pass, 1 fail, 77 skip (no make).
set -eu

B=${TOP_BUILDDIR:-.}
MAKE=${MAKE:-make}
failures=0

say() { printf '%s\n' "$*"; }
ok() { say "ok: $*"; }
fail() { say "FAIL: $*"; failures=$((failures + 1)); }
die() { say "FAIL: $*"; exit 1; }

if [ ! -f "$B/config.status" ] || [ ! -f "$B/Makefile" ]; then
	die "TOP_BUILDDIR=$B is not a configured build directory (no config.status or Makefile)"
fi
B=$(cd "$B" && pwd)
if ! command -v "$MAKE" >/dev/null 2>&1; then
	say "SKIP: $MAKE not found"
	exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/talknet-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/root
mkdir "$dest"

# The install directories, exactly as the Makefile computes them.  The
# variables of the build's Makefile are expanded by make itself, so
# --prefix, --sbindir, --mandir etc. are all honoured.
cat >"$tmp/dirs.mk" <<'EOF'
talknet-print-dirs:
	@echo "bindir=$(bindir)"
	@echo "sbindir=$(sbindir)"
	@echo "mandir=$(mandir)"
	@echo "docdir=$(docdir)"
	@echo "sysconfdir=$(sysconfdir)"
	@echo "unitdir=$(systemdsystemunitdir)"
talknet-long-page:
	@$(edit) $(srcdir)/doc/talknetd.8.in >$(LONGPAGE)
EOF
if ! "$MAKE" --no-print-directory -s -C "$B" -f Makefile -f "$tmp/dirs.mk" \
    talknet-print-dirs >"$tmp/dirs" 2>"$tmp/dirs.err"; then
	cat "$tmp/dirs.err"
	die "could not read the install directories from $B/Makefile"
fi
dir() { sed -n "s|^$1=||p" "$tmp/dirs"; }
bindir=$(dir bindir)
sbindir=$(dir sbindir)
mandir=$(dir mandir)
docdir=$(dir docdir)
sysconfdir=$(dir sysconfdir)
unitdir=$(dir unitdir)
case $unitdir in
"" | no) unitdir="" ;;
esac
say "# build directory: $B"
say "# sbindir=$sbindir bindir=$bindir mandir=$mandir"
say "# docdir=$docdir sysconfdir=$sysconfdir unitdir=${unitdir:-(none: configured without systemd units)}"

# --- make install --------------------------------------------------------
if "$MAKE" -C "$B" install DESTDIR="$dest" >"$tmp/install.log" 2>&1; then
	ok "make install DESTDIR=$dest"
else
	tail -n 40 "$tmp/install.log"
	die "make install DESTDIR=$dest failed (log above)"
fi

say "# installed files:"
(cd "$dest" && find . \( -type f -o -type l \) -print | sort | sed 's|^\.|  |')

# --- every file is where it belongs ---------------------------------------
expect_file() {	# path, what
	if [ -f "$dest$1" ]; then
		ok "$2: $1"
	else
		fail "$2 not installed: expected $1"
	fi
}
expect_exec() {	# path, what
	if [ -f "$dest$1" ] && [ -x "$dest$1" ]; then
		ok "$2: $1 (executable)"
	else
		fail "$2 not installed as an executable: expected $1"
	fi
}

expect_exec "$sbindir/talknetd" "daemon"
expect_exec "$bindir/talknet" "client"
# The bench comes with a later issue: expect it only once it is built.
if [ -f "$B/src/talknet-bench" ]; then
	expect_exec "$bindir/talknet-bench" "bench"
fi
expect_file "$mandir/man8/talknetd.8" "man page"
expect_file "$mandir/man1/talknet.1" "man page"
expect_file "$mandir/man7/talknet-protocol.7" "man page"

# The example configuration: in $(docdir) or $(sysconfdir).
conf=""
for d in "$docdir" "$sysconfdir"; do
	if [ -f "$dest$d/talknetd.conf.example" ]; then
		conf=$d/talknetd.conf.example
		break
	fi
done
if [ -n "$conf" ]; then
	ok "example configuration: $conf"
	# It is a valid configuration as it stands (every line commented).
	if out=$("$dest$sbindir/talknetd" -n -c "$dest$conf" 2>&1); then
		ok "talknetd -n -c $conf: $out"
	else
		fail "talknetd -n -c $conf: $out"
	fi
else
	elsewhere=$(cd "$dest" && find . -name talknetd.conf.example | sed 's|^\.||')
	fail "talknetd.conf.example not in $docdir or $sysconfdir${elsewhere:+ (found at $elsewhere)}"
fi

if [ -n "$unitdir" ]; then
	expect_file "$unitdir/talknetd.service" "systemd unit"
	expect_file "$unitdir/talknetd.socket" "systemd unit"
else
	found=$(cd "$dest" && find . -name 'talknetd.s*' | sed 's|^\.||')
	if [ -n "$found" ]; then
		fail "configured without systemd units, yet installed: $found"
	else
		ok "no systemd units (configured with --with-systemdsystemunitdir=no)"
	fi
fi

# Generated files carry no unsubstituted @variable@.
for f in "$mandir/man8/talknetd.8" "$unitdir/talknetd.service"; do
	[ -f "$dest$f" ] || continue
	if grep -n '@[a-zA-Z_]*@' "$dest$f" >"$tmp/subst" 2>&1; then
		fail "$f has unsubstituted variables:"
		sed 's/^/  /' "$tmp/subst"
	else
		ok "$f: every @variable@ substituted"
	fi
done

# --- the README lists what is installed (issue 16) -------------------------
# Each program, man page, unit and example that make install put in
# place is named in the README's Installing section.
readme=$(cd "$(dirname "$0")/../.." && pwd)/README.md
if [ -f "$readme" ]; then
	inst=$(sed -n '/^## Installing/,/^## /p' "$readme")
	for f in $(cd "$dest" && find . -type f | sort); do
		base=${f##*/}
		case $f in
		*/man/man*) want="\`${base%.*}(${base##*.})\`" ;;
		*) want="\`$base\`" ;;
		esac
		if printf '%s\n' "$inst" | grep -qF -- "$want"; then
			ok "README's Installing section names $want"
		else
			fail "README's Installing section does not name $want (installed as ${f#.})"
		fi
	done
else
	say "# no README.md next to the tests: not checked"
fi

# --- the man pages render without a warning --------------------------------
# lint_page file what: groff -ww, on its default device and on the
# terminal man(1) uses, has nothing to say about the page.
lint_page() {
	if grep -q '^\.Dd' "$1"; then macros=-mdoc; else macros=-man; fi
	for dev in "" -Tutf8; do
		if out=$(groff "$macros" -ww $dev -z "$1" 2>&1) &&
		    [ -z "$out" ]; then
			ok "groff $macros -ww${dev:+ $dev} -z $2: no output"
		else
			fail "groff $macros -ww${dev:+ $dev} -z $2:"
			say "$out" | sed 's/^/  /'
		fi
	done
}
if command -v groff >/dev/null 2>&1; then
	for f in "$mandir/man8/talknetd.8" "$mandir/man1/talknet.1" \
	    "$mandir/man7/talknet-protocol.7"; do
		[ -f "$dest$f" ] || continue
		lint_page "$dest$f" "$f"
	done
	# The paths substituted into talknetd.8 are as long as the prefix:
	# render it again as the Makefile makes it, with paths longer than
	# any line and a directory name longer than a line by itself.
	long=/opt/$(printf 'a-very-long-directory-name-%s' 1 2 3 4 5 6)
	long=$long/$(printf 'and-another-%s' 1 2 3 4 5 6 7 8 9)/usr
	if "$MAKE" --no-print-directory -s -C "$B" -f Makefile \
	    -f "$tmp/dirs.mk" talknet-long-page prefix="$long" \
	    sysconfdir="$long/etc" sbindir="$long/sbin" \
	    LONGPAGE="$tmp/talknetd-long.8" >"$tmp/long.err" 2>&1 &&
	    grep -q "$long/etc/talknetd.conf" "$tmp/talknetd-long.8"; then
		lint_page "$tmp/talknetd-long.8" \
		    "talknetd.8 with sysconfdir=$long/etc"
	else
		cat "$tmp/long.err"
		fail "could not make talknetd.8 with a ${#long}-byte prefix"
	fi
else
	say "# groff not found: man page rendering not checked"
fi

# --- the units pass systemd-analyze verify ---------------------------------
if [ -z "$unitdir" ]; then
	:
elif ! command -v systemd-analyze >/dev/null 2>&1; then
	say "# systemd-analyze not found: units not verified"
elif [ -f "$dest$unitdir/talknetd.service" ] &&
    [ -f "$dest$unitdir/talknetd.socket" ]; then
	svc=$dest$unitdir/talknetd.service
	if grep -qx "ExecStart=$sbindir/talknetd -f" "$svc"; then
		ok "talknetd.service runs $sbindir/talknetd -f"
	else
		fail "talknetd.service: no \"ExecStart=$sbindir/talknetd -f\":"
		grep -n '^ExecStart=' "$svc" | sed 's/^/  /' || true
	fi
	# The daemon is installed under DESTDIR, not at $sbindir itself:
	# verify copies whose ExecStart points at the installed binary, and
	# look the Documentation= man pages up among the installed ones.
	mkdir "$tmp/units"
	sed "s|=$sbindir/talknetd |=$dest$sbindir/talknetd |" "$svc" \
	    >"$tmp/units/talknetd.service"
	cp "$dest$unitdir/talknetd.socket" "$tmp/units/talknetd.socket"
	if out=$(cd "$tmp/units" && MANPATH="$dest$mandir" \
	    systemd-analyze verify talknetd.socket talknetd.service 2>&1) &&
	    [ -z "$out" ]; then
		ok "systemd-analyze verify talknetd.socket talknetd.service: no output"
	else
		fail "systemd-analyze verify talknetd.socket talknetd.service:"
		say "$out" | sed 's/^/  /'
	fi
fi

# --- make uninstall ------------------------------------------------------
if "$MAKE" -C "$B" uninstall DESTDIR="$dest" >"$tmp/uninstall.log" 2>&1; then
	ok "make uninstall DESTDIR=$dest"
else
	tail -n 40 "$tmp/uninstall.log"
	fail "make uninstall DESTDIR=$dest failed (log above)"
fi
left=$(cd "$dest" && find . \( -type f -o -type l \) -print | sort)
if [ -z "$left" ]; then
	ok "make uninstall left no files"
else
	fail "make uninstall left files behind:"
	say "$left" | sed 's|^\.|  |'
fi

if [ "$failures" -ne 0 ]; then
	say "$failures check(s) failed"
	exit 1
fi
say "all install checks passed"
exit 0
