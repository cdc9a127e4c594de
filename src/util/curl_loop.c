/*
 * curl_loop.c - libcurl on libevent (see curl_loop.h).
 *
 * The "multi_socket" API: libcurl says which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION) and when to wake it (CURLMOPT_TIMERFUNCTION),
 * the loop tells it what happened (curl_multi_socket_action).  Finished
 * transfers are collected from curl_multi_info_read and reported from an
 * event of their own, one activation later and one per activation, so a
 * callback never runs inside libcurl (where it could not remove its own
 * handle) and may free whatever it likes, the curl_loop itself included.
 * Its users: TLS reports by POST (tlsrpt_https.c) and MTA-STS policy
 * fetches (sts_fetch.c).
 *
 * Name resolution is the caller's: it hands libcurl the addresses it
 * looked up with the daemon's resolver (CURLOPT_RESOLVE), so libcurl never
 * blocks in getaddrinfo.
 */
#include <pthread.h>
#include <stdlib.h>

#include <event2/event.h>

#include "util/curl_loop.h"

struct curl_xfer {
	struct curl_xfer *next; /* running or finished list */
	struct curl_loop *loop;
	CURL *easy;
	curl_loop_fn fn;
	void *arg;
	CURLcode result;
};

struct curl_loop {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct event *deliver;
	struct curl_xfer *running, *finished;
};

struct curl_sock {
	struct curl_loop *loop;
	struct event *ev;
};

static pthread_once_t curl_loop_once = PTHREAD_ONCE_INIT;
static int curl_loop_ready;

static void
curl_loop_global(void)
{
	curl_loop_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

static struct curl_xfer **
curl_loop_find(struct curl_xfer **list, CURL *easy)
{
	for (; *list != NULL; list = &(*list)->next)
		if ((*list)->easy == easy)
			return list;
	return NULL;
}

/* Move what libcurl finished to the finished list; report later. */
static void
curl_loop_collect(struct curl_loop *l)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(l->multi, &left)) != NULL) {
		struct curl_xfer **pp, *x;

		if (m->msg != CURLMSG_DONE ||
		    (pp = curl_loop_find(&l->running, m->easy_handle)) == NULL)
			continue;
		x = *pp;
		*pp = x->next;
		x->result = m->data.result;
		curl_multi_remove_handle(l->multi, x->easy);
		x->next = l->finished;
		l->finished = x;
	}
	if (l->finished != NULL)
		event_active(l->deliver, EV_TIMEOUT, 0);
}

/*
 * One finished transfer per activation, the next one a loop turn later:
 * the callback is the last use of the curl_loop here, so it may even
 * free it (an MTA-STS fetch's callback can end its fetcher).
 */
static void
curl_loop_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct curl_loop *l = arg;
	struct curl_xfer *x = l->finished;
	curl_loop_fn fn;
	void *fnarg;
	CURL *easy;
	CURLcode result;

	(void)fd;
	(void)what;
	if (x == NULL)
		return;
	l->finished = x->next;
	if (l->finished != NULL)
		event_active(l->deliver, EV_TIMEOUT, 0);
	fn = x->fn;
	fnarg = x->arg;
	easy = x->easy;
	result = x->result;
	free(x);
	fn(fnarg, easy, result);
}

static void
curl_loop_sock_event(evutil_socket_t fd, short what, void *arg)
{
	struct curl_sock *cs = arg;
	struct curl_loop *l = cs->loop;
	int flags = 0, running;

	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	/* cs may be freed inside (CURL_POLL_REMOVE): not used after */
	curl_multi_socket_action(l->multi, fd, flags, &running);
	curl_loop_collect(l);
}

static int
curl_loop_sock_cb(
    CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct curl_loop *l = userp;
	struct curl_sock *cs = socketp;
	short kind = EV_PERSIST;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (cs != NULL) {
			event_free(cs->ev);
			free(cs);
			curl_multi_assign(l->multi, s, NULL);
		}
		return 0;
	}
	if (cs == NULL) {
		if ((cs = calloc(1, sizeof(*cs))) == NULL)
			return -1;
		cs->loop = l;
		curl_multi_assign(l->multi, s, cs);
	} else {
		event_free(cs->ev);
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if ((cs->ev = event_new(l->base, s, kind, curl_loop_sock_event, cs)) ==
	        NULL ||
	    event_add(cs->ev, NULL) != 0)
		return -1;
	return 0;
}

static void
curl_loop_timer_event(evutil_socket_t fd, short what, void *arg)
{
	struct curl_loop *l = arg;
	int running;

	(void)fd;
	(void)what;
	curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	curl_loop_collect(l);
}

static int
curl_loop_timer_cb(CURLM *multi, long ms, void *userp)
{
	struct curl_loop *l = userp;
	struct timeval tv;

	(void)multi;
	if (ms < 0) {
		evtimer_del(l->timer);
		return 0;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return evtimer_add(l->timer, &tv) == 0 ? 0 : -1;
}

struct curl_loop *
curl_loop_new(struct event_base *base)
{
	struct curl_loop *l;

	pthread_once(&curl_loop_once, curl_loop_global);
	if (!curl_loop_ready || (l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->base = base;
	if ((l->timer = evtimer_new(base, curl_loop_timer_event, l)) == NULL ||
	    (l->deliver = event_new(base, -1, 0, curl_loop_deliver, l)) ==
	        NULL) {
		curl_loop_free(l);
		return NULL;
	}
	return l;
}

/*
 * The multi handle is made for the first transfer, not at start: libcurl
 * opens a socketpair for it, and a daemon that never fetches a policy or
 * posts a report should not spend two descriptors on that (with a low
 * descriptor limit, test_resources' EMFILE test, they are two clients).
 */
static int
curl_loop_multi(struct curl_loop *l)
{
	if (l->multi != NULL)
		return 0;
	if ((l->multi = curl_multi_init()) == NULL)
		return -1;
	curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, curl_loop_sock_cb);
	curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
	curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, curl_loop_timer_cb);
	curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
	return 0;
}

int
curl_loop_add(struct curl_loop *l, CURL *easy, curl_loop_fn fn, void *arg)
{
	struct curl_xfer *x;

	if (curl_loop_multi(l) < 0 || (x = calloc(1, sizeof(*x))) == NULL)
		return -1;
	x->loop = l;
	x->easy = easy;
	x->fn = fn;
	x->arg = arg;
	if (curl_multi_add_handle(l->multi, easy) != CURLM_OK) {
		free(x);
		return -1;
	}
	x->next = l->running;
	l->running = x;
	return 0;
}

void
curl_loop_cancel(struct curl_loop *l, CURL *easy)
{
	struct curl_xfer **pp, *x;

	if ((pp = curl_loop_find(&l->running, easy)) != NULL) {
		x = *pp;
		*pp = x->next;
		curl_multi_remove_handle(l->multi, easy);
		free(x);
	} else if ((pp = curl_loop_find(&l->finished, easy)) != NULL) {
		x = *pp;
		*pp = x->next;
		free(x);
	}
}

void
curl_loop_free(struct curl_loop *l)
{
	if (l == NULL)
		return;
	while (l->running != NULL) {
		struct curl_xfer *x = l->running;

		l->running = x->next;
		curl_multi_remove_handle(l->multi, x->easy);
		free(x);
	}
	while (l->finished != NULL) {
		struct curl_xfer *x = l->finished;

		l->finished = x->next;
		free(x);
	}
	if (l->multi != NULL)
		curl_multi_cleanup(l->multi);
	if (l->timer != NULL)
		event_free(l->timer);
	if (l->deliver != NULL)
		event_free(l->deliver);
	free(l);
}
