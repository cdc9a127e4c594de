#!/bin/bash
# dane.sh - what DANE costs on the relay path (issue 16): relay rate with
# DANE-verified TLS to the sink against opportunistic TLS, in one run, for
# sluiced and for Postfix at its "dane" level, and the two ratios.
#
# Four relays, each to its own counting TLS sink (bench/tlssink: STARTTLS
# with the test PKI's server.pem), interleaved round by round:
#   sluiced  opportunistic  send connector Opp, smart host s-opp.sluice.test
#                           (no TLSA record), SmtpDaneMode = None: TLS when
#                           offered, nothing checked
#   sluiced  DANE           send connector Dane, smart host s-dane.sluice.test,
#                           whose DNSSEC-signed TLSA record (3 1 1 of the
#                           sink's key) must match: tls=dane:verified
#   postfix  may            smtp_tls_security_level = may to p-opp.sluice.test
#   postfix  dane           smtp_tls_security_level = dane to p-dane.sluice.test
#                           (smtp_dns_support_level = dnssec)
# The names are in a zone signed at the start with ldns-signzone and served
# by a private unbound (tests/it/peers/unbound.py); sluiced validates with
# its key as DnssecTrustAnchorFile, Postfix through a validating unbound on
# 127.x.y.z:53 and a resolv.conf of its own (mount namespace).  Both reuse
# connections and resume TLS sessions as in relay.sh TLS=1 (Postfix:
# tlsproxy, smtp_tls_connection_reuse).  Inbound is plaintext: only the
# outbound hop differs between the pairs.
#
# A run sends MESSAGES messages of SIZE bytes over SESSIONS sessions
# (bench/smtpload) and is timed from the first message sent until that
# relay's sink counted them all; every sink count must be exact, every
# message inside TLS, and the DANE runs must show DANE on both sides
# (sluiced's tracking log: tls=dane:verified on every delivery; Postfix's
# log: "Verified TLS connection established" to the DANE sink).
#
#   MESSAGES=5000 SESSIONS=20 SIZE=2048 RUNS=3 WARMUP=500 bench/dane.sh
# Writes $BUILD/bench-dane.txt.  Exits non-zero on loss, a missing proof
# of DANE, or a timeout.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
ME=dane.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

MESSAGES=${MESSAGES:-5000}
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-2048}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-500}
TIMEOUT=${TIMEOUT:-180}
BUILD=${BENCH_BUILD:-build}
PY=/usr/bin/python3
PEER=("$PY" "$ROOT/tests/it/peers/postfix.py")
SENDER=a@example.org
START_WAIT=100
POLL=0.05

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

for tool in "$PY" /usr/sbin/postfix /usr/sbin/unbound /usr/bin/ldns-signzone \
    ss unshare; do
	command -v "$tool" >/dev/null || die "$tool is missing (make deps)"
done
make -s BUILD="$BUILD" all || die "make BUILD=$BUILD all failed"
SLUICED=$ROOT/$BUILD/sluiced
SLUICECTL=$ROOT/$BUILD/sluicectl

WORK=$(mktemp -d /tmp/sluice-dane.XXXXXX) || die "mktemp failed"
chmod 755 "$WORK"
PKI=$WORK/pki
CFLAGS_BENCH=(-std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wshadow
    -Wpointer-arith -Wcast-qual -Wstrict-prototypes -Wmissing-prototypes)
cc "${CFLAGS_BENCH[@]}" -DSL_TLS -o "$WORK/smtpload" bench/smtpload.c \
    -lssl -lcrypto || die "bench/smtpload.c does not build"
cc "${CFLAGS_BENCH[@]}" -o "$WORK/tlssink" bench/tlssink.c -lssl -lcrypto ||
    die "bench/tlssink.c does not build"
tests/pki/make-pki.sh "$PKI" >/dev/null || die "make-pki.sh failed"
chmod 755 "$PKI"

read -r SPORT PPORT S_OPP S_DANE P_OPP P_DANE < <("$PY" - <<'PYEOF'
import socket
socks = []
for _ in range(6):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(*(s.getsockname()[1] for s in socks))
PYEOF
)

# --- DNS: the signed zone, a validating resolver for Postfix ----------------

"$PY" - "$PKI" "$WORK/dns.env" "$S_OPP" "$S_DANE" "$P_OPP" "$P_DANE" \
    >"$WORK/dns.log" 2>&1 <<'PYEOF' &
import signal, sys, time
sys.path.insert(0, "tests/it")
from peers.unbound import Unbound, ValidatingUnbound, tlsa_rdata
pki, env, s_opp, s_dane, p_opp, p_dane = sys.argv[1:7]
t = tlsa_rdata(f"{pki}/server.pem")
records = [f"{n}.sluice.test. A 127.0.0.1"
           for n in ("s-opp", "s-dane", "p-opp", "p-dane")]
