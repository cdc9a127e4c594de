/*
 * wakeup.h - wake a libevent loop from another thread, once per batch.
 *
 * A thread that hands work to a loop puts it where the loop will look
 * (a list or a count under a lock, or a result it joins the thread for)
 * and then needs the loop to look.  Here an eventfd is the loop's event,
 * and a flag says a wake is already on its way: a burst of hand-overs
 * before the loop runs costs one write and one wake, not one each.  With
 * 20 sessions streaming large bodies the spool's writers, syncers and
 * committer had woken the loop several thousand times a second, a
 * write(2) each (docs/design.md, "Message content on disk").  The flag is
 * cleared before the callback runs, so whatever is handed over after the
 * callback has taken the work wakes the loop again and nothing waits
 * unseen.  So the callback must take everything that waits, not one item:
 * one wake may stand for many hand-overs.  One descriptor, where a pipe
 * held two.
 */
#ifndef SLUICE_WAKEUP_H
#define SLUICE_WAKEUP_H

struct event_base;
struct wakeup;

/*
 * fn(arg) runs on base's thread after every wakeup_signal(); one run
 * answers all the signals made before it began.  fn may wakeup_free()
 * its own wakeup.
 * NULL (errno set) when out of descriptors or memory.
 */
struct wakeup *wakeup_new(
    struct event_base *base, void (*fn)(void *), void *arg);
/*
 * From any thread, once the work is where fn will find it: 0, or -1 with
 * errno when the eventfd cannot be written (the next signal tries again).
 */
int wakeup_signal(struct wakeup *);
/* On base's thread, with no thread left that may signal it; NULL is
 * nothing. */
void wakeup_free(struct wakeup *);

#endif
