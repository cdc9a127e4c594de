/*
 * tlsrpt_https.h - a TLS report POSTed to an https: rua (RFC 8460 5.4):
 * the gzip'd JSON as application/tlsrpt+gzip, to addresses the caller
 * resolved, the server's certificate checked against TrustedCAFile and
 * the URL's host, no redirect followed, bounded in time.
 */
#ifndef SLUICE_TLSRPT_HTTPS_H
#define SLUICE_TLSRPT_HTTPS_H

#include <stddef.h>
#include <sys/socket.h>

struct curl_loop;
struct tlsrpt_post;

/* The whole POST may take this long. */
#define TLSRPT_POST_TIMEOUT_SEC 60
#define TLSRPT_POST_CONNECT_SEC 20
/* Addresses of the host given to libcurl at most. */
#define TLSRPT_POST_ADDRS_MAX 8

/* ok: a 2xx came back; else why says what happened ("HTTP 500", ...). */
typedef void (*tlsrpt_post_fn)(void *arg, int ok, const char *why);

/*
 * The host and port of an https: URL (default 443); -1 when it is no
 * https URL we would post to.
 */
int tlsrpt_https_target(
    const char *url, char *host, size_t hostlen, unsigned *port);

/* NULL when it cannot start; fn runs on the loop, never inside. */
struct tlsrpt_post *tlsrpt_post_start(struct curl_loop *, const char *url,
    const struct sockaddr_storage *addrs, size_t naddrs, const char *ca_file,
    const void *body, size_t len, tlsrpt_post_fn, void *arg);
/* Before the callback only. */
void tlsrpt_post_cancel(struct tlsrpt_post *);

#endif
