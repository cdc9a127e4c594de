/*
 * deferrals.h - the most recent deferrals with their reasons, for the
 * status page: a ring of DEFERRALS_MAX entries in memory, written by
 * outcome.c when a deferral is durable, read newest first.  Nothing is
 * stored: after a restart the list starts empty (the queue itself still
 * says why each waiting recipient waits: `sluicectl messages`).
 */
#ifndef SLUICE_DEFERRALS_H
#define SLUICE_DEFERRALS_H

#include <stddef.h>
#include <time.h>

#define DEFERRALS_MAX 100

struct deferral {
	time_t when;
	char queue_id[32];
	char recipient[257];
	char queue[256]; /* the delivery queue (next hop) */
	char reason[400];
};

struct deferrals {
	struct deferral ring[DEFERRALS_MAX];
	size_t next;  /* where the next one goes */
	size_t count; /* held, at most DEFERRALS_MAX */
};

void deferrals_add(struct deferrals *, time_t when, const char *queue_id,
    const char *recipient, const char *queue, const char *reason);
/* The i-th newest (0 is the last added); NULL past the end. */
const struct deferral *deferrals_get(const struct deferrals *, size_t i);

#endif
