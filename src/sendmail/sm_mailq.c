/*
 * sm_mailq.c - mailq over the control socket (see sm_mailq.h).
 *
 * The daemon's "messages" answer (Get-Message's Format-List: one block
 * of "Name : value" lines per message and queue, its recipients in one
 * "a; b" field) is regrouped per message and
 * printed in the columns scripts and monitoring expect from mailq,
 * ending in "-- N Kbytes in M Requests." or "Mail queue is empty".
 *
 * Who may list the queue is who may open the control socket: root and
 * the run-time user (mode 0600).  Queue contents name senders and
 * recipients, which other local users have no business reading (the
 * queue itself is private for the same reason); OpenSMTPD's mailq asks
 * for root in the same way.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ctl/ctl_request.h"
#include "sendmail/sm_mailq.h"
#include "util/buf.h"

struct sm_mailq_rcpt {
	char id[64];
	char sender[300];
	char rcpts[4096]; /* "a@x; b@y" */
	char date[40];
	char error[300];
	long long size;
};

/* "Name          : value" -> value, when the line is Name's. */
static const char *
sm_mailq_field(const char *line, const char *name)
{
	size_t n = strlen(name);

	if (strncmp(line, name, n) != 0)
		return NULL;
	line += n;
	while (*line == ' ')
		line++;
	if (line[0] != ':')
		return NULL;
	line++;
	while (*line == ' ')
		line++;
	return line;
}

static void
sm_mailq_print(const struct sm_mailq_rcpt *r, int same_message)
{
	if (!same_message)
		printf("\n%-17s %9lld %-20s  %s\n", r->id, r->size, r->date,
		    r->sender);
	if (r->error[0] != '\0')
		printf("%49s(%s)\n", "", r->error);
	for (const char *p = r->rcpts, *end; *p != '\0'; p = end) {
		if ((end = strstr(p, "; ")) == NULL)
			end = p + strlen(p);
		printf("%49s%.*s\n", "", (int)(end - p), p);
		if (*end != '\0')
			end += 2;
	}
}

int
sm_mailq(const char *prog, const char *sock)
{
	struct buf ans;
	struct sm_mailq_rcpt cur, last;
	char why[600];
	long long bytes = 0;
	unsigned messages = 0;
	int have = 0;

	buf_init(&ans, CTL_REQUEST_ANSWER_MAX);
	if (ctl_request(sock, "messages", &ans, why, sizeof(why)) < 0) {
		int perm = strstr(why, strerror(EACCES)) != NULL;

		fprintf(stderr, "%s: cannot list the queue: %s%s\n", prog, why,
		    perm ? " (only root and the user sluiced runs as may)"
		         : " (is sluiced running?)");
		buf_free(&ans);
		return perm ? EX_NOPERM : EX_UNAVAILABLE;
	}
	if (strncmp(ans.data != NULL ? ans.data : "", "error: ", 7) == 0) {
		fprintf(stderr, "%s: %s", prog, ans.data + 7);
		buf_free(&ans);
		return EX_UNAVAILABLE;
	}
	memset(&cur, 0, sizeof(cur));
	memset(&last, 0, sizeof(last));
	for (char *line = ans.data, *nl; line != NULL && *line != '\0';
	     line = nl) {
		const char *v;

		if ((nl = strchr(line, '\n')) != NULL)
			*nl++ = '\0';
		if ((v = sm_mailq_field(line, "Identity")) != NULL) {
			const char *bs = strrchr(v, '\\');

			snprintf(cur.id, sizeof(cur.id), "%s",
			    bs != NULL ? bs + 1 : v);
		} else if ((v = sm_mailq_field(line, "FromAddress")) != NULL) {
			snprintf(cur.sender, sizeof(cur.sender), "%s", v);
		} else if ((v = sm_mailq_field(line, "Recipients")) != NULL) {
			snprintf(cur.rcpts, sizeof(cur.rcpts), "%s", v);
		} else if ((v = sm_mailq_field(line, "Size")) != NULL) {
			cur.size = strtoll(v, NULL, 10);
		} else if ((v = sm_mailq_field(line, "DateReceived")) != NULL) {
			snprintf(cur.date, sizeof(cur.date), "%s", v);
		} else if ((v = sm_mailq_field(line, "LastError")) != NULL) {
			snprintf(cur.error, sizeof(cur.error), "%s", v);
		} else if (line[0] == '\0' && cur.id[0] != '\0') {
			int same = have && strcmp(cur.id, last.id) == 0;

			if (!have)
				printf("%-17s %9s %-20s  %s\n", "-Queue ID-",
				    "--Size--", "----Arrival Time----",
				    "-Sender/Recipient-------");
			if (!same) {
				messages++;
				bytes += cur.size;
			}
			sm_mailq_print(&cur, same);
			last = cur;
			have = 1;
			memset(&cur, 0, sizeof(cur));
		}
	}
	if (messages == 0)
		printf("Mail queue is empty\n");
	else
		printf("\n-- %lld Kbytes in %u Request%s.\n",
		    (bytes + 1023) / 1024, messages, messages == 1 ? "" : "s");
	buf_free(&ans);
	return 0;
}
