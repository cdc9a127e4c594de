/*
 * test_wakeup.c - the cross-thread wake of the loop (src/util/wakeup.c):
 * a burst before the loop runs is one callback, work handed over while
 * the loop runs is always seen (a lost wake shows as the time limit, not
 * as a hang), and nothing is left behind by a free.
 */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "util/wakeup.h"

/* Long enough for a loaded machine under ASan; a lost wake waits it out. */
#define LIMIT_SECONDS 30

/* The hand-over: items queued by the threads, taken by the callback. */
struct work {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned queued, taken, target;
	unsigned calls;
	unsigned failed; /* signals that could not be written */
	int stop;        /* the loop gave up: threads waiting for it go */
	struct event_base *base;
	struct wakeup *w;
};

static void
work_init(struct work *k, unsigned target)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->mu, NULL);
	pthread_cond_init(&k->cv, NULL);
	k->target = target;
	k->base = event_base_new();
	assert_non_null(k->base);
}

static void
work_fini(struct work *k)
{
	wakeup_free(k->w);
	event_base_free(k->base);
	pthread_mutex_destroy(&k->mu);
	pthread_cond_destroy(&k->cv);
}

/* The loop's callback: take all that waits, as the daemon's do. */
static void
take(void *arg)
{
	struct work *k = arg;

	pthread_mutex_lock(&k->mu);
	k->taken += k->queued;
	k->queued = 0;
	k->calls++;
	pthread_cond_broadcast(&k->cv);
	pthread_mutex_unlock(&k->mu);
	if (k->target != 0 && k->taken == k->target)
		event_base_loopbreak(k->base);
}

/* Any thread (so no cmocka assertion here: it would jump across threads). */
static void
hand_over(struct work *k)
{
	pthread_mutex_lock(&k->mu);
	k->queued++;
	pthread_mutex_unlock(&k->mu);
	if (wakeup_signal(k->w) != 0) {
		pthread_mutex_lock(&k->mu);
		k->failed++;
		pthread_mutex_unlock(&k->mu);
	}
}

static void
time_limit(evutil_socket_t fd, short what, void *arg)
{
	struct work *k = arg;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&k->mu);
	k->stop = 1;
	pthread_cond_broadcast(&k->cv);
	pthread_mutex_unlock(&k->mu);
	event_base_loopbreak(k->base);
}

/* Run the loop until the callback has taken target items, or the limit. */
static void
run_until_taken(struct work *k)
{
	struct timeval limit = {LIMIT_SECONDS, 0};
	struct event *t = evtimer_new(k->base, time_limit, k);

	assert_non_null(t);
	evtimer_add(t, &limit);
	event_base_dispatch(k->base);
	event_free(t);
}

/* Items one thread hands over in a row. */
#define EACH 10000

static void *
hand_over_each(void *arg)
{
	for (int i = 0; i < EACH; i++)
		hand_over(arg);
	return NULL;
}

static void
test_burst_is_one_callback(void **state)
{
	struct work k;
	pthread_t th;

	(void)state;
	work_init(&k, 0);
	assert_non_null(k.w = wakeup_new(k.base, take, &k));
	assert_int_equal(pthread_create(&th, NULL, hand_over_each, &k), 0);
	pthread_join(th, NULL);
	event_base_loop(k.base, EVLOOP_NONBLOCK);
	assert_int_equal(k.calls, 1);
	assert_int_equal(k.taken, EACH);
	assert_int_equal(k.failed, 0);
	/* nothing more waits: no second wake */
	event_base_loop(k.base, EVLOOP_NONBLOCK);
	assert_int_equal(k.calls, 1);
	/* the flag was cleared: the next hand-over wakes the loop again */
	hand_over(&k);
	event_base_loop(k.base, EVLOOP_NONBLOCK);
	assert_int_equal(k.calls, 2);
	assert_int_equal(k.taken, EACH + 1);
	work_fini(&k);
}

#define THREADS 4

static void
test_streaming_threads_all_seen(void **state)
{
	struct work k;
	pthread_t th[THREADS];

	(void)state;
	work_init(&k, THREADS * EACH);
	assert_non_null(k.w = wakeup_new(k.base, take, &k));
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(
		    pthread_create(&th[i], NULL, hand_over_each, &k), 0);
	run_until_taken(&k);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	assert_false(k.stop);
	assert_int_equal(k.failed, 0);
	assert_int_equal(k.taken, THREADS * EACH);
	assert_true(k.calls >= 1 && k.calls <= THREADS * EACH);
	work_fini(&k);
}

#define ROUNDS 20000

/*
 * One item at a time, the next only once the loop has taken the last:
 * every hand-over meets the loop somewhere around its clearing of the
 * flag, and the last one's wake is the only way it is seen.
 */
static void *
ping(void *arg)
{
	struct work *k = arg;
	int stop = 0;

	for (unsigned i = 1; i <= ROUNDS && !stop; i++) {
		hand_over(k);
		pthread_mutex_lock(&k->mu);
		while (k->taken < i && !k->stop)
			pthread_cond_wait(&k->cv, &k->mu);
		stop = k->stop;
		pthread_mutex_unlock(&k->mu);
	}
	return NULL;
}

static void
test_one_at_a_time_all_seen(void **state)
{
	struct work k;
	pthread_t th;

	(void)state;
	work_init(&k, ROUNDS);
	assert_non_null(k.w = wakeup_new(k.base, take, &k));
	assert_int_equal(pthread_create(&th, NULL, ping, &k), 0);
	run_until_taken(&k);
	/* a lost wake: the loop gave up and told the thread to go */
	pthread_join(th, NULL);
	assert_false(k.stop);
	assert_int_equal(k.failed, 0);
	assert_int_equal(k.taken, ROUNDS);
	work_fini(&k);
}

/* The callback ends its owner, as a finished queue view does. */
static void
take_and_free(void *arg)
{
	struct work *k = arg;

	take(k);
	wakeup_free(k->w);
	k->w = NULL;
}

static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

static void
test_free_leaves_nothing(void **state)
{
	struct work k;
	int fds;

	(void)state;
	work_init(&k, 0);
	fds = open_fds();
	/* nothing pending */
	assert_non_null(k.w = wakeup_new(k.base, take, &k));
	assert_int_equal(open_fds(), fds + 1); /* one eventfd */
	wakeup_free(k.w);
	k.w = NULL;
	assert_int_equal(open_fds(), fds);
	/* a wake written, never read */
	assert_non_null(k.w = wakeup_new(k.base, take, &k));
	hand_over(&k);
	wakeup_free(k.w);
	k.w = NULL;
	assert_int_equal(open_fds(), fds);
	/* freed from its own callback */
	assert_non_null(k.w = wakeup_new(k.base, take_and_free, &k));
	hand_over(&k);
	event_base_loop(k.base, EVLOOP_NONBLOCK);
	assert_null(k.w);
	assert_int_equal(k.calls, 1);
	assert_int_equal(open_fds(), fds);
	wakeup_free(NULL);
	work_fini(&k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_burst_is_one_callback),
	    cmocka_unit_test(test_streaming_threads_all_seen),
	    cmocka_unit_test(test_one_at_a_time_all_seen),
	    cmocka_unit_test(test_free_leaves_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
