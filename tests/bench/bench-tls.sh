# bench-tls.sh: run-bench's TLS part (issue 18), sourced by it: the
# throwaway CA, the three TLS servers (talknetd's own tls://, talknetd
# in clear behind stunnel, ngircd's [SSL] port) and the TLS tables.
# It uses run-bench's variables and helpers; it runs nothing itself.

# Makes the run's throwaway CA and a certificate for 127.0.0.1 in
# $tmp/tls: ECDSA P-256, what certbot issues by default.
make_tls_certs() {
	local d=$tmp/tls
	mkdir -p "$d" || return 1
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$d/ext.cnf"
	(
		cd "$d" || exit 1
		ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
		# shellcheck disable=SC2086
		openssl req -x509 $ec -keyout ca.key -out ca.pem -days 1 \
		    -subj /CN=bench-ca &&
		openssl req $ec -keyout key.pem -out req.pem \
		    -subj /CN=localhost &&
		openssl x509 -req -in req.pem -CA ca.pem -CAkey ca.key \
		    -CAcreateserial -days 1 -extfile ext.cnf -out cert.pem
	) >"$d/openssl.log" 2>&1
}

# Two different free ports, in port_a and port_b.
free_ports() {
	local i
	port_a=$(free_port) || return 1
	for i in $(seq 1 10); do
		port_b=$(free_port) || return 1
		[ "$port_b" != "$port_a" ] && return 0
	done
	return 1
}

# Starts a second talknetd, with one tls:// listener on port 0.
start_talknetd_tls() {
	local i
	env $tn_env "$TALKNETD" -f -l tls://127.0.0.1:0 \
	    --tls-cert "$tmp/tls/cert.pem" --tls-key "$tmp/tls/key.pem" \
	    "${tn_opts[@]}" >"$tmp/talknetd-tls.log" 2>&1 &
	tls_pid=$!
	tls_port=
	for i in $(seq 1 100); do
		tls_port=$(sed -n 's/.*listening on tls:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' \
		    "$tmp/talknetd-tls.log" | head -n 1)
		[ -n "$tls_port" ] && break
		kill -0 "$tls_pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ -z "$tls_port" ]; then
		log "talknetd over TLS did not start:"
		cat "$tmp/talknetd-tls.log" >&2
		stop_pid "$tls_pid"
		tls_pid=
		return 1
	fi
	sleep 0.5
	tls_base=$(tree_size "$tls_pid")
	log "talknetd TLS pid $tls_pid port $tls_port"
}

# Starts a talknetd in clear behind stunnel, both children of one shell
# whose PID stands for the pair: --server-pid samples the two, and
# stopping the shell stops both.
start_stunnel() {
	local i bport
	free_ports || return 1
	bport=$port_a
	st_port=$port_b
	cat >"$tmp/stunnel.conf" <<EOF
foreground = yes
pid =
debug = 3
output = $tmp/stunnel.log
[talknet]
accept = 127.0.0.1:$st_port
connect = 127.0.0.1:$bport
cert = $tmp/tls/cert.pem
key = $tmp/tls/key.pem
EOF
	(
		trap 'kill -TERM $a $b 2>/dev/null; wait' TERM
		env $tn_env "$TALKNETD" -f -l "127.0.0.1:$bport" \
		    "${tn_opts[@]}" >"$tmp/talknetd-stunnel.log" 2>&1 &
		a=$!
		"$STUNNEL" "$tmp/stunnel.conf" >"$tmp/stunnel.err" 2>&1 &
		b=$!
		wait
	) &
	st_pid=$!
	# A talknetd mapping its table on a busy machine may take seconds.
	for i in $(seq 1 300); do
		grep -q "listening on 127.0.0.1:$bport" \
		    "$tmp/talknetd-stunnel.log" 2>/dev/null &&
		    (exec 3<>"/dev/tcp/127.0.0.1/$st_port") 2>/dev/null && break
		sleep 0.1
	done
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$st_port") 2>/dev/null; then
		log "talknetd behind stunnel did not start:"
		cat "$tmp/talknetd-stunnel.log" "$tmp/stunnel.err" >&2
		stop_pid "$st_pid"
		st_pid=
		return 1
	fi
	sleep 0.5
	st_base=$(tree_size "$st_pid")
	log "stunnel and talknetd: shell pid $st_pid, TLS port $st_port"
}

# Starts a second ngircd, serving its TLS port ([SSL]).
start_ngircd_tls() {
	free_ports || return 1
	ircs_port=$port_b
	ngircd_conf "$tmp/ngircd-tls.conf" "$port_a" "$ircs_port"
	ngircd_launch "$tmp/ngircd-tls.conf" "$tmp/ngircd-tls.log" \
	    "$ircs_port" || return 1
	ircs_pid=$ngircd_pid
	ircs_base=$(tree_size "$ircs_pid")
	log "ngircd TLS pid $ircs_pid port $ircs_port"
}

