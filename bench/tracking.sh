#!/bin/bash
# tracking.sh - how fast `sluicectl get-messagetrackinglog` searches a
# month of message tracking logs (Get-MessageTrackingLog).  A figure, not
# a test.
#
# Generates DAYS daily files (MSGTRKyyyymmdd-1.LOG, default 30) of ROWS
# rows each (default 100000) in the current layout: each message has a
# RECEIVE and a SEND row, senders drawn from 1000 addresses, recipients
# from 20000, subjects and Message-IDs unique.  Then times, with the
# optimised build (make all), searches an administrator makes:
#   1. one message by its Message-ID, over the whole month;
#   2. one sender's rows, over the whole month (--result-size unlimited);
#   3. one recipient on one day (--start/--end: the other files are
#      skipped by the day in their name);
#   4. every SEND row of the month, the worst case: nothing to skip, every
#      row parsed (output to /dev/null).
# Each search runs twice and the second time is reported (the files are
# then in the page cache, as they are on a server that writes them).
#
#   bench/tracking.sh     or     DAYS=30 ROWS=100000 KEEP=1 bench/tracking.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ME=tracking.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh

DAYS=${DAYS:-30}
ROWS=${ROWS:-100000}
WORK=$(mktemp -d /tmp/sluice-trackbench.XXXXXX)
trap remove_work EXIT

make -s all
CTL=build/sluicectl
LOGS="$WORK/MessageTracking"
mkdir -p "$LOGS"

echo "generating $DAYS files of $ROWS rows in $LOGS ..."
/usr/bin/python3 - "$LOGS" "$DAYS" "$ROWS" <<'EOF'
import datetime
import random
import sys

out, days, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fields = ("date-time,client-ip,client-hostname,server-ip,server-hostname,"
          "source-context,connector-id,source,event-id,internal-message-id,"
          "message-id,network-message-id,recipient-address,"
          "recipient-status,total-bytes,recipient-count,"
          "related-recipient-address,reference,message-subject,"
          "sender-address,return-path,message-info,directionality,"
          "tenant-id,original-client-ip,original-server-ip,custom-data,"
          "transport-traffic-type,log-id,schema-version,tls")
rng = random.Random(11)
senders = [f"sender{i}@example{i % 37}.org" for i in range(1000)]
rcpts = [f"user{i}@contoso{i % 53}.com" for i in range(20000)]
start = datetime.datetime(2026, 11, 1, tzinfo=datetime.timezone.utc)
n = 0
for d in range(days):
    day = start + datetime.timedelta(days=d)
    path = f"{out}/MSGTRK{day:%Y%m%d}-1.LOG"
    with open(path, "w", newline="") as f:
        f.write("#Software: Sluice\r\n#Version: 1.0\r\n"
                "#Log-type: Message Tracking Log\r\n"
                f"#Date: {day:%Y-%m-%dT%H:%M:%S}.000Z\r\n"
                f"#Fields: {fields}\r\n")
        step = 86400.0 / rows
        lines = []
        for r in range(0, rows, 2):
            n += 1
            t = day + datetime.timedelta(seconds=r * step)
            ts = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
            qid = f"{int(t.timestamp()):08X}{n:08X}"
            snd, rcp = rng.choice(senders), rng.choice(rcpts)
            mid = f"<{n}.{rng.getrandbits(40):x}@mail.example{n % 37}.org>"
            subj = f"Invoice {n} for order {rng.getrandbits(24)}"
            size = rng.randint(2000, 200000)
            common = (f"{qid},{mid},,{rcp}")
            lines.append(
                f"{ts},192.0.2.{n % 250},mail.example{n % 37}.org,"
                f"198.51.100.1,mx.sluice.example,{n:016X},Default,SMTP,"
                f"RECEIVE,{common},250 2.6.0 Queued mail for delivery,"
                f"{size},1,,,{subj},{snd},{snd},,Incoming,,"
                f"192.0.2.{n % 250},,S:AuthAs=Anonymous;"
                f"S:AuthMechanism=Tls,,,Sluice.1,"
                f"tls=inbound:encrypted;TLSv1.3;TLS_AES_256_GCM_SHA384\r\n")
            lines.append(
                f"{ts},198.51.100.1,mx.sluice.example,203.0.113.{n % 250},"
                f"mx{n % 53}.contoso{n % 53}.com,{n + 7:016X},Internet,"
                f"SMTP,SEND,{common},250 2.0.0 Ok: queued as {n:X},"
                f"{size},1,,,{subj},{snd},{snd},,Incoming,,"
                f"192.0.2.{n % 250},,,,,Sluice.1,"
                f"tls=opportunistic:encrypted;TLSv1.3;"
                f"TLS_AES_256_GCM_SHA384\r\n")
        f.writelines(lines)
print(f"{n} messages")
EOF
BYTES=$(du -sb "$LOGS" | cut -f1)
echo "$(ls "$LOGS" | wc -l) files, $((BYTES / 1024 / 1024)) MB"

# a message, a sender and a recipient from the middle of the month
MID=$((DAYS / 2))
DAY=$(ls "$LOGS" | sort | sed -n "$((MID + 1))p" | sed 's/MSGTRK\(....\)\(..\)\(..\).*/\1-\2-\3/')
LINE=$(sed -n '1000p' "$LOGS/MSGTRK${DAY//-/}-1.LOG")
MSGID=$(echo "$LINE" | cut -d, -f11)
SENDER=$(echo "$LINE" | cut -d, -f20)
RCPT=$(echo "$LINE" | cut -d, -f13)
NEXT=$(date -u -d "$DAY + 1 day" +%Y-%m-%d)

search() { # label, args...: run twice, report the second
	local label=$1 t0 t1 n
	shift
	"$CTL" get-messagetrackinglog --path "$LOGS" "$@" >/dev/null 2>&1 || true
	t0=$(date +%s.%N)
	n=$("$CTL" get-messagetrackinglog --path "$LOGS" "$@" 2>/dev/null |
	    tail -n +2 | wc -l)
	t1=$(date +%s.%N)
	awk -v l="$label" -v a="$t0" -v b="$t1" -v n="$n" -v mb="$BYTES" \
	    'BEGIN { s = b - a; printf "%-44s %8.3f s %9d rows %8.0f MB/s\n",
	    l, s, n, mb / 1048576 / s }'
}

echo
echo "search (page cache warm, second run)            time       matches   log read"
search "1. --message-id, whole month" --message-id "$MSGID"
search "2. --sender, whole month, unlimited" --sender "$SENDER" \
    --result-size unlimited
search "3. --recipients, one day (--start/--end)" --recipients "$RCPT" \
    --start "$DAY" --end "$NEXT"
search "4. --event-id SEND, whole month, unlimited" --event-id SEND \
    --result-size unlimited
echo "(MB/s: the whole month's size over the time, also where files were skipped)"
