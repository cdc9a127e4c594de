#!/bin/bash
# domains.sh - mail to many domains against the same mail to one domain
# (issue 19), for sluiced and for Postfix side by side, in one run.
#
# MESSAGES messages of SIZE bytes go in over SESSIONS sessions
# (bench/smtpload), either all to one domain or each to another of DOMAINS
# domains (smtpload -D: the Kth message to b@dK.DOMAIN), and a run is
# timed from the first message sent until that server's counting sink
# (smtp-sink) has them all: messages per second end to end.  Both servers
# find the next hop by MX in the same private unbound (tests/it/peers/
# unbound.py) on port 53 of a free 127.x.y.z address:
#   - sluiced: [Transport] Resolver = 127.x.y.z@53, one DNS-routed send
#     connector for "*" with Port = the sink's port;
#   - Postfix (a private instance, tests/it/peers/postfix.py): MX look-ups
#     with smtp_host_lookup = native and a resolv.conf naming that server,
#     bind-mounted over /etc/resolv.conf in a mount namespace of its own
#     (unshare -m; needs root), smtp_tcp_port = its sink's port.
# Every domain of a round is new (dK.rN-many.bench.test, rN-one.bench.test;
# under RFC 6761 "test.", which sluiced's DNSSEC validation takes as
# insecure with a named server): the zone answers every name under it with
# "MX 10 mx.sink.bench.test" (an unbound "redirect" zone), and
# mx.sink.bench.test is 127.0.0.2, where both sinks
# listen (Postfix refuses an MX on its own listening address, 127.0.0.1).
# So no round reuses what an earlier one looked up, and both servers ask
# the same server the same number of questions.
#
# MX=shared (the default) is that: every domain's MX is one host, as mail
# to thousands of domains hosted by one provider is, and a server that
# reuses a connection by the MX host and address (Postfix's smtp_reuse_addr,
# sluiced since the sixth pass) needs few connections.  MX=distinct gives
# every domain of the many-domain runs an MX name of its own
# (mxK.rN-many.bench.test) with an address of its own (127.1.x.y, K's),
# so that no connection can serve two domains: the cost of a new
# destination in full.  The sinks then listen on 0.0.0.0:PORT (the whole
# of 127/8 is local), and Postfix, listening on 127.0.0.1 only, does not
# take 127.1.x.y for itself.  The one-domain runs are the same in both.
#
# Rounds alternate the order of the four runs (sluiced one, sluiced many,
# Postfix one, Postfix many; reversed every other round) so that a
# disturbance does not always hit the same run.  Every round is printed;
# the best round of each run counts, and the ratios are many/one for each
# server and sluiced/Postfix for each shape.  sluiced's rounds also print
# the CPU time sluiced (all its threads) and its sink used in the round
# (/proc/PID/stat): on a shared machine the wall clock moves with other
# load, CPU seconds much less.  Afterwards every sink count
# must be exact, sluiced's queue must hold no recipient not delivered and
# its tracking log no DEFER, and Postfix's queue must be empty.
#
#   MESSAGES=5000 DOMAINS=5000 SESSIONS=20 SIZE=2048 RUNS=3 WARMUP=500 \
#       bench/domains.sh
#   MX=distinct bench/domains.sh      # an MX host and address per domain
#   PERF=1 RUNS=1 bench/domains.sh   # profiles the machine in sluiced's
#                                    # rounds: $WORK/perf-rN-SHAPE.data
#   POSTFIX=0 RUNS=10 bench/domains.sh  # sluiced's rounds only: for A/B of
#                                    # two builds of sluiced, not a result
#                                    # (the Postfix rounds load the machine)
# Writes $BUILD/bench-domains.txt.  Exits non-zero on loss, a deferral, a
# timeout or a failing tool; everything it started is stopped on exit.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
ME=domains.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

MESSAGES=${MESSAGES:-5000}
DOMAINS=${DOMAINS:-5000}
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-2048}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-500}
TIMEOUT=${TIMEOUT:-300}
MX=${MX:-shared} # shared: one MX host for every domain; distinct: one each
PERF=${PERF:-0} # 1: perf record -a -g over each sluiced round (implies KEEP=1)
POSTFIX=${POSTFIX:-1} # 0: no Postfix rounds (A/B of sluiced builds only)
[ "$PERF" = 1 ] && KEEP=1
BUILD=${BENCH_BUILD:-build}
PY=/usr/bin/python3
PEER=("$PY" "$ROOT/tests/it/peers/postfix.py")
SENDER=a@example.org
MX_ADDR=127.0.0.2
START_WAIT=100

