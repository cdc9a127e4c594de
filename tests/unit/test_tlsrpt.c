/*
 * test_tlsrpt.c - the pure parts of TLS reporting (src/tlsrpt/): the
 * _smtp._tls record as a table of good and hostile records, mailto:
 * addresses, the report's JSON (escaping, optional members, day range),
 * the email (headers, the gzip'd attachment inflating back to the JSON),
 * and the store's counts through a real spool.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <event2/event.h>
#include <zlib.h>

#include "spool/spool.h"
#include "tlsrpt/tlsrpt_https.h"
#include "tlsrpt/tlsrpt_json.h"
#include "tlsrpt/tlsrpt_mail.h"
#include "tlsrpt/tlsrpt_send.h"
#include "tlsrpt/tlsrpt_store.h"
#include "tlsrpt/tlsrpt_txt.h"
#include "util/buf.h"
#include "util/gzip.h"

static void
test_txt_records(void **state)
{
	static const struct {
		const char *records[3];
		int ok;
		size_t n;
		const char *first;
	} t[] = {
	    {{"v=TLSRPTv1; rua=mailto:tlsrpt@example.com"}, 0, 1,
	        "mailto:tlsrpt@example.com"},
	    {{"v=TLSRPTv1;rua=mailto:a@example.com,https://r.example/v1/"}, 0,
	        2, "mailto:a@example.com"},
	    {{"v=TLSRPTv1 ; rua = mailto:a@example.com"}, -1, 0, NULL},
	    {{"v=TLSRPTv1; rua=mailto:a@example.com , https://r.example/x;"}, 0,
	        2, "mailto:a@example.com"},
	    {{"v=TLSRPTv1; ext=1; rua=https://r.example/"}, 0, 1,
	        "https://r.example/"},
	    /* other TXT records beside it are ignored */
	    {{"google-site-verification=x", "v=TLSRPTv1;rua=mailto:a@b.c"}, 0,
	        1, "mailto:a@b.c"},
	    /* two policies: none (RFC 8460 3) */
	    {{"v=TLSRPTv1;rua=mailto:a@b.c", "v=TLSRPTv1;rua=mailto:d@e.f"}, -1,
	        0, NULL},
	    {{"v=TLSRPTv2;rua=mailto:a@b.c"}, -1, 0, NULL},
	    {{"v=tlsrptv1;rua=mailto:a@b.c"}, -1, 0, NULL},
	    {{"v=TLSRPTv1"}, -1, 0, NULL},
	    {{"v=TLSRPTv1;rua=mailto:a@b.c;rua=mailto:d@e.f"}, -1, 0, NULL},
	    /* unknown schemes and broken addresses are dropped */
	    {{"v=TLSRPTv1;rua=http://insecure.example/"}, -1, 0, NULL},
	    {{"v=TLSRPTv1;rua=ftp://x/,mailto:ok@example.org"}, 0, 1,
	        "mailto:ok@example.org"},
	    {{"v=TLSRPTv1;rua=mailto:no-at-sign"}, -1, 0, NULL},
	    {{"v=TLSRPTv1;rua=mailto:a@b@c"}, -1, 0, NULL},
	    {{"v=TLSRPTv1;rua=mailto:a@b.c?subject=x"}, -1, 0, NULL},
	    {{"v=TLSRPTv1;rua=mailto:a\x01@b.c"}, -1, 0, NULL},
	    {{"v=TLSRPTv1;garbage"}, -1, 0, NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct tlsrpt_rua rua;
		const char *why = NULL;
		size_t n = 0;
		int rc;

		while (n < 3 && t[i].records[n] != NULL)
			n++;
		rc = tlsrpt_txt_parse(t[i].records, n, &rua, &why);
		if (rc != t[i].ok)
			fail_msg("%s: got %d (%s)", t[i].records[n - 1], rc,
			    why ? why : "");
		if (rc == 0) {
			assert_int_equal(rua.n, t[i].n);
			assert_string_equal(rua.uri[0], t[i].first);
		} else {
			assert_non_null(why);
		}
	}
}

