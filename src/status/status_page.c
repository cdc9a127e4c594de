/*
 * status_page.c - the read-only status page served at / by the status
 * listener (status_http.c): the queues (as Get-Queue), the partners' TLS
 * posture (posture_view.c) and the most recent deferrals with their
 * reasons.
 *
 * Plain HTML with an inline style sheet: no script, no image, no form,
 * nothing fetched from elsewhere, so it works in any browser, in a text
 * browser, with JavaScript off and under the listener's
 * Content-Security-Policy (default-src 'none').  Everything that comes
 * from outside (domains, addresses, next hops' replies) is escaped
 * (html.c).  No secrets: the page names connectors, queues and partners,
 * never a file, a key, a credential or a message's content.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "control/control.h"
#include "daemon/daemon.h"
#include "queue/outcome.h"
#include "status/deferrals.h"
#include "status/posture_view.h"
#include "status/status_page.h"
#include "util/buf.h"
#include "util/html.h"

static const char status_page_style[] =
    "body{font-family:sans-serif;margin:1.5em;color:#222}"
    "h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}"
    "table{border-collapse:collapse;font-size:.9em}"
    "th,td{border:1px solid #bbb;padding:.25em .5em;text-align:left;"
    "vertical-align:top}"
    "th{background:#eee}td.n{text-align:right}"
    ".bad{color:#a00;font-weight:bold}"
    "p.meta{color:#555}";

static void
status_page_stamp(time_t t, char *out, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void
status_page_cell(struct buf *out, const char *text)
{
	buf_puts(out, "<td>");
	html_escape(out, text);
	buf_puts(out, "</td>");
}

static void
status_page_queues(const struct control_queue_info *v, size_t n,
    enum status_page_queues state, struct buf *out)
{
	char when[40];

	buf_puts(out, "<h2 id=\"queues\">Queues</h2>\n");
	if (state == STATUS_PAGE_QUEUES_UNREADABLE)
		buf_puts(
		    out, "<p class=\"bad\">The queue cannot be read.</p>\n");
	else if (state == STATUS_PAGE_QUEUES_FIRST)
		buf_puts(out, "<p class=\"meta\">The queue is being read; "
		              "reload the page in a few seconds.</p>\n");
	buf_puts(out, "<table id=\"queue-table\">\n<thead><tr><th>Identity</th>"
	              "<th>DeliveryType</th><th>Status</th>"
	              "<th>MessageCount</th><th>NextRetryTime</th>"
	              "<th>LastError</th></tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < n; i++) {
		buf_puts(out, "<tr>");
		status_page_cell(out, v[i].identity);
		status_page_cell(out, v[i].type);
		status_page_cell(out, v[i].status);
		buf_printf(out, "<td class=\"n\">%u</td>", v[i].messages);
		if (v[i].next_retry != 0)
			status_page_stamp(v[i].next_retry, when, sizeof(when));
		else
			snprintf(when, sizeof(when), "-");
		status_page_cell(out, when);
		status_page_cell(out, v[i].last_error);
		buf_puts(out, "</tr>\n");
	}
	if (n == 0)
		buf_puts(out, "<tr><td colspan=\"6\">Nothing is waiting."
		              "</td></tr>\n");
	buf_puts(out, "</tbody></table>\n");
}

static void
status_page_deferrals(struct daemon *daemon, struct buf *out)
{
	const struct deferral *d;
	char when[40];
	size_t i;

	buf_printf(out,
	    "<h2 id=\"deferrals\">Recent deferrals</h2>\n"
	    "<p class=\"meta\">The last %d, newest first, since the daemon "
	    "started.</p>\n"
	    "<table id=\"deferral-table\">\n<thead><tr><th>Time</th>"
	    "<th>Message</th><th>Recipient</th><th>Queue</th><th>Reason</th>"
	    "</tr></thead>\n<tbody>\n",
	    DEFERRALS_MAX);
	for (i = 0; (d = deferrals_get(daemon->deferrals, i)) != NULL; i++) {
		status_page_stamp(d->when, when, sizeof(when));
		buf_puts(out, "<tr>");
		status_page_cell(out, when);
		status_page_cell(out, d->queue_id);
		status_page_cell(out, d->recipient);
		status_page_cell(out, d->queue);
		status_page_cell(out, d->reason);
		buf_puts(out, "</tr>\n");
	}
	if (i == 0)
		buf_puts(
		    out, "<tr><td colspan=\"5\">No deferrals.</td></tr>\n");
	buf_puts(out, "</tbody></table>\n");
}

int
status_page_render(struct daemon *daemon, size_t sessions,
    const struct control_queue_info *queues, size_t nqueues,
    enum status_page_queues state, struct buf *out)
{
	const char *fqdn = outcome_fqdn(daemon);
	time_t now = time(NULL);
	char stamp[40];

	status_page_stamp(now, stamp, sizeof(stamp));
	buf_puts(out, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
	              "<meta charset=\"utf-8\">"
	              "<meta name=\"viewport\" "
	              "content=\"width=device-width\"><title>");
	html_escape(out, fqdn);
	buf_printf(out,
	    " - Sluice status</title><style>%s</style></head>\n"
	    "<body>\n<h1>Sluice on ",
	    status_page_style);
	html_escape(out, fqdn);
	buf_printf(out,
	    "</h1>\n<p class=\"meta\">As of %s. Inbound sessions: %zu. "
	    "Reload the page for fresh figures; the same counters are at "
	    "<a href=\"/metrics\">/metrics</a>.</p>\n",
	    stamp, sessions);
	status_page_queues(queues, nqueues, state, out);
	buf_puts(out, "<h2 id=\"tls-posture\">TLS posture of partners</h2>\n"
	              "<p class=\"meta\">Every outbound session, by the queue "
	              "it served: the recipient domain, or the smart-host "
	              "connector. Failures use the result types of RFC "
	              "8460.</p>\n");
	posture_view_html(daemon, now, out);
	status_page_deferrals(daemon, out);
	return buf_puts(out, "</body></html>\n") == BUF_OK ? 0 : -1;
}
