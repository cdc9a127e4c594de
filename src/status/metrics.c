/*
 * metrics.c - counters and histograms for /metrics (see metrics.h).
 *
 * Where it sits: the session (messages received, sessions, inbound TLS,
 * commit latency), outcome.c (delivered, deferred, returned, delivery
 * latency) and the delivery queues (outbound sessions and their TLS
 * result) call metrics_add() and metrics_observe() on the event loop;
 * the status listener renders them when scraped.
 *
 * Cost on the hot path: one FNV-1a hash of a short key and a probe of an
 * open-addressing table that is never more than half full, then plain
 * increments.  A series is allocated once, the first time its label
 * values are seen, and lives as long as the daemon.
 *
 * Names follow Prometheus's conventions: a unit suffix (_seconds), _total
 * for counters, snake case, and every name starts with sluice_.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status/metrics.h"
#include "util/buf.h"
#include "util/fnv.h"

/* Table slots per family: twice the series, so probes stay short. */
#define METRICS_SLOTS (2 * METRICS_SERIES_MAX)
/* Labels per family at most. */
#define METRICS_LABELS 3
/* Buckets per histogram at most (without +Inf). */
#define METRICS_BUCKETS_MAX 16
/* Separates label values inside a series key; never in a value. */
#define METRICS_SEP '\x1f'

enum metrics_type { METRICS_COUNTER, METRICS_HISTOGRAM };

struct metrics_def {
	const char *name;
	const char *help;
	enum metrics_type type;
	const char *labels[METRICS_LABELS]; /* NULL-terminated early */
	const double *buckets;              /* histograms: upper bounds */
	size_t nbuckets;
};

/*
 * Commit latency: from the end of a message to its durable commit, which
 * is one fsync shared by a batch: a millisecond on a good disk, tens of
 * them on a busy or networked one, seconds when something is wrong.
 */
static const double metrics_commit_buckets[] = {0.0005, 0.001, 0.0025, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
/*
 * Delivery latency: from receipt to delivery, which is a fraction of a
 * second when the next hop answers at once and up to the expiry (two
 * days by default) when it does not.
 */
static const double metrics_delivery_buckets[] = {
    0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400, 172800};

static const struct metrics_def metrics_defs[METRIC_FAMILIES] = {
    [METRIC_RECEIVED] = {"sluice_messages_received_total",
        "Messages accepted (250 to the end of data), by receive connector.",
        METRICS_COUNTER, {"connector"}, NULL, 0},
    [METRIC_DELIVERED] = {"sluice_messages_delivered_total",
        "Messages delivered by an attempt (a next hop or a mailbox took at "
        "least one recipient), by send connector or Maildir.",
        METRICS_COUNTER, {"connector"}, NULL, 0},
    [METRIC_DEFERRED] = {"sluice_messages_deferred_total",
        "Messages deferred by an attempt (at least one recipient waits for "
        "a retry), by send connector or Maildir.",
        METRICS_COUNTER, {"connector"}, NULL, 0},
    [METRIC_RETURNED] = {"sluice_messages_returned_total",
        "Messages failed by an attempt or expired (at least one recipient "
        "failed for good), by send connector or Maildir.",
        METRICS_COUNTER, {"connector"}, NULL, 0},
    [METRIC_SESSIONS] = {"sluice_sessions_total",
        "SMTP sessions: inbound connections accepted by a receive "
        "connector, outbound connections that reached a next hop's "
        "greeting.",
        METRICS_COUNTER, {"direction", "connector"}, NULL, 0},
    [METRIC_TLS] = {"sluice_tls_sessions_total",
        "TLS outcome of each session by the policy that applied: "
        "verified, encrypted, none, or the RFC 8460 failure type.",
        METRICS_COUNTER, {"direction", "policy", "result"}, NULL, 0},
    [METRIC_COMMIT_LATENCY] = {"sluice_commit_latency_seconds",
        "From the end of a message's data to its durable commit (the 250).",
        METRICS_HISTOGRAM, {NULL}, metrics_commit_buckets,
        sizeof(metrics_commit_buckets) / sizeof(double)},
    [METRIC_DELIVERY_LATENCY] = {"sluice_delivery_latency_seconds",
        "From a message's receipt to its delivery, by send connector or "
        "Maildir.",
        METRICS_HISTOGRAM, {"connector"}, metrics_delivery_buckets,
        sizeof(metrics_delivery_buckets) / sizeof(double)},
};

struct metrics_series {
	struct metrics_series *next; /* in order of appearance */
	uint64_t count;              /* counter value, or observations */
	double sum;                  /* histograms */
	uint64_t buckets[METRICS_BUCKETS_MAX];
	char key[]; /* label values joined by METRICS_SEP */
};

struct metrics_table {
	struct metrics_series *slots[METRICS_SLOTS];
	struct metrics_series *first, **last;
	size_t n;
};

struct metrics {
	struct metrics_table t[METRIC_FAMILIES];
};

struct metrics *
metrics_new(void)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	for (int f = 0; f < METRIC_FAMILIES; f++)
		m->t[f].last = &m->t[f].first;
	return m;
}

