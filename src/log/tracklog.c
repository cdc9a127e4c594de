/*
 * tracklog.c - the message tracking log (see tracklog.h).
 *
 * The columns are Exchange's, in Exchange's order (Exchange 2013 and
 * later), so that tools written for Exchange's logs read ours: the fields
 * Sluice has no value for (network-message-id, tenant-id, ...) stay empty.
 * Sluice's TLS outcome has no Exchange field; it goes last, as "tls",
 * where a reader that maps columns by the "#Fields:" line finds it and
 * one that counts Exchange's columns is not disturbed.  Numbers are
 * written as decimal; everything else goes through csvlog_field(), which
 * quotes and escapes what a peer could have chosen.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/csvlog.h"
#include "log/tracklog.h"

const char tracklog_fields[] =
    "date-time,client-ip,client-hostname,server-ip,server-hostname,"
    "source-context,connector-id,source,event-id,internal-message-id,"
    "message-id,network-message-id,recipient-address,recipient-status,"
    "total-bytes,recipient-count,related-recipient-address,reference,"
    "message-subject,sender-address,return-path,message-info,"
    "directionality,tenant-id,original-client-ip,original-server-ip,"
    "custom-data,transport-traffic-type,log-id,schema-version,tls";

/* What schema-version says: the layout above, Sluice's first. */
#define TRACKLOG_SCHEMA "Sluice.1"

struct tracklog {
	struct csvlog *csv;
	int subjects;
};

struct tracklog *
tracklog_open(const char *logdir)
{
	struct tracklog *t;
	char dir[4096];

	snprintf(dir, sizeof(dir), "%s/MessageTracking", logdir);
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->subjects = 1;
	t->csv =
	    csvlog_open(dir, "MSGTRK", "Message Tracking Log", tracklog_fields);
	if (t->csv == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

void
tracklog_subjects(struct tracklog *t, int enabled)
{
	t->subjects = enabled;
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

const char *
tracklog_directionality(const char *auth_as)
{
	return auth_as != NULL && strcmp(auth_as, "Internal") == 0
	           ? "Originating"
	           : "Incoming";
}

void
tracklog_ip(const char *endpoint, char *out, size_t len)
{
	const char *end;

	if (endpoint == NULL)
		endpoint = "";
	if (endpoint[0] == '[' && (end = strchr(endpoint, ']')) != NULL)
		snprintf(
		    out, len, "%.*s", (int)(end - endpoint - 1), endpoint + 1);
	else if ((end = strrchr(endpoint, ':')) != NULL &&
	         strchr(endpoint, ':') == end)
		snprintf(out, len, "%.*s", (int)(end - endpoint), endpoint);
	else
		snprintf(out, len, "%s", endpoint);
}

static void
tracklog_str(FILE *fp, const char *s)
{
	csvlog_field(fp, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

static void
tracklog_num(FILE *fp, int64_t n)
{
	char num[32];

	snprintf(num, sizeof(num), "%" PRId64, n);
	tracklog_str(fp, num);
}

void
tracklog_write(struct tracklog *t, const struct track_event *ev)
{
	static const struct track_msg none;
	const struct track_msg *m = ev->msg != NULL ? ev->msg : &none;
	char return_path[300];
	FILE *fp;

	if (t == NULL || (fp = csvlog_begin(t->csv)) == NULL)
		return;
	/* RFC 5321's reverse-path, "<>" for the null sender. */
	snprintf(return_path, sizeof(return_path), "%s",
	    m->sender == NULL || m->sender[0] == '\0' ? "<>" : m->sender);
	tracklog_str(fp, ev->client_ip);
	tracklog_str(fp, ev->client_hostname);
	tracklog_str(fp, ev->server_ip);
	tracklog_str(fp, ev->server_hostname);
	tracklog_str(fp, ev->source_context);
	tracklog_str(fp, ev->connector);
	tracklog_str(fp, ev->source);
	tracklog_str(fp, ev->event);
	tracklog_str(fp, m->internal_id);
	tracklog_str(fp, m->message_id);
	tracklog_str(fp, NULL); /* network-message-id */
	tracklog_str(fp, ev->recipient);
	tracklog_str(fp, ev->status);
	if (ev->msg != NULL) {
		tracklog_num(fp, m->size);
		tracklog_num(fp, m->rcpt_count);
	} else {
		tracklog_str(fp, NULL);
		tracklog_str(fp, NULL);
	}
	tracklog_str(fp, ev->related);
	tracklog_str(fp, ev->reference);
	tracklog_str(fp, t->subjects ? m->subject : NULL);
	tracklog_str(fp, m->sender);
	tracklog_str(fp, return_path);
	tracklog_str(fp, NULL); /* message-info */
	tracklog_str(fp, m->directionality);
	tracklog_str(fp, NULL); /* tenant-id */
	tracklog_str(fp, m->client_ip);
	tracklog_str(fp, NULL); /* original-server-ip */
	tracklog_str(fp, ev->custom_data);
	tracklog_str(fp, NULL); /* transport-traffic-type */
	tracklog_str(fp, NULL); /* log-id */
	tracklog_str(fp, TRACKLOG_SCHEMA);
	tracklog_str(fp, ev->tls);
	csvlog_end(t->csv);
}

void
tracklog_hold(struct tracklog *t, int hold)
{
	if (t != NULL)
		csvlog_hold(t->csv, hold);
}
