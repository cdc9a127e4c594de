/*
 * test_resolver.c - the pure MX steps of src/dns/resolver.c as tables
 * (RDATA parsing with hostile input, preference order, shuffling of equal
 * preferences, duplicates), and the resolver's promises that need no DNS
 * answer: bad specs, callbacks only from the event loop, smart host
 * literals in order, and resolver_free() silencing what is outstanding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>
#include <event2/event.h>

#include "dns/resolver.h"

/* A server nobody answers from; no test here waits for an answer. */
#define DEAD_SERVER "127.0.0.1@9"

/* Wire-format helper: "\x00\x0a" "\x02mx\x07example\x04test\x00". */
static size_t
mx_rdata(unsigned char *out, unsigned pref, const char *labels, size_t n)
{
	out[0] = (unsigned char)(pref >> 8);
	out[1] = (unsigned char)pref;
	memcpy(out + 2, labels, n);
	return n + 2;
}

/* A wire name and its length, without the literal's own NUL. */
#define W(s) s, sizeof(s) - 1

static void
test_mx_parse(void **state)
{
	static const struct {
		const char *wire;
		size_t len;
		int rc;
		const char *host;
	} t[] = {
	    {W("\x02mx\x07"
	       "example\x04test\x00"),
	        0, "mx.example.test"},
	    {W("\x02MX\x07"
	       "Example\x04TEST\x00"),
	        0, "mx.example.test"},
	    {W("\x00"), 0, ""}, /* root: null MX */
	    {W("\x02mx\x07"
	       "example\x04test"),
	        -1, 0}, /* no root label */
	    {W("\x02mx\x07"
	       "example\x04te"),
	        -1, 0},                        /* truncated label */
	    {W("\x02mx\xc0\x0c"), -1, 0},      /* compression */
	    {W("\x02m_\x04test\x00"), -1, 0},  /* underscore */
	    {W("\x02m x\x04test\x00"), -1, 0}, /* wrong length */
	    {W("\x03"
	       "a b\x04test\x00"),
	        -1, 0}, /* space */
	    {W("\x03"
	       "a\0b\x04test\x00"),
	        -1, 0},                   /* NUL */
	    {W("\x02mx\x00\x00"), -1, 0}, /* trailing octet */
	    {W("\x03"
	       "192\x01"
	       "0\x01"
	       "2\x01"
	       "1\x00"),
	        -1, 0}, /* literal */
	    {W("\x02mx\x03"
	       "123\x00"),
	        -1, 0}, /* numeric TLD */
	    {W("\x02mx\x04"
	       "1tld\x00"),
	        0, "mx.1tld"},
	};
	unsigned char buf[600];
	struct resolver_mx mx;

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t n = mx_rdata(buf, 10, t[i].wire, t[i].len);

		if (resolver_mx_parse(buf, n, &mx) != t[i].rc)
			fail_msg("case %zu: rc != %d", i, t[i].rc);
		if (t[i].rc == 0) {
			assert_string_equal(mx.host, t[i].host);
			assert_int_equal(mx.pref, 10);
		}
	}
	/* Too short for a preference and a name. */
	assert_int_equal(resolver_mx_parse(buf, 2, &mx), -1);
	assert_int_equal(resolver_mx_parse(NULL, 0, &mx), -1);
}

static void
test_mx_parse_lengths(void **state)
{
	unsigned char wire[600], buf[610];
	struct resolver_mx mx;
	size_t w = 0;

	(void)state;
	/* A 64-octet label is over the limit; 63 is fine. */
	wire[w++] = 64;
	memset(wire + w, 'a', 64);
	w += 64;
	wire[w++] = 0;
	assert_int_equal(
	    resolver_mx_parse(buf, mx_rdata(buf, 1, (char *)wire, w), &mx), -1);
	wire[0] = 63;
	wire[64] = 0;
	assert_int_equal(
	    resolver_mx_parse(buf, mx_rdata(buf, 1, (char *)wire, 65), &mx), 0);
	assert_int_equal(strlen(mx.host), 63);
	/* 4 labels of 63 = 255 characters with dots: over 253. */
	w = 0;
	for (int i = 0; i < 4; i++) {
		wire[w++] = 63;
		memset(wire + w, 'b', 63);
		w += 63;
	}
	wire[w++] = 0;
	assert_int_equal(
	    resolver_mx_parse(buf, mx_rdata(buf, 1, (char *)wire, w), &mx), -1);
	/* 3 labels of 63 and one of 61: 253 characters, the maximum. */
	wire[3 * 64] = 61;
	wire[3 * 64 + 62] = 0;
	assert_int_equal(resolver_mx_parse(buf,
	                     mx_rdata(buf, 1, (char *)wire, 3 * 64 + 63), &mx),
	    0);
	assert_int_equal(strlen(mx.host), 253);
}