WORK='' SLUICED_PID='' CHILD='' PF_DIR='' DNS_PID='' FAILED=0
SINK_PIDS=()

cleanup() {
	stop_pid "$CHILD" 10
	stop_pid "$SLUICED_PID" 150
	stop_postfix
	for p in "${SINK_PIDS[@]}"; do stop_pid "$p"; done
	stop_pid "$DNS_PID" 100
	remove_work
}
trap cleanup EXIT
trap 'exit 130' INT TERM

case $MX in shared | distinct) ;; *) die "MX=$MX: shared or distinct" ;; esac
[ "$(id -u)" = 0 ] || die "needs root (port 53 on loopback, a mount namespace)"
SMTP_SINK=
for s in /usr/sbin/smtp-sink /usr/lib/postfix/sbin/smtp-sink; do
	[ -x "$s" ] && SMTP_SINK=$s && break
done
SMTP_SOURCE=
for s in /usr/bin/smtp-source /usr/sbin/smtp-source; do
	[ -x "$s" ] && SMTP_SOURCE=$s && break
done
[ -n "$SMTP_SINK" ] || die "smtp-sink is missing (make deps: postfix)"
for tool in "$PY" /usr/sbin/postfix /usr/sbin/unbound sqlite3 ss unshare; do
	command -v "$tool" >/dev/null || die "$tool is missing (make deps)"
done
make -s BUILD="$BUILD" all || die "make BUILD=$BUILD all failed"
SLUICED=$ROOT/$BUILD/sluiced
SLUICECTL=$ROOT/$BUILD/sluicectl

WORK=$(mktemp -d /tmp/sluice-domains.XXXXXX) || die "mktemp failed"
chmod 755 "$WORK"
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wshadow \
    -Wpointer-arith -Wcast-qual -Wstrict-prototypes -Wmissing-prototypes \
    -o "$WORK/smtpload" bench/smtpload.c || die "bench/smtpload.c does not build"

read -r SPORT PPORT SINK_S SINK_P SINK_C < <("$PY" - <<'PYEOF'
import socket
socks = []
for _ in range(5):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(*(s.getsockname()[1] for s in socks))
PYEOF
)

# --- DNS: one unbound on 127.x.y.z:53 for both servers -----------------------

LABELS="warm"
for ((r = 1; r <= RUNS; r++)); do LABELS+=" r$r"; done
"$PY" - "$WORK/dns.env" "$MX_ADDR" "$MX" "$DOMAINS" $LABELS \
    >"$WORK/dns.log" 2>&1 <<'PYEOF' &
import random, signal, socket, sys, time
sys.path.insert(0, "tests/it")
import peers.unbound as ub

env, mx, mode, domains = sys.argv[1:5]
labels = sys.argv[5:]

def free_address():
    """A 127.x.y.z whose port 53 is free (a resolv.conf names no port)."""
    for _ in range(50):
        host = (f"127.{random.randrange(54, 250)}."
                f"{random.randrange(1, 250)}.{random.randrange(1, 250)}")
        try:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind((host, 53))
        except OSError:
            continue
        return host
    raise SystemExit("no free 127.x.y.z:53")

def distinct(zone):
    """MX=distinct: dK.zone has mxK.zone, at 127.1.x.y of its own."""
    out = f'  local-zone: "{zone}." static\n'
    for k in range(int(domains)):
        out += (f'  local-data: "d{k}.{zone}. 3600 IN MX 10 mx{k}.{zone}."\n'
                f'  local-data: "mx{k}.{zone}. 3600 IN A '
                f'127.1.{k // 250}.{k % 250 + 1}"\n')
    return out

class Port53(ub.Unbound):
    """The tests' unbound on port 53, with a redirect zone per domain set:
    every name under it has the zone's MX (with MX=distinct, the many-domain
    zones have a record per domain instead).  No query log: it would cost
    the server time in the middle of the measurement."""
    zones_mx = []

    def _config(self):
        extra = "".join(distinct(z) if mode == "distinct" and
                        z.endswith("-many.bench.test") else
                        f'  local-zone: "{z}." redirect\n'
                        f'  local-data: "{z}. 3600 IN MX 10 mx.sink.bench.test."\n'
                        for z in self.zones_mx)
        text = super()._config().replace("  log-queries: yes\n", "")
        return text.replace("remote-control:", extra + "remote-control:", 1)

