#!/bin/bash
# queueview.sh - what `sluicectl messages` over a large queue costs the
# mail flowing in (issue 19): a probe client's acceptance latency while
# `messages` lists MESSAGES (200000) waiting messages, against the same
# probe with no listing, in alternating rounds of one run.
#
# The backlog: MESSAGES messages of about 2 KB, one recipient each in one
# of 50 DNS-routed domains, all deferred an hour, written straight into a
# fresh queue.db (as queue.sh does), so the queue manager leaves them
# alone.  The probe: bench/smtpload with PROBE_SESSIONS (2) sessions
# sending PROBE_MESSAGES (2000) messages of 2 KB to a smart-host queue that
# is suspended, so the probe's mail waits too (no delivery work).  In a
# "listing" round `sluicectl messages` runs again and again, its output
# thrown away, from just before the probe starts until it ends (each
# listing is checked: MESSAGES entries); in a "quiet" round nothing else
# runs.  ROUNDS (3) of each, alternating.  Figures: the probe's p50, p99
# and max acceptance latency (the final "." to the 250) and its rate, and
# how many listings ran and how long one took.
#
#   MESSAGES=200000 ROUNDS=3 BENCH_BUILD=build bench/queueview.sh
#   KEEP=1 bench/queueview.sh        (keep the temporary directory)
#
# Exits non-zero when a listing is not whole, the probe fails, or sluiced
# does not start.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
ME=queueview.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

MESSAGES=${MESSAGES:-200000}
ROUNDS=${ROUNDS:-3}
PROBE_SESSIONS=${PROBE_SESSIONS:-2}
PROBE_MESSAGES=${PROBE_MESSAGES:-2000}
BUILD=${BENCH_BUILD:-build}
PY=/usr/bin/python3
WORK='' SLUICED_PID='' LISTER_PID=''

cleanup() {
	if [ -n "$LISTER_PID" ]; then
		touch "$WORK/stop"
		wait "$LISTER_PID" 2>/dev/null
	fi
	if [ -n "$SLUICED_PID" ] && alive "$SLUICED_PID"; then
		kill -TERM "$SLUICED_PID" 2>/dev/null
		wait "$SLUICED_PID" 2>/dev/null
	fi
	remove_work
}
trap cleanup EXIT
trap 'exit 1' INT TERM

make -s BUILD="$BUILD" "$BUILD/sluiced" "$BUILD/sluicectl" >/dev/null ||
    die "cannot build sluiced"
SLUICECTL=$ROOT/$BUILD/sluicectl
WORK=$(mktemp -d /tmp/sluice-bench-queueview.XXXXXX)
chmod 0700 "$WORK"
SMTPLOAD=$WORK/smtpload
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wshadow \
    -Wpointer-arith -Wcast-qual -Wstrict-prototypes -Wmissing-prototypes \
    -o "$SMTPLOAD" bench/smtpload.c || die "bench/smtpload.c does not build"
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$WORK/sluice.conf" <<EOF
[Transport]
QueueDirectory = $WORK/queue
LogDirectory = $WORK/log
ControlSocket = $WORK/ctl.sock
Resolver = 127.0.0.1@9

[AcceptedDomain hold.example]
DomainType = InternalRelay

[ReceiveConnector Default]
Bindings = 127.0.0.1:$PORT
RemoteIPRanges = 127.0.0.1
ProtocolLoggingLevel = None
TarpitInterval = 0s

[SendConnector Hold]
AddressSpaces = hold.example
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:9

[SendConnector Internet]
AddressSpaces = *
EOF

ctl() { "$SLUICECTL" -c "$WORK/sluice.conf" "$@"; }

start_sluiced() {
	local i
	"$ROOT/$BUILD/sluiced" -f -c "$WORK/sluice.conf" 2>>"$WORK/sluiced.log" &
	SLUICED_PID=$!
	for ((i = 0; i < 100; i++)); do
		[ -S "$WORK/ctl.sock" ] && return 0
		sleep 0.1
	done
	die "sluiced did not start (see $WORK/sluiced.log)"
}

