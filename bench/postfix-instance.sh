#!/bin/bash
# postfix-instance.sh start|stop|count DIR [PORT] [RELAY_DOMAIN]
#
# A private Postfix for scripts and tests, kept for its callers
# (tests/it/test_tls.py); the work is done by tests/it/peers/postfix.py,
# the one implementation of the private instance (its own main.cf,
# master.cf, queue and data directories and maillog under DIR; never
# /etc/postfix or port 25).
#
#   start  smtpd on 127.0.0.1:PORT (default 2626), relaying RELAY_DOMAIN
#          (default example.com) and anything for 127.0.0.0/8 clients;
#          every message is put on hold unless HOLD=0.  POSTFIX_EXTRA holds
#          further main.cf lines "name = value" (e.g. a relayhost and client
#          TLS settings).  DIR must be traversable by the postfix user.
#   stop   stop every process of the instance; DIR stays (the caller
#          removes it, after reading DIR/maillog if it wants).
#   count  messages in the instance's queues.
set -eu
peer="/usr/bin/python3 $(cd "$(dirname "$0")/.." && pwd)/tests/it/peers/postfix.py"
[ $# -ge 2 ] || {
	echo "usage: $0 start|stop|count DIR [PORT] [DOMAIN]" >&2
	exit 2
}
cmd=$1 dir=$2 port=${3:-2626} domain=${4:-example.com}

case "$cmd" in
start)
	args=(start --dir "$dir" --port "$port" --accept "$domain"
		--mynetworks 127.0.0.0/8 --process-limit 200)
	[ "${HOLD:-1}" = 1 ] && args+=(--hold)
	while IFS= read -r line; do
		case "$line" in
		"" | "#"*) ;;
		*) args+=(-o "$line") ;;
		esac
	done <<<"${POSTFIX_EXTRA:-}"
	exec $peer "${args[@]}"
	;;
stop)
	exec $peer stop --dir "$dir" --keep
	;;
count)
	exec $peer count --dir "$dir"
	;;
*)
	echo "usage: $0 start|stop|count DIR [PORT] [DOMAIN]" >&2
	exit 2
	;;
esac