/* Deterministic "random": always the lowest or always the highest. */
static unsigned
rnd_low(void *arg, unsigned bound)
{
	(void)arg;
	(void)bound;
	return 0;
}

static unsigned
rnd_high(void *arg, unsigned bound)
{
	(void)arg;
	return bound - 1;
}

static void
set_mx(struct resolver_mx *v, unsigned pref, const char *host)
{
	v->pref = pref;
	snprintf(v->host, sizeof(v->host), "%s", host);
}

static void
test_mx_order(void **state)
{
	struct resolver_mx v[6];
	size_t n;

	(void)state;
	set_mx(&v[0], 30, "c");
	set_mx(&v[1], 10, "a");
	set_mx(&v[2], 20, "b");
	set_mx(&v[3], 20, "a"); /* duplicate host, less preferred: dropped */
	n = resolver_mx_order(v, 4, rnd_low, NULL);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].host, "a");
	assert_int_equal(v[0].pref, 10);
	assert_string_equal(v[1].host, "b");
	assert_string_equal(v[2].host, "c");
	assert_int_equal(resolver_mx_order(v, 0, rnd_low, NULL), 0);
}

static void
test_mx_order_shuffles_equal(void **state)
{
	struct resolver_mx lo[3], hi[3];

	(void)state;
	for (int k = 0; k < 2; k++) {
		struct resolver_mx *v = k ? hi : lo;

		set_mx(&v[0], 10, "x");
		set_mx(&v[1], 5, "first");
		set_mx(&v[2], 10, "y");
	}
	assert_int_equal(resolver_mx_order(lo, 3, rnd_low, NULL), 3);
	assert_int_equal(resolver_mx_order(hi, 3, rnd_high, NULL), 3);
	/* The lower preference always leads; the tie goes either way. */
	assert_string_equal(lo[0].host, "first");
	assert_string_equal(hi[0].host, "first");
	assert_string_not_equal(lo[1].host, hi[1].host);
	assert_int_equal(lo[1].pref, 10);
	assert_int_equal(hi[2].pref, 10);
}

/* Resolver objects */

struct seen {
	int calls;
	int in_call; /* set around the request, to catch synchronous calls */
	int sync;
	struct resolver_result res;
};

static void
record(void *arg, const struct resolver_result *res)
{
	struct seen *s = arg;

	s->calls++;
	s->sync |= s->in_call;
	s->res = *res;
}

static void
test_bad_specs(void **state)
{
	static const char *bad[] = {"", "127.0.0.1", "127.0.0.1@",
	    "127.0.0.1@0", "127.0.0.1@65536", "127.0.0.1@53x", "host@53", "@53",
	    "127.0.0.1:53", "[::1]@53"};
	struct event_base *base = event_base_new();
	const char *why = NULL;
	struct resolver *r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (resolver_new(base, bad[i], &why) != NULL)
			fail_msg("spec \"%s\" accepted", bad[i]);
		assert_non_null(why);
	}
	r = resolver_new(base, "::1@53", &why);
	assert_non_null(r);
	resolver_free(r);
	event_base_free(base);
}

