/*
 * tlsrpt_send.h - the daily sending of TLS reports (RFC 8460 5): for
 * each domain with sessions on the day before that publishes an
 * _smtp._tls record, the day's report to each of its rua addresses,
 * https: by POST, mailto: through our own queue; each (day, domain, rua)
 * once, failures retried with pauses (see docs/tls.md).
 */
#ifndef SLUICE_TLSRPT_SEND_H
#define SLUICE_TLSRPT_SEND_H

struct buf;
struct daemon;
struct tlsrpt_sender;

/* Attempts per (day, domain, rua) at most. */
#define TLSRPT_SEND_ATTEMPTS 6
/* The first pause after a failed attempt; each next one is twice. */
#define TLSRPT_SEND_PAUSE_SEC 600
/* The daily run starts this long after midnight UTC ... */
#define TLSRPT_SEND_AFTER_SEC (15 * 60)
/* ... and the sender looks whether something is due this often. */
#define TLSRPT_SEND_TICK_SEC 300

/* New mail was stored (a mailto: report): the queue looks for it. */
typedef void (*tlsrpt_stored_fn)(void *arg);

/* NULL when out of memory. */
struct tlsrpt_sender *tlsrpt_sender_new(
    struct daemon *, tlsrpt_stored_fn, void *stored_arg);
/*
 * Before the control socket and the queue close: a run under way stops
 * (what is already handed to the queue's committer still completes), and
 * the administrators waiting for one hear that the daemon is stopping.
 */
void tlsrpt_sender_free(struct tlsrpt_sender *);

/*
 * A run now, as the daily one but for any day (`sluicectl tls-report
 * --send`): pauses between attempts are not waited for (a report sent
 * stays sent, an address given up stays given up).  domain "" for
 * every domain.  fn gets a line per domain and address, on the loop,
 * after the run (runs wait for each other).  -1 when it cannot start.
 */
typedef void (*tlsrpt_run_fn)(void *arg, struct buf *lines);
int tlsrpt_sender_run(struct tlsrpt_sender *, const char *day,
    const char *domain, tlsrpt_run_fn, void *arg);

/* The pause before attempt n+1 after n failed ones (pure, for tests). */
long tlsrpt_send_pause(unsigned failed);

#endif
