/*
 * rule_match.c - conditions and exceptions (SPEC 5): does a rule apply to
 * one recipient of a message?
 *
 * Conditions AND, the values of one condition OR, and any exception
 * cancels the rule; a rule with no condition applies to every message.
 * The predicates that do not depend on the recipient (sender, client,
 * headers, subject, size) are worked out once per rule and message and
 * kept in the cache; the recipient predicates run per recipient.
 *
 * A predicate is 1 (holds), 0 (does not) or -1 (a pattern ran out of its
 * limits).  Errors only matter when they decide: a condition set with a
 * false member is false whatever else failed, an exception set with a
 * true member is true.
 *
 * Who "the sender" is follows SenderAddressLocation, as in Exchange: the
 * From header field (the default), the envelope, or either of them.  The
 * organisation is the accepted domains: a sender is InOrganization when
 * its domain is one of them and the message came from inside (AuthAs
 * Internal: authenticated or through an ExternalAuthoritative connector),
 * so mail from outside that merely claims one of our domains is
 * NotInOrganization.  A recipient is InOrganization when its domain is an
 * Authoritative or InternalRelay accepted domain, ExternalPartner when it
 * is in TLSSendDomainSecureList.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules/rule_int.h"

/* Combining predicates: AND for conditions, OR for exceptions. */
struct match_acc {
	int any_false, any_true, any_error, count;
};

static void
acc_add(struct match_acc *a, int v)
{
	a->count++;
	if (v > 0)
		a->any_true = 1;
	else if (v == 0)
		a->any_false = 1;
	else
		a->any_error = 1;
}

static int
acc_all(const struct match_acc *a)
{
	if (a->any_false)
		return 0;
	return a->any_error ? -1 : 1;
}

static int
acc_any(const struct match_acc *a)
{
	if (a->any_true)
		return 1;
	return a->any_error ? -1 : 0;
}

static const char *
match_domain_of(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : "";
}

/* domain (of length dl) is d or a subdomain of d */
static int
match_domain_under(const char *domain, size_t dl, const char *d)
{
	size_t n = strlen(d);

	if (dl == n)
		return strcasecmp(domain, d) == 0;
	return dl > n && domain[dl - n - 1] == '.' &&
	       strcasecmp(domain + dl - n, d) == 0;
}

static int
match_domains(const char *addr, const struct conf_strlist *l)
{
	const char *domain = match_domain_of(addr);
	size_t dl = strlen(domain);

	if (dl == 0)
		return 0;
	for (size_t i = 0; i < l->n; i++)
		if (match_domain_under(domain, dl, l->v[i]))
			return 1;
	return 0;
}

static int
match_addresses(const char *addr, const struct conf_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcasecmp(addr, l->v[i]) == 0)
			return 1;
	return 0;
}

static int
match_patterns(const char *text, size_t len, const struct rule_patterns *p)
{
	int err = 0;

	for (size_t i = 0; i < p->n; i++) {
		int v = rule_pattern_match(p->v[i], text, len);

		if (v > 0)
			return 1;
		if (v < 0)
			err = 1;
	}
	return err ? -1 : 0;
}

static int
match_words(const char *text, size_t len, const struct conf_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (rule_words_contain(text, len, l->v[i]))
			return 1;
	return 0;
}

static int
match_in_organization(const struct conf *conf, const char *addr)
{
	const struct conf_accepted_domain *ad =
	    conf_accepted_domain(conf, match_domain_of(addr));

	return ad != NULL && (ad->type == DOMAIN_AUTHORITATIVE ||
	                         ad->type == DOMAIN_INTERNAL_RELAY);
}

static int
match_sent_to_scope(const struct conf *conf, const char *rcpt, unsigned scope)
{
	int in = match_in_organization(conf, rcpt);

	switch (scope) {
	case RULE_SCOPE_IN_ORGANIZATION:
		return in;
	case RULE_SCOPE_NOT_IN_ORGANIZATION:
		return !in;
	case RULE_SCOPE_EXTERNAL_PARTNER:
		return !in &&
		       conf_strlist_has(&conf->transport.send_domain_secure,
		           match_domain_of(rcpt));
	}
	return 0;
}

static int
match_from_scope(const struct conf *conf, const struct rule_message *m,
    const char *sender, unsigned scope)
{
	const struct conf_accepted_domain *ad =
	    conf_accepted_domain(conf, match_domain_of(sender));
	int in = m->auth == RULE_AUTH_INTERNAL && ad != NULL;

	return scope == RULE_SCOPE_IN_ORGANIZATION ? in : !in;
}

