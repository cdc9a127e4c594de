/*
 * metrics.h - the daemon's counters and histograms, rendered in
 * Prometheus's text exposition format (version 0.0.4) at /metrics on the
 * status listener (status_http.c).
 *
 * Every family has a fixed name, help text and label names; a series is
 * one combination of label values (a connector, a policy ...).  Counting
 * is a hash of the label values and an increment, on the event loop
 * thread only (every event counted here happens there), so nothing is
 * locked or atomic.  A family holds at most METRICS_SERIES_MAX series;
 * further label values are counted under the value "other", so a flood
 * of names (queues of many domains) cannot grow memory.
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct buf;
struct metrics;

enum metrics_family {
	/* counters, label connector */
	METRIC_RECEIVED,  /* sluice_messages_received_total */
	METRIC_DELIVERED, /* sluice_messages_delivered_total */
	METRIC_DEFERRED,  /* sluice_messages_deferred_total */
	METRIC_RETURNED,  /* sluice_messages_returned_total */
	/* sluice_sessions_total{direction,connector} */
	METRIC_SESSIONS,
	/* sluice_tls_sessions_total{direction,policy,result} */
	METRIC_TLS,
	/* histograms */
	METRIC_COMMIT_LATENCY,   /* sluice_commit_latency_seconds */
	METRIC_DELIVERY_LATENCY, /* sluice_delivery_latency_seconds{connector}
	                          */
	METRIC_FAMILIES
};

/* Series per family at most; past it the label values are "other". */
#define METRICS_SERIES_MAX 512
/* A label value is cut to this many bytes. */
#define METRICS_LABEL_MAX 120

struct metrics *metrics_new(void);
void metrics_free(struct metrics *);

/*
 * Add n to a counter family's series of these label values (as many as
 * the family has labels; the rest NULL).  A NULL metrics counts nothing.
 */
void metrics_add(struct metrics *, enum metrics_family, const char *l1,
    const char *l2, const char *l3, uint64_t n);
/* Record one value (seconds) in a histogram family. */
void metrics_observe(
    struct metrics *, enum metrics_family, const char *l1, double value);

/*
 * Append every family in the text exposition format (HELP, TYPE, then the
 * series in the order they first appeared).  -1 when out would overflow.
 */
int metrics_render(const struct metrics *, struct buf *out);

/*
 * One sample line in the text format, for the gauges the status listener
 * computes when asked (queue depths, open sessions): NAME{LABEL="VALUE"}
 * VALUE, with the label value escaped (backslash, quote, new line).
 * label may be NULL.
 */
int metrics_gauge(struct buf *out, const char *name, const char *label,
    const char *value, double v);
/* Escape a label value as the text format wants it. */
int metrics_escape(struct buf *out, const char *value);

#endif