static void
test_smarthost_literals(void **state)
{
	struct conf_smarthost sh[] = {
	    {"192.0.2.7", 0, 1}, {"2001:db8::1", 2525, 1},
	    {"IPv6:2001:db8::2", 0, 1},
	    {"0.0.0.0", 0, 1}, /* would reach this machine: skipped */
	};
	struct event_base *base = event_base_new();
	const char *why;
	struct resolver *r = resolver_new(base, DEAD_SERVER, &why);
	struct seen s = {0};
	const struct sockaddr_in *s4;
	const struct sockaddr_in6 *s6;
	char text[INET6_ADDRSTRLEN];

	(void)state;
	assert_non_null(r);
	s.in_call = 1;
	assert_int_equal(resolver_smarthosts(r, sh, 4, 25, record, &s), 0);
	s.in_call = 0;
	assert_int_equal(s.calls, 0); /* never inside the call */
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_int_equal(s.calls, 1);
	assert_int_equal(s.sync, 0);
	assert_int_equal(s.res.status, RESOLVER_OK);
	assert_int_equal(s.res.nhops, 3);
	s4 = (const struct sockaddr_in *)&s.res.hops[0].addr;
	assert_int_equal(s4->sin_family, AF_INET);
	assert_int_equal(ntohs(s4->sin_port), 25);
	assert_string_equal(s.res.hops[0].host, "192.0.2.7");
	s6 = (const struct sockaddr_in6 *)&s.res.hops[1].addr;
	assert_int_equal(s6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(s6->sin6_port), 2525);
	s6 = (const struct sockaddr_in6 *)&s.res.hops[2].addr;
	inet_ntop(AF_INET6, &s6->sin6_addr, text, sizeof(text));
	assert_string_equal(text, "2001:db8::2");
	resolver_free(r);
	event_base_free(base);
}

static void
test_only_bad_smarthosts_tempfail(void **state)
{
	struct conf_smarthost sh[] = {{"not-an-address", 0, 1}};
	struct event_base *base = event_base_new();
	const char *why;
	struct resolver *r = resolver_new(base, DEAD_SERVER, &why);
	struct seen s = {0};

	(void)state;
	assert_int_equal(resolver_smarthosts(r, sh, 1, 25, record, &s), 0);
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_int_equal(s.calls, 1);
	assert_int_equal(s.res.status, RESOLVER_TEMPFAIL);
	assert_non_null(strstr(s.res.why, "not-an-address"));
	resolver_free(r);
	event_base_free(base);
}

static void
test_invalid_domain_reported_later(void **state)
{
	struct event_base *base = event_base_new();
	const char *why;
	struct resolver *r = resolver_new(base, DEAD_SERVER, &why);
	struct seen s = {0};

	(void)state;
	assert_int_equal(resolver_mx(r, "bad domain.test", 25, record, &s), 0);
	assert_int_equal(s.calls, 0);
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_int_equal(s.calls, 1);
	assert_int_equal(s.res.status, RESOLVER_PERMFAIL);
	assert_int_equal(resolver_mx(r, "example.test", 0, record, &s), -1);
	resolver_free(r);
	event_base_free(base);
}

static void
test_free_cancels(void **state)
{
	struct conf_smarthost sh[] = {{"192.0.2.7", 0, 1}};
	struct event_base *base = event_base_new();
	const char *why;
	struct resolver *r = resolver_new(base, DEAD_SERVER, &why);
	struct seen s = {0};

	(void)state;
	/* One waiting for a server that never answers, one ready. */
	assert_int_equal(resolver_mx(r, "example.test", 25, record, &s), 0);
	assert_int_equal(resolver_smarthosts(r, sh, 1, 25, record, &s), 0);
	resolver_free(r);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(s.calls, 0);
	event_base_free(base);
}

static void
answer_never(void *arg, const struct resolver_answer *a)
{
	(void)arg;
	(void)a;
	fail_msg("a look-up was answered: %s", a->name);
}

static void
test_query_cap(void **state)
{
	struct event_base *base = event_base_new();
	const char *why;
	struct resolver *r = resolver_new(base, DEAD_SERVER, &why);
	struct seen s = {0};
	struct resolver_lookup *lk[600];
	int ok = 0;

	(void)state;
	/*
	 * Far more than the cap (1024 queries out): the excess waits its
	 * turn, none is refused (issue 19), and freeing the resolver ends
	 * those waiting as well as those out, without a callback.
	 */
	for (int i = 0; i < 1500; i++)
		if (resolver_mx(r, "example.test", 25, record, &s) == 0)
			ok++;
	assert_int_equal(ok, 1500);
	for (size_t i = 0; i < 600; i++)
		assert_non_null(
		    lk[i] = resolver_lookup(
		        r, "_25._tcp.example.test", 52, answer_never, NULL));
	/* a waiting look-up cancelled leaves its place in the line */
	for (size_t i = 0; i < 600; i += 2)
		resolver_lookup_cancel(lk[i]);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(s.calls, 0);
	resolver_free(r);
	assert_int_equal(s.calls, 0);
	event_base_free(base);
}

