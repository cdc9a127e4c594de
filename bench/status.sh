#!/bin/bash
# status.sh - what the status listener and the TLS posture cost: acceptance
# and relay throughput of sluiced with them on, against off, in one run.
#
# Four sluiced ($BUILD/sluiced) run side by side, two for acceptance and
# two for relay, each pair with the same configuration but for two keys:
#   on:  StatusListen = 127.0.0.1:PORT (counters kept, /metrics served)
#        and TlsPostureEnabled = true (every outbound session recorded,
#        flushed to queue.db every minute), while a scraper fetches
#        /metrics every SCRAPE seconds (Prometheus scrapes every 15 s by
#        default; 1 s is harsher) and the status page every tenth time;
#   off: no StatusListen, TlsPostureEnabled = false.
# A relay daemon sends everything to its own smtp-sink through a
# smart-host connector for "*".  An acceptance daemon routes everything to
# a connector whose queue is suspended, so the mail is only accepted and
# stored (separate daemons, so that the acceptance pair's queues never
# share a queue manager with the relay pair's).
#
# Rounds alternate on and off (on first in odd rounds, off first in even
# ones), so that a disturbance of the machine hits both:
#   - acceptance: smtpload sends MESSAGES over SESSIONS sessions; its
#     msgs/s (250s per second) counts;
#   - relay: smtpload sends MESSAGES to b@example.net; the rate is
#     MESSAGES over the time until the sink has counted them all.
# Besides the rates, the CPU time the daemon used per message in each
# round (utime + stime from /proc/PID/stat, scrapes of the "on" daemon
# included): on a machine shared with other work the rates swing with
# it, the CPU per message much less.  The median of RUNS rounds per mode
# is reported, with every round, and the ratios on/off.  Every message must be acknowledged and every relayed
# one counted by its sink exactly once, or the script fails.
#
#   MESSAGES=5000 SESSIONS=20 SIZE=2048 RUNS=5 SCRAPE=1 bench/status.sh
#   BENCH_BUILD=build/bench KEEP=1 bench/status.sh
#   KINDS=relay PERF=1 bench/status.sh   # relay only, profiled
#   KINDS=relay CALLGRIND=1 MESSAGES=2000 RUNS=3 bench/status.sh
# KINDS picks the pairs that run (accept, relay or both).  PERF=1 runs
# `perf record -g` on every daemon during the measured rounds and keeps
# the work directory with perf-MODE_KIND.data in it, for `perf report -i`.
# CALLGRIND=1 runs every daemon under valgrind's callgrind and counts the
# instructions each executes per message in each round (zeroed before the
# round, dumped after it).  That count moves much less with the machine's
# load than CPU time does (a few percent: how messages fall into commit
# batches still depends on timing), and callgrind tells which functions
# spent it: the script prints what the watching's own functions (the
# counters, the posture and its writes, the TLS report's record, the
# listener's requests and its queue reading) cost per message of the "on"
# daemon.  The daemons run some 20 to 50 times slower, so the rates mean
# nothing then, and the listener's work (every SCRAPE seconds of wall
# time) weighs as many times more per message as the run is slower.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
ME=status.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

MESSAGES=${MESSAGES:-5000} # per measured run
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-2048}
RUNS=${RUNS:-5}     # rounds per mode; the median counts
WARMUP=${WARMUP:-500}
SCRAPE=${SCRAPE:-1} # seconds between two scrapes of the "on" daemon
KINDS=${KINDS:-accept relay}
PERF=${PERF:-0}
[ "$PERF" = 1 ] && KEEP=1
CALLGRIND=${CALLGRIND:-0}
VG=()
if [ "$CALLGRIND" = 1 ]; then
	TIMEOUT=${TIMEOUT:-1800}
	START_WAIT=600
else
	TIMEOUT=${TIMEOUT:-120}
	START_WAIT=100
fi
BUILD=${BENCH_BUILD:-build}
PY=/usr/bin/python3
PEER=()
PF_DIR=''
POLL=0.05

WORK='' CHILD='' SCRAPER='' FAILED=0 PERFPIDS=()
PID_on_accept='' PID_off_accept='' PID_on_relay='' PID_off_relay=''
SINKPID_on='' SINKPID_off=''

