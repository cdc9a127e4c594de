/*
 * test_auth.c - SMTP AUTH helpers: the key AUTH attempts are counted
 * under (src/server/session_auth.c: the address, IPv6 by /64), and the
 * users file check (src/server/auth.c) for known and unknown users.
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

#include "server/auth.h"
#include "server/session_int.h"

static void
key_of(const char *ip, char *out, size_t len)
{
	struct sockaddr_storage in, key;

	memset(&in, 0, sizeof(in));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&in;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(40000);
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&in;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(40000);
		assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
	session_auth_source((struct sockaddr *)&in, &key);
	if (key.ss_family == AF_INET6) {
		const struct sockaddr_in6 *k6 = (struct sockaddr_in6 *)&key;

		assert_int_equal(k6->sin6_port, 0);
		inet_ntop(AF_INET6, &k6->sin6_addr, out, (socklen_t)len);
	} else {
		const struct sockaddr_in *k4 = (struct sockaddr_in *)&key;

		assert_int_equal(k4->sin_port, 0);
		inet_ntop(AF_INET, &k4->sin_addr, out, (socklen_t)len);
	}
}

static void
test_auth_source_keys(void **state)
{
	static const struct {
		const char *ip, *key;
	} t[] = {
	    {"192.0.2.7", "192.0.2.7"},
	    {"2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::"},
	    {"2001:db8:1:2::1", "2001:db8:1:2::"},
	    {"2001:db8:1:3::1", "2001:db8:1:3::"},
	    {"::1", "::"},
	    {"::ffff:192.0.2.7", "::ffff:192.0.2.7"},
	};
	char key[INET6_ADDRSTRLEN];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		key_of(t[i].ip, key, sizeof(key));
		if (strcmp(key, t[i].key) != 0)
			fail_msg("%s: key %s, want %s", t[i].ip, key, t[i].key);
	}
}

static void
test_auth_check(void **state)
{
	char path[] = "/tmp/sluice-test-users.XXXXXX";
	/* "secret" as SHA-512 crypt, with the salt shown */
	static const char users[] =
	    "# comment\n"
	    "alice:$6$zjSWJ0PDVStCpLP3$tlHz9wmja824gO52ZuXTnjxu4pMdLyumnCagzP7M"
	    "6j9QYTkyYIkofE0DldyhVPCLQHIH20zr4K.FCJ78cYsjm0\n"
	    "al:$6$zjSWJ0PDVStCpLP3$notthehash\n";
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(
	    write(fd, users, sizeof(users) - 1), (ssize_t)(sizeof(users) - 1));
	close(fd);
	assert_int_equal(auth_check(path, "alice", "secret"), 1);
	assert_int_equal(auth_check(path, "alice", "wrong"), 0);
	/* a prefix of a name is not the name */
	assert_int_equal(auth_check(path, "ali", "secret"), 0);
	assert_int_equal(auth_check(path, "al", "secret"), 0);
	/* unknown users, even with a password that is some user's */
	assert_int_equal(auth_check(path, "mallory", "secret"), 0);
	assert_int_equal(auth_check(path, "", "secret"), 0);
	assert_int_equal(auth_check("/nonexistent/users", "alice", "x"), 0);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_auth_source_keys),
	    cmocka_unit_test(test_auth_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
