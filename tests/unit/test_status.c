/*
 * test_status.c - the pure parts of the status listener (src/status/,
 * src/tls/tls_result.c, src/util/html.c) as tables: metric rendering and
 * escaping, the series bound, histograms, RFC 8460 result types, which
 * status codes are TLS, HTML escaping, the Host check; and the posture's
 * counts through a real spool: the same figures from memory before a
 * flush and from the queue database after it, never counted twice.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "spool/spool.h"
#include "status/metrics.h"
#include "status/posture.h"
#include "status/status_http.h"
#include "tls/tls_result.h"
#include "util/buf.h"
#include "util/html.h"

static char *
render(struct metrics *m)
{
	struct buf b;
	size_t len;

	buf_init(&b, 16 * 1024 * 1024);
	assert_int_equal(metrics_render(m, &b), 0);
	return buf_steal(&b, &len);
}

static void
test_metrics_counters(void **state)
{
	struct metrics *m = metrics_new();
	char *out;

	(void)state;
	metrics_add(m, METRIC_RECEIVED, "Default Frontend", NULL, NULL, 1);
	metrics_add(m, METRIC_RECEIVED, "Default Frontend", NULL, NULL, 2);
	metrics_add(m, METRIC_RECEIVED, "q\"b\\c\nd", NULL, NULL, 1);
	metrics_add(m, METRIC_TLS, "outbound", "DomainValidation",
	    "certificate-expired", 4);
	/* a histogram family is not a counter: ignored */
	metrics_add(m, METRIC_COMMIT_LATENCY, NULL, NULL, NULL, 9);
	/* NULL metrics count nothing and do not crash */
	metrics_add(NULL, METRIC_RECEIVED, "x", NULL, NULL, 1);
	out = render(m);
	assert_non_null(strstr(out, "# TYPE sluice_messages_received_total "
	                            "counter\n"));
	assert_non_null(strstr(out, "sluice_messages_received_total{connector="
	                            "\"Default Frontend\"} 3\n"));
	/* the text format's three escapes */
	assert_non_null(strstr(out, "{connector=\"q\\\"b\\\\c?d\"} 1\n"));
	assert_non_null(strstr(out, "sluice_tls_sessions_total{direction="
	                            "\"outbound\",policy=\"DomainValidation\","
	                            "result=\"certificate-expired\"} 4\n"));
	assert_null(strstr(out, "sluice_commit_latency_seconds_count 9"));
	free(out);
	metrics_free(m);
}

static void
test_metrics_histogram(void **state)
{
	struct metrics *m = metrics_new();
	char *out;

	(void)state;
	metrics_observe(m, METRIC_COMMIT_LATENCY, NULL, 0.0002);
	metrics_observe(m, METRIC_COMMIT_LATENCY, NULL, 0.003);
	metrics_observe(m, METRIC_COMMIT_LATENCY, NULL, 0.003);
	metrics_observe(m, METRIC_COMMIT_LATENCY, NULL, 60);
	metrics_observe(m, METRIC_COMMIT_LATENCY, NULL, -1); /* as 0 */
	out = render(m);
	/* cumulative buckets, +Inf equals the count */
	assert_non_null(
	    strstr(out, "sluice_commit_latency_seconds_bucket{le=\"0.0005\"} "
	                "2\n"));
	assert_non_null(
	    strstr(out, "sluice_commit_latency_seconds_bucket{le=\"0.0025\"} "
	                "2\n"));
	assert_non_null(strstr(
	    out, "sluice_commit_latency_seconds_bucket{le=\"0.005\"} 4\n"));
	assert_non_null(
	    strstr(out, "sluice_commit_latency_seconds_bucket{le=\"10\"} 4\n"));
	assert_non_null(strstr(
	    out, "sluice_commit_latency_seconds_bucket{le=\"+Inf\"} 5\n"));
	assert_non_null(strstr(out, "sluice_commit_latency_seconds_count 5\n"));
	assert_non_null(
	    strstr(out, "sluice_commit_latency_seconds_sum 60.0062\n"));
	metrics_observe(m, METRIC_DELIVERY_LATENCY, "Maildir", 2);
	free(out);
	out = render(m);
	assert_non_null(strstr(out, "sluice_delivery_latency_seconds_bucket{"
	                            "connector=\"Maildir\",le=\"2.5\"} 1\n"));
	free(out);
	metrics_free(m);
}

/* More label values than METRICS_SERIES_MAX: the rest are "other". */
static void
test_metrics_series_bound(void **state)
{
	struct metrics *m = metrics_new();
	char name[32], *out, *p;
	size_t series = 0;

	(void)state;
	for (int i = 0; i < METRICS_SERIES_MAX + 100; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		metrics_add(m, METRIC_DELIVERED, name, NULL, NULL, 1);
	}
	out = render(m);
	for (p = out;
	     (p = strstr(p, "\nsluice_messages_delivered_total{")) != NULL; p++)
		series++;
	assert_int_equal(series, METRICS_SERIES_MAX + 1);
	assert_non_null(strstr(out, "sluice_messages_delivered_total{connector"
	                            "=\"other\"} 100\n"));
	free(out);
	metrics_free(m);
}

