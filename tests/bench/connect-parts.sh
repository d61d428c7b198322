#!/bin/bash
# connect-parts.sh: what one connection costs talknetd, part by part,
# against issue 20's target "connects/s >= 80% of the machine's bare
# fork+exit/s".  Five servers take turns in one run, each driven as
# run-bench drives talknetd's connect workload (32 in flight):
#
#   talknetd         the build under test (TALKNETD)
#   tn-nolibs        the same code built --without-tls --without-hiredis:
#                    the sandbox on, libtls, libcrypto, hiredis unmapped
#   tn-bare          also --without-seccomp: no filter to load
#   floor            tests/bench/floor.c's multi shape: talknetd's
#                    processes and nothing else
#   floor-presence   the same, with the NEW_USER and DISCONNECTED that
#                    the protocol sends every other user
#
# Each run's CPU is the server tree's whole (workers reaped included),
# per connection.  The differences split talknetd's cost: presence
# (floor-presence - floor), our code (tn-bare - floor-presence), the
# sandbox (tn-nolibs - tn-bare), the libraries (talknetd - tn-nolibs).
# Prints a markdown table on stdout; progress on stderr.
#
# usage: tests/bench/connect-parts.sh   (in a built git checkout)
#   PARTS_ROUNDS   rounds, the servers taking turns in each (5)
#   PARTS_CONNS    connections a run (3000)
#   TALKNETD, TALKNET_BENCH as for run-bench; TALKNETD_NOLIBS and
#   TALKNETD_BARE: those builds, made here from HEAD when not given

set -u
here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/../.." && pwd)
TALKNETD=${TALKNETD:-$srcdir/src/talknetd}
TALKNET_BENCH=${TALKNET_BENCH:-$srcdir/src/talknet-bench}
ROUNDS=${PARTS_ROUNDS:-5}
CONNS=${PARTS_CONNS:-3000}
INFLIGHT=32
RUN_MAX=120	# seconds one talknet-bench run may take

tmp=$(mktemp -d /tmp/connect-parts.XXXXXX) || exit 1
servers=()
declare -A pid port
log() { printf 'connect-parts: %s\n' "$*" >&2; }
. "$here/bench-lib.sh"

trap cleanup EXIT
trap 'exit 130' INT TERM

# Builds talknetd from HEAD with configure options $2..., into $1.
build_variant() {
	local out=$1 dir
	shift
	dir=$tmp/build-$(basename "$out")
	mkdir -p "$dir" || return 1
	git -C "$srcdir" archive HEAD | tar -x -C "$dir" || return 1
	(cd "$dir" && ./bootstrap && ./configure -q "$@" &&
	    make -j"$(nproc)" src/talknetd) >"$dir.log" 2>&1 || {
		log "building with $*: failed; the end of $dir.log:"
		tail -n 20 "$dir.log" >&2
		return 1
	}
	cp "$dir/src/talknetd" "$out"
}

for f in "$TALKNETD" "$TALKNET_BENCH"; do
	[ -x "$f" ] || { log "$f: not built"; exit 1; }
done
if [ -z "${TALKNETD_NOLIBS:-}" ]; then
	log "building talknetd --without-tls --without-hiredis"
	TALKNETD_NOLIBS=$tmp/talknetd-nolibs
	build_variant "$TALKNETD_NOLIBS" --without-tls --without-hiredis ||
	    exit 1
fi
if [ -z "${TALKNETD_BARE:-}" ]; then
	log "building talknetd --without-tls --without-hiredis --without-seccomp"
	TALKNETD_BARE=$tmp/talknetd-bare
	build_variant "$TALKNETD_BARE" --without-tls --without-hiredis \
	    --without-seccomp || exit 1
fi
if ! ${CC:-cc} -O2 -o "$tmp/floor" "$here/floor.c" "$here/floor_multi.c"
then
	log "floor.c does not build"
	exit 1
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null

# As run-bench starts talknetd: its unit's environment, no limits.
tn_env=$(sed -n 's/^Environment=//p' \
    "$srcdir/contrib/systemd/talknetd.service.in")
tn_opts=(-f -l 127.0.0.1:0 --max-clients 20000 --max-rooms 20000
    --max-clients-per-ip 0 --rate-limit 0 --login-timeout 0)
launch talknetd env $tn_env "$TALKNETD" "${tn_opts[@]}"
launch tn-nolibs env $tn_env "$TALKNETD_NOLIBS" "${tn_opts[@]}"
launch tn-bare env $tn_env "$TALKNETD_BARE" "${tn_opts[@]}"
launch floor env $tn_env "$tmp/floor" multi 0
launch floor-presence env $tn_env "$tmp/floor" multi 0 presence
sleep 0.5
declare -A base
for s in "${servers[@]}"; do
	base[$s]=$(tree_size "${pid[$s]}")
done

# One connect run of server $1 in round $2: its JSON, and its tree's
# CPU over the run (once the run's workers are reaped) in .cpu.
run() {
	local s=$1 r=$2 c0
	tree_settle "${pid[$s]}" "${base[$s]}"
	sleep 0.5
	c0=$(tree_cpu "${pid[$s]}")
	timeout "$RUN_MAX" "$TALKNET_BENCH" --json -q -p "${port[$s]}" \
	    --concurrency "$INFLIGHT" connect --connections "$CONNS" \
	    >"$tmp/$s-$r.json" 2>"$tmp/$s-$r.err" ||
	    log "$s round $r: talknet-bench failed: $(tail -n 1 "$tmp/$s-$r.err")"
	tree_settle "${pid[$s]}" "${base[$s]}"
	awk -v a="$c0" -v b="$(tree_cpu "${pid[$s]}")" -v n="$CONNS" \
	    'BEGIN { printf "%.1f\n", (b - a) * 1e6 / n }' >"$tmp/$s-$r.cpu"
}

