/*
 * control_view.c - the queue views, Get-Queue ("queue") and Get-Message
 * ("messages"), answered off the event loop and streamed, however large
 * the queue (issue 19).
 *
 *   queue [queue=P] [status=S] [limit=N] [offset=N]
 *   messages [QUEUE] [queue=Q] [sender=P] [recipient=P] [status=S]
 *            [limit=N] [offset=N]
 *
 * P may hold * and ? (fnmatch, case-insensitive); S is a status as the
 * view prints it; limit and offset count entries that pass the filters
 * (Get-Message -ResultSize; offset has no Exchange equivalent: paging).
 *
 * Threads.  A view runs on a worker thread of its own with its own
 * read-only SQLite connection (spool_view_new), so that walking 200,000
 * recipients never holds the loop that serves SMTP.  The worker formats
 * the answer in pages of CV_PAGE bytes and hands each to the loop, which
 * writes it to the client when the client has taken the previous ones
 * (conn_held): a worker is never more than one page ahead, whatever the
 * answer's size, and a client that stops reading stops its worker (and is
 * dropped after CV_STALL_SECONDS).  Between pages the worker holds no read
 * transaction: a walk stops at a message's end and the next page starts a
 * new query after that message (spool_select.after), so a long listing
 * never keeps the WAL from being checkpointed.  The view is thus of a
 * queue that moves while it is read: a message appears once, in the state
 * it had when its page was read.
 *
 * Get-Queue needs every recipient before its first line (the counts), so
 * its worker only counts, in segments of CV_SEGMENT_ROWS recipients, into
 * a table that grows with the number of queues; the loop then writes the
 * lines a slice at a time, with each queue's live state (Active,
 * Suspended) from the delivery queues, which belong to the loop.
 *
 * The configuration a view routes with is a reference taken on the loop
 * when it starts and dropped there when it ends; routing is a pure
 * function of it.  At most CV_VIEWS_MAX views run at once.
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "conf/conf.h"
#include "control/control_int.h"
#include "daemon/daemon.h"
#include "log/tracklog.h"
#include "queue/dqueue.h"
#include "queue/qmgr.h"
#include "server/conn.h"
#include "spool/spool.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/wakeup.h"

/* Views running at once; more are refused (an administrator's tool). */
#define CV_VIEWS_MAX 4
/* A page of the answer, handed from the worker to the loop. */
#define CV_PAGE (64 * 1024)
/* A page holds at most this (one message's entry is far less). */
#define CV_PAGE_MAX (4 * 1024 * 1024)
/* Recipients Get-Queue reads per query before it starts a new one. */
#define CV_SEGMENT_ROWS 16384
/* Queue lines the loop writes per turn. */
#define CV_SLICE 256
/* A client that takes nothing for this long is dropped. */
#define CV_STALL_SECONDS 60
/* The queue of each recipient domain seen, so that 200,000 recipients
 * are routed once per domain (direct-mapped; a collision costs a
 * routing). */
#define CV_DOMAIN_CACHE 1024

enum cv_kind { CV_QUEUES, CV_MESSAGES };

/* --- Get-Queue's table ---------------------------------------------------- */

struct cv_queue {
	char identity[300];
	const char *type;
	unsigned messages;
	unsigned ready;
	time_t next_retry;
	char last_error[200];
	int64_t last_message;
};

struct cv_domain {
	char domain[256]; /* "" unused; "@" for a bare <Postmaster> */
	size_t q;         /* index in queues */
};

/* --- Get-Message's message being read ------------------------------------- */

/* One message in one queue: the recipients it has there. */
struct cv_group {
	char queue[300];
	struct buf rcpts; /* "a@x; b@y" */
	unsigned n, suspended, due, delivered, failed;
	unsigned attempts;
	int rcpt_match; /* a recipient matches the recipient filter */
	time_t next_retry, finished;
	char last_error[512];
};

