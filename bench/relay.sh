#!/bin/bash
# relay.sh - end-to-end relay rate of sluiced, side by side with Postfix.
#
# One run on this machine, both servers under the same load, each relaying
# everything to its own counting sink on 127.0.0.1: Postfix's smtp-sink,
# or with SINK=tlssink bench/tlssink.c without a certificate (no STARTTLS;
# it takes 1 MB messages five times as fast as smtp-sink, see
# bench/README.md, "Large messages"):
#   - sluiced ($BUILD/sluiced) with a receive connector that lets
#     127.0.0.0/8 relay (ExternalAuthoritative, ExchangeServers) and one
#     send connector for "*" to the smart host [127.0.0.1]:SINK (no DNS);
#   - a private Postfix (tests/it/peers/postfix.py: its own config, queue
#     and data directories; never /etc/postfix or port 25) with
#     mynetworks = 127.0.0.0/8 and relayhost = [127.0.0.1]:SINK, its
#     defaults otherwise (see bench/README.md for every setting and why).
# Both fsync a message before the 250 (sluiced: SQLite WAL commit with
# synchronous=FULL; Postfix: cleanup fsyncs the queue file).
#
# A measured run sends MESSAGES messages of SIZE bytes over SESSIONS
# concurrent sessions (bench/smtpload, or smtp-source -d with
# TOOL=smtp-source) and takes the time from the first message sent until
# the sink has counted all of them (smtp-sink -c counts every "."/BDAT
# LAST it answers): messages per second end to end.  The sink count must
# be exactly MESSAGES (not fewer: lost; not more: duplicated or a bounce),
# the load tool must have had a 250 for every message, and afterwards
# sluiced's queue.db must show every recipient delivered and Postfix's
# queue must be empty.  A run that does not finish within TIMEOUT seconds
# fails and reports the counts it reached.
#
# TLS=1: the same with TLS on both hops (bench/README.md, "Relay with
# TLS").  The load tool (smtpload -S) issues STARTTLS on every session;
# both servers offer STARTTLS with the test PKI's server.pem and relay to
# their own bench/tlssink (a counting sink with STARTTLS; smtp-sink has no
# TLS) with TLS required and the sink's chain verified against
# trusted.pem, connections reused and TLS sessions resumed.  The sinks
# count TLS handshakes and resumed ones; the script also counts TLS in
# sluiced's tracking log and Postfix's log, and fails if any hop of
# either server was not TLS.
#
#   make bench                     (runs acceptance.sh, tls.sh and this)
#   MESSAGES=10000 SESSIONS=20 SIZE=2048 RUNS=1 WARMUP=500 TIMEOUT=120 \
#       bench/relay.sh
#   BENCH_BUILD=build/bench KEEP=1 bench/relay.sh   (own build directory,
#                                                    keep the temp dir)
#   MEM=1 SIZE=20971520 MESSAGES=20 bench/relay.sh   (also the peak memory
#       of each server in each round: bench/memwatch.py sums RSS and PSS
#       over its processes every 50 ms; sluiced's VmHWM too)
#
# Both servers take messages of any SIZE: the size limits (sluiced's
# MaxMessageSize, MaxReceiveSize, MaxSendSize; Postfix's
# message_size_limit) are twice SIZE, at least their defaults.
# Each round prints sluiced's CPU per message (user + system time of all
# its threads over the round, divided by the messages) and the load
# average: steadier than msgs/s on a machine shared with other work.
# Exits non-zero on any error, loss, duplicate or timeout.  Everything it
# started (sinks, servers, load tools, temp dir) is stopped/removed on exit,
# also on failure or a signal.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
ME=relay.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