loads=()
for r in $(seq 1 "$ROUNDS"); do
	"$TALKNET_BENCH" --json -q machine >"$tmp/machine-$r.json" \
	    2>"$tmp/machine-$r.err"
	loads+=("$(cut -d' ' -f1 /proc/loadavg)")
	log "round $r: $(uptime)"
	for s in "${servers[@]}"; do
		run "$s" "$r"
	done
done

# --- the report ---------------------------------------------------------

# The median of the lines on standard input.
median_of() {
	sort -g | awk 'NF { v[++n] = $1 }
		END { if (n % 2) print v[(n + 1) / 2]
		    else if (n) print (v[n / 2] + v[n / 2 + 1]) / 2 }'
}

# Server $1's figures of every round, one a line: "rate pct cpu".
figures() {
	local s=$1 r rate fork
	for r in $(seq 1 "$ROUNDS"); do
		grep -q '"ok":true' "$tmp/$s-$r.json" 2>/dev/null || continue
		rate=$(jget "$tmp/$s-$r.json" connects.per_s)
		fork=$(jget "$tmp/machine-$r.json" fork_per_s)
		[ -n "$rate" ] && [ -n "$fork" ] || continue
		awk -v a="$rate" -v f="$fork" -v c="$(cat "$tmp/$s-$r.cpu")" \
		    'BEGIN { printf "%.0f %.1f %s\n", a, 100 * a / f, c }'
	done
}

declare -A rate pct cpu each
for s in "${servers[@]}"; do
	figures "$s" >"$tmp/$s.fig"
	rate[$s]=$(cut -d' ' -f1 "$tmp/$s.fig" | median_of)
	pct[$s]=$(cut -d' ' -f2 "$tmp/$s.fig" | median_of)
	cpu[$s]=$(cut -d' ' -f3 "$tmp/$s.fig" | median_of)
	each[$s]=$(cut -d' ' -f2 "$tmp/$s.fig" | paste -sd, - | sed 's/,/, /g')
done
fork=$(for r in $(seq 1 "$ROUNDS"); do
	jget "$tmp/machine-$r.json" fork_per_s; done | median_of)
forks=$(for r in $(seq 1 "$ROUNDS"); do
	jget "$tmp/machine-$r.json" fork_per_s; done | paste -sd, - |
	sed 's/,/, /g')
diff_of() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "") printf "%.0f\n", a - b; else print "-" }'; }

echo "# What a connection costs talknetd (issue 20), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- commit: $(git -C "$srcdir" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "- machine: $(nproc) CPUs, $(sed -n 's/.*"cpu_model":"\([^"]*\)".*/\1/p' "$tmp/machine-1.json"), $(uname -sr)"
echo "- fork+exit+waitpid/s (\`talknet-bench machine\`, one a round): median $fork ($forks)"
echo "- load average at each round's start: ${loads[*]}"
echo "- each run: $CONNS connect+identify+disconnect, $INFLIGHT in flight; $ROUNDS rounds, the servers taking turns; figures are medians; CPU: the server tree's, workers included"
echo
echo "| server | connects/s | % of fork+exit/s | each round's % | server CPU µs per connection |"
echo "|---|---|---|---|---|"
for s in "${servers[@]}"; do
	echo "| $s | ${rate[$s]:--} | ${pct[$s]:--} | ${each[$s]:--} | ${cpu[$s]:--} |"
done
echo
echo "| part of talknetd's CPU per connection | µs |"
echo "|---|---|"
echo "| the shape: fork, hand-off, hub, exit (floor) | ${cpu[floor]:--} |"
echo "| the protocol's presence lines (floor-presence - floor) | $(diff_of "${cpu[floor-presence]}" "${cpu[floor]}") |"
echo "| our code: codec, checks, table, queues (tn-bare - floor-presence) | $(diff_of "${cpu[tn-bare]}" "${cpu[floor-presence]}") |"
echo "| the sandbox: loading the filter, each call through it (tn-nolibs - tn-bare) | $(diff_of "${cpu[tn-nolibs]}" "${cpu[tn-bare]}") |"
echo "| the libraries: libtls, libcrypto, hiredis mapped in every process (talknetd - tn-nolibs) | $(diff_of "${cpu[talknetd]}" "${cpu[tn-nolibs]}") |"
echo "| talknetd in all | ${cpu[talknetd]:--} |"
echo
# The target: what the shape reaches with the protocol's work, and
# with the sandbox every worker must load (issue 14) on top, its CPU
# added to the floor's at the floor's rate per CPU.
sandbox=$(diff_of "${cpu[tn-nolibs]}" "${cpu[tn-bare]}")
with=$(awk -v p="${pct[floor-presence]}" -v c="${cpu[floor-presence]}" \
    -v s="$sandbox" 'BEGIN { if (p != "" && c > 0 && s != "-")
	printf "%.1f\n", p * c / (c + (s > 0 ? s : 0)) }')
echo "| against \"connects/s >= 80% of fork+exit/s\" | % of fork+exit/s (median) |"
echo "|---|---|"
echo "| the shape with the protocol's presence (floor-presence) | ${pct[floor-presence]:--} |"
echo "| the same with the sandbox's CPU added | ${with:--} |"
echo "| talknetd | ${pct[talknetd]:--} |"
