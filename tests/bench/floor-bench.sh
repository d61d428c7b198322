#!/bin/bash
# floor-bench.sh: issue 20's four unmet targets, measured against the
# architecture's floor.  Four servers take turns in one run: talknetd
# (as run-bench starts it), ngircd (as run-bench configures it), and
# tests/bench/floor.c in its two shapes, "multi" (talknetd's processes,
# nothing else of ours) and "single" (one epoll loop).  The same
# talknet-bench drives them all, with run-bench's options for each
# figure.  Prints a markdown table on stdout; progress on stderr.
#
# usage: tests/bench/floor-bench.sh   (in a built tree)
#   FLOOR_ROUNDS   rounds, the servers taking turns in each (3)
#   FLOOR_DUR      seconds measured by private and fan-out runs (10)
#   FLOOR_BUDGET   seconds the whole may take; what is left is skipped
#                  and said (1500)
#   FLOOR_SWEEP    fan-out rates tried, one run each, for the highest
#                  sustained (100%, p99 <= 50 ms) ("2000 3000 4000 6000
#                  8000 12000 16000"; empty: none)
#   TALKNETD, TALKNET_BENCH, NGIRCD as for run-bench

set -u
here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/../.." && pwd)
TALKNETD=${TALKNETD:-$srcdir/src/talknetd}
TALKNET_BENCH=${TALKNET_BENCH:-$srcdir/src/talknet-bench}
NGIRCD=${NGIRCD-$(command -v ngircd 2>/dev/null || true)}
ROUNDS=${FLOOR_ROUNDS:-3}
DUR=${FLOOR_DUR:-10}
BUDGET=${FLOOR_BUDGET:-1500}
SWEEP=${FLOOR_SWEEP-2000 3000 4000 6000 8000 12000 16000}
SWEEP_DUR=5
SHORT=2		# the short fan-out run, whose CPU is taken from DUR's
SERIAL_CONNS=300
CONNECTIONS=5000
CLIENTS=500
SENDERS=10
BYTES=100
P99_MAX=50
RUN_MAX=180	# seconds one talknet-bench run may take

started=$(date +%s)
tmp=$(mktemp -d /tmp/floor-bench.XXXXXX) || exit 1
servers=()
declare -A pid port conc
notes=()
log() { printf 'floor-bench: %s\n' "$*" >&2; }
. "$here/bench-lib.sh"

trap cleanup EXIT
trap 'exit 130' INT TERM

for f in "$TALKNETD" "$TALKNET_BENCH"; do
	[ -x "$f" ] || { log "$f: not built"; exit 1; }
done
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
# Built as wakecost.py builds wakebare.c: not part of the build.
if ! ${CC:-cc} -O2 -o "$tmp/floor" "$here/floor.c" "$here/floor_multi.c"; then
	log "floor.c does not build"
	exit 1
fi

