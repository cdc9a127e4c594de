/*
 * rule_value.c - the value syntax of [TransportRule] keys: lists whose
 * items may be quoted (a pattern or a phrase may hold a comma), e-mail
 * addresses, domains, enhanced status codes, header names and header text.
 *
 * Exchange takes these as PowerShell arrays ("a","b"); in the INI file
 * they are comma-separated, and an item is written in double quotes when
 * it holds a comma.  Every check accepts the whole value or fails with a
 * static reason that conf_load() prints as FILE:LINE: KEY: reason.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "rules/rules.h"

static int
value_fail(const char **why, const char *reason)
{
	*why = reason;
	return -1;
}

int
rule_value_each(const char *value,
    int (*fn)(void *arg, const char *item, const char **why), void *arg,
    const char **why)
{
	const char *p = value;
	char item[RULE_ITEM_MAX];

	while (isspace((unsigned char)*p))
		p++;
	if (*p == '\0')
		return 0;
	for (;;) {
		size_t n = 0;

		while (isspace((unsigned char)*p))
			p++;
		if (*p == '"') {
			/* Quoted: up to the next quote not after a backslash.
			 */
			const char *q = ++p;

			while (*q != '\0' && !(*q == '"' && q[-1] != '\\'))
				q++;
			if (*q != '"')
				return value_fail(why, "unterminated quote");
			n = (size_t)(q - p);
			if (n >= sizeof(item))
				return value_fail(why, "list item too long");
			memcpy(item, p, n);
			p = q + 1;
			while (isspace((unsigned char)*p))
				p++;
			if (*p != ',' && *p != '\0')
				return value_fail(why,
				    "text after a quoted item (a comma "
				    "must separate items)");
			if (n == 0)
				return value_fail(why, "empty item in list");
		} else {
			const char *end = strchr(p, ',');

			n = end != NULL ? (size_t)(end - p) : strlen(p);
			while (n > 0 && isspace((unsigned char)p[n - 1]))
				n--;
			/* "a, b," before a continuation line is fine */
			if (n == 0 && end == NULL && p != value)
				return 0;
			if (n == 0)
				return value_fail(why, "empty item in list");
			if (n >= sizeof(item))
				return value_fail(why, "list item too long");
			if (memchr(p, '"', n) != NULL)
				return value_fail(why,
				    "a quote inside an item (quote the whole "
				    "item instead)");
			memcpy(item, p, n);
			p = end != NULL ? end : p + strlen(p);
		}
		item[n] = '\0';
		if (fn(arg, item, why) < 0)
			return -1;
		if (*p == '\0')
			return 0;
		p++; /* the comma */
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			return 0; /* trailing comma */
	}
}

void
rule_value_quote(const char *item, char *out, size_t len)
{
	int quote = item[0] == '\0' || isspace((unsigned char)item[0]) ||
	            strpbrk(item, ",;#\"") != NULL ||
	            isspace((unsigned char)item[strlen(item) - 1]);

	snprintf(out, len, quote ? "\"%s\"" : "%s", item);
}

int
rule_value_domain(const char *s, const char **why)
{
	size_t label = 0, n = strlen(s);

	if (n == 0 || n > 253)
		return value_fail(why, "not a domain name");
	if (strchr(s, '*') != NULL)
		return value_fail(why,
		    "no wildcards: a domain here matches its subdomains too");
	for (; *s != '\0'; s++) {
		if (*s == '.') {
			if (label == 0)
				return value_fail(why, "not a domain name");
			label = 0;
		} else if (isalnum((unsigned char)*s) || *s == '-' ||
		           *s == '_') {
			if (++label > 63)
				return value_fail(why, "not a domain name");
		} else {
			return value_fail(why, "not a domain name");
		}
	}
	if (label == 0)
		return value_fail(why, "not a domain name");
	return 0;
}

int
rule_value_address(const char *s, const char **why)
{
	const char *at = strrchr(s, '@');
	const char *dwhy;

	if (strlen(s) > RULE_ADDRESS_MAX)
		return value_fail(why, "address too long");
	if (at == NULL || at == s)
		return value_fail(
		    why, "not an address (expected local@domain)");
	for (const char *p = s; p < at; p++)
		if (*p <= ' ' || *p >= 0x7f || strchr("<>(),;:\\[]\"", *p))
			return value_fail(why,
			    "not an address (the local part holds a blank, a "
			    "control character or one of <>(),;:\\[]\")");
	if (rule_value_domain(at + 1, &dwhy) < 0)
		return value_fail(
		    why, "not an address (the part after @ is not a domain)");
	return 0;
}

int
rule_value_status(const char *s, const char **why)
{
	const char *bad = "expected 5.7.1 or 5.7.900 to 5.7.999 (Exchange's "
	                  "codes for transport rules)";
	int d = 0;

	if (strcmp(s, "5.7.1") == 0)
		return 0;
	if (strncmp(s, "5.7.", 4) != 0 || strlen(s) != 7)
		return value_fail(why, bad);
	for (int i = 4; i < 7; i++) {
		if (!isdigit((unsigned char)s[i]))
			return value_fail(why, bad);
		d = d * 10 + (s[i] - '0');
	}
	if (d < 900)
		return value_fail(why, bad);
	return 0;
}

int
rule_value_header_name(const char *s, const char **why)
{
	size_t n = strlen(s);

	if (n == 0 || n > RULE_HEADER_NAME_MAX)
		return value_fail(why, "a header name has 1 to 76 characters");
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s >= 0x7f || *s == ':')
			return value_fail(why,
			    "a header name is printable ASCII without blanks "
			    "or ':'");
	return 0;
}

int
rule_value_text(const char *s, const char **why)
{
	if (strlen(s) > RULE_HEADER_VALUE_MAX)
		return value_fail(why, "text too long (at most 900 bytes)");
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < ' ' || *s == 0x7f)
			return value_fail(why, "control characters are not "
			                       "allowed in header text");
	return 0;
}
