/*
 * rules.h - transport rules (SPEC 5, Exchange's mail flow rules): the
 * compiled rule set and its evaluation, pure functions over a description
 * of one message.
 *
 * The configuration ([TransportRule NAME] sections, src/conf) holds every
 * value as written; rule_set_build() turns it into a rule set sorted by
 * Priority with its PCRE2 patterns compiled, owned by the configuration
 * and swapped with it on reload.  rule_eval() decides, for each envelope
 * recipient, which rules fire and what they do; nothing here does I/O,
 * reads a clock or keeps state between messages.
 *
 *   rule_value.c    value syntax: quoted lists, addresses, status codes
 *   rule_pattern.c  PCRE2 patterns: compile, match with limits
 *   rule_header.c   the message's header fields: parse, unfold, decode
 *   rule_words.c    "contains words": case-insensitive whole words
 *   rule_set.c      building the rule set from the configuration
 *   rule_match.c    conditions and exceptions
 *   rule_eval.c     evaluation: priority order, modes, per recipient
 *   rule_rewrite.c  header actions on a copy of the message
 *   rule_lint.c     warnings for `config check`
 *   rule_describe.c the rule in words, for get-transportrule
 */
#ifndef SLUICE_RULES_H
#define SLUICE_RULES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "util/buf.h"

struct rule_set;
struct rule;

/* --- values (rule_value.c) ---------------------------------------------- */

/*
 * Longest item of a rule list and longest address.  An item is at most a
 * config line anyway (inih reads 198 characters per line).
 */
#define RULE_ITEM_MAX 512
#define RULE_ADDRESS_MAX 254
/* A header field name (RFC 5322 ftext) and the value a rule sets. */
#define RULE_HEADER_NAME_MAX 76
#define RULE_HEADER_VALUE_MAX 900

/*
 * Split a list value: items separated by commas, blanks around them
 * dropped; an item in double quotes may contain commas and keeps its text
 * as is ("\"" inside it stays "\"", which a pattern reads as a quote).
 * fn gets each item NUL-terminated.  An empty value is an empty list;
 * "a,,b" and an unterminated quote are errors.
 */
int rule_value_each(const char *value,
    int (*fn)(void *arg, const char *item, const char **why), void *arg,
    const char **why);
/* Write item so that rule_value_each() reads it back (quoted if needed). */
void rule_value_quote(const char *item, char *out, size_t len);

/* local@domain: printable ASCII, no blanks, one domain of letters,
 * digits, hyphens and dots.  0 or -1 with *why. */
int rule_value_address(const char *, const char **why);
/* A plain domain name (no wildcard): 0 or -1 with *why. */
int rule_value_domain(const char *, const char **why);
/* RejectMessageEnhancedStatusCode: 5.7.1 or 5.7.900 to 5.7.999. */
int rule_value_status(const char *, const char **why);
/* A header field name: 1 to RULE_HEADER_NAME_MAX printable ASCII
 * characters other than ':' and blanks. */
int rule_value_header_name(const char *, const char **why);
/* Header text (a value, a subject prefix, a reply text): no control
 * characters, at most RULE_HEADER_VALUE_MAX bytes; UTF-8 is allowed. */
int rule_value_text(const char *, const char **why);

/* --- patterns (rule_pattern.c) -------------------------------------------- */

/*
 * Patterns are PCRE2 regular expressions, case-insensitive (as Exchange's
 * are), over UTF-8 text in which invalid sequences simply do not match.
 * Matching is bounded (RULE_PATTERN_MATCH_LIMIT, RULE_PATTERN_DEPTH_LIMIT)
 * so a hostile subject cannot make a pattern run for long; running out is
 * an error that the rule's RuleErrorAction decides.
 */
#define RULE_PATTERN_MATCH_LIMIT 100000
#define RULE_PATTERN_DEPTH_LIMIT 5000

struct rule_pattern;
/* NULL with a reason naming the error and its offset in why. */
struct rule_pattern *rule_pattern_compile(
    const char *, char *why, size_t whylen);
void rule_pattern_free(struct rule_pattern *);
/* 1 match, 0 no match, -1 error (a limit was reached). */
int rule_pattern_match(const struct rule_pattern *, const char *, size_t);

/* --- the rule set (rule_set.c) ------------------------------------------- */

