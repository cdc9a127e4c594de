/*
 * spool_sts.h - the MTA-STS policy cache in the queue database (RFC 8461
 * 5: policies are cached up to max_age and survive restarts).
 *
 * One row per policy domain: the TXT id the policy was fetched under,
 * the policy text exactly as fetched (parsed again when read, so a row
 * is never trusted more than a fresh fetch), when it was fetched and
 * when it expires.
 */
#ifndef SLUICE_SPOOL_STS_H
#define SLUICE_SPOOL_STS_H

#include <stddef.h>
#include <time.h>

#include "spool/spool.h"

/* Made with the queue's own tables (spool.c). */
extern const char spool_sts_schema[];

struct spool_sts_row {
	const char *domain; /* lower case */
	const char *id;     /* the TXT record's id */
	const char *policy; /* the policy text as fetched */
	size_t policy_len;
	time_t fetched;
	time_t expires; /* fetched + max_age */
};

/* Insert or replace a domain's row, through the committer. */
int spool_sts_put(
    struct spool *, const struct spool_sts_row *, spool_done_fn, void *arg);

/* Every row, on the loop thread; fn returns 0 to go on. */
int spool_sts_load(
    struct spool *, int (*fn)(void *, const struct spool_sts_row *), void *arg);

/*
 * The same from a queue directory's database opened read-only, without a
 * running spool (sluicectl get-mtastspolicy).  domain NULL: every row.
 * -1 with *why when the database cannot be read.
 */
int spool_sts_read_dir(const char *queue_dir, const char *domain,
    int (*fn)(void *, const struct spool_sts_row *), void *arg,
    const char **why);

#endif
