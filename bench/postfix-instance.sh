#!/bin/sh
# postfix-instance.sh start|stop DIR [PORT] [RELAY_DOMAIN]
#
# A private Postfix for benchmarks and tests: its own main.cf, master.cf,
# queue and data directories under DIR, smtpd on 127.0.0.1:PORT, never
# touching /etc/postfix or port 25.  Mail for RELAY_DOMAIN from 127.0.0.0/8
# is accepted and put on hold (smtpd "HOLD" action), so Postfix stores it
# durably (its queue files are fsync'd before the 250, as always) and does
# no delivery work: the same job sluiced does before the delivery issue.
#
# Environment: HOLD=0 accepts without holding (Postfix then delivers);
# POSTFIX_EXTRA holds further main.cf lines (e.g. a relayhost and client
# TLS settings, for tests where Postfix sends to sluiced).
set -e
cmd=$1 dir=$2 port=${3:-2626} domain=${4:-example.com}

case "$cmd" in
start)
	mkdir -p "$dir/etc" "$dir/queue" "$dir/data"
	chmod 755 "$dir"
	chown postfix "$dir/data"
	chmod 700 "$dir/data"
	cat >"$dir/etc/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.bench.example
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
relay_domains = $domain
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = $( [ "${HOLD:-1}" = 1 ] && printf 'check_client_access static:HOLD, ')permit_mynetworks, reject
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
default_process_limit = 200
smtpd_tls_security_level = none
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
${POSTFIX_EXTRA:-}
CONF
	# Debian's master.cf with smtpd on our port, not chrooted.
	sed -e "s/^smtp      inet  n       -       y       -       -       smtpd/127.0.0.1:$port inet n - n - - smtpd/" \
		/etc/postfix/master.cf >"$dir/etc/master.cf"
	postfix -c "$dir/etc" start >/dev/null 2>&1
	i=0
	while ! ss -ltn | grep -q "127.0.0.1:$port "; do
		i=$((i + 1))
		[ $i -gt 100 ] && { echo "postfix did not start" >&2; exit 1; }
		sleep 0.1
	done
	;;
stop)
	postfix -c "$dir/etc" stop >/dev/null 2>&1 || true
	i=0
	while [ -f "$dir/data/master.lock" ] && pgrep -f "master -c $dir/etc|$dir/etc" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -gt 50 ] && break
		sleep 0.1
	done
	;;
count)
	find "$dir/queue/hold" "$dir/queue/incoming" "$dir/queue/active" \
		"$dir/queue/deferred" -type f 2>/dev/null | wc -l
	;;
*)
	echo "usage: $0 start|stop|count DIR [PORT] [DOMAIN]" >&2
	exit 2
	;;
esac
