# bench-targets.sh: run-bench's issue 20 part, sourced by it: the table
# of issue 20's targets, each checked against this run's figures, and
# how long each workload waited for the machine to settle.  It uses
# run-bench's variables and helpers (jget, num, ratio, cell, fork_pct,
# HOLD_MAX, SETTLE_MAX, tmp); it runs nothing itself.

# The figure of the row labelled $2 in the talknetd column of the
# report $1 (an earlier run's), as a plain number; nothing if absent.
baseline_get() {
	[ -s "$1" ] || return 0
	awk -F'|' -v want="$2" '
		function trim(x) { gsub(/^ +| +$/, "", x); return x }
		/^\| figure \|/ {
			for (i = 2; i < NF; i++)
				if (trim($i) == "talknetd")
					col = i
			next
		}
		col && trim($2) == want {
			v = trim($col)
			k = v ~ /k$/ ? 1000 : v ~ /M$/ ? 1000000 : 1
			sub(/[kM]$/, "", v)
			if (v ~ /^[0-9.]+$/)
				print v * k
			exit
		}' "$1"
}

# talknetd's figure over ngircd's, or nothing: key, result name.
tn_ratio() {
	local a r
	cell talknetd "$1" "$2"
	a=$cv
	cell ngircd "$1" "$2"
	r=$(ratio "$a" "$cv")
	[ "$r" = - ] || echo "$r"
}

# One target: figure, what was measured, the target, and the value v
# the awk condition $5 judges ("not measured" when v is empty).
target_row() {
	local verdict="not measured"
	if [ -n "$4" ]; then
		if awk -v v="$4" "BEGIN { exit !($5) }"; then
			verdict=met
		else
			verdict="**not met**"
		fi
	fi
	printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$verdict"
}

# Two figures of the talknetd and ngircd cells, "A / ngircd B".
pair_text() {
	local a
	cell talknetd "$1" "$2"
	a=$cf
	cell ngircd "$1" "$2"
	echo "$a${3:-} / ngircd $cf${3:-}"
}

# The hold target: Pss and MemAvailable per client (spares included)
# no worse than the baseline report's; when that report has no such
# row (an earlier run without the big hold), no worse than this run's
# before column (TALKNETD_BEFORE), which is the build before the change.
hold_target() {
	local n=$HOLD_MAX p m bp bm v="" fig base="the baseline report"
	fig="hold $n: Pss and MemAvailable per client, spares included"
	if [ "$n" = 0 ]; then
		target_row "hold 10000: Pss and MemAvailable per client" \
		    "not run (BENCH_HOLD_MAX=0)" "no worse than $BASELINE" "" ""
		return 0
	fi
	cell talknetd server.pss_per_client_kib "hold-$n"; p=$cv
	cell talknetd memavail_per_client_kib "hold-$n"; m=$cv
	bp=$(baseline_get "$tmp/baseline.md" "hold $n: Pss KiB/client")
	bm=$(baseline_get "$tmp/baseline.md" "hold $n: MemAvailable KiB/client")
	if [ -z "$bp" ] || [ -z "$bm" ]; then
		cell before server.pss_per_client_kib "hold-$n"; bp=$cv
		cell before memavail_per_client_kib "hold-$n"; bm=$cv
		base="this run's before column"
	fi
	if [ -n "$p" ] && [ -n "$m" ] && [ -n "$bp" ] && [ -n "$bm" ]; then
		v=$(awk -v p="$p" -v m="$m" -v bp="$bp" -v bm="$bm" \
		    'BEGIN { print (p <= bp && m <= bm) ? 1 : 0 }')
	fi
	target_row "$fig" "Pss $(num "$p") KiB ($base: $(num "$bp")), MemAvailable $(num "$m") KiB ($base: $(num "$bm"))" \
	    "no worse than $base" "$v" "v == 1"
}

