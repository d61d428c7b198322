#!/bin/sh
#
# valgrind.sh: `make check-valgrind`.  Runs talknetd under
#   valgrind --leak-check=full --error-exitcode=1
#            --errors-for-leak-kinds=definite --child-silent-after-fork=no
#            --log-file=DIR/vg.%p
# (the hub and the workers are forked, not exec'd: valgrind follows them
# and writes one log per process), drives it with vg_drive.py (50 clients,
# rooms, invitations, texts, errors, abrupt closes, a worker and the hub
# killed with SIGKILL, a slow reader cut off), then SIGTERMs the master.
#
# Every log must say "ERROR SUMMARY: 0 errors" and no process may have
# "definitely lost" bytes; the logs of the processes killed with SIGKILL
# end without a summary and are only checked for errors.  Prints the
# summaries of the master and of each hub.
#
# Exit 0: clean; 1: valgrind found something, or the run misbehaved;
# 77: valgrind or the daemon is missing, or the daemon is a sanitizer
# build (ASan and valgrind do not mix).
#
# Environment: TALKNETD (default: src/talknetd of the build tree),
# PYTHON (default python3), VG_KEEP=1 keeps the log directory.
# The daemon is only ever stopped by its PID.

set -u

here=$(cd "$(dirname "$0")" && pwd)
TALKNETD=${TALKNETD:-$here/../../src/talknetd}
PYTHON=${PYTHON:-python3}

if ! command -v valgrind >/dev/null 2>&1; then
	echo "SKIP valgrind.sh: valgrind is not installed"
	exit 77
fi
if [ ! -x "$TALKNETD" ]; then
	echo "SKIP valgrind.sh: no talknetd at $TALKNETD (set TALKNETD)"
	exit 77
fi
if ldd "$TALKNETD" 2>/dev/null | grep -q 'lib[at]san'; then
	echo "SKIP valgrind.sh: $TALKNETD is a sanitizer build"
	exit 77
fi

