# bench-cluster.sh: run-bench's cluster part (issue 19), sourced by it:
# a redis-server of the run's own, three talknetd nodes with --cluster
# on it and one talknetd alone, the same clients against both
# (talknet-bench --nodes spreads them), Redis's own counts, and the
# table.  It uses run-bench's variables and helpers (free_port, stop_pid,
# settle, machine_settle, tree_size, jget, num, ratio, median_of, log, notes); its one
# entry is cluster_report, which runs and prints the section, and stops
# every process it started by PID before it returns.
#
# Environment (besides run-bench's):
#   BENCH_CLUSTER=0  skips the section
#   REDIS_SERVER     redis-server (default: on PATH; none: skipped)
#   REDIS_CLI        redis-cli, for INFO (default: on PATH)

CLUSTER=${BENCH_CLUSTER:-1}
REDIS_SERVER=${REDIS_SERVER-$(command -v redis-server 2>/dev/null || true)}
REDIS_CLI=${REDIS_CLI-$(command -v redis-cli 2>/dev/null || true)}
CL_NODES=3
cl_redis_pid=
cl_redis_port=
cl_nodes_pid=
cl_nodes_base=0
cl_nodes=
cl_single_pid=
cl_single_port=
cl_single_base=0
cl_notes=()

# One Redis command; its answer without the CRs.
cl_redis() {
	"$REDIS_CLI" -h 127.0.0.1 -p "$cl_redis_port" "$@" 2>/dev/null |
	    tr -d '\r'
}

# Starts redis-server on a free port: no RDB, no AOF, its files in $tmp.
cl_start_redis() {
	local i
	mkdir -p "$tmp/redis" || return 1
	cl_redis_port=$(free_port) || return 1
	"$REDIS_SERVER" --port "$cl_redis_port" --bind 127.0.0.1 --save '' \
	    --appendonly no --dir "$tmp/redis" --daemonize no \
	    --logfile "$tmp/redis/redis.log" >/dev/null 2>&1 &
	cl_redis_pid=$!
	for i in $(seq 1 100); do
		[ "$(cl_redis PING)" = PONG ] && break
		kill -0 "$cl_redis_pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ "$(cl_redis PING)" != PONG ]; then
		log "redis-server did not start:"
		cat "$tmp/redis/redis.log" >&2
		return 1
	fi
	log "redis-server pid $cl_redis_pid port $cl_redis_port"
}

# Waits (at most 30 s: a node mapping its table on a busy machine may
# take seconds) until the talknetd logging to $1 listens, and with $3
# until its hub reached Redis, while PID $2 lives; its port, or nothing.
cl_wait() {
	local i port=
	for i in $(seq 1 300); do
		port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
		    "$1" 2>/dev/null | head -n 1)
		[ -n "$port" ] && { [ -z "${3:-}" ] ||
		    grep -q 'cluster: ok' "$1"; } && break
		port=
		kill -0 "$2" 2>/dev/null || break
		sleep 0.1
	done
	[ -n "$port" ] && echo "$port"
}

# Starts the three nodes, children of one shell whose PID stands for
# them (--server-pid samples the three; stopping the shell stops them),
# and waits until each listens and its hub reached Redis.
cl_start_nodes() {
	local k port
	(
		pids=
		trap 'kill -TERM $pids 2>/dev/null; wait' TERM
		for k in $(seq 1 "$CL_NODES"); do
			env $tn_env "$TALKNETD" -f -l 127.0.0.1:0 \
			    --control "$tmp/cl-control-$k" \
			    --cluster "redis://127.0.0.1:$cl_redis_port" \
			    --node-id "bench$k" "${tn_opts[@]}" \
			    >"$tmp/cluster-node$k.log" 2>&1 &
			pids="$pids $!"
		done
		wait
	) &
	cl_nodes_pid=$!
	cl_nodes=
	for k in $(seq 1 "$CL_NODES"); do
		if ! port=$(cl_wait "$tmp/cluster-node$k.log" "$cl_nodes_pid" \
		    ok); then
			log "the cluster's node $k did not start:"
			cat "$tmp/cluster-node$k.log" >&2
			return 1
		fi
		cl_nodes=${cl_nodes:+$cl_nodes,}127.0.0.1:$port
	done
	sleep 0.5
	cl_nodes_base=$(tree_size "$cl_nodes_pid")
	log "cluster: shell pid $cl_nodes_pid, nodes $cl_nodes"
}