void
metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	for (int f = 0; f < METRIC_FAMILIES; f++) {
		struct metrics_series *s, *next;

		for (s = m->t[f].first; s != NULL; s = next) {
			next = s->next;
			free(s);
		}
	}
	free(m);
}

/* The series key: values cut and cleaned, joined by METRICS_SEP. */
static size_t
metrics_key(const char *const *v, size_t nlabels, char *key, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < nlabels; i++) {
		const char *p = v[i] != NULL ? v[i] : "";
		size_t k = 0;

		if (i > 0 && n + 1 < len)
			key[n++] = METRICS_SEP;
		for (; p[k] != '\0' && k < METRICS_LABEL_MAX && n + 1 < len;
		     k++) {
			unsigned char ch = (unsigned char)p[k];

			/* controls (and the separator) never reach a label */
			key[n++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
		}
	}
	key[n] = '\0';
	return n;
}

static struct metrics_series *
metrics_find(struct metrics_table *t, const char *key, size_t klen, size_t max)
{
	size_t i;

	for (i = fnv_32(FNV_32_INIT, key, klen) % METRICS_SLOTS;
	     t->slots[i] != NULL; i = (i + 1) % METRICS_SLOTS)
		if (strcmp(t->slots[i]->key, key) == 0)
			return t->slots[i];
	if (t->n >= max)
		return NULL;
	if ((t->slots[i] = calloc(1, sizeof(*t->slots[i]) + klen + 1)) == NULL)
		return NULL;
	memcpy(t->slots[i]->key, key, klen + 1);
	*t->last = t->slots[i];
	t->last = &t->slots[i]->next;
	t->n++;
	return t->slots[i];
}

static struct metrics_series *
metrics_series(struct metrics *m, enum metrics_family f, const char *l1,
    const char *l2, const char *l3)
{
	const struct metrics_def *d = &metrics_defs[f];
	const char *v[METRICS_LABELS] = {l1, l2, l3};
	char key[METRICS_LABELS * (METRICS_LABEL_MAX + 1) + 1];
	size_t nlabels = 0, klen;
	struct metrics_series *s;

	while (nlabels < METRICS_LABELS && d->labels[nlabels] != NULL)
		nlabels++;
	klen = metrics_key(v, nlabels, key, sizeof(key));
	if ((s = metrics_find(&m->t[f], key, klen, METRICS_SERIES_MAX)) != NULL)
		return s;
	/*
	 * The family is full: every further combination is "other", which
	 * may take one series more (the table has room for twice the max).
	 */
	for (size_t i = 0; i < nlabels; i++)
		v[i] = "other";
	klen = metrics_key(v, nlabels, key, sizeof(key));
	return metrics_find(&m->t[f], key, klen, METRICS_SERIES_MAX + 1);
}

void
metrics_add(struct metrics *m, enum metrics_family f, const char *l1,
    const char *l2, const char *l3, uint64_t n)
{
	struct metrics_series *s;

	if (m == NULL || metrics_defs[f].type != METRICS_COUNTER)
		return;
	if ((s = metrics_series(m, f, l1, l2, l3)) != NULL)
		s->count += n;
}

void
metrics_observe(
    struct metrics *m, enum metrics_family f, const char *l1, double value)
{
	const struct metrics_def *d = &metrics_defs[f];
	struct metrics_series *s;

	if (m == NULL || d->type != METRICS_HISTOGRAM)
		return;
	if ((s = metrics_series(m, f, l1, NULL, NULL)) == NULL)
		return;
	if (value < 0)
		value = 0;
	s->count++;
	s->sum += value;
	/* Counted in its own bucket; rendering makes them cumulative. */
	for (size_t i = 0; i < d->nbuckets; i++)
		if (value <= d->buckets[i]) {
			s->buckets[i]++;
			break;
		}
}

