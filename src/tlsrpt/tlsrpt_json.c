/*
 * tlsrpt_json.c - an SMTP TLS report as RFC 8460 JSON (see
 * tlsrpt_json.h).  A pure function of the report value: the store
 * (tlsrpt_store.c) makes the value from what was recorded, the sender
 * (tlsrpt_send.c) and `sluicectl tls-report` write it with this.
 *
 * The layout is the RFC's (section 4.4): organization-name, date-range
 * (start-datetime and end-datetime of the UTC day, RFC 3339),
 * contact-info, report-id, then one entry per policy with policy
 * (policy-type, policy-string, policy-domain, mx-host), summary
 * (total-successful-session-count, total-failure-session-count) and
 * failure-details.  Optional members are left out when empty rather than
 * written as "".  mx-host is an array of strings, as the RFC's erratum
 * and the big senders write it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tlsrpt/tlsrpt_json.h"
#include "util/buf.h"

/* A JSON string: quotes, backslash, controls and non-ASCII escaped. */
static int
tlsrpt_json_string(struct buf *out, const char *s)
{
	if (buf_puts(out, "\"") != BUF_OK)
		return -1;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0';
	     p++) {
		int rc;

		if (*p == '"')
			rc = buf_puts(out, "\\\"");
		else if (*p == '\\')
			rc = buf_puts(out, "\\\\");
		else if (*p < 0x20 || *p >= 0x7f)
			/* one \u escape per byte: the text stays ASCII, and a
			 * byte of a broken sequence cannot break the JSON */
			rc =
			    buf_printf(out, "\\u%04x", *p < 0x7f ? *p : 0xfffd);
		else
			rc = buf_append(out, p, 1);
		if (rc != BUF_OK)
			return -1;
	}
	return buf_puts(out, "\"") == BUF_OK ? 0 : -1;
}

struct tlsrpt_writer {
	struct buf *out;
	int pretty;
	int depth;
	int first; /* no member written yet at this depth */
	int rc;
};

static void
tlsrpt_newline(struct tlsrpt_writer *w)
{
	if (!w->pretty || w->rc < 0)
		return;
	if (buf_puts(w->out, "\n") != BUF_OK)
		w->rc = -1;
	for (int i = 0; i < w->depth && w->rc == 0; i++)
		if (buf_puts(w->out, "  ") != BUF_OK)
			w->rc = -1;
}

/* The comma before a member, and the key when there is one. */
static void
tlsrpt_key(struct tlsrpt_writer *w, const char *key)
{
	if (w->rc < 0)
		return;
	if (!w->first && buf_puts(w->out, ",") != BUF_OK)
		w->rc = -1;
	w->first = 0;
	tlsrpt_newline(w);
	if (key != NULL && w->rc == 0 &&
	    (tlsrpt_json_string(w->out, key) < 0 ||
	        buf_puts(w->out, w->pretty ? ": " : ":") != BUF_OK))
		w->rc = -1;
}

static void
tlsrpt_open(struct tlsrpt_writer *w, const char *key, const char *bracket)
{
	tlsrpt_key(w, key);
	if (w->rc == 0 && buf_puts(w->out, bracket) != BUF_OK)
		w->rc = -1;
	w->depth++;
	w->first = 1;
}

static void
tlsrpt_close(struct tlsrpt_writer *w, const char *bracket)
{
	int empty = w->first;

	w->depth--;
	if (!empty)
		tlsrpt_newline(w);
	if (w->rc == 0 && buf_puts(w->out, bracket) != BUF_OK)
		w->rc = -1;
	w->first = 0;
}

static void
tlsrpt_str(struct tlsrpt_writer *w, const char *key, const char *v)
{
	tlsrpt_key(w, key);
	if (w->rc == 0 && tlsrpt_json_string(w->out, v) < 0)
		w->rc = -1;
}

static void
tlsrpt_num(struct tlsrpt_writer *w, const char *key, uint64_t v)
{
	tlsrpt_key(w, key);
	if (w->rc == 0 &&
	    buf_printf(w->out, "%llu", (unsigned long long)v) != BUF_OK)
		w->rc = -1;
}