ub._free_udp_tcp_port = lambda host: 53
dns = Port53(zones=["sink.bench.test"],
             records=[f"mx.sink.bench.test. A {mx}"],
             host=free_address())
dns.zones_mx = [f"{l}-{k}.bench.test" for l in labels
                for k in ("one", "many")]
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
with dns:
    with open(f"{dns.dir}/resolv.conf", "w") as f:
        f.write(f"nameserver {dns.host}\n")
    with open(env, "w") as f:
        f.write(f"DNS_HOST={dns.host}\nRESOLV_CONF={dns.dir}/resolv.conf\n")
    while not stop:
        time.sleep(0.2)
PYEOF
DNS_PID=$!
for ((i = 0; i < 300; i++)); do
	[ -s "$WORK/dns.env" ] && break
	alive "$DNS_PID" || break
	sleep 0.1
done
[ -s "$WORK/dns.env" ] || { cat "$WORK/dns.log" >&2; die "unbound did not start"; }
# shellcheck disable=SC1091
. "$WORK/dns.env"
chmod 644 "$RESOLV_CONF"
chmod 755 "$(dirname "$RESOLV_CONF")"

# --- sinks -----------------------------------------------------------------------

declare -A SINK_OUT
# -m: smtp-sink greets 256 sessions at once by default and leaves the rest
# in its listen queue; the 5,000 destinations stand for 5,000 servers, and
# sluiced may hold MaxOutboundConnections (1000) open, parked ones included.
start_sink() { # name port
	local args=(-c -m 4000) addr=$MX_ADDR
	[ "$(id -u)" = 0 ] && args+=(-u nobody) # smtp-sink drops root
	# every domain's own 127.1.x.y (MX=distinct; not the ceiling's)
	[ "$MX" = distinct ] && [ "$1" != ceiling ] && addr=0.0.0.0
	"$SMTP_SINK" "${args[@]}" "$addr:$2" 1024 >"$WORK/sink-$1.out" \
	    2>&1 </dev/null &
	SINK_PIDS+=($!)
	SINK_OUT[$1]=$WORK/sink-$1.out
	wait_listen "$2" || die "sink $1 did not start"
}
sink_field() { # name field
	local c
	c=$(tail -c 512 "${SINK_OUT[$1]}" | tr '\r' '\n' |
	    grep -o "\\b$2=[0-9]*" | tail -1)
	echo "${c#"$2"=}" | awk '{ print $1 + 0 }'
}
start_sink sluiced "$SINK_S"
start_sink postfix "$SINK_P"
start_sink ceiling "$SINK_C"

# --- servers ------------------------------------------------------------------------

cat >"$WORK/sluice.conf" <<CONF
[Transport]
QueueDirectory = $WORK/sluice/queue
LogDirectory = $WORK/sluice/log
ControlSocket = $WORK/sluice/ctl.sock
Resolver = $DNS_HOST@53

[AcceptedDomain localhost]
DomainType = Authoritative

[ReceiveConnector Relay]
Bindings = 127.0.0.1:$SPORT
RemoteIPRanges = 127.0.0.0/8
AuthMechanism = ExternalAuthoritative
PermissionGroups = ExchangeServers
Fqdn = sluice.bench
TarpitInterval = 0s
MaxInboundConnectionPerSource = 1000

[SendConnector Internet]
AddressSpaces = *
Port = $SINK_S
Fqdn = sluice.bench
CONF
mkdir -p "$WORK/sluice"
"$SLUICECTL" -c "$WORK/sluice.conf" config check >/dev/null ||
    die "the sluiced configuration is refused"
"$SLUICED" -f -c "$WORK/sluice.conf" 2>>"$WORK/sluiced.log" &
SLUICED_PID=$!
wait_listen "$SPORT" || { tail -5 "$WORK/sluiced.log" >&2; die "sluiced did not start"; }

PF_DIR=$WORK/postfix
mkdir -p "$PF_DIR"
[ "$POSTFIX" = 0 ] || "${PEER[@]}" start --dir "$PF_DIR" --port "$PPORT" \
    --mynetworks 127.0.0.0/8 --process-limit 100 --resolv-conf "$RESOLV_CONF" \
    -o default_transport=smtp -o disable_dns_lookups=no \
    -o smtp_dns_support_level=enabled -o smtp_host_lookup=native \
    -o smtp_tcp_port="$SINK_P" ||
    die "postfix did not start"

# --- runs ------------------------------------------------------------------------------

