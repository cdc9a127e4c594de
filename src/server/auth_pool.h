/*
 * auth_pool.h - password checks (auth.c) on a small pool of worker
 * threads, so that a hash that costs tens of milliseconds by design never
 * stops the event loop and every other session with it.
 *
 * The pool owns every job from submission to the end.  A session that
 * goes away while its check runs cancels the job; the job is freed by the
 * pool when the worker is done with it, and its callback never runs.
 */
#ifndef SLUICE_AUTH_POOL_H
#define SLUICE_AUTH_POOL_H

struct event_base;
struct auth_pool;
struct auth_job;

/*
 * Worker threads.  A check is CPU work; the daemon's one loop and the
 * spool's committer need the rest of a small machine's cores, and with
 * yescrypt's 25 ms two threads still check 80 passwords a second, far
 * beyond what the per-address failure limit lets any client ask for.
 */
#define AUTH_POOL_THREADS 2
/*
 * Checks waiting or running, at most.  More are refused at once with
 * 454 4.7.0 instead of queued: 32 yescrypt checks are about 0.4 s of
 * work for the pool, and a queue that may grow without bound would turn
 * a flood from many addresses into minutes of delay for everyone.
 */
#define AUTH_POOL_QUEUE_MAX 32

/* ok: the user and password matched (auth_check()). */
typedef void (*auth_pool_fn)(void *arg, int ok);

/* NULL when the threads or the wake-up cannot be made. */
struct auth_pool *auth_pool_new(struct event_base *);
/* Stops and joins the threads; no callback runs afterwards. */
void auth_pool_free(struct auth_pool *);

/*
 * Check user and password against users_file on a worker thread; fn runs
 * later on the event loop, never inside this call.  NULL when
 * AUTH_POOL_QUEUE_MAX checks are already waiting (or memory is short).
 * The pool keeps its own copies of the strings and wipes the password.
 */
struct auth_job *auth_pool_submit(struct auth_pool *, const char *users_file,
    const char *user, const char *password, auth_pool_fn fn, void *arg);
/* The caller is going away: fn will not run for this job. */
void auth_pool_cancel(struct auth_pool *, struct auth_job *);

#endif