# Starts the TLS servers that can run here, into tls_servers; why the
# others cannot, in tls_off.
start_tls() {
	tls_servers=()
	tls_off=([tls]="-" [stunnel]="-" [ngircd-tls]="-")
	[ "$TLS" = 1 ] || return 0
	if "$TALKNET_BENCH" --tls --insecure -p 1 connect --connections 1 \
	    >/dev/null 2>&1; [ $? = 2 ]; then
		notes+=("TLS rows skipped: talknet-bench was built without libtls")
		return 0
	fi
	if ! command -v openssl >/dev/null || ! make_tls_certs; then
		notes+=("TLS rows skipped: no openssl CLI to make the certificate")
		return 0
	fi
	# The machine's own limit for handshakes, before any load.
	tls_speed=$(openssl speed -seconds 1 ecdsap256 ecdhx25519 2>/dev/null |
	    awk '/ecdsa \(nistp256\)/ { s = $(NF - 1); v = $NF }
		/ecdh \(X25519\)/ { x = $NF }
		END { if (x != "") printf "ECDSA P-256 sign %.0f/s, verify %.0f/s; X25519 %.0f/s", s, v, x }')
	case $tn_help in
	*--tls-cert*)
		if start_talknetd_tls; then
			tls_servers+=(tls)
			tls_off[tls]=
		else
			tls_off[tls]=failed
		fi ;;
	*)	tls_off[tls]="not yet"
		tls_notes+=("talknetd TLS: \"not yet\": this talknetd has no tls:// listener (built with ./configure --without-tls?)") ;;
	esac
	if [ -z "$STUNNEL" ]; then
		tls_off[stunnel]="no stunnel"
		tls_notes+=("stunnel is not installed (apt-get install stunnel4)")
	elif start_stunnel; then
		tls_servers+=(stunnel)
		tls_off[stunnel]=
	else
		tls_off[stunnel]=failed
	fi
	if [ -z "$NGIRCD" ]; then
		tls_off[ngircd-tls]="no ngircd"
	elif start_ngircd_tls; then
		tls_servers+=(ngircd-tls)
		tls_off[ngircd-tls]=
	else
		tls_off[ngircd-tls]=failed
		tls_notes+=("ngircd would not serve TLS (is it built with SSL?)")
	fi
}

# A TLS server's figure: tv the number (or empty), tf its cell, or why
# the server did not run.
tls_cell() {
	local s=$1 key=$2 name=$3
	tv=
	tf=${tls_off[$s]:-}
	[ -n "$tf" ] && return 0
	tv=$(jget "$tmp/$s-$name.json" "$key")
	tf=$(num "$tv")
	[ "$(jget "$tmp/$s-$name.json" ok)" = false ] && tv= && tf=failed
	return 0
}

# One row of the TLS table: label, JSON key, result name.
tls_row() {
	local label=$1 key=$2 name=$3 a fa b fb c fc
	tls_cell tls "$key" "$name"; a=$tv; fa=$tf
	tls_cell stunnel "$key" "$name"; b=$tv; fb=$tf
	tls_cell ngircd-tls "$key" "$name"; c=$tv; fc=$tf
	printf '| %s | %s | %s | %s | %s | %s |\n' "$label" "$fa" "$fb" "$fc" \
	    "$(ratio "$a" "$b")" "$(ratio "$a" "$c")"
}

# The highest sustained fan-out rate of a TLS server, as tls_cell sets.
tls_sustained() {
	tv=
	tf=${tls_off[$1]:-}
	[ -n "$tf" ] && return 0
	tv=$(cat "$tmp/$1-sustained" 2>/dev/null)
	tf=$(num "$tv")
}

# One row of TLS over clear, each TLS server over the same server in
# clear: label, JSON key, TLS result name, clear result name.
cost_row() {
	local label=$1 key=$2 tname=$3 pname=${4:-$3} p q a b c
	p=$(jget "$tmp/talknetd-$pname.json" "$key")
	q=$(jget "$tmp/ngircd-$pname.json" "$key")
	tls_cell tls "$key" "$tname"
	a=$tf
	[ -n "${tls_off[tls]:-}" ] || a=$(ratio "$tv" "$p")
	tls_cell stunnel "$key" "$tname"
	b=$tf
	[ -n "${tls_off[stunnel]:-}" ] || b=$(ratio "$tv" "$p")
	tls_cell ngircd-tls "$key" "$tname"
	c=$tf
	[ -n "${tls_off[ngircd-tls]:-}" ] || c=$(ratio "$tv" "$q")
	printf '| %s | %s | %s | %s |\n' "$label" "$a" "$b" "$c"
}

