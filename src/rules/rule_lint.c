/*
 * rule_lint.c - what `sluicectl config check` warns about in transport
 * rules: valid configuration that is probably not what was meant.
 *
 *  - a rule with no condition applies to every message;
 *  - a rule that can never match: an exception that covers its condition
 *    (ExceptIfRecipientDomainIs contoso.com with RecipientDomainIs
 *    sub.contoso.com, the same scope, a smaller ExceptIfMessageSizeOver,
 *    the same words or patterns), conditions that contradict each other
 *    (From addresses outside SenderDomainIs, SentTo outside
 *    RecipientDomainIs, FromScope InOrganization with sender domains that
 *    are not accepted domains, SentToScope against RecipientDomainIs),
 *    MessageSizeOver at or above the largest message any receive connector
 *    accepts;
 *  - a rule that never runs because an earlier enabled rule without
 *    conditions stops rule processing, rejects or deletes every message.
 *
 * The checks are conservative: a warning is given only when the rule
 * cannot match for any message, never on a guess.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "rules/rule_int.h"

struct lint {
	const struct conf *conf;
	void (*fn)(void *, int, const char *, const char *);
	void *arg;
	unsigned n;
};

static void __attribute__((format(printf, 3, 4)))
lint_warn(struct lint *l, const struct rule *r, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	l->fn(l->arg, r->c->line, r->c->name, msg);
	l->n++;
}

static const char *
lint_domain_of(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : "";
}

static int
lint_under(const char *domain, const char *d)
{
	size_t dl = strlen(domain), n = strlen(d);

	if (dl == n)
		return strcasecmp(domain, d) == 0;
	return dl > n && domain[dl - n - 1] == '.' &&
	       strcasecmp(domain + dl - n, d) == 0;
}

/* Every domain of a is under some domain of b. */
static int
lint_domains_covered(const struct conf_strlist *a, const struct conf_strlist *b)
{
	for (size_t i = 0; i < a->n; i++) {
		size_t j;

		for (j = 0; j < b->n; j++)
			if (lint_under(a->v[i], b->v[j]))
				break;
		if (j == b->n)
			return 0;
	}
	return a->n > 0;
}

/* Every item of a is in b (case-insensitive). */
static int
lint_items_covered(const struct conf_strlist *a, const struct conf_strlist *b)
{
	for (size_t i = 0; i < a->n; i++)
		if (!conf_strlist_has(b, a->v[i]))
			return 0;
	return a->n > 0;
}

/* Each address of a has its domain under some domain of b. */
static int
lint_addresses_outside(
    const struct conf_strlist *addrs, const struct conf_strlist *domains)
{
	for (size_t i = 0; i < addrs->n; i++)
		for (size_t j = 0; j < domains->n; j++)
			if (lint_under(
			        lint_domain_of(addrs->v[i]), domains->v[j]))
				return 0;
	return addrs->n > 0 && domains->n > 0;
}

static int
lint_ranges_covered(
    const struct conf_rule_predicates *c, const struct conf_rule_predicates *e)
{
	for (size_t i = 0; i < c->nsender_ip_ranges; i++) {
		size_t j;

		for (j = 0; j < e->nsender_ip_ranges; j++)
			if (memcmp(e->sender_ip_ranges[j].lo,
			        c->sender_ip_ranges[i].lo, 16) <= 0 &&
			    memcmp(e->sender_ip_ranges[j].hi,
			        c->sender_ip_ranges[i].hi, 16) >= 0)
				break;
		if (j == e->nsender_ip_ranges)
			return 0;
	}
	return c->nsender_ip_ranges > 0;
}

static int
lint_internal(const struct conf *conf, const char *domain)
{
	const struct conf_accepted_domain *ad =
	    conf_accepted_domain(conf, domain);

	return ad != NULL && (ad->type == DOMAIN_AUTHORITATIVE ||
	                         ad->type == DOMAIN_INTERNAL_RELAY);
}

/* The exception that always holds whenever the conditions do, or NULL. */
static const char *
lint_excepted(
    const struct conf_rule_predicates *c, const struct conf_rule_predicates *e)
{
	if (lint_domains_covered(
	        &c->recipient_domain_is, &e->recipient_domain_is))
		return "ExceptIfRecipientDomainIs covers RecipientDomainIs";
	if (lint_domains_covered(&c->sender_domain_is, &e->sender_domain_is))
		return "ExceptIfSenderDomainIs covers SenderDomainIs";
	if (lint_items_covered(&c->from, &e->from))
		return "ExceptIfFrom covers From";
	if (lint_items_covered(&c->sent_to, &e->sent_to))
		return "ExceptIfSentTo covers SentTo";
	if (c->from_scope && c->from_scope == e->from_scope)
		return "ExceptIfFromScope is the same as FromScope";
	if (c->sent_to_scope && c->sent_to_scope == e->sent_to_scope)
		return "ExceptIfSentToScope is the same as SentToScope";
	if (c->message_size_over != SIZE_UNLIMITED &&
	    e->message_size_over != SIZE_UNLIMITED &&
	    e->message_size_over <= c->message_size_over)
		return "ExceptIfMessageSizeOver is not larger than "
		       "MessageSizeOver";
	if (lint_ranges_covered(c, e))
		return "ExceptIfSenderIpRanges covers SenderIpRanges";
	if (lint_items_covered(
	        &c->subject_contains_words, &e->subject_contains_words))
		return "ExceptIfSubjectContainsWords covers "
		       "SubjectContainsWords";
	if (lint_items_covered(
	        &c->subject_matches_patterns, &e->subject_matches_patterns))
		return "ExceptIfSubjectMatchesPatterns covers "
		       "SubjectMatchesPatterns";
	if (lint_items_covered(
	        &c->from_address_patterns, &e->from_address_patterns))
		return "ExceptIfFromAddressMatchesPatterns covers "
		       "FromAddressMatchesPatterns";
	if (lint_items_covered(
	        &c->recipient_address_patterns, &e->recipient_address_patterns))
		return "ExceptIfRecipientAddressMatchesPatterns covers "
		       "RecipientAddressMatchesPatterns";
	if (c->header_contains_name && e->header_contains_name &&
	    c->header_contains_name[0] &&
	    strcasecmp(c->header_contains_name, e->header_contains_name) == 0 &&
	    lint_items_covered(
	        &c->header_contains_words, &e->header_contains_words))
		return "ExceptIfHeaderContainsWords covers HeaderContainsWords";
	if (c->header_matches_name && e->header_matches_name &&
	    c->header_matches_name[0] &&
	    strcasecmp(c->header_matches_name, e->header_matches_name) == 0 &&
	    lint_items_covered(
	        &c->header_matches_patterns, &e->header_matches_patterns))
		return "ExceptIfHeaderMatchesPatterns covers "
		       "HeaderMatchesPatterns";
	return NULL;
}

