/*
 * protolog.c - the protocol log (see protolog.h), one row per event of a
 * session, for connectors with ProtocolLoggingLevel = Verbose.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/csvlog.h"
#include "log/protolog.h"

struct protolog {
	struct csvlog *csv;
};

struct protolog *
protolog_open(const char *logdir, enum protolog_kind kind)
{
	struct protolog *p;
	char dir[4096];
	int recv = kind == PROTOLOG_RECEIVE;

	snprintf(dir, sizeof(dir), "%s/ProtocolLog/%s", logdir,
	    recv ? "SmtpReceive" : "SmtpSend");
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->csv = csvlog_open(dir, recv ? "RECV" : "SEND",
	    recv ? "SMTP Receive Protocol Log" : "SMTP Send Protocol Log",
	    "date-time,connector-id,session-id,sequence-number,"
	    "local-endpoint,remote-endpoint,event,data,context");
	if (p->csv == NULL) {
		free(p);
		return NULL;
	}
	return p;
}

void
protolog_reopen(struct protolog *p)
{
	csvlog_reopen(p->csv);
}

void
protolog_retain(struct protolog *p, unsigned max_age, uint64_t max_size)
{
	csvlog_retain(p->csv, max_age, max_size);
}

void
protolog_close(struct protolog *p)
{
	if (p == NULL)
		return;
	csvlog_close(p->csv);
	free(p);
}

static void
protolog_str(FILE *fp, const char *s)
{
	csvlog_field(fp, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

void
protolog_write(struct protolog *p, const char *connector,
    const char *session_id, unsigned seq, const char *local, const char *remote,
    char event, const char *data, size_t datalen, const char *context)
{
	FILE *fp = csvlog_begin(p->csv);
	char num[16];

	if (fp == NULL)
		return;
	snprintf(num, sizeof(num), "%u", seq);
	protolog_str(fp, connector);
	protolog_str(fp, session_id);
	protolog_str(fp, num);
	protolog_str(fp, local);
	protolog_str(fp, remote);
	csvlog_field_token(fp, &event, 1); /* "+", "-": Exchange's names */
	csvlog_field(fp, data != NULL ? data : "", data != NULL ? datalen : 0);
	protolog_str(fp, context);
	csvlog_end(p->csv);
}
