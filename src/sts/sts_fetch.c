/*
 * sts_fetch.c - MTA-STS policies over HTTPS, with libcurl's multi
 * interface on the caller's libevent loop (see sts_fetch.h).
 *
 * The glue is libcurl's "multi_socket" API: libcurl tells us which
 * sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to wake it
 * (CURLMOPT_TIMERFUNCTION); we tell it what happened
 * (curl_multi_socket_action).  Nothing here blocks: name resolution is
 * done before (the daemon's resolver, handed over with CURLOPT_RESOLVE,
 * so libcurl never resolves by itself), connects and TLS are libcurl's
 * non-blocking ones.
 *
 * Invariants:
 * - A fetch is on exactly one list: running (in the multi handle) or
 *   ready (finished, waiting for its callback).  Callbacks run from the
 *   "deliver" event, one per activation, never from inside libcurl's
 *   callbacks or sts_fetch_start(), and nothing of the fetcher is
 *   touched after a callback returns (it may free the fetcher).
 * - A body never grows past STS_POLICY_MAX: the write callback stops the
 *   transfer instead.
 *
 * What counts as a policy (RFC 8461 3.3): HTTP 200 (a redirect is a
 * failure, not followed), media type text/plain, a certificate chaining
 * to TrustedCAFile that names mta-sts.DOMAIN (libcurl's checks, with
 * OpenSSL), https only, no proxy, within STS_FETCH_TIMEOUT_SEC.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "sts/sts_fetch.h"
#include "sts/sts_policy.h"

struct sts_fetch {
	TAILQ_ENTRY(sts_fetch) link;
	struct sts_fetcher *f;
	CURL *easy;
	struct curl_slist *resolve;
	sts_fetch_fn fn;
	void *arg;
	int finished;
	char *body;
	size_t len, cap;
	int too_big;
	int ok;
	char host[300];
	char errbuf[CURL_ERROR_SIZE];
	char why[1024];
};

TAILQ_HEAD(sts_fetches, sts_fetch);

struct sts_fetcher {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct event *ev_deliver;
	struct sts_fetches running, ready;
	char *ca_file;
	unsigned port;
};

/* One socket libcurl asked us to watch. */
struct sts_sock {
	struct sts_fetcher *f;
	struct event *ev;
};

static pthread_once_t sts_curl_once = PTHREAD_ONCE_INIT;
static int sts_curl_ok;

static void
sts_curl_init(void)
{
	sts_curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

static void sts_fetch_check(struct sts_fetcher *);

static void
sts_sock_event(evutil_socket_t fd, short what, void *arg)
{
	struct sts_sock *ss = arg;
	struct sts_fetcher *f = ss->f;
	int flags = 0, running;

	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	/* ss may be freed inside (CURL_POLL_REMOVE): not used after. */
	curl_multi_socket_action(f->multi, fd, flags, &running);
	sts_fetch_check(f);
}

static int
sts_sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct sts_fetcher *f = userp;
	struct sts_sock *ss = socketp;
	short kind = EV_PERSIST;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (ss != NULL) {
			event_free(ss->ev);
			free(ss);
			curl_multi_assign(f->multi, s, NULL);
		}
		return 0;
	}
	if (ss == NULL) {
		if ((ss = calloc(1, sizeof(*ss))) == NULL)
			return -1;
		ss->f = f;
		curl_multi_assign(f->multi, s, ss);
	} else {
		event_free(ss->ev);
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if ((ss->ev = event_new(f->base, s, kind, sts_sock_event, ss)) ==
	        NULL ||
	    event_add(ss->ev, NULL) != 0)
		return -1;
	return 0;
}

static void
sts_timer_event(evutil_socket_t fd, short what, void *arg)
{
	struct sts_fetcher *f = arg;
	int running;

	(void)fd;
	(void)what;
	curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	sts_fetch_check(f);
}

static int
sts_timer_cb(CURLM *multi, long ms, void *userp)
{
	struct sts_fetcher *f = userp;
	struct timeval tv;

	(void)multi;
	if (ms < 0)
		return evtimer_del(f->timer);
	/* Never act from inside libcurl: even "now" goes through the loop. */
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return evtimer_add(f->timer, &tv);
}

static size_t
sts_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sts_fetch *ft = arg;
	size_t n = size * nmemb;

	if (n > STS_POLICY_MAX - ft->len) {
		ft->too_big = 1;
		return 0; /* stops the transfer: CURLE_WRITE_ERROR */
	}
	if (ft->len + n > ft->cap) {
		size_t cap = ft->cap ? ft->cap : 4096;
		char *b;

		while (cap < ft->len + n)
			cap *= 2;
		if (cap > STS_POLICY_MAX)
			cap = STS_POLICY_MAX;
		if ((b = realloc(ft->body, cap)) == NULL)
			return 0;
		ft->body = b;
		ft->cap = cap;
	}
	memcpy(ft->body + ft->len, data, n);
	ft->len += n;
	return n;
}