struct control_view {
	struct control_view *next; /* the control socket's list */
	struct control *ctl;
	struct control_client *c; /* the loop's side */
	struct conf_ref *conf;    /* routes with it; released on the loop */
	enum cv_kind kind;
	/* the request */
	char *args; /* the filters point into it */
	const char *queue, *sender, *recipient, *status;
	unsigned long long limit, offset; /* limit 0: all */
	int finished;                     /* the safety net */
	time_t now;
	/* worker <-> loop */
	pthread_t thread;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct buf *ready; /* a page for the loop, or NULL */
	int last;          /* ready is the worker's last page */
	atomic_int cancel;
	struct wakeup *wake;
	/* the worker's own */
	struct spool_view *sv;
	struct buf *page;
	int64_t after; /* the walk goes on after this message */
	int stopped;   /* the walk stopped at a message's end */
	int done;      /* limit reached, or an error */
	unsigned long long seen, shown;
	size_t rows;
	/* Get-Queue: the table (worker, then the loop once it is handed) */
	struct cv_queue *queues;
	size_t nqueues, qcap;
	size_t *qindex; /* open addressing by identity: index + 1, 0 free */
	size_t qslots;
	struct cv_domain *cache;
	size_t next_line; /* the loop: the next queue to write */
	int table_ready;  /* the loop: the worker handed the table */
	/* Get-Message: the message being read */
	int64_t rowid;
	char qid[32], sender_addr[257], client[64];
	char msgid[SPOOL_HEADER_MAX + 1], subject[SPOOL_HEADER_MAX + 1];
	time_t received;
	int64_t size;
	struct cv_group *groups;
	size_t ngroups, gcap;
};

static int
cv_match(const char *pattern, const char *value)
{
	return pattern == NULL || fnmatch(pattern, value, FNM_CASEFOLD) == 0;
}

/* --- worker: pages to the loop ------------------------------------------- */

/*
 * Hand the page to the loop once it has taken the previous one; -1 when
 * the view was cancelled.  The worker then fills a new page.
 */
static int
cv_post(struct control_view *v, int last)
{
	struct buf *next = NULL;

	if (!last && (next = malloc(sizeof(*next))) == NULL)
		return -1;
	pthread_mutex_lock(&v->mu);
	while (v->ready != NULL && !atomic_load(&v->cancel))
		pthread_cond_wait(&v->cv, &v->mu);
	if (atomic_load(&v->cancel)) {
		pthread_mutex_unlock(&v->mu);
		free(next);
		return -1;
	}
	v->ready = v->page;
	v->last = last;
	pthread_mutex_unlock(&v->mu);
	if (wakeup_signal(v->wake) < 0)
		log_err(
		    "control: cannot wake the event loop: %s", strerror(errno));
	v->page = next;
	if (next != NULL)
		buf_init(next, CV_PAGE_MAX);
	return 0;
}

/* --- worker: Get-Queue -----------------------------------------------------
 */

