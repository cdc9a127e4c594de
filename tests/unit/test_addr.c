/*
 * test_addr.c - socket addresses as text (src/util/addr.c): each family,
 * IPv4-mapped IPv6, an unknown family, and tracklog_ip() reading an
 * endpoint back to its address.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "log/tracklog.h"
#include "util/addr.h"

struct addr_case {
	int family; /* AF_INET, AF_INET6, or AF_UNIX for "neither" */
	const char *ip;
	unsigned port;
	const char *want_ip, *want_endpoint;
};

static const struct addr_case cases[] = {
    {AF_INET, "192.0.2.1", 25, "192.0.2.1", "192.0.2.1:25"},
    {AF_INET, "127.0.0.1", 65535, "127.0.0.1", "127.0.0.1:65535"},
    {AF_INET, "0.0.0.0", 0, "0.0.0.0", "0.0.0.0:0"},
    {AF_INET6, "2001:db8::1", 587, "2001:db8::1", "[2001:db8::1]:587"},
    {AF_INET6, "::1", 2525, "::1", "[::1]:2525"},
    {AF_INET6, "::ffff:192.0.2.7", 25, "192.0.2.7", "192.0.2.7:25"},
    {AF_UNIX, NULL, 0, "?", "?"},
};

static void
make(const struct addr_case *c, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = (sa_family_t)c->family;
	if (c->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		assert_int_equal(inet_pton(AF_INET, c->ip, &s4->sin_addr), 1);
		s4->sin_port = htons((uint16_t)c->port);
	} else if (c->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		assert_int_equal(inet_pton(AF_INET6, c->ip, &s6->sin6_addr), 1);
		s6->sin6_port = htons((uint16_t)c->port);
	}
}

static void
test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct addr_case *c = &cases[i];
		const struct sockaddr *sa;
		struct sockaddr_storage ss;
		char ip[ADDR_TEXT_MAX], ep[ADDR_TEXT_MAX], back[ADDR_TEXT_MAX];

		make(c, &ss);
		sa = (const struct sockaddr *)&ss;
		addr_ip(sa, ip, sizeof(ip));
		addr_endpoint(sa, ep, sizeof(ep));
		if (strcmp(ip, c->want_ip) != 0)
			fail_msg("%s: ip %s", c->want_endpoint, ip);
		if (strcmp(ep, c->want_endpoint) != 0)
			fail_msg("%s: endpoint %s", c->want_endpoint, ep);
		if (addr_port(sa) != c->port)
			fail_msg(
			    "%s: port %u", c->want_endpoint, addr_port(sa));
		if (c->family == AF_UNIX)
			continue;
		/* the tracking log reads the address back out */
		tracklog_ip(ep, back, sizeof(back));
		if (strcmp(back, c->want_ip) != 0)
			fail_msg("%s: read back %s", c->want_endpoint, back);
	}
}

static void
test_longest_fits(void **state)
{
	struct sockaddr_in6 s6;
	char ep[ADDR_TEXT_MAX], text[ADDR_IP_MAX];
	const char *ip = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";

	(void)state;
	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	s6.sin6_port = htons(65535);
	assert_int_equal(inet_pton(AF_INET6, ip, &s6.sin6_addr), 1);
	addr_endpoint((const struct sockaddr *)&s6, ep, sizeof(ep));
	assert_string_equal(
	    ep, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
	addr_ip((const struct sockaddr *)&s6, text, sizeof(text));
	assert_string_equal(text, ip);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cases),
	    cmocka_unit_test(test_longest_fits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
