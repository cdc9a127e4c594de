/*
 * rule_int.h - the compiled rule set, shared by the files of src/rules/
 * (internal; everyone else uses rules.h).
 */
#ifndef SLUICE_RULE_INT_H
#define SLUICE_RULE_INT_H

#include "rules/rules.h"

/* Compiled patterns of one list (parallel to its conf_strlist). */
struct rule_patterns {
	struct rule_pattern **v;
	size_t n;
};

/* One predicate set (conditions or exceptions), compiled. */
struct rule_pred {
	const struct conf_rule_predicates *c;
	struct rule_patterns from_patterns;
	struct rule_patterns recipient_patterns;
	struct rule_patterns header_patterns;
	struct rule_patterns subject_patterns;
	int any_message;   /* a predicate that does not depend on recipients */
	int any_recipient; /* a predicate on the recipient */
};

struct rule {
	const struct conf_transport_rule *c;
	size_t index; /* position in priority order */
	struct rule_pred cond, except;
	int header_action;
	int has_condition;                      /* any condition at all */
	char reply[RULE_HEADER_VALUE_MAX + 32]; /* "550 5.7.1 text" */
	char actions[1024];                     /* for logs */
};

struct rule_set {
	struct rule *v;
	size_t n;
};

/* What rule_match() keeps per rule while one message is evaluated. */
struct rule_match_entry {
	signed char cond;   /* message conditions: 0 no, 1 yes, -1 error */
	signed char except; /* message exceptions */
	signed char done;   /* computed */
};

struct rule_match_cache {
	size_t n;
	/* decoded header values, by field index, made when first asked */
	char **fields;
	size_t *field_len;
	size_t nfields;
	int senders_done;
	char header_from[RULE_ADDRESS_MAX + 2]; /* "" when none */
	struct rule_match_entry e[];
};

#endif