cleanup() {
	local p
	for p in "${PERFPIDS[@]}"; do
		kill -INT "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	stop_pid "$CHILD" 10
	stop_pid "$SCRAPER" 10
	stop_pid "$PID_on_accept" 150
	stop_pid "$PID_off_accept" 150
	stop_pid "$PID_on_relay" 150
	stop_pid "$PID_off_relay" 150
	stop_pid "$SINKPID_on"
	stop_pid "$SINKPID_off"
	remove_work
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SMTP_SINK=
for s in /usr/sbin/smtp-sink /usr/lib/postfix/sbin/smtp-sink; do
	[ -x "$s" ] && SMTP_SINK=$s && break
done
[ -n "$SMTP_SINK" ] || die "smtp-sink is missing (make deps: postfix)"
command -v curl >/dev/null || die "curl is missing"
[ "$PERF" = 1 ] && { command -v perf >/dev/null || die "perf is missing"; }
if [ "$CALLGRIND" = 1 ]; then
	for t in valgrind callgrind_control callgrind_annotate; do
		command -v "$t" >/dev/null || die "$t is missing (valgrind)"
	done
fi
make -s BUILD="$BUILD" all || die "sluiced does not build"
SLUICED=$ROOT/$BUILD/sluiced
SLUICECTL=$ROOT/$BUILD/sluicectl
WORK=$(mktemp -d /tmp/sluice-status.XXXXXX) || die "mktemp failed"
SMTPLOAD=$WORK/smtpload
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o "$SMTPLOAD" \
    bench/smtpload.c || die "bench/smtpload.c does not build"

read -r PA_on PA_off PR_on PR_off SINK_on SINK_off HTTPA HTTPR < <(
    "$PY" - <<'PYEOF'
import socket
socks = []
for _ in range(8):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(*(s.getsockname()[1] for s in socks))
PYEOF
)

start_sink() { # mode port
	local args=(-c)
	[ "$(id -u)" = 0 ] && args+=(-u nobody)
	"$SMTP_SINK" "${args[@]}" "127.0.0.1:$2" 256 >"$WORK/sink-$1.out" \
	    2>&1 </dev/null &
	printf -v "SINKPID_$1" %s $!
	wait_listen "$2" || die "the $1 sink did not start"
}

sink_count() { # mode
	local c
	c=$(tail -c 512 "$WORK/sink-$1.out" | tr '\r' '\n' |
	    grep -o '\bmesg=[0-9]*' | tail -1)
	echo "${c#mesg=}" | awk '{ print $1 + 0 }'
}

start_sluiced() { # mode accept|relay port sinkport httpport
	local i name=$1_$2 extra='TlsPostureEnabled = false'
	[ "$1" = on ] && extra=$'TlsPostureEnabled = true\nStatusListen = 127.0.0.1:'"$5"
	mkdir -p "$WORK/$name"
	cat >"$WORK/$name.conf" <<CONF
[Transport]
QueueDirectory = $WORK/$name/queue
LogDirectory = $WORK/$name/log
ControlSocket = $WORK/$name/ctl.sock
$extra

[AcceptedDomain localhost]
DomainType = Authoritative

[ReceiveConnector Relay]
Bindings = 127.0.0.1:$3
RemoteIPRanges = 127.0.0.0/8
AuthMechanism = ExternalAuthoritative
PermissionGroups = ExchangeServers
Fqdn = sluice.bench
TarpitInterval = 0s
ProtocolLoggingLevel = None
MaxInboundConnectionPerSource = 1000

[SendConnector Sink]
AddressSpaces = *
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:$4
Fqdn = sluice.bench
ProtocolLoggingLevel = None
CONF
	[ "$CALLGRIND" = 1 ] && VG=(valgrind --tool=callgrind
	    "--callgrind-out-file=$WORK/cg-$name" --log-file="$WORK/vg-$name.log")
	"${VG[@]}" "$SLUICED" -f -c "$WORK/$name.conf" 2>>"$WORK/$name.log" &
	printf -v "PID_$name" %s $!
	wait_listen "$3" || die "sluiced ($name) did not start"
	if [ "$2" = accept ]; then
		# under callgrind the control socket may come a while later
		for ((i = 0; i < START_WAIT; i++)); do
			[ -S "$WORK/$name/ctl.sock" ] && break
			sleep 0.1
		done
		"$SLUICECTL" -c "$WORK/$name.conf" suspend Sink >/dev/null ||
		    die "cannot suspend the queue ($name)"
	fi
}

cpu_ticks() { # pid: utime + stime in clock ticks
	awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# One round of one kind for one mode; RESULT is its msgs/s, CPU the
# daemon's CPU microseconds per message (CALLGRIND=1: INSTR its
# instructions per message, DUMP the round's callgrind dump).
run() { # mode accept|relay
	local port base t0 t1 c rc acc to=b@example.net deadline pid k0
	case "$1_$2" in
	on_accept) port=$PA_on pid=$PID_on_accept ;;
	off_accept) port=$PA_off pid=$PID_off_accept ;;
	on_relay) port=$PR_on pid=$PID_on_relay ;;
	*) port=$PR_off pid=$PID_off_relay ;;
	esac
	CPU=0 INSTR=0 DUMP=''
	[ "$CALLGRIND" = 1 ] && callgrind_control -z "$pid" >/dev/null 2>&1
	k0=$(cpu_ticks "$pid")
	base=$(sink_count "$1")
	t0=$EPOCHREALTIME
	deadline=$((${t0%.*} + TIMEOUT))
	"$SMTPLOAD" -c "$SESSIONS" -m "$MESSAGES" -s "$SIZE" -f a@example.org \
	    -t "$to" "127.0.0.1:$port" >"$WORK/load.out" 2>"$WORK/load.err"
	rc=$?
	acc=$(awk '$1 == "accepted:" { print $2 }' "$WORK/load.out")
	if [ "$rc" -ne 0 ] || [ "${acc:-0}" != "$MESSAGES" ]; then
		echo "$1 $2: ${acc:-0} of $MESSAGES acknowledged" >&2
		RESULT=0
		return 1
	fi
	if [ "$2" = accept ]; then
		RESULT=$(awk '$1 == "msgs/s:" { printf "%.0f", $2 }' \
		    "$WORK/load.out")
		cpu_per_msg "$pid" "$k0" "$1_$2"
		return 0
	fi
	while c=$(($(sink_count "$1") - base)); [ "$c" -lt "$MESSAGES" ]; do
		if [ "${EPOCHREALTIME%.*}" -ge "$deadline" ]; then
			echo "$1 relay: the sink has $c of $MESSAGES" >&2
			RESULT=0
			return 1
		fi
		sleep "$POLL"
	done
	t1=$EPOCHREALTIME
	sleep 0.3
	c=$(($(sink_count "$1") - base))
	[ "$c" = "$MESSAGES" ] || {
		echo "$1 relay: the sink counted $c of $MESSAGES" >&2
		RESULT=0
		return 1
	}
	RESULT=$(awk -v n="$MESSAGES" -v a="$t0" -v b="$t1" \
	    'BEGIN { printf "%.0f", n / (b - a) }')
	cpu_per_msg "$pid" "$k0" "$1_$2"
}