/* An array of the lines of s (joined by \n). */
static void
tlsrpt_lines(struct tlsrpt_writer *w, const char *key, const char *s)
{
	tlsrpt_open(w, key, "[");
	while (s != NULL && *s != '\0' && w->rc == 0) {
		const char *nl = strchr(s, '\n');
		size_t n = nl != NULL ? (size_t)(nl - s) : strlen(s);
		char *line = strndup(s, n);

		if (line == NULL) {
			w->rc = -1;
			break;
		}
		tlsrpt_str(w, NULL, line);
		free(line);
		s += n + (nl != NULL);
	}
	tlsrpt_close(w, "]");
}

static void
tlsrpt_policy_json(struct tlsrpt_writer *w, const struct tlsrpt_policy *p)
{
	tlsrpt_open(w, NULL, "{");
	tlsrpt_open(w, "policy", "{");
	tlsrpt_str(w, "policy-type", p->type);
	if (p->strings != NULL && p->strings[0] != '\0')
		tlsrpt_lines(w, "policy-string", p->strings);
	tlsrpt_str(w, "policy-domain", p->domain);
	if (p->mx_hosts != NULL && p->mx_hosts[0] != '\0')
		tlsrpt_lines(w, "mx-host", p->mx_hosts);
	tlsrpt_close(w, "}");
	tlsrpt_open(w, "summary", "{");
	tlsrpt_num(w, "total-successful-session-count", p->ok);
	tlsrpt_num(w, "total-failure-session-count", p->failed);
	tlsrpt_close(w, "}");
	if (p->ndetails > 0) {
		tlsrpt_open(w, "failure-details", "[");
		for (size_t i = 0; i < p->ndetails && w->rc == 0; i++) {
			const struct tlsrpt_failure *f = &p->details[i];

			tlsrpt_open(w, NULL, "{");
			tlsrpt_str(w, "result-type", f->result);
			if (f->sending_ip[0] != '\0')
				tlsrpt_str(w, "sending-mta-ip", f->sending_ip);
			if (f->mx_host[0] != '\0')
				tlsrpt_str(
				    w, "receiving-mx-hostname", f->mx_host);
			if (f->mx_helo[0] != '\0')
				tlsrpt_str(w, "receiving-mx-helo", f->mx_helo);
			if (f->receiving_ip[0] != '\0')
				tlsrpt_str(w, "receiving-ip", f->receiving_ip);
			tlsrpt_num(w, "failed-session-count", f->count);
			if (f->reason[0] != '\0')
				tlsrpt_str(w, "failure-reason-code", f->reason);
			tlsrpt_close(w, "}");
		}
		tlsrpt_close(w, "]");
	}
	tlsrpt_close(w, "}");
}

int
tlsrpt_day_range(const char *day, int64_t *start, int64_t *end)
{
	struct tm tm;
	char *rest;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (strlen(day) != 10 ||
	    (rest = strptime(day, "%Y-%m-%d", &tm)) == NULL || *rest != '\0')
		return -1;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	*start = (int64_t)t;
	*end = (int64_t)t + 86399;
	return 0;
}

int
tlsrpt_json(const struct tlsrpt_report *r, int pretty, struct buf *out)
{
	struct tlsrpt_writer w = {out, pretty, 0, 1, 0};
	char start[32], end[32];

	snprintf(start, sizeof(start), "%sT00:00:00Z", r->day);
	snprintf(end, sizeof(end), "%sT23:59:59Z", r->day);
	tlsrpt_open(&w, NULL, "{");
	tlsrpt_str(&w, "organization-name", r->organization);
	tlsrpt_open(&w, "date-range", "{");
	tlsrpt_str(&w, "start-datetime", start);
	tlsrpt_str(&w, "end-datetime", end);
	tlsrpt_close(&w, "}");
	tlsrpt_str(&w, "contact-info", r->contact);
	tlsrpt_str(&w, "report-id", r->report_id);
	tlsrpt_open(&w, "policies", "[");
	for (size_t i = 0; i < r->npolicies; i++)
		tlsrpt_policy_json(&w, &r->policies[i]);
	tlsrpt_close(&w, "]");
	tlsrpt_close(&w, "}");
	if (pretty && w.rc == 0 && buf_puts(out, "\n") != BUF_OK)
		w.rc = -1;
	return w.rc;
}

void
tlsrpt_report_clear(struct tlsrpt_report *r)
{
	for (size_t i = 0; i < r->npolicies; i++) {
		free(r->policies[i].strings);
		free(r->policies[i].mx_hosts);
		free(r->policies[i].details);
	}
	free(r->policies);
	r->policies = NULL;
	r->npolicies = 0;
}
