/*
 * maildir.h - local delivery to Maildir mailboxes (Authoritative accepted
 * domains), on a worker thread so that fsync never blocks the event loop.
 */
#ifndef SLUICE_MAILDIR_H
#define SLUICE_MAILDIR_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct maildir;
struct spool;

struct maildir_job {
	int64_t rcpt_id;
	int64_t message_id;
	char queue_id[32];
	char sender[257];
	char addr[257];
	char pattern[1024]; /* the domain's Mailboxes, %d and %u unexpanded */
	unsigned attempts;
	unsigned retry_interval; /* seconds before the next try on failure */
	/* for the queue manager's notices (not used by the agent) */
	time_t received;
	unsigned notify;
	char orcpt[520];
};

/*
 * done() runs on the event loop (through the spool) once the outcome is
 * durable: delivered, or still pending with error set.  recorded is 0
 * when the outcome could not be stored: the recipient is as it was and
 * will be delivered again.
 */
typedef void (*maildir_done_fn)(void *arg, const struct maildir_job *,
    int delivered, int recorded, const char *error);

struct maildir *maildir_start(struct spool *, maildir_done_fn, void *arg);
/*
 * Stop the worker (the job in hand is finished).  Results it handed to
 * the spool still call back until the spool is closed; only then may
 * maildir_free() release it.
 */
void maildir_stop(struct maildir *);
void maildir_free(struct maildir *);
/* Hand a job to the worker; -1 when its queue is full (try later). */
int maildir_submit(struct maildir *, const struct maildir_job *);

/*
 * Expand a Mailboxes pattern for user@domain into out.  Refuses local
 * parts that could leave the mail root ("/", a leading ".", control
 * characters).  Exposed for the unit tests.
 */
int maildir_path(const char *pattern, const char *addr, char *out, size_t len);

#endif
