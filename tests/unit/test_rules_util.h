/*
 * test_rules_util.h - shared by the transport rule tests: load a
 * configuration from text, describe a message, find a rule by name.
 */
#ifndef TEST_RULES_UTIL_H
#define TEST_RULES_UTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf/conf.h"
#include "rules/rules.h"

/* Load text as a configuration file; errors into err (may be NULL). */
static __attribute__((unused)) struct conf *
tr_load(const char *text, char *err, size_t errsz)
{
	char path[] = "/tmp/sluice-rules-XXXXXX";
	char *out = NULL;
	size_t outlen = 0;
	FILE *mem = open_memstream(&out, &outlen);
	int fd = mkstemp(path);
	struct conf *c;

	if (fd < 0 || write(fd, text, strlen(text)) < 0)
		return NULL;
	close(fd);
	c = conf_load(path, mem);
	fclose(mem);
	unlink(path);
	if (err != NULL)
		snprintf(err, errsz, "%s", out != NULL ? out : "");
	free(out);
	return c;
}

static __attribute__((unused)) const struct rule *
tr_rule(const struct conf *c, const char *name)
{
	for (size_t i = 0; i < rule_set_count(c->rules); i++)
		if (strcasecmp(rule_name(rule_set_rule(c->rules, i)), name) ==
		    0)
			return rule_set_rule(c->rules, i);
	return NULL;
}

/* A message with these header lines ("A: b\r\nC: d\r\n") and a body. */
struct tr_msg {
	char data[8192];
	struct sockaddr_storage ss;
	struct rule_message m;
};

static __attribute__((unused)) void
tr_msg(struct tr_msg *t, const char *sender, const char *const *rcpts,
    size_t nrcpts, const char *headers, const char *client)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->data, sizeof(t->data), "%s\r\nThe body.\r\n",
	    headers != NULL ? headers : "");
	t->m.sender = sender;
	t->m.rcpts = rcpts;
	t->m.nrcpts = nrcpts;
	t->m.data = t->data;
	t->m.len = strlen(t->data);
	t->m.size = t->m.len;
	t->m.auth = RULE_AUTH_ANONYMOUS;
	if (client != NULL) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&t->ss;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->ss;

		if (inet_pton(AF_INET, client, &s4->sin_addr) == 1)
			s4->sin_family = AF_INET;
		else if (inet_pton(AF_INET6, client, &s6->sin6_addr) == 1)
			s6->sin6_family = AF_INET6;
		t->m.client = (const struct sockaddr *)&t->ss;
	}
}

#endif