MESSAGES=${MESSAGES:-10000} # per measured run
SESSIONS=${SESSIONS:-20}    # concurrent SMTP sessions into the server
SIZE=${SIZE:-2048}          # message size in bytes
RUNS=${RUNS:-1}             # measured rounds per server; the best counts
WARMUP=${WARMUP:-500}       # messages relayed by each before measuring
TIMEOUT=${TIMEOUT:-120}     # seconds a measured run may take end to end
TOOL=${TOOL:-smtpload}      # smtpload | smtp-source
TLS=${TLS:-0}               # 1: TLS on both hops (smtpload only)
MEM=${MEM:-0}               # 1: peak memory per round (bench/memwatch.py)
SINK=${SINK:-smtp-sink}     # the next hop: smtp-sink | tlssink (TLS=1: tlssink)
BUILD=${BENCH_BUILD:-build}
PY=/usr/bin/python3
PEER=("$PY" "$ROOT/tests/it/peers/postfix.py")
SMTP_SOURCE=/usr/sbin/smtp-source
SENDER=a@example.org
RCPT=b@example.net # no accepted domain of either server: relayed
START_WAIT=100     # tenths of a second for a server to listen
STOP_WAIT=150      # tenths of a second for sluiced to drain on SIGTERM
POLL=0.05          # seconds between looks at the sink's counter

WORK='' SLUICED_PID='' CHILD='' PF_DIR='' FAILED=0 WATCH=''
# Size limits for both servers: twice the message, at least 36 MB.
LIMIT=$((SIZE * 2 > 37748736 ? SIZE * 2 : 37748736))
SINK_PID_S='' SINK_PID_P=''

cleanup() {
	stop_pid "$WATCH" 10
	WATCH=
	stop_pid "$CHILD" 10
	CHILD=
	stop_pid "$SLUICED_PID" "$STOP_WAIT"
	SLUICED_PID=
	stop_postfix
	stop_pid "$SINK_PID_S"
	stop_pid "$SINK_PID_P"
	SINK_PID_S='' SINK_PID_P=''
	remove_work
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- prerequisites and builds -----------------------------------------------

SMTP_SINK=
for s in /usr/sbin/smtp-sink /usr/lib/postfix/sbin/smtp-sink; do
	[ -x "$s" ] && SMTP_SINK=$s && break
done
[ -n "$SMTP_SINK" ] || die "smtp-sink is missing (make deps: postfix)"
for tool in "$PY" "$SMTP_SOURCE" /usr/sbin/postfix ss; do
	command -v "$tool" >/dev/null || die "$tool is missing (make deps)"
done
case "$TOOL" in
smtpload | smtp-source) ;;
*) die "TOOL=$TOOL: smtpload or smtp-source" ;;
esac
case "$TLS" in
0) ;;
1)
	[ "$TOOL" = smtpload ] || die "TLS=1 needs TOOL=smtpload"
	SINK=tlssink
	;;
*) die "TLS=$TLS: 0 or 1" ;;
esac
case "$SINK" in
smtp-sink | tlssink) ;;
*) die "SINK=$SINK: smtp-sink or tlssink" ;;
esac
make -s BUILD="$BUILD" all ||
    die "sluiced does not build (make BUILD=$BUILD all failed)"
SLUICED=$ROOT/$BUILD/sluiced
SLUICECTL=$ROOT/$BUILD/sluicectl
[ -x "$SLUICED" ] || die "$SLUICED does not exist"

WORK=$(mktemp -d /tmp/sluice-relay.XXXXXX) || die "mktemp failed"
chmod 755 "$WORK" # Postfix's daemons (user postfix) enter its queue here
SMTPLOAD=$WORK/smtpload
TLSSINK=$WORK/tlssink
PKI=$WORK/pki
CFLAGS_BENCH=(-std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wshadow
    -Wpointer-arith -Wcast-qual -Wstrict-prototypes -Wmissing-prototypes)
if [ "$TLS" = 1 ]; then
	cc "${CFLAGS_BENCH[@]}" -DSL_TLS -o "$SMTPLOAD" bench/smtpload.c \
	    -lssl -lcrypto || die "bench/smtpload.c does not build"
	cc "${CFLAGS_BENCH[@]}" -o "$TLSSINK" bench/tlssink.c -lssl -lcrypto ||
	    die "bench/tlssink.c does not build"
	tests/pki/make-pki.sh "$PKI" >/dev/null || die "make-pki.sh failed"
