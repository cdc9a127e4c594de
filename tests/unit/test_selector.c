/*
 * test_selector.c - receive connector selection (src/server/selector.c),
 * Exchange's rule as a table: binding first, then the narrowest
 * RemoteIPRanges entry, then an explicit binding over a wildcard;
 * disabled connectors (Enabled = false) are never picked.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "server/selector.h"

#define MAXC 4

struct rc_spec {
	const char *name;
	const char *bindings[3];
	const char *ranges[3];
	int disabled;
};

static struct conf_receive_connector rcs[MAXC];
static struct conf_binding bind_store[MAXC][3];
static struct conf_iprange range_store[MAXC][3];

static struct conf
build(const struct rc_spec *spec, size_t n)
{
	struct conf c;
	const char *why;

	memset(&c, 0, sizeof(c));
	memset(rcs, 0, sizeof(rcs));
	for (size_t i = 0; i < n; i++) {
		rcs[i].name = (char *)(uintptr_t)spec[i].name;
		rcs[i].enabled = !spec[i].disabled;
		for (size_t j = 0; j < 3 && spec[i].bindings[j] != NULL; j++) {
			assert_int_equal(conf_parse_binding(spec[i].bindings[j],
			                     &bind_store[i][j], &why),
			    0);
			rcs[i].nbindings++;
		}
		for (size_t j = 0; j < 3 && spec[i].ranges[j] != NULL; j++) {
			assert_int_equal(conf_parse_iprange(spec[i].ranges[j],
			                     &range_store[i][j], &why),
			    0);
			rcs[i].nremote_ranges++;
		}
		rcs[i].bindings = bind_store[i];
		rcs[i].remote_ranges = range_store[i];
	}
	c.receive_connectors = rcs;
	c.nreceive_connectors = n;
	return c;
}

static struct sockaddr_storage
addr(const char *ip, int port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, ip, &s6->sin6_addr);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, ip, &s4->sin_addr);
	}
	return ss;
}

static const char *
pick(const struct conf *c, const char *local, int port, const char *remote)
{
	struct sockaddr_storage l = addr(local, port), r = addr(remote, 40000);
	const struct conf_receive_connector *rc =
	    selector_pick(c, (struct sockaddr *)&l, (struct sockaddr *)&r);

	return rc != NULL ? rc->name : "(none)";
}

static void
test_most_specific_range(void **state)
{
	static const struct rc_spec spec[] = {
	    {"Default", {"0.0.0.0:25", "[::]:25"}, {"0.0.0.0/0", "::/0"}, 0},
	    {"Partner", {"0.0.0.0:25"}, {"192.0.2.0/24"}, 0},
	    {"App", {"0.0.0.0:25"}, {"192.0.2.10"}, 0},
	    {"Submission", {"0.0.0.0:587"}, {"0.0.0.0/0"}, 0},
	};
	struct conf c = build(spec, 4);

	(void)state;
	assert_string_equal(
	    pick(&c, "10.0.0.1", 25, "198.51.100.7"), "Default");
	assert_string_equal(pick(&c, "10.0.0.1", 25, "192.0.2.77"), "Partner");
	assert_string_equal(pick(&c, "10.0.0.1", 25, "192.0.2.10"), "App");
	assert_string_equal(
	    pick(&c, "10.0.0.1", 587, "192.0.2.10"), "Submission");
	assert_string_equal(pick(&c, "10.0.0.1", 2525, "192.0.2.10"), "(none)");
	assert_string_equal(pick(&c, "::1", 25, "2001:db8::1"), "Default");
	/* IPv4 clients on a dual-stack socket arrive v4-mapped */
	assert_string_equal(
	    pick(&c, "::ffff:10.0.0.1", 25, "::ffff:192.0.2.10"), "App");
}

static void
test_explicit_binding_wins_tie(void **state)
{
	static const struct rc_spec spec[] = {
	    {"Wild", {"0.0.0.0:25"}, {"0.0.0.0/0"}, 0},
	    {"Explicit", {"10.0.0.1:25"}, {"0.0.0.0/0"}, 0},
	};
	struct conf c = build(spec, 2);

	(void)state;
	assert_string_equal(pick(&c, "10.0.0.1", 25, "192.0.2.1"), "Explicit");
	assert_string_equal(pick(&c, "10.0.0.2", 25, "192.0.2.1"), "Wild");
}

static void
test_ranges(void **state)
{
	static const struct rc_spec spec[] = {
	    {"Range", {"127.0.0.1:25"}, {"127.0.0.10-127.0.0.20"}, 0},
	    {"V6", {"[::1]:25"}, {"2001:db8::/32"}, 0},
	};
	struct conf c = build(spec, 2);

	(void)state;
	assert_string_equal(pick(&c, "127.0.0.1", 25, "127.0.0.15"), "Range");
	assert_string_equal(pick(&c, "127.0.0.1", 25, "127.0.0.21"), "(none)");
	assert_string_equal(pick(&c, "::1", 25, "2001:db8:1::5"), "V6");
	assert_string_equal(pick(&c, "::1", 25, "2001:db9::5"), "(none)");
}

static void
test_disabled_never_picked(void **state)
{
	static const struct rc_spec spec[] = {
	    {"Default", {"0.0.0.0:25"}, {"0.0.0.0/0"}, 0},
	    {"Partner", {"0.0.0.0:25"}, {"192.0.2.0/24"}, 1},
	    {"Off", {"0.0.0.0:2525"}, {"0.0.0.0/0"}, 1},
	};
	struct conf c = build(spec, 3);

	(void)state;
	assert_string_equal(pick(&c, "10.0.0.1", 25, "192.0.2.77"), "Default");
	assert_string_equal(pick(&c, "10.0.0.1", 2525, "192.0.2.77"), "(none)");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_most_specific_range),
	    cmocka_unit_test(test_explicit_binding_wins_tie),
	    cmocka_unit_test(test_ranges),
	    cmocka_unit_test(test_disabled_never_picked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