# Starts the single node the cluster is measured against: the same
# options, no --cluster.
cl_start_single() {
	env $tn_env "$TALKNETD" -f -l 127.0.0.1:0 --control "$tmp/cl-control-0" \
	    "${tn_opts[@]}" >"$tmp/cluster-single.log" 2>&1 &
	cl_single_pid=$!
	if ! cl_single_port=$(cl_wait "$tmp/cluster-single.log" \
	    "$cl_single_pid"); then
		log "the single node did not start:"
		cat "$tmp/cluster-single.log" >&2
		return 1
	fi
	sleep 0.5
	cl_single_base=$(tree_size "$cl_single_pid")
	log "single node pid $cl_single_pid port $cl_single_port"
}

# Stops what this part started, by PID; also run-bench's exit trap's.
cl_stop() {
	stop_pid "$cl_nodes_pid"
	stop_pid "$cl_single_pid"
	stop_pid "$cl_redis_pid"
	cl_nodes_pid=
	cl_single_pid=
	cl_redis_pid=
}

# Redis's counts now into $1: every command called (those its scripts
# call included; INFO itself not), of which XADD, XREAD and EVAL (and
# EVALSHA), and its CPU seconds (user + system).
cl_snap() {
	{ cl_redis INFO commandstats; cl_redis INFO cpu; } | awk -F'[:=,]' '
		/^cmdstat_/ && $1 != "cmdstat_info" { all += $3 }
		/^cmdstat_xadd:/ { xadd = $3 }
		/^cmdstat_xread:/ { xread = $3 }
		/^cmdstat_eval/ { ev += $3 }
		/^used_cpu_(sys|user):/ { cpu += $2 }
		END { printf "%d %d %d %d %.6f\n", all, xadd, xread, ev, cpu }' \
	    >"$1"
}

# Field $2 (1 all, 2 XADD, 3 XREAD, 4 EVAL, 5 CPU s) of Redis's counts
# over the cluster run $1.
cl_delta() {
	[ -s "$tmp/cluster-$1.r0" ] && [ -s "$tmp/cluster-$1.r1" ] ||
	    { echo ""; return; }
	awk -v f="$2" 'NR == FNR { a = $f; next } { printf "%.6f\n", $f - a }' \
	    "$tmp/cluster-$1.r0" "$tmp/cluster-$1.r1"
}

# Runs talknet-bench against the cluster (its clients spread over the
# nodes with --nodes, Redis's counts taken around it) or the single
# node; the JSON lands in $tmp/SERVER-NAME.json.
# Usage: cl_bench cluster|single NAME WORKLOAD ARGS...
cl_bench() {
	local server=$1 name=$2 wl=$3 rc
	shift 3
	local args=(--json --label "$server $name" --concurrency "$TN_CONC")
	settle "$cl_nodes_pid" "$cl_nodes_base"
	settle "$cl_single_pid" "$cl_single_base"
	machine_settle "$server" "$name"
	if [ "$server" = cluster ]; then
		args+=(--nodes "$cl_nodes" --server-pid "$cl_nodes_pid")
		cl_snap "$tmp/cluster-$name.r0"
	else
		args+=(-p "$cl_single_port" --server-pid "$cl_single_pid")
	fi
	log "$server: $wl $name"
	"$TALKNET_BENCH" "${args[@]}" "$@" "$wl" >"$tmp/$server-$name.json" \
	    2>"$tmp/$server-$name.err"
	rc=$?
	[ "$server" = cluster ] && cl_snap "$tmp/cluster-$name.r1"
	if [ $rc -ne 0 ]; then
		cl_notes+=("$server $name: talknet-bench exited $rc: $(grep -m1 -e FAILED -e problem "$tmp/$server-$name.err" || tail -n 1 "$tmp/$server-$name.err")")
	fi
	sed 's/^/    /' "$tmp/$server-$name.err" >&2
	return 0
}

