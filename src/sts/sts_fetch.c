/*
 * sts_fetch.c - MTA-STS policies over HTTPS, with libcurl's multi
 * interface on the caller's libevent loop (see sts_fetch.h).
 *
 * The glue is util/curl_loop.c (libcurl's "multi_socket" API on the
 * loop; callbacks one loop turn later, never inside libcurl).  Nothing
 * here blocks: name resolution is done before (the daemon's resolver,
 * handed over with CURLOPT_RESOLVE, so libcurl never resolves by
 * itself), connects and TLS are libcurl's non-blocking ones.
 *
 * Invariants:
 * - A fetch is on the running list from its start to its callback (or
 *   its cancel); nothing of the fetcher is touched after a callback
 *   returns (it may free the fetcher).
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <curl/curl.h>

#include "sts/sts_fetch.h"
#include "sts/sts_policy.h"
#include "util/curl_loop.h"

struct sts_fetch {
	TAILQ_ENTRY(sts_fetch) link;
	struct sts_fetcher *f;
	CURL *easy;
	struct curl_slist *resolve;
	sts_fetch_fn fn;
	void *arg;
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
	struct curl_loop *loop;
	struct sts_fetches running;
	char *ca_file;
	unsigned port;
};

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
sts_fetch_free(struct sts_fetch *ft)
{
	if (ft->easy != NULL)
		curl_easy_cleanup(ft->easy);
	curl_slist_free_all(ft->resolve);
	free(ft->body);
	free(ft);
}

/* The transfer is over (curl_loop, a loop turn later): judge, tell. */
static void
sts_fetch_done(void *arg, CURL *easy, CURLcode result)
{
	struct sts_fetch *ft = arg;

	(void)easy;
	TAILQ_REMOVE(&ft->f->running, ft, link);
	sts_fetch_judge(ft, result);
	/* Last use of the fetcher: the callback may free it. */
	ft->fn(ft->arg, ft->ok, ft->ok ? ft->body : NULL, ft->ok ? ft->len : 0,
	    ft->ok ? NULL : ft->why);
	sts_fetch_free(ft);
}

struct sts_fetcher *
sts_fetcher_new(struct event_base *base, const char *ca_file, unsigned port,
    const char **why)
{
	struct sts_fetcher *f;

	if (port < 1 || port > 65535 || (f = calloc(1, sizeof(*f))) == NULL) {
		*why = "out of memory";
		return NULL;
	}
	f->port = port;
	TAILQ_INIT(&f->running);
	if ((f->ca_file = strdup(ca_file != NULL ? ca_file : "")) == NULL ||
	    (f->loop = curl_loop_new(base)) == NULL) {
		*why = f->ca_file == NULL ? "out of memory"
		                          : "cannot set up libcurl";
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
	/* the transfers leave libcurl first, then their handles go */
	curl_loop_free(f->loop);
	while ((ft = TAILQ_FIRST(&f->running)) != NULL) {
		TAILQ_REMOVE(&f->running, ft, link);
		sts_fetch_free(ft);
	}
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
	SET(CURLOPT_USERAGENT, "Sluice MTA-STS (RFC 8461)");
#undef SET
	if (!ok || curl_loop_add(f->loop, e, sts_fetch_done, ft) < 0) {
		sts_fetch_free(ft);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&f->running, ft, link);
	return ft;
}

void
sts_fetch_cancel(struct sts_fetch *ft)
{
	if (ft == NULL)
		return;
	curl_loop_cancel(ft->f->loop, ft->easy);
	TAILQ_REMOVE(&ft->f->running, ft, link);
	sts_fetch_free(ft);
}
