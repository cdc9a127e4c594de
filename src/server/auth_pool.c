/*
 * auth_pool.c - password checks on worker threads (see auth_pool.h).
 *
 * Submission and delivery happen on the event loop; only the hash runs on
 * a worker.  A job is on exactly one list: queued (waiting for a worker),
 * running (a worker holds it), or done (waiting for the loop).  The loop
 * learns of finished jobs through a wake of its own (util/wakeup.h), as
 * from the spool's committer, and runs each callback from that event,
 * never inside a session's call chain.  Cancelling only marks a job: the
 * pool still owns it and frees it when it reaches the loop, without
 * calling back.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "server/auth.h"
#include "server/auth_pool.h"
#include "util/log.h"
#include "util/wakeup.h"

struct auth_job {
	struct auth_job *next;
	auth_pool_fn fn;
	void *arg;
	int cancelled; /* under the pool's mutex */
	int ok;
	char *users_file, *user, *password;
};

struct auth_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t threads[AUTH_POOL_THREADS];
	size_t nthreads;
	int stop;
	struct auth_job *queued, **queued_tail;
	struct auth_job *done, **done_tail;
	unsigned jobs; /* queued, running or done: all the pool owns */
	struct wakeup *wake;
};

static void
auth_job_free(struct auth_job *job)
{
	if (job->password != NULL) {
		OPENSSL_cleanse(job->password, strlen(job->password));
		free(job->password);
	}
	free(job->users_file);
	free(job->user);
	free(job);
}

static void *
auth_pool_worker(void *arg)
{
	struct auth_pool *p = arg;

	for (;;) {
		struct auth_job *job;
		int cancelled;

		pthread_mutex_lock(&p->mu);
		while (p->queued == NULL && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stop) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		job = p->queued;
		p->queued = job->next;
		if (p->queued == NULL)
			p->queued_tail = &p->queued;
		job->next = NULL;
		cancelled = job->cancelled;
		pthread_mutex_unlock(&p->mu);

		/* Nobody waits for a cancelled check: skip the hash. */
		job->ok = !cancelled &&
		          auth_check(job->users_file, job->user, job->password);
		OPENSSL_cleanse(job->password, strlen(job->password));

		pthread_mutex_lock(&p->mu);
		*p->done_tail = job;
		p->done_tail = &job->next;
		pthread_mutex_unlock(&p->mu);
		if (wakeup_signal(p->wake) < 0)
			log_err("auth: cannot wake the event loop: %s",
			    strerror(errno));
	}
}

/*
 * On the loop: report every finished check, then free it.  Every one: a
 * wake may stand for several workers' results.
 */
static void
auth_pool_wake_cb(void *arg)
{
	struct auth_pool *p = arg;
	struct auth_job *list, *next;

	pthread_mutex_lock(&p->mu);
	list = p->done;
	p->done = NULL;
	p->done_tail = &p->done;
	pthread_mutex_unlock(&p->mu);
	for (; list != NULL; list = next) {
		int cancelled;

		next = list->next;
		pthread_mutex_lock(&p->mu);
		cancelled = list->cancelled;
		pthread_mutex_unlock(&p->mu);
		p->jobs--;
		/*
		 * A callback may cancel a later job of this list (its session
		 * closed): that is why the flag is read just before each.
		 */
		if (!cancelled)
			list->fn(list->arg, list->ok);
		auth_job_free(list);
	}
}

struct auth_pool *
auth_pool_new(struct event_base *base)
{
	struct auth_pool *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->queued_tail = &p->queued;
	p->done_tail = &p->done;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if ((p->wake = wakeup_new(base, auth_pool_wake_cb, p)) == NULL)
		goto fail;
	for (; p->nthreads < AUTH_POOL_THREADS; p->nthreads++)
		if (pthread_create(&p->threads[p->nthreads], NULL,
		        auth_pool_worker, p) != 0)
			goto fail;
	return p;
fail:
	log_err("auth: cannot start the password check threads");
	auth_pool_free(p);
	return NULL;
}

static void
auth_pool_free_list(struct auth_job *job)
{
	while (job != NULL) {
		struct auth_job *next = job->next;

		auth_job_free(job);
		job = next;
	}
}

void
auth_pool_free(struct auth_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (size_t i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	/* The daemon is stopping: nobody waits for these any more. */
	auth_pool_free_list(p->queued);
	auth_pool_free_list(p->done);
	wakeup_free(p->wake);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

struct auth_job *
auth_pool_submit(struct auth_pool *p, const char *users_file, const char *user,
    const char *password, auth_pool_fn fn, void *arg)
{
	struct auth_job *job;

	if (p->jobs >= AUTH_POOL_QUEUE_MAX ||
	    (job = calloc(1, sizeof(*job))) == NULL)
		return NULL;
	job->fn = fn;
	job->arg = arg;
	job->users_file = strdup(users_file != NULL ? users_file : "");
	job->user = strdup(user);
	job->password = strdup(password);
	if (job->users_file == NULL || job->user == NULL ||
	    job->password == NULL) {
		auth_job_free(job);
		return NULL;
	}
	p->jobs++;
	pthread_mutex_lock(&p->mu);
	*p->queued_tail = job;
	p->queued_tail = &job->next;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return job;
}

void
auth_pool_cancel(struct auth_pool *p, struct auth_job *job)
{
	pthread_mutex_lock(&p->mu);
	job->cancelled = 1;
	pthread_mutex_unlock(&p->mu);
}