# The daemon binds $TMPDIR/talknetd.XXXXXX/hub.sock, and a Unix socket's
# path has room for 107 bytes: where TMPDIR is deep, use /tmp.
tmpdir=${TMPDIR:-}
if [ "${#tmpdir}" -gt 40 ]; then
	TMPDIR=/tmp
	export TMPDIR
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tn-valgrind.XXXXXX") || exit 1
vg_pid=
cleanup() {
	if [ -n "$vg_pid" ] && kill -0 "$vg_pid" 2>/dev/null; then
		kill -KILL "$vg_pid" 2>/dev/null
	fi
	if [ "${VG_KEEP:-0}" = 1 ]; then
		echo "valgrind.sh: logs kept in $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail=0
say() { printf 'valgrind.sh: %s\n' "$*"; }

valgrind --leak-check=full --error-exitcode=1 \
	--errors-for-leak-kinds=definite --child-silent-after-fork=no \
	--log-file="$tmp/vg.%p" \
	"$TALKNETD" -f -l 127.0.0.1:0 --max-clients-per-ip 0 --rate-limit 0 \
	--max-queue 65536 >"$tmp/daemon.out" 2>"$tmp/daemon.log" &
vg_pid=$!
master_pid=$vg_pid	# valgrind runs the program in its own process
t0=$(date +%s)

# The port, from "listening on 127.0.0.1:PORT".
port=
i=0
while [ $i -lt 600 ]; do
	port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' \
		"$tmp/daemon.log" | head -n 1)
	[ -n "$port" ] && grep -q 'hub started' "$tmp/daemon.log" && break
	if ! kill -0 "$vg_pid" 2>/dev/null; then
		break
	fi
	sleep 0.1
	i=$((i + 1))
done
if [ -z "$port" ]; then
	say "the daemon did not start under valgrind"
	cat "$tmp/daemon.log"
	exit 1
fi
say "talknetd under valgrind, pid $vg_pid, port $port"

: >"$tmp/killed"
if ! "$PYTHON" "$here/vg_drive.py" "$port" "$vg_pid" "$tmp/daemon.log" \
	"$tmp/killed"; then
	say "FAIL: the driver failed"
	fail=1
	kill -TERM "$vg_pid" 2>/dev/null
fi

# The driver sent SIGTERM; wait for the master (bounded).
i=0
while kill -0 "$vg_pid" 2>/dev/null && [ $i -lt 1200 ]; do
	sleep 0.1
	i=$((i + 1))
done
if kill -0 "$vg_pid" 2>/dev/null; then
	say "FAIL: the master did not exit within 120 s of SIGTERM"
	fail=1
	kill -KILL "$vg_pid" 2>/dev/null
fi
wait "$vg_pid"
status=$?
vg_pid=
say "master exit status $status after $(( $(date +%s) - t0 )) s"
[ "$status" -eq 0 ] || fail=1

# Every child has exited when each log that will get a summary has one
# (children leave after the master; give them a bounded while).
i=0
while [ $i -lt 600 ]; do
	pending=0
	for f in "$tmp"/vg.*; do
		p=${f##*.}
		grep -qx "$p" "$tmp/killed" && continue
		grep -q 'ERROR SUMMARY' "$f" || pending=$((pending + 1))
	done
	[ $pending -eq 0 ] && break
	sleep 0.1
	i=$((i + 1))
done

hubs=$(sed -n 's/.*hub started, pid \([0-9][0-9]*\).*/\1/p' \
	"$tmp/daemon.log")
nlogs=0
nworkers=0
for f in "$tmp"/vg.*; do
	p=${f##*.}
	nlogs=$((nlogs + 1))
	role=worker
	[ "$p" = "$master_pid" ] && role=master
	for h in $hubs; do [ "$p" = "$h" ] && role=hub; done
	killed=no
	grep -qx "$p" "$tmp/killed" && killed=yes
	[ "$role" = worker ] && nworkers=$((nworkers + 1))
	errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9][0-9]*\) errors.*/\1/p' "$f" |
		tail -n 1)
	lost=$(sed -n 's/.*definitely lost: \([0-9,][0-9,]*\) bytes.*/\1/p' \
		"$f" | tr -d , | tail -n 1)
	if [ "$killed" = yes ]; then
		# Killed with SIGKILL: no summary; no error may precede it.
		if grep -q '^==[0-9]*== \(Invalid\|Conditional\|Use of\|Syscall param\|Mismatched\|Source and destination\)' "$f"; then
			say "FAIL: $role $p (killed) had errors:"
			sed -n '1,80p' "$f"
			fail=1
		fi
		say "$role $p: killed with SIGKILL, no error before"
		continue
	fi
	if [ -z "$errs" ]; then
		say "FAIL: $role $p: no ERROR SUMMARY in its log"
		tail -n 30 "$f"
		fail=1
		continue
	fi
	if [ "$errs" != 0 ] || [ "${lost:-0}" != 0 ]; then
		say "FAIL: $role $p: $errs errors, ${lost:-0} bytes definitely lost"
		cat "$f"
		fail=1
		continue
	fi
	if [ "$role" != worker ]; then
		say "$role $p: $(grep 'ERROR SUMMARY' "$f" | sed 's/^==[0-9]*== //')"
		grep -E 'definitely lost|indirectly lost|possibly lost|still reachable|All heap blocks were freed|in use at exit' "$f" |
			sed "s/^==[0-9]*== /    /"
	fi
done
say "$nlogs valgrind logs ($nworkers workers), $(wc -l <"$tmp/killed") processes killed on purpose"
if [ $fail -ne 0 ]; then
	say "daemon log:"
	sed 's/^/  | /' "$tmp/daemon.log" | tail -n 80
	echo "FAIL valgrind.sh"
	exit 1
fi
echo "PASS valgrind.sh"
exit 0