static void
test_mailto(void **state)
{
	static const struct {
		const char *uri, *want;
	} t[] = {
	    {"mailto:tlsrpt@example.com", "tlsrpt@example.com"},
	    {"MAILTO:a%2Bb@example.com", "a+b@example.com"},
	    {"mailto:a%0D%0Ab@example.com", NULL},
	    {"mailto:a%3Eb@example.com", NULL},
	    {"mailto:a%2", NULL},
	    {"mailto:", NULL},
	    {"https://x/", NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char out[256];
		int rc = tlsrpt_mailto_addr(t[i].uri, out, sizeof(out));

		if (t[i].want == NULL) {
			if (rc != -1)
				fail_msg("%s: accepted as %s", t[i].uri, out);
		} else {
			assert_int_equal(rc, 0);
			assert_string_equal(out, t[i].want);
		}
	}
}

static void
test_https_target(void **state)
{
	static const struct {
		const char *url, *host;
		unsigned port;
	} t[] = {
	    {"https://reports.example.com/v1/tlsrpt", "reports.example.com",
	        443},
	    {"https://reports.example.com:8443/x?y=z", "reports.example.com",
	        8443},
	    {"HTTPS://R.example/", "R.example", 443},
	    {"http://reports.example.com/", NULL, 0},
	    {"https://[2001:db8::1]/", NULL, 0},
	    {"https://x.example:0/", NULL, 0},
	    {"https://x.example:99999/", NULL, 0},
	    {"mailto:a@b.c", NULL, 0},
	    {"not a url", NULL, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char host[256];
		unsigned port = 0;
		int rc =
		    tlsrpt_https_target(t[i].url, host, sizeof(host), &port);

		if (t[i].host == NULL) {
			if (rc != -1)
				fail_msg("%s: accepted", t[i].url);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_string_equal(host, t[i].host);
		assert_int_equal(port, t[i].port);
	}
}

static struct tlsrpt_failure sample_details[] = {
    {"certificate-expired", "192.0.2.1", "mx1.example.com", "mx1 \"x\"",
        "198.51.100.7", "certificate has expired\n", 3},
    {"starttls-not-supported", "192.0.2.1", "mx2.example.com", "", "", "", 1},
};

static void
sample_report(struct tlsrpt_report *r, struct tlsrpt_policy *p)
{
	memset(r, 0, sizeof(*r));
	memset(p, 0, sizeof(*p));
	r->organization = "Contoso \\ \"Mail\"";
	r->contact = "postmaster@contoso.example";
	snprintf(r->report_id, sizeof(r->report_id), "id-1@contoso.example");
	snprintf(r->day, sizeof(r->day), "2026-12-02");
	snprintf(p->type, sizeof(p->type), "no-policy-found");
	snprintf(p->domain, sizeof(p->domain), "example.com");
	p->ok = 10;
	p->failed = 4;
	p->details = sample_details;
	p->ndetails = 2;
	r->policies = p;
	r->npolicies = 1;
}

static void
test_json(void **state)
{
	struct tlsrpt_report r;
	struct tlsrpt_policy p;
	struct buf b;
	const char *s;

	(void)state;
	sample_report(&r, &p);
	buf_init(&b, 1 << 20);
	assert_int_equal(tlsrpt_json(&r, 0, &b), 0);
	s = b.data;
	assert_non_null(strstr(s, "\"organization-name\":\"Contoso \\\\ "
	                          "\\\"Mail\\\"\""));
	assert_non_null(
	    strstr(s, "\"date-range\":{\"start-datetime\":\"2026-12-02T00:00:"
	              "00Z\",\"end-datetime\":\"2026-12-02T23:59:59Z\"}"));
	assert_non_null(
	    strstr(s, "\"policy\":{\"policy-type\":\"no-policy-"
	              "found\",\"policy-domain\":\"example.com\"}"));
	assert_non_null(strstr(s, "\"summary\":{\"total-successful-session-"
	                          "count\":10,\"total-failure-session-count\":"
	                          "4}"));
	assert_non_null(strstr(s, "\"receiving-mx-helo\":\"mx1 \\\"x\\\"\""));
	assert_non_null(
	    strstr(s, "\"failure-reason-code\":\"certificate has expired"
	              "\\u000a\""));
	/* empty optional members are left out */
	assert_non_null(strstr(s, "{\"result-type\":\"starttls-not-supported\","
	                          "\"sending-mta-ip\":\"192.0.2.1\","
	                          "\"receiving-mx-hostname\":"
	                          "\"mx2.example.com\",\"failed-session-count\""
	                          ":1}"));
	assert_null(strstr(s, ":\"\""));
	assert_null(strstr(s, "policy-string"));
	buf_free(&b);
	/* policy strings and mx-host as arrays of lines */
	p.strings = strdup("version: STSv1\nmode: enforce");
	p.mx_hosts = strdup("*.example.com");
	p.ndetails = 0;
	buf_init(&b, 1 << 20);
	assert_int_equal(tlsrpt_json(&r, 1, &b), 0);
	assert_non_null(strstr(b.data, "\"policy-string\": [\n"));
	assert_non_null(strstr(b.data, "\"mode: enforce\""));
	assert_non_null(strstr(b.data, "\"mx-host\": [\n"));
	assert_null(strstr(b.data, "failure-details"));
	buf_free(&b);
	free(p.strings);
	free(p.mx_hosts);
}

static void
test_day_range(void **state)
{
	int64_t a, b;

	(void)state;
	assert_int_equal(tlsrpt_day_range("2026-12-02", &a, &b), 0);
	assert_int_equal(a, 1796169600);
	assert_int_equal(b - a, 86399);
	assert_int_equal(tlsrpt_day_range("2026-12-2", &a, &b), -1);
	assert_int_equal(tlsrpt_day_range("2026-13-02", &a, &b), -1);
	assert_int_equal(tlsrpt_day_range("yesterday!", &a, &b), -1);
	assert_int_equal(tlsrpt_day_range("2026-12-02x", &a, &b), -1);
}

/* Inflate a gzip file back (zlib's own reader, windowBits 15 + 16). */
static char *
gunzip(const unsigned char *p, size_t len, size_t *outlen)
{
	z_stream z;
	static char out[1 << 20];

	memset(&z, 0, sizeof(z));
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (Bytef *)(uintptr_t)p;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out;
	z.avail_out = sizeof(out) - 1;
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	*outlen = sizeof(out) - 1 - z.avail_out;
	out[*outlen] = '\0';
	inflateEnd(&z);
	return out;
}

static size_t
unbase64(const char *s, unsigned char *out)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                          "abcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned v = 0;
	int bits = 0;
	size_t n = 0;

	for (; *s != '\0' && *s != '-'; s++) {
		const char *k = strchr(abc, *s);

		if (*s == '=' || k == NULL || *s == '\0')
			continue;
		v = (v << 6) | (unsigned)(k - abc);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(v >> bits);
		}
	}
	return n;
}

static void
test_mail(void **state)
{
	struct tlsrpt_report r;
	struct tlsrpt_policy p;
	struct buf json, gz, mail;
	struct tlsrpt_mail m;
	static unsigned char raw[1 << 20];
	size_t rawlen, outlen;
	const char *att;
	char *back;

	(void)state;
	sample_report(&r, &p);
	buf_init(&json, 1 << 20);
	buf_init(&gz, 1 << 20);
	buf_init(&mail, 1 << 22);
	assert_int_equal(tlsrpt_json(&r, 0, &json), 0);
	assert_int_equal(gzip_compress(json.data, json.len, &gz), 0);
	memset(&m, 0, sizeof(m));
	m.from = "postmaster@contoso.example";
	m.to = "tlsrpt@example.com";
	m.domain = "example.com";
	m.submitter = "contoso.example";
	m.report_id = "id-1@contoso.example";
	m.message_id = "m1@contoso.example";
	m.start = 1796169600;
	m.end = 1796255999;
	m.now = 1796260000;
	m.gzip = gz.data;
	m.gzip_len = gz.len;
	assert_int_equal(tlsrpt_mail_compose(&m, &mail), 0);
	assert_non_null(strstr(mail.data,
	    "Subject: Report Domain: example.com\r\n Submitter: "
	    "contoso.example\r\n Report-ID: <id-1@contoso.example>\r\n"));
	assert_non_null(
	    strstr(mail.data, "TLS-Report-Domain: example.com\r\n"));
	assert_non_null(
	    strstr(mail.data, "TLS-Report-Submitter: contoso.example\r\n"));
	assert_non_null(strstr(mail.data, "TLS-Required: No\r\n"));
	assert_non_null(strstr(mail.data,
	    "Content-Type: multipart/report; report-type=\"tlsrpt\";"));
	assert_non_null(strstr(mail.data, "filename=\"contoso.example!"
	                                  "example.com!1796169600!1796255999"
	                                  ".json.gz\""));
	/* no bare CR or LF, no line over 998 octets */
	for (size_t i = 0, line = 0; i < mail.len; i++) {
		if (mail.data[i] == '\n')
			assert_true(i > 0 && mail.data[i - 1] == '\r');
		if (mail.data[i] == '\r')
			assert_true(mail.data[i + 1] == '\n');
		line = mail.data[i] == '\n' ? 0 : line + 1;
		assert_true(line <= 998);
	}
	/* the attachment is the JSON, gzip intact */
	att = strstr(mail.data, "Content-Type: application/tlsrpt+gzip");
	assert_non_null(att);
	att = strstr(att, "\r\n\r\n") + 4;
	rawlen = unbase64(att, raw);
	assert_int_equal(rawlen, gz.len);
	back = gunzip(raw, rawlen, &outlen);
	assert_int_equal(outlen, json.len);
	assert_memory_equal(back, json.data, json.len);
	/* a header field from DNS with a line break is refused */
	m.domain = "example.com\r\nBcc: x@y";
	buf_reset(&mail);
	assert_int_equal(tlsrpt_mail_compose(&m, &mail), -1);
	buf_free(&json);
	buf_free(&gz);
	buf_free(&mail);
}

static void
flushed(void *arg, int ok, const char *queue_id)
{
	(void)queue_id;
	*(int *)arg = ok ? 1 : -1;
}

static void
test_store(void **state)
{
	char tmpl[] = "/tmp/sluice-tlsrpt-XXXXXX", today[11], cmd[300];
	char *dir = mkdtemp(tmpl), **domains;
	struct event_base *base = event_base_new();
	const char *why = NULL;
	struct tlsrpt_session s;
	struct tlsrpt_report r;
	struct spool *sp;
	struct tlsrpt_store *st;
	size_t n;
	int done = 0;

	(void)state;
	assert_non_null(dir);
	sp = spool_open(dir, base, &why);
	assert_non_null(sp);
	st = tlsrpt_store_new(sp, base);
	assert_non_null(st);
	memset(&s, 0, sizeof(s));
	s.domain = "example.com";
	s.policy_type = "no-policy-found";
	s.policy_strings = "";
	s.mx_patterns = "";
	s.sending_ip = "192.0.2.1";
	s.mx_host = "mx1.example.com";
	s.mx_helo = "mx1.example.com";
	s.receiving_ip = "198.51.100.7";
	for (int i = 0; i < 5; i++) {
		s.result = TLS_RESULT_OK;
		tlsrpt_store_session(st, &s);
	}
	s.result = TLS_RESULT_CERTIFICATE_EXPIRED;
	s.reason = "certificate has expired";
	tlsrpt_store_session(st, &s);
	tlsrpt_store_session(st, &s);
	s.result = TLS_RESULT_STARTTLS_NOT_SUPPORTED;
	s.reason = "no STARTTLS";
	s.domain = "other.example";
	tlsrpt_store_session(st, &s);
	assert_int_equal(tlsrpt_store_flush(st, flushed, &done), 0);
	while (done == 0)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(done, 1);
	tlsrpt_day(time(NULL), today);
	assert_int_equal(tlsrpt_store_domains(st, today, &domains, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(domains[0], "example.com");
	tlsrpt_store_domains_free(domains, n);
	memset(&r, 0, sizeof(r));
	assert_int_equal(tlsrpt_store_report(st, today, "example.com", &r), 0);
	assert_int_equal(r.npolicies, 1);
	assert_int_equal(r.policies[0].ok, 5);
	assert_int_equal(r.policies[0].failed, 2);
	assert_int_equal(r.policies[0].ndetails, 1);
	assert_string_equal(
	    r.policies[0].details[0].result, "certificate-expired");
	assert_int_equal(r.policies[0].details[0].count, 2);
	assert_string_equal(
	    r.policies[0].details[0].receiving_ip, "198.51.100.7");
	tlsrpt_report_clear(&r);
	/* what was sent, once */
	assert_int_equal(
	    tlsrpt_store_state(st, today, "example.com", "mailto:a@b.c", NULL),
	    TLSRPT_NEW);
	done = 0;
	assert_int_equal(
	    tlsrpt_store_mark(st, today, "example.com", "mailto:a@b.c", "id",
	        TLSRPT_SENT, "", "", flushed, &done),
	    0);
	while (done == 0)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(
	    tlsrpt_store_state(st, today, "example.com", "mailto:a@b.c", NULL),
	    TLSRPT_SENT);
	/* queued: no attempt counted, the queue id kept */
	done = 0;
	assert_int_equal(
	    tlsrpt_store_mark(st, today, "example.com", "mailto:x@y.z", "id",
	        TLSRPT_QUEUED, "", "0000AAAA00000001", flushed, &done),
	    0);
	while (done == 0)
		event_base_loop(base, EVLOOP_ONCE);
	{
		struct tlsrpt_sent_row row;

		assert_int_equal(tlsrpt_store_state(st, today, "example.com",
		                     "mailto:x@y.z", &row),
		    TLSRPT_QUEUED);
		assert_int_equal(row.attempts, 0);
		assert_string_equal(row.queue_id, "0000AAAA00000001");
		/* no such message: a crash came before it was stored */
		assert_int_equal(
		    tlsrpt_store_in_queue(st, "0000AAAA00000001"), 0);
	}
	tlsrpt_store_free(st);
	spool_close(sp);
	event_base_free(base);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* Pauses between attempts: 10 minutes, doubling (docs/tls.md). */
static void
test_send_pause(void **state)
{
	static const struct {
		unsigned failed;
		long pause;
	} t[] = {
	    {0, 0}, {1, 600}, {2, 1200}, {3, 2400}, {5, 9600},
	    {TLSRPT_SEND_ATTEMPTS, 19200},
	    {100, 600L << 15}, /* bounded, never an overflow */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_int_equal(tlsrpt_send_pause(t[i].failed), t[i].pause);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_txt_records),
	    cmocka_unit_test(test_mailto),
	    cmocka_unit_test(test_https_target),
	    cmocka_unit_test(test_json),
	    cmocka_unit_test(test_day_range),
	    cmocka_unit_test(test_mail),
	    cmocka_unit_test(test_store),
	    cmocka_unit_test(test_send_pause),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
