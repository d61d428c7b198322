#!/bin/sh
# test_prefix.sh (issue 16): a user who is not root builds and installs
# with --prefix=$HOME/x: the systemd units go under the prefix too, and
# "make uninstall" removes every file and every directory that "make
# install" created, but no directory that was there before.  Then the
# same tree is configured again with another --sysconfdir, and "make"
# must rebuild talknetd so that --help names the new directory (the path
# used to be a -D flag, and nothing was rebuilt).
#
# Works on a copy of the source tree (without build products), as
# "nobody" when run as root.  Exit status: 0 pass, 1 fail, 77 skip.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
MAKE=${MAKE:-make}
failures=0

say() { printf '%s\n' "$*"; }
ok() { say "ok: $*"; }
fail() { say "FAIL: $*"; failures=$((failures + 1)); }

if [ ! -x "$top/configure" ]; then
	say "SKIP: no configure in $top (run ./bootstrap)"
	exit 77
fi
for c in "$MAKE" tar cc; do
	if ! command -v "$c" >/dev/null 2>&1; then
		say "SKIP: $c not found"
		exit 77
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/talknet-prefix.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
mkdir "$tmp/src" "$tmp/home"

# The sources as a fresh checkout has them, with the generated autotools
# files (so no autoreconf), without anything configure or make made.
tar -C "$top" -cf - --exclude=.git --exclude='*.o' --exclude='*.a' \
    --exclude=.deps --exclude=.dirstamp --exclude=autom4te.cache \
    --exclude=config.status --exclude=config.log --exclude=config.h \
    --exclude=stamp-h1 --exclude=Makefile --exclude='*.log' \
    --exclude='*.trs' --exclude='talknet-[0-9]*' --exclude=paths.h \
    --exclude=.installed-dirs --exclude=src/talknetd \
    --exclude=src/talknet --exclude=src/talknet-bench \
    --exclude='check_*[!.ch]' --exclude='replay_codec' \
    --exclude='replay_ipc' --exclude=talknetd.8 \
    --exclude=talknetd.service --exclude=__pycache__ . |
    tar -C "$tmp/src" -xf -
# distcheck's source tree is read-only, and tar kept the modes.
chmod -R u+w "$tmp/src"

# as_user CMD...: runs CMD as the unprivileged user, in the copy.
if [ "$(id -u)" = 0 ]; then
	if ! command -v setpriv >/dev/null 2>&1; then
		say "SKIP: root, and no setpriv to become nobody"
		exit 77
	fi
	chown -R nobody "$tmp/src" "$tmp/home"
	as_user() {
		(cd "$tmp/src" && HOME=$tmp/home setpriv --reuid=nobody \
		    --regid="$(id -g nobody)" --clear-groups "$@")
	}
else
	as_user() { (cd "$tmp/src" && HOME=$tmp/home "$@"); }
fi
say "# as $(as_user id -un), in $tmp/src"

prefix=$tmp/home/x
# A directory that was there before the install: it stays.
if [ "$(id -u)" = 0 ]; then
	mkdir -p "$prefix/share/man"
	chown -R nobody "$prefix"
else
	mkdir -p "$prefix/share/man"
fi

build() {	# sysconfdir
	if as_user ./configure --prefix="$prefix" --sysconfdir="$1" \
	    CFLAGS=-O0 >"$tmp/configure.log" 2>&1 &&
	    as_user "$MAKE" -j2 >"$tmp/make.log" 2>&1; then
		ok "./configure --prefix=$prefix --sysconfdir=$1 && make"
	else
		tail -n 30 "$tmp/configure.log" "$tmp/make.log"
		fail "./configure --sysconfdir=$1 && make"
		exit 1
	fi
	if grep -q "modifier ignored" "$tmp/make.log"; then
		fail "the build says: $(grep "modifier ignored" "$tmp/make.log")"
	fi
}

helps() {	# sysconfdir: talknetd --help names it as the default file
	if as_user ./src/talknetd --help | grep -qF "(default $1/talknetd.conf)"
	then
		ok "talknetd --help names $1/talknetd.conf"
	else
		fail "talknetd --help does not name $1/talknetd.conf:"
		as_user ./src/talknetd --help | grep -e '-c,' | sed 's/^/  /'
	fi
}

build "$tmp/etc1"
helps "$tmp/etc1"

if as_user "$MAKE" install >"$tmp/install.log" 2>&1; then
	ok "make install as $(as_user id -un)"
else
	tail -n 30 "$tmp/install.log"
	fail "make install as a user, --prefix=$prefix"
fi
for f in sbin/talknetd bin/talknet bin/talknet-bench \
    lib/systemd/system/talknetd.service lib/systemd/system/talknetd.socket \
    share/man/man8/talknetd.8; do
	if [ -f "$prefix/$f" ]; then
		ok "installed \$prefix/$f"
	else
		fail "not installed: \$prefix/$f"
	fi
done

if as_user "$MAKE" uninstall >"$tmp/uninstall.log" 2>&1; then
	ok "make uninstall"
else
	tail -n 30 "$tmp/uninstall.log"
	fail "make uninstall"
fi
left=$(cd "$prefix" && find . -mindepth 1 | sort | tr '\n' ' ')
if [ "$left" = "./share ./share/man " ]; then
	ok "make uninstall left only the directories that were there before"
else
	fail "make uninstall left in \$prefix: $left (want: ./share ./share/man)"
fi

# Configure again with another sysconfdir: make rebuilds talknetd.
build "$tmp/etc2"
helps "$tmp/etc2"

if [ "$failures" -ne 0 ]; then
	say "$failures check(s) failed"
	exit 1
fi
say "all prefix checks passed"
exit 0
