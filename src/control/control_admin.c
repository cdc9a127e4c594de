/*
 * control_admin.c - the daemon-wide requests of the control socket (see
 * control_admin.h):
 *
 *   status       version, configuration file and when it was loaded,
 *                start time and uptime, sessions, queue totals
 *   reload       what SIGHUP does, answered with what changed, or with
 *                the errors that made the new configuration be refused
 *                (every line then starts with "error: ")
 *   logs reopen  what SIGUSR1 does: the log files only
 *
 * The answers are Format-List style lines ("Name : value"), as the
 * Exchange views sluicectl prints elsewhere.  Queue totals walk the
 * pending recipients like "queue" does: on the loop, through the spool's
 * read-only connection.
 */
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "control/control_admin.h"
#include "control/control_int.h"
#include "queue/dqueue.h"
#include "queue/qmgr.h"
#include "server/server.h"
#include "spool/spool.h"
#include "util/buf.h"
#include "version.h"

static const struct control_admin *control_admin_hooks;

void
control_admin_register(const struct control_admin *hooks)
{
	control_admin_hooks = hooks;
}

struct control_admin_totals {
	unsigned messages, recipients, ready, retry, suspended;
	int64_t last_message; /* rows come in message order */
	time_t now;
};

static int
control_admin_count(void *arg, const struct spool_row *p)
{
	struct control_admin_totals *t = arg;

	if (t->last_message != p->message_rowid) {
		t->messages++;
		t->last_message = p->message_rowid;
	}
	t->recipients++;
	if (p->next_attempt == SPOOL_SUSPENDED)
		t->suspended++;
	else if (p->next_attempt <= t->now)
		t->ready++;
	else
		t->retry++;
	return 0;
}

static void
control_admin_status(const struct control *ctl, struct buf *out)
{
	const struct control_admin *h = control_admin_hooks;
	struct control_admin_totals t;
	struct passwd *pw = getpwuid(geteuid());
	char started[32] = "-", loaded[32] = "-", uptime[32] = "-";
	unsigned outbound = 0;

	memset(&t, 0, sizeof(t));
	t.now = time(NULL);
	if (h != NULL) {
		control_stamp(h->started, started, sizeof(started));
		control_stamp(h->loaded, loaded, sizeof(loaded));
		conf_format_timespan(
		    (unsigned)(t.now - h->started), uptime, sizeof(uptime));
	}
	if (ctl->qmgr != NULL)
		outbound = dqueues_connections(qmgr_dqueues(ctl->qmgr));
	buf_printf(out,
	    "Version             : %s\n"
	    "ConfigurationFile   : %s\n"
	    "ConfigurationLoaded : %s\n"
	    "Started             : %s\n"
	    "Uptime              : %s\n"
	    "ProcessId           : %ld\n"
	    "User                : %s\n"
	    "Draining            : %s\n"
	    "InboundSessions     : %zu\n"
	    "OutboundConnections : %u\n",
	    SLUICE_VERSION,
	    h != NULL && h->conf_path != NULL ? h->conf_path
	                                      : ctl->daemon->conf->conf->path,
	    loaded, started, uptime, (long)getpid(),
	    pw != NULL ? pw->pw_name : "?",
	    ctl->daemon->draining ? "true" : "false", ctl->srv->nsessions,
	    outbound);
	struct spool_select all = {.brief = 1}; /* the recipients alone */

	if (spool_foreach(ctl->daemon->spool, &all, control_admin_count, &t) <
	    0) {
		buf_puts(out, "error: cannot read the queue\n");
		return;
	}
	buf_printf(out,
	    "QueuedMessages      : %u\n"
	    "QueuedRecipients    : %u\n"
	    "ReadyRecipients     : %u\n"
	    "RetryRecipients     : %u\n"
	    "SuspendedRecipients : %u\n",
	    t.messages, t.recipients, t.ready, t.retry, t.suspended);
}

int
control_admin_run(const struct control *ctl, const char *line, struct buf *out)
{
	const struct control_admin *h = control_admin_hooks;

	if (strcmp(line, "status") == 0) {
		control_admin_status(ctl, out);
		return 1;
	}
	if (strcmp(line, "reload") == 0) {
		if (h == NULL || h->reload == NULL)
			buf_puts(out, "error: reload is not available\n");
		else
			h->reload(h->arg, out);
		return 1;
	}
	if (strcmp(line, "logs reopen") == 0) {
		if (h == NULL || h->logs_reopen == NULL) {
			buf_puts(out, "error: logs reopen is not available\n");
		} else {
			h->logs_reopen(h->arg);
			buf_puts(out, "log files reopened\n");
		}
		return 1;
	}
	return 0;
}