# The runs: connects, private pairs (each across two nodes), a fan-out
# set-up alone (what a run costs Redis besides its messages), fan-outs.
cl_runs() {
	local i r s conns=2000
	[ "$QUICK" = 1 ] && conns=300
	for i in $(seq 1 "$CONNECT_RUNS"); do
		cl_bench cluster "connect-$i" connect --connections "$conns" \
		    -d "$DUR"
		cl_bench single "connect-$i" connect --connections "$conns" \
		    -d "$DUR"
	done
	median_of cluster connect connects.per_s "$CONNECT_RUNS"
	median_of single connect connects.per_s "$CONNECT_RUNS"
	for s in cluster single; do
		cl_bench "$s" private-light private -c 2 -r 200 -d "$DUR"
		cl_bench "$s" private private -c 100 -d "$DUR"
	done
	cl_bench cluster fanout-setup fanout -c "$CLIENTS" -s "$SENDERS" \
	    -r 1000 -b "$BYTES" -d 0 --warmup 0 --room
	for r in $RATES; do
		for s in cluster single; do
			cl_bench "$s" "fanout-$r" fanout -c "$CLIENTS" \
			    -s "$SENDERS" -r "$r" -b "$BYTES" -d "$DUR" --room
		done
	done
}

# A figure's cell: cv the number (or empty), cf its text.
cl_cell() {
	cv=$(jget "$tmp/$1-$3.json" "$2")
	cf=$(num "$cv")
	[ "$(jget "$tmp/$1-$3.json" ok)" = false ] && cv= && cf=failed
	return 0
}

# One row, both sides and their ratio: label, JSON key, result name.
cl_row() {
	local a fa
	cl_cell cluster "$2" "$3"; a=$cv; fa=$cf
	cl_cell single "$2" "$3"
	printf '| %s | %s | %s | %s |\n' "$1" "$fa" "$cf" "$(ratio "$a" "$cv")"
}

# Redis's count $2 over the fan-out run $1, less the set-up run's, per
# message the run sent (warm-up included), times $3.
cl_per_msg() {
	local d s sent
	d=$(cl_delta "$1" "$2")
	s=$(cl_delta fanout-setup "$2")
	sent=$(jget "$tmp/cluster-$1.json" sent_all)
	[ -n "$d" ] && [ -n "$s" ] && [ -n "$sent" ] || { echo ""; return; }
	awk -v d="$d" -v s="$s" -v n="$sent" -v k="$3" \
	    'BEGIN { if (n > 0) printf "%.4f\n", (d - s) / n * k }'
}

# A row of the cluster's alone: label, value.
cl_only() {
	printf '| %s | %s | - | - |\n' "$1" "$(num "$2")"
}

