/*
 * wakeup.h - wake a libevent loop from another thread, once per batch.
 *
 * A thread that hands work to a loop (or takes work from one) puts it on a
 * list under a lock and then needs the loop to look at the list.  Here an
 * eventfd is the loop's event, and a flag says a wake is already on its
 * way: a burst of hand-overs before the loop runs costs one write and one
 * wake, not one each.  The flag is cleared before the callback runs, so
 * whatever is handed over after the callback has taken the list wakes the
 * loop again and nothing waits unseen.
 */
#ifndef SLUICE_WAKEUP_H
#define SLUICE_WAKEUP_H

struct event_base;
struct wakeup;

/*
 * fn(arg) runs on base's thread after every wakeup_signal() that found no
 * wake on its way.  NULL (errno set) when out of descriptors or memory.
 */
struct wakeup *wakeup_new(struct event_base *base, void (*fn)(void *),
    void *arg);
/* From any thread: 0, or -1 with errno when the eventfd cannot be written. */
int wakeup_signal(struct wakeup *);
/* On base's thread, with no thread left that may signal it. */
void wakeup_free(struct wakeup *);

#endif