/*
 * Build the rule set of a loaded configuration: rules sorted by Priority
 * (a rule without Priority comes after every rule with one, in file
 * order), patterns compiled.  The set points into conf and must be freed
 * before it.  NULL with why set on failure (out of memory, or a pattern
 * that does not compile, which conf_load() has reported already).
 */
struct rule_set *rule_set_build(const struct conf *, char *why, size_t whylen);
void rule_set_free(struct rule_set *);
size_t rule_set_count(const struct rule_set *);
/* The rule at position i in priority order. */
const struct rule *rule_set_rule(const struct rule_set *, size_t i);
const struct conf_transport_rule *rule_conf(const struct rule *);
const char *rule_name(const struct rule *);
/* Does the rule change headers (SetHeader, RemoveHeader, PrependSubject)? */
int rule_has_header_action(const struct rule *);
/* The reject reply, e.g. "550 5.7.1 Delivery not authorized, ..." */
const char *rule_reject_reply(const struct rule *);
/* Its actions for logs: "RouteMessageOutboundRequireTls; SetHeader X: v" */
const char *rule_actions_text(const struct rule *);

/* --- a message (rule_header.c) -------------------------------------------- */

/* One header field, offsets into the message. */
struct rule_field {
	size_t start;    /* first byte of the field's first line */
	size_t end;      /* after the CRLF of its last line */
	size_t name_len; /* the name starts at start */
	size_t value;    /* first byte after the colon */
	size_t value_len;
};

struct rule_headers {
	struct rule_field *v;
	size_t n;
	size_t body; /* offset of the empty line that ends the header */
};

/* At most this many fields are looked at; more are ignored. */
#define RULE_FIELDS_MAX 4096

/* Index the header section of data; -1 when out of memory. */
int rule_headers_parse(const char *data, size_t len, struct rule_headers *);
void rule_headers_free(struct rule_headers *);
/* The first field named name (case-insensitive) from index from, or -1. */
long rule_headers_find(const struct rule_headers *, const char *data,
    const char *name, size_t from);
/*
 * A field's value unfolded, with RFC 2047 encoded-words decoded (B and Q;
 * ISO-8859-1 becomes UTF-8, other charsets are kept as bytes), blanks at
 * both ends trimmed.  malloc'ed, NUL-terminated; NULL when out of memory.
 */
char *rule_header_decode(const char *raw, size_t len, size_t *outlen);
/* The first address in a From-style value: "Name <a@b>", "a@b (c)". */
int rule_header_address(const char *value, char *out, size_t outlen);

/* --- words (rule_words.c) --------------------------------------------------
 */

/*
 * Does text contain word (or a phrase of words), case-insensitively (ASCII
 * letters), as a whole word: the characters around the match are not
 * letters, digits or '_' (octets of 0x80 and up count as letters, so a
 * word never matches inside a UTF-8 word)?  A blank in the phrase matches
 * any run of blanks in the text.
 */
int rule_words_contain(const char *text, size_t len, const char *word);

/* --- evaluation (rule_match.c, rule_eval.c) --------------------------------
 */

/* Who sent the message, as the receiving side saw it (AuthAs). */
enum rule_auth {
	RULE_AUTH_ANONYMOUS,
	RULE_AUTH_PARTNER,
	RULE_AUTH_INTERNAL,
};

/* The message as the rules see it. */
struct rule_message {
	const char *sender;       /* envelope MAIL FROM, "" for <> */
	const char *const *rcpts; /* envelope recipients */
	size_t nrcpts;
	const struct sockaddr *client; /* NULL: not known */
	enum rule_auth auth;
	const char *data; /* the message: header section, empty line, body */
	size_t len;
	uint64_t size; /* for MessageSizeOver: the client's bytes */
};

enum rule_fate {
	RULE_FATE_DELIVER,
	RULE_FATE_REJECT, /* refused by a rule: NDR (or the SMTP reply) */
	RULE_FATE_DELETE, /* dropped silently by a rule */
};

/* Where recipients of the result come from. */
enum rule_origin {
	RULE_ORIGIN_ENVELOPE,
	RULE_ORIGIN_REDIRECT,   /* RedirectMessageTo */
	RULE_ORIGIN_BLIND_COPY, /* BlindCopyTo */
};