/* The decoded value of field i, made once per message. */
static const char *
match_field(struct rule_match_cache *mc, const struct rule_headers *h,
    const char *data, size_t i, size_t *len)
{
	if (mc->fields == NULL) {
		mc->fields = calloc(h->n ? h->n : 1, sizeof(*mc->fields));
		mc->field_len = calloc(h->n ? h->n : 1, sizeof(*mc->field_len));
		mc->nfields = h->n;
		if (mc->fields == NULL || mc->field_len == NULL) {
			free(mc->fields);
			free(mc->field_len);
			mc->fields = NULL;
			mc->field_len = NULL;
			return NULL;
		}
	}
	if (mc->fields[i] == NULL)
		mc->fields[i] = rule_header_decode(
		    data + h->v[i].value, h->v[i].value_len, &mc->field_len[i]);
	*len = mc->field_len[i];
	return mc->fields[i];
}

/*
 * Any field called name whose value contains one of the words or (when
 * patterns is not NULL) matches one of the patterns.
 */
static int
match_header(struct rule_match_cache *mc, const struct rule_headers *h,
    const char *data, const char *name, const struct conf_strlist *words,
    const struct rule_patterns *patterns)
{
	int err = 0;

	for (long i = rule_headers_find(h, data, name, 0); i >= 0;
	     i = rule_headers_find(h, data, name, (size_t)i + 1)) {
		size_t len;
		const char *v = match_field(mc, h, data, (size_t)i, &len);
		int r;

		if (v == NULL)
			return -1;
		r = patterns != NULL ? match_patterns(v, len, patterns)
		                     : match_words(v, len, words);
		if (r > 0)
			return 1;
		if (r < 0)
			err = 1;
	}
	return err ? -1 : 0;
}

/* The addresses that stand for the sender under this rule (1 or 2). */
static int
match_senders(const struct rule *r, const struct rule_message *m,
    const struct rule_headers *h, struct rule_match_cache *mc,
    const char *out[2])
{
	int n = 0;

	if (!mc->senders_done) {
		long f = rule_headers_find(h, m->data, "From", 0);
		size_t len;
		const char *v;

		mc->senders_done = 1;
		mc->header_from[0] = '\0';
		if (f >= 0 &&
		    (v = match_field(mc, h, m->data, (size_t)f, &len)) !=
		        NULL &&
		    rule_header_address(
		        v, mc->header_from, sizeof(mc->header_from)) < 0)
			mc->header_from[0] = '\0';
	}
	switch (r->c->sender_address_location) {
	case RULE_SENDER_ENVELOPE:
		out[n++] = m->sender;
		break;
	case RULE_SENDER_HEADER_OR_ENVELOPE:
		out[n++] = m->sender;
		if (mc->header_from[0] != '\0')
			out[n++] = mc->header_from;
		break;
	default:
		/* no usable From field: the envelope stands in */
		out[n++] =
		    mc->header_from[0] != '\0' ? mc->header_from : m->sender;
		break;
	}
	return n;
}

/*
 * Add one predicate's value; true when the set is decided already: a
 * false condition or a true exception.  Cheap predicates come first, so
 * patterns and header decoding only run when the rest did not decide.
 */
static int
acc_decides(struct match_acc *a, int v, int all)
{
	acc_add(a, v);
	return all ? v == 0 : v > 0;
}

