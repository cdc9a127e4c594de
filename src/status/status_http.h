/*
 * status_http.h - the status listener ([Transport] StatusListen): a
 * small HTTP server on loopback addresses, libevent's evhttp on the
 * daemon's event loop, serving the status page at / and Prometheus
 * metrics at /metrics.  Read-only: GET and HEAD only.
 */
#ifndef SLUICE_STATUS_HTTP_H
#define SLUICE_STATUS_HTTP_H

#include <stddef.h>

struct buf;
struct conf_binding;
struct daemon;
struct qmgr;
struct server;
struct status_http;

/*
 * Listen on every binding (all loopback: conf_validate.c refuses
 * others), to show the daemon, its receiving side and its queue (through
 * the queue manager, which may be NULL).  NULL with *why when one cannot
 * be bound; nothing is left open then.
 */
struct status_http *status_http_start(struct daemon *, struct server *,
    struct qmgr *, const struct conf_binding *, size_t n, char *why,
    size_t whylen);
void status_http_stop(struct status_http *);

/* Does this listener serve exactly these bindings (for a reload)? */
int status_http_same(
    const struct status_http *, const struct conf_binding *, size_t n);

/*
 * Is a Host header a loopback name or address, with or without a port
 * ("localhost", "127.x.y.z", "[::1]")?  Others are refused (DNS
 * rebinding).
 */
int status_http_host_allowed(const char *host);

/*
 * The queues (Get-Queue) are read from the queue database at most every
 * STATUS_QUEUES_SECONDS, for the page and the metrics together, on a
 * thread of their own (status_queues.c): the walk of every waiting
 * recipient costs as much as the queue is long, and a scrape every
 * second of a queue of 50000 messages had cost a fifth more CPU per
 * message received.
 */
#define STATUS_QUEUES_SECONDS 10
/*
 * ... and, for a deep queue, no more often than every
 * STATUS_QUEUES_CPU_SHARE times the CPU time the last reading took: at
 * most 1% of a core however long the queue.
 */
#define STATUS_QUEUES_CPU_SHARE 100

#endif
