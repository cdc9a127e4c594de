/*
 * status_queues.c - the status page's and the metrics' queue table,
 * read off the event loop (see status_queues.h).
 *
 * Walking every waiting recipient costs as much as the queue is long (a
 * few tenths of a second at 200,000): on the loop, SMTP waited that
 * long.  A reading runs on a thread of its own with its own read-only
 * view of the queue (spool_view_new) and a reference to the
 * configuration it routes with, taken and dropped on the loop, so a
 * reload never frees it under the thread.  The thread hands its table
 * back and wakes the loop (util/wakeup.h); the loop adds each queue's
 * live state (the delivery queues are the loop's only) and serves it
 * from then on.
 *
 * One reading at a time; while one is in progress the previous one is
 * served.  Before the first has finished there is none: the page says
 * the queue is being read and /metrics has no sluice_queue_messages
 * samples (a scrape never waits for the queue).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control/control.h"
#include "daemon/daemon.h"
#include "spool/spool.h"
#include "status/status_http.h"
#include "status/status_queues.h"
#include "util/log.h"
#include "util/wakeup.h"

struct status_queues {
	struct daemon *daemon;
	struct qmgr *qmgr;
	/* the reading served */
	struct control_queue_info *queues;
	size_t nqueues;
	int have, failed;
	time_t at; /* when it started; 0 never */
	unsigned long readings;
	/* the reading in progress: the thread's until it wakes the loop */
	int running;
	pthread_t thread;
	atomic_int cancel;
	struct conf_ref *conf;
	struct spool_view *sv;
	time_t now;
	double cpu, next_cpu; /* the thread's CPU seconds: last, running */
	struct control_queue_info *next;
	size_t nnext;
	int next_rc;
	struct wakeup *wake;
};

/*
 * The test build (SLUICE_TEST_HOOKS, `make asan`): with
 * SLUICE_TEST_STATUS_HOLD=FILE a reading waits after its walk until FILE
 * exists (a minute at most), so a test sees the daemon while a reading
 * is in progress.
 */
static void
status_queues_test_hold(const atomic_int *cancel)
{
#ifndef SLUICE_TEST_HOOKS
	(void)cancel;
#else
	const char *path = getenv("SLUICE_TEST_STATUS_HOLD");
	struct timespec ts = {0, 10 * 1000 * 1000};

	for (int i = 0; path != NULL && i < 6000 && !atomic_load(cancel) &&
	                access(path, F_OK) != 0;
	     i++)
		nanosleep(&ts, NULL);
#endif
}

static void *
status_queues_worker(void *arg)
{
	struct status_queues *sq = arg;
	struct timespec t0, t1;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	sq->next_rc = sq->sv == NULL
	                  ? -1
	                  : control_queue_count(sq->sv, sq->conf->conf, sq->now,
	                        &sq->cancel, &sq->next, &sq->nnext);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
	sq->next_cpu = (double)(t1.tv_sec - t0.tv_sec) +
	               (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	status_queues_test_hold(&sq->cancel);
	if (wakeup_signal(sq->wake) < 0)
		log_err(
		    "status: cannot wake the event loop: %s", strerror(errno));
	return NULL;
}

/* The thread is done (or told to stop): join it, drop what it used. */
static void
status_queues_join(struct status_queues *sq)
{
	pthread_join(sq->thread, NULL);
	sq->running = 0;
	spool_view_free(sq->sv);
	sq->sv = NULL;
	daemon_conf_release(sq->conf);
	sq->conf = NULL;
}

static void
status_queues_done(void *arg)
{
	struct status_queues *sq = arg;

	if (!sq->running)
		return;
	status_queues_join(sq);
	free(sq->queues);
	sq->queues = sq->next;
	sq->nqueues = sq->next_rc == 0 ? sq->nnext : 0;
	sq->next = NULL;
	sq->failed = sq->next_rc != 0;
	sq->have = 1;
	sq->readings++;
	sq->cpu = sq->next_cpu;
	control_queue_live(sq->qmgr, sq->queues, sq->nqueues);
}

struct status_queues *
status_queues_new(struct daemon *daemon, struct qmgr *qmgr)
{
	struct status_queues *sq = calloc(1, sizeof(*sq));

	if (sq == NULL)
		return NULL;
	sq->daemon = daemon;
	sq->qmgr = qmgr;
	if ((sq->wake = wakeup_new(daemon->base, status_queues_done, sq)) ==
	    NULL) {
		status_queues_free(sq);
		return NULL;
	}
	return sq;
}

void
status_queues_free(struct status_queues *sq)
{
	if (sq == NULL)
		return;
	if (sq->running) {
		atomic_store(&sq->cancel, 1);
		status_queues_join(sq);
	}
	wakeup_free(sq->wake);
	free(sq->next);
	free(sq->queues);
	free(sq);
}

/* A new reading on its thread; as before when it cannot start. */
static void
status_queues_start(struct status_queues *sq, time_t now)
{
	sq->now = now;
	sq->at = now;
	sq->conf = daemon_conf_acquire(sq->daemon);
	sq->sv = spool_view_new(sq->daemon->spool);
	if (pthread_create(&sq->thread, NULL, status_queues_worker, sq) != 0) {
		log_err("status: cannot start a reading of the queues");
		spool_view_free(sq->sv);
		sq->sv = NULL;
		daemon_conf_release(sq->conf);
		sq->conf = NULL;
		return;
	}
	sq->running = 1;
}

int
status_queues_get(struct status_queues *sq, const struct control_queue_info **v,
    size_t *n, int *failed)
{
	time_t now = time(NULL), every = STATUS_QUEUES_SECONDS;

	/* A deep queue costs its reading more: read it less often, so that
	 * watching never takes more than 1/STATUS_QUEUES_CPU_SHARE of a
	 * core (200,000 recipients: about a second's reading, every 100 s). */
	if (sq->cpu * STATUS_QUEUES_CPU_SHARE > (double)every)
		every = (time_t)(sq->cpu * STATUS_QUEUES_CPU_SHARE) + 1;
	if (!sq->running &&
	    (sq->at == 0 || now < sq->at || now - sq->at >= every))
		status_queues_start(sq, now);
	*v = sq->queues;
	*n = sq->nqueues;
	*failed = sq->have && sq->failed;
	return sq->have && !sq->failed;
}

int
status_queues_reading(const struct status_queues *sq)
{
	return sq->running;
}

unsigned long
status_queues_readings(const struct status_queues *sq)
{
	return sq->readings;
}

double
status_queues_cpu(const struct status_queues *sq)
{
	return sq->cpu;
}