records += [f"_{s_dane}._tcp.s-dane.sluice.test. TLSA {t}",
            f"_{p_dane}._tcp.p-dane.sluice.test. TLSA {t}"]
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
with Unbound(signed={"sluice.test": records}) as auth, \
        ValidatingUnbound(auth) as vr:
    with open(env, "w") as f:
        f.write(f"RESOLVER={auth.spec}\nANCHOR={auth.anchor_path}\n"
                f"RESOLV_CONF={vr.resolv_conf_path}\n")
    while not stop:
        time.sleep(0.2)
PYEOF
DNS_PID=$!
for ((i = 0; i < 300; i++)); do
	[ -s "$WORK/dns.env" ] && break
	alive "$DNS_PID" || break
	sleep 0.1
done
[ -s "$WORK/dns.env" ] || { cat "$WORK/dns.log" >&2; die "the DNS servers did not start"; }
# shellcheck disable=SC1091
. "$WORK/dns.env"

# --- sinks -----------------------------------------------------------------------

declare -A SINK_OUT
start_sink() { # name port
	"$WORK/tlssink" -C "$PKI/server.pem" -K "$PKI/server.key" \
	    "127.0.0.1:$2" >"$WORK/sink-$1.out" 2>&1 </dev/null &
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
for s in s-opp:$S_OPP s-dane:$S_DANE p-opp:$P_OPP p-dane:$P_DANE; do
	start_sink "${s%%:*}" "${s#*:}"
done

# --- servers ------------------------------------------------------------------------

cat >"$WORK/sluice.conf" <<CONF
[Transport]
QueueDirectory = $WORK/sluice/queue
LogDirectory = $WORK/sluice/log
ControlSocket = $WORK/sluice/ctl.sock
Resolver = $RESOLVER
DnssecTrustAnchorFile = $ANCHOR
TrustedCAFile = $PKI/trusted.pem

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

[SendConnector Opp]
AddressSpaces = opp.bench
DNSRoutingEnabled = false
SmartHosts = s-opp.sluice.test:$S_OPP
SmtpDaneMode = None
Fqdn = sluice.bench

[SendConnector Dane]
AddressSpaces = dane.bench
DNSRoutingEnabled = false
SmartHosts = s-dane.sluice.test:$S_DANE
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
"${PEER[@]}" start --dir "$PF_DIR" --port "$PPORT" \
    --mynetworks 127.0.0.0/8 --process-limit 100 --resolv-conf "$RESOLV_CONF" \
    -o "transport_maps=inline:{ {opp.bench = smtp:[p-opp.sluice.test]:$P_OPP}, {dane.bench = smtp:[p-dane.sluice.test]:$P_DANE} }" \
    -o "smtp_tls_policy_maps=inline:{ {[p-opp.sluice.test]:$P_OPP = may}, {[p-dane.sluice.test]:$P_DANE = dane} }" \
    -o default_transport=smtp -o disable_dns_lookups=no \
    -o smtp_dns_support_level=dnssec -o smtp_tls_security_level=may \
    -o default_destination_concurrency_limit=20 \
    -o smtp_connection_cache_on_demand=yes \
    -o "smtp_tls_session_cache_database=btree:$PF_DIR/data/smtp_scache" \
    -o smtp_tls_connection_reuse=yes -o smtp_tls_loglevel=1 ||
    die "postfix did not start"
/usr/sbin/postconf -c "$PF_DIR/etc" -M \
    "tlsproxy/unix=tlsproxy unix - - n - 0 tlsproxy" ||
    die "postfix: adding tlsproxy failed"
# the reload must see the instance's resolv.conf too: same namespace trick
unshare -m sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' \
    "$RESOLV_CONF" /usr/sbin/postfix -c "$PF_DIR/etc" reload 2>/dev/null ||
    die "postfix reload failed"
sleep 1

# --- runs ------------------------------------------------------------------------------

# relay_run server domain sink n: sets RATE (msgs/s end to end) or fails
relay_run() {
	local port=$SPORT base c t0 t1 deadline
	[ "$1" = postfix ] && port=$PPORT
	base=$(sink_field "$3" mesg)
	RATE=0
	t0=$EPOCHREALTIME
	"$WORK/smtpload" -c "$SESSIONS" -m "$4" -s "$SIZE" -f "$SENDER" \
	    -t "b@$2" "127.0.0.1:$port" >"$WORK/load.out" 2>"$WORK/load.err" &
	CHILD=$!
	deadline=$((${t0%.*} + TIMEOUT))
	while :; do
		c=$(($(sink_field "$3" mesg) - base))
		[ "$c" -ge "$4" ] && break
		if [ "${EPOCHREALTIME%.*}" -ge "$deadline" ]; then
			echo "TIMEOUT: $1 to $2: the sink has $c of $4" >&2
			wait "$CHILD"
			CHILD=
			return 1
		fi
		sleep "$POLL"
	done
	t1=$EPOCHREALTIME
	wait "$CHILD" || { tail -3 "$WORK/load.err" >&2; CHILD=; return 1; }
	CHILD=
	sleep 0.3
	c=$(($(sink_field "$3" mesg) - base))
	[ "$c" = "$4" ] || { echo "$1 to $2: sink counted $c of $4" >&2; return 1; }
	RATE=$(awk -v n="$4" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
}

CONFIGS=("sluiced opp.bench s-opp" "sluiced dane.bench s-dane"
    "postfix opp.bench p-opp" "postfix dane.bench p-dane")
declare -A BEST SENT
echo "DANE relay benchmark: $MESSAGES messages of $SIZE bytes, $SESSIONS" \
    "sessions, $RUNS round(s) (best counts), $WARMUP warm-up, $(nproc) cores"
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "sluiced $(git describe --always --dirty 2>/dev/null || echo '?')," \
    "postfix $(/usr/sbin/postconf -h mail_version 2>/dev/null)"
for cfg in "${CONFIGS[@]}"; do
	read -r srv dom sink <<<"$cfg"
	BEST[$sink]=0
	SENT[$sink]=0
	if [ "$WARMUP" -gt 0 ]; then
		relay_run "$srv" "$dom" "$sink" "$WARMUP" || FAILED=1
		SENT[$sink]=$((SENT[$sink] + WARMUP))
	fi
done
for ((r = 1; r <= RUNS; r++)); do
	for cfg in "${CONFIGS[@]}"; do
		read -r srv dom sink <<<"$cfg"
		relay_run "$srv" "$dom" "$sink" "$MESSAGES" || FAILED=1
		SENT[$sink]=$((SENT[$sink] + MESSAGES))
		echo "  round $r $srv to $dom: $RATE msgs/s end to end"
		[ "$RATE" -gt "${BEST[$sink]}" ] && BEST[$sink]=$RATE
	done
done

# --- proof: TLS on every message, DANE on the DANE runs ---------------------------------

TRK=("$WORK"/sluice/log/MessageTracking/*.LOG)
S_DANE_ROWS=$(grep -h ',tls=dane:verified;' "${TRK[@]}" | grep -c 'b@dane.bench')
S_OPP_ROWS=$(grep -h ',tls=opportunistic:encrypted;' "${TRK[@]}" | grep -c 'b@opp.bench')
P_VERIFIED=$(grep -c "Verified TLS connection established to p-dane.sluice.test" \
    "$PF_DIR/maillog")
{
	echo
	printf "%-30s %12s\n" "relay (best round)" "msgs/s"
	printf "%-30s %12s\n" "sluiced, opportunistic TLS" "${BEST[s-opp]}"
	printf "%-30s %12s\n" "sluiced, DANE verified" "${BEST[s-dane]}"
	printf "%-30s %12s\n" "postfix, may" "${BEST[p-opp]}"
	printf "%-30s %12s\n" "postfix, dane" "${BEST[p-dane]}"
	echo
	echo "ratio DANE/opportunistic: sluiced $(ratio "${BEST[s-dane]}" "${BEST[s-opp]}")," \
	    "postfix $(ratio "${BEST[p-dane]}" "${BEST[p-opp]}")"
	echo "ratio sluiced/postfix: opportunistic $(ratio "${BEST[s-opp]}" "${BEST[p-opp]}")," \
	    "DANE $(ratio "${BEST[s-dane]}" "${BEST[p-dane]}")"
	echo
	for k in s-opp s-dane p-opp p-dane; do
		echo "sink $k: $(sink_field "$k" tlsmesg) of $(sink_field "$k" mesg)" \
		    "messages inside TLS (${SENT[$k]} sent); $(sink_field "$k" sess)" \
		    "connections, $(sink_field "$k" tls) TLS sessions," \
		    "$(sink_field "$k" resumed) resumed"
	done
	echo "sluiced tracking log: $S_DANE_ROWS deliveries tls=dane:verified," \
	    "$S_OPP_ROWS tls=opportunistic:encrypted"
	echo "postfix log: $P_VERIFIED 'Verified TLS connection established to" \
	    "p-dane.sluice.test'"
} | tee "$ROOT/$BUILD/bench-dane.txt"

for k in s-opp s-dane p-opp p-dane; do
	if [ "$(sink_field "$k" tlsmesg)" != "${SENT[$k]}" ] ||
	    [ "$(sink_field "$k" mesg)" != "${SENT[$k]}" ]; then
		echo "MISMATCH: sink $k" >&2
		FAILED=1
	fi
done
[ "$S_DANE_ROWS" = "${SENT[s-dane]}" ] || { echo "not every sluiced DANE delivery was dane:verified" >&2; FAILED=1; }
[ "$P_VERIFIED" -ge 1 ] || { echo "postfix never verified the DANE sink" >&2; FAILED=1; }
[ "$FAILED" = 0 ] || die "the run had errors (figures above are not valid)"
