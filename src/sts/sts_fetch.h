/*
 * sts_fetch.h - the HTTPS fetch of MTA-STS policies (RFC 8461 3.3) with
 * libcurl's multi interface driven by the caller's libevent loop: the
 * loop never blocks on a policy server.
 *
 * Every fetch: https only, to https://mta-sts.DOMAIN/.well-known/
 * mta-sts.txt at the addresses the caller resolved (through the daemon's
 * own resolver, never libcurl's), a certificate that chains to
 * TrustedCAFile and names mta-sts.DOMAIN, no redirects, no proxies, at
 * most STS_POLICY_MAX octets of body, HTTP 200 and text/plain only, and a
 * time limit for the whole.
 */
#ifndef SLUICE_STS_FETCH_H
#define SLUICE_STS_FETCH_H

#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct sts_fetcher;
struct sts_fetch;

/* Longest a fetch may take, all in (RFC 8461 3.3: a timeout is needed). */
#define STS_FETCH_TIMEOUT_SEC 20
#define STS_FETCH_CONNECT_SEC 10
/* Addresses given to one fetch. */
#define STS_FETCH_ADDRS_MAX 8

/*
 * ca_file: TrustedCAFile.  port: 443, except in tests (the environment
 * variable SLUICE_MTA_STS_PORT, read by sts.c).  NULL with *why.
 */
struct sts_fetcher *sts_fetcher_new(
    struct event_base *, const char *ca_file, unsigned port, const char **why);
/* Fetches still running are dropped; their callbacks never run. */
void sts_fetcher_free(struct sts_fetcher *);

/*
 * ok: the body (len octets, not NUL-terminated, valid during the call)
 * is a policy to parse; else why says what went wrong ("HTTP 404",
 * "redirect refused", "certificate ...", "larger than 65536 octets",
 * "timed out", ...).  Runs on the loop, never inside sts_fetch_start().
 */
typedef void (*sts_fetch_fn)(
    void *arg, int ok, const char *body, size_t len, const char *why);

/* host: "mta-sts.DOMAIN"; addrs: where it is. NULL when it cannot start. */
struct sts_fetch *sts_fetch_start(struct sts_fetcher *, const char *host,
    const struct sockaddr_storage *addrs, size_t naddrs, sts_fetch_fn,
    void *arg);
/* Before the callback only. */
void sts_fetch_cancel(struct sts_fetch *);

#endif
