#!/bin/bash
# sizes.sh - the relay benchmark (bench/relay.sh) at every message size
# issue 12 names: 2 KB, 100 KB, 1 MB, 10 MB and 50 MB, 20 sessions, sluiced
# and Postfix side by side in alternating rounds, each relaying to its own
# sink (SINK, below).  The message count per size keeps a round in seconds and
# every session busy; the 20 MB row runs with MEM=1 (peak memory of each
# server).  One line per size: end-to-end and accepted msgs/s, best of
# RUNS rounds, and the ratios; then the memory line.
#
# The ceiling: at each size the same load (smtpload -c 20, same count)
# also goes straight into the same kind of sink, which stores nothing,
# RUNS times; its best rate is the most any server could accept with this
# load tool on this machine, and sink/postfix the highest ratio any server
# could show (the "ceiling" columns).
#
# SINK=tlssink (the default since 2026-12-04) is bench/tlssink.c without
# a certificate: one thread, epoll, no STARTTLS offered.  SINK=smtp-sink
# is Postfix's sink, which every run before used: from 1 MB up it is the
# slowest part of the chain (smtpload into it, 20 x 1 MB: 197-238 msgs/s
# against 1009-1454 into tlssink, same minute), so it capped both the
# ceiling and sluiced's end-to-end rate there (bench/README.md).
#
#   RUNS=3 BENCH_BUILD=build bench/sizes.sh
#   SIZES="1048576:400 52428800:20" bench/sizes.sh   (size:messages)
#
# Exits non-zero if a relay run failed (lost, duplicated or timed out).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
RUNS=${RUNS:-3}
SIZES=${SIZES:-"2048:10000 102400:2000 1048576:400 10485760:100 52428800:20"}
BUILD=${BENCH_BUILD:-build}
OUT=$ROOT/$BUILD/bench-sizes.txt
FAILED=0
SINK=${SINK:-tlssink} # the next hop and the ceiling: tlssink | smtp-sink
SMTP_SINK=/usr/sbin/smtp-sink
case "$SINK" in
smtp-sink | tlssink) ;;
*) echo "sizes.sh: SINK=$SINK: smtp-sink or tlssink" >&2; exit 2 ;;
esac
export SINK
TMP=$(mktemp -d /tmp/sluice-sizes.XXXXXX) || exit 1
SINK_PID=''
cleanup() {
	[ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null && wait "$SINK_PID"
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cc -std=c11 -D_GNU_SOURCE -O2 -o "$TMP/smtpload" bench/smtpload.c ||
    { echo "sizes.sh: bench/smtpload.c does not build" >&2; exit 1; }
cc -std=c11 -D_GNU_SOURCE -O2 -o "$TMP/tlssink" bench/tlssink.c \
    -lssl -lcrypto ||
    { echo "sizes.sh: bench/tlssink.c does not build" >&2; exit 1; }

# ceiling size n: the best of RUNS rounds of smtpload into a fresh
# sink of the kind SINK names (msgs/s; 0 when a round failed)
ceiling() {
	local best=0 port i r args=(-c)
	[ "$(id -u)" = 0 ] && args+=(-u nobody) # smtp-sink refuses root
	for ((i = 0; i < 5; i++)); do
		port=$(/usr/bin/python3 -c 'import socket; s = socket.socket()
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
		if [ "$SINK" = tlssink ]; then
			"$TMP/tlssink" "127.0.0.1:$port" \
			    >/dev/null 2>&1 </dev/null &
		else
			"$SMTP_SINK" "${args[@]}" "127.0.0.1:$port" 256 \
			    >/dev/null 2>&1 </dev/null &
		fi
		SINK_PID=$!
		for ((r = 0; r < 50; r++)); do
			[ -n "$(ss -Hltn "sport = :$port")" ] && break
			sleep 0.1
		done
		[ -n "$(ss -Hltn "sport = :$port")" ] && break
		kill "$SINK_PID" 2>/dev/null
		wait "$SINK_PID" 2>/dev/null
		SINK_PID=''
	done
	[ -n "$SINK_PID" ] || { echo 0; return; }
	for ((i = 0; i < RUNS; i++)); do
		r=$("$TMP/smtpload" -c 20 -m "$2" -s "$1" -f a@example.org \
		    -t b@example.net "127.0.0.1:$port" 2>/dev/null |
		    awk '$1 == "msgs/s:" { print $2 }')
		echo "  round $((i + 1)) $SINK: ${r:-0} msgs/s" >&2
		best=$(awk -v a="$best" -v b="${r:-0}" \
		    'BEGIN { print (b + 0 > a + 0 ? b : a) }')
	done
	kill "$SINK_PID" 2>/dev/null
	wait "$SINK_PID" 2>/dev/null
	SINK_PID=''
	echo "$best"
}

echo "relay at every size: $RUNS rounds each (best counts), 20 sessions," \
    "next hop and ceiling $SINK," \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"
rows=()
for spec in $SIZES; do
	size=${spec%%:*} n=${spec##*:}
	log=$(mktemp /tmp/sluice-sizes.XXXXXX)
	SIZE=$size MESSAGES=$n RUNS=$RUNS WARMUP=$((n / 10)) TIMEOUT=900 \
	    bench/relay.sh >"$log" 2>&1 || FAILED=1
	grep -E '^  round' "$log"
	# the summary rows: "sluiced E2E ACC n/n, n/n" and the ratio row
	s=$(awk '$1 == "sluiced" && $2 ~ /^[0-9.e+]+$/ { print $2, $3 }' "$log")
	p=$(awk '$1 == "postfix" && $2 ~ /^[0-9.e+]+$/ { print $2, $3 }' "$log")
	r=$(awk '$1 == "ratio" { print $3, $4 }' "$log")
	rm -f "$log"
	k=$(ceiling "$size" "$n")
	pa=$(echo "$p" | awk '{ print $2 }')
	sa=$(echo "$s" | awk '{ print $2 }')
	c=$(awk -v k="$k" -v p="$pa" -v s="$sa" 'BEGIN {
	    if (p + 0 > 0 && k + 0 > 0) printf "%.3g %.3g", k / p, s / k
	    else print "- -" }')
	rows+=("$(printf '%-10s %8s %8s %8s %8s %8s %8s %8s %8s %8s' \
	    "$size" $s $p $r "$k" $c)")
done
mem=''
log=$(mktemp /tmp/sluice-sizes.XXXXXX)
MEM=1 SIZE=20971520 MESSAGES=20 RUNS=$RUNS WARMUP=0 TIMEOUT=900 \
    bench/relay.sh >"$log" 2>&1 || FAILED=1
grep -E '^  round' "$log"
mem=$(grep '^peak memory' "$log")
rm -f "$log"
{
	echo
	printf '%-10s %17s %17s %17s %26s\n' "" "sluiced msgs/s" \
	    "postfix msgs/s" "ratio" "$SINK (no store)"
	printf '%-10s %8s %8s %8s %8s %8s %8s %8s %8s %8s\n' size e2e \
	    accepted e2e accepted e2e accepted msgs/s ceiling s/sink
	printf '%s\n' "${rows[@]}"
	echo
	echo "20 x 20 MB relayed, $mem"
} | tee "$OUT"
[ "$FAILED" = 0 ] || { echo "sizes.sh: a run failed" >&2; exit 1; }