# cpu_ticks pid: the process's user and system time so far, all threads,
# in clock ticks (utime + stime of /proc/PID/stat; 0 once it is gone)
cpu_ticks() {
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null ||
	    echo 0
}
HZ=$(getconf CLK_TCK)
# idle_share: the machine's idle and total clock ticks so far (/proc/stat)
idle_share() {
	awk '$1 == "cpu" { t = 0; for (k = 2; k <= NF; k++) t += $k
	    print $5 + $6, t; exit }' /proc/stat
}
# the DNS server itself (DNS_PID is the Python process that runs it)
UNBOUND_PID=$(pgrep -P "$DNS_PID" -x unbound | head -1)
UNBOUND_PID=${UNBOUND_PID:-$DNS_PID}

# relay_run server label shape n: sets RATE (msgs/s end to end) and, for
# sluiced, CPU (its CPU seconds, and its sink's, in the run) or fails
relay_run() {
	local port=$SPORT sink=sluiced base c t0 t1 deadline to spread=()
	if [ "$1" = postfix ]; then
		port=$PPORT
		sink=postfix
	fi
	if [ "$3" = many ]; then
		to=b@$2-many.bench.test
		spread=(-D "$DOMAINS")
	else
		to=b@$2-one.bench.test
	fi
	base=$(sink_field "$sink" mesg)
	RATE=0
	CPU=
	local c0=0 k0=0 u0=0 i0=0 l0=0
	if [ "$1" = sluiced ]; then
		c0=$(cpu_ticks "$SLUICED_PID")
		k0=$(cpu_ticks "${SINK_PIDS[0]}")
		u0=$(cpu_ticks "$UNBOUND_PID")
		l0=$(cpu_ticks "$SLUICED_PID/task/$SLUICED_PID")
		i0=$(idle_share)
	fi
	local perf=''
	if [ "$PERF" = 1 ] && [ "$1" = sluiced ]; then
		# the whole machine: sluiced, its sink, smtpload and unbound
		# share the two cores, and the sink's share is the question
		perf record -q -a -g -o "$WORK/perf-$2-$3.data" >/dev/null \
		    2>&1 &
		perf=$!
		sleep 0.5
	fi
	t0=$EPOCHREALTIME
	"$WORK/smtpload" -c "$SESSIONS" -m "$4" -s "$SIZE" -f "$SENDER" \
	    -t "$to" "${spread[@]}" "127.0.0.1:$port" >"$WORK/load.out" \
	    2>"$WORK/load.err" &
	CHILD=$!
	deadline=$((${t0%.*} + TIMEOUT))
	# one light waiter, not a shell loop of forks (bench/sinkwait.py)
	if ! t1=$("$PY" "$ROOT/bench/sinkwait.py" "${SINK_OUT[$sink]}" \
	    "$((base + $4))" "$deadline"); then
		echo "TIMEOUT: $1 to $3 domain(s): the sink has" \
		    "$((t1 - base)) of $4" >&2
		wait "$CHILD"
		CHILD=
		return 1
	fi
	if [ -n "$perf" ]; then
		kill -INT "$perf" 2>/dev/null
		wait "$perf" 2>/dev/null
	fi
	if [ "$1" = sluiced ]; then
		CPU=$(awk -v a="$c0" -v b="$(cpu_ticks "$SLUICED_PID")" \
		    -v c="$k0" -v d="$(cpu_ticks "${SINK_PIDS[0]}")" \
		    -v e="$u0" -v f="$(cpu_ticks "$UNBOUND_PID")" \
		    -v g="$l0" -v h="$(cpu_ticks "$SLUICED_PID/task/$SLUICED_PID")" \
		    -v i="$i0" -v j="$(idle_share)" -v hz="$HZ" 'BEGIN {
		    split(i, x); split(j, y)
		    printf ", cpu sluiced %.2f s (loop %.2f), sink %.2f s," \
		        " dns %.2f s, machine idle %.0f%%", (b - a) / hz,
		        (h - g) / hz, (d - c) / hz, (f - e) / hz,
		        100 * (y[1] - x[1]) / (y[2] - x[2] + 1e-9) }')
	fi
	wait "$CHILD" || { tail -3 "$WORK/load.err" >&2; CHILD=; return 1; }
	CHILD=
	sleep 0.3
	c=$(($(sink_field "$sink" mesg) - base))
	[ "$c" = "$4" ] || { echo "$1 to $3: sink counted $c of $4" >&2; return 1; }
	RATE=$(awk -v n="$4" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
	SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	# smtpload's acceptance latency (DATA's end to its reply), for sluiced
	# (an if, not &&: the function's status is the round's)
	if [ "$1" = sluiced ]; then
		CPU+=$(awk '/^p50_ms:/ { a = $2 } /^p99_ms:/ { b = $2 }
		    END { printf ", accepted in p50 %s ms, p99 %s ms", a, b }' \
		    "$WORK/load.out")
	fi
}

CONFIGS=("sluiced one" "sluiced many" "postfix one" "postfix many")
[ "$POSTFIX" = 0 ] && CONFIGS=("sluiced one" "sluiced many")
declare -A BEST=([postfix-one]=0 [postfix-many]=0) ROUNDS SECS_OF
declare -A SENT=([sluiced]=0 [postfix]=0)
echo "many domains benchmark: $MESSAGES messages of $SIZE bytes to 1 domain" \
    "or to $DOMAINS domains, $SESSIONS sessions, $RUNS round(s) (best" \
    "counts), $WARMUP warm-up, MX=$MX, $(nproc) cores"
echo "load before the run: $(uptime)"
echo "sluiced $(git describe --always --dirty 2>/dev/null || echo '?')," \
    "postfix $(/usr/sbin/postconf -h mail_version 2>/dev/null)"
for cfg in "${CONFIGS[@]}"; do
	read -r srv shape <<<"$cfg"
	BEST[$srv-$shape]=0
	ROUNDS[$srv-$shape]=''
	SENT[$srv]=${SENT[$srv]:-0}
	if [ "$WARMUP" -gt 0 ]; then
		relay_run "$srv" warm "$shape" "$WARMUP" || FAILED=1
		SENT[$srv]=$((SENT[$srv] + WARMUP))
	fi
done
for ((r = 1; r <= RUNS; r++)); do
	order=("${CONFIGS[@]}")
	if ((r % 2 == 0)); then
		order=()
		for ((i = ${#CONFIGS[@]} - 1; i >= 0; i--)); do
			order+=("${CONFIGS[i]}")
		done
	fi
	for cfg in "${order[@]}"; do
		read -r srv shape <<<"$cfg"
		SECS=-
		relay_run "$srv" "r$r" "$shape" "$MESSAGES" || FAILED=1
		SENT[$srv]=$((SENT[$srv] + MESSAGES))
		echo "  round $r $srv to $shape domain(s): $RATE msgs/s" \
		    "($SECS s${CPU:-}), load $(cut -d' ' -f1 /proc/loadavg)"
		ROUNDS[$srv-$shape]+=" $RATE"
		SECS_OF[$srv-$shape-$r]=$SECS
		[ "$RATE" -gt "${BEST[$srv-$shape]}" ] && BEST[$srv-$shape]=$RATE
	done
done

# --- the machine's own cost of a connection per message ----------------------------
#
# smtp-source against an smtp-sink of its own, nothing in between: the same
# messages with a new connection each (greeting, HELO, transaction, QUIT,
# close on both ends) and over SESSIONS reused ones (-d).  The difference
# is what 5,000 destinations cost this machine before any server does
# any work; added to sluiced's best one-domain time, it estimates the
# lowest many/one ratio this machine allows.
declare -A CEIL=([new]=0 [reuse]=0) # the best round of each
if [ -n "$SMTP_SOURCE" ]; then
	for ((r = 1; r <= RUNS; r++)); do
		for mode in new reuse; do
			args=(-s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" -f "$SENDER"
			    -t b@ceiling.bench.test)
			[ "$mode" = reuse ] && args=(-d "${args[@]}")
			base=$(sink_field ceiling mesg)
			t0=$EPOCHREALTIME
			"$SMTP_SOURCE" "${args[@]}" "$MX_ADDR:$SINK_C" \
			    >/dev/null 2>&1 || FAILED=1
			t1=$("$PY" "$ROOT/bench/sinkwait.py" \
			    "${SINK_OUT[ceiling]}" "$((base + MESSAGES))" \
			    "$((${t0%.*} + TIMEOUT))") || FAILED=1
			secs=$(awk -v a="$t0" -v b="$t1" \
			    'BEGIN { printf "%.3f", b - a }')
			echo "  round $r smtp-source to smtp-sink, $mode" \
			    "connections: $secs s"
			CEIL[$mode]=$(awk -v a="${CEIL[$mode]}" -v b="$secs" \
			    'BEGIN { print (a == 0 || b < a) ? b : a }')
		done
	done
fi
CEIL_NEW=${CEIL[new]} CEIL_REUSE=${CEIL[reuse]}

# --- proof: everything delivered, nothing deferred ------------------------------------

sleep 1
S_LEFT=$(sqlite3 "$WORK/sluice/queue/queue.db" \
    'select count(*) from recipients where status <> 1' 2>/dev/null || echo '?')
S_DEFER=$(cat "$WORK"/sluice/log/MessageTracking/*.LOG 2>/dev/null |
    grep -c ',DEFER,')
P_LEFT=0
[ "$POSTFIX" = 0 ] ||
    P_LEFT=$("${PEER[@]}" count --dir "$PF_DIR" 2>/dev/null || echo '?')
{
	echo
	printf "%-28s %10s   %s\n" "run" "best msgs/s" "every round"
	for cfg in "${CONFIGS[@]}"; do
		read -r srv shape <<<"$cfg"
		printf "%-28s %10s  %s\n" "$srv, $shape domain(s)" \
		    "${BEST[$srv-$shape]}" "${ROUNDS[$srv-$shape]}"
	done
	echo
	echo "time many/one, MX=$MX (best rounds; the target is at most 1.5):" \
	    "sluiced $(ratio "${BEST[sluiced-one]}" "${BEST[sluiced-many]}")," \
	    "postfix $(ratio "${BEST[postfix-one]}" "${BEST[postfix-many]}")"
	# each round's many/one from the same round's two runs, which ran
	# back to back: the pairing the best rounds above do not keep
	for srv in sluiced postfix; do
		[ "$srv" = postfix ] && [ "$POSTFIX" = 0 ] && continue
		pairs=''
		for ((r = 1; r <= RUNS; r++)); do
			pairs+=" ${SECS_OF[$srv-one-$r]:--} ${SECS_OF[$srv-many-$r]:--}"
		done
		echo "$pairs" | awk -v s="$srv" '{
		    n = 0; line = ""
		    for (k = 1; k < NF; k += 2)
		        if ($k + 0 > 0 && $(k + 1) + 0 > 0) {
		            x[++n] = $(k + 1) / $k
		            line = line sprintf(" %.2f", x[n])
		        }
		    if (n == 0) exit
		    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
		        if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
		    m = n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2
		    printf "%s many/one round by round:%s; median %.2f\n", s, line, m }'
	done
	if [ "$CEIL_NEW" != 0 ] && [ "${BEST[sluiced-one]}" -gt 0 ]; then
		awk -v n="$CEIL_NEW" -v u="$CEIL_REUSE" -v m="$MESSAGES" \
		    -v r1="${BEST[sluiced-one]}" 'BEGIN {
		    one = m / r1; extra = n - u
		    printf "machine: smtp-source to smtp-sink, %.3f s with a " \
		        "connection per message, %.3f s reused (ratio %.2f): " \
		        "%.0f us per connection; sluiced one domain %.3f s + " \
		        "that = %.3f s, a many/one of %.2f with nothing else " \
		        "spent on a new destination that needs a connection of " \
		        "its own (MX=distinct; with MX=shared they share " \
		        "parked ones)\n", n, u, n / u,
		        extra / m * 1e6, one, one + extra, (one + extra) / one }'
	fi
	[ "$POSTFIX" = 0 ] || echo "rate sluiced/postfix: one domain" \
	    "$(ratio "${BEST[sluiced-one]}" "${BEST[postfix-one]}")," \
	    "many domains $(ratio "${BEST[sluiced-many]}" "${BEST[postfix-many]}")"
	echo
	for k in sluiced postfix; do
		echo "sink $k: $(sink_field "$k" mesg) messages" \
		    "(${SENT[$k]} sent), $(sink_field "$k" sess) connections"
	done
	echo "sluiced: $S_LEFT recipients not delivered, $S_DEFER DEFER rows;" \
	    "postfix: $P_LEFT messages left in its queue"
	echo "load after the run: $(uptime)"
} | tee "$ROOT/$BUILD/bench-domains.txt"

for k in sluiced postfix; do
	if [ "$(sink_field "$k" mesg)" != "${SENT[$k]}" ]; then
		echo "MISMATCH: sink $k" >&2
		FAILED=1
	fi
done
[ "$S_LEFT" = 0 ] || { echo "sluiced left $S_LEFT recipients" >&2; FAILED=1; }
[ "$S_DEFER" = 0 ] || { echo "sluiced deferred $S_DEFER times" >&2; FAILED=1; }
[ "$P_LEFT" = 0 ] || { echo "postfix left $P_LEFT messages" >&2; FAILED=1; }
[ "$FAILED" = 0 ] || die "the run had errors (figures above are not valid)"