# The section's text and table.
cl_table() {
	local r us n
	echo "Three talknetd nodes (\`--cluster\`, node ids bench1..bench$CL_NODES) on"
	echo "one redis-server ($("$REDIS_SERVER" --version 2>/dev/null | sed -n 's/.*v=\([0-9.]*\).*/\1/p'), no persistence, on loopback), against one"
	echo "talknetd alone with the same options and the same clients, in the same"
	echo "run.  The clients go round robin over the nodes (\`talknet-bench"
	echo "--nodes\`): a third on each, the senders too, and each private pair"
	echo "has its two ends on two nodes, so every round trip crosses the"
	echo "cluster twice.  Redis's figures are \`INFO commandstats\` (commands its"
	echo "scripts call included) and \`INFO cpu\` before and after each run,"
	echo "less a run that only sets up and tears down the same $CLIENTS clients,"
	echo "divided by the messages sent (warm-up included)."
	echo
	echo "| figure | 3 nodes | 1 node | 3 nodes / 1 node |"
	echo "|---|---|---|---|"
	for r in $RATES; do
		cl_row "fan-out $r msgs/s: delivered %" delivered_pct "fanout-$r"
		cl_row "fan-out $r msgs/s: p50 ms" latency_ms.p50 "fanout-$r"
		cl_row "fan-out $r msgs/s: p99 ms" latency_ms.p99 "fanout-$r"
		cl_row "fan-out $r msgs/s: the nodes' CPU s (all of them)" server.cpu_s "fanout-$r"
		cl_only "fan-out $r msgs/s: Redis CPU s (whole run)" "$(cl_delta "fanout-$r" 5)"
		cl_only "fan-out $r msgs/s: Redis CPU µs per message" "$(cl_per_msg "fanout-$r" 5 1000000)"
		cl_only "fan-out $r msgs/s: Redis commands per message" "$(cl_per_msg "fanout-$r" 1 1)"
		cl_only "fan-out $r msgs/s: of which XADD" "$(cl_per_msg "fanout-$r" 2 1)"
		cl_only "fan-out $r msgs/s: XREAD calls per message" "$(cl_per_msg "fanout-$r" 3 1)"
	done
	cl_row "fan-out set-up: clients/s (connect+identify+room)" setup.per_s "fanout-${RATES%% *}"
	cl_row "private round trip p50 ms (1 pair, 200/s; across nodes)" latency_ms.p50 private-light
	cl_row "private round trip p99 ms (1 pair, 200/s; across nodes)" latency_ms.p99 private-light
	cl_row "private round trip p50 ms (50 pairs, closed loop)" latency_ms.p50 private
	cl_row "private round trip p99 ms (50 pairs, closed loop)" latency_ms.p99 private
	cl_row "private round trips/s (50 pairs, closed loop)" roundtrips_per_s private
	cl_row "connect+identify+disconnect per s (median of $CONNECT_RUNS)" connects.per_s connect
	cl_row "connect+identify p99 ms" latency_ms.p99 connect
	echo
	echo "What the figures mean on this machine: the three nodes, Redis, the"
	echo "single node (idle meanwhile) and talknet-bench share its $(nproc) cores."
	echo "A cluster spreads the fan-out over machines; here the same cores do"
	echo "all three nodes' fan-out, Redis's work and the extra hops, so a"
	echo "ratio above 1 in latency or CPU is the cost of going through Redis,"
	echo "not a loss of capacity a real cluster would see, and the figures"
	echo "say nothing of how far three machines would go.  What limits them:"
	echo
	echo "- Redis round trips: a message from one node to another is an XADD"
	echo "  (one round trip from the sender's hub) and an XREAD by each other"
	echo "  node (another), on top of the single node's path; the cross-node"
	echo "  private round trip makes that trip twice, which is most of its"
	echo "  p50 over the single node's."
	echo "- Stream reads: every node reads every other node's stream, so"
	echo "  Redis serves (nodes - 1) reads of each message; an XREAD returns"
	echo "  whatever has piled up (up to 1000 entries a stream), so the reads"
	echo "  per message fall as the rate rises (the XREAD row), while the"
	echo "  entries read stay (nodes - 1) per message."
	echo "- Each node's fan-out: a node still wakes one worker per local"
	echo "  member for each message, as a single node does for all of them;"
	echo "  the three nodes together do the single node's fan-out work plus"
	echo "  their Redis connections', which is what the CPU rows compare."
	us=$(cl_per_msg "fanout-${RATES##* }" 5 1000000)
	echo "- Redis itself: one thread.  At $(num "$us") µs of its CPU per message"
	echo "  (the ${RATES##* } msgs/s run), one Redis core would carry about"
	echo "  $(awk -v u="$us" 'BEGIN { if (u > 0) printf "%.0f", 1000000 / u; else print "?" }') msgs/s for $CL_NODES nodes (a floor: that CPU includes its timers"
	echo "  and the idle nodes' polling); below that the ceiling here is the"
	echo "  cores everything shares, and the nodes' fan-out to their workers."
	for n in "${cl_notes[@]}"; do
		echo "- $n"
	done
}

# The cluster section of the report: starts Redis, the nodes and the
# single node, runs, prints, stops them; or says why it did not run.
cluster_report() {
	[ "$CLUSTER" = 1 ] || return 0
	echo
	echo "## A cluster of three nodes against one node (issue 19)"
	echo
	if [ -z "$REDIS_SERVER" ] || [ -z "$REDIS_CLI" ]; then
		echo "Skipped: no redis-server (or redis-cli) here (Debian: apt-get install redis-server)."
		return 0
	fi
	case $tn_help in
	*--cluster*) ;;
	*)	echo "Skipped: this talknetd was built without hiredis (./configure --without-hiredis, or no libhiredis-dev): no --cluster."
		return 0 ;;
	esac
	# Stopped by their PIDs whatever happens, with run-bench's own.
	trap 'cl_stop; cleanup' EXIT
	if cl_start_redis && cl_start_nodes && cl_start_single; then
		cl_runs
		cl_table
	else
		echo "Skipped: the servers would not start (see the log of make bench)."
	fi
	cl_stop
	trap cleanup EXIT
}
