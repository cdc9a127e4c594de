/*
 * rule_pattern.c - the regular expressions of ...MatchesPatterns
 * conditions, over PCRE2 (the library Postfix's pcre tables, Exim and
 * nginx use).
 *
 * Exchange's patterns are case-insensitive and unanchored; so are these.
 * Text is matched as UTF-8 with PCRE2_MATCH_INVALID_UTF, so a header with
 * stray 8-bit bytes is searched rather than refused.  Patterns are JIT
 * compiled when the platform has a JIT (the 100-rule benchmark is why);
 * every match runs under a match limit and a depth limit, so a pattern
 * with nested quantifiers cannot be made to backtrack for seconds by a
 * hostile subject: it fails with an error instead, which the rule's
 * RuleErrorAction turns into "skip the rule" or "defer the message".
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <stdio.h>
#include <stdlib.h>

#include <pcre2.h>

#include "rules/rules.h"

struct rule_pattern {
	pcre2_code *code;
	pcre2_match_context *mctx;
	int jit;
};

struct rule_pattern *
rule_pattern_compile(const char *text, char *why, size_t whylen)
{
	struct rule_pattern *p = calloc(1, sizeof(*p));
	int err;
	PCRE2_SIZE off;

	if (p == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	p->code = pcre2_compile((PCRE2_SPTR)text, PCRE2_ZERO_TERMINATED,
	    PCRE2_CASELESS | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF |
	        PCRE2_NEVER_BACKSLASH_C,
	    &err, &off, NULL);
	if (p->code == NULL) {
		PCRE2_UCHAR msg[160];

		pcre2_get_error_message(err, msg, sizeof(msg));
		snprintf(why, whylen, "%s at offset %zu", (const char *)msg,
		    (size_t)off);
		free(p);
		return NULL;
	}
	p->jit = pcre2_jit_compile(p->code, PCRE2_JIT_COMPLETE) == 0;
	if ((p->mctx = pcre2_match_context_create(NULL)) == NULL) {
		pcre2_code_free(p->code);
		free(p);
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	pcre2_set_match_limit(p->mctx, RULE_PATTERN_MATCH_LIMIT);
	pcre2_set_depth_limit(p->mctx, RULE_PATTERN_DEPTH_LIMIT);
	return p;
}

void
rule_pattern_free(struct rule_pattern *p)
{
	if (p == NULL)
		return;
	pcre2_match_context_free(p->mctx);
	pcre2_code_free(p->code);
	free(p);
}

/*
 * The match data: only whether a pattern matches is wanted, so one
 * ovector pair, made once per thread and kept (rules run on the event
 * loop thread; sluicectl and the tests have one thread).
 */
static _Thread_local pcre2_match_data *pattern_md;

int
rule_pattern_match(const struct rule_pattern *p, const char *text, size_t len)
{
	int rc;

	if (pattern_md == NULL &&
	    (pattern_md = pcre2_match_data_create(1, NULL)) == NULL)
		return -1;
	rc = p->jit ? pcre2_jit_match(p->code, (PCRE2_SPTR)text, len, 0, 0,
	                  pattern_md, p->mctx)
	            : pcre2_match(p->code, (PCRE2_SPTR)text, len, 0, 0,
	                  pattern_md, p->mctx);
	/* 0: matched, but the vector was too small for the captures */
	if (rc >= 0)
		return 1;
	if (rc == PCRE2_ERROR_NOMATCH)
		return 0;
	return -1;
}
