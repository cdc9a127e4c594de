#!/bin/bash
# statusread.sh - what one reading of the queues for the status page and
# /metrics (status_queues.c) costs at a given depth.
#
# A queue.db with MESSAGES waiting messages (bench/backlog.py: one
# recipient each in one of 50 DNS-routed domains, deferred an hour, so the
# queue manager leaves them alone) is written once.  Then, READINGS times,
# sluiced ($BUILD/sluiced, or each of SLUICED="a b ..." binaries in turn)
# starts on it with StatusListen, waits until idle, and /metrics is
# fetched once: that starts the first reading, on its own thread.  The
# daemon's CPU (utime + stime, every thread) from before that fetch
# until sluice_queue_readings_total says the reading has finished is the
# reading's cost (plus one small request); with PERF_STAT=1 `perf stat`
# counts its instructions too.  Printed per binary: CPU seconds per
# reading and microseconds per waiting recipient, each reading and the
# median.  The samples of the table are checked to count MESSAGES
# messages in all.
#
#   MESSAGES=150000 READINGS=5 bench/statusread.sh
#   SLUICED="/tmp/sluiced-old build/sluiced" PERF_STAT=1 bench/statusread.sh
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
PERF_STAT=${PERF_STAT:-0}
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

start() { # binary
	"$1" -f -c "$WORK/sluice.conf" 2>>"$WORK/sluiced.log" &
	PID=$!
	wait_listen "$HTTP" || die "sluiced did not start (see $WORK/sluiced.log)"
}

# the schema, then the backlog
set -- $SLUICED
start "$1"
stop_pid "$PID" 150
PID=''
"$PY" "$ROOT/bench/backlog.py" "$WORK/queue/queue.db" "$MESSAGES" ||
    die "cannot fill queue.db"

echo "one reading of the queues at $MESSAGES waiting recipients," \
    "$READINGS readings per binary, $(nproc) cores," \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"
hz=$(getconf CLK_TCK)
for bin in $SLUICED; do
	all=''
	for ((r = 0; r < READINGS; r++)); do
		start "$bin"
		# idle: the start's own work (opening the queue) is not counted
		sleep 2
		if [ "$PERF" = 1 ]; then
			perf record -g -o "$WORK/perf-$(basename "$bin")-$r.data" \
			    -p "$PID" 2>/dev/null >/dev/null &
			PERFPID=$!
			sleep 0.5
		elif [ "$PERF_STAT" = 1 ]; then
			perf stat -x, -e instructions:u,task-clock \
			    -o "$WORK/stat-$r" -p "$PID" &
			PERFPID=$!
			sleep 0.5
		fi
		k0=$(cpu_ticks "$PID")
		n=$(readings)
		[ "$n" = 0 ] || die "a reading before the first fetch ($n)"
		for ((i = 0; i < 1200; i++)); do
			n=$(readings)
			[ "${n:-0}" -ge 1 ] && break
			sleep 0.05
		done
		[ "${n:-0}" -ge 1 ] || die "no reading in 60 s"
		k1=$(cpu_ticks "$PID")
		curl -fs "http://127.0.0.1:$HTTP/metrics" >"$WORK/metrics"
		total=$(awk '/^sluice_queue_messages\{/ { t += $2 }
		    END { print t + 0 }' "$WORK/metrics")
		# the thread's own CPU time, where the daemon says it
		thread=$(awk '$1 == "sluice_queue_reading_cpu_seconds" {
		    printf "%.4f", $2 }' "$WORK/metrics")
		[ "$total" = "$MESSAGES" ] ||
		    die "the reading counted $total messages of $MESSAGES"
		instr=''
		if [ -n "$PERFPID" ]; then
			kill -INT "$PERFPID"
			wait "$PERFPID" 2>/dev/null
			PERFPID=''
			[ "$PERF_STAT" = 1 ] && instr=$(awk -F, '
			    $3 ~ /^instructions/ { printf " %.0f instructions/rcpt",
			    $1 / n }' n="$MESSAGES" "$WORK/stat-$r" 2>/dev/null)
		fi
		stop_pid "$PID" 150
		PID=''
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
