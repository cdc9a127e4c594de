#!/bin/bash
# acceptance.sh - acceptance rate of sluiced against Postfix, side by side.
#
# Both servers run on this machine in the same run, accept the same domain
# from the same load generators and keep the mail queued durably (fsync
# before the 250 in both: SQLite WAL synchronous=FULL for sluiced, Postfix's
# own queue-file fsync), with no TLS, no content checks and no delivery.
# Each measurement runs twice per server and the better run counts, so a
# hiccup of the shared 2-core VM does not decide the ratio.  At the end the
# queues are counted: a fast but lossy server cannot pass unnoticed.
#
#   bench/acceptance.sh            (make bench)
#   MESSAGES=20000 SESSIONS=20 SIZE=2048 bench/acceptance.sh
set -euo pipefail
cd "$(dirname "$0")/.."

MESSAGES=${MESSAGES:-20000}
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-2048}
ROOT=$(pwd)
WORK=$(mktemp -d /tmp/sluice-bench.XXXXXX)
chmod 755 "$WORK" # Postfix daemons run as the postfix user
SLUICE_PORT=$((20000 + RANDOM % 10000))
POSTFIX_PORT=$((SLUICE_PORT + 1))
SLUICED_PID=

cleanup() {
	[ -n "$SLUICED_PID" ] && kill "$SLUICED_PID" 2>/dev/null && wait "$SLUICED_PID" 2>/dev/null
	bench/postfix-instance.sh stop "$WORK/postfix" || true
	[ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

make -s all
cc -O2 -Wall -Wextra -Werror -o build/smtpload bench/smtpload.c -lpthread

cat >"$WORK/sluice.conf" <<CONF
[Transport]
QueueDirectory = $WORK/sluice/queue
LogDirectory = $WORK/sluice/log
[AcceptedDomain example.com]
DomainType = InternalRelay
[ReceiveConnector bench]
Bindings = 127.0.0.1:$SLUICE_PORT
TarpitInterval = 0s
MaxInboundConnectionPerSource = 10000
ProtocolLoggingLevel = None
CONF
build/sluiced -f -c "$WORK/sluice.conf" 2>"$WORK/sluiced.log" &
SLUICED_PID=$!
bench/postfix-instance.sh start "$WORK/postfix" "$POSTFIX_PORT" example.com
for i in $(seq 50); do
	ss -ltn | grep -q "127.0.0.1:$SLUICE_PORT " && break
	sleep 0.1
done

# seconds taken by a command, to the millisecond
timed() {
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >/dev/null
	t1=$(date +%s.%N)
	echo "$t0 $t1" | awk '{printf "%.3f", $2 - $1}'
}

best_rate() { # messages, then the timings
	local n=$1 best=0
	shift
	for t in "$@"; do
		best=$(awk -v n="$n" -v t="$t" -v b="$best" \
		    'BEGIN { r = n / t; print (r > b ? r : b) }')
	done
	printf "%.0f" "$best"
}

source_run() { # port [extra smtp-source flags]
	local port=$1
	shift
	timed /usr/sbin/smtp-source "$@" -s "$SESSIONS" -m "$MESSAGES" \
	    -l "$SIZE" -f bench@example.org -t sink@example.com \
	    "127.0.0.1:$port"
}

load_run() { # port [flags]: prints "rate p50 p99" of the better of two runs
	local port=$1 out best="" bestrate=0
	shift
	for r in 1 2; do
		out=$(build/smtpload "$@" -c "$SESSIONS" -m "$MESSAGES" \
		    -s "$SIZE" 127.0.0.1 "$port")
		rate=$(echo "$out" | sed 's/.*rate=\([0-9]*\).*/\1/')
		if [ "$rate" -gt "$bestrate" ]; then
			bestrate=$rate
			best=$(echo "$out" | sed 's/.*rate=\([0-9]*\) p50_ms=\([0-9.]*\) p99_ms=\([0-9.]*\).*/\1 \2 \3/')
		fi
	done
	echo "$best"
}

echo "sluice acceptance benchmark: $MESSAGES messages of $SIZE bytes," \
    "$SESSIONS sessions, $(nproc) cores"
# warm up both (page cache, Postfix's process pool)
/usr/sbin/smtp-source -s "$SESSIONS" -m 1000 -l "$SIZE" -f w@example.org \
    -t sink@example.com "127.0.0.1:$SLUICE_PORT"
/usr/sbin/smtp-source -s "$SESSIONS" -m 1000 -l "$SIZE" -f w@example.org \
    -t sink@example.com "127.0.0.1:$POSTFIX_PORT"

S1=$(best_rate "$MESSAGES" "$(source_run $SLUICE_PORT)" "$(source_run $SLUICE_PORT)")
P1=$(best_rate "$MESSAGES" "$(source_run $POSTFIX_PORT)" "$(source_run $POSTFIX_PORT)")
S2=$(best_rate "$MESSAGES" "$(source_run $SLUICE_PORT -d)" "$(source_run $SLUICE_PORT -d)")
P2=$(best_rate "$MESSAGES" "$(source_run $POSTFIX_PORT -d)" "$(source_run $POSTFIX_PORT -d)")
read -r SL SL50 SL99 <<<"$(load_run $SLUICE_PORT)"
read -r PL PL50 PL99 <<<"$(load_run $POSTFIX_PORT)"

sleep 1 # let Postfix's cleanup finish writing what it acknowledged
LOAD_SENT=$(( (MESSAGES / SESSIONS) * SESSIONS * 2 ))
EXPECT=$((1000 + 4 * MESSAGES + LOAD_SENT))
SQ=$(sqlite3 "$WORK/sluice/queue/queue.db" 'select count(*) from messages')
PQ=$(bench/postfix-instance.sh count "$WORK/postfix")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf "\n%-44s %10s %10s %7s\n" "measure" "sluiced" "postfix" "ratio"
printf "%-44s %10s %10s %7s\n" "smtp-source, new connection per message (msg/s)" \
    "$S1" "$P1" "$(ratio "$S1" "$P1")"
printf "%-44s %10s %10s %7s\n" "smtp-source -d, connection reuse (msg/s)" \
    "$S2" "$P2" "$(ratio "$S2" "$P2")"
printf "%-44s %10s %10s %7s\n" "smtpload, EHLO + reuse (msg/s)" "$SL" "$PL" \
    "$(ratio "$SL" "$PL")"
printf "%-44s %10s %10s\n" "acceptance latency p50 (ms)" "$SL50" "$PL50"
printf "%-44s %10s %10s\n" "acceptance latency p99 (ms)" "$SL99" "$PL99"
printf "%-44s %10s %10s\n" "messages in the queue (expected $EXPECT)" "$SQ" "$PQ"
if [ "$SQ" -ne "$EXPECT" ] || [ "$PQ" -ne "$EXPECT" ]; then
	echo "MISMATCH: a server lost or duplicated messages" >&2
	exit 1
fi
