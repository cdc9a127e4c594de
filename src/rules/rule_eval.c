/*
 * rule_eval.c - running the rule set over one message (SPEC 5).
 *
 * Each envelope recipient gets its own pass through the rules in priority
 * order (its "track"): recipient conditions are per recipient, so a rule
 * may fire for one recipient and not for another, and StopRuleProcessing
 * stops that recipient's pass only.  What the rules decide is then put
 * together:
 *
 *  - fate: a reject or a delete ends the recipient's pass.  When every
 *    recipient is refused or deleted, nothing is stored: the message gets
 *    the first refused recipient's 5.7.x reply, or is accepted and dropped
 *    when all were deleted.  Otherwise the refused recipients are stored
 *    to fail with a non-delivery report, as Exchange bifurcates and NDRs
 *    them, and the deleted ones are dropped.
 *  - route and TLS: RouteMessageOutboundRequireTls is kept from the first
 *    rule that asked for it (it only ever adds a requirement); the last
 *    RouteMessageOutboundConnector wins, as later actions override
 *    earlier ones.
 *  - recipients: RedirectMessageTo replaces the recipient by the targets
 *    of every rule that redirected it, BlindCopyTo adds its targets; the
 *    new recipients travel with the copy of the recipient that added them
 *    and take its route and TLS decisions.  Rules do not run again for
 *    them, and an address already among the recipients is not added twice.
 *  - copies: recipients whose header actions (the rules that fired for
 *    them with SetHeader, RemoveHeader or PrependSubject) are the same
 *    share one copy of the message; different header actions split the
 *    message (Exchange's bifurcation).  The execution history of a copy
 *    names every Enforce rule that fired for any of its recipients, so a
 *    rule without header actions never splits a message by itself.
 *
 * Audit and AuditAndNotify rules that match change nothing, do not stop
 * rule processing, and are only reported (audited).  A rule whose pattern
 * fails (a match limit) is skipped under RuleErrorAction = Ignore; under
 * Defer the whole message is deferred (defer_rule).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules/rule_int.h"

static void
eval_set_bit(uint64_t *set, size_t i)
{
	set[i / 64] |= (uint64_t)1 << (i % 64);
}

static int
eval_any(const uint64_t *set, size_t words)
{
	for (size_t w = 0; w < words; w++)
		if (set[w] != 0)
			return 1;
	return 0;
}

/* Run the rules for one recipient; -1 when a rule asks to defer. */
static int
eval_track(const struct rule_set *set, const struct conf *conf,
    const struct rule_message *m, const struct rule_headers *h,
    struct rule_match_cache *mc, struct rule_track *t, struct rule_result *res)
{
	for (size_t i = 0; i < set->n; i++) {
		const struct rule *r = &set->v[i];
		const struct conf_transport_rule *c = r->c;
		int v;

		if (!c->enabled)
			continue;
		v = rule_match(r, conf, m, h, t->addr, mc);
		if (v < 0 && c->rule_error_action == RULE_ERROR_DEFER) {
			res->defer_rule = r;
			return -1;
		}
		if (v <= 0)
			continue;
		if (c->mode != RULE_MODE_ENFORCE) {
			eval_set_bit(t->audited, i);
			res->audited_any = 1;
			continue;
		}
		eval_set_bit(t->fired, i);
		res->fired_any = 1;
		if (c->route_require_tls && t->tls_rule == NULL)
			t->tls_rule = r;
		if (c->route_connector[0] != '\0')
			t->connector_rule = r;
		if (c->redirect_to.n > 0 && t->redirect_rule == NULL)
			t->redirect_rule = r;
		if (c->reject_text[0] != '\0' || c->reject_code[0] != '\0') {
			t->fate = RULE_FATE_REJECT;
			t->fate_rule = r;
			return 0;
		}
		if (c->delete_message) {
			t->fate = RULE_FATE_DELETE;
			t->fate_rule = r;
			return 0;
		}
		if (c->stop_rule_processing)
			return 0;
	}
	return 0;
}

/* Add a recipient unless it is there already; -1 when full. */
static int
eval_add(struct rule_result *res, size_t cap, const char *addr, size_t track,
    enum rule_origin origin, const struct rule *by)
{
	struct rule_recipient *rr;

	for (size_t i = 0; i < res->nrcpts; i++)
		if (strcasecmp(res->rcpts[i].addr, addr) == 0)
			return 0;
	if (res->nrcpts >= cap)
		return -1;
	rr = &res->rcpts[res->nrcpts++];
	rr->addr = addr;
	rr->track = track;
	rr->origin = origin;
	rr->added_by = by;
	return 0;
}

