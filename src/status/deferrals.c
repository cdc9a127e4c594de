/*
 * deferrals.c - the ring of recent deferrals (see deferrals.h).  Fixed
 * size, no allocation: a busy destination that defers thousands of
 * messages a minute overwrites the oldest entries and nothing grows.
 */
#include <stdio.h>
#include <string.h>

#include "status/deferrals.h"

/* Copy s into out, control characters as '?' (they reach a web page). */
static void
deferrals_copy(char *out, size_t len, const char *s)
{
	size_t n = 0;

	for (; s != NULL && s[n] != '\0' && n + 1 < len; n++) {
		unsigned char ch = (unsigned char)s[n];

		out[n] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	out[n] = '\0';
}

void
deferrals_add(struct deferrals *d, time_t when, const char *queue_id,
    const char *recipient, const char *queue, const char *reason)
{
	struct deferral *e;

	if (d == NULL)
		return;
	e = &d->ring[d->next];
	e->when = when;
	deferrals_copy(e->queue_id, sizeof(e->queue_id), queue_id);
	deferrals_copy(e->recipient, sizeof(e->recipient), recipient);
	deferrals_copy(e->queue, sizeof(e->queue), queue);
	deferrals_copy(e->reason, sizeof(e->reason), reason);
	d->next = (d->next + 1) % DEFERRALS_MAX;
	if (d->count < DEFERRALS_MAX)
		d->count++;
}

const struct deferral *
deferrals_get(const struct deferrals *d, size_t i)
{
	if (d == NULL || i >= d->count)
		return NULL;
	return &d->ring[(d->next + DEFERRALS_MAX - 1 - i) % DEFERRALS_MAX];
}
