/*
 * rule_describe.c - a rule in words, as Get-TransportRule's Description
 * property gives it ("If the message: ... Take the following actions:
 * ... Except if the message: ..."), on one line for Format-List, and the
 * names of the enumerated values.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rules/rule_int.h"

struct describe {
	char *out;
	size_t len, w;
	int items; /* in the current part */
};

static void __attribute__((format(printf, 2, 3)))
describe_put(struct describe *d, const char *fmt, ...)
{
	va_list ap;

	if (d->w >= d->len)
		return;
	va_start(ap, fmt);
	d->w += (size_t)vsnprintf(d->out + d->w, d->len - d->w, fmt, ap);
	va_end(ap);
}

static void
describe_item(struct describe *d, const char *joiner)
{
	describe_put(d, "%s", d->items++ ? joiner : " ");
}

/* 'a' or 'b' or 'c' */
static void
describe_list(struct describe *d, const struct conf_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		describe_put(d, "%s'%s'", i ? " or " : "", l->v[i]);
}

const char *
rule_scope_name(unsigned scope)
{
	switch (scope) {
	case RULE_SCOPE_IN_ORGANIZATION:
		return "InOrganization";
	case RULE_SCOPE_NOT_IN_ORGANIZATION:
		return "NotInOrganization";
	case RULE_SCOPE_EXTERNAL_PARTNER:
		return "ExternalPartner";
	}
	return "";
}

const char *
rule_mode_name(unsigned mode)
{
	switch (mode) {
	case RULE_MODE_AUDIT:
		return "Audit";
	case RULE_MODE_AUDIT_AND_NOTIFY:
		return "AuditAndNotify";
	}
	return "Enforce";
}

static const char *
describe_scope(unsigned scope)
{
	switch (scope) {
	case RULE_SCOPE_IN_ORGANIZATION:
		return "'Inside the organization'";
	case RULE_SCOPE_NOT_IN_ORGANIZATION:
		return "'Outside the organization'";
	case RULE_SCOPE_EXTERNAL_PARTNER:
		return "'External partner'";
	}
	return "''";
}

static void
describe_pred(
    struct describe *d, const struct conf_rule_predicates *c, const char *j)
{
	if (c->sender_domain_is.n) {
		describe_item(d, j);
		describe_put(d, "sender's address domain is ");
		describe_list(d, &c->sender_domain_is);
	}
	if (c->from.n) {
		describe_item(d, j);
		describe_put(d, "is received from ");
		describe_list(d, &c->from);
	}
	if (c->from_scope) {
		describe_item(d, j);
		describe_put(
		    d, "is received from %s", describe_scope(c->from_scope));
	}
	if (c->from_address_patterns.n) {
		describe_item(d, j);
		describe_put(d, "sender address matches ");
		describe_list(d, &c->from_address_patterns);
	}
	if (c->nsender_ip_ranges) {
		describe_item(d, j);
		describe_put(
		    d, "sender IP address belongs to one of these ranges:");
		for (size_t i = 0; i < c->nsender_ip_ranges; i++)
			describe_put(d, "%s'%s'", i ? ", " : " ",
			    c->sender_ip_ranges[i].text);
	}
	if (c->recipient_domain_is.n) {
		describe_item(d, j);
		describe_put(d, "recipient's address domain portion belongs to "
		                "any of these domains: ");
		describe_list(d, &c->recipient_domain_is);
	}
	if (c->sent_to.n) {
		describe_item(d, j);
		describe_put(d, "is sent to ");
		describe_list(d, &c->sent_to);
	}
	if (c->sent_to_scope) {
		describe_item(d, j);
		describe_put(
		    d, "is sent to %s", describe_scope(c->sent_to_scope));
	}
	if (c->recipient_address_patterns.n) {
		describe_item(d, j);
		describe_put(d, "recipient address matches ");
		describe_list(d, &c->recipient_address_patterns);
	}
	if (c->header_contains_name != NULL && c->header_contains_name[0]) {
		describe_item(d, j);
		describe_put(
		    d, "'%s' header contains ", c->header_contains_name);
		describe_list(d, &c->header_contains_words);
	}
	if (c->header_matches_name != NULL && c->header_matches_name[0]) {
		describe_item(d, j);
		describe_put(d, "'%s' header matches ", c->header_matches_name);
		describe_list(d, &c->header_matches_patterns);
	}
	if (c->subject_contains_words.n) {
		describe_item(d, j);
		describe_put(d, "subject includes ");
		describe_list(d, &c->subject_contains_words);
	}
	if (c->subject_matches_patterns.n) {
		describe_item(d, j);
		describe_put(d, "subject matches ");
		describe_list(d, &c->subject_matches_patterns);
	}
	if (c->message_size_over != SIZE_UNLIMITED) {
		char sz[32];

		conf_format_size(c->message_size_over, sz, sizeof(sz));
		describe_item(d, j);
		describe_put(d, "size is greater than %s", sz);
	}
}

void
rule_describe(const struct rule *r, char *out, size_t len)
{
	const struct conf_transport_rule *c = r->c;
	struct describe d = {out, len, 0, 0};

	out[0] = '\0';
	describe_put(&d, "If the message:");
	describe_pred(&d, &c->cond, " and ");
	if (d.items == 0)
		describe_put(&d, " (any message)");
	describe_put(&d, " Take the following actions:");
	d.items = 0;
	if (c->route_require_tls) {
		describe_item(&d, ", ");
		describe_put(&d, "require TLS encryption when delivering");
	}
	if (c->route_connector[0]) {
		describe_item(&d, ", ");
		describe_put(&d, "use the following connector: '%s'",
		    c->route_connector);
	}
	if (c->remove_header[0]) {
		describe_item(&d, ", ");
		describe_put(
		    &d, "remove the message header '%s'", c->remove_header);
	}
	if (c->set_header_name[0]) {
		describe_item(&d, ", ");
		describe_put(&d,
		    "set the message header '%s' with the value '%s'",
		    c->set_header_name, c->set_header_value);
	}
	if (c->prepend_subject[0]) {
		describe_item(&d, ", ");
		describe_put(
		    &d, "prepend the subject with '%s'", c->prepend_subject);
	}
	if (c->reject_text[0] || c->reject_code[0]) {
		describe_item(&d, ", ");
		describe_put(&d, "reject the message with '%s'", r->reply);
	}
	if (c->delete_message) {
		describe_item(&d, ", ");
		describe_put(&d, "delete the message without notifying anyone");
	}
	if (c->redirect_to.n) {
		describe_item(&d, ", ");
		describe_put(&d, "redirect the message to ");
		describe_list(&d, &c->redirect_to);
	}
	if (c->blind_copy_to.n) {
		describe_item(&d, ", ");
		describe_put(&d, "Bcc the message to ");
		describe_list(&d, &c->blind_copy_to);
	}
	if (c->stop_rule_processing) {
		describe_item(&d, ", ");
		describe_put(&d, "stop processing more rules");
	}
	d.items = 0;
	if (r->except.any_message || r->except.any_recipient) {
		describe_put(&d, " Except if the message:");
		describe_pred(&d, &c->except, " or ");
	}
	if (d.w >= len && len > 4)
		memcpy(out + len - 4, "...", 4);
}