else
	cc "${CFLAGS_BENCH[@]}" -o "$SMTPLOAD" bench/smtpload.c ||
	    die "bench/smtpload.c does not build"
	if [ "$SINK" = tlssink ]; then # plaintext: no certificate given
		cc "${CFLAGS_BENCH[@]}" -o "$TLSSINK" bench/tlssink.c \
		    -lssl -lcrypto || die "bench/tlssink.c does not build"
	fi
fi

free_ports() { # n: n distinct free loopback ports
	"$PY" - "$1" <<'PYEOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(*(s.getsockname()[1] for s in socks))
PYEOF
}
read -r SPORT PPORT SINK_S SINK_P < <(free_ports 4)

# --- the sinks ------------------------------------------------------------------

# One sink per server, so that each count is that server's alone.
# smtp-sink -c writes "sess=N quit=N mesg=N" after every message
# (CR-separated); tlssink writes the same plus "tls=N resumed=N" (one line
# at most every 10 ms while it changes, the exact totals last).
start_sink() { # name port: sets SINK_PID_<name>
	local args=(-c)
	if [ "$TLS" = 1 ]; then
		"$TLSSINK" -C "$PKI/server.pem" \
		    -K "$PKI/server.key" "127.0.0.1:$2" \
		    >"$WORK/sink-$1.out" 2>&1 </dev/null &
	elif [ "$SINK" = tlssink ]; then # no certificate: no STARTTLS
		"$TLSSINK" "127.0.0.1:$2" >"$WORK/sink-$1.out" 2>&1 </dev/null &
	else
		[ "$(id -u)" = 0 ] && args+=(-u nobody) # smtp-sink drops root
		"$SMTP_SINK" "${args[@]}" "127.0.0.1:$2" 256 \
		    >"$WORK/sink-$1.out" 2>&1 </dev/null &
	fi
	printf -v "SINK_PID_$1" %s $!
	wait_listen "$2" || die "the sink did not start on port $2"
}

