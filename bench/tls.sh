#!/bin/bash
# tls.sh - inbound TLS figures of sluiced against Postfix, side by side.
#
# Both servers use the same ECDSA P-256 certificate from the test PKI, the
# same TLS 1.3 defaults of Debian's OpenSSL, and hold the mail they accept
# (see acceptance.sh).  Measured in one run:
#   1. full STARTTLS handshakes per second (connect, EHLO, STARTTLS, a full
#      handshake without resumption, EHLO, QUIT), 20 clients in parallel;
#   2. messages per second accepted over TLS (20 TLS sessions reused);
#   3. memory per idle TLS session: IDLE sessions (default 2000) are opened
#      to sluiced and held after EHLO inside TLS; the growth of sluiced's
#      proportional set size (PSS), divided by the sessions.  Postfix needs
#      a process per session; it is measured with POSTFIX_IDLE sessions
#      (default 150, its process limit here is 200) as the growth of the
#      PSS summed over all processes of its instance.
#
#   bench/tls.sh     or     IDLE=2000 HANDSHAKES=3000 bench/tls.sh
set -euo pipefail
cd "$(dirname "$0")/.."

HANDSHAKES=${HANDSHAKES:-3000}
MESSAGES=${MESSAGES:-5000}
IDLE=${IDLE:-2000}
POSTFIX_IDLE=${POSTFIX_IDLE:-150}
WORK=$(mktemp -d /tmp/sluice-tlsbench.XXXXXX)
chmod 755 "$WORK"
SLUICE_PORT=$((20000 + RANDOM % 10000))
POSTFIX_PORT=$((SLUICE_PORT + 1))
SLUICED_PID=

cleanup() {
	[ -n "$SLUICED_PID" ] && kill "$SLUICED_PID" 2>/dev/null && wait "$SLUICED_PID" 2>/dev/null
	bench/postfix-instance.sh stop "$WORK/postfix" || true
	rm -rf "$WORK"
}
trap cleanup EXIT

make -s all
# The load tool is bench/smtpload.c built with STARTTLS (-S): -Q for bare
# handshakes, -i for idle sessions held inside TLS.
SMTPLOAD=build/smtpload-tls
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -DSL_TLS -o "$SMTPLOAD" \
    bench/smtpload.c -lssl -lcrypto
tests/pki/make-pki.sh "$WORK/pki"

cat >"$WORK/sluice.conf" <<CONF
[Transport]
QueueDirectory = $WORK/sluice/queue
LogDirectory = $WORK/sluice/log
ControlSocket = $WORK/sluice/ctl.sock
[Certificate mx]
CertificateFile = $WORK/pki/ecdsa.pem
KeyFile = $WORK/pki/ecdsa.key
[AcceptedDomain example.com]
DomainType = InternalRelay
; a suspended queue keeps the mail, as Postfix's HOLD does (below)
[SendConnector Hold]
AddressSpaces = example.com
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:9
[ReceiveConnector bench]
Bindings = 127.0.0.1:$SLUICE_PORT
TlsCertificateName = mx
TarpitInterval = 0s
MaxInboundConnection = 100000
MaxInboundConnectionPerSource = 100000
CONF
build/sluiced -f -c "$WORK/sluice.conf" 2>"$WORK/sluiced.log" &
SLUICED_PID=$!
HOLD=1 POSTFIX_EXTRA="smtpd_tls_security_level = may
smtpd_tls_cert_file = $WORK/pki/ecdsa.pem
smtpd_tls_key_file = $WORK/pki/ecdsa.key" \
	bench/postfix-instance.sh start "$WORK/postfix" "$POSTFIX_PORT" example.com
for _ in $(seq 50); do
	ss -ltn | grep -q "127.0.0.1:$SLUICE_PORT " && break
	sleep 0.1
done
build/sluicectl -c "$WORK/sluice.conf" suspend Hold >/dev/null

rate() { awk '$1 == "msgs/s:" { printf "%d", $2 }'; }
best() { # best rate of two runs: args to smtpload
	local a b
	a=$("$SMTPLOAD" "$@" | rate)
	b=$("$SMTPLOAD" "$@" | rate)
	echo $((a > b ? a : b))
}
pss_of() { # summed PSS (kB) of the given pids
	local s=0 v
	for p in "$@"; do
		v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || true)
		s=$((s + ${v:-0}))
	done
	echo "$s"
}
postfix_pids() { pgrep -f -- "smtpd -n 127.0.0.1:$POSTFIX_PORT" || true; }
idle_growth() { # port sessions pid-command: PSS growth in bytes per session
	local port=$1 n=$2 pids=$3 before after out
	# shellcheck disable=SC2046 # one word per process id
	before=$(pss_of $($pids))
	rm -f "$WORK/idle.out"
	"$SMTPLOAD" -S -i "$n" "127.0.0.1:$port" >"$WORK/idle.out" &
	local load=$!
	for _ in $(seq 300); do
		grep -q ready "$WORK/idle.out" 2>/dev/null && break
		kill -0 "$load" 2>/dev/null || break
		sleep 0.1
	done
	out=$(cat "$WORK/idle.out")
	# shellcheck disable=SC2046
	after=$(pss_of $($pids))
	kill -TERM "$load" 2>/dev/null || true
	wait "$load" || true
	[ "$out" = "ready $n" ] || { echo "only \"$out\" of $n idle sessions" >&2; exit 1; }
	echo $(((after - before) * 1024 / n))
}

echo "sluice TLS benchmark: $(nproc) cores, ECDSA P-256 certificate"
"$SMTPLOAD" -S -Q -c 20 -m 200 "127.0.0.1:$SLUICE_PORT" >/dev/null # warm-up
"$SMTPLOAD" -S -Q -c 20 -m 200 "127.0.0.1:$POSTFIX_PORT" >/dev/null
SH=$(best -S -Q -c 20 -m "$HANDSHAKES" "127.0.0.1:$SLUICE_PORT")
PH=$(best -S -Q -c 20 -m "$HANDSHAKES" "127.0.0.1:$POSTFIX_PORT")
SM=$(best -S -c 20 -m "$MESSAGES" "127.0.0.1:$SLUICE_PORT")
PM=$(best -S -c 20 -m "$MESSAGES" "127.0.0.1:$POSTFIX_PORT")
# Postfix keeps idle smtpd processes around; start its idle test clean.
bench/postfix-instance.sh stop "$WORK/postfix"
HOLD=1 POSTFIX_EXTRA="smtpd_tls_security_level = may
smtpd_tls_cert_file = $WORK/pki/ecdsa.pem
smtpd_tls_key_file = $WORK/pki/ecdsa.key" \
	bench/postfix-instance.sh start "$WORK/postfix" "$POSTFIX_PORT" example.com
SI=$(idle_growth "$SLUICE_PORT" "$IDLE" "echo $SLUICED_PID")
PI=$(idle_growth "$POSTFIX_PORT" "$POSTFIX_IDLE" postfix_pids)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf "\n%-46s %10s %10s %7s\n" "measure" "sluiced" "postfix" "ratio"
printf "%-46s %10s %10s %7s\n" "full STARTTLS handshakes per second" "$SH" "$PH" "$(ratio "$SH" "$PH")"
printf "%-46s %10s %10s %7s\n" "messages per second over TLS" "$SM" "$PM" "$(ratio "$SM" "$PM")"
printf "%-46s %10s %10s\n" "bytes per idle TLS session (PSS growth)" "$SI" "$PI"
printf "%-46s %10s %10s\n" "idle TLS sessions measured" "$IDLE" "$POSTFIX_IDLE"
