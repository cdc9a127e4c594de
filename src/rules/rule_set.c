/*
 * rule_set.c - the rule set of a configuration: [TransportRule] sections
 * sorted by Priority, their patterns compiled once, their reject reply and
 * the text of their actions prepared for the receiving path.
 *
 * Priority 0 runs first.  Priorities are unique (conf_rules.c checks);
 * a rule that does not give one comes after every rule that does, in file
 * order, as New-TransportRule without -Priority puts a rule last.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rule_int.h"

/* Exchange's defaults when only half of the reject action is given. */
#define RULE_REJECT_TEXT "Delivery not authorized, message refused"
#define RULE_REJECT_CODE "5.7.1"

static void
set_patterns_free(struct rule_patterns *p)
{
	for (size_t i = 0; i < p->n; i++)
		rule_pattern_free(p->v[i]);
	free(p->v);
	memset(p, 0, sizeof(*p));
}

static int
set_patterns(const struct conf_strlist *l, struct rule_patterns *p, char *why,
    size_t whylen)
{
	if (l->n == 0)
		return 0;
	if ((p->v = calloc(l->n, sizeof(*p->v))) == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < l->n; i++) {
		char err[200];

		if ((p->v[i] = rule_pattern_compile(
		         l->v[i], err, sizeof(err))) == NULL) {
			snprintf(
			    why, whylen, "pattern \"%s\": %s", l->v[i], err);
			return -1;
		}
		p->n++;
	}
	return 0;
}

static int
set_pred(const struct conf_rule_predicates *c, struct rule_pred *p, char *why,
    size_t whylen)
{
	p->c = c;
	p->any_message =
	    c->sender_domain_is.n || c->from.n || c->from_scope ||
	    c->from_address_patterns.n || c->nsender_ip_ranges ||
	    (c->header_contains_name != NULL && c->header_contains_name[0]) ||
	    (c->header_matches_name != NULL && c->header_matches_name[0]) ||
	    c->subject_contains_words.n || c->subject_matches_patterns.n ||
	    c->message_size_over != SIZE_UNLIMITED;
	p->any_recipient = c->recipient_domain_is.n || c->sent_to.n ||
	                   c->sent_to_scope || c->recipient_address_patterns.n;
	if (set_patterns(&c->from_address_patterns, &p->from_patterns, why,
	        whylen) < 0 ||
	    set_patterns(&c->recipient_address_patterns, &p->recipient_patterns,
	        why, whylen) < 0 ||
	    set_patterns(&c->header_matches_patterns, &p->header_patterns, why,
	        whylen) < 0 ||
	    set_patterns(&c->subject_matches_patterns, &p->subject_patterns,
	        why, whylen) < 0)
		return -1;
	return 0;
}

static void
set_pred_free(struct rule_pred *p)
{
	set_patterns_free(&p->from_patterns);
	set_patterns_free(&p->recipient_patterns);
	set_patterns_free(&p->header_patterns);
	set_patterns_free(&p->subject_patterns);
}

/* "A; B; C" into r->actions, in the order Exchange lists actions. */
static void
set_actions_text(struct rule *r)
{
	const struct conf_transport_rule *c = r->c;
	size_t w = 0, len = sizeof(r->actions);
	char *o = r->actions;

#define ADD(...)                                                               \
	do {                                                                   \
		if (w < len)                                                   \
			w += (size_t)snprintf(                                 \
			    o + w, len - w, "%s", w ? "; " : "");              \
		if (w < len)                                                   \
			w += (size_t)snprintf(o + w, len - w, __VA_ARGS__);    \
	} while (0)

	o[0] = '\0';
	if (c->route_require_tls)
		ADD("RouteMessageOutboundRequireTls");
	if (c->route_connector[0] != '\0')
		ADD("RouteMessageOutboundConnector %s", c->route_connector);
	if (c->set_header_name[0] != '\0')
		ADD("SetHeader %s: %s", c->set_header_name,
		    c->set_header_value);
	if (c->remove_header[0] != '\0')
		ADD("RemoveHeader %s", c->remove_header);
	if (c->prepend_subject[0] != '\0')
		ADD("PrependSubject %s", c->prepend_subject);
	if (c->reject_text[0] != '\0' || c->reject_code[0] != '\0')
		ADD("RejectMessage %s", r->reply);
	if (c->delete_message)
		ADD("DeleteMessage");
	for (size_t i = 0; i < c->redirect_to.n; i++)
		ADD("RedirectMessageTo %s", c->redirect_to.v[i]);
	for (size_t i = 0; i < c->blind_copy_to.n; i++)
		ADD("BlindCopyTo %s", c->blind_copy_to.v[i]);
	if (c->stop_rule_processing)
		ADD("StopRuleProcessing");
	if (w >= len && len > 4)
		memcpy(o + len - 4, "...", 4);
#undef ADD
}

static int
set_order(const void *a, const void *b)
{
	const struct rule *x = a, *y = b;

	if (x->c->priority != y->c->priority)
		return x->c->priority < y->c->priority ? -1 : 1;
	return x->c->line < y->c->line ? -1 : x->c->line > y->c->line;
}

struct rule_set *
rule_set_build(const struct conf *conf, char *why, size_t whylen)
{
	struct rule_set *set = calloc(1, sizeof(*set));

	if (set == NULL || (set->v = calloc(conf->ntransport_rules + 1,
	                        sizeof(*set->v))) == NULL) {
		free(set);
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < conf->ntransport_rules; i++) {
		const struct conf_transport_rule *c = &conf->transport_rules[i];
		struct rule *r = &set->v[set->n++];

		r->c = c;
		if (set_pred(&c->cond, &r->cond, why, whylen) < 0 ||
		    set_pred(&c->except, &r->except, why, whylen) < 0) {
			rule_set_free(set);
			return NULL;
		}
		r->has_condition = r->cond.any_message || r->cond.any_recipient;
		r->header_action = c->set_header_name[0] != '\0' ||
		                   c->remove_header[0] != '\0' ||
		                   c->prepend_subject[0] != '\0';
		snprintf(r->reply, sizeof(r->reply), "550 %s %s",
		    c->reject_code[0] ? c->reject_code : RULE_REJECT_CODE,
		    c->reject_text[0] ? c->reject_text : RULE_REJECT_TEXT);
		set_actions_text(r);
	}
	qsort(set->v, set->n, sizeof(*set->v), set_order);
	for (size_t i = 0; i < set->n; i++)
		set->v[i].index = i;
	return set;
}

void
rule_set_free(struct rule_set *set)
{
	if (set == NULL)
		return;
	for (size_t i = 0; i < set->n; i++) {
		set_pred_free(&set->v[i].cond);
		set_pred_free(&set->v[i].except);
	}
	free(set->v);
	free(set);
}

size_t
rule_set_count(const struct rule_set *set)
{
	return set != NULL ? set->n : 0;
}

const struct rule *
rule_set_rule(const struct rule_set *set, size_t i)
{
	return &set->v[i];
}

const struct conf_transport_rule *
rule_conf(const struct rule *r)
{
	return r->c;
}

const char *
rule_name(const struct rule *r)
{
	return r->c->name;
}

int
rule_has_header_action(const struct rule *r)
{
	return r->header_action;
}

const char *
rule_reject_reply(const struct rule *r)
{
	return r->reply;
}

const char *
rule_actions_text(const struct rule *r)
{
	return r->actions;
}