sink_field() { # S|P field: the sink's last value of field= (0 if none)
	local c
	c=$(tail -c 512 "$WORK/sink-$1.out" | tr '\r' '\n' |
	    grep -o "\\b$2=[0-9]*" | tail -1)
	c=${c#"$2"=}
	echo "${c:-0}" # not through awk: mawk prints 2^31 and above as 2.2e+09
}

sink_count() { sink_field "$1" mesg; } # S|P: messages received so far

# --- the two servers ----------------------------------------------------------

start_sluiced() {
	local auth=ExternalAuthoritative rtls='' ttls='' stls='' cert=''
	if [ "$TLS" = 1 ]; then
		# Inbound: STARTTLS offered with server.pem.  Outbound: TLS
		# required, the sink's chain verified against trusted.pem.
		auth="Tls, ExternalAuthoritative"
		rtls="TlsCertificateName = mx"
		ttls="TrustedCAFile = $PKI/trusted.pem"
		stls=$'RequireTLS = true\nTlsAuthLevel = CertificateValidation'
		cert=$'[Certificate mx]\nCertificateFile = '"$PKI/server.pem"
		cert+=$'\nKeyFile = '"$PKI/server.key"
	fi
	mkdir -p "$WORK/sluice"
	cat >"$WORK/sluice.conf" <<CONF
[Transport]
QueueDirectory = $WORK/sluice/queue
LogDirectory = $WORK/sluice/log
ControlSocket = $WORK/sluice/ctl.sock
MaxReceiveSize = $LIMIT
MaxSendSize = $LIMIT
$ttls

$cert

[AcceptedDomain localhost]
DomainType = Authoritative

[ReceiveConnector Relay]
Bindings = 127.0.0.1:$SPORT
RemoteIPRanges = 127.0.0.0/8
AuthMechanism = $auth
$rtls
PermissionGroups = ExchangeServers
Fqdn = sluice.bench
TarpitInterval = 0s
ProtocolLoggingLevel = None
MaxInboundConnectionPerSource = 1000
MaxMessageSize = $LIMIT

[SendConnector Sink]
AddressSpaces = *
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:$SINK_S
Fqdn = sluice.bench
ProtocolLoggingLevel = None
$stls
CONF
	"$SLUICECTL" -c "$WORK/sluice.conf" config check >/dev/null ||
	    die "the sluiced configuration is refused ($WORK/sluice.conf)"
	"$SLUICED" -f -c "$WORK/sluice.conf" 2>>"$WORK/sluiced.log" &
	SLUICED_PID=$!
	wait_listen "$SPORT" || {
		tail -5 "$WORK/sluiced.log" >&2
		die "sluiced did not start"
	}
}

# Postfix's defaults already match sluiced's send connector where it
# matters (20 connections per destination, connection cache on demand);
# they are spelled out so that the comparison documents itself.
#
# TLS=1, the same policy as sluiced's: smtpd offers STARTTLS with
# server.pem (security level may); the smtp client requires TLS and
# verifies the sink's chain and name (level verify; the sink is reached
# as [localhost], a name server.pem carries, as Postfix does not match IP
# address SANs), resumes sessions through tlsmgr's cache, and keeps TLS
# connections for reuse (smtp_tls_connection_reuse, which needs the
# tlsproxy service: added to the instance's master.cf, then reload).
start_postfix() {
	local relay=127.0.0.1 tls=()
	PF_DIR=$WORK/postfix
	if [ "$TLS" = 1 ]; then
		relay=localhost
		tls=(-o smtpd_tls_security_level=may
		    -o "smtpd_tls_cert_file=$PKI/server.pem"
		    -o "smtpd_tls_key_file=$PKI/server.key"
		    -o smtpd_tls_loglevel=1
		    -o smtp_tls_security_level=verify
		    -o "smtp_tls_CAfile=$PKI/trusted.pem"
		    -o "smtp_tls_session_cache_database=btree:$PF_DIR/data/smtp_scache"
		    -o smtp_tls_connection_reuse=yes
		    -o smtp_tls_loglevel=1)
	fi
	mkdir -p "$PF_DIR"
	"${PEER[@]}" start --dir "$PF_DIR" --port "$PPORT" \
	    --mynetworks 127.0.0.0/8 --process-limit 100 \
	    -o "relayhost=[$relay]:$SINK_P" \
	    -o default_destination_concurrency_limit=20 \
	    -o "message_size_limit=$LIMIT" \
	    -o smtp_connection_cache_on_demand=yes "${tls[@]}" ||
	    die "postfix did not start"
	if [ "$TLS" = 1 ]; then
		/usr/sbin/postconf -c "$PF_DIR/etc" -M \
		    "tlsproxy/unix=tlsproxy unix - - n - 0 tlsproxy" ||
		    die "postfix: adding tlsproxy failed"
		/usr/sbin/postfix -c "$PF_DIR/etc" reload 2>/dev/null ||
		    die "postfix reload failed"
		sleep 1 # the master rereads master.cf after the reload
	fi
}

# --- load ------------------------------------------------------------------------

port_of() { [ "$1" = sluiced ] && echo "$SPORT" || echo "$PPORT"; }
sink_of() { [ "$1" = sluiced ] && echo S || echo P; }

load_start() { # server messages: the load tool in the background (CHILD)
	local port
	port=$(port_of "$1")
	if [ "$TOOL" = smtpload ]; then
		"$SMTPLOAD" "${LOAD_TLS[@]}" -c "$SESSIONS" -m "$2" -s "$SIZE" \
		    -f "$SENDER" \
		    -t "$RCPT" "127.0.0.1:$port" >"$WORK/load.out" \
		    2>"$WORK/load.err" &
	else
		"$SMTP_SOURCE" -d -c -s "$SESSIONS" -m "$2" -l "$SIZE" \
		    -f "$SENDER" -t "$RCPT" "127.0.0.1:$port" \
		    >"$WORK/load.out" 2>"$WORK/load.err" &
	fi
	CHILD=$!
}

LOAD_TLS=()
[ "$TLS" = 1 ] && LOAD_TLS=(-S)

# MEM=1: bench/memwatch.py samples the server under test during a round;
# MEMORY="rss_kb pss_kb [hwm_kb]" is that round's peak.  sluiced's peak
# resident size (VmHWM) is reset first (clear_refs 5) so it is the
# round's alone.
mem_start() { # server
	local target
	if [ "$1" = sluiced ]; then
		echo 5 >"/proc/$SLUICED_PID/clear_refs" 2>/dev/null
		target=(--pid "$SLUICED_PID")
	else
		target=(--env "MAIL_CONFIG=$PF_DIR/etc")
	fi
	"$PY" "$ROOT/bench/memwatch.py" "${target[@]}" >"$WORK/mem.out" &
	WATCH=$!
}

mem_stop() { # server
	local hwm=''
	kill -TERM "$WATCH" 2>/dev/null
	wait "$WATCH" 2>/dev/null
	WATCH=
	[ "$1" = sluiced ] &&
	    hwm=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$SLUICED_PID/status")
	read -r m_rss m_pss _ <"$WORK/mem.out"
	MEMORY="${m_rss:-0} ${m_pss:-0} $hwm"
}
# sluiced's CPU time (user + system, its threads) in clock ticks: CPU per
# message is far steadier than msgs/s on a machine shared with other work.
HZ=$(getconf CLK_TCK)
sluiced_ticks() {
	awk '{ print $14 + $15 }' "/proc/$SLUICED_PID/stat" 2>/dev/null || echo 0
}
CPU='' # the last sluiced round's CPU per message, ms
ACKED_S=0 ACKED_P=0 # messages each server acknowledged (warm-up included)
LTLS_S=0 LTLS_P=0   # TLS=1: inbound TLS sessions the load tool opened

# One relay run; RESULT="e2e_msgs/s accept_msgs/s delivered", or fails.
# The clock starts just before the load tool and stops when the sink has
# counted all n messages.
relay_run() { # server n
	local s=$1 n=$2 k base t0 t1 ta='' rc=0 c=0 accepted deadline late=0
	local cpu0=0 bbase=0 b
	k=$(sink_of "$s")
	base=$(sink_count "$k")
	[ "$SINK" = tlssink ] && bbase=$(sink_field "$k" bytes)
	RESULT="0 0 0"
	[ "$MEM" = 1 ] && mem_start "$s"
	[ "$s" = sluiced ] && cpu0=$(sluiced_ticks)
	t0=$EPOCHREALTIME
	load_start "$s" "$n"
	deadline=$((${t0%.*} + TIMEOUT))
	while :; do
		if [ -n "$CHILD" ] && ! alive "$CHILD"; then
			ta=$EPOCHREALTIME
			wait "$CHILD"
			rc=$?
			CHILD=
		fi
		c=$(($(sink_count "$k") - base))
		[ "$c" -ge "$n" ] && break
		if [ "${EPOCHREALTIME%.*}" -ge "$deadline" ]; then
			echo "TIMEOUT: $s did not relay $n messages in" \
			    "${TIMEOUT}s; the sink has $c" >&2
			late=1
			break
		fi
		if [ -z "$CHILD" ] && [ "$rc" -ne 0 ]; then
			break # the load failed: no point waiting for the sink
		fi
		sleep "$POLL"
	done
	t1=$EPOCHREALTIME
	[ "$s" = sluiced ] && CPU=$(awk -v a="$cpu0" -v b="$(sluiced_ticks)" \
	    -v n="$n" -v hz="$HZ" 'BEGIN { printf "%.3f", (b - a) * 1000 / hz / n }')
	[ "$MEM" = 1 ] && mem_stop "$s"
	if [ -n "$CHILD" ]; then # the sink was faster than the tool's exit
		wait "$CHILD"
		rc=$?
		ta=${ta:-$EPOCHREALTIME}
		CHILD=
	fi
	if [ "$TOOL" = smtpload ]; then
		accepted=$(awk '$1 == "accepted:" { print $2 }' "$WORK/load.out")
	else
		[ "$rc" = 0 ] && accepted=$n || accepted=0
	fi
	accepted=${accepted:-0}
	[ "$s" = sluiced ] && ACKED_S=$((ACKED_S + accepted)) ||
	    ACKED_P=$((ACKED_P + accepted))
	if [ "$TLS" = 1 ]; then # STARTTLS handshakes the load tool made
		k=$(awk '$1 == "tls_sessions:" { print $2 }' "$WORK/load.out")
		[ "$s" = sluiced ] && LTLS_S=$((LTLS_S + ${k:-0})) ||
		    LTLS_P=$((LTLS_P + ${k:-0}))
		k=$(sink_of "$s")
	fi
	if [ "$rc" -ne 0 ] || [ "$accepted" != "$n" ]; then
		echo "$TOOL against $s: $accepted of $n acknowledged" >&2
		tail -5 "$WORK/load.err" >&2
		return 1
	fi
	# Late duplicates would show up here.
	sleep 0.5
	c=$(($(sink_count "$k") - base))
	if [ "$c" != "$n" ]; then
		echo "$s: the sink counted $c messages, $n were sent" >&2
		late=1
	fi
	# tlssink also counts content bytes: every message arrived whole (at
	# least SIZE each; the servers add their Received: lines)
	if [ "$SINK" = tlssink ]; then
		b=$(($(sink_field "$k" bytes) - bbase))
		if [ "$b" -lt $((n * SIZE)) ]; then
			echo "$s: the sink got $b bytes of content for $n" \
			    "messages of $SIZE: some were cut" >&2
			late=1
		fi
	fi
	if [ "$late" = 1 ]; then # no rate for a failed run
		RESULT="0 0 $c"
		return 1
	fi
	RESULT=$(awk -v n="$n" -v c="$c" -v a="$t0" -v b="$t1" -v t="$ta" \
	    'BEGIN { printf "%.3g %.3g %d", n / (b - a), n / (t - a), c }')
}

# --- the run -----------------------------------------------------------------------

REPORT=bench-relay.txt
[ "$TLS" = 1 ] && REPORT=bench-relay-tls.txt
MODE=''
[ "$TLS" = 1 ] && MODE=" (TLS on both hops)"
echo "relay benchmark$MODE: $MESSAGES messages of $SIZE bytes, $SESSIONS" \
    "sessions ($TOOL), $RUNS round(s) (best counts), $WARMUP warm-up," \
    "$(nproc) cores"
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)" \
    "(other work on this machine skews the figures)"
