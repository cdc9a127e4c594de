/*
 * fuzz_sts_policy.c - libFuzzer harness for the MTA-STS parsers
 * (src/sts/sts_policy.c): a policy file from any web server and a TXT
 * record from any DNS answer must parse whole or be refused whole, never
 * crash, and a parsed policy must hold only what the grammar allows.  The
 * first byte picks the parser, so one corpus covers all three.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sts/sts_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every mx pattern is lower case LDH, with at most a leading "*.". */
static void
check_policy(const struct sts_policy *p)
{
	if (p->nmx > STS_MX_MAX || p->max_age > STS_MAX_AGE_MAX ||
	    (p->nmx == 0 && p->mode != STS_POLICY_NONE))
		abort();
	for (size_t i = 0; i < p->nmx; i++) {
		const char *s = p->mx[i];
		size_t n = strnlen(s, sizeof(p->mx[i]));

		if (n == 0 || n > 255)
			abort();
		if (s[0] == '*')
			s += 2;
		for (; *s != '\0'; s++)
			if (!(islower((unsigned char)*s) ||
			        isdigit((unsigned char)*s) || *s == '-' ||
			        *s == '.'))
				abort();
		/* a pattern always matches a host made from it */
		if (p->mx[i][0] != '*' && !sts_policy_match(p, p->mx[i]))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sts_policy *p;
	char why[256], id[STS_ID_MAX + 1], joined[1024];
	const char *text = (const char *)data + 1;

	if (size == 0)
		return 0;
	size--;
	switch (data[0] % 3) {
	case 0:
		if ((p = malloc(sizeof(*p))) == NULL)
			return 0;
		if (sts_policy_parse(text, size, p, why, sizeof(why)) == 0)
			check_policy(p);
		else if (why[0] == '\0')
			abort(); /* a refusal always says why */
		free(p);
		break;
	case 1:
		if (sts_txt_parse(text, size, id) == 0 &&
		    (id[0] == '\0' || strlen(id) > STS_ID_MAX))
			abort();
		break;
	case 2:
		if (sts_txt_join((const unsigned char *)text, size, joined,
		        sizeof(joined)) == 0 &&
		    strlen(joined) >= sizeof(joined))
			abort();
		break;
	}
	return 0;
}
