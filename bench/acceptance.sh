#!/bin/bash
# acceptance.sh - how fast sluiced accepts mail, side by side with Postfix.
#
# One run on this machine measures both servers under the same load:
#   - sluiced ($BUILD/sluiced, the optimised `make` build) with one receive
#     connector on a free 127.0.0.1 port accepting example.com
#     (InternalRelay, routed to a send connector whose queue is suspended
#     with `sluicectl suspend`, so mail waits in queue.db, as Postfix's
#     does on HOLD: no delivery work on either side),
#     no TLS, protocol log off, no tarpit;
#   - a private Postfix (tests/it/peers/postfix.py: its own config, queue
#     and data directories; never /etc/postfix or port 25) relaying
#     example.com and putting every message on HOLD, so it stores the
#     message durably and does no delivery work either; no TLS, no
#     header/body checks, anvil limits off, process limit above the load.
# Both fsync before the 250 (sluiced: SQLite WAL commit; Postfix: cleanup
# fsyncs the queue file) and both queues live under one temporary
# directory, on the same filesystem.
#
# Measures, in this order:
#   1. memory per idle session: IDLE plaintext sessions (EHLO done) opened
#      by smtpload -i on fresh servers; RSS delta of sluiced, and RSS/PSS
#      delta of the sum of Postfix's smtpd processes, divided by IDLE.
#      sluiced's baseline is taken after one session has come and gone:
#      the first one makes the reverse look-up's resolver (libunbound's
#      context and caches, about 2.5 MB once), which is no session's;
#   2. (servers restarted fresh) a warm-up of WARMUP messages each, then
#      RUNS rounds, interleaved: smtp-source (a new connection per message,
#      Postfix's own tool, timed here), smtp-source -d (sessions that carry
#      several messages each), and bench/smtpload (EHLO once per
#      connection, connections reused, acceptance latency per message)
#      against each server.  The best round of each counts;
#   3. the queues: sluiced's queue.db and Postfix's queue files must hold
#      exactly what was acknowledged, so a fast but lossy server fails.
# Each round also runs the same loads against Postfix's smtp-sink, a server
# that parses just enough SMTP to answer and stores nothing: its rate is the
# most any server can show here with these load tools on this machine, and
# the "ceiling" row divides it by Postfix's, the highest ratio possible.
# Prints a table with the ratio sluiced/postfix and exits non-zero on any
# error or count mismatch.  Everything (servers, temp dirs) is cleaned up
# on exit, also on failure or ^C.
#
#   make bench
#   MESSAGES=20000 SESSIONS=20 SIZE=2048 RUNS=2 IDLE=1000 bench/acceptance.sh
#   BENCH_BUILD=build/bench KEEP=1 bench/acceptance.sh   (own build dir,
#                                                          keep the temp dir)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
ME=acceptance.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

MESSAGES=${MESSAGES:-20000} # per measured run
SESSIONS=${SESSIONS:-20}    # concurrent SMTP sessions
SIZE=${SIZE:-2048}          # message size in bytes
RUNS=${RUNS:-2}             # rounds per server and tool; the best counts
WARMUP=${WARMUP:-2000}      # messages sent to each before measuring
IDLE=${IDLE:-1000}          # idle sessions for the memory figure (0: skip)
BUILD=${BENCH_BUILD:-build}
PY=/usr/bin/python3
PEER=("$PY" "$ROOT/tests/it/peers/postfix.py")
SMTP_SOURCE=/usr/sbin/smtp-source
SMTP_SINK=/usr/sbin/smtp-sink
SENDER=a@example.org
RCPT=b@example.com
START_WAIT=100 # tenths of a second for a server to listen
STOP_WAIT=150  # tenths of a second for sluiced to drain on SIGTERM

WORK='' SLUICED_PID='' IDLE_PID='' CHILD='' PF_DIR='' SINK_PID='' FAILED=0