echo "sluiced $(git describe --always --dirty 2>/dev/null || echo '?')," \
    "postfix $(/usr/sbin/postconf -h mail_version 2>/dev/null)"

start_sink S "$SINK_S"
start_sink P "$SINK_P"
start_sluiced
start_postfix

if [ "$WARMUP" -gt 0 ]; then
	echo "warm-up: $WARMUP messages relayed by each"
	for s in sluiced postfix; do
		relay_run "$s" "$WARMUP" || FAILED=1
	done
fi

E2E_S=0 E2E_P=0 ACC_S=0 ACC_P=0 DEL_S=0 DEL_P=0 MEM_S='' MEM_P=
for ((r = 1; r <= RUNS; r++)); do
	for s in sluiced postfix; do
		relay_run "$s" "$MESSAGES" || FAILED=1
		read -r e2e acc del <<<"$RESULT"
		echo "  round $r $s: $e2e msgs/s end to end ($acc msgs/s" \
		    "accepted), sink counted $del of $MESSAGES$([ "$s" = sluiced ] &&
		        echo ", CPU $CPU ms/msg"), load $(cut -d' ' -f1 /proc/loadavg)"
		if [ "$MEM" = 1 ]; then
			read -r m_rss m_pss m_hwm <<<"$MEMORY"
			echo "  round $r $s: peak memory $((m_rss / 1024)) MB RSS," \
			    "$((m_pss / 1024)) MB PSS${m_hwm:+, VmHWM $((m_hwm / 1024)) MB}"
			if [ "$s" = sluiced ]; then
				MEM_S="$m_rss $m_pss $m_hwm"
			else
				MEM_P="$m_rss $m_pss"
			fi
		fi
		if [ "$s" = sluiced ]; then
			[ "$(better "$E2E_S" "$e2e")" = "$e2e" ] &&
			    E2E_S=$e2e ACC_S=$acc
			DEL_S=$del
		else
			[ "$(better "$E2E_P" "$e2e")" = "$e2e" ] &&
			    E2E_P=$e2e ACC_P=$acc
			DEL_P=$del
		fi
	done
