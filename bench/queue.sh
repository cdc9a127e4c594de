#!/bin/bash
# queue.sh - how long `sluicectl queue` (Get-Queue) takes with a large
# queue: MESSAGES (200000) waiting messages of about 2 KB, one recipient
# each in one of 50 DNS-routed domains, all deferred an hour, written
# straight into a fresh queue.db (as a backlog would leave them).  Then,
# ROUNDS (3) times: sluiced is started, queue.db (and its WAL) is dropped
# from the page cache (posix_fadvise DONTNEED, after an fsync) so that the
# first call reads it from the disk, and `sluicectl queue` is timed three
# times: the first call after the start, then two more.  Every answer must
# list 50 queues whose message counts add up to MESSAGES.
#
#   MESSAGES=200000 ROUNDS=3 BENCH_BUILD=build bench/queue.sh
#   KEEP=1 bench/queue.sh        (keep the temporary directory)
#
# Exits non-zero when an answer is wrong or sluiced does not start.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
ME=queue.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

MESSAGES=${MESSAGES:-200000}
ROUNDS=${ROUNDS:-3}
BUILD=${BENCH_BUILD:-build}
PY=/usr/bin/python3
WORK='' SLUICED_PID=''

cleanup() {
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
WORK=$(mktemp -d /tmp/sluice-bench-queue.XXXXXX)
chmod 0700 "$WORK"
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$WORK/sluice.conf" <<EOF
[Transport]
QueueDirectory = $WORK/queue
LogDirectory = $WORK/log
ControlSocket = $WORK/ctl.sock
Resolver = 127.0.0.1@9

[AcceptedDomain localhost]
DomainType = Authoritative

[ReceiveConnector Default]
Bindings = 127.0.0.1:$PORT
RemoteIPRanges = 127.0.0.1
ProtocolLoggingLevel = None

[SendConnector Internet]
AddressSpaces = *
EOF

start_sluiced() {
	local i
	"$BUILD/sluiced" -f -c "$WORK/sluice.conf" 2>>"$WORK/sluiced.log" &
	SLUICED_PID=$!
	for ((i = 0; i < 100; i++)); do
		[ -S "$WORK/ctl.sock" ] && return 0
		sleep 0.1
	done
	die "sluiced did not start (see $WORK/sluiced.log)"
}

stop_sluiced() {
	kill -TERM "$SLUICED_PID" 2>/dev/null
	wait "$SLUICED_PID" 2>/dev/null
	SLUICED_PID=''
	rm -f "$WORK/ctl.sock"
}

# the schema, then the backlog
start_sluiced
stop_sluiced
"$PY" "$ROOT/bench/backlog.py" "$WORK/queue/queue.db" "$MESSAGES" ||
    die "cannot fill queue.db"

evict() {
	"$PY" - "$WORK/queue/queue.db" <<'EOF'
import os, sys
for f in (sys.argv[1], sys.argv[1] + "-wal"):
    if os.path.exists(f):
        fd = os.open(f, os.O_RDONLY)
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
EOF
}

one_call() { # prints seconds; checks the answer
	local s e out
	s=$(date +%s.%N)
	out=$("$BUILD/sluicectl" -c "$WORK/sluice.conf" queue) ||
	    die "sluicectl queue failed"
	e=$(date +%s.%N)
	echo "$out" | awk -v want="$MESSAGES" 'NR > 1 { q++; n += $4 }
	    END { if (q != 50 || n != want) exit 1 }' ||
	    die "wrong answer: $(echo "$out" | head -3)"
	awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f", e - s }'
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "queue.db: $(du -h "$WORK/queue/queue.db" | cut -f1), $MESSAGES messages"
printf '%-6s %12s %12s %12s\n' round "first (cold)" second third
for ((r = 1; r <= ROUNDS; r++)); do
	start_sluiced
	evict
	a=$(one_call)
	b=$(one_call)
	c=$(one_call)
	stop_sluiced
	printf '%-6s %12s %12s %12s\n' "$r" "$a s" "$b s" "$c s"
done