/* The recipients to store, in envelope order with additions after each. */
static int
eval_recipients(const struct rule_set *set, struct rule_result *res)
{
	size_t cap = 0;

	for (size_t t = 0; t < res->ntracks; t++) {
		cap++;
		for (size_t i = 0; i < set->n; i++)
			if (rule_bit(res->tracks[t].fired, i))
				cap += set->v[i].c->redirect_to.n +
				       set->v[i].c->blind_copy_to.n;
	}
	if (cap > RULE_RCPTS_MAX)
		cap = RULE_RCPTS_MAX;
	if ((res->rcpts = calloc(cap ? cap : 1, sizeof(*res->rcpts))) == NULL)
		return -1;
	for (size_t t = 0; t < res->ntracks; t++) {
		const struct rule_track *tr = &res->tracks[t];

		if (tr->fate == RULE_FATE_DELETE)
			continue;
		if (tr->fate == RULE_FATE_REJECT || tr->redirect_rule == NULL)
			eval_add(
			    res, cap, tr->addr, t, RULE_ORIGIN_ENVELOPE, NULL);
		if (tr->fate == RULE_FATE_REJECT)
			continue;
		for (size_t i = 0; i < set->n; i++) {
			const struct conf_transport_rule *c = set->v[i].c;

			if (!rule_bit(tr->fired, i))
				continue;
			for (size_t k = 0; k < c->redirect_to.n; k++)
				eval_add(res, cap, c->redirect_to.v[k], t,
				    RULE_ORIGIN_REDIRECT, &set->v[i]);
			for (size_t k = 0; k < c->blind_copy_to.n; k++)
				eval_add(res, cap, c->blind_copy_to.v[k], t,
				    RULE_ORIGIN_BLIND_COPY, &set->v[i]);
		}
	}
	return 0;
}

/* Group the delivered tracks by their header actions. */
static void
eval_copies(struct rule_result *res, const uint64_t *hdrmask)
{
	size_t words = res->words;

	for (size_t t = 0; t < res->ntracks; t++) {
		struct rule_track *tr = &res->tracks[t];
		size_t c;

		if (tr->fate != RULE_FATE_DELIVER)
			continue;
		for (c = 0; c < res->ncopies; c++) {
			size_t w;

			for (w = 0; w < words; w++)
				if ((tr->fired[w] & hdrmask[w]) !=
				    res->copies[c].headers[w])
					break;
			if (w == words)
				break;
		}
		if (c == res->ncopies) {
			res->ncopies++;
			for (size_t w = 0; w < words; w++)
				res->copies[c].headers[w] =
				    tr->fired[w] & hdrmask[w];
		}
		tr->copy = c;
		for (size_t w = 0; w < words; w++)
			res->copies[c].history[w] |= tr->fired[w];
	}
	for (size_t c = 0; c < res->ncopies; c++)
		res->copies[c].rewrite =
		    eval_any(res->copies[c].headers, words) ||
		    eval_any(res->copies[c].history, words);
	for (size_t i = 0; i < res->nrcpts; i++)
		res->copies[res->tracks[res->rcpts[i].track].copy].nrcpts++;
}

int
rule_eval(const struct rule_set *set, const struct conf *conf,
    const struct rule_message *m, struct rule_result *res)
{
	size_t n = set != NULL ? set->n : 0, words = n / 64 + 1, nt = m->nrcpts;
	struct rule_headers h;
	struct rule_match_cache *mc = NULL;
	uint64_t *hdrmask, *p;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	res->nrules = n;
	res->words = words;
	res->ntracks = nt;
	if (rule_headers_parse(m->data, m->len, &h) < 0)
		return -1;
	res->tracks = calloc(nt ? nt : 1, sizeof(*res->tracks));
	res->copies = calloc(nt ? nt : 1, sizeof(*res->copies));
	/* per track: fired, audited; per copy: headers, history; the mask */
	res->bits = calloc((4 * nt + 1) * words, sizeof(uint64_t));
	if (n > 0)
		mc = rule_match_cache_new(n);
	if (res->tracks == NULL || res->copies == NULL || res->bits == NULL ||
	    (n > 0 && mc == NULL))
		goto out;
	p = res->bits;
	hdrmask = p;
	p += words;
	for (size_t i = 0; i < n; i++)
		if (set->v[i].header_action)
			eval_set_bit(hdrmask, i);
	for (size_t t = 0; t < nt; t++) {
		struct rule_track *tr = &res->tracks[t];

		tr->addr = m->rcpts[t];
		tr->fate = RULE_FATE_DELIVER;
		tr->fired = p;
		tr->audited = p + words;
		res->copies[t].headers = p + 2 * words;
		res->copies[t].history = p + 3 * words;
		p += 4 * words;
		if (eval_track(set, conf, m, &h, mc, tr, res) < 0) {
			rc = 0; /* defer_rule says why */
			goto out;
		}
	}
	if (eval_recipients(set, res) < 0)
		goto out;
	{
		size_t delivered = 0;

		for (size_t t = 0; t < nt; t++)
			if (res->tracks[t].fate == RULE_FATE_DELIVER)
				delivered++;
		if (delivered == 0 && nt > 0) {
			for (size_t t = 0; t < nt && res->reject_rule == NULL;
			     t++)
				if (res->tracks[t].fate == RULE_FATE_REJECT)
					res->reject_rule =
					    res->tracks[t].fate_rule;
			res->reject_all = res->reject_rule != NULL;
			res->delete_all = res->reject_rule == NULL;
			res->nrcpts = 0;
			rc = 0;
			goto out;
		}
	}
	eval_copies(res, hdrmask);
	rc = 0;
out:
	rule_match_cache_free(mc);
	rule_headers_free(&h);
	if (rc < 0)
		rule_result_free(res);
	return rc;
}

void
rule_result_free(struct rule_result *res)
{
	free(res->tracks);
	free(res->rcpts);
	free(res->copies);
	free(res->bits);
	memset(res, 0, sizeof(*res));
}