static size_t
cv_hash(const char *s)
{
	size_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Double the identity index; -1 when out of memory. */
static int
cv_index_grow(struct control_view *v)
{
	size_t slots = v->qslots ? 2 * v->qslots : 1024;
	size_t *idx = calloc(slots, sizeof(*idx));

	if (idx == NULL)
		return -1;
	for (size_t i = 0; i < v->nqueues; i++) {
		size_t k = cv_hash(v->queues[i].identity) & (slots - 1);

		while (idx[k] != 0)
			k = (k + 1) & (slots - 1);
		idx[k] = i + 1;
	}
	free(v->qindex);
	v->qindex = idx;
	v->qslots = slots;
	return 0;
}

/* The queue named id, found or added; -1 when out of memory. */
static long
cv_queue_index(struct control_view *v, const char *id, const char *type)
{
	size_t k;

	if (2 * (v->nqueues + 1) > v->qslots && cv_index_grow(v) < 0)
		return -1;
	for (k = cv_hash(id) & (v->qslots - 1); v->qindex[k] != 0;
	     k = (k + 1) & (v->qslots - 1))
		if (strcmp(v->queues[v->qindex[k] - 1].identity, id) == 0)
			return (long)(v->qindex[k] - 1);
	if (v->nqueues == v->qcap) {
		size_t cap = v->qcap ? 2 * v->qcap : 64;
		struct cv_queue *q = realloc(v->queues, cap * sizeof(*q));

		if (q == NULL)
			return -1;
		v->queues = q;
		v->qcap = cap;
	}
	memset(&v->queues[v->nqueues], 0, sizeof(v->queues[0]));
	snprintf(v->queues[v->nqueues].identity, sizeof(v->queues[0].identity),
	    "%s", id);
	v->queues[v->nqueues].type = type;
	v->queues[v->nqueues].last_message = -1;
	v->qindex[k] = v->nqueues + 1;
	return (long)v->nqueues++;
}

/* The queue of row's recipient (through the domain cache); -1 no memory. */
static long
cv_queue_for(struct control_view *v, const struct spool_row *row)
{
	const char *at = strrchr(row->addr, '@'),
	           *d = at != NULL ? at + 1 : "@";
	struct cv_domain *slot = NULL;
	unsigned h = 2166136261u;
	char id[300];
	const char *type;
	long q;

	/* rows with a transport rule's route are routed each time */
	if (v->cache != NULL && strlen(d) < sizeof(slot->domain) &&
	    row->rule_tls[0] == '\0' && row->rule_connector[0] == '\0') {
		for (const char *p = d; *p != '\0'; p++)
			h = (h ^ (unsigned char)tolower((unsigned char)*p)) *
			    16777619u;
		slot = &v->cache[h % CV_DOMAIN_CACHE];
		if (strcasecmp(slot->domain, d) == 0)
			return (long)slot->q;
	}
	control_queue_of(v->conf->conf, row, id, sizeof(id), &type);
	if ((q = cv_queue_index(v, id, type)) >= 0 && slot != NULL) {
		snprintf(slot->domain, sizeof(slot->domain), "%s", d);
		slot->q = (size_t)q;
	}
	return q;
}

static int
cv_count_row(void *arg, const struct spool_row *p)
{
	struct control_view *v = arg;
	struct cv_queue *q;
	long i;

	if (atomic_load(&v->cancel))
		return 1;
	if (p->message_rowid != v->rowid) {
		/* a message's end: a new query from here, now and then */
		if (v->rows >= CV_SEGMENT_ROWS) {
			v->after = v->rowid;
			v->stopped = 1;
			return 1;
		}
		v->rowid = p->message_rowid;
	}
	v->rows++;
	if ((i = cv_queue_for(v, p)) < 0) {
		v->done = 1;
		return 1;
	}
	q = &v->queues[i];
	if (q->last_message != p->message_rowid) {
		q->messages++;
		q->last_message = p->message_rowid;
	}
	if (p->next_attempt == SPOOL_SUSPENDED)
		; /* a suspended message is neither ready nor retried */
	else if (p->next_attempt <= v->now)
		q->ready++;
	else if (q->next_retry == 0 || p->next_attempt < q->next_retry)
		q->next_retry = p->next_attempt;
	if (p->last_error[0] != '\0') {
		size_t n = strnlen(p->last_error, sizeof(q->last_error) - 1);

		memcpy(q->last_error, p->last_error, n);
		q->last_error[n] = '\0';
	}
	return 0;
}

static void
cv_count(struct control_view *v)
{
	/* the seven columns a queue's count needs, as the status page's */
	struct spool_select sel = {.queues = 1};

	v->cache =
	    calloc(CV_DOMAIN_CACHE, sizeof(*v->cache)); /* NULL: slower */
	v->rowid = -1;
	do {
		v->stopped = 0;
		v->rows = 0;
		sel.after = v->after;
		if (spool_view_foreach(v->sv, &sel, cv_count_row, v) < 0) {
			buf_puts(v->page, "error: cannot read the queue\n");
			v->done = 1;
		}
	} while (v->stopped && !v->done && !atomic_load(&v->cancel));
	if (v->done && buf_error(v->page) == BUF_OK && v->page->len == 0)
		buf_puts(v->page, "error: out of memory\n");
	free(v->cache);
	v->cache = NULL;
}

/* --- worker: Get-Message -------------------------------------------------- */

static const char *
cv_group_status(const struct control_view *v, const struct cv_group *g)
{
	if (v->finished)
		return g->failed == 0      ? "Delivered"
		       : g->delivered == 0 ? "Failed"
		                           : "PartiallyFailed";
	/* A message being delivered is Ready too: its queue is Active. */
	if (g->suspended > 0)
		return "Suspended";
	return g->due == g->n ? "Ready" : "Retry";
}

/* Write the message's entries (one per queue) that pass the filters. */
static void
cv_flush_message(struct control_view *v)
{
	const struct conf_transport *t = &v->conf->conf->transport;
	char received[32], expires[32], when[32], ip[64];

	tracklog_ip(v->client, ip, sizeof(ip));
	control_stamp(v->received, received, sizeof(received));
	control_stamp(v->received + (time_t)t->message_expiration_timeout,
	    expires, sizeof(expires));
	for (size_t i = 0; i < v->ngroups; i++) {
		struct cv_group *g = &v->groups[i];
		const char *status = cv_group_status(v, g);

		if (!v->done &&
		    (v->queue == NULL || strcasecmp(v->queue, g->queue) == 0) &&
		    cv_match(
		        v->sender, v->sender_addr[0] ? v->sender_addr : "<>") &&
		    (v->recipient == NULL || g->rcpt_match) &&
		    (v->status == NULL || strcasecmp(v->status, status) == 0) &&
		    v->seen++ >= v->offset) {
			if (v->finished)
				control_stamp(g->finished, when, sizeof(when));
			else if (g->next_retry != 0)
				control_stamp(
				    g->next_retry, when, sizeof(when));
			else
				snprintf(when, sizeof(when), "-");
			buf_printf(v->page,
			    "%-17s: %s\\%s\n%-17s: %s\n%-17s: %s\n"
			    "%-17s: %s\n%-17s: %.*s\n%-17s: %s\n"
			    "%-17s: %lld\n%-17s: %s\n%-17s: %s\n"
			    "%-17s: %s\n%-17s: %u\n%-17s: %s\n%-17s: %s\n\n",
			    "Identity", g->queue, v->qid, "Subject", v->subject,
			    "InternetMessageId", v->msgid, "FromAddress",
			    v->sender_addr[0] ? v->sender_addr : "<>",
			    "Recipients", (int)g->rcpts.len,
			    g->rcpts.data != NULL ? g->rcpts.data : "",
			    "Status", status, "Size", (long long)v->size,
			    "SourceIP", ip, "DateReceived", received,
			    "ExpirationTime", expires, "RetryCount",
			    g->attempts,
			    v->finished ? "DateFinished" : "NextRetryTime",
			    when, "LastError", g->last_error);
			if (v->limit != 0 && ++v->shown >= v->limit)
				v->done = 1;
		}
		buf_free(&g->rcpts);
	}
	v->ngroups = 0;
}

static int
cv_list_row(void *arg, const struct spool_row *row)
{
	struct control_view *v = arg;
	struct cv_group *g = NULL;
	char queue[300];
	const char *type;

	if (atomic_load(&v->cancel))
		return 1;
	if (row->message_rowid != v->rowid) {
		cv_flush_message(v);
		if (v->done)
			return 1;
		/* a full page ends at a message's end: the next goes on */
		if (v->rowid > 0)
			v->after = v->rowid;
		if (v->page->len >= CV_PAGE) {
			v->stopped = 1;
			return 1;
		}
		v->rowid = row->message_rowid;
		snprintf(v->qid, sizeof(v->qid), "%s", row->queue_id);
		snprintf(
		    v->sender_addr, sizeof(v->sender_addr), "%s", row->sender);
		snprintf(v->client, sizeof(v->client), "%s", row->client);
		snprintf(v->msgid, sizeof(v->msgid), "%s", row->message_id);
		snprintf(v->subject, sizeof(v->subject), "%s", row->subject);
		v->received = row->received;
		v->size = row->size;
	}
	if (v->finished)
		snprintf(queue, sizeof(queue), "%s", CONTROL_SAFETY_NET);
	else
		control_queue_of(
		    v->conf->conf, row, queue, sizeof(queue), &type);
	for (size_t i = 0; i < v->ngroups && g == NULL; i++)
		if (strcmp(v->groups[i].queue, queue) == 0)
			g = &v->groups[i];
	if (g == NULL) {
		if (v->ngroups == v->gcap) {
			size_t cap = v->gcap ? 2 * v->gcap : 4;
			struct cv_group *p =
			    realloc(v->groups, cap * sizeof(*p));

			if (p == NULL) {
				v->done = 1;
				return 1;
			}
			v->groups = p;
			v->gcap = cap;
		}
		g = &v->groups[v->ngroups++];
		memset(g, 0, sizeof(*g));
		snprintf(g->queue, sizeof(g->queue), "%s", queue);
		buf_init(&g->rcpts, 1024 * 1024);
	}
	buf_printf(&g->rcpts, "%s%s", g->n ? "; " : "", row->addr);
	g->n++;
	g->rcpt_match |=
	    v->recipient != NULL && cv_match(v->recipient, row->addr);
	if (row->attempts > g->attempts)
		g->attempts = row->attempts;
	if (row->status == SPOOL_RCPT_DELIVERED)
		g->delivered++;
	else if (row->status == SPOOL_RCPT_FAILED)
		g->failed++;
	else if (row->next_attempt == SPOOL_SUSPENDED)
		g->suspended++;
	else if (row->next_attempt <= v->now)
		g->due++;
	else if (g->next_retry == 0 || row->next_attempt < g->next_retry)
		g->next_retry = row->next_attempt;
	if (row->updated > g->finished)
		g->finished = row->updated;
	if (g->last_error[0] == '\0' && row->last_error[0] != '\0')
		snprintf(g->last_error, sizeof(g->last_error), "%s",
		    row->last_error);
	return 0;
}

static void
cv_list(struct control_view *v)
{
	struct spool_select sel = {.finished = v->finished};

	v->rowid = -1;
	do {
		v->stopped = 0;
		sel.after = v->after;
		if (spool_view_foreach(v->sv, &sel, cv_list_row, v) < 0) {
			buf_puts(v->page, "error: cannot read the queue\n");
			v->done = 1;
		}
		if (v->stopped) {
			/* the message that stopped the walk is read again */
			v->rowid = -1;
			if (cv_post(v, 0) < 0)
				return;
		}
	} while (v->stopped && !v->done && !atomic_load(&v->cancel));
	if (!v->done && !atomic_load(&v->cancel))
		cv_flush_message(v); /* the last message */
	for (size_t i = 0; i < v->ngroups; i++)
		buf_free(&v->groups[i].rcpts);
	v->ngroups = 0;
}

static void *
cv_worker(void *arg)
{
	struct control_view *v = arg;

	if (v->sv == NULL) {
		buf_puts(v->page, "error: cannot read the queue\n");
	} else if (v->kind == CV_QUEUES) {
		cv_count(v);
	} else {
		cv_list(v);
	}
	if (!atomic_load(&v->cancel))
		cv_post(v, 1);
	return NULL;
}

/* --- the loop's side ------------------------------------------------------ */

static void
cv_free(struct control_view *v)
{
	struct control_view **p;

	for (p = &v->ctl->views; *p != NULL; p = &(*p)->next)
		if (*p == v) {
			*p = v->next;
			v->ctl->nviews--;
			break;
		}
	if (v->started) {
		pthread_mutex_lock(&v->mu);
		atomic_store(&v->cancel, 1);
		pthread_cond_signal(&v->cv);
		pthread_mutex_unlock(&v->mu);
		pthread_join(v->thread, NULL);
	}
	pthread_mutex_destroy(&v->mu);
	pthread_cond_destroy(&v->cv);
	wakeup_free(v->wake);
	spool_view_free(v->sv);
	if (v->ready != NULL) {
		buf_free(v->ready);
		free(v->ready);
	}
	if (v->page != NULL) {
		buf_free(v->page);
		free(v->page);
	}
	for (size_t i = 0; i < v->ngroups; i++)
		buf_free(&v->groups[i].rcpts);
	free(v->groups);
	free(v->queues);
	free(v->qindex);
	free(v->cache);
	if (v->conf != NULL)
		daemon_conf_release(v->conf);
	free(v->args);
	free(v);
}

/* The answer is whole: the "." line, then the client goes. */
static void
cv_finish(struct control_view *v)
{
	struct control_client *c = v->c;

	c->view = NULL;
	c->waiting = 0;
	cv_free(v);
	conn_write(c->conn, ".\n", 2);
	conn_close_after_flush(c->conn);
}

static void
cv_header(struct buf *out)
{
	buf_printf(out, "%-32s %-27s %-9s %12s %-20s %s\n", "Identity",
	    "DeliveryType", "Status", "MessageCount", "NextRetryTime",
	    "LastError");
}

/* Get-Queue: the next slice of lines, with each queue's live state. */
static int
cv_queue_lines(struct control_view *v, struct buf *out)
{
	struct dqueues *dqs =
	    v->ctl->qmgr != NULL ? qmgr_dqueues(v->ctl->qmgr) : NULL;
	size_t end = v->next_line + CV_SLICE;
	char when[32];

	for (; v->next_line < v->nqueues && v->next_line < end;
	     v->next_line++) {
		const struct cv_queue *q = &v->queues[v->next_line];
		const char *status = q->ready > 0 ? "Ready" : "Retry";
		char live_error[200] = "";
		unsigned conns = 0;
		const char *live =
		    dqs != NULL ? dqueues_status(dqs, q->identity, &conns,
		                      live_error, sizeof(live_error))
		                : NULL;

		/* The live queue knows better: Active, Suspended. */
		if (live != NULL && (strcmp(live, "Active") == 0 ||
		                        strcmp(live, "Suspended") == 0))
			status = live;
		if (!cv_match(v->queue, q->identity) ||
		    (v->status != NULL && strcasecmp(v->status, status) != 0) ||
		    v->seen++ < v->offset)
			continue;
		if (v->limit != 0 && v->shown++ >= v->limit) {
			v->next_line = v->nqueues;
			break;
		}
		if (q->next_retry != 0)
			control_stamp(q->next_retry, when, sizeof(when));
		else
			snprintf(when, sizeof(when), "-");
		buf_printf(out, "%-32s %-27s %-9s %12u %-20s %s\n", q->identity,
		    q->type, status, q->messages, when,
		    q->last_error[0] ? q->last_error : live_error);
	}
	return v->next_line >= v->nqueues;
}

void
control_view_pump(struct control_view *v)
{
	struct control_client *c = v->c;

	while (!conn_held(c->conn)) {
		struct buf *page;
		int last;

		if (v->table_ready) {
			struct buf out;
			int end;

			buf_init(&out, CV_PAGE_MAX);
			end = cv_queue_lines(v, &out);
			conn_write(c->conn, out.data, out.len);
			buf_free(&out);
			if (end) {
				cv_finish(v);
				return;
			}
			continue;
		}
		pthread_mutex_lock(&v->mu);
		page = v->ready;
		last = v->last;
		v->ready = NULL;
		if (page != NULL)
			pthread_cond_signal(&v->cv);
		pthread_mutex_unlock(&v->mu);
		if (page == NULL)
			return; /* the worker wakes us */
		conn_write(c->conn, page->data, page->len);
		/* a client that takes nothing for long is dropped */
		conn_set_deadline(c->conn, conn_now() + CV_STALL_SECONDS);
		/* Get-Queue's table is complete: its lines, unless the
		 * worker failed (then its page said so) */
		if (last && v->kind == CV_QUEUES && page->len == 0) {
			struct buf head;

			pthread_join(v->thread, NULL);
			v->started = 0;
			v->table_ready = 1;
			buf_init(&head, 1024);
			cv_header(&head);
			conn_write(c->conn, head.data, head.len);
			buf_free(&head);
		}
		buf_free(page);
		free(page);
		if (last && !v->table_ready) {
			cv_finish(v);
			return;
		}
	}
}

/*
 * The pump takes whatever waits: the page this wake is for may have gone
 * already (the client drained, control.c pumped), and one wake may stand
 * for the page after it too.
 */
static void
cv_wake_cb(void *arg)
{
	control_view_pump(arg);
}

void
control_view_cancel(struct control_view *v)
{
	v->c->view = NULL;
	cv_free(v);
}

void
control_view_stop_all(struct control *ctl)
{
	while (ctl->views != NULL) {
		struct control_client *c = ctl->views->c;

		control_view_cancel(ctl->views);
		conn_free(c->conn);
		free(c);
	}
}

/* A number of entries: 0 on success. */
static int
cv_count_arg(const char *s, unsigned long long *out)
{
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno != 0 || *end != '\0' ? -1 : 0;
}

/* The request's filters; -1 with the error in out. */
static int
cv_parse(
    struct control_view *v, const struct control_request *req, struct buf *out)
{
	const char *bad;
	size_t len = 0;
	char *p;

	for (int i = 0; i < req->nargs; i++)
		len += strlen(req->args[i]) + 1;
	if ((v->args = malloc(len + 1)) == NULL) {
		buf_puts(out, "error: out of memory\n");
		return -1;
	}
	p = v->args;
	for (int i = 0; i < req->nargs; i++) {
		char *a = p, *eq;

		p += snprintf(p, len + 1 - (size_t)(p - v->args), "%s",
		         req->args[i]) +
		     1;
		eq = strchr(a, '=');
		if (eq == NULL && v->kind == CV_MESSAGES)
			v->queue = a; /* "messages QUEUE" */
		else if (eq == NULL) {
			bad = a;
			goto unknown;
		} else if (strncmp(a, "queue=", 6) == 0)
			v->queue = eq + 1;
		else if (strncmp(a, "sender=", 7) == 0 &&
		         v->kind == CV_MESSAGES)
			v->sender = eq + 1;
		else if (strncmp(a, "recipient=", 10) == 0 &&
		         v->kind == CV_MESSAGES)
			v->recipient = eq + 1;
		else if (strncmp(a, "status=", 7) == 0)
			v->status = eq + 1;
		else if (strncmp(a, "limit=", 6) == 0) {
			if (cv_count_arg(eq + 1, &v->limit) < 0 ||
			    v->limit == 0) {
				buf_printf(out,
				    "error: limit %s is not a number of "
				    "entries (1 or more)\n",
				    eq + 1);
				return -1;
			}
		} else if (strncmp(a, "offset=", 7) == 0) {
			if (cv_count_arg(eq + 1, &v->offset) < 0) {
				buf_printf(out,
				    "error: offset %s is not a number of "
				    "entries (0 or more)\n",
				    eq + 1);
				return -1;
			}
		} else {
			bad = a;
			goto unknown;
		}
	}
	if (v->queue != NULL && v->queue[0] == '\0')
		v->queue = NULL;
	if (v->kind == CV_MESSAGES)
		v->finished =
		    (v->queue != NULL &&
		        strcasecmp(v->queue, CONTROL_SAFETY_NET) == 0) ||
		    (v->status != NULL &&
		        (strcasecmp(v->status, "Delivered") == 0 ||
		            strcasecmp(v->status, "Failed") == 0 ||
		            strcasecmp(v->status, "PartiallyFailed") == 0));
	return 0;
unknown:
	buf_printf(out, "error: unknown filter %s\n", bad);
	return -1;
}

int
control_view_start(struct control_client *c, const struct control_request *req,
    struct buf *out)
{
	struct control *ctl = c->ctl;
	struct control_view *v;

	if (ctl->nviews >= CV_VIEWS_MAX) {
		buf_printf(out,
		    "error: %u queue views are running already; try again "
		    "when one has finished\n",
		    ctl->nviews);
		return 0;
	}
	if ((v = calloc(1, sizeof(*v))) == NULL) {
		buf_puts(out, "error: out of memory\n");
		return 0;
	}
	v->ctl = ctl;
	v->c = c;
	v->kind = strcmp(req->verb, "queue") == 0 ? CV_QUEUES : CV_MESSAGES;
	v->now = time(NULL);
	pthread_mutex_init(&v->mu, NULL);
	pthread_cond_init(&v->cv, NULL);
	v->next = ctl->views;
	ctl->views = v;
	ctl->nviews++;
	if (cv_parse(v, req, out) < 0) {
		cv_free(v);
		return 0;
	}
	v->conf = daemon_conf_acquire(ctl->daemon);
	if ((v->page = malloc(sizeof(*v->page))) == NULL ||
	    (v->wake = wakeup_new(ctl->daemon->base, cv_wake_cb, v)) == NULL) {
		buf_puts(out, "error: out of memory\n");
		cv_free(v);
		return 0;
	}
	buf_init(v->page, CV_PAGE_MAX);
	v->sv = spool_view_new(ctl->daemon->spool);
	if (pthread_create(&v->thread, NULL, cv_worker, v) != 0) {
		buf_puts(out, "error: cannot start the view\n");
		cv_free(v);
		return 0;
	}
	v->started = 1;
	c->view = v;
	conn_set_deadline(c->conn, conn_now() + CV_STALL_SECONDS);
	return 2;
}