static void
test_tls_results(void **state)
{
	static const struct {
		enum tls_check check;
		const char *want;
	} t[] = {
	    {TLS_CHECK_OK, "ok"},
	    {TLS_CHECK_NO_TLS, "starttls-not-supported"},
	    {TLS_CHECK_HANDSHAKE, "validation-failure"},
	    {TLS_CHECK_NO_CERT, "certificate-not-trusted"},
	    {TLS_CHECK_UNTRUSTED, "certificate-not-trusted"},
	    {TLS_CHECK_EXPIRED, "certificate-expired"},
	    {TLS_CHECK_REVOKED, "validation-failure"},
	    {TLS_CHECK_NAME_MISMATCH, "certificate-host-mismatch"},
	    {TLS_CHECK_DANE, "tlsa-invalid"},
	    {TLS_CHECK_STS_MX, "validation-failure"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_string_equal(
		    tls_result_name(tls_result_from_check(t[i].check)),
		    t[i].want);
	/* every RFC 8460 name round-trips */
	for (int r = 0; r < TLS_RESULT_COUNT; r++)
		assert_int_equal(tls_result_from_name(tls_result_name(r)), r);
	assert_int_equal(tls_result_from_name("handshake-failed"), -1);
	assert_string_equal(tls_result_name(TLS_RESULT_STS_WEBPKI_INVALID),
	    "sts-webpki-invalid");
	assert_string_equal(
	    tls_result_name(TLS_RESULT_DANE_REQUIRED), "dane-required");
}

static void
test_tls_status_codes(void **state)
{
	static const struct {
		const char *enh;
		int tls;
	} t[] = {
	    {"4.7.10", 1},
	    {"4.7.5", 1},
	    {"5.7.30", 1},
	    {"4.7.4", 1},
	    {"5.7.10", 1},
	    {"4.7.0", 0},
	    {"5.7.1", 0},
	    {"4.4.1", 0},
	    {"2.0.0", 0},
	    {"4.7.10x", 0},
	    {"", 0},
	    {NULL, 0},
	    {"4.7", 0},
	    /* three digits at most per field, nothing around them */
	    {"4.7.030", 1},
	    {"4.7.0030", 0},
	    {"4.7.10 ", 0},
	    {" 4.7.10", 0},
	    {"4..10", 0},
	    {"4.7.", 0},
	    {"5.7.5.1", 0},
	    {"4.77.10", 0},
	    {"3.7.10", 0},
	    {"4.7.-10", 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (posture_tls_status(t[i].enh) != t[i].tls)
			fail_msg("%s", t[i].enh ? t[i].enh : "(null)");
}

static void
test_html_escape(void **state)
{
	static const struct {
		const char *in, *out;
	} t[] = {
	    {"plain.example", "plain.example"},
	    {"<script>x</script>", "&lt;script&gt;x&lt;/script&gt;"},
	    {"a&b \"c\" 'd'", "a&amp;b &quot;c&quot; &#39;d&#39;"},
	    {"tab\there", "tab\xef\xbf\xbdhere"},
	    {"caf\xc3\xa9", "caf\xc3\xa9"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct buf b;

		buf_init(&b, 1024);
		assert_int_equal(html_escape(&b, t[i].in), 0);
		assert_string_equal(b.data != NULL ? b.data : "", t[i].out);
		buf_free(&b);
	}
}

static void
test_host_check(void **state)
{
	static const struct {
		const char *host;
		int ok;
	} t[] = {
	    {"localhost", 1},
	    {"LOCALHOST:8025", 1},
	    {"localhost.", 1},
	    {"127.0.0.1", 1},
	    {"127.0.0.1:8025", 1},
	    {"127.9.8.7:1", 1},
	    {"[::1]", 1},
	    {"[::1]:8025", 1},
	    {NULL, 0},
	    {"", 0},
	    {"evil.example", 0},
	    {"localhost.evil.example", 0},
	    {"127.0.0.1.evil.example", 0},
	    {"10.0.0.1", 0},
	    {"[::2]", 0},
	    {"[::1", 0},
	    {"[::1]x", 0},
	    {"::1", 0},
	    {"128.0.0.1", 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (status_http_host_allowed(t[i].host) != t[i].ok)
			fail_msg("%s", t[i].host ? t[i].host : "(null)");
}

/* The report's row of one partner, or fail. */
static const struct posture_partner *
row_of(const struct posture_partner *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return &v[i];
	fail_msg("no row for %s", name);
	return NULL;
}

static void
check_counts(struct posture *ps)
{
	struct posture_partner *v;
	const struct posture_partner *p;
	size_t n;

	assert_int_equal(posture_report(ps, NULL, time(NULL), &v, &n), 0);
	assert_int_equal(n, 2);
	/* the most sessions first */
	assert_string_equal(v[0].name, "contoso.com");
	p = row_of(v, n, "contoso.com");
	assert_int_equal(p->day.sessions, 4);
	assert_int_equal(p->day.tls13, 2);
	assert_int_equal(p->day.tls12, 1);
	assert_int_equal(p->day.plaintext, 0);
	assert_int_equal(p->day.verified, 2);
	assert_int_equal(p->day.failed, 2);
	assert_int_equal(
	    p->day.failures[TLS_RESULT_CERTIFICATE_HOST_MISMATCH], 1);
	assert_int_equal(p->day.failures[TLS_RESULT_STARTTLS_NOT_SUPPORTED], 1);
	assert_int_equal(p->day.deferred, 2);
	assert_int_equal(p->day.returned, 1);
	assert_int_equal(p->week.sessions, 4);
	assert_string_equal(p->policies, "DomainValidation");
	p = row_of(v, n, "Smart Relay");
	assert_int_equal(p->day.sessions, 1);
	assert_int_equal(p->day.plaintext, 1);
	assert_string_equal(p->policies, "opportunistic");
	free(v);
	/* one partner, case-insensitively */
	assert_int_equal(
	    posture_report(ps, "CONTOSO.com", time(NULL), &v, &n), 0);
	assert_int_equal(n, 1);
	free(v);
}

static void
test_posture_memory_then_database(void **state)
{
	static const struct posture_session sessions[] = {
	    {"contoso.com", "Contoso", "DomainValidation", "TLSv1.3", 1,
	        TLS_RESULT_OK, "off", "enforce", "id1"},
	    {"contoso.com", "Contoso", "DomainValidation", "TLSv1.3", 1,
	        TLS_RESULT_OK, "off", "enforce", "id1"},
	    {"contoso.com", "Contoso", "DomainValidation", "TLSv1.2", 0,
	        TLS_RESULT_CERTIFICATE_HOST_MISMATCH, "verify", "", ""},
	    /* the last one says what applies now */
	    {"contoso.com", "Contoso", "DomainValidation", "", 0,
	        TLS_RESULT_STARTTLS_NOT_SUPPORTED, "off", "enforce", "id2"},
	    {"Smart Relay", "Smart Relay", "opportunistic", "", 0,
	        TLS_RESULT_OK, NULL, NULL, NULL},
	};
	struct posture_partner *v;
	size_t n;
	char tmpl[] = "/tmp/sluice-posture-XXXXXX";
	char *dir = mkdtemp(tmpl);
	struct event_base *base = event_base_new();
	const char *why = NULL;
	struct spool *sp;
	struct posture *ps;

	(void)state;
	assert_non_null(dir);
	sp = spool_open(dir, base, &why);
	assert_non_null(sp);
	ps = posture_new(sp, base);
	assert_non_null(ps);
	while (spool_inflight(sp) > 0) /* the tables are made */
		event_base_loop(base, EVLOOP_ONCE);
	for (size_t i = 0; i < sizeof(sessions) / sizeof(sessions[0]); i++)
		posture_session(ps, &sessions[i]);
	posture_message(ps, "contoso.com", "Contoso", 0);
	posture_message(ps, "contoso.com", "Contoso", 0);
	posture_message(ps, "contoso.com", "Contoso", 1);
	check_counts(ps); /* all in memory */
	/* DANE and MTA-STS as the last session met them */
	assert_int_equal(
	    posture_report(ps, "contoso.com", time(NULL), &v, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].dane, "off");
	assert_string_equal(v[0].mta_sts, "enforce (id id2)");
	free(v);
	assert_int_equal(
	    posture_report(ps, "Smart Relay", time(NULL), &v, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].dane, ""); /* never said */
	assert_string_equal(v[0].mta_sts, "");
	free(v);
	posture_flush(ps);
	check_counts(ps); /* with the committer: still counted once */
	while (spool_inflight(sp) > 0)
		event_base_loop(base, EVLOOP_ONCE);
	check_counts(ps); /* all in the database */
	posture_free(ps);
	/* a new posture reads what the old one stored */
	ps = posture_new(sp, base);
	while (spool_inflight(sp) > 0)
		event_base_loop(base, EVLOOP_ONCE);
	check_counts(ps);
	/* the state of then is not kept: memory only */
	assert_int_equal(
	    posture_report(ps, "contoso.com", time(NULL), &v, &n), 0);
	assert_string_equal(v[0].dane, "");
	free(v);
	posture_free(ps);
	spool_close(sp);
	event_base_free(base);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		assert_int_equal(system(cmd), 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_metrics_counters),
	    cmocka_unit_test(test_metrics_histogram),
	    cmocka_unit_test(test_metrics_series_bound),
	    cmocka_unit_test(test_tls_results),
	    cmocka_unit_test(test_tls_status_codes),
	    cmocka_unit_test(test_html_escape),
	    cmocka_unit_test(test_host_check),
	    cmocka_unit_test(test_posture_memory_then_database),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
