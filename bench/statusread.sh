#!/bin/bash
# statusread.sh - what one reading of the queues for the status page and
# /metrics (status_queues.c) costs at a given depth.
#
# A queue.db with MESSAGES waiting messages (bench/backlog.py: one
# recipient each in one of 50 DNS-routed domains, deferred an hour, so the
# queue manager leaves them alone) is written once.  Then, READINGS times,
# sluiced ($BUILD/sluiced, or each of SLUICED="a b ..." binaries in turn)
# starts on it with StatusListen, waits until idle, and /metrics is
# fetched once: that starts the first reading, on its own thread.  Its
# cost is the thread's CPU time as sluice_queue_reading_cpu_seconds says
# it, or, from a sluiced without that gauge, the daemon's CPU (utime +
# stime, every thread, clock ticks) from before that fetch until
# sluice_queue_readings_total says the reading has finished.  Printed per
# binary: CPU seconds per reading and microseconds per waiting recipient,
# each reading and the median.  The reading must count MESSAGES messages.
# CALLGRIND=1 runs each binary once under valgrind's callgrind, collecting
# only in the reading's thread (status_queues_worker): its instructions,
# in all and per recipient, a figure the machine's load does not move
# (its CPU times then mean nothing).
#
#   MESSAGES=150000 READINGS=5 bench/statusread.sh
#   SLUICED="/tmp/sluiced-old build/sluiced" CALLGRIND=1 bench/statusread.sh
#   PERF=1 bench/statusread.sh   # perf record -g of the readings (KEEP=1)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
ME=statusread.sh
START_WAIT=300
PEER=()
PF_DIR=''
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

MESSAGES=${MESSAGES:-150000}
READINGS=${READINGS:-5}
BUILD=${BENCH_BUILD:-build}
PERF=${PERF:-0}
CALLGRIND=${CALLGRIND:-0}
[ "$CALLGRIND" = 1 ] && READINGS=1
[ "$PERF" = 1 ] && KEEP=1
PY=/usr/bin/python3
WORK='' PID='' PERFPID=''

cleanup() {
	[ -n "$PERFPID" ] && { kill -INT "$PERFPID" 2>/dev/null; wait "$PERFPID" 2>/dev/null; }
	stop_pid "$PID" 150
	remove_work
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v curl >/dev/null || die "curl is missing"
[ "$CALLGRIND" = 1 ] && { command -v valgrind >/dev/null || die "valgrind is missing"; }
if [ -z "${SLUICED:-}" ]; then
	make -s BUILD="$BUILD" "$BUILD/sluiced" >/dev/null || die "sluiced does not build"
	SLUICED=$ROOT/$BUILD/sluiced
fi
WORK=$(mktemp -d /tmp/sluice-statusread.XXXXXX) || die "mktemp failed"
read -r PORT HTTP < <("$PY" -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')

cat >"$WORK/sluice.conf" <<CONF
[Transport]
QueueDirectory = $WORK/queue
LogDirectory = $WORK/log
ControlSocket = $WORK/ctl.sock
Resolver = 127.0.0.1@9
StatusListen = 127.0.0.1:$HTTP

[ReceiveConnector Default]
Bindings = 127.0.0.1:$PORT
RemoteIPRanges = 127.0.0.1
ProtocolLoggingLevel = None

[SendConnector Internet]
AddressSpaces = *
CONF

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
readings() {
	curl -fs "http://127.0.0.1:$HTTP/metrics" |
	    awk '$1 == "sluice_queue_readings_total" { print $2 }'
}

start() { # binary [valgrind ...]
	"${@:2}" "$1" -f -c "$WORK/sluice.conf" 2>>"$WORK/sluiced.log" &
	PID=$!
	wait_listen "$HTTP" || die "sluiced did not start (see $WORK/sluiced.log)"
}

# the schema, then the backlog
read -ra BINS <<<"$SLUICED"
start "${BINS[0]}"
stop_pid "$PID" 150
PID=''
"$PY" "$ROOT/bench/backlog.py" "$WORK/queue/queue.db" "$MESSAGES" ||
    die "cannot fill queue.db"

echo "one reading of the queues at $MESSAGES waiting recipients," \
    "$READINGS readings per binary, $(nproc) cores," \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"
hz=$(getconf CLK_TCK)
for bin in "${BINS[@]}"; do
	all=''
	for ((r = 0; r < READINGS; r++)); do
		VG=()
		[ "$CALLGRIND" = 1 ] && VG=(valgrind --tool=callgrind
		    --toggle-collect=status_queues_worker
		    "--callgrind-out-file=$WORK/cg-$r" "--log-file=$WORK/vg.log")
		start "$bin" "${VG[@]}"
		# idle: the start's own work (opening the queue) is not counted
		sleep 2
		if [ "$PERF" = 1 ]; then
			perf record -g -o "$WORK/perf-$(basename "$bin")-$r.data" \
			    -p "$PID" 2>/dev/null >/dev/null &
			PERFPID=$!
			sleep 0.5
		fi
		k0=$(cpu_ticks "$PID")
		n=$(readings)
		[ "$n" = 0 ] || die "a reading before the first fetch ($n)"
		for ((i = 0; i < 6000; i++)); do
			n=$(readings)
			[ "${n:-0}" -ge 1 ] && break
			sleep 0.05
		done
		[ "${n:-0}" -ge 1 ] || die "no reading in 5 minutes"
		k1=$(cpu_ticks "$PID")
		curl -fs "http://127.0.0.1:$HTTP/metrics" >"$WORK/metrics"
		total=$(awk '/^sluice_queue_messages\{/ { t += $2 }
		    END { print t + 0 }' "$WORK/metrics")
		# the thread's own CPU time, where the daemon says it
		thread=$(awk '$1 == "sluice_queue_reading_cpu_seconds" {
		    printf "%.4f", $2 }' "$WORK/metrics")
		[ "$total" = "$MESSAGES" ] ||
		    die "the reading counted $total messages of $MESSAGES"
		if [ -n "$PERFPID" ]; then
			kill -INT "$PERFPID"
			wait "$PERFPID" 2>/dev/null
			PERFPID=''
		fi
		stop_pid "$PID" 600
		PID=''
		instr=''
		[ "$CALLGRIND" = 1 ] && instr=$(awk -v n="$MESSAGES" '
		    $1 == "summary:" || $1 == "totals:" { t = $2 }
		    END { printf ", %.0f instructions (%.0f per recipient)",
		    t, t / n }' "$WORK/cg-$r")
		s=$(awk -v a="$k0" -v b="$k1" -v hz="$hz" \
		    'BEGIN { printf "%.2f", (b - a) / hz }')
		[ -n "$thread" ] && s=$thread
		echo "  $bin reading $((r + 1)): $s s CPU, $(awk -v s="$s" \
		    -v n="$MESSAGES" 'BEGIN { printf "%.2f", s * 1e6 / n }') us/rcpt$instr"
		all="$all $s"
	done
	med=$(echo "$all" | tr ' ' '\n' | grep . | sort -g |
	    awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
	echo "$bin: median $med s per reading, $(awk -v s="$med" \
	    -v n="$MESSAGES" 'BEGIN { printf "%.2f", s * 1e6 / n }') us per recipient"
done