/* "text/plain", with or without parameters (RFC 8461 3.3). */
static int
sts_text_plain(const char *ct)
{
	size_t n = strlen("text/plain");

	return ct != NULL && strncasecmp(ct, "text/plain", n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* Judge a finished transfer; the verdict goes to ft->ok / ft->why. */
static void
sts_fetch_judge(struct sts_fetch *ft, CURLcode rc)
{
	long code = 0;
	char *ct = NULL;

	curl_easy_getinfo(ft->easy, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(ft->easy, CURLINFO_CONTENT_TYPE, &ct);
	if (ft->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
		snprintf(ft->why, sizeof(ft->why),
		    "https://%s/.well-known/mta-sts.txt: larger than %d octets",
		    ft->host, STS_POLICY_MAX);
	} else if (rc != CURLE_OK) {
		snprintf(ft->why, sizeof(ft->why),
		    "https://%s/.well-known/mta-sts.txt: %.400s", ft->host,
		    ft->errbuf[0] ? ft->errbuf : curl_easy_strerror(rc));
	} else if (code >= 300 && code < 400) {
		snprintf(ft->why, sizeof(ft->why),
		    "https://%s/.well-known/mta-sts.txt: HTTP %ld, a redirect "
		    "(not followed, RFC 8461 3.3)",
		    ft->host, code);
	} else if (code != 200) {
		snprintf(ft->why, sizeof(ft->why),
		    "https://%s/.well-known/mta-sts.txt: HTTP %ld", ft->host,
		    code);
	} else if (!sts_text_plain(ct)) {
		snprintf(ft->why, sizeof(ft->why),
		    "https://%s/.well-known/mta-sts.txt: media type %.60s, not "
		    "text/plain",
		    ft->host, ct != NULL ? ct : "(none)");
	} else {
		ft->ok = 1;
	}
}

static void
sts_fetch_check(struct sts_fetcher *f)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(f->multi, &left)) != NULL) {
		struct sts_fetch *ft = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &ft);
		if (ft == NULL)
			continue;
		sts_fetch_judge(ft, msg->data.result);
		curl_multi_remove_handle(f->multi, ft->easy);
		ft->finished = 1;
		TAILQ_REMOVE(&f->running, ft, link);
		TAILQ_INSERT_TAIL(&f->ready, ft, link);
		event_active(f->ev_deliver, EV_TIMEOUT, 1);
	}
}

static void
sts_fetch_free(struct sts_fetch *ft)
{
	if (ft->easy != NULL)
		curl_easy_cleanup(ft->easy);
	curl_slist_free_all(ft->resolve);
	free(ft->body);
	free(ft);
}

static void
sts_deliver_event(evutil_socket_t fd, short what, void *arg)
{
	struct sts_fetcher *f = arg;
	struct sts_fetch *ft = TAILQ_FIRST(&f->ready);

	(void)fd;
	(void)what;
	if (ft == NULL)
		return;
	TAILQ_REMOVE(&f->ready, ft, link);
	if (!TAILQ_EMPTY(&f->ready))
		event_active(f->ev_deliver, EV_TIMEOUT, 1);
	/* Last use of f: the callback may free the fetcher. */
	ft->fn(ft->arg, ft->ok, ft->ok ? ft->body : NULL, ft->ok ? ft->len : 0,
	    ft->ok ? NULL : ft->why);
	sts_fetch_free(ft);
}

struct sts_fetcher *
sts_fetcher_new(struct event_base *base, const char *ca_file, unsigned port,
    const char **why)
{
	struct sts_fetcher *f;

	pthread_once(&sts_curl_once, sts_curl_init);
	if (!sts_curl_ok) {
		*why = "cannot initialise libcurl";
		return NULL;
	}
	if (port < 1 || port > 65535 || (f = calloc(1, sizeof(*f))) == NULL) {
		*why = "out of memory";
		return NULL;
	}
	f->base = base;
	f->port = port;
	TAILQ_INIT(&f->running);
	TAILQ_INIT(&f->ready);
	*why = "cannot set up libcurl";
	if ((f->ca_file = strdup(ca_file != NULL ? ca_file : "")) == NULL ||
	    (f->multi = curl_multi_init()) == NULL ||
	    (f->timer = evtimer_new(base, sts_timer_event, f)) == NULL ||
	    (f->ev_deliver = event_new(base, -1, 0, sts_deliver_event, f)) ==
	        NULL ||
	    curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, sts_sock_cb) !=
	        CURLM_OK ||
	    curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f) != CURLM_OK ||
	    curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, sts_timer_cb) !=
	        CURLM_OK ||
	    curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f) != CURLM_OK) {
		sts_fetcher_free(f);
		return NULL;
	}
	*why = NULL;
	return f;
}