stop_sluiced() {
	local i
	[ -n "$SLUICED_PID" ] || return 0
	kill -TERM "$SLUICED_PID" 2>/dev/null
	for ((i = 0; i < STOP_WAIT; i++)); do
		alive "$SLUICED_PID" || break
		sleep 0.1
	done
	alive "$SLUICED_PID" && kill -KILL "$SLUICED_PID" 2>/dev/null
	wait "$SLUICED_PID" 2>/dev/null
	SLUICED_PID=
}

# Run a load tool in the background and wait for it, so that a signal
# interrupts the wait and the EXIT trap stops the tool at once.
run() {
	local rc
	"$@" &
	CHILD=$!
	wait "$CHILD"
	rc=$?
	CHILD=
	return $rc
}

cleanup() {
	for pid in $CHILD $IDLE_PID; do
		kill -TERM "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	stop_sluiced
	stop_postfix
	if [ -n "$SINK_PID" ]; then
		kill -TERM "$SINK_PID" 2>/dev/null
		wait "$SINK_PID" 2>/dev/null
	fi
	remove_work
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- prerequisites and builds -----------------------------------------------

for tool in "$PY" "$SMTP_SOURCE" "$SMTP_SINK" /usr/sbin/postfix ss; do
	command -v "$tool" >/dev/null || die "$tool is missing (make deps)"
done
make -s BUILD="$BUILD" all ||
    die "sluiced does not build yet (make BUILD=$BUILD all failed)"
SLUICED=$ROOT/$BUILD/sluiced
SLUICECTL=$ROOT/$BUILD/sluicectl
[ -x "$SLUICED" ] || die "$SLUICED does not exist"
SMTPLOAD=$ROOT/$BUILD/smtpload
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wshadow \
    -Wpointer-arith -Wcast-qual -Wstrict-prototypes -Wmissing-prototypes \
    -o "$SMTPLOAD" bench/smtpload.c || die "bench/smtpload.c does not build"

WORK=$(mktemp -d /tmp/sluice-bench.XXXXXX) || die "mktemp failed"
chmod 755 "$WORK" # Postfix's daemons (user postfix) enter its queue here

free_port() {
	"$PY" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
SPORT=$(free_port)
PPORT=$(free_port)
while [ "$PPORT" = "$SPORT" ]; do PPORT=$(free_port); done
KPORT=$(free_port)
while [ "$KPORT" = "$SPORT" ] || [ "$KPORT" = "$PPORT" ]; do
	KPORT=$(free_port)
done

# --- the two servers ----------------------------------------------------------

LIMIT=$((IDLE + SESSIONS + 100)) # connections either server must take

start_sluiced() {
	rm -rf "$WORK/sluice"
	mkdir -p "$WORK/sluice"
	cat >"$WORK/sluice.conf" <<CONF
[Transport]
QueueDirectory = $WORK/sluice/queue
LogDirectory = $WORK/sluice/log
ControlSocket = $WORK/sluice/ctl.sock

[AcceptedDomain example.com]
DomainType = InternalRelay

[SendConnector Hold]
AddressSpaces = example.com
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:9

[ReceiveConnector bench]
Bindings = 127.0.0.1:$SPORT
RemoteIPRanges = 127.0.0.0/8
AuthMechanism = None
Fqdn = sluice.bench.test
TarpitInterval = 0s
ProtocolLoggingLevel = None
MaxInboundConnection = $LIMIT
MaxInboundConnectionPerSource = $LIMIT
CONF
	"$SLUICED" -f -c "$WORK/sluice.conf" 2>>"$WORK/sluiced.log" &
	SLUICED_PID=$!
	wait_listen "$SPORT" || {
		tail -5 "$WORK/sluiced.log" >&2
		die "sluiced did not start"
	}
	"$SLUICECTL" -c "$WORK/sluice.conf" suspend Hold >/dev/null ||
	    die "sluicectl suspend Hold failed"
}

start_postfix() {
	PF_DIR=$WORK/postfix
	rm -rf "$PF_DIR"
	mkdir -p "$PF_DIR"
	"${PEER[@]}" start --dir "$PF_DIR" --port "$PPORT" \
	    --accept example.com --hold --process-limit "$LIMIT" ||
	    die "postfix did not start"
}

# The ceiling: answers every command, keeps nothing, never syncs.
start_sink() {
	local args=()
	[ "$(id -u)" = 0 ] && args+=(-u nobody) # smtp-sink refuses root
	"$SMTP_SINK" "${args[@]}" "127.0.0.1:$KPORT" 1000 >/dev/null \
	    2>"$WORK/sink.err" </dev/null &
	SINK_PID=$!
	wait_listen "$KPORT" || {
		cat "$WORK/sink.err" >&2
		die "smtp-sink did not start"
	}
}

# --- memory per idle session ------------------------------------------------------

mem_kb() { # pid field(Rss|Pss)
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/smaps_rollup"
}

idle_open() { # port: IDLE sessions through EHLO, then held open
	local i
	"$SMTPLOAD" -i "$IDLE" "127.0.0.1:$1" >"$WORK/idle.out" \
	    2>"$WORK/idle.err" &
	IDLE_PID=$!
	for ((i = 0; i < 1200; i++)); do
		grep -q '^ready' "$WORK/idle.out" && return 0
		alive "$IDLE_PID" || break
		sleep 0.1
	done
	cat "$WORK/idle.err" >&2
	die "could not open $IDLE idle sessions on port $1"
}

idle_close() {
	kill -TERM "$IDLE_PID" 2>/dev/null
	wait "$IDLE_PID" 2>/dev/null
	IDLE_PID=
}

per_session() { # before after
	awk -v a="$1" -v b="$2" -v n="$IDLE" 'BEGIN { printf "%.1f", (b - a) / n }'
}

# --- load ------------------------------------------------------------------------

SENT_S=0 SENT_P=0 # messages each server acknowledged

sent() { # server count
	case $1 in
	sluiced) SENT_S=$((SENT_S + $2)) ;;
	postfix) SENT_P=$((SENT_P + $2)) ;;
	esac
}

