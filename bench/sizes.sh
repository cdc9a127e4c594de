#!/bin/bash
# sizes.sh - the relay benchmark (bench/relay.sh) at every message size
# issue 12 names: 2 KB, 100 KB, 1 MB, 10 MB and 50 MB, 20 sessions, sluiced
# and Postfix side by side in alternating rounds, each relaying to its own
# smtp-sink.  The message count per size keeps a round in seconds and
# every session busy; the 20 MB row runs with MEM=1 (peak memory of each
# server).  One line per size: end-to-end and accepted msgs/s, best of
# RUNS rounds, and the ratios; then the memory line.
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

echo "relay at every size: $RUNS rounds each (best counts), 20 sessions," \
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
	rows+=("$(printf '%-10s %8s %8s %8s %8s %8s %8s' "$size" $s $p $r)")
	rm -f "$log"
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
	printf '%-10s %17s %17s %17s\n' "" "sluiced msgs/s" "postfix msgs/s" \
	    "ratio"
	printf '%-10s %8s %8s %8s %8s %8s %8s\n' size e2e accepted e2e \
	    accepted e2e accepted
	printf '%s\n' "${rows[@]}"
	echo
	echo "20 x 20 MB relayed, $mem"
} | tee "$OUT"
[ "$FAILED" = 0 ] || { echo "sizes.sh: a run failed" >&2; exit 1; }
