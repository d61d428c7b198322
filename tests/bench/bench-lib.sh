# bench-lib.sh: helpers the bench scripts share, sourced by
# floor-bench.sh and connect-parts.sh: starting and stopping a server,
# the size and the CPU of a process tree, one number of a talknet-bench
# JSON result.  Defines functions only; runs nothing.  launch and
# cleanup use the caller's tmp, servers, pid, port and log.

# Stops one server we started: TERM, a bounded wait, then KILL; reaped.
stop_pid() {
	local p=$1 i
	[ -n "$p" ] || return 0
	kill -TERM "$p" 2>/dev/null || return 0
	for i in $(seq 1 50); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	return 0
}

# Stops every server launched, and removes $tmp: the scripts' EXIT trap.
cleanup() {
	local s
	for s in "${servers[@]}"; do
		stop_pid "${pid[$s]}"
	done
	rm -rf "$tmp"
}

# Counts the processes of the tree under a PID.
tree_size() {
	ps -e -o pid=,ppid= | awk -v root="$1" '
		{ parent[$1] = $2 }
		END {
			n = 0
			for (p in parent)
				for (q = p; q != "" && q != 0; q = parent[q])
					if (q == root) { n++; break }
			print n
		}'
}

# Waits (at most 20 s) for a server's tree to shrink back to its size
# at start, or to hold still 2 s (a spare pool may stay larger).
tree_settle() {
	local p=$1 base=$2 i n last=-1 still=0
	for i in $(seq 1 200); do
		n=$(tree_size "$p")
		[ "$n" -le "$base" ] && break
		if [ "$n" = "$last" ]; then
			still=$((still + 1))
			[ "$still" -ge 20 ] && break
		else
			still=0
			last=$n
		fi
		sleep 0.1
	done
}

# The CPU seconds the tree under a PID has used: each member's utime
# and stime, and the cutime and cstime of the children it reaped (the
# kernel sums them in ns; /proc gives the sums in ticks).
tree_cpu() {
	local p
	ps -e -o pid=,ppid= | awk -v root="$1" '
		{ parent[$1] = $2 }
		END {
			for (p in parent)
				for (q = p; q != "" && q != 0; q = parent[q])
					if (q == root) { print p; break }
		}' | while read -r p; do
		# Fields after the ")" of the command: utime is the 12th.
		sed 's/.*) //' "/proc/$p/stat" 2>/dev/null
	done | awk -v hz="$(getconf CLK_TCK)" \
	    '{ t += $12 + $13 + $14 + $15 } END { printf "%.2f\n", t / hz }'
}

# Reads one number of a talknet-bench JSON result: "key" or "obj.key".
jget() {
	local s path=$2 obj
	[ -s "$1" ] || { echo ""; return; }
	s=$(cat "$1")
	while [[ $path == *.* ]]; do
		obj=${path%%.*}
		s=${s#*\"$obj\":\{}
		path=${path#*.}
	done
	[[ $s == *\"$path\":* ]] || { echo ""; return; }
	s=${s#*\"$path\":}
	s=${s%%[,\}]*}
	echo "$s"
}

# Starts $1 (a name) as "$2 ..." logging to $tmp/$1.log, and reads the
# port from the line "listening on 127.0.0.1:PORT" (talknetd, floor).
launch() {
	local name=$1 i p=
	shift
	"$@" >"$tmp/$name.log" 2>&1 &
	pid[$name]=$!
	servers+=("$name")
	for i in $(seq 1 100); do
		p=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
		    "$tmp/$name.log" | head -n 1)
		[ -n "$p" ] && break
		kill -0 "${pid[$name]}" 2>/dev/null || break
		sleep 0.1
	done
	[ -n "$p" ] || { log "$name did not start:"; cat "$tmp/$name.log" >&2; exit 1; }
	port[$name]=$p
}