port_of() {
	case $1 in
	sluiced) echo "$SPORT" ;;
	postfix) echo "$PPORT" ;;
	*) echo "$KPORT" ;;
	esac
}

# Both run in this shell (not in $(...)) so that they can count what was
# acknowledged; the result is left in RESULT.
source_run() { # server messages [-d]: RESULT=msgs/s, or fails
	local t0 t1 port
	port=$(port_of "$1")
	RESULT=0
	t0=$EPOCHREALTIME
	# shellcheck disable=SC2086 # $3 is an optional flag
	if ! run "$SMTP_SOURCE" ${3:-} -c -s "$SESSIONS" -m "$2" -l "$SIZE" \
	    -f "$SENDER" -t "$RCPT" "127.0.0.1:$port" >/dev/null \
	    2>"$WORK/source.err"; then
		echo "smtp-source against $1: $(tail -1 "$WORK/source.err")" >&2
		return 1
	fi
	t1=$EPOCHREALTIME
	sent "$1" "$2"
	RESULT=$(awk -v n="$2" -v a="$t0" -v b="$t1" \
	    'BEGIN { printf "%.0f", n / (b - a) }')
}

load_run() { # server: RESULT="msgs/s p50 p99" from smtpload, or fails
	local out port accepted rc
	port=$(port_of "$1")
	RESULT="0 - -"
	run "$SMTPLOAD" -c "$SESSIONS" -m "$MESSAGES" -s "$SIZE" -f "$SENDER" \
	    -t "$RCPT" "127.0.0.1:$port" >"$WORK/load.out" 2>"$WORK/load.err"
	rc=$?
	out=$(cat "$WORK/load.out")
	accepted=$(awk '$1 == "accepted:" { print $2 }' <<<"$out")
	sent "$1" "${accepted:-0}"
	if [ $rc -ne 0 ]; then
		echo "smtpload against $1:" >&2
		cat "$WORK/load.err" >&2
		return 1
	fi
	RESULT=$(awk '$1 == "msgs/s:" { r = $2 } $1 == "p50_ms:" { a = $2 }
	    $1 == "p99_ms:" { b = $2 } END { printf "%.0f %s %s", r, a, b }' \
	    <<<"$out")
}

# --- the run -----------------------------------------------------------------------

echo "acceptance benchmark: $MESSAGES messages of $SIZE bytes, $SESSIONS" \
    "sessions, $RUNS rounds (best counts), $(nproc) cores"
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)" \
    "(other work on this machine skews the figures)"