static void
test_reverse_names(void **state)
{
	static const struct {
		const char *ip, *name;
	} t[] = {
	    {"192.0.2.7", "7.2.0.192.in-addr.arpa"},
	    {"127.0.0.131", "131.0.0.127.in-addr.arpa"},
	    {"::ffff:192.0.2.7", "7.2.0.192.in-addr.arpa"},
	    {"2001:db8::567:89ab", "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	                           "0.0.0.8.b.d.0.1.0.0.2."
	                           "ip6.arpa"},
	};
	char out[80];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct sockaddr_storage ss;

		memset(&ss, 0, sizeof(ss));
		if (strchr(t[i].ip, ':') != NULL) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

			s6->sin6_family = AF_INET6;
			assert_int_equal(
			    inet_pton(AF_INET6, t[i].ip, &s6->sin6_addr), 1);
		} else {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

			s4->sin_family = AF_INET;
			assert_int_equal(
			    inet_pton(AF_INET, t[i].ip, &s4->sin_addr), 1);
		}
		assert_int_equal(
		    resolver_reverse_name((struct sockaddr *)&ss, out, 80), 0);
		assert_string_equal(out, t[i].name);
		/* A buffer too short is refused, never cut. */
		assert_int_equal(resolver_reverse_name((struct sockaddr *)&ss,
		                     out, strlen(t[i].name)),
		    -1);
	}
}

/* A reverse look-up cancelled by its asker never calls back. */
static void
ptr_record(void *arg, const char *name)
{
	(void)name;
	((struct seen *)arg)->calls++;
}

static void
test_ptr_cancel_and_free(void **state)
{
	struct event_base *base = event_base_new();
	const char *why;
	struct resolver *r = resolver_new(base, DEAD_SERVER, &why);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct resolver_ptr *p;
	struct seen s = {0};

	(void)state;
	sin.sin_addr.s_addr = htonl(0x7f000083);
	p = resolver_ptr(r, (struct sockaddr *)&sin, ptr_record, &s);
	assert_non_null(p);
	resolver_ptr_cancel(r, p);
	/* One left pending: freed with the resolver, no callback. */
	assert_non_null(
	    resolver_ptr(r, (struct sockaddr *)&sin, ptr_record, &s));
	event_base_loop(base, EVLOOP_NONBLOCK);
	resolver_free(r);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(s.calls, 0);
	event_base_free(base);
}

/* Look-ups of one question (TLSA, TXT) */

static void
count_answer(void *arg, const struct resolver_answer *a)
{
	(void)a;
	(*(int *)arg)++;
}

