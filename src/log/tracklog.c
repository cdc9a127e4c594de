/*
 * tracklog.c - the message tracking log (see tracklog.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/csvlog.h"
#include "log/tracklog.h"

struct tracklog {
	struct csvlog *csv;
};

struct tracklog *
tracklog_open(const char *logdir)
{
	struct tracklog *t;
	char dir[4096];

	snprintf(dir, sizeof(dir), "%s/MessageTracking", logdir);
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->csv = csvlog_open(dir, "MSGTRK", "Message Tracking Log",
	    "date-time,event-id,message-id,sender-address,recipient-address,"
	    "connector-id,next-hop,tls,status-text");
	if (t->csv == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

void
tracklog_reopen(struct tracklog *t)
{
	csvlog_reopen(t->csv);
}

void
tracklog_retain(struct tracklog *t, unsigned max_age, uint64_t max_size)
{
	csvlog_retain(t->csv, max_age, max_size);
}

void
tracklog_close(struct tracklog *t)
{
	if (t == NULL)
		return;
	csvlog_close(t->csv);
	free(t);
}

void
tracklog_write(struct tracklog *t, const struct track_event *ev)
{
	const char *f[] = {ev->event, ev->message_id, ev->sender, ev->recipient,
	    ev->connector, ev->next_hop, ev->tls, ev->status};
	FILE *fp = csvlog_begin(t->csv);

	if (fp == NULL)
		return;
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		csvlog_field(fp, f[i] != NULL ? f[i] : "",
		    f[i] != NULL ? strlen(f[i]) : 0);
	csvlog_end(t->csv);
}
