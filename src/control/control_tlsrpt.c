/*
 * control_tlsrpt.c - the control socket's TLS report command:
 *
 *   tls-report [domain=D] [date=YYYY-MM-DD] [send]
 *
 * prints the RFC 8460 report of one domain (or of every domain with
 * sessions) for one UTC day (default: yesterday, the report the daily
 * run sends next), exactly as it would be sent.  With "send" the
 * reports are sent now, as the daily run would (tlsrpt_send.c: each
 * address once; a failed one tried again without waiting for its
 * pause), and the answer says what became of each address.
 *
 * The counts of the last minute are still in the daemon's memory, so
 * the answer waits for a flush of the store through the committer; the
 * report is read from the queue database once that is durable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control/control_int.h"
#include "daemon/daemon.h"
#include "tlsrpt/tlsrpt.h"
#include "tlsrpt/tlsrpt_json.h"
#include "tlsrpt/tlsrpt_send.h"
#include "tlsrpt/tlsrpt_store.h"
#include "util/buf.h"

struct ct_job {
	struct control_client *c;
	char day[11];
	char domain[256]; /* "" for all */
};

static void
ct_flushed(void *arg, int ok, const char *queue_id)
{
	struct ct_job *j = arg;
	struct daemon *daemon = j->c->ctl->daemon;
	char **domains = NULL;
	size_t n = 0, made = 0;
	struct buf out;

	(void)queue_id;
	buf_init(&out, CONTROL_OUT_MAX);
	if (!ok) {
		buf_puts(&out, "error: the TLS report sessions could not be "
		               "written to the queue database\n");
		goto answer;
	}
	if (j->domain[0] != '\0') {
		domains = calloc(1, sizeof(*domains));
		if (domains == NULL ||
		    (domains[0] = strdup(j->domain)) == NULL) {
			buf_puts(&out, "error: out of memory\n");
			goto answer;
		}
		n = 1;
	} else if (tlsrpt_store_domains(daemon->tlsrpt, j->day, &domains, &n) <
	           0) {
		buf_puts(&out, "error: cannot read the TLS report sessions\n");
		goto answer;
	}
	for (size_t i = 0; i < n; i++) {
		size_t before = out.len;
		int rc;

		if (made > 0)
			buf_puts(&out, "\n");
		rc = tlsrpt_make(
		    daemon, daemon->tlsrpt, j->day, domains[i], 1, &out);
		if (rc == 0) {
			made++;
		} else {
			out.len = before; /* nothing of it */
			if (out.data != NULL)
				out.data[out.len] = '\0';
			if (rc < 0) {
				buf_reset(&out);
				buf_printf(&out,
				    "error: cannot make the report of %s\n",
				    domains[i]);
				goto answer;
			}
		}
	}
	if (made == 0)
		buf_printf(&out,
		    "error: no outbound TLS sessions to report%s%s "
		    "on %s (UTC)\n",
		    j->domain[0] ? " for " : "", j->domain, j->day);
answer:
	tlsrpt_store_domains_free(domains, n);
	control_answer(j->c, &out);
	buf_free(&out);
	free(j);
}

static void
ct_sent(void *arg, struct buf *lines)
{
	control_answer(arg, lines);
}

int
control_tlsrpt_run(struct control_client *c, const struct control_request *req,
    struct buf *out)
{
	struct daemon *daemon = c->ctl->daemon;
	struct ct_job *j;
	int64_t start, end;
	int send = 0;

	if (strcmp(req->verb, "tls-report") != 0)
		return -1;
	if (daemon->tlsrpt == NULL) {
		buf_puts(out, "error: TLS reports are not recorded\n");
		return 0;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		buf_puts(out, "error: out of memory\n");
		return 0;
	}
	j->c = c;
	tlsrpt_day(time(NULL) - 86400, j->day);
	for (int i = 0; i < req->nargs; i++) {
		const char *a = req->args[i];

		if (strcmp(a, "send") == 0) {
			send = 1;
		} else if (strncmp(a, "domain=", 7) == 0 && strlen(a + 7) > 0 &&
		           strlen(a + 7) < sizeof(j->domain)) {
			snprintf(j->domain, sizeof(j->domain), "%s", a + 7);
		} else if (strncmp(a, "date=", 5) == 0 &&
		           tlsrpt_day_range(a + 5, &start, &end) == 0) {
			snprintf(j->day, sizeof(j->day), "%s", a + 5);
		} else {
			buf_printf(out,
			    "error: tls-report: bad argument \"%.100s\" "
			    "(domain=D, date=YYYY-MM-DD, send)\n",
			    a);
			free(j);
			return 0;
		}
	}
	/* lower case, as domains are recorded */
	for (char *p = j->domain; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if (send) {
		const char *org =
		    daemon->conf->conf->transport.tls_reporting_organization;

		if (org == NULL || org[0] == '\0')
			buf_puts(out, "error: TlsReportingOrganization is not "
			              "set: no TLS reports are sent\n");
		else if (daemon->tlsrpt_sender == NULL ||
		         tlsrpt_sender_run(daemon->tlsrpt_sender, j->day,
		             j->domain, ct_sent, c) < 0)
			buf_puts(out, "error: TLS reports cannot be sent\n");
		else
			send = 2;
		free(j);
		return send == 2 ? 1 : 0;
	}
	if (tlsrpt_store_flush(daemon->tlsrpt, ct_flushed, j) < 0) {
		buf_puts(out, "error: out of memory\n");
		free(j);
		return 0;
	}
	return 1;
}