int
metrics_escape(struct buf *out, const char *value)
{
	for (const char *p = value; *p != '\0'; p++) {
		int rc;

		if (*p == '\\')
			rc = buf_puts(out, "\\\\");
		else if (*p == '"')
			rc = buf_puts(out, "\\\"");
		else if (*p == '\n')
			rc = buf_puts(out, "\\n");
		else
			rc = buf_append(out, p, 1);
		if (rc != BUF_OK)
			return -1;
	}
	return 0;
}

/* {a="x",b="y"[,le="0.5"]} or nothing when there are no labels. */
static int
metrics_labels(struct buf *out, const struct metrics_def *d, const char *key,
    const char *le)
{
	const char *p = key;
	int any = 0;

	for (size_t i = 0; i < METRICS_LABELS && d->labels[i] != NULL; i++) {
		const char *end = strchr(p, METRICS_SEP);
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
		char value[METRICS_LABEL_MAX + 1];

		if (n > METRICS_LABEL_MAX)
			n = METRICS_LABEL_MAX;
		memcpy(value, p, n);
		value[n] = '\0';
		if (buf_printf(out, "%s%s=\"", any ? "," : "{", d->labels[i]) !=
		        BUF_OK ||
		    metrics_escape(out, value) < 0 ||
		    buf_puts(out, "\"") != BUF_OK)
			return -1;
		any = 1;
		p = end != NULL ? end + 1 : p + n;
	}
	if (le != NULL &&
	    buf_printf(out, "%sle=\"%s\"", any ? "," : "{", le) != BUF_OK)
		return -1;
	if ((any || le != NULL) && buf_puts(out, "}") != BUF_OK)
		return -1;
	return 0;
}

static int
metrics_render_histogram(struct buf *out, const struct metrics_def *d,
    const struct metrics_series *s)
{
	uint64_t cumulative = 0;
	char le[32];

	for (size_t i = 0; i < d->nbuckets; i++) {
		cumulative += s->buckets[i];
		snprintf(le, sizeof(le), "%g", d->buckets[i]);
		if (buf_printf(out, "%s_bucket", d->name) != BUF_OK ||
		    metrics_labels(out, d, s->key, le) < 0 ||
		    buf_printf(out, " %llu\n",
		        (unsigned long long)cumulative) != BUF_OK)
			return -1;
	}
	if (buf_printf(out, "%s_bucket", d->name) != BUF_OK ||
	    metrics_labels(out, d, s->key, "+Inf") < 0 ||
	    buf_printf(out, " %llu\n", (unsigned long long)s->count) !=
	        BUF_OK ||
	    buf_printf(out, "%s_sum", d->name) != BUF_OK ||
	    metrics_labels(out, d, s->key, NULL) < 0 ||
	    buf_printf(out, " %.9g\n", s->sum) != BUF_OK ||
	    buf_printf(out, "%s_count", d->name) != BUF_OK ||
	    metrics_labels(out, d, s->key, NULL) < 0 ||
	    buf_printf(out, " %llu\n", (unsigned long long)s->count) != BUF_OK)
		return -1;
	return 0;
}

int
metrics_render(const struct metrics *m, struct buf *out)
{
	for (int f = 0; f < METRIC_FAMILIES; f++) {
		const struct metrics_def *d = &metrics_defs[f];

		/* Text format 0.0.4: HELP and TYPE carry the sample's name
		 * (a counter's with _total), as Prometheus's clients write. */
		if (buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", d->name,
		        d->help, d->name,
		        d->type == METRICS_COUNTER ? "counter" : "histogram") !=
		    BUF_OK)
			return -1;
		if (m == NULL)
			continue;
		for (const struct metrics_series *s = m->t[f].first; s != NULL;
		     s = s->next) {
			if (d->type == METRICS_HISTOGRAM) {
				if (metrics_render_histogram(out, d, s) < 0)
					return -1;
				continue;
			}
			if (buf_puts(out, d->name) != BUF_OK ||
			    metrics_labels(out, d, s->key, NULL) < 0 ||
			    buf_printf(out, " %llu\n",
			        (unsigned long long)s->count) != BUF_OK)
				return -1;
		}
	}
	return 0;
}

int
metrics_gauge(struct buf *out, const char *name, const char *label,
    const char *value, double v)
{
	if (buf_puts(out, name) != BUF_OK)
		return -1;
	if (label != NULL && (buf_printf(out, "{%s=\"", label) != BUF_OK ||
	                         metrics_escape(out, value) < 0 ||
	                         buf_puts(out, "\"}") != BUF_OK))
		return -1;
	return buf_printf(out, " %.17g\n", v) == BUF_OK ? 0 : -1;
}
