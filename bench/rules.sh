#!/bin/bash
# rules.sh - what transport rules cost at acceptance: sluiced with 100
# rules against the same sluiced with none, in one run.
#
# Two sluiced processes ($BUILD/sluiced, the optimised `make` build), each
# with its own queue and port, configured as in acceptance.sh (example.com
# InternalRelay, routed to a suspended send connector: mail waits in
# queue.db; no TLS, protocol log off, no tarpit).  One of them also has
# 100 [TransportRule] sections, a mix an administrator could have:
#   - 30 Force TLS rules for partner domains (RecipientDomainIs),
#   - 15 keyword rules (SubjectContainsWords, phrases) setting a header,
#   - 10 subject pattern rules (SubjectMatchesPatterns) prepending a tag,
#   - 10 sender pattern rules (FromAddressMatchesPatterns),
#   - 10 header word rules (X-Mailer, HeaderContainsWords) with a Bcc,
#   - 5 Message-ID pattern rules that reject, 5 size rules, 5 IP rules,
#   - 7 rules whose subject pattern exception cancels them,
#   - 3 that match every message of the load: a header set on inbound
#     mail (so each message is rewritten with the execution history), a
#     FromScope/SentToScope rule prepending the subject, and an Audit rule
#     (an AGENTINFO row per message).
# 22 rules carry patterns (PCRE2, JIT), every rule is evaluated for every
# message.
#
# Rounds alternate between the two servers (the order flips each round)
# so that a disturbance of the shared machine hits both: smtpload (EHLO
# once per connection, connections reused) and smtp-source (a new
# connection per message).  The best round of each counts; the ratio
# rules/none is the figure (the target is within 5%).  On a shared
# machine rates swing from round to round, so the CPU time sluiced spends
# per accepted message (all threads, from /proc, over the smtpload rounds)
# is shown too: it does not depend on what else runs.  Then the queues
# must hold exactly what was acknowledged, and the rules' server must have
# rewritten its messages (the header of the matching rule is there).
#
#   bench/rules.sh
#   MESSAGES=10000 SESSIONS=20 SIZE=2048 RUNS=5 bench/rules.sh
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
ME=rules.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

MESSAGES=${MESSAGES:-10000} # per measured run
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-2048}
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-2000}
BUILD=${BENCH_BUILD:-build}
PY=/usr/bin/python3
SMTP_SOURCE=/usr/sbin/smtp-source
SENDER=a@example.org
RCPT=b@example.com
START_WAIT=100
STOP_WAIT=150
PEER=() PF_DIR='' # lib.sh's Postfix helpers are not used here

WORK='' CHILD='' FAILED=0
declare -A PID PORT SENT

stop_one() { # name
	local i pid=${PID[$1]:-}
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < STOP_WAIT; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	alive "$pid" && kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	PID[$1]=
}

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
	[ -n "$CHILD" ] && kill -TERM "$CHILD" 2>/dev/null
	stop_one none
	stop_one rules
	remove_work
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in "$PY" "$SMTP_SOURCE" ss; do
	command -v "$tool" >/dev/null || die "$tool is missing (make deps)"
done
make -s BUILD="$BUILD" all || die "make BUILD=$BUILD all failed"
SLUICED=$ROOT/$BUILD/sluiced
SLUICECTL=$ROOT/$BUILD/sluicectl
SMTPLOAD=$ROOT/$BUILD/smtpload
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wshadow \
    -Wpointer-arith -Wcast-qual -Wstrict-prototypes -Wmissing-prototypes \
    -o "$SMTPLOAD" bench/smtpload.c || die "bench/smtpload.c does not build"
WORK=$(mktemp -d /tmp/sluice-bench-rules.XXXXXX) || die "mktemp failed"