echo "sluiced $(git describe --always --dirty 2>/dev/null || echo '?')," \
    "postfix $(/usr/sbin/postconf -h mail_version 2>/dev/null)"

start_sluiced
start_postfix

MEM_S=- MEM_PR=- MEM_PP=-
if [ "$IDLE" -gt 0 ]; then
	echo "memory: $IDLE idle sessions each"
	IDLE_N=$IDLE IDLE=1
	idle_open "$SPORT" # the first session's one-off costs, see the top
	idle_close
	IDLE=$IDLE_N
	before=$(mem_kb "$SLUICED_PID" Rss)
	idle_open "$SPORT"
	after=$(mem_kb "$SLUICED_PID" Rss)
	idle_close
	MEM_S=$(per_session "$before" "$after")

	read -r _ prss_b ppss_b < <("${PEER[@]}" smtpd-mem --dir "$PF_DIR")
	idle_open "$PPORT"
	read -r pn prss_a ppss_a < <("${PEER[@]}" smtpd-mem --dir "$PF_DIR")
	idle_close
	MEM_PR=$(per_session "$prss_b" "$prss_a")
	MEM_PP=$(per_session "$ppss_b" "$ppss_a")
	echo "  sluiced: RSS $before -> $after KB;" \
	    "postfix: $pn smtpd, RSS $prss_b -> $prss_a KB," \
	    "PSS $ppss_b -> $ppss_a KB"
	# Fresh servers for the load: Postfix would otherwise keep the
	# idle smtpd processes around for max_idle (100 s).
	stop_sluiced
	stop_postfix
	start_sluiced
	start_postfix
fi

start_sink
echo "warm-up: $WARMUP messages each"
for s in sluiced postfix sink; do
	source_run "$s" "$WARMUP" || FAILED=1
done

SRC_S=0 SRC_P=0 SRC_K=0 SRCD_S=0 SRCD_P=0 SRCD_K=0
LOAD_S="0 - -" LOAD_P="0 - -" LOAD_K="0 - -"

suffix() { # server: the letter of its variables
	case $1 in
	sluiced) echo S ;;
	postfix) echo P ;;
	*) echo K ;;
	esac
}

# One smtp-source round against the servers and the sink; keeps the best
# rate of each in the variables named ${1}_S, ${1}_P and ${1}_K.  $2: extra
# flag ("-d": the sessions carry several messages each).
source_round() {
	local flag=${2:-} s rate best
	for s in sluiced postfix sink; do
		# shellcheck disable=SC2086 # no flag means no argument
		source_run "$s" "$MESSAGES" $flag || FAILED=1
		rate=$RESULT
		echo "  round $r $s smtp-source${flag:+ $flag}: $rate msgs/s"
		best="${1}_$(suffix "$s")"
		printf -v "$best" %s "$(better "${!best}" "$rate")"
	done
}

for ((r = 1; r <= RUNS; r++)); do
	source_round SRCD -d
	source_round SRC
	for s in sluiced postfix sink; do
		load_run "$s" || FAILED=1
		res=$RESULT
		echo "  round $r $s smtpload: $res (msgs/s p50_ms p99_ms)"
		best="LOAD_$(suffix "$s")"
		[ "${res%% *}" -gt "${!best%% *}" ] && printf -v "$best" %s "$res"
	done