done

# --- nothing lost --------------------------------------------------------------------

TOTAL_S=$(sink_count S) TOTAL_P=$(sink_count P)
# Every recipient of the bench's sender delivered (status 1), none pending
# (0) or failed (2); bounces would also have reached the sink and shown as
# duplicates above.
SQ=$("$PY" - "$WORK/sluice/queue/queue.db" "$SENDER" <<'PYEOF'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
rows = dict(db.execute(
    "select r.status, count(*) from recipients r join messages m "
    "on m.id = r.message_id where m.sender = ? group by r.status",
    (sys.argv[2],)).fetchall())
print(rows.get(1, 0), rows.get(0, 0) + rows.get(2, 0))
PYEOF
) || SQ="? ?"
read -r SQ_DONE SQ_LEFT <<<"$SQ"
for ((i = 0; i < 100; i++)); do # the queue file goes after the sink's 250
	PQ=$("${PEER[@]}" count --dir "$PF_DIR") || PQ="?"
	[ "$PQ" = 0 ] && break
	sleep 0.1
done

{
	echo
	printf "%-22s %14s %14s %22s\n" "" "end to end" "accepted" \
	    "delivered to sink"
	printf "%-22s %14s %14s %22s\n" system msgs/s msgs/s "(last run, all runs)"
	printf "%-22s %14s %14s %22s\n" sluiced "$E2E_S" "$ACC_S" \
	    "$DEL_S/$MESSAGES, $TOTAL_S/$ACKED_S"
	printf "%-22s %14s %14s %22s\n" postfix "$E2E_P" "$ACC_P" \
	    "$DEL_P/$MESSAGES, $TOTAL_P/$ACKED_P"
	printf "%-22s %14s %14s\n" "ratio sluiced/postfix" \
	    "$(ratio "$E2E_S" "$E2E_P")" "$(ratio "$ACC_S" "$ACC_P")"
	if [ "$MEM" = 1 ]; then
		read -r ms_rss ms_pss ms_hwm <<<"$MEM_S"
		read -r mp_rss mp_pss <<<"$MEM_P"
		echo
		echo "peak memory in the last round (MB): sluiced" \
		    "$((ms_rss / 1024)) RSS, $((ms_pss / 1024)) PSS," \
		    "VmHWM $((ms_hwm / 1024)); postfix (all processes)" \
		    "$((mp_rss / 1024)) RSS, $((mp_pss / 1024)) PSS;" \
		    "ratio sluiced/postfix PSS $(ratio "$ms_pss" "$mp_pss")"
	fi
	echo
	echo "queues afterwards: sluiced $SQ_DONE recipients delivered," \
	    "$SQ_LEFT pending or failed; postfix $PQ messages left"
} | tee "$ROOT/$BUILD/$REPORT"