/* Conditions that contradict each other, or NULL. */
static const char *
lint_contradiction(const struct conf *conf, const struct conf_transport_rule *r)
{
	const struct conf_rule_predicates *c = &r->cond;
	uint64_t largest = conf->transport.max_receive_size;

	if (lint_addresses_outside(&c->from, &c->sender_domain_is))
		return "no From address is in a SenderDomainIs domain";
	if (lint_addresses_outside(&c->sent_to, &c->recipient_domain_is))
		return "no SentTo address is in a RecipientDomainIs domain";
	if (c->from_scope == RULE_SCOPE_IN_ORGANIZATION &&
	    c->sender_domain_is.n > 0) {
		size_t i;

		/* a subdomain of a listed domain may still be accepted */
		for (i = 0; i < c->sender_domain_is.n; i++) {
			size_t j;

			for (j = 0; j < conf->naccepted_domains; j++)
				if (lint_under(conf->accepted_domains[j].name,
				        c->sender_domain_is.v[i]))
					break;
			if (j < conf->naccepted_domains)
				break;
		}
		if (i == c->sender_domain_is.n)
			return "FromScope InOrganization, but no "
			       "SenderDomainIs domain is an accepted domain";
	}
	if ((c->sent_to_scope == RULE_SCOPE_NOT_IN_ORGANIZATION ||
	        c->sent_to_scope == RULE_SCOPE_EXTERNAL_PARTNER) &&
	    c->recipient_domain_is.n > 0) {
		size_t i;

		for (i = 0; i < c->recipient_domain_is.n; i++)
			if (!lint_internal(conf, c->recipient_domain_is.v[i]))
				break;
		if (i == c->recipient_domain_is.n)
			return "SentToScope is outside the organization, but "
			       "every RecipientDomainIs domain is inside it";
	}
	if (c->sent_to_scope == RULE_SCOPE_EXTERNAL_PARTNER &&
	    conf->transport.send_domain_secure.n == 0)
		return "SentToScope ExternalPartner, but "
		       "TLSSendDomainSecureList is empty";
	/* every receive connector's MaxMessageSize is capped by it */
	if (c->message_size_over != SIZE_UNLIMITED &&
	    largest != SIZE_UNLIMITED && c->message_size_over >= largest)
		return "MessageSizeOver is not below MaxReceiveSize: no "
		       "message that large is ever accepted";
	return NULL;
}

unsigned
rule_lint(const struct rule_set *set, const struct conf *conf,
    void (*fn)(void *, int, const char *, const char *), void *arg)
{
	struct lint l = {conf, fn, arg, 0};
	const struct rule *blocker = NULL;

	for (size_t i = 0; set != NULL && i < set->n; i++) {
		const struct rule *r = &set->v[i];
		const struct conf_transport_rule *c = r->c;
		const char *why;

		if (!c->enabled)
			continue;
		if (blocker != NULL)
			lint_warn(&l, r,
			    "rule \"%s\" never runs: rule \"%s\" comes first, "
			    "has no condition and %s",
			    c->name, blocker->c->name,
			    blocker->c->stop_rule_processing
			        ? "stops rule processing"
			    : blocker->c->delete_message
			        ? "deletes every message"
			        : "rejects every message");
		if (!r->has_condition)
			lint_warn(&l, r,
			    "rule \"%s\" has no condition: it applies to every "
			    "message",
			    c->name);
		if ((why = lint_excepted(&c->cond, &c->except)) != NULL)
			lint_warn(&l, r, "rule \"%s\" can never match: %s",
			    c->name, why);
		else if ((why = lint_contradiction(conf, c)) != NULL)
			lint_warn(&l, r, "rule \"%s\" can never match: %s",
			    c->name, why);
		if (blocker == NULL && !r->has_condition &&
		    !r->except.any_message && !r->except.any_recipient &&
		    c->mode == RULE_MODE_ENFORCE &&
		    (c->stop_rule_processing || c->delete_message ||
		        c->reject_text[0] || c->reject_code[0]))
			blocker = r;
	}
	return l.n;
}