# The TLS part of the report: both tables, the sweeps, the notes.
tls_report() {
	echo
	echo "## TLS: talknetd's own, talknetd behind stunnel, ngircd's (issue 18)"
	echo
	echo "The same run, the same machine: talknetd serving a \`tls://\`"
	echo "listener itself; a second talknetd in clear behind stunnel on"
	echo "loopback, what an admin would put in front today (CPU and memory"
	echo "are stunnel's and that talknetd's together); a second ngircd"
	echo "serving its \`[SSL]\` port.  All three present one throwaway"
	echo "ECDSA P-256 certificate (what certbot issues by default), made by"
	echo "the \`openssl\` CLI for this run; the clients are talknet-bench"
	echo "\`--tls --ca\`, which verifies it, and each client makes a full"
	echo "handshake (TLS 1.3 here, no resumption)."
	echo
	[ -n "$STUNNEL" ] && echo "- stunnel: $("$STUNNEL" -version 2>&1 | grep -m1 '^stunnel'), one thread per connection; TLS by OpenSSL"
	[ -n "$irc_version" ] && echo "- ngircd: TLS by $(grep -m1 -o 'GnuTLS [0-9.]*\|OpenSSL [0-9.a-z]*' "$tmp/ngircd-tls.log" 2>/dev/null || echo 'its TLS library')"
	[ -n "$tls_speed" ] && echo "- machine limits for TLS (\`openssl speed\`, one core, before the servers ran): $tls_speed; a full handshake costs the server one signature and one X25519 exchange, the client two verifications (the certificate, the handshake's signature) and one X25519 exchange"
	echo "- talknet-bench: libtls $(pkg-config --modversion libtls 2>/dev/null || echo '?') on OpenSSL $(openssl version 2>/dev/null | cut -d' ' -f2)"
	echo "- connect: $TLS_CONNECTIONS connections per run, each connect, handshake, IDENTIFY (NICK/USER, 001), DISCONNECT (QUIT), close; median of $CONNECT_RUNS runs"
	echo
	echo "| figure | talknetd TLS | talknetd + stunnel | ngircd TLS | talknetd TLS / stunnel | talknetd TLS / ngircd TLS |"
	echo "|---|---|---|---|---|---|"
	tls_row "connect+handshake+identify per s (median of $CONNECT_RUNS)" connects.per_s connect
	tls_row "connect+handshake+identify p99 ms" latency_ms.p99 connect
	tls_row "connect: talknet-bench's own CPU s" bench_cpu_s connect
	for r in $RATES; do
		tls_row "fan-out $r msgs/s: delivered %" delivered_pct "fanout-$r"
		tls_row "fan-out $r msgs/s: p50 ms" latency_ms.p50 "fanout-$r"
		tls_row "fan-out $r msgs/s: p99 ms (lower is better)" latency_ms.p99 "fanout-$r"
		tls_row "fan-out $r msgs/s: server CPU s" server.cpu_s "fanout-$r"
	done
	tls_sustained tls; a=$tv; fa=$tf
	tls_sustained stunnel; b=$tv; fb=$tf
	tls_sustained ngircd-tls; c=$tv; fc=$tf
	printf '| highest sustained msgs/s (100%%, p99 <= %s ms) | %s | %s | %s | %s | %s |\n' \
	    "$P99_MAX" "$fa" "$fb" "$fc" "$(ratio "$a" "$b")" "$(ratio "$a" "$c")"
	tls_row "private round trip p99 ms (50 pairs, closed loop)" latency_ms.p99 private
	tls_row "private round trips/s (50 pairs)" roundtrips_per_s private
	tls_row "private round trip p99 ms (1 pair, 200/s)" latency_ms.p99 private-light
	tls_row "hold 1000 over TLS: Pss KiB/client" server.pss_per_client_kib hold-1000
	tls_row "hold 1000 over TLS: MemAvailable KiB/client" memavail_per_client_kib hold-1000
	tls_row "hold 1000 over TLS: server processes" server.procs hold-1000
	echo
	echo "TLS over clear: each TLS server's figure over the same server's in"
	echo "clear, from the main table (talknetd, ngircd) of this run:"
	echo
	echo "| figure | talknetd TLS / talknetd | stunnel / talknetd | ngircd TLS / ngircd |"
	echo "|---|---|---|---|"
	for r in $RATES; do
		cost_row "fan-out $r msgs/s: server CPU" server.cpu_s "fanout-$r"
		cost_row "fan-out $r msgs/s: p99" latency_ms.p99 "fanout-$r"
	done
	cost_row "connects per s" connects.per_s connect
	cost_row "private round trip p99 (50 pairs)" latency_ms.p99 private
	cost_row "hold 1000: Pss per client" server.pss_per_client_kib hold-1000
	cost_row "hold 1000: MemAvailable per client" memavail_per_client_kib hold-1000
	echo
	for s in "${tls_servers[@]}"; do
		for f in "$tmp/$s"-sweep-*.json; do
			[ -s "$f" ] || continue
			n=${f##*-sweep-}
			n=${n%.json}
			echo "- sweep: $s $n msgs/s: delivered $(num "$(jget "$f" delivered_pct)")%, p50 $(num "$(jget "$f" latency_ms.p50)") ms, p99 $(num "$(jget "$f" latency_ms.p99)") ms"
		done
	done
	for n in "${tls_notes[@]}"; do
		echo "- $n"
	done
}
