/*
 * control_queue.c - the control socket's queue and message commands,
 * Exchange's queue viewer in words an Exchange administrator knows:
 *
 *   queue, messages           the views (Get-Queue, Get-Message), answered
 *                             off the event loop: control_view.c
 *   retry QUEUE               try the queue's next hop now (Retry-Queue)
 *   suspend NAME, resume NAME a queue (Suspend-Queue, Resume-Queue) or
 *                             a message (Suspend-Message, Resume-Message)
 *   remove ID [ndr]           the message's pending recipients end
 *                             (Remove-Message [-WithNDR])
 *   export ID                 the stored message (Export-Message)
 *
 * Queues are derived, not stored: each pending recipient is routed with
 * the live configuration and what transport rules decided for it when it
 * was accepted, and its next hop names its queue: "Local" for
 * Authoritative domains, the recipient domain for DNS-routed connectors,
 * the connector's name for smart-host connectors, "Unreachable" when no
 * connector matches.  A message's identity is "QUEUE\ID", as `messages`
 * prints it (Exchange's Server\Queue\Id also works): the message's
 * recipients in that queue; the bare ID is all its pending recipients.
 * A name that is neither a queue nor a message is an error.
 *
 * Changes go through the spool's committer like delivery results; the
 * recipients concerned are held by the queue manager meanwhile, so none
 * is handed out before its change is durable, and the answer is written
 * once every change is.
 */
#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "control/control.h"
#include "control/control_int.h"
#include "daemon/daemon.h"
#include "log/tracklog.h"
#include "queue/dqueue.h"
#include "queue/outcome.h"
#include "queue/qmgr.h"
#include "route/route.h"
#include "spool/spool.h"
#include "util/buf.h"
#include "util/fnv.h"

/* Remove-Message -WithNDR: what the notice and the tracking log say. */
#define CQ_REMOVED_NDR                                                         \
	"550 5.0.0 QUEUE.Admin; message deleted by administrative action"
#define CQ_REMOVED "removed by the administrator"

/* --- names ------------------------------------------------------------ */

/*
 * The queue a recipient waits in, by the live configuration and what
 * transport rules decided for it at acceptance (route_recipient), as the
 * queue manager routes it.
 */
void
control_queue_of(const struct conf *conf, const struct spool_row *row, char *id,
    size_t idlen, const char **type)
{
	const char *at = strrchr(row->addr, '@');
	struct route_rules rr = {
	    row->rule_tls, row->rule_connector, row->rule_route};
	char domain[256];
	struct route r;
	size_t i;

	/* <Postmaster> (no domain) is delivered locally. */
	if (at == NULL) {
		snprintf(id, idlen, "Local");
		*type = "MaildirDelivery";
		return;
	}
	for (i = 0; at[1 + i] != '\0' && i + 1 < sizeof(domain); i++)
		domain[i] = (char)tolower((unsigned char)at[1 + i]);
	domain[i] = '\0';
	route_recipient(conf, domain, &rr, &r);
	route_queue_name(&r, domain, id, idlen, type);
}

