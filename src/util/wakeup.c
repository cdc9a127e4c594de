/*
 * wakeup.c - wake a libevent loop from another thread, once per batch
 * (see wakeup.h).
 *
 * The order that makes it safe: the signalling thread has put its work on
 * the shared list (under the list's lock) before it swaps the flag, and
 * the loop clears the flag before it takes the list.  A signal that finds
 * the flag set therefore comes before the clear, and its work is on the
 * list the loop is about to take; one that comes after the clear finds it
 * clear and writes.  At worst the loop wakes once to an empty list.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "util/wakeup.h"

struct wakeup {
	int fd;
	atomic_int pending; /* a wake is written, or about to be */
	struct event *ev;
	void (*fn)(void *);
	void *arg;
};

static void
wakeup_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wakeup *w = arg;
	uint64_t n;
	ssize_t r;

	(void)what;
	/*
	 * Whatever the read says, clear and call: a read that failed leaves
	 * the counter to wake us again (one call too many, to nothing), where
	 * returning with the flag set would swallow every later signal.
	 */
	r = read(fd, &n, sizeof(n));
	(void)r;
	atomic_store(&w->pending, 0);
	w->fn(w->arg); /* last: fn may free w */
}

struct wakeup *
wakeup_new(struct event_base *base, void (*fn)(void *), void *arg)
{
	struct wakeup *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	w->fn = fn;
	w->arg = arg;
	atomic_init(&w->pending, 0);
	if ((w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		free(w);
		return NULL;
	}
	if ((w->ev = event_new(
	         base, w->fd, EV_READ | EV_PERSIST, wakeup_cb, w)) == NULL ||
	    event_add(w->ev, NULL) < 0) {
		wakeup_free(w);
		errno = ENOMEM;
		return NULL;
	}
	return w;
}

int
wakeup_signal(struct wakeup *w)
{
	const uint64_t one = 1;

	if (atomic_exchange(&w->pending, 1) != 0)
		return 0;
	/* EAGAIN: the counter is full, so a wake is waiting anyway. */
	if (write(w->fd, &one, sizeof(one)) < 0 && errno != EAGAIN) {
		atomic_store(&w->pending, 0); /* the next signal tries again */
		return -1;
	}
	return 0;
}

void
wakeup_free(struct wakeup *w)
{
	if (w == NULL)
		return;
	if (w->ev != NULL)
		event_free(w->ev);
	close(w->fd);
	free(w);
}
