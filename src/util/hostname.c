/*
 * hostname.c - host name syntax (see hostname.h), one function for the
 * configuration's names and the resolver's.  ASCII only, whatever the
 * locale: an internationalised name reaches SMTP as its A-label.
 */
#include <string.h>

#include "util/hostname.h"

static int
hostname_ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-';
}

int
hostname_valid(const char *s, int how)
{
	size_t len = strlen(s), label = 0;
	int alldigits = 1, strict = how == HOSTNAME_STRICT;

	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0 || (strict && s[i - 1] == '-'))
				return 0;
			label = 0;
			alldigits = 1;
			continue;
		}
		if (!hostname_ldh(c) || (strict && label == 0 && c == '-'))
			return 0;
		if (++label > 63)
			return 0;
		if (c < '0' || c > '9')
			alldigits = 0;
	}
	return label > 0 && !(strict && s[len - 1] == '-') && !alldigits;
}