# the schema, then the backlog
start_sluiced
kill -TERM "$SLUICED_PID"
wait "$SLUICED_PID" 2>/dev/null
rm -f "$WORK/ctl.sock"
"$PY" "$ROOT/bench/backlog.py" "$WORK/queue/queue.db" "$MESSAGES" ||
    die "cannot fill queue.db"
start_sluiced
ctl suspend Hold >/dev/null || die "cannot suspend the probe's queue"

# One listing, checked: every backlog message once.
list_once() {
	local n
	n=$(ctl messages --sender a@example.org | grep -c '^Identity ') ||
	    return 1
	[ "$n" -eq "$MESSAGES" ] || {
		echo "$ME: a listing had $n of $MESSAGES entries" >&2
		return 1
	}
}

# Listings one after the other until $WORK/stop appears (the one under
# way then finishes); the time of each goes to $WORK/listings.
lister() {
	local t0
	while [ ! -e "$WORK/stop" ]; do
		t0=$EPOCHREALTIME
		list_once || {
			touch "$WORK/failed"
			exit 1
		}
		awk -v a="$t0" -v b="$EPOCHREALTIME" \
		    'BEGIN { printf "%.3f\n", b - a }' >>"$WORK/listings"
	done
}

probe() { # prints "p50 p99 max msgs/s"
	"$SMTPLOAD" -c "$PROBE_SESSIONS" -m "$PROBE_MESSAGES" -s 2048 \
	    -f probe@example.org -t probe@hold.example "127.0.0.1:$PORT" \
	    >"$WORK/probe.out" 2>"$WORK/probe.err" ||
	    die "the probe failed: $(cat "$WORK/probe.err")"
	awk '$1 == "errors:" && $2 != 0 { bad = 1 }
	    $1 == "p50_ms:" { a = $2 } $1 == "p99_ms:" { b = $2 }
	    $1 == "max_ms:" { c = $2 } $1 == "msgs/s:" { r = $2 }
	    END { if (bad) exit 1; printf "%s %s %s %s", a, b, c, r }' \
	    "$WORK/probe.out" || die "the probe had errors"
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
echo "queue.db: $(du -h "$WORK/queue/queue.db" | cut -f1), $MESSAGES" \
    "messages waiting; probe: $PROBE_SESSIONS sessions, $PROBE_MESSAGES" \
    "messages of 2 KB"
printf '%-6s %-8s %9s %9s %9s %9s %9s %12s\n' round mode p50_ms p99_ms \
    max_ms msgs/s listings "one listing"
for ((r = 1; r <= ROUNDS; r++)); do
	read -r a b c d <<<"$(probe)"
	printf '%-6s %-8s %9s %9s %9s %9s %9s %12s\n' "$r" quiet "$a" "$b" \
	    "$c" "$d" - -
	: >"$WORK/listings"
	rm -f "$WORK/stop"
	lister &
	LISTER_PID=$!
	sleep 0.5 # the first listing under way
	read -r a b c d <<<"$(probe)"
	touch "$WORK/stop"
	wait "$LISTER_PID" 2>/dev/null
	LISTER_PID=''
	[ -e "$WORK/failed" ] && die "a listing was not whole"
	alive "$SLUICED_PID" || die "sluiced died (see $WORK/sluiced.log)"
	n=$(wc -l <"$WORK/listings")
	one=$(sort -n "$WORK/listings" | awk '{ v[NR] = $1 }
	    END { if (NR) printf "%.2f s", v[int((NR + 1) / 2)]; else print "-" }')
	printf '%-6s %-8s %9s %9s %9s %9s %9s %12s\n' "$r" listing "$a" "$b" \
	    "$c" "$d" "$n" "$one"
done
list_once || die "the last listing was not whole"
