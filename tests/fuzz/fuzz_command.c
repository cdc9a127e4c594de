/*
 * fuzz_command.c - libFuzzer harness for the SMTP command parsers
 * (src/smtp/command.c): every entry point gets the same hostile bytes.
 * Outputs must stay NUL-terminated and free of CR, LF and NUL.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/command.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_clean(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	if (n == cap || memchr(s, '\r', n) != NULL ||
	    memchr(s, '\n', n) != NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct smtp_ext all = {1, 1, 1, 1, 1, 1};
	const char *s = (const char *)data, *why;
	struct smtp_mail_args m;
	struct smtp_rcpt_args r;
	struct smtp_cmd c;
	char helo[SMTP_HELO_MAX + 1], x[600];
	uint64_t sz;
	int last;

	smtp_cmd_parse(s, size, &c);
	if (smtp_mail_parse(s, size, &all, &m, &why) == SMTP_PARSE_OK) {
		check_clean(m.path.addr, sizeof(m.path.addr));
		check_clean(m.envid, sizeof(m.envid));
	}
	if (smtp_rcpt_parse(s, size, &all, &r, &why) == SMTP_PARSE_OK) {
		check_clean(r.path.addr, sizeof(r.path.addr));
		check_clean(r.orcpt, sizeof(r.orcpt));
	}
	if (smtp_helo_parse(s, size, helo, sizeof(helo), &why) == 0)
		check_clean(helo, sizeof(helo));
	smtp_bdat_parse(s, size, &sz, &last);
	if (smtp_xtext_decode(s, size, x, sizeof(x)) >= 0)
		check_clean(x, sizeof(x));
	return 0;
}
