/*
 * curl_loop.h - libcurl's multi interface driven by a libevent loop: the
 * daemon runs HTTPS transfers (TLS reports by POST, MTA-STS policy
 * fetches) without ever blocking its loop.  The caller prepares an easy handle
 * with every option it needs; curl_loop runs it and calls back once, on the
 * loop, never from inside libcurl or curl_loop_add().
 */
#ifndef SLUICE_CURL_LOOP_H
#define SLUICE_CURL_LOOP_H

#include <curl/curl.h>

struct event_base;
struct curl_loop;

/* result: libcurl's code for the transfer (CURLE_OK: it completed). */
typedef void (*curl_loop_fn)(void *arg, CURL *easy, CURLcode result);

/* NULL when libcurl cannot be initialised. */
struct curl_loop *curl_loop_new(struct event_base *);
/* Transfers still running are dropped: their callbacks never run. */
void curl_loop_free(struct curl_loop *);

/*
 * Run the transfer; fn(arg, easy, result) when it is over.  The easy
 * handle stays the caller's (clean it up in the callback, or after
 * curl_loop_cancel).  -1 when it cannot be started.
 */
int curl_loop_add(struct curl_loop *, CURL *easy, curl_loop_fn, void *arg);
/* Stop a running transfer; its callback is not called. */
void curl_loop_cancel(struct curl_loop *, CURL *easy);

#endif
