/*
 * ctl_wait.c - run sluicectl's private event loop until a look-up is
 * done or a time limit passes.
 *
 * One command may wait several times on one loop (`route`: the next
 * hops, then their TLSA records, then the MTA-STS policy).
 * event_base_loopexit() cannot serve: an exit scheduled for an earlier
 * wait stays pending and would cut a later one short.  So each wait has
 * a timer of its own, deleted when the wait ends, and loops until its
 * own condition holds, whatever else breaks the loop.
 */
#include <event2/event.h>

#include "ctl/ctl.h"

static void
ctl_wait_expired(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(int *)arg = 1;
}

int
ctl_wait(struct event_base *base, const int *done, int seconds)
{
	struct timeval tv = {seconds, 0};
	int expired = 0;
	struct event *t = evtimer_new(base, ctl_wait_expired, &expired);

	if (t == NULL || evtimer_add(t, &tv) != 0) {
		if (t != NULL)
			event_free(t);
		return -1;
	}
	while (!*done && !expired)
		if (event_base_loop(base, EVLOOP_ONCE) < 0)
			break;
	event_free(t);
	return *done ? 0 : -1;
}