cpu_per_msg() { # pid ticks-before name: CPU = microseconds per message
	local f
	CPU=$(awk -v a="$2" -v b="$(cpu_ticks "$1")" -v hz="$(getconf CLK_TCK)" \
	    -v n="$MESSAGES" 'BEGIN { printf "%.1f", (b - a) * 1e6 / hz / n }')
	[ "$CALLGRIND" = 1 ] || return 0
	# each dump goes to the next cg-NAME.N: the newest is this round's
	callgrind_control -d "$1" >/dev/null 2>&1
	for f in "$WORK/cg-$3".[0-9]*; do
		if [ -z "$DUMP" ] || [ "$f" -nt "$DUMP" ]; then DUMP=$f; fi
	done
	[ -f "$DUMP" ] || { DUMP='' INSTR=0; return 1; }
	INSTR=$(awk -v n="$MESSAGES" '$1 == "summary:" || $1 == "totals:" {
	    t = $2 } END { printf "%.0f", t / n }' "$DUMP")
}

# The instructions per message the watching's own functions took (with
# what they call) in these dumps, one line each.
watch_cost() { # dump...
	local f
	for f in "$@"; do
		callgrind_annotate --inclusive=yes --auto=no --threshold=100 "$f"
	done | awk -v n="$((MESSAGES * $#))" '
	    match($0, /:(metrics_add|metrics_observe|posture_session|posture_message|posture_tls_status|tlsrpt_store_session|posture_write|status_http_request|status_queues_worker) /) {
		f = substr($0, RSTART + 1, RLENGTH - 2)
		v = $1; gsub(",", "", v); sum[f] += v }
	    END { for (f in sum) printf "  %-22s %8.0f\n", f, sum[f] / n }' |
	    sort
}