# The table of issue 20's targets.
targets_report() {
	local r pct a b
	echo
	echo "## Targets of issue 20"
	echo
	echo "Each target of issue 20 against this run's own figures: ratios to"
	echo "ngircd measured in this run, the connect rate against this"
	echo "machine's fork+exit rate measured in this run (\`talknet-bench"
	echo "machine\`), the hold figures against the baseline report"
	echo "($BASELINE, as it was before this run)."
	echo
	echo "| target | measured | target | met |"
	echo "|---|---|---|---|"
	r=$(tn_ratio latency_ms.p99 connect-serial)
	target_row "connect+identify p99, one connection in flight" \
	    "$(pair_text latency_ms.p99 connect-serial " ms") = ${r:--}×" \
	    "≤ 2× ngircd's" "$r" "v <= 2"
	pct=$(fork_pct talknetd)
	a=$(jget "$tmp/talknetd-connect.json" connects.per_s)
	b=$(jget "$tmp/machine-machine.json" fork_per_s)
	target_row "connect+identify+disconnect per s ($TN_CONC in flight)" \
	    "$(num "$a")/s = ${pct:--}% of $(num "$b") fork+exit/s" \
	    "≥ 80% of the machine's fork+exit rate" "$pct" "v >= 80"
	r=$(tn_ratio latency_ms.p99 private-light)
	target_row "private round trip p99 (1 pair, 200/s)" \
	    "$(pair_text latency_ms.p99 private-light " ms") = ${r:--}×" \
	    "≤ 2× ngircd's" "$r" "v <= 2"
	r=$(tn_ratio roundtrips_per_s private)
	target_row "private round trips/s (50 pairs)" \
	    "$(pair_text roundtrips_per_s private) = ${r:--}×" \
	    "≥ 0.5× ngircd's" "$r" "v >= 0.5"
	a=$(cat "$tmp/talknetd-sustained" 2>/dev/null)
	b=
	[ "$has_irc" = 1 ] && b=$(cat "$tmp/ngircd-sustained" 2>/dev/null)
	r=$(ratio "$a" "$b")
	[ "$r" = - ] && r=
	# ngircd sustained none of the rates tried: any talknetd rate is
	# above 2.5 times it, and none is not.
	[ "$b" = 0 ] && [ -n "$a" ] && r=$( [ "$a" -gt 0 ] && echo 99 || echo 0 )
	target_row "highest sustained fan-out (100%, p99 ≤ $P99_MAX ms)" \
	    "$(num "$a") / ngircd $(num "$b") msgs/s$( [ "$b" = 0 ] && echo " (ngircd sustained none of the rates tried)" || echo " = ${r:--}×")" \
	    "≥ 2.5× ngircd's" "$r" "v >= 2.5"
	hold_target
	echo
	echo "Where a target is not met, doc/performance-profile.md measures the"
	echo "limit: the floor of the process shape (tests/bench/floor-bench.sh)"
	echo "and a connection's CPU part by part (tests/bench/connect-parts.sh)."
}

# How long each workload waited for the machine to settle.
settle_report() {
	echo
	echo "## Settling before each workload"
	echo
	if [ "$SETTLE_MAX" = 0 ]; then
		echo "Not waited for (BENCH_SETTLE=0): each workload started 1 s after"
		echo "the servers' process trees shrank back."
		return 0
	fi
	echo "Before each workload, run-bench waits for the servers' process"
	echo "trees to shrink back, then (\`talknet-bench settle --settle"
	echo "$SETTLE_MAX\`) until MemAvailable holds still (within 2 MiB over"
	echo "2 s) and the CPUs are at most 10% busy over the same 2 s, for"
	echo "$SETTLE_MAX s at most.  Each workload's wait in seconds; \"(bound)\""
	echo "where the bound ended it, with the CPUs' busy share and how far"
	echo "MemAvailable moved over those last 2 s:"
	echo
	[ -s "$tmp/settle.log" ] || { echo "- no waits recorded"; return 0; }
	awk '
		!($1 in line) { order[++n] = $1; line[$1] = "" }
		{
			w = sprintf("%s %.1f", $2, $3)
			if ($4 != "settled")
				w = w sprintf(" (bound, CPU %s%%, %.1f MiB)", $5, $6 / 1024)
			line[$1] = line[$1] (line[$1] == "" ? "" : ", ") w
			all++
			sum += $3
			if ($4 != "settled")
				bound++
			if ($3 > max) {
				max = $3
				at = $1 " " $2 " (" ($4 == "settled" ? "settled" : "bound") ")"
			}
		}
		END {
			for (i = 1; i <= n; i++)
				printf "- %s: %s\n", order[i], line[order[i]]
			printf "- longest: %.1f s, %s; %d of %d waits ended at the bound; %.0f s waited in all\n", max, at, bound, all, sum
			if (bound * 2 > all)
				print "\n**Most waits ended at the bound: the machine did not settle before most workloads (other work, or the kernel still reclaiming after the last one), and the figures are skewed by it.**"
		}' "$tmp/settle.log"
}