/* What the rules decided for one envelope recipient (its "track"). */
struct rule_track {
	const char *addr;
	enum rule_fate fate;
	const struct rule *fate_rule;
	const struct rule *tls_rule;       /* RouteMessageOutboundRequireTls */
	const struct rule *connector_rule; /* RouteMessageOutboundConnector */
	const struct rule *redirect_rule;  /* the first RedirectMessageTo */
	size_t copy;                       /* message copy (when delivered) */
	uint64_t *fired;   /* bit per rule: Enforce rules that applied */
	uint64_t *audited; /* bit per rule: Audit rules that matched */
};

/* A recipient of the result, as it is to be stored. */
struct rule_recipient {
	const char *addr;
	size_t track; /* the envelope recipient it follows */
	enum rule_origin origin;
	const struct rule *added_by; /* redirect or blind copy rule */
};

/*
 * A copy of the message: recipients whose header actions are the same
 * share one.  A copy with rewrite set differs from the received message
 * (header actions, the execution history header).
 */
struct rule_copy {
	uint64_t *headers; /* bit per rule: header actions applied, in order */
	uint64_t *history; /* bit per rule: Enforce rules fired (union) */
	int rewrite;
	size_t nrcpts; /* recipients that get this copy */
};

struct rule_result {
	size_t nrules;
	size_t words; /* uint64_t per bit set */
	struct rule_track *tracks;
	size_t ntracks;
	struct rule_recipient *rcpts; /* delivered or refused, not deleted */
	size_t nrcpts;
	struct rule_copy *copies;
	size_t ncopies;
	/* every track was refused or deleted: nothing is stored */
	int reject_all; /* then reply with fate_rule's reply of the first */
	int delete_all;
	const struct rule *reject_rule;
	/* a rule failed (pattern limit) with RuleErrorAction = Defer */
	const struct rule *defer_rule;
	int fired_any;   /* any Enforce rule applied to any recipient */
	int audited_any; /* any Audit rule matched */
	uint64_t *bits;  /* storage of the bit sets */
};

/* Most recipients a result may hold with the ones rules add. */
#define RULE_RCPTS_MAX 10000

/*
 * Evaluate the rule set against a message.  The result points into the
 * message's recipients and the rule set; it is valid while both are.
 * Returns -1 only when out of memory.
 */
int rule_eval(const struct rule_set *, const struct conf *,
    const struct rule_message *, struct rule_result *);
void rule_result_free(struct rule_result *);

/* Is bit i set in a rule bit set? */
static inline int
rule_bit(const uint64_t *set, size_t i)
{
	return (set[i / 64] >> (i % 64)) & 1;
}

/*
 * The condition checks one by one, for rule_eval() and the table tests:
 * does the rule apply to recipient rcpt of msg?  1 yes, 0 no, -1 error.
 * The cache (one entry per rule, zeroed by the caller for each message)
 * keeps what does not depend on the recipient.
 */
struct rule_match_cache;
int rule_match(const struct rule *, const struct conf *,
    const struct rule_message *, const struct rule_headers *, const char *rcpt,
    struct rule_match_cache *);
struct rule_match_cache *rule_match_cache_new(size_t nrules);
void rule_match_cache_free(struct rule_match_cache *);

/* --- header actions (rule_rewrite.c) ----------------------------------------
 */

/*
 * The message of one copy: data with the header actions of the rules in
 * copy->headers applied in priority order, and the
 * X-Sluice-Organization-Rules-Execution-History field naming the rules in
 * copy->history.  Appends to out; -1 when out is full or out of memory.
 */
#define RULE_HISTORY_HEADER "X-Sluice-Organization-Rules-Execution-History"
int rule_rewrite(const struct rule_set *, const struct rule_copy *,
    const char *data, size_t len, struct buf *out);

/* --- checks and descriptions (rule_lint.c, rule_describe.c) ----------------
 */

/*
 * Warnings for `sluicectl config check`: a rule with no condition (it
 * applies to every message) and rules that can never match.  fn is called
 * with the rule's section line and one sentence each; returns how many.
 */
unsigned rule_lint(const struct rule_set *, const struct conf *,
    void (*fn)(void *arg, int line, const char *rule, const char *msg),
    void *arg);

/* "If the message: ... Take the following actions: ..." in one line. */
void rule_describe(const struct rule *, char *out, size_t len);

/* "InOrganization", ... ("" for none); "Enforce", ... */
const char *rule_scope_name(unsigned scope);
const char *rule_mode_name(unsigned mode);

#endif