ratio4() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", b ? a / b : 0 }'; }

# The median of the rounds' own on/off ratios: the two halves of a round
# run back to back, so a disturbance that lasts longer than a round moves
# both, where the ratio of the two medians can pair a quiet "on" round
# with a disturbed "off" one.
paired() { # "on values" "off values", in round order
	awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, " "); split(b, y, " ")
	    for (i = 1; i <= n; i++) if (y[i] > 0) printf "%.4f\n", x[i] / y[i] }' |
	    median
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 }
    END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2];
          else printf "%.1f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "status listener and TLS posture: on against off, $MESSAGES messages" \
    "of $SIZE bytes, $SESSIONS sessions, $RUNS alternating rounds (median)," \
    "scrape every ${SCRAPE}s, $(nproc) cores"
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "sluiced $(git describe --always --dirty 2>/dev/null || echo '?')"

start_sink on "$SINK_on"
start_sink off "$SINK_off"
HTTPS=()
case " $KINDS " in *" accept "*)
	start_sluiced on accept "$PA_on" "$SINK_on" "$HTTPA"
	start_sluiced off accept "$PA_off" "$SINK_off"
	HTTPS+=("$HTTPA") ;;
esac
case " $KINDS " in *" relay "*)
	start_sluiced on relay "$PR_on" "$SINK_on" "$HTTPR"
	start_sluiced off relay "$PR_off" "$SINK_off"
	HTTPS+=("$HTTPR") ;;