static void
test_lookup_names_and_cancel(void **state)
{
	static const char *bad[] = {"", "a..b", "_25._tcp.", "_x y.example",
	    "_25._tcp.192.0.2.1", "mx.example.test."};
	struct event_base *base = event_base_new();
	const char *why;
	struct resolver *r = resolver_new(base, DEAD_SERVER, &why);
	struct resolver_lookup *a, *b;
	int calls = 0;

	(void)state;
	assert_non_null(r);
	assert_int_equal(resolver_validates(r), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (resolver_lookup(r, bad[i], 52, count_answer, &calls) !=
		    NULL)
			fail_msg("name \"%s\" accepted", bad[i]);
	a = resolver_lookup(
	    r, "_25._tcp.mx.example.test", 52, count_answer, &calls);
	b = resolver_lookup(
	    r, "_mta-sts.example.test", 16, count_answer, &calls);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(calls, 0); /* never inside the call */
	resolver_lookup_cancel(a);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(calls, 0);
	/* b is still out when the resolver goes: it never calls back */
	resolver_free(r);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(calls, 0);
	event_base_free(base);
}

/* What a look-up of libunbound's own "localhost" zone gave. */
struct local_seen {
	int calls;
	enum resolver_answer_status status;
	size_t n;
	unsigned char a[4];
};

static void
local_answer(void *arg, const struct resolver_answer *a)
{
	struct local_seen *s = arg;

	s->calls++;
	s->status = a->status;
	s->n = a->n;
	if (a->n > 0 && a->len[0] == 4)
		memcpy(s->a, a->data[0], 4);
}

/*
 * libunbound answers its local zones ("localhost") inside
 * ub_resolve_event() itself: the answer still reaches the asker only from
 * the loop, and one cancelled or freed before then is dropped, not leaked
 * (the sanitizers check).  An MX look-up of localhost goes the whole way
 * on such answers: no MX (NODATA), then the implicit MX's ::1 and
 * 127.0.0.1, with no DNS server at all.
 */
static void
test_answer_inside_the_call(void **state)
{
	struct event_base *base = event_base_new();
	const char *why;
	struct resolver *r = resolver_new(base, DEAD_SERVER, &why);
	struct local_seen ls = {0}, gone = {0};
	struct resolver_lookup *lk;
	struct seen s = {0};

	(void)state;
	assert_non_null(r);
	assert_non_null(resolver_lookup(r, "localhost", 1, local_answer, &ls));
	lk = resolver_lookup(r, "localhost", 1, local_answer, &gone);
	assert_non_null(lk);
	assert_int_equal(ls.calls, 0); /* never inside the call */
	resolver_lookup_cancel(lk);
	s.in_call = 1;
	assert_int_equal(resolver_mx(r, "localhost", 25, record, &s), 0);
	s.in_call = 0;
	for (int i = 0; i < 10 && (ls.calls == 0 || s.calls == 0); i++)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_int_equal(ls.calls, 1);
	assert_int_equal(ls.status, RESOLVER_ANSWER_DATA);
	assert_int_equal(ls.n, 1);
	assert_memory_equal(ls.a, "\x7f\x00\x00\x01", 4);
	assert_int_equal(gone.calls, 0);
	assert_int_equal(s.calls, 1);
	assert_int_equal(s.sync, 0);
	assert_int_equal(s.res.status, RESOLVER_OK);
	assert_int_equal(s.res.nhops, 2);
	assert_int_equal(s.res.hops[0].addr.ss_family, AF_INET6);
	assert_int_equal(s.res.hops[1].addr.ss_family, AF_INET);
	/* answered inside the call, freed before the loop hands it over */
	assert_non_null(
	    resolver_lookup(r, "localhost", 1, local_answer, &gone));
	resolver_free(r);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(gone.calls, 0);
	event_base_free(base);
}

static void
test_bad_trust_anchor(void **state)
{
	struct event_base *base = event_base_new();
	const char *why = NULL;
	struct resolver *r;

	(void)state;
	r = resolver_new_dnssec(
	    base, DEAD_SERVER, "/nonexistent/root.key", &why);
	assert_null(r);
	assert_non_null(strstr(why, "DnssecTrustAnchorFile"));
	/* a file without DS or DNSKEY records */
	{
		char path[] = "/tmp/sluice-ta-XXXXXX";
		int fd = mkstemp(path);

		assert_true(fd >= 0);
		assert_int_equal(write(fd, "not a key\n", 10), 10);
		close(fd);
		r = resolver_new_dnssec(base, DEAD_SERVER, path, &why);
		unlink(path);
		assert_null(r);
		assert_non_null(strstr(why, "no DS or DNSKEY"));
	}
	/* "" is no validation, not an error */
	r = resolver_new_dnssec(base, DEAD_SERVER, "", &why);
	assert_non_null(r);
	assert_int_equal(resolver_validates(r), 0);
	resolver_free(r);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mx_parse),
	    cmocka_unit_test(test_mx_parse_lengths),
	    cmocka_unit_test(test_mx_order),
	    cmocka_unit_test(test_mx_order_shuffles_equal),
	    cmocka_unit_test(test_bad_specs),
	    cmocka_unit_test(test_smarthost_literals),
	    cmocka_unit_test(test_only_bad_smarthosts_tempfail),
	    cmocka_unit_test(test_invalid_domain_reported_later),
	    cmocka_unit_test(test_free_cancels),
	    cmocka_unit_test(test_query_cap),
	    cmocka_unit_test(test_reverse_names),
	    cmocka_unit_test(test_ptr_cancel_and_free),
	    cmocka_unit_test(test_lookup_names_and_cancel),
	    cmocka_unit_test(test_answer_inside_the_call),
	    cmocka_unit_test(test_bad_trust_anchor),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
