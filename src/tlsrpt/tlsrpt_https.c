/*
 * tlsrpt_https.c - POSTing a TLS report (see tlsrpt_https.h) with
 * libcurl on the daemon's loop (util/curl_loop.c).
 *
 * The URL comes from a domain's DNS, so it is treated as hostile: https
 * only (also for redirects, which are not followed anyway), the host's
 * addresses are the ones the daemon's resolver found (CURLOPT_RESOLVE:
 * libcurl resolves nothing itself and cannot be pointed elsewhere), no
 * proxy from the environment, the certificate checked (chain to
 * TrustedCAFile, name = the URL's host), the answer's body read only up
 * to TLSRPT_POST_ANSWER_MAX and thrown away.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tlsrpt/tlsrpt_https.h"
#include "util/addr.h"
#include "util/curl_loop.h"
#include "version.h"

/* What the server may answer in its body; past it, the transfer stops. */
#define TLSRPT_POST_ANSWER_MAX (64 * 1024)

struct tlsrpt_post {
	struct curl_loop *loop;
	CURL *easy;
	struct curl_slist *resolve, *headers;
	tlsrpt_post_fn fn;
	void *arg;
	size_t answered;
	char errbuf[CURL_ERROR_SIZE];
};

int
tlsrpt_https_target(const char *url, char *host, size_t hostlen, unsigned *port)
{
	CURLU *u = curl_url();
	char *h = NULL, *p = NULL, *scheme = NULL;
	int rc = -1;

	if (u == NULL)
		return -1;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    strcasecmp(scheme, "https") != 0 ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
	    strlen(h) >= hostlen || h[0] == '[')
		goto out;
	*port = 443;
	if (curl_url_get(u, CURLUPART_PORT, &p, 0) == CURLUE_OK) {
		char *end;
		unsigned long v = strtoul(p, &end, 10);

		if (*end != '\0' || v == 0 || v > 65535)
			goto out;
		*port = (unsigned)v;
	}
	snprintf(host, hostlen, "%s", h);
	rc = 0;
out:
	curl_free(scheme);
	curl_free(h);
	curl_free(p);
	curl_url_cleanup(u);
	return rc;
}

static size_t
tlsrpt_post_answer(char *ptr, size_t size, size_t n, void *arg)
{
	struct tlsrpt_post *p = arg;

	(void)ptr;
	if (p->answered + size * n > TLSRPT_POST_ANSWER_MAX)
		return 0; /* stops the transfer: CURLE_WRITE_ERROR */
	p->answered += size * n;
	return size * n;
}

static void
tlsrpt_post_free(struct tlsrpt_post *p)
{
	curl_easy_cleanup(p->easy);
	curl_slist_free_all(p->resolve);
	curl_slist_free_all(p->headers);
	free(p);
}

static void
tlsrpt_post_done(void *arg, CURL *easy, CURLcode result)
{
	struct tlsrpt_post *p = arg;
	long code = 0;
	char why[CURL_ERROR_SIZE + 64];

	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
	if (result != CURLE_OK)
		snprintf(why, sizeof(why), "%s",
		    p->errbuf[0] != '\0' ? p->errbuf
		                         : curl_easy_strerror(result));
	else
		snprintf(why, sizeof(why), "HTTP %ld", code);
	p->fn(p->arg, result == CURLE_OK && code >= 200 && code < 300, why);
	tlsrpt_post_free(p);
}

struct tlsrpt_post *
tlsrpt_post_start(struct curl_loop *loop, const char *url,
    const struct sockaddr_storage *addrs, size_t naddrs, const char *ca_file,
    const void *body, size_t len, tlsrpt_post_fn fn, void *arg)
{
	struct tlsrpt_post *p;
	char host[256], entry[1024], ua[64];
	unsigned port;
	size_t n;

	if (naddrs == 0 ||
	    tlsrpt_https_target(url, host, sizeof(host), &port) < 0 ||
	    (p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->loop = loop;
	p->fn = fn;
	p->arg = arg;
	if ((p->easy = curl_easy_init()) == NULL)
		goto fail;
	/* "host:port:addr,addr": libcurl's resolver is never asked */
	n = (size_t)snprintf(entry, sizeof(entry), "%s:%u:", host, port);
	for (size_t i = 0, k = 0; i < naddrs && i < TLSRPT_POST_ADDRS_MAX;
	     i++) {
		char ip[ADDR_IP_MAX];

		if (addrs[i].ss_family != AF_INET &&
		    addrs[i].ss_family != AF_INET6)
			continue;
		addr_ip((const struct sockaddr *)&addrs[i], ip, sizeof(ip));
		n += (size_t)snprintf(entry + n,
		    n < sizeof(entry) ? sizeof(entry) - n : 0, "%s%s%s%s",
		    k++ > 0 ? "," : "", strchr(ip, ':') != NULL ? "[" : "", ip,
		    strchr(ip, ':') != NULL ? "]" : "");
	}
	if (n >= sizeof(entry) ||
	    (p->resolve = curl_slist_append(NULL, entry)) == NULL ||
	    (p->headers = curl_slist_append(
	         NULL, "Content-Type: application/tlsrpt+gzip")) == NULL)
		goto fail;
	snprintf(ua, sizeof(ua), "Sluice/%s (TLS-RPT)", SLUICE_VERSION);
	curl_easy_setopt(p->easy, CURLOPT_URL, url);
	curl_easy_setopt(p->easy, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(p->easy, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(p->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(p->easy, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(p->easy, CURLOPT_RESOLVE, p->resolve);
	curl_easy_setopt(p->easy, CURLOPT_HTTPHEADER, p->headers);
	curl_easy_setopt(p->easy, CURLOPT_USERAGENT, ua);
	curl_easy_setopt(p->easy, CURLOPT_POST, 1L);
	curl_easy_setopt(p->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(p->easy, CURLOPT_COPYPOSTFIELDS, body);
	curl_easy_setopt(p->easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(p->easy, CURLOPT_SSL_VERIFYHOST, 2L);
	if (ca_file != NULL && ca_file[0] != '\0')
		curl_easy_setopt(p->easy, CURLOPT_CAINFO, ca_file);
	curl_easy_setopt(
	    p->easy, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(
	    p->easy, CURLOPT_TIMEOUT, (long)TLSRPT_POST_TIMEOUT_SEC);
	curl_easy_setopt(
	    p->easy, CURLOPT_CONNECTTIMEOUT, (long)TLSRPT_POST_CONNECT_SEC);
	curl_easy_setopt(p->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, tlsrpt_post_answer);
	curl_easy_setopt(p->easy, CURLOPT_WRITEDATA, p);
	curl_easy_setopt(p->easy, CURLOPT_ERRORBUFFER, p->errbuf);
	if (curl_loop_add(loop, p->easy, tlsrpt_post_done, p) < 0)
		goto fail;
	return p;
fail:
	tlsrpt_post_free(p);
	return NULL;
}

void
tlsrpt_post_cancel(struct tlsrpt_post *p)
{
	curl_loop_cancel(p->loop, p->easy);
	tlsrpt_post_free(p);
}