esac
[ ${#HTTPS[@]} -gt 0 ] || die "KINDS names neither accept nor relay"
for h in "${HTTPS[@]}"; do
	curl -fs "http://127.0.0.1:$h/metrics" >/dev/null ||
	    die "an on daemon does not serve /metrics"
done
(i=0; while :; do
	for h in "${HTTPS[@]}"; do
		curl -fs "http://127.0.0.1:$h/metrics" >/dev/null
		# the page, as someone who keeps it open: every tenth scrape
		[ $((i % 10)) = 0 ] && curl -fs "http://127.0.0.1:$h/" >/dev/null
	done
	i=$((i + 1))
	sleep "$SCRAPE"
done) &
SCRAPER=$!

if [ "$WARMUP" -gt 0 ]; then
	SAVE=$MESSAGES
	MESSAGES=$WARMUP
	for m in on off; do
		for kind in $KINDS; do
			run "$m" "$kind" || FAILED=1
		done
	done
	MESSAGES=$SAVE
fi

if [ "$PERF" = 1 ]; then
	for kind in $KINDS; do
		for m in on off; do
			p=PID_${m}_$kind
			perf record -q -g -o "$WORK/perf-${m}_$kind.data" \
			    -p "${!p}" >/dev/null 2>&1 &
			PERFPIDS+=($!)
		done
	done
fi

declare -A ROUNDS=([on_accept]='' [off_accept]='' [on_relay]='' [off_relay]='')
declare -A CPUS=([on_accept]='' [off_accept]='' [on_relay]='' [off_relay]='')
declare -A INSTRS=([on_accept]='' [off_accept]='' [on_relay]='' [off_relay]='')
declare -A COST=()
declare -A DUMPS=([on_accept]='' [off_accept]='' [on_relay]='' [off_relay]='')
for ((r = 1; r <= RUNS; r++)); do
	order="on off"
	[ $((r % 2)) = 0 ] && order="off on"
	for kind in $KINDS; do
		for m in $order; do
			run "$m" "$kind" || FAILED=1
			ROUNDS[${m}_$kind]+=" $RESULT"
			CPUS[${m}_$kind]+=" $CPU"
			INSTRS[${m}_$kind]+=" $INSTR"
			DUMPS[${m}_$kind]+=" $DUMP"
			echo "  round $r $kind $m: $RESULT msgs/s, $CPU us CPU" \
			    "per message${DUMP:+, $INSTR instructions per message}"
		done
	done
done

REPORT=$BUILD/bench-status.txt
{
	printf '%-8s %10s %10s %7s %7s %12s %12s %7s %7s\n' "" "on msg/s" \
	    "off msg/s" "on/off" "paired" "on us/msg" "off us/msg" "on/off" \
	    "paired"
	for kind in $KINDS; do
		on=$(echo "${ROUNDS[on_$kind]}" | median)
		off=$(echo "${ROUNDS[off_$kind]}" | median)
		con=$(echo "${CPUS[on_$kind]}" | median)
		coff=$(echo "${CPUS[off_$kind]}" | median)
		printf '%-8s %10s %10s %7s %7s %12s %12s %7s %7s\n' "$kind" \
		    "$on" "$off" "$(ratio "$on" "$off")" \
		    "$(paired "${ROUNDS[on_$kind]}" "${ROUNDS[off_$kind]}")" \
		    "$con" "$coff" "$(ratio "$con" "$coff")" \
		    "$(paired "${CPUS[on_$kind]}" "${CPUS[off_$kind]}")"
	done
	echo "(paired: the median of each round's own on/off ratio)"
	# what the on daemons' queue readings cost (status_queues.c): the
	# acceptance daemon's suspended queue grows through the run
	for kind in $KINDS; do
		h=$HTTPA
		[ "$kind" = relay ] && h=$HTTPR
		curl -fs "http://127.0.0.1:$h/metrics" | awk -v k="$kind" '
		    $1 == "sluice_queue_readings_total" { n = $2 }
		    $1 == "sluice_queue_reading_cpu_seconds" { c = $2 }
		    /^sluice_queue_messages\{/ { d += $2 }
		    END { printf "on %s: %d queue readings, the last %.3f s" \
		        " of CPU at %d waiting messages\n", k, n, c, d }'
	done
	[ "$CALLGRIND" = 1 ] || exit 0
	printf '\ninstructions per message (callgrind)\n'
	# "on - listener": without the listener's requests and its queue
	# reading, which come every SCRAPE (and STATUS_QUEUES_SECONDS)
	# seconds of a run slowed down by callgrind, so that they weigh 20 to
	# 50 times more per message than at full speed
	printf '%-8s %12s %12s %7s %14s %7s\n' "" "on" "off" "on/off" \
	    "on - listener" "on/off"
	for kind in $KINDS; do
		on=$(echo "${INSTRS[on_$kind]}" | median)
		off=$(echo "${INSTRS[off_$kind]}" | median)
		# shellcheck disable=SC2086 # a list of file names
		COST[$kind]=$(watch_cost ${DUMPS[on_$kind]})
		http=$(echo "${COST[$kind]}" | awk '$1 == "status_http_request" ||
		    $1 == "status_queues_worker" { t += $2 } END { print t + 0 }')
		printf '%-8s %12s %12s %7s %14s %7s\n' "$kind" "$on" "$off" \
		    "$(ratio4 "$on" "$off")" "$((on - ${http:-0}))" \
		    "$(ratio4 "$((on - ${http:-0}))" "$off")"
	done
	for kind in $KINDS; do
		echo "on $kind: the watching's functions, instructions per" \
		    "message (all rounds, with what they call)"
		echo "${COST[$kind]}"
	done
} | tee "$REPORT"
# What the on daemon counted, as a check that it counted at all.
case " $KINDS " in *" relay "*)
	curl -fs "http://127.0.0.1:$HTTPR/metrics" |
	    grep -E '^sluice_messages_(received|delivered)_total' |
	    sed 's/^/  /'
	"$SLUICECTL" -c "$WORK/on_relay.conf" get-tlsposture Sink |
	    grep -E 'Sessions24h|TlsVersions24h' | sed 's/^/  /' ;;
esac
[ "$FAILED" = 0 ] || die "a run failed (see above)"