# --- TLS=1: was every hop TLS? ------------------------------------------------------

# Inbound: smtpload -S refuses to send without STARTTLS and a handshake;
# sluiced records each message's inbound TLS in queue.db (messages.tls;
# the tracking log's RECEIVE rows leave tls= empty), Postfix's smtpd logs
# each handshake.  Outbound: the sink counts handshakes, resumed ones and
# the messages that came inside TLS; sluiced's tracking log has tls= on
# each delivery row, Postfix's smtp logs each new TLS connection.
tls_evidence() {
	local f s_tls s_res p_tls p_res s_row s_rowres q_plain q_tls \
	    p_in p_out
	f=("$WORK"/sluice/log/MessageTracking/*.LOG)
	s_row=$(grep -hc ',tls=CertificateValidation:verified;' "${f[@]}" |
	    awk '{ n += $1 } END { print n + 0 }')
	s_rowres=$(grep -h ',tls=CertificateValidation:verified;' "${f[@]}" |
	    grep -c ';resumed,')
	read -r q_tls q_plain < <("$PY" - "$WORK/sluice/queue/queue.db" \
	    "$SENDER" <<'PYEOF'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
n = dict(db.execute("select tls != '', count(*) from messages "
                    "where sender = ? group by tls != ''",
                    (sys.argv[2],)).fetchall())
print(n.get(1, 0), n.get(0, 0))
PYEOF
	) || q_tls='?'
	p_in=$(grep -c 'postfix/smtpd.*TLS connection established from' \
	    "$PF_DIR/maillog")
	p_out=$(grep -c 'postfix/tlsproxy.*Verified TLS connection established to' \
	    "$PF_DIR/maillog")
	s_tls=$(sink_field S tls) s_res=$(sink_field S resumed)
	p_tls=$(sink_field P tls) p_res=$(sink_field P resumed)
	echo
	echo "TLS (all runs, warm-up included): inbound STARTTLS with" \
	    "server.pem; outbound TLS required, the sink's chain verified"
	echo "sluiced  inbound:  $LTLS_S TLS sessions from smtpload ($(awk \
	    '$1 == "tls_last:" { print $2, $3 }' "$WORK/load.out")); queue.db:" \
	    "$q_tls of $ACKED_S messages received with TLS, $q_plain without"
	echo "         outbound: sink: $(sink_field S tlsmesg) of" \
	    "$(sink_count S) messages inside TLS; $(sink_field S sess)" \
	    "connections, $s_tls TLS sessions, $s_res resumed" \
	    "($(pct "$s_res" "$s_tls"))"
	echo "                   tracking log: $s_row deliveries with" \
	    "tls=CertificateValidation:verified, $s_rowres of them resumed"
	echo "postfix  inbound:  $LTLS_P TLS sessions from smtpload; log:" \
	    "$p_in 'TLS connection established from' (smtpd)"
	echo "         outbound: sink: $(sink_field P tlsmesg) of" \
	    "$(sink_count P) messages inside TLS; $(sink_field P sess)" \
	    "connections, $p_tls TLS sessions, $p_res resumed" \
	    "($(pct "$p_res" "$p_tls"))"
	echo "                   log: $p_out 'Verified TLS connection" \
	    "established to' (tlsproxy)"
	if [ "$(sink_field S tlsmesg)" != "$ACKED_S" ] ||
	    [ "$(sink_field P tlsmesg)" != "$ACKED_P" ] ||
	    [ "$q_tls" != "$ACKED_S" ] || [ "$s_row" != "$ACKED_S" ] ||
	    [ "$LTLS_S" -lt 1 ] || [ "$p_in" -lt "$LTLS_P" ] ||
	    [ "$p_out" -lt 1 ]; then
		echo "NOT TLS: a message went through a hop without TLS" >&2
		return 1
	fi
}

pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-";
    else printf "%.0f%%", 100 * a / b }'; }

if [ "$TLS" = 1 ]; then
	tls_evidence | tee -a "$ROOT/$BUILD/$REPORT"
	[ "${PIPESTATUS[0]}" = 0 ] || FAILED=1
fi

if [ "$TOTAL_S" != "$ACKED_S" ] || [ "$TOTAL_P" != "$ACKED_P" ] ||
    [ "$SQ_DONE" != "$ACKED_S" ] || [ "$SQ_LEFT" != 0 ] || [ "$PQ" != 0 ]; then
	echo "MISMATCH: a server lost, duplicated or kept messages" >&2
	FAILED=1
fi
if [ -s "$WORK/sluiced.log" ] && grep -qiE 'error|fatal' "$WORK/sluiced.log"; then
	echo "sluiced reported errors:" >&2
	grep -iE 'error|fatal' "$WORK/sluiced.log" | head -5 >&2
fi
[ "$FAILED" = 0 ] || die "the run had errors (figures above are not valid)"