/* The predicates of p that do not depend on the recipient. */
static int
match_message(const struct rule *r, const struct rule_pred *p,
    const struct conf *conf, const struct rule_message *m,
    const struct rule_headers *h, struct rule_match_cache *mc, int all)
{
	const struct conf_rule_predicates *c = p->c;
	struct match_acc a = {0};
	const char *senders[2];
	int ns = 0;

	if (!p->any_message)
		return all ? 1 : 0;
	if (c->message_size_over != SIZE_UNLIMITED &&
	    acc_decides(&a, m->size > c->message_size_over, all))
		goto out;
	if (c->nsender_ip_ranges) {
		int v = 0;

		for (size_t i = 0;
		     m->client != NULL && i < c->nsender_ip_ranges; i++)
			v |= conf_iprange_contains(
			    &c->sender_ip_ranges[i], m->client);
		if (acc_decides(&a, v, all))
			goto out;
	}
	if (c->sender_domain_is.n || c->from.n || c->from_scope ||
	    c->from_address_patterns.n)
		ns = match_senders(r, m, h, mc, senders);
	if (c->sender_domain_is.n) {
		int v = 0;

		for (int i = 0; i < ns; i++)
			v |= match_domains(senders[i], &c->sender_domain_is);
		if (acc_decides(&a, v, all))
			goto out;
	}
	if (c->from.n) {
		int v = 0;

		for (int i = 0; i < ns; i++)
			v |= match_addresses(senders[i], &c->from);
		if (acc_decides(&a, v, all))
			goto out;
	}
	if (c->from_scope) {
		int v = 0;

		for (int i = 0; i < ns; i++)
			v |= match_from_scope(
			    conf, m, senders[i], c->from_scope);
		if (acc_decides(&a, v, all))
			goto out;
	}
	if (c->subject_contains_words.n &&
	    acc_decides(&a,
	        match_header(mc, h, m->data, "Subject",
	            &c->subject_contains_words, NULL),
	        all))
		goto out;
	if (c->header_contains_name != NULL && c->header_contains_name[0] &&
	    acc_decides(&a,
	        match_header(mc, h, m->data, c->header_contains_name,
	            &c->header_contains_words, NULL),
	        all))
		goto out;
	if (c->from_address_patterns.n) {
		struct match_acc any = {0};

		for (int i = 0; i < ns; i++)
			acc_add(
			    &any, match_patterns(senders[i], strlen(senders[i]),
			              &p->from_patterns));
		if (acc_decides(&a, acc_any(&any), all))
			goto out;
	}
	if (c->subject_matches_patterns.n &&
	    acc_decides(&a,
	        match_header(
	            mc, h, m->data, "Subject", NULL, &p->subject_patterns),
	        all))
		goto out;
	if (c->header_matches_name != NULL && c->header_matches_name[0])
		acc_add(&a, match_header(mc, h, m->data, c->header_matches_name,
		                NULL, &p->header_patterns));
out:
	return all ? acc_all(&a) : acc_any(&a);
}

static int
match_recipient(const struct rule_pred *p, const struct conf *conf,
    const char *rcpt, int all)
{
	const struct conf_rule_predicates *c = p->c;
	struct match_acc a = {0};

	if (c->recipient_domain_is.n)
		acc_add(&a, match_domains(rcpt, &c->recipient_domain_is));
	if (c->sent_to.n)
		acc_add(&a, match_addresses(rcpt, &c->sent_to));
	if (c->sent_to_scope)
		acc_add(&a, match_sent_to_scope(conf, rcpt, c->sent_to_scope));
	if (c->recipient_address_patterns.n)
		acc_add(&a,
		    match_patterns(rcpt, strlen(rcpt), &p->recipient_patterns));
	if (a.count == 0)
		return all ? 1 : 0;
	return all ? acc_all(&a) : acc_any(&a);
}

int
rule_match(const struct rule *r, const struct conf *conf,
    const struct rule_message *m, const struct rule_headers *h,
    const char *rcpt, struct rule_match_cache *mc)
{
	struct rule_match_entry *e = &mc->e[r->index];
	int cond_r = 1, except_r = 0, cond, except;

	if (!e->done) {
		e->cond =
		    (signed char)match_message(r, &r->cond, conf, m, h, mc, 1);
		/* exceptions only matter when the conditions may hold */
		e->except = e->cond != 0 ? (signed char)match_message(
		                               r, &r->except, conf, m, h, mc, 0)
		                         : 0;
		e->done = 1;
	}
	if (e->cond == 0 || e->except == 1)
		return 0;
	/* no recipient predicates: the answer is the message's alone */
	if (!r->cond.any_recipient && !r->except.any_recipient)
		return e->cond < 0 || e->except < 0 ? -1 : 1;
	if (r->cond.any_recipient)
		cond_r = match_recipient(&r->cond, conf, rcpt, 1);
	if (cond_r == 0)
		return 0;
	if (r->except.any_recipient)
		except_r = match_recipient(&r->except, conf, rcpt, 0);
	if (except_r == 1)
		return 0;
	cond = e->cond < 0 || cond_r < 0 ? -1 : 1;
	except = e->except < 0 || except_r < 0 ? -1 : 0;
	return cond < 0 || except < 0 ? -1 : 1;
}

struct rule_match_cache *
rule_match_cache_new(size_t nrules)
{
	struct rule_match_cache *mc =
	    calloc(1, sizeof(*mc) + nrules * sizeof(mc->e[0]));

	if (mc != NULL)
		mc->n = nrules;
	return mc;
}

void
rule_match_cache_free(struct rule_match_cache *mc)
{
	if (mc == NULL)
		return;
	for (size_t i = 0; mc->fields != NULL && i < mc->nfields; i++)
		free(mc->fields[i]);
	free(mc->fields);
	free(mc->field_len);
	free(mc);
}