done
read -r LS LS50 LS99 <<<"$LOAD_S"
read -r LP LP50 LP99 <<<"$LOAD_P"
read -r LK LK50 LK99 <<<"$LOAD_K"

# --- nothing lost ---------------------------------------------------------------------

# Only the bench's own sender: anything sluiced itself may queue later
# (delivery status notifications have the null sender) is not counted.
# Delivered messages stay in queue.db for SafetyNetHoldTime (2 days).
SQ=$("$PY" - "$WORK/sluice/queue/queue.db" "$SENDER" <<'PYEOF'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
print(db.execute("select count(*) from messages where sender = ?",
                 (sys.argv[2],)).fetchone()[0])
PYEOF
) || SQ="?"
for ((i = 0; i < 100; i++)); do # Postfix's queue files settle at once
	PQ=$("${PEER[@]}" count --dir "$PF_DIR") || PQ="?"
	[ "$PQ" = "$SENT_P" ] && break
	sleep 0.1
done

# --- report -------------------------------------------------------------------------------

{
	echo
	printf "%-22s %12s %12s %12s %8s %8s %14s\n" "" "smtp-source" \
	    "smtp-source" "smtpload" "p50" "p99" "idle session"
	printf "%-22s %12s %12s %12s %8s %8s %14s\n" "system" "msgs/s" \
	    "-d msgs/s" "msgs/s" "ms" "ms" "KB (RSS/PSS)"
	printf "%-22s %12s %12s %12s %8s %8s %14s\n" sluiced "$SRC_S" \
	    "$SRCD_S" "$LS" "$LS50" "$LS99" "$MEM_S"
	printf "%-22s %12s %12s %12s %8s %8s %14s\n" postfix "$SRC_P" \
	    "$SRCD_P" "$LP" "$LP50" "$LP99" "$MEM_PR/$MEM_PP"
	printf "%-22s %12s %12s %12s %8s %8s %14s\n" "ratio sluiced/postfix" \
	    "$(ratio "$SRC_S" "$SRC_P")" "$(ratio "$SRCD_S" "$SRCD_P")" \
	    "$(ratio "$LS" "$LP")" \
	    "$(ratio "$LS50" "$LP50")" "$(ratio "$LS99" "$LP99")" \
	    "$(ratio "$MEM_S" "$MEM_PR")/$(ratio "$MEM_S" "$MEM_PP")"
	printf "%-22s %12s %12s %12s %8s %8s %14s\n" "smtp-sink (no store)" \
	    "$SRC_K" "$SRCD_K" "$LK" "$LK50" "$LK99" -
	printf "%-22s %12s %12s %12s %8s %8s %14s\n" "ceiling sink/postfix" \
	    "$(ratio "$SRC_K" "$SRC_P")" "$(ratio "$SRCD_K" "$SRCD_P")" \
	    "$(ratio "$LK" "$LP")" - - -
	printf "%-22s %12s %12s %12s %8s %8s %14s\n" "sluiced/sink" \
	    "$(ratio "$SRC_S" "$SRC_K")" "$(ratio "$SRCD_S" "$SRCD_K")" \
	    "$(ratio "$LS" "$LK")" - - -
	echo
	echo "queued: sluiced $SQ of $SENT_S acknowledged," \
	    "postfix $PQ of $SENT_P acknowledged"
} | tee "$ROOT/$BUILD/bench-acceptance.txt"

if [ "$SQ" != "$SENT_S" ] || [ "$PQ" != "$SENT_P" ]; then
	echo "MISMATCH: a server lost or duplicated acknowledged messages" >&2
	FAILED=1
fi
if [ -s "$WORK/sluiced.log" ] && grep -qiE 'error|fatal' "$WORK/sluiced.log"; then
	echo "sluiced reported errors:" >&2
	grep -iE 'error|fatal' "$WORK/sluiced.log" | head -5 >&2
fi
[ "$FAILED" = 0 ] || die "the run had errors (figures above are not valid)"