free_port() {
	"$PY" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PORT[none]=$(free_port)
PORT[rules]=$(free_port)
while [ "${PORT[rules]}" = "${PORT[none]}" ]; do PORT[rules]=$(free_port); done

# The 100 rules (see the top of this file).
rules() {
	local i
	for ((i = 0; i < 30; i++)); do
		printf '[TransportRule "Partner TLS %d"]\n' "$i"
		printf 'RecipientDomainIs = partner%d.example, partner%d.net\n' \
		    "$i" "$i"
		printf 'RouteMessageOutboundRequireTls = true\n\n'
	done
	for ((i = 0; i < 15; i++)); do
		printf '[TransportRule "Keyword %d"]\n' "$i"
		printf 'SubjectContainsWords = "confidential %d", secret%d, ' \
		    "$i" "$i"
		printf '"project codename%d"\n' "$i"
		printf 'SetHeaderName = X-Class\nSetHeaderValue = confidential\n\n'
	done
	for ((i = 0; i < 10; i++)); do
		printf '[TransportRule "Invoice %d"]\n' "$i"
		printf 'SubjectMatchesPatterns = "^(re|fw|fwd):\\s*invoice\\s*#%d\\d{4,}", ' "$i"
		printf '"\\border\\s+\\d+-%d\\b"\n' "$i"
		printf 'PrependSubject = "[Invoice] "\n\n'
	done
	for ((i = 0; i < 10; i++)); do
		printf '[TransportRule "Vendor %d"]\n' "$i"
		printf 'FromAddressMatchesPatterns = "^noreply\\d*@vendor%d\\.example$", ' "$i"
		printf '"@mailer%d\\.(com|net)$"\n' "$i"
		printf 'SetHeaderName = X-Vendor\nSetHeaderValue = %d\n\n' "$i"
	done
	for ((i = 0; i < 10; i++)); do
		printf '[TransportRule "Bulk %d"]\n' "$i"
		printf 'HeaderContainsMessageHeader = X-Mailer\n'
		printf 'HeaderContainsWords = "bulk mailer %d", massmail%d\n' \
		    "$i" "$i"
		printf 'BlindCopyTo = archive%d@example.com\n\n' "$i"
	done
	for ((i = 0; i < 5; i++)); do
		printf '[TransportRule "Spam id %d"]\n' "$i"
		printf 'HeaderMatchesMessageHeader = Message-ID\n'
		printf 'HeaderMatchesPatterns = "@spammer%d\\.example>$"\n' "$i"
		printf 'RejectMessageReasonText = Not accepted\n\n'
		printf '[TransportRule "Big %d"]\n' "$i"
		printf 'MessageSizeOver = %dMB\n' "$((20 + i))"
		printf 'RejectMessageReasonText = Too large\n\n'
		printf '[TransportRule "Network %d"]\n' "$i"
		printf 'SenderIpRanges = 10.%d.0.0/16\nDeleteMessage = true\n\n' "$i"
	done
	for ((i = 0; i < 7; i++)); do
		printf '[TransportRule "Excepted %d"]\n' "$i"
		printf 'RecipientDomainIs = example.com\n'
		printf 'ExceptIfSubjectMatchesPatterns = "smtpload\\s+test", "^x%d"\n' "$i"
		printf 'SetHeaderName = X-Excepted\nSetHeaderValue = %d\n\n' "$i"
	done
	printf '[TransportRule "Inbound"]\nRecipientDomainIs = example.com\n'
	printf 'ExceptIfSenderIpRanges = 192.0.2.0/24\n'
	printf 'SetHeaderName = X-Org-Inbound\nSetHeaderValue = yes\n\n'
	printf '[TransportRule "External"]\nFromScope = NotInOrganization\n'
	printf 'SentToScope = InOrganization\nPrependSubject = "[External] "\n\n'
	printf '[TransportRule "Watch"]\nMode = Audit\nMessageSizeOver = 1KB\n'
	printf 'SetHeaderName = X-Watched\nSetHeaderValue = yes\n'
}

start_one() { # name with_rules
	local dir=$WORK/$1
	mkdir -p "$dir"
	{
		cat <<CONF
[Transport]
QueueDirectory = $dir/queue
LogDirectory = $dir/log
ControlSocket = $dir/ctl.sock

[AcceptedDomain example.com]
DomainType = InternalRelay

[SendConnector Hold]
AddressSpaces = example.com
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:9

[ReceiveConnector bench]
Bindings = 127.0.0.1:${PORT[$1]}
RemoteIPRanges = 127.0.0.0/8
AuthMechanism = None
Fqdn = sluice.bench.test
TarpitInterval = 0s
ProtocolLoggingLevel = None
MaxInboundConnection = 1000
MaxInboundConnectionPerSource = 1000

CONF
		[ "$2" = 1 ] && rules
	} >"$dir/sluice.conf"
	"$SLUICECTL" -c "$dir/sluice.conf" config check >"$dir/check.out" \
	    2>&1 || {
		cat "$dir/check.out" >&2
		die "the $1 configuration does not load"
	}
	"$SLUICED" -f -c "$dir/sluice.conf" 2>>"$dir/sluiced.log" &
	PID[$1]=$!
	wait_listen "${PORT[$1]}" || die "sluiced ($1) did not start"
	"$SLUICECTL" -c "$dir/sluice.conf" suspend Hold >/dev/null ||
	    die "sluicectl suspend Hold ($1) failed"
	SENT[$1]=0
}

source_run() { # name messages: RESULT=msgs/s
	local t0 t1
	RESULT=0
	t0=$EPOCHREALTIME
	run "$SMTP_SOURCE" -c -s "$SESSIONS" -m "$2" -l "$SIZE" -f "$SENDER" \
	    -t "$RCPT" "127.0.0.1:${PORT[$1]}" >/dev/null \
	    2>"$WORK/source.err" || {
		echo "smtp-source ($1): $(tail -1 "$WORK/source.err")" >&2
		return 1
	}
	t1=$EPOCHREALTIME
	SENT[$1]=$((SENT[$1] + $2))
	RESULT=$(awk -v n="$2" -v a="$t0" -v b="$t1" \
	    'BEGIN { printf "%.0f", n / (b - a) }')
}

cpu_ticks() { # pid: user + system clock ticks of every thread
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

declare -A CPU_T CPU_N # ticks and messages of the smtpload rounds

load_run() { # name: RESULT="msgs/s p50 p99"
	local out accepted rc t0
	RESULT="0 - -"
	t0=$(cpu_ticks "${PID[$1]}")
	run "$SMTPLOAD" -c "$SESSIONS" -m "$MESSAGES" -s "$SIZE" -f "$SENDER" \
	    -t "$RCPT" "127.0.0.1:${PORT[$1]}" >"$WORK/load.out" \
	    2>"$WORK/load.err"
	rc=$?
	out=$(cat "$WORK/load.out")
	accepted=$(awk '$1 == "accepted:" { print $2 }' <<<"$out")
	SENT[$1]=$((SENT[$1] + ${accepted:-0}))
	CPU_T[$1]=$((${CPU_T[$1]:-0} + $(cpu_ticks "${PID[$1]}") - t0))
	CPU_N[$1]=$((${CPU_N[$1]:-0} + ${accepted:-0}))
	[ $rc -eq 0 ] || {
		cat "$WORK/load.err" >&2
		return 1
	}
	RESULT=$(awk '$1 == "msgs/s:" { r = $2 } $1 == "p50_ms:" { a = $2 }
	    $1 == "p99_ms:" { b = $2 } END { printf "%.0f %s %s", r, a, b }' \
	    <<<"$out")
}

echo "transport rules benchmark: 100 rules against none, $MESSAGES" \
    "messages of $SIZE bytes, $SESSIONS sessions, $RUNS rounds" \
    "(alternating, best counts), $(nproc) cores"
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "sluiced $(git describe --always --dirty 2>/dev/null || echo '?')"
start_one none 0
start_one rules 1
echo "rules loaded: $(grep -c '^\[TransportRule' "$WORK/rules/sluice.conf")"

for s in none rules; do
	source_run "$s" "$WARMUP" || FAILED=1
done
declare -A LOAD SRC
LOAD[none]="0 - -" LOAD[rules]="0 - -" SRC[none]=0 SRC[rules]=0
LOADS_none='' LOADS_rules=''
for ((r = 1; r <= RUNS; r++)); do
	order="none rules"
	[ $((r % 2)) = 0 ] && order="rules none"
	for s in $order; do
		load_run "$s" || FAILED=1
		echo "  round $r $s smtpload: $RESULT (msgs/s p50_ms p99_ms)"
		[ "${RESULT%% *}" -gt "${LOAD[$s]%% *}" ] && LOAD[$s]=$RESULT
		printf -v "LOADS_$s" '%s %s' "$(eval echo "\$LOADS_$s")" \
		    "${RESULT%% *}"
	done
	for s in $order; do
		source_run "$s" "$MESSAGES" || FAILED=1
		echo "  round $r $s smtp-source: $RESULT msgs/s"
		SRC[$s]=$(better "${SRC[$s]}" "$RESULT")
	done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 }
    END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2];
    else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

count() { # name: messages of the bench's sender; and rewritten ones
	"$PY" - "$WORK/$1/queue/queue.db" "$SENDER" <<'PYEOF'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
n = db.execute("select count(*) from messages where sender = ?",
               (sys.argv[2],)).fetchone()[0]
r = db.execute("select count(*) from messages where sender = ? and"
               " instr(body, 'X-Org-Inbound: yes') > 0",
               (sys.argv[2],)).fetchone()[0]
print(n, r)
PYEOF
}
read -r QN RN <<<"$(count none)" || QN="?"
read -r QR RR <<<"$(count rules)" || QR="?"
read -r LN LN50 LN99 <<<"${LOAD[none]}"
read -r LR LR50 LR99 <<<"${LOAD[rules]}"
MN=$(median <<<"$LOADS_none")
MR=$(median <<<"$LOADS_rules")
HZ=$(getconf CLK_TCK)
us_per_msg() { # name: CPU microseconds of sluiced per accepted message
	awk -v t="${CPU_T[$1]:-0}" -v n="${CPU_N[$1]:-0}" -v hz="$HZ" \
	    'BEGIN { if (n == 0) print "-"; else printf "%.1f", t * 1e6 / hz / n }'
}
UN=$(us_per_msg none)
UR=$(us_per_msg rules)
{
	echo
	printf "%-18s %12s %12s %8s %8s %10s %14s\n" "" "smtpload" \
	    "smtpload" "p50" "p99" "CPU us" "smtp-source"
	printf "%-18s %12s %12s %8s %8s %10s %14s\n" "sluiced" \
	    "best msgs/s" "median" "ms" "ms" "per msg" "best msgs/s"
	printf "%-18s %12s %12s %8s %8s %10s %14s\n" "no rules" "$LN" "$MN" \
	    "$LN50" "$LN99" "$UN" "${SRC[none]}"
	printf "%-18s %12s %12s %8s %8s %10s %14s\n" "100 rules" "$LR" "$MR" \
	    "$LR50" "$LR99" "$UR" "${SRC[rules]}"
	printf "%-18s %12s %12s %8s %8s %10s %14s\n" "ratio rules/none" \
	    "$(ratio "$LR" "$LN")" "$(ratio "$MR" "$MN")" \
	    "$(ratio "$LR50" "$LN50")" "$(ratio "$LR99" "$LN99")" \
	    "$(ratio "$UR" "$UN")" "$(ratio "${SRC[rules]}" "${SRC[none]}")"
	echo
	echo "queued: no rules $QN of ${SENT[none]} acknowledged, 100 rules" \
	    "$QR of ${SENT[rules]} ($RR rewritten by the rules)"
} | tee "$ROOT/$BUILD/bench-rules.txt"

if [ "$QN" != "${SENT[none]}" ] || [ "$QR" != "${SENT[rules]}" ]; then
	echo "MISMATCH: acknowledged messages lost or duplicated" >&2
	FAILED=1
fi
if [ "$RR" != "$QR" ]; then
	echo "the rules did not run on every message ($RR of $QR)" >&2
	FAILED=1
fi
[ "$FAILED" = 0 ] || die "the run had errors (figures above are not valid)"