void
control_stamp(time_t t, char *out, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A message identity: "ID", "QUEUE\ID" or "SERVER\QUEUE\ID". */
struct cq_ident {
	char queue[300]; /* "" for every queue */
	char qid[32];
};

static int
cq_ident(const char *s, struct cq_ident *id)
{
	const char *last = strrchr(s, '\\'), *prev = last;

	memset(id, 0, sizeof(*id));
	if (last != NULL) {
		while (prev > s && prev[-1] != '\\')
			prev--;
		if ((size_t)(last - prev) >= sizeof(id->queue) || last == prev)
			return -1;
		memcpy(id->queue, prev, (size_t)(last - prev));
		s = last + 1;
	}
	if (s[0] == '\0' || strlen(s) >= sizeof(id->qid) ||
	    strpbrk(s, " \t") != NULL)
		return -1;
	snprintf(id->qid, sizeof(id->qid), "%s", s);
	return 0;
}

struct cq_find {
	const struct conf *conf;
	const char *name;
	int found;
};

static int
cq_find_queue(void *arg, const struct spool_row *row)
{
	struct cq_find *f = arg;
	char id[300];
	const char *type;

	control_queue_of(f->conf, row, id, sizeof(id), &type);
	f->found = strcasecmp(id, f->name) == 0;
	return f->found;
}

/*
 * Is name a queue?  One that exists (a live delivery queue, or pending
 * mail routed to it), or one of the few the configuration names, so that
 * such a queue can be suspended before its mail comes: "Local" and the
 * smart-host connectors' names.  A domain is a queue only while it
 * exists (a "*" connector would make every name one, and a typing error
 * would suspend a queue nobody asked for).
 */
static int
cq_is_queue(struct control *ctl, const char *name)
{
	const struct conf *conf = ctl->daemon->conf->conf;
	struct cq_find f = {conf, name, 0};
	struct spool_select all = {.finished = 0};
	char err[8];
	unsigned conns;
	size_t i;

	if (name[0] == '\0')
		return 0;
	if (dqueues_status(qmgr_dqueues(ctl->qmgr), name, &conns, err,
	        sizeof(err)) != NULL)
		return 1;
	if (strcasecmp(name, "Local") == 0) {
		for (i = 0; i < conf->naccepted_domains; i++)
			if (conf->accepted_domains[i].type ==
			    DOMAIN_AUTHORITATIVE)
				return 1;
	}
	for (i = 0; i < conf->nsend_connectors; i++) {
		const struct conf_send_connector *sc =
		    &conf->send_connectors[i];

		if (sc->enabled && !sc->dns_routing_enabled &&
		    strcasecmp(sc->name, name) == 0)
			return 1;
	}
	spool_foreach(ctl->daemon->spool, &all, cq_find_queue, &f);
	return f.found;
}

/*
 * --- The queues for the status page and the metrics ---------------------
 * (sluicectl queue is control_view.c.)  Counted on status_queues.c's
 * worker thread through its own view, in segments that end at a message's
 * end, so no read transaction is held for the whole walk; at most
 * CQ_QUEUES_MAX queues (an open-addressed index finds a row's queue).
 * The live state is added on the loop (control_queue_live).
 */
#define CQ_QUEUES_MAX 4096
#define CQ_SLOTS (2 * CQ_QUEUES_MAX)
/* Recipients read per query before the walk starts a new one. */
#define CQ_SEGMENT_ROWS 16384

struct cq_queue {
	unsigned ready;
	int64_t last_message;
};

/*
 * The queue of each recipient domain seen in this walk (routing a row and
 * formatting its queue's name cost most of the walk's CPU, and a deep
 * queue has many recipients per domain): the domain, folded to lower
 * case, and its queue's index + 1.  Only for rows that transport rules
 * left alone, whose queue the domain alone decides.
 */
struct cq_domain {
	char *name;
	unsigned short queue;
};

struct cq_queues {
	const struct conf *conf;
	const atomic_int *cancel;
	struct control_queue_info *out;
	struct cq_queue *queues;
	unsigned short slots[CQ_SLOTS]; /* index + 1, 0 free */
	size_t nqueues;
	struct cq_domain domains[CQ_SLOTS]; /* name NULL: free */
	size_t ndomains;
	/* the previous row's domain (one of domains[]' names, as first
	 * written) and its queue: a deep queue's rows come in runs to one
	 * domain, found without hashing */
	const char *last_domain;
	unsigned short last_queue;
	time_t now;
	int64_t rowid, after; /* the message being read; go on after */
	size_t rows;
	int stopped;
};

/*
 * The row's queue by its domain, when this walk has routed the domain
 * before: its index + 1, or 0 (then *home is the free slot to remember
 * it in, or CQ_SLOTS when it cannot be remembered).
 */
static unsigned short
cq_domain_queue(struct cq_queues *w, const struct spool_row *p, size_t *home)
{
	const char *at = strrchr(p->addr, '@');
	size_t k;

	*home = CQ_SLOTS;
	if (at == NULL || (p->rule_tls != NULL && p->rule_tls[0] != '\0') ||
	    (p->rule_connector != NULL && p->rule_connector[0] != '\0') ||
	    (p->rule_route != NULL && p->rule_route[0] != '\0'))
		return 0;
	if (w->last_domain != NULL && strcmp(w->last_domain, at + 1) == 0)
		return w->last_queue;
	for (k = fnv_32_lower(at + 1) & (CQ_SLOTS - 1);
	     w->domains[k].name != NULL; k = (k + 1) & (CQ_SLOTS - 1))
		if (strcasecmp(w->domains[k].name, at + 1) == 0) {
			w->last_domain = w->domains[k].name;
			w->last_queue = w->domains[k].queue;
			return w->last_queue;
		}
	/* half full at most, so probes stay short */
	if (w->ndomains < CQ_SLOTS / 2)
		*home = k;
	return 0;
}

static void
cq_domain_remember(struct cq_queues *w, const struct spool_row *p, size_t home,
    unsigned short queue)
{
	if (home == CQ_SLOTS ||
	    (w->domains[home].name = strdup(strrchr(p->addr, '@') + 1)) == NULL)
		return;
	w->domains[home].queue = queue;
	w->ndomains++;
	w->last_domain = w->domains[home].name;
	w->last_queue = queue;
}

static int
cq_collect(void *arg, const struct spool_row *p)
{
	struct cq_queues *w = arg;
	struct control_queue_info *v;
	struct cq_queue *q;
	char id[300];
	const char *type;
	size_t k, home;
	unsigned short known;

	if (atomic_load(w->cancel))
		return 1;
	if (p->message_rowid != w->rowid) {
		/* a message's end: a new query from here, now and then */
		if (w->rows >= CQ_SEGMENT_ROWS) {
			w->after = w->rowid;
			w->stopped = 1;
			return 1;
		}
		w->rowid = p->message_rowid;
	}
	w->rows++;
	if ((known = cq_domain_queue(w, p, &home)) == 0) {
		control_queue_of(w->conf, p, id, sizeof(id), &type);
		for (k = fnv_32_str(id) & (CQ_SLOTS - 1); w->slots[k] != 0;
		     k = (k + 1) & (CQ_SLOTS - 1))
			if (strcmp(w->out[w->slots[k] - 1].identity, id) == 0)
				break;
		if (w->slots[k] == 0) {
			if (w->nqueues == CQ_QUEUES_MAX)
				return 0;
			v = &w->out[w->nqueues];
			snprintf(v->identity, sizeof(v->identity), "%s", id);
			v->type = type;
			w->queues[w->nqueues].last_message = -1;
			w->slots[k] = (unsigned short)++w->nqueues;
		}
		known = w->slots[k];
		cq_domain_remember(w, p, home, known);
	}
	v = &w->out[known - 1];
	q = &w->queues[known - 1];
	if (q->last_message != p->message_rowid) {
		v->messages++;
		q->last_message = p->message_rowid;
	}
	if (p->next_attempt == SPOOL_SUSPENDED)
		; /* a suspended message is neither ready nor retried */
	else if (p->next_attempt <= w->now)
		q->ready++;
	else if (v->next_retry == 0 || p->next_attempt < v->next_retry)
		v->next_retry = p->next_attempt;
	if (p->last_error[0] != '\0') {
		/* the last one in the walk's order (no snprintf: every row) */
		size_t len = strnlen(p->last_error, sizeof(v->last_error) - 1);

		memcpy(v->last_error, p->last_error, len);
		v->last_error[len] = '\0';
	}
	return 0;
}

int
control_queue_count(struct spool_view *sv, const struct conf *conf, time_t now,
    const atomic_int *cancel, struct control_queue_info **out, size_t *n)
{
	struct spool_select sel = {.queues = 1};
	struct cq_queues *w = calloc(1, sizeof(*w));
	int rc = 0;

	*out = NULL;
	*n = 0;
	if (w == NULL ||
	    (w->queues = calloc(CQ_QUEUES_MAX, sizeof(*w->queues))) == NULL ||
	    (w->out = calloc(CQ_QUEUES_MAX, sizeof(*w->out))) == NULL) {
		if (w != NULL)
			free(w->queues);
		free(w);
		return -1;
	}
	w->conf = conf;
	w->cancel = cancel;
	w->now = now;
	w->rowid = -1;
	do {
		w->stopped = 0;
		w->rows = 0;
		sel.after = w->after;
		if (spool_view_foreach(sv, &sel, cq_collect, w) < 0)
			rc = -1;
	} while (w->stopped && rc == 0 && !atomic_load(cancel));
	for (size_t i = 0; i < w->nqueues; i++)
		w->out[i].status = w->queues[i].ready > 0 ? "Ready" : "Retry";
	*out = w->out;
	*n = w->nqueues;
	for (size_t i = 0; i < CQ_SLOTS; i++)
		free(w->domains[i].name);
	free(w->queues);
	free(w);
	return atomic_load(cancel) ? -1 : rc;
}

void
control_queue_live(struct qmgr *qmgr, struct control_queue_info *v, size_t n)
{
	for (size_t i = 0; qmgr != NULL && i < n; i++) {
		char live_error[200] = "";
		unsigned conns = 0;
		const char *live = dqueues_status(qmgr_dqueues(qmgr),
		    v[i].identity, &conns, live_error, sizeof(live_error));

		/* The live queue knows better: Active, Suspended. */
		if (live != NULL && (strcmp(live, "Active") == 0 ||
		                        strcmp(live, "Suspended") == 0))
			v[i].status = live;
		if (v[i].last_error[0] == '\0')
			snprintf(v[i].last_error, sizeof(v[i].last_error), "%s",
			    live_error);
	}
}

/* --- changes to one message's recipients ------------------------------ */

enum cq_op { CQ_SUSPEND, CQ_RESUME, CQ_REMOVE, CQ_REMOVE_NDR };

struct cq_job;

struct cq_item {
	struct cq_job *job;
	int64_t rcpt_id;
	char *addr, *orcpt, *last_error, *next_hop;
	unsigned notify, attempts;
	int delay_notified;
	int held; /* held by us in the queue manager */
	int done;
};

struct cq_job {
	struct control_client *c;
	enum cq_op op;
	struct cq_ident id;
	char ident[340]; /* as the administrator wrote it */
	int64_t rowid;
	char sender[257];
	time_t received;
	struct cq_item *items;
	size_t n, cap;
	unsigned matched; /* recipients of the message in that queue */
	unsigned outstanding, ok;
	struct outcome_facts *facts; /* Remove: the tracking log's rows */
};

static void
cq_job_free(struct cq_job *j)
{
	for (size_t i = 0; i < j->n; i++) {
		free(j->items[i].addr);
		free(j->items[i].orcpt);
		free(j->items[i].last_error);
		free(j->items[i].next_hop);
	}
	free(j->items);
	free(j->facts);
	free(j);
}

static int
cq_job_row(void *arg, const struct spool_row *row)
{
	struct cq_job *j = arg;
	struct cq_item *it;
	char queue[300];
	const char *type;

	control_queue_of(
	    j->c->ctl->daemon->conf->conf, row, queue, sizeof(queue), &type);
	if (j->id.queue[0] != '\0' && strcasecmp(queue, j->id.queue) != 0)
		return 0;
	j->matched++;
	j->rowid = row->message_rowid;
	snprintf(j->sender, sizeof(j->sender), "%s", row->sender);
	j->received = row->received;
	if ((j->op == CQ_SUSPEND && row->next_attempt == SPOOL_SUSPENDED) ||
	    (j->op == CQ_RESUME && row->next_attempt != SPOOL_SUSPENDED))
		return 0;
	if (j->n == j->cap) {
		size_t cap = j->cap ? 2 * j->cap : 8;
		struct cq_item *p = realloc(j->items, cap * sizeof(*p));

		if (p == NULL)
			return 1;
		j->items = p;
		j->cap = cap;
	}
	it = &j->items[j->n];
	memset(it, 0, sizeof(*it));
	it->job = j;
	it->rcpt_id = row->rcpt_id;
	it->addr = strdup(row->addr);
	it->orcpt = strdup(row->orcpt);
	it->last_error = strdup(row->last_error);
	it->next_hop = strdup(row->next_hop);
	it->notify = row->notify;
	it->attempts = row->attempts;
	it->delay_notified = row->delay_notified;
	if (it->addr == NULL || it->orcpt == NULL || it->last_error == NULL ||
	    it->next_hop == NULL) {
		free(it->addr);
		free(it->orcpt);
		free(it->last_error);
		free(it->next_hop);
		return 1; /* out of memory: change what was read */
	}
	j->n++;
	return 0;
}

static const char *const cq_op_done[] = {
    [CQ_SUSPEND] = "suspended",
    [CQ_RESUME] = "resumed",
    [CQ_REMOVE] = "removed",
    [CQ_REMOVE_NDR] = "removed with a non-delivery report",
};

/* Every change is durable (or failed): answer. */
static void
cq_job_done(struct cq_job *j)
{
	struct buf out;

	buf_init(&out, 4096);
	if (j->ok == 0)
		buf_printf(
		    &out, "error: message %s could not be changed\n", j->ident);
	else
		buf_printf(&out, "message %s %s (%u recipient%s)\n", j->ident,
		    cq_op_done[j->op], j->ok, j->ok == 1 ? "" : "s");
	if (j->ok != 0 && j->ok < j->n)
		buf_printf(&out, "%zu recipients could not be changed\n",
		    j->n - j->ok);
	control_answer(j->c, &out);
	buf_free(&out);
	cq_job_free(j);
}

static void
cq_item_settled(struct cq_item *it, int ok)
{
	struct cq_job *j = it->job;
	struct daemon *daemon = j->c->ctl->daemon;
	struct qmgr *qmgr = j->c->ctl->qmgr;

	if (it->held)
		qmgr_release_rcpt(qmgr, it->rcpt_id, ok);
	it->done = 1;
	j->ok += ok != 0;
	if (ok && j->op == CQ_REMOVE)
		tracklog_write(daemon->tracklog,
		    &(struct track_event){.event = "FAIL",
		        .source = "ADMIN",
		        .msg = j->facts != NULL ? &j->facts->msg : NULL,
		        .recipient = it->addr,
		        .status = CQ_REMOVED,
		        .server_hostname = outcome_fqdn(daemon)});
	if (--j->outstanding == 0)
		cq_job_done(j);
}

static void
cq_recorded(void *arg, int ok, const char *queue_id)
{
	(void)queue_id;
	cq_item_settled(arg, ok);
}

/* Remove-Message -WithNDR: outcome.c stores the notice, then the failure. */
static void
cq_released(void *arg, int64_t rcpt_id, int recorded)
{
	struct cq_job *j = arg;

	for (size_t i = 0; i < j->n; i++)
		if (j->items[i].rcpt_id == rcpt_id && !j->items[i].done) {
			cq_item_settled(&j->items[i], recorded);
			return;
		}
}

static void
cq_remove_ndr(struct cq_job *j)
{
	struct daemon *daemon = j->c->ctl->daemon;
	struct outcome_rcpt *rs = calloc(j->n, sizeof(*rs));
	struct outcome o;

	if (rs == NULL) {
		for (size_t i = 0; i < j->n; i++)
			cq_item_settled(&j->items[i], 0);
		return;
	}
	for (size_t i = 0; i < j->n; i++) {
		rs[i].rcpt_id = j->items[i].rcpt_id;
		rs[i].addr = j->items[i].addr;
		rs[i].orcpt = j->items[i].orcpt;
		rs[i].notify = j->items[i].notify;
		rs[i].attempts = j->items[i].attempts;
		rs[i].delay_notified = j->items[i].delay_notified;
		rs[i].code = 550;
		rs[i].enh = "5.0.0";
		rs[i].status = CQ_REMOVED_NDR;
	}
	memset(&o, 0, sizeof(o));
	o.message_id = j->rowid;
	o.queue_id = j->id.qid;
	o.sender = j->sender;
	o.received = j->received;
	o.connector = "";
	o.host = "";
	o.queue = j->id.queue[0] ? j->id.queue : j->items[0].next_hop;
	o.tls = "";
	o.source = "ADMIN";
	o.rcpts = rs;
	o.nrcpts = j->n;
	outcome_settle(daemon, &o, cq_released, j);
	free(rs);
}

/* suspend, resume, remove of a message: 0 answered in out, 1 later. */
static int
cq_change(
    struct control_client *c, enum cq_op op, const char *ident, struct buf *out)
{
	struct daemon *daemon = c->ctl->daemon;
	struct qmgr *qmgr = c->ctl->qmgr;
	struct cq_job *j = calloc(1, sizeof(*j));
	struct spool_select sel = {.finished = 0};

	if (j == NULL) {
		buf_puts(out, "error: out of memory\n");
		return 0;
	}
	j->c = c;
	j->op = op;
	snprintf(j->ident, sizeof(j->ident), "%s", ident);
	if (cq_ident(ident, &j->id) < 0) {
		buf_printf(out,
		    "error: %s is not a message identity "
		    "(QUEUE\\ID or ID, as messages shows)\n",
		    ident);
		cq_job_free(j);
		return 0;
	}
	sel.queue_id = j->id.qid;
	if (spool_foreach(daemon->spool, &sel, cq_job_row, j) < 0) {
		buf_puts(out, "error: cannot read the queue\n");
		cq_job_free(j);
		return 0;
	}
	if (j->matched == 0) {
		buf_printf(out, "error: no %spending message %s\n",
		    op == CQ_SUSPEND || op == CQ_RESUME ? "queue or " : "",
		    ident);
		cq_job_free(j);
		return 0;
	}
	if (j->n == 0) {
		if (op == CQ_RESUME)
			buf_printf(
			    out, "error: message %s is not suspended\n", ident);
		else
			buf_printf(
			    out, "message %s is suspended already\n", ident);
		cq_job_free(j);
		return 0;
	}
	/*
	 * Out of the waiting lists first (nothing more takes it), and held,
	 * so that no walk hands a recipient out before its change is
	 * durable; recipients already on a connection finish that attempt
	 * (its result does not undo the change: see spool_record).
	 */
	if (op != CQ_RESUME)
		dqueues_forget_message(qmgr_dqueues(qmgr),
		    j->id.queue[0] ? j->id.queue : NULL, j->id.qid);
	for (size_t i = 0; i < j->n; i++)
		j->items[i].held = qmgr_hold_rcpt(qmgr, j->items[i].rcpt_id);
	j->outstanding = (unsigned)j->n;
	if (op == CQ_REMOVE && (j->facts = malloc(sizeof(*j->facts))) != NULL)
		outcome_facts(daemon, j->rowid, j->id.qid, j->facts);
	if (op == CQ_REMOVE_NDR) {
		cq_remove_ndr(j);
		return 1;
	}
	for (size_t i = 0; i < j->n; i++) {
		struct cq_item *it = &j->items[i];
		struct spool_result r;

		memset(&r, 0, sizeof(r));
		r.rcpt_id = it->rcpt_id;
		r.message_id = j->rowid;
		r.queue_id = j->id.qid;
		r.not_an_attempt = 1;
		r.next_hop = it->next_hop;
		r.error = it->last_error;
		switch (op) {
		case CQ_SUSPEND:
			r.status = SPOOL_RCPT_PENDING;
			r.next_attempt = SPOOL_SUSPENDED;
			break;
		case CQ_RESUME:
			/* due now, on the retry walk */
			r.status = SPOOL_RCPT_PENDING;
			r.next_attempt = 1;
			break;
		default:
			r.status = SPOOL_RCPT_FAILED;
			r.error = CQ_REMOVED;
			break;
		}
		if (spool_record(daemon->spool, &r, cq_recorded, it) < 0)
			cq_item_settled(it, 0);
	}
	return 1;
}

/* --- queues ------------------------------------------------------------- */

struct cq_retry {
	struct control_client *c;
	char queue[300];
	unsigned messages;
};

struct cq_count {
	const struct conf *conf;
	const char *queue;
	unsigned messages;
	int64_t last;
};

static int
cq_count_row(void *arg, const struct spool_row *row)
{
	struct cq_count *k = arg;
	char id[300];
	const char *type;

	if (row->next_attempt == SPOOL_SUSPENDED ||
	    row->message_rowid == k->last)
		return 0;
	control_queue_of(k->conf, row, id, sizeof(id), &type);
	if (strcasecmp(id, k->queue) == 0) {
		k->messages++;
		k->last = row->message_rowid;
	}
	return 0;
}

static void
cq_retried(void *arg, int ok, const char *queue_id)
{
	struct cq_retry *r = arg;
	struct buf out;

	(void)queue_id;
	buf_init(&out, 1024);
	if (!ok)
		buf_printf(
		    &out, "error: queue %s could not be changed\n", r->queue);
	else
		buf_printf(&out, "queue %s: %u message%s retried\n", r->queue,
		    r->messages, r->messages == 1 ? "" : "s");
	control_answer(r->c, &out);
	buf_free(&out);
	free(r);
}

/* Retry-Queue: its deferred messages due now, its next hop looked up. */
static int
cq_retry(struct control_client *c, const char *queue, struct buf *out)
{
	struct daemon *daemon = c->ctl->daemon;
	struct qmgr *qmgr = c->ctl->qmgr;
	struct spool_select all = {.finished = 0};
	struct cq_count k = {daemon->conf->conf, queue, 0, -1};
	struct cq_retry *r;

	if (!cq_is_queue(c->ctl, queue)) {
		buf_printf(
		    out, "error: no queue %s (see sluicectl queue)\n", queue);
		return 0;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		buf_puts(out, "error: out of memory\n");
		return 0;
	}
	spool_foreach(daemon->spool, &all, cq_count_row, &k);
	r->c = c;
	r->messages = k.messages;
	snprintf(r->queue, sizeof(r->queue), "%s", queue);
	dqueues_retry(qmgr_dqueues(qmgr), queue);
	if (spool_retry(daemon->spool, queue, cq_retried, r) < 0) {
		free(r);
		buf_puts(out, "error: out of memory\n");
		return 0;
	}
	return 1;
}

/* suspend or resume: a queue, else a message. */
static int
cq_suspend(
    struct control_client *c, const char *name, int suspend, struct buf *out)
{
	struct dqueues *dqs = qmgr_dqueues(c->ctl->qmgr);

	if (strchr(name, '\\') == NULL && cq_is_queue(c->ctl, name)) {
		if (!suspend && dqueues_suspend(dqs, name, 0) < 0) {
			buf_printf(
			    out, "error: queue %s is not suspended\n", name);
			return 0;
		}
		if (!suspend)
			qmgr_rescan(c->ctl->qmgr);
		if (suspend)
			dqueues_suspend(dqs, name, 1);
		buf_printf(out, "queue %s %s\n", name,
		    suspend ? "suspended" : "resumed");
		return 0;
	}
	if (strchr(name, '\\') == NULL && strchr(name, '.') != NULL) {
		/* a domain that is no queue: say so, not "no message" */
		buf_printf(
		    out, "error: no queue %s (see sluicectl queue)\n", name);
		return 0;
	}
	return cq_change(c, suspend ? CQ_SUSPEND : CQ_RESUME, name, out);
}

/* --- Export-Message ------------------------------------------------------ */

struct cq_export {
	const struct conf *conf;
	struct cq_ident id;
	int finished;
	int64_t rowid;
};

static int
cq_export_row(void *arg, const struct spool_row *row)
{
	struct cq_export *e = arg;
	char queue[300];
	const char *type;

	if (e->id.queue[0] != '\0') {
		if (e->finished)
			snprintf(
			    queue, sizeof(queue), "%s", CONTROL_SAFETY_NET);
		else
			control_queue_of(
			    e->conf, row, queue, sizeof(queue), &type);
		if (strcasecmp(queue, e->id.queue) != 0)
			return 0;
	}
	e->rowid = row->message_rowid;
	return 1;
}

static int
cq_export(struct control_client *c, const char *ident, struct buf *out)
{
	struct daemon *daemon = c->ctl->daemon;
	struct cq_export e;
	struct spool_select sel = {.finished = 0};
	struct spool_stored st;
	struct spool_info info;
	char head[64], *data = NULL;
	size_t len = 0;

	memset(&e, 0, sizeof(e));
	e.conf = daemon->conf->conf;
	e.rowid = -1;
	if (cq_ident(ident, &e.id) < 0) {
		buf_printf(out, "error: %s is not a message identity\n", ident);
		return 0;
	}
	sel.queue_id = e.id.qid;
	spool_foreach(daemon->spool, &sel, cq_export_row, &e);
	if (e.rowid < 0) {
		sel.finished = e.finished = 1;
		spool_foreach(daemon->spool, &sel, cq_export_row, &e);
	}
	if (e.rowid < 0) {
		buf_printf(out, "error: no message %s\n", ident);
		return 0;
	}
	/*
	 * The one place a whole message is read into memory (bounded by
	 * MaxReceiveSize): an administrator's export, written to the control
	 * socket at once.  Streaming it would need the socket layer to say
	 * when its output has drained.
	 */
	if (spool_info(daemon->spool, e.rowid, &info) < 0 || info.size < 0 ||
	    (uint64_t)info.size > SIZE_MAX - 1 ||
	    spool_load_head(daemon->spool, e.rowid, (size_t)info.size, &st,
	        &data, &len) < 0 ||
	    len != (size_t)info.size) {
		free(data);
		buf_printf(out, "error: message %s cannot be read\n", ident);
		return 0;
	}
	snprintf(head, sizeof(head), "ok %zu\n", len);
	control_answer_raw(c, head, data, len);
	free(data);
	return 2;
}

/* --- the requests -------------------------------------------------------- */

int
control_queue_run(struct control_client *c, const struct control_request *req,
    struct buf *out)
{
	const char *v = req->verb;
	const char *arg = req->nargs > 0 ? req->args[0] : NULL;

	if (strcmp(v, "queue") == 0 || strcmp(v, "messages") == 0)
		return control_view_start(c, req, out);
	if (strcmp(v, "retry") != 0 && strcmp(v, "suspend") != 0 &&
	    strcmp(v, "resume") != 0 && strcmp(v, "remove") != 0 &&
	    strcmp(v, "export") != 0)
		return -1;
	if (arg == NULL || arg[0] == '\0') {
		buf_printf(out, "error: %s needs a name\n", v);
		return 0;
	}
	if (strcmp(v, "retry") == 0)
		return cq_retry(c, arg, out);
	if (strcmp(v, "suspend") == 0 || strcmp(v, "resume") == 0)
		return cq_suspend(c, arg, v[0] == 's', out);
	if (strcmp(v, "export") == 0)
		return cq_export(c, arg, out);
	if (req->nargs > 1 && strcmp(req->args[1], "ndr") != 0) {
		buf_printf(
		    out, "error: remove: unknown option %s\n", req->args[1]);
		return 0;
	}
	return cq_change(
	    c, req->nargs > 1 ? CQ_REMOVE_NDR : CQ_REMOVE, arg, out);
}
