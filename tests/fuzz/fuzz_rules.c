/*
 * fuzz_rules.c - libFuzzer harness for transport rules: the rule loader
 * (the [TransportRule] keys, quoted lists, patterns, validation) and,
 * when the rules load, their evaluation over a message, the header
 * actions on every copy, the warnings and the descriptions.
 *
 * The input is split at the first NUL: before it, [TransportRule]
 * sections appended to a fixed configuration; after it, the message the
 * rules see (header section, empty line, body), with two recipients.
 * Nothing may crash, leak or read outside a buffer, and every line of a
 * rewritten header must stay within 998 octets.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "rules/rules.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_base[] = "[Transport]\n"
                                "QueueDirectory = /tmp/sluice-fuzz-rules\n"
                                "TLSSendDomainSecureList = partner.example\n"
                                "[AcceptedDomain contoso.com]\n"
                                "[ReceiveConnector r]\n"
                                "Bindings = 127.0.0.1:2525\n"
                                "[SendConnector Internet]\n"
                                "AddressSpaces = *\n"
                                "[SendConnector Secure]\n"
                                "IsTransportRuleScoped = true\n"
                                "DNSRoutingEnabled = false\n"
                                "SmartHosts = [192.0.2.1]\n";

static void
fuzz_warning(void *arg, int line, const char *rule, const char *msg)
{
	(void)arg;
	(void)line;
	(void)rule;
	(void)msg;
}

static void
fuzz_check_lines(const char *p, size_t len)
{
	size_t col = 0;

	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\n') {
			col = 0;
			continue;
		}
		/* the message's own lines were at most that long too */
		if (++col > 2 * 998 + 2)
			abort();
	}
}

static void
fuzz_eval(const struct conf *c, const char *msg, size_t len)
{
	const char *rcpts[2] = {"user@fabrikam.com", "other@partner.example"};
	struct rule_message m;
	struct rule_result res;
	char text[2048];

	memset(&m, 0, sizeof(m));
	m.sender = "sender@contoso.com";
	m.rcpts = rcpts;
	m.nrcpts = 2;
	m.data = msg;
	m.len = len;
	m.size = len;
	m.auth = len % 3;
	if (rule_eval(c->rules, c, &m, &res) < 0)
		return;
	for (size_t i = 0; i < res.ncopies; i++) {
		struct buf out;

		buf_init(&out, 4 * len + 65536);
		if (rule_rewrite(c->rules, &res.copies[i], msg, len, &out) == 0)
			fuzz_check_lines(out.data, out.len);
		buf_free(&out);
	}
	for (size_t i = 0; i < rule_set_count(c->rules); i++)
		rule_describe(rule_set_rule(c->rules, i), text, sizeof(text));
	rule_lint(c->rules, c, fuzz_warning, NULL);
	rule_result_free(&res);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/sluice-fuzz-rules-XXXXXX";
	const uint8_t *nul = memchr(data, '\0', size);
	size_t rules_len = nul != NULL ? (size_t)(nul - data) : size;
	int fd = mkstemp(path);
	struct conf *c;
	FILE *devnull;

	if (fd < 0)
		return 0;
	if (write(fd, fuzz_base, sizeof(fuzz_base) - 1) < 0 ||
	    write(fd, data, rules_len) != (ssize_t)rules_len) {
		close(fd);
		unlink(path);
		return 0;
	}
	close(fd);
	devnull = fopen("/dev/null", "w");
	c = conf_load(path, devnull);
	if (c != NULL) {
		static const char plain[] =
		    "From: \"A\" <a@contoso.com>\r\nSubject: =?UTF-8?B?aMOp?= "
		    "budget\r\nX-Class: secret\r\n\r\nbody\r\n";

		conf_dump_ini(c, devnull);
		fuzz_eval(c, plain, sizeof(plain) - 1);
		if (nul != NULL) {
			size_t n = size - rules_len - 1;
			char *msg = malloc(n + 1);

			if (msg != NULL) {
				memcpy(msg, nul + 1, n);
				msg[n] = '\0';
				fuzz_eval(c, msg, n);
				free(msg);
			}
		}
		conf_free(c);
	}
	fclose(devnull);
	unlink(path);
	return 0;
}
