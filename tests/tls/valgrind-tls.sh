#!/bin/sh
#
# valgrind-tls.sh: the TLS tests (tests/tls/test_tls_ops.py and
# test_tls_fuzz.py) with every talknetd they start run under
#   valgrind --leak-check=full --errors-for-leak-kinds=definite
#            --child-silent-after-fork=no --log-file=DIR/vg.%p
# (part of `make check-valgrind` when built with libtls).  The tests
# must pass, and every valgrind log (master, hubs, plain and TLS workers)
# must say "ERROR SUMMARY: 0 errors" with nothing "definitely lost".
# Waits are longer (TN_TIMEOUT=15): valgrind is slow.
#
# Exit 0: clean; 1: a test failed or valgrind found something; 77:
# valgrind, openssl or the daemon is missing, or it is a sanitizer build.
# Environment: TALKNETD, TALKNETCTL, PYTHON; VG_KEEP=1 keeps the logs.

set -u

here=$(cd "$(dirname "$0")" && pwd)
TALKNETD=${TALKNETD:-$here/../../src/talknetd}
PYTHON=${PYTHON:-python3}

# What it needs, and a daemon valgrind can run (ASan does not mix).
why=""
command -v valgrind >/dev/null 2>&1 || why="valgrind is not installed"
command -v openssl >/dev/null 2>&1 || why="openssl is not installed"
[ -x "$TALKNETD" ] || why="no talknetd at $TALKNETD (set TALKNETD)"
if [ -z "$why" ] && ldd "$TALKNETD" 2>/dev/null | grep -q 'lib[at]san'; then
	why="$TALKNETD is a sanitizer build"
fi
if [ -n "$why" ]; then
	echo "SKIP valgrind-tls.sh: $why"
	exit 77
fi

tmp=$(mktemp -d /tmp/tn-vgtls.XXXXXX) || exit 1
trap '[ "${VG_KEEP:-0}" = 1 ] && echo "logs kept in $tmp" || rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP

# The tests start "$TALKNETD"; this one execs valgrind in the same pid,
# so the tests still signal the master by its pid.
cat >"$tmp/talknetd" <<EOF
#!/bin/sh
exec valgrind --leak-check=full --errors-for-leak-kinds=definite \\
	--child-silent-after-fork=no --log-file="$tmp/vg.%p" \\
	"$TALKNETD" "\$@"
EOF
chmod +x "$tmp/talknetd"

fail=0
for t in test_tls_ops.py test_tls_fuzz.py; do
	TALKNETD="$tmp/talknetd" TN_TIMEOUT=15 TN_TLS_FUZZ=10 \
	    "$PYTHON" "$here/$t" || fail=1
done

nlogs=0
for f in "$tmp"/vg.*; do
	[ -e "$f" ] || continue
	nlogs=$((nlogs + 1))
	errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9][0-9]*\) errors.*/\1/p' "$f" |
		tail -n 1)
	lost=$(sed -n 's/.*definitely lost: \([0-9,][0-9,]*\) bytes.*/\1/p' \
		"$f" | tr -d , | tail -n 1)
	if [ -z "$errs" ]; then
		# A worker killed on purpose: no error may precede its end.
		if grep -q '^==[0-9]*== \(Invalid\|Conditional\|Use of\|Syscall param\|Mismatched\)' "$f"; then
			echo "valgrind-tls.sh: FAIL: errors in $f"
			sed -n '1,80p' "$f"
			fail=1
		fi
		continue
	fi
	if [ "$errs" != 0 ] || [ "${lost:-0}" != 0 ]; then
		echo "valgrind-tls.sh: FAIL: $errs errors, ${lost:-0} bytes" \
		    "definitely lost in $f"
		cat "$f"
		fail=1
	fi
done
echo "valgrind-tls.sh: $nlogs valgrind logs"
if [ "$nlogs" -eq 0 ]; then
	fail=1
fi
if [ $fail -ne 0 ]; then
	echo "FAIL valgrind-tls.sh"
	exit 1
fi
echo "PASS valgrind-tls.sh"
exit 0