# A free loopback TCP port.
free_port() {
	local p i
	for i in $(seq 1 50); do
		# Below the ephemeral ports, which the clients' own take.
		p=$((10000 + RANDOM % 20000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# ngircd as run-bench configures it, in the foreground.
start_ngircd() {
	local p i
	p=$(free_port) || return 1
	cat >"$tmp/ngircd.conf" <<EOF
[Global]
	Name = bench.localhost
	Info = talknet-bench peer
	AdminInfo1 = talknet-bench
	AdminInfo2 = loopback only
	AdminEMail = bench@localhost
	Listen = 127.0.0.1
	Ports = $p
	MotdPhrase = bench
[Limits]
	MaxConnections = 0
	MaxConnectionsIP = 0
	MaxJoins = 0
	MaxNickLength = 30
	MaxPenaltyTime = 0
	PingTimeout = 600
	PongTimeout = 600
[Options]
	DNS = no
	Ident = no
	PAM = no
EOF
	"$NGIRCD" -n -f "$tmp/ngircd.conf" >"$tmp/ngircd.log" 2>&1 &
	pid[ngircd]=$!
	for i in $(seq 1 100); do
		grep -q "Now listening on .*:$p " "$tmp/ngircd.log" && break
		kill -0 "${pid[ngircd]}" 2>/dev/null || break
		sleep 0.1
	done
	if ! grep -q "Now listening on .*:$p " "$tmp/ngircd.log"; then
		stop_pid "${pid[ngircd]}"
		return 1
	fi
	servers+=(ngircd)
	port[ngircd]=$p
	conc[ngircd]=8	# its listen backlog is 10: never overrun it
}

over_budget() {
	[ $(( $(date +%s) - started + ${1:-0} )) -gt "$BUDGET" ]
}

# Runs talknet-bench against server $1; the JSON in $tmp/$1-$2.json.
# Usage: bench SERVER NAME WORKLOAD ARGS...
bench() {
	local s=$1 name=$2 wl=$3 rc
	local args=(--json -q -p "${port[$s]}" --server-pid "${pid[$s]}"
	    --concurrency "${conc[$s]}")
	shift 3
	[ "$s" = ngircd ] && args+=(--proto irc)
	tree_settle "${pid[$s]}" "${base[$s]}"
	sleep 0.5
	log "$s: $wl $name (load $(cut -d' ' -f1 /proc/loadavg))"
	[ -n "${whole:-}" ] && c0=$(tree_cpu "${pid[$s]}")
	timeout "$RUN_MAX" "$TALKNET_BENCH" "${args[@]}" "$@" "$wl" \
	    >"$tmp/$s-$name.json" 2>"$tmp/$s-$name.err"
	rc=$?
	if [ -n "${whole:-}" ]; then
		# The whole run's CPU, once its workers are reaped.
		tree_settle "${pid[$s]}" "${base[$s]}"
		printf '{"ok":true,"cpu_s":%s}\n' "$(awk -v a="$c0" \
		    -v b="$(tree_cpu "${pid[$s]}")" 'BEGIN { print b - a }')" \
		    >"$tmp/$s-$name.whole"
	fi
	[ $rc -eq 0 ] || notes+=("$s $name: talknet-bench exited $rc: $(tail -n 1 "$tmp/$s-$name.err")")
	return 0
}

# Whether a fan-out result is sustained: 100% delivered, p99 in bound.
sustained() {
	local pct p99
	pct=$(jget "$1" delivered_pct)
	p99=$(jget "$1" latency_ms.p99)
	[ -n "$pct" ] && [ -n "$p99" ] || return 1
	awk -v pct="$pct" -v p99="$p99" -v max="$P99_MAX" \
	    'BEGIN { exit !(pct >= 100 && p99 <= max) }'
}

# --- the servers, as run-bench starts them -----------------------------
tn_env=$(sed -n 's/^Environment=//p' \
    "$srcdir/contrib/systemd/talknetd.service.in")
tn_opts=(--max-clients 20000 --max-rooms 20000 --max-clients-per-ip 0
    --rate-limit 0 --login-timeout 0)
launch talknetd env $tn_env "$TALKNETD" -f -l 127.0.0.1:0 "${tn_opts[@]}"
[ -n "$NGIRCD" ] || { log "ngircd is not installed"; exit 1; }
for i in 1 2 3; do
	start_ngircd && break
	[ "$i" = 3 ] && { log "ngircd did not start:"; cat "$tmp/ngircd.log" >&2; exit 1; }
done
# The floor gets talknetd's environment too (no rseq area to keep up
# at each switch), so the shapes differ and nothing else.
launch multi env $tn_env "$tmp/floor" multi 0
launch single env $tn_env "$tmp/floor" single 0
for s in talknetd multi single; do
	conc[$s]=32
done
sleep 0.5
declare -A base
for s in "${servers[@]}"; do
	base[$s]=$(tree_size "${pid[$s]}")
	log "$s pid ${pid[$s]} port ${port[$s]} processes ${base[$s]}"
done

# --- the runs: each round, each workload, the servers taking turns ------
loads=()
for r in $(seq 1 "$ROUNDS"); do
	if over_budget 200; then
		notes+=("rounds $r to $ROUNDS skipped: over the time budget")
		break
	fi
	"$TALKNET_BENCH" --json -q --settle 10 settle >"$tmp/settle-$r.json" 2>/dev/null
	loads+=("round $r: $(uptime | sed 's/.*load average/load average/')")
	log "round $r: $(uptime)"
	"$TALKNET_BENCH" --json -q machine >"$tmp/machine-$r.json" \
	    2>"$tmp/machine-$r.err"
	for s in "${servers[@]}"; do
		bench "$s" "serial-$r" connect --connections "$SERIAL_CONNS" \
		    -d 10 --concurrency 1
	done
	for s in "${servers[@]}"; do
		bench "$s" "connect-$r" connect --connections "$CONNECTIONS" \
		    -d 10
	done
	for s in "${servers[@]}"; do
		bench "$s" "light-$r" private -c 2 -r 200 -d "$DUR"
	done
	for s in "${servers[@]}"; do
		bench "$s" "private-$r" private -c 100 -d "$DUR"
	done
	# Whole runs of two lengths: the difference is the CPU of
	# DUR - SHORT s of the steady state, set-up and teardown cancel.
	whole=1
	for s in "${servers[@]}"; do
		bench "$s" "fanout-$r" fanout -c "$CLIENTS" -s "$SENDERS" \
		    -r 1000 -b "$BYTES" -d "$DUR" --room
		bench "$s" "short-$r" fanout -c "$CLIENTS" -s "$SENDERS" \
		    -r 1000 -b "$BYTES" -d "$SHORT" --room
	done
	whole=
done
# The highest sustained fan-out: one run a rate, up from 1000 (the
# rounds' median), the servers taking turns, each until its first miss.
declare -A best done_s
for s in "${servers[@]}"; do
	best[$s]=0
	done_s[$s]=0
	for r in $(seq 1 "$ROUNDS"); do
		sustained "$tmp/$s-fanout-$r.json" && best[$s]=1000 && break
	done
	[ "${best[$s]}" = 0 ] && done_s[$s]=1
done
for rate in $SWEEP; do
	for s in "${servers[@]}"; do
		[ "${done_s[$s]}" = 1 ] && continue
		if over_budget 30; then
			notes+=("$s: sweep stopped before $rate msgs/s: over the time budget")
			done_s[$s]=1
			continue
		fi
		bench "$s" "sweep-$rate" fanout -c "$CLIENTS" -s "$SENDERS" \
		    -r "$rate" -b "$BYTES" -d "$SWEEP_DUR" --room
		if sustained "$tmp/$s-sweep-$rate.json"; then
			best[$s]=$rate
		else
			done_s[$s]=1
		fi
	done
done
loads+=("after: $(uptime | sed 's/.*load average/load average/')")

# --- the report ---------------------------------------------------------

# The median of the figures KEY of NAME-1..N of server $1 (or of
# $tmp/NAME-R.json when $1 is empty), in $med; all of them in $all.
median() {
	local s=$1 name=$2 key=$3 f v r
	all=$(for r in $(seq 1 "$ROUNDS"); do
		f=$tmp/${s:+$s-}$name-$r.json
		v=$(jget "$f" "$key")
		[ -n "$v" ] && grep -q '"ok":true' "$f" && echo "$v"
	done)
	med=$(echo "$all" | sort -g | awk 'NF { v[++n] = $1 }
		END { if (n % 2) print v[(n + 1) / 2]
		    else if (n) print (v[n / 2] + v[n / 2 + 1]) / 2 }')
	all=$(echo "$all" | awk 'NF { printf "%s%.4g", (n++ ? ", " : ""), $1 }')
}

# A number for the table: 3 significant digits, thousands as k.
num() {
	[ -n "$1" ] || { echo "-"; return; }
	awk -v v="$1" 'BEGIN {
		if (v >= 10000) printf "%.3gk\n", v / 1000
		else if (v >= 100) printf "%.0f\n", v
		else printf "%.3g\n", v }'
}

ratio() {
	[ -n "$1" ] && [ -n "$2" ] || { echo "-"; return; }
	awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f\n", a / b }'
}

# µs of server CPU per delivered copy, two ways: talknet-bench's
# (the tree's CPU over the measured phase, from per-process ticks), and
# the steady state's (the whole long run's CPU less the short one's,
# over the copies of the difference at the long run's delivered rate).
per_copy() {
	local c d w0 w1 ps
	c=$(jget "$1.json" server.cpu_s)
	d=$(jget "$1.json" delivered)
	[ -n "$c" ] && [ -n "$d" ] && [ "$d" != 0 ] &&
	    awk -v c="$c" -v d="$d" 'BEGIN { printf "{\"ok\":true,\"us\":%.3f}\n", c * 1e6 / d }' >"$3"
	w1=$(jget "$1.whole" cpu_s)
	w0=$(jget "$2.whole" cpu_s)
	ps=$(jget "$1.json" delivered_per_s)
	[ -n "$w1" ] && [ -n "$w0" ] && [ -n "$ps" ] && grep -q '"ok":true' "$2.json" &&
	    awk -v a="$w1" -v b="$w0" -v ps="$ps" -v t=$((DUR - SHORT)) \
	    'BEGIN { printf "{\"ok\":true,\"us\":%.3f,\"cpu_s\":%.2f}\n", (a - b) * 1e6 / (ps * t), a - b }' >"$4"
	return 0
}
for s in "${servers[@]}"; do
	for r in $(seq 1 "$ROUNDS"); do
		per_copy "$tmp/$s-fanout-$r" "$tmp/$s-short-$r" \
		    "$tmp/$s-copy-$r.json" "$tmp/$s-steady-$r.json"
		cp "$tmp/$s-fanout-$r.whole" "$tmp/$s-wholelong-$r.json" 2>/dev/null
		cp "$tmp/$s-short-$r.whole" "$tmp/$s-wholeshort-$r.json" 2>/dev/null
	done
done

median "" machine fork_per_s
fork=$med
fork_all=$all
declare -A val runs
# One figure of every server: label, run name, key.
figure() {
	local label=$1 name=$2 key=$3 s
	for s in "${servers[@]}"; do
		median "$s" "$name" "$key"
		val[$s]=$med
		runs[$s]=$all
	done
	printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" \
	    "$(num "${val[talknetd]}")" "$(num "${val[ngircd]}")" \
	    "$(num "${val[multi]}")" "$(num "${val[single]}")" \
	    "$(ratio "${val[talknetd]}" "${val[ngircd]}")" \
	    "$(ratio "${val[multi]}" "${val[ngircd]}")" \
	    "$(ratio "${val[multi]}" "${val[single]}")" \
	    "$(ratio "${val[talknetd]}" "${val[multi]}")"
	printf '| %s, each run | %s | %s | %s | %s | | | | |\n' "$label" \
	    "${runs[talknetd]}" "${runs[ngircd]}" "${runs[multi]}" \
	    "${runs[single]}"
}

# A row of plain values: label, then talknetd ngircd multi single.
row4() {
	printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" \
	    "$(num "$2")" "$(num "$3")" "$(num "$4")" "$(num "$5")" \
	    "$(ratio "$2" "$3")" "$(ratio "$4" "$3")" "$(ratio "$4" "$5")" \
	    "$(ratio "$2" "$4")"
}

# One target: what, the figure of a server against its reference, the
# bound (awk condition on v).
verdict() {
	[ -n "$2" ] || { echo "not measured"; return; }
	awk -v v="$2" "BEGIN { exit !($1) }" && echo met || echo "**not met**"
}

median "" machine wakeup_us
wake=$med
median "" machine pingpong_p50_us
pp50=$med
median "" machine pingpong_p99_us
pp99=$med
echo "# The architecture's floor (issue 20), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- commit: $(git -C "$srcdir" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "- machine: $(nproc) CPUs, $(sed -n 's/.*"cpu_model":"\([^"]*\)".*/\1/p' "$tmp/machine-1.json"), $(uname -sr)"
echo "- machine (\`talknet-bench machine\`, median of $ROUNDS, one a round): fork+exit+waitpid $(num "$fork")/s ($fork_all); Unix ping-pong p50 $(num "$pp50") µs, p99 $(num "$pp99") µs; bare wake-up $(num "$wake") µs"
for l in "${loads[@]}"; do
	echo "- $l"
done
echo "- talknetd: \`${tn_opts[*]}\`, environment \`$tn_env\`; ngircd: run-bench's configuration; floor multi and single: talknetd's environment, multi 8 spares ahead (one more after each miss, to 64), its hub gathering after broadcasts (5 ms at most); connects in flight: 32, ngircd 8"
echo "- each figure the median of $ROUNDS runs, the servers taking turns; fan-out: $CLIENTS clients in one room, $SENDERS senders, $BYTES-byte texts, $DUR s; the sweep one $SWEEP_DUR s run a rate"
echo
echo "| figure | talknetd | ngircd | floor multi | floor single | talknetd/ngircd | multi/ngircd | multi/single | talknetd/multi |"
echo "|---|---|---|---|---|---|---|---|---|"
figure "connect+identify p99 ms, one in flight ($SERIAL_CONNS)" serial latency_ms.p99
declare -A serial99
for s in "${servers[@]}"; do serial99[$s]=${val[$s]}; done
figure "connect+identify p50 ms, one in flight" serial latency_ms.p50
figure "connect+identify+disconnect per s ($CONNECTIONS)" connect connects.per_s
declare -A cps pct
for s in "${servers[@]}"; do
	cps[$s]=${val[$s]}
	pct[$s]=$(awk -v a="${val[$s]}" -v f="$fork" 'BEGIN { if (a != "" && f > 0) printf "%.1f\n", 100 * a / f }')
done
row4 "the same, % of fork+exit/s" "${pct[talknetd]}" "${pct[ngircd]}" \
    "${pct[multi]}" "${pct[single]}"
figure "private round trips/s (50 pairs, closed loop)" private roundtrips_per_s
declare -A rt50
for s in "${servers[@]}"; do rt50[$s]=${val[$s]}; done
figure "private round trip p99 ms (50 pairs)" private latency_ms.p99
figure "private round trip p50 ms (1 pair, 200/s)" light latency_ms.p50
figure "private round trip p99 ms (1 pair, 200/s)" light latency_ms.p99
declare -A light99
for s in "${servers[@]}"; do light99[$s]=${val[$s]}; done
figure "fan-out 1000 msgs/s: delivered %" fanout delivered_pct
figure "fan-out 1000 msgs/s: p50 ms" fanout latency_ms.p50
figure "fan-out 1000 msgs/s: p99 ms" fanout latency_ms.p99
figure "fan-out 1000 msgs/s: server CPU s (talknet-bench, measured phase)" fanout server.cpu_s
figure "fan-out 1000 msgs/s: server CPU µs per delivered copy (talknet-bench's CPU)" copy us
figure "fan-out 1000 msgs/s: whole run's server CPU s ($DUR s measured)" wholelong cpu_s
figure "fan-out 1000 msgs/s: whole run's server CPU s ($SHORT s measured)" wholeshort cpu_s
figure "fan-out 1000 msgs/s: server CPU µs per copy, steady state (the difference)" steady us
row4 "highest sustained msgs/s (100%, p99 <= $P99_MAX ms)" \
    "${best[talknetd]}" "${best[ngircd]}" "${best[multi]}" "${best[single]}"
echo
echo "Sweep runs (rate: delivered %, p99 ms):"
echo
for s in "${servers[@]}"; do
	line=""
	for rate in $SWEEP; do
		f=$tmp/$s-sweep-$rate.json
		[ -s "$f" ] || continue
		line+="${line:+; }$rate: $(num "$(jget "$f" delivered_pct)")%, $(num "$(jget "$f" latency_ms.p99)")"
	done
	echo "- $s: ${line:-none run}"
done
echo
echo "## Issue 20's unmet targets: talknetd and the floor of its shape"
echo
echo "| target | talknetd | floor multi | floor single |"
echo "|---|---|---|---|"
t() { ratio "$1" "$2"; }
a=$(t "${serial99[talknetd]}" "${serial99[ngircd]}")
b=$(t "${serial99[multi]}" "${serial99[ngircd]}")
c=$(t "${serial99[single]}" "${serial99[ngircd]}")
echo "| connect+identify p99, one in flight, ≤ 2× ngircd | ${a}× $(verdict 'v <= 2' "${a#-}") | ${b}× $(verdict 'v <= 2' "${b#-}") | ${c}× $(verdict 'v <= 2' "${c#-}") |"
echo "| connects/s ≥ 80% of fork+exit/s | ${pct[talknetd]}% $(verdict 'v >= 80' "${pct[talknetd]}") | ${pct[multi]}% $(verdict 'v >= 80' "${pct[multi]}") | ${pct[single]}% $(verdict 'v >= 80' "${pct[single]}") |"
a=$(t "${light99[talknetd]}" "${light99[ngircd]}")
b=$(t "${light99[multi]}" "${light99[ngircd]}")
c=$(t "${light99[single]}" "${light99[ngircd]}")
echo "| private round trip p99 (1 pair), ≤ 2× ngircd | ${a}× $(verdict 'v <= 2' "${a#-}") | ${b}× $(verdict 'v <= 2' "${b#-}") | ${c}× $(verdict 'v <= 2' "${c#-}") |"
a=$(t "${rt50[talknetd]}" "${rt50[ngircd]}")
b=$(t "${rt50[multi]}" "${rt50[ngircd]}")
c=$(t "${rt50[single]}" "${rt50[ngircd]}")
echo "| private round trips/s (50 pairs), ≥ 0.5× ngircd | ${a}× $(verdict 'v >= 0.5' "${a#-}") | ${b}× $(verdict 'v >= 0.5' "${b#-}") | ${c}× $(verdict 'v >= 0.5' "${c#-}") |"
a=$(t "${best[talknetd]}" "${best[ngircd]}")
b=$(t "${best[multi]}" "${best[ngircd]}")
c=$(t "${best[single]}" "${best[ngircd]}")
echo "| highest sustained fan-out, ≥ 2.5× ngircd | ${a}× $(verdict 'v >= 2.5' "${a#-}") | ${b}× $(verdict 'v >= 2.5' "${b#-}") | ${c}× $(verdict 'v >= 2.5' "${c#-}") |"
echo
echo "- took $(( $(date +%s) - started )) s"
for n in "${notes[@]}"; do
	echo "- note: $n"
done