void
sts_fetcher_free(struct sts_fetcher *f)
{
	struct sts_fetch *ft;

	if (f == NULL)
		return;
	while ((ft = TAILQ_FIRST(&f->running)) != NULL) {
		TAILQ_REMOVE(&f->running, ft, link);
		curl_multi_remove_handle(f->multi, ft->easy);
		sts_fetch_free(ft);
	}
	while ((ft = TAILQ_FIRST(&f->ready)) != NULL) {
		TAILQ_REMOVE(&f->ready, ft, link);
		sts_fetch_free(ft);
	}
	/* libcurl closes its sockets here and calls sts_sock_cb to drop
	 * their events. */
	if (f->multi != NULL)
		curl_multi_cleanup(f->multi);
	if (f->timer != NULL)
		event_free(f->timer);
	if (f->ev_deliver != NULL)
		event_free(f->ev_deliver);
	free(f->ca_file);
	free(f);
}

/* "mta-sts.example:443:192.0.2.1,[2001:db8::1]" for CURLOPT_RESOLVE. */
static int
sts_resolve_entry(const char *host, unsigned port,
    const struct sockaddr_storage *addrs, size_t n, char *out, size_t len)
{
	size_t w;
	int k = snprintf(out, len, "%s:%u:", host, port);

	if (k < 0 || (size_t)k >= len)
		return -1;
	w = (size_t)k;
	for (size_t i = 0; i < n && i < STS_FETCH_ADDRS_MAX; i++) {
		char a[INET6_ADDRSTRLEN];

		if (addrs[i].ss_family == AF_INET6)
			inet_ntop(AF_INET6,
			    &((const struct sockaddr_in6 *)&addrs[i])
			         ->sin6_addr,
			    a, sizeof(a));
		else if (addrs[i].ss_family == AF_INET)
			inet_ntop(AF_INET,
			    &((const struct sockaddr_in *)&addrs[i])->sin_addr,
			    a, sizeof(a));
		else
			continue;
		k = snprintf(out + w, len - w,
		    addrs[i].ss_family == AF_INET6 ? "%s[%s]" : "%s%s",
		    out[w - 1] == ':' ? "" : ",", a);
		if (k < 0 || (size_t)k >= len - w)
			return -1;
		w += (size_t)k;
	}
	return out[w - 1] == ':' ? -1 : 0; /* no address at all */
}

struct sts_fetch *
sts_fetch_start(struct sts_fetcher *f, const char *host,
    const struct sockaddr_storage *addrs, size_t naddrs, sts_fetch_fn fn,
    void *arg)
{
	struct sts_fetch *ft;
	char url[400], entry[600];
	CURL *e;
	int ok = 1;

	if (fn == NULL || strlen(host) >= sizeof(ft->host) ||
	    (ft = calloc(1, sizeof(*ft))) == NULL)
		return NULL;
	ft->f = f;
	ft->fn = fn;
	ft->arg = arg;
	snprintf(ft->host, sizeof(ft->host), "%s", host);
	if (f->port == 443)
		snprintf(url, sizeof(url), "https://%s/.well-known/mta-sts.txt",
		    host);
	else
		snprintf(url, sizeof(url),
		    "https://%s:%u/.well-known/mta-sts.txt", host, f->port);
	if (sts_resolve_entry(
	        host, f->port, addrs, naddrs, entry, sizeof(entry)) < 0 ||
	    (ft->resolve = curl_slist_append(NULL, entry)) == NULL ||
	    (e = ft->easy = curl_easy_init()) == NULL) {
		sts_fetch_free(ft);
		return NULL;
	}
#define SET(opt, val) ok &= curl_easy_setopt(e, opt, val) == CURLE_OK
	SET(CURLOPT_URL, url);
	SET(CURLOPT_RESOLVE, ft->resolve);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_PROXY, ""); /* never the environment's proxies */
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_CAINFO, f->ca_file[0] != '\0' ? f->ca_file : NULL);
	SET(CURLOPT_CAPATH, NULL);
	SET(CURLOPT_TIMEOUT, (long)STS_FETCH_TIMEOUT_SEC);
	SET(CURLOPT_CONNECTTIMEOUT, (long)STS_FETCH_CONNECT_SEC);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)STS_POLICY_MAX);
	SET(CURLOPT_WRITEFUNCTION, sts_write_cb);
	SET(CURLOPT_WRITEDATA, ft);
	SET(CURLOPT_ERRORBUFFER, ft->errbuf);
	SET(CURLOPT_PRIVATE, ft);
	SET(CURLOPT_USERAGENT, "Sluice MTA-STS (RFC 8461)");
#undef SET
	if (!ok || curl_multi_add_handle(f->multi, e) != CURLM_OK) {
		sts_fetch_free(ft);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&f->running, ft, link);
	return ft;
}

void
sts_fetch_cancel(struct sts_fetch *ft)
{
	struct sts_fetcher *f;

	if (ft == NULL)
		return;
	f = ft->f;
	if (ft->finished) {
		TAILQ_REMOVE(&f->ready, ft, link);
	} else {
		TAILQ_REMOVE(&f->running, ft, link);
		curl_multi_remove_handle(f->multi, ft->easy);
	}
	sts_fetch_free(ft);
}
