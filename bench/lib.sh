# shellcheck shell=bash
# lib.sh - shell helpers shared by the benchmarks (sourced, not run).
#
# The caller sets ME (its name, for messages), START_WAIT (tenths of a
# second to wait for a port), PEER (the tests/it/peers/postfix.py command
# as an array) and PF_DIR (the private Postfix instance, when one runs).

die() {
	echo "$ME: $*" >&2
	exit 1
}

alive() { # pid: running and not a zombie
	[ -r "/proc/$1/stat" ] && ! awk '{ exit ($3 != "Z") }' \
	    "/proc/$1/stat" 2>/dev/null
}

# Stop a child: SIGTERM, then SIGKILL after the given tenths of a second.
stop_pid() { # pid [tenths of a second before SIGKILL]
	local i
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null
	for ((i = 0; i < ${2:-50}; i++)); do
		alive "$1" || break
		sleep 0.1
	done
	alive "$1" && kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

stop_postfix() {
	[ -n "$PF_DIR" ] && [ -d "$PF_DIR/etc" ] &&
	    "${PEER[@]}" stop --dir "$PF_DIR" --keep
	PF_DIR=
}

wait_listen() { # port
	local i
	for ((i = 0; i < START_WAIT; i++)); do
		[ -n "$(ss -Hltn "sport = :$1")" ] && return 0
		sleep 0.1
	done
	return 1
}

remove_work() { # the run's temporary directory, unless KEEP=1
	if [ -n "$WORK" ]; then
		if [ "${KEEP:-0}" = 1 ]; then
			echo "kept $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
}

better() { # a b: the larger number
	awk -v a="$1" -v b="$2" 'BEGIN { print (b + 0 > a + 0 ? b : a) }'
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-";
	    else printf "%.3g", a / b }'
}
