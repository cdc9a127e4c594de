/*
 * ctl_rules.c - sluicectl commands for transport rules (SPEC 5):
 *
 *   get-transportrule [NAME]   Get-TransportRule | Format-List: every
 *                              effective value, State and Description;
 *   test-transportrule ...     Exchange's Test-Message: a message
 *                              described on the command line goes through
 *                              the rules exactly as sluiced runs them
 *                              (rule_eval), and each recipient is routed
 *                              with the rules' decisions (route_recipient).
 *
 * Both read the configuration file only; nothing talks to the daemon.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "ctl/ctl.h"
#include "route/route.h"
#include "rules/rules.h"
#include "util/buf.h"

/* Recipients and header fields a test message may have. */
#define CTL_RULES_RCPTS_MAX 100
#define CTL_RULES_HEADERS_MAX 50
#define CTL_RULES_MESSAGE_MAX (256 * 1024)

int
ctl_get_transportrule(struct ctl *ctl, int argc, char **argv)
{
	struct conf *c = conf_load(ctl->conf_path, stderr);
	int found = 0;

	if (c == NULL)
		return 1;
	/* in priority order, as Get-TransportRule lists them */
	for (size_t i = 0; i < rule_set_count(c->rules); i++) {
		const struct conf_transport_rule *r =
		    rule_conf(rule_set_rule(c->rules, i));

		if (argc > 0 && strcasecmp(r->name, argv[0]) != 0)
			continue;
		if (found++)
			putchar('\n');
		conf_dump_transport_rule(c, r, stdout);
	}
	conf_free(c);
	if (argc > 0 && !found) {
		fprintf(
		    stderr, "sluicectl: no transport rule named %s\n", argv[0]);
		return 1;
	}
	return 0;
}

struct ctl_test {
	const char *from;
	const char *rcpts[CTL_RULES_RCPTS_MAX];
	size_t nrcpts;
	const char *subject;
	const char *headers[CTL_RULES_HEADERS_MAX];
	size_t nheaders;
	unsigned long long size;
	int size_set;
	const char *client;
	const char *connector;
	const char *auth;
	struct sockaddr_storage ss;
	struct buf data;
	struct rule_message m;
};

static int
ctl_test_has_header(const struct ctl_test *t, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < t->nheaders; i++)
		if (strncasecmp(t->headers[i], name, n) == 0 &&
		    t->headers[i][n] == ':')
			return 1;
	return 0;
}

/* The message the options describe, as the rules see it. */
static int
ctl_test_message(const struct conf *c, struct ctl_test *t)
{
	int rc = BUF_OK;

	memset(&t->m, 0, sizeof(t->m));
	buf_init(&t->data, CTL_RULES_MESSAGE_MAX);
	if (!ctl_test_has_header(t, "From") && t->from[0] != '\0')
		rc = buf_printf(&t->data, "From: %s\r\n", t->from);
	if (rc == BUF_OK && !ctl_test_has_header(t, "To")) {
		rc = buf_puts(&t->data, "To: ");
		for (size_t i = 0; rc == BUF_OK && i < t->nrcpts; i++)
			rc = buf_printf(
			    &t->data, "%s%s", i ? ", " : "", t->rcpts[i]);
		if (rc == BUF_OK)
			rc = buf_puts(&t->data, "\r\n");
	}
	if (rc == BUF_OK && t->subject != NULL &&
	    !ctl_test_has_header(t, "Subject"))
		rc = buf_printf(&t->data, "Subject: %s\r\n", t->subject);
	for (size_t i = 0; rc == BUF_OK && i < t->nheaders; i++)
		rc = buf_printf(&t->data, "%s\r\n", t->headers[i]);
	if (rc == BUF_OK)
		rc = buf_puts(&t->data, "\r\nThis is a test message.\r\n");
	if (rc != BUF_OK) {
		fprintf(stderr, "sluicectl: the test message is too large\n");
		return -1;
	}
	t->m.sender = t->from;
	t->m.rcpts = t->rcpts;
	t->m.nrcpts = t->nrcpts;
	t->m.data = t->data.data;
	t->m.len = t->data.len;
	t->m.size = t->size_set ? t->size : t->data.len;
	t->m.auth = RULE_AUTH_ANONYMOUS;
	if (t->connector != NULL) {
		const struct conf_receive_connector *rc_ =
		    conf_receive_connector(c, t->connector);

		if (rc_ == NULL) {
			fprintf(stderr,
			    "sluicectl: no receive connector "
			    "named %s\n",
			    t->connector);
			return -1;
		}
		if ((rc_->auth_mechanism & AUTHM_EXTERNAL_AUTHORITATIVE) &&
		    (rc_->permission_groups & PERM_EXCHANGE_SERVERS))
			t->m.auth = RULE_AUTH_INTERNAL;
	}
	if (t->auth != NULL) {
		if (strcasecmp(t->auth, "Internal") == 0)
			t->m.auth = RULE_AUTH_INTERNAL;
		else if (strcasecmp(t->auth, "Partner") == 0)
			t->m.auth = RULE_AUTH_PARTNER;
		else if (strcasecmp(t->auth, "Anonymous") == 0)
			t->m.auth = RULE_AUTH_ANONYMOUS;
		else {
			fprintf(stderr, "sluicectl: --auth-as takes "
			                "Anonymous, Partner or Internal\n");
			return -1;
		}
	}
	if (t->client != NULL) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&t->ss;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->ss;

		memset(&t->ss, 0, sizeof(t->ss));
		if (inet_pton(AF_INET, t->client, &s4->sin_addr) == 1)
			s4->sin_family = AF_INET;
		else if (inet_pton(AF_INET6, t->client, &s6->sin6_addr) == 1)
			s6->sin6_family = AF_INET6;
		else {
			fprintf(stderr,
			    "sluicectl: --client %s: not an IP "
			    "address\n",
			    t->client);
			return -1;
		}
		t->m.client = (const struct sockaddr *)&t->ss;
	}
	return 0;
}

/* "A; B" of the rules set in a bit set, by mode. */
static void
ctl_rule_names(
    const struct rule_set *set, const uint64_t *bits, char *out, size_t len)
{
	size_t w = 0;

	out[0] = '\0';
	for (size_t i = 0; i < rule_set_count(set); i++)
		if (rule_bit(bits, i))
			w += (size_t)snprintf(out + w, w < len ? len - w : 0,
			    "%s%s", w ? "; " : "",
			    rule_name(rule_set_rule(set, i)));
}

static void
ctl_track_rules(const struct rule_track *tr, struct route_rules *rr)
{
	memset(rr, 0, sizeof(*rr));
	if (tr->tls_rule != NULL)
		rr->tls_rule = rule_name(tr->tls_rule);
	if (tr->connector_rule != NULL) {
		rr->connector = rule_conf(tr->connector_rule)->route_connector;
		rr->connector_rule = rule_name(tr->connector_rule);
	}
}

static const char *
ctl_domain(const char *addr, char *out, size_t len)
{
	const char *at = strrchr(addr, '@');
	size_t i;

	for (i = 0; at != NULL && at[1 + i] != '\0' && i + 1 < len; i++)
		out[i] = (char)((at[1 + i] >= 'A' && at[1 + i] <= 'Z')
		                    ? at[1 + i] + 32
		                    : at[1 + i]);
	out[i] = '\0';
	return out;
}

int
ctl_rules_for(const struct conf *c, const char *sender, const char *rcpt,
    struct route_rules *rr, char *names, size_t len)
{
	struct ctl_test t;
	struct rule_result res;
	int rc = 0;

	memset(&t, 0, sizeof(t));
	t.from = sender;
	t.rcpts[t.nrcpts++] = rcpt;
	memset(rr, 0, sizeof(*rr));
	names[0] = '\0';
	if (ctl_test_message(c, &t) < 0)
		return -1;
	if (rule_eval(c->rules, c, &t.m, &res) < 0) {
		fprintf(stderr, "sluicectl: out of memory\n");
		buf_free(&t.data);
		return -1;
	}
	ctl_rule_names(c->rules, res.tracks[0].fired, names, len);
	if (res.defer_rule != NULL) {
		snprintf(names, len,
		    "the message is deferred: rule \"%s\" "
		    "failed (RuleErrorAction Defer)",
		    rule_name(res.defer_rule));
		rc = 1;
	} else if (res.tracks[0].fate != RULE_FATE_DELIVER) {
		size_t w = strlen(names);

		snprintf(names + w, len > w ? len - w : 0,
		    " (%s by \"%s\": %s)",
		    res.tracks[0].fate == RULE_FATE_REJECT ? "rejected"
		                                           : "deleted",
		    rule_name(res.tracks[0].fate_rule),
		    res.tracks[0].fate == RULE_FATE_REJECT
		        ? rule_reject_reply(res.tracks[0].fate_rule)
		        : "accepted and dropped");
		rc = 1;
	} else {
		ctl_track_rules(&res.tracks[0], rr);
	}
	rule_result_free(&res);
	buf_free(&t.data);
	return rc;
}

static int
ctl_test_usage(void)
{
	fprintf(stderr,
	    "usage: sluicectl test-transportrule --from A --to B [--to C ...] "
	    "[--subject S]\n"
	    "       [--header \"N: V\" ...] [--size N] [--client IP] "
	    "[--connector NAME]\n"
	    "       [--auth-as Anonymous|Partner|Internal]\n");
	return 2;
}

static int
ctl_test_args(int argc, char **argv, struct ctl_test *t)
{
	for (int i = 0; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			return -1;
		i++;
		if (strcmp(o, "--from") == 0)
			t->from = v;
		else if (strcmp(o, "--to") == 0 &&
		         t->nrcpts < CTL_RULES_RCPTS_MAX)
			t->rcpts[t->nrcpts++] = v;
		else if (strcmp(o, "--subject") == 0)
			t->subject = v;
		else if (strcmp(o, "--header") == 0 &&
		         t->nheaders < CTL_RULES_HEADERS_MAX) {
			const char *colon = strchr(v, ':');

			if (colon == NULL || colon == v ||
			    strpbrk(v, "\r\n") != NULL) {
				fprintf(stderr, "sluicectl: --header takes "
				                "\"Name: value\"\n");
				return -1;
			}
			t->headers[t->nheaders++] = v;
		} else if (strcmp(o, "--size") == 0) {
			uint64_t sz;
			const char *why;

			if (conf_parse_size(v, &sz, &why) < 0 ||
			    sz == SIZE_UNLIMITED) {
				fprintf(stderr, "sluicectl: --size %s: %s\n", v,
				    "expected a size (bytes, 10KB, 2MB)");
				return -1;
			}
			t->size = sz;
			t->size_set = 1;
		} else if (strcmp(o, "--client") == 0)
			t->client = v;
		else if (strcmp(o, "--connector") == 0)
			t->connector = v;
		else if (strcmp(o, "--auth-as") == 0)
			t->auth = v;
		else
			return -1;
	}
	return t->from != NULL && t->nrcpts > 0 ? 0 : -1;
}

static void
ctl_test_recipient(const struct conf *c, const struct rule_result *res,
    const struct rule_recipient *rr)
{
	const struct rule_track *tr = &res->tracks[rr->track];
	struct route_rules rules;
	struct route r;
	char names[2048], domain[256];

	ctl_domain(rr->addr, domain, sizeof(domain));
	ctl_track_rules(tr, &rules);
	route_recipient(c, domain, &rules, &r);
	ctl_route_print(c, &r, domain, rr->addr);
	if (rr->origin != RULE_ORIGIN_ENVELOPE)
		printf("AddedBy   : transport rule \"%s\" (%s for %s)\n",
		    rule_name(rr->added_by),
		    rr->origin == RULE_ORIGIN_REDIRECT ? "RedirectMessageTo"
		                                       : "BlindCopyTo",
		    tr->addr);
	ctl_rule_names(c->rules, tr->fired, names, sizeof(names));
	printf("Rules     : %s\n", names[0] ? names : "(none)");
	ctl_rule_names(c->rules, tr->audited, names, sizeof(names));
	if (names[0])
		printf("Audit     : %s (matched; Audit mode changes nothing)\n",
		    names);
	if (tr->fate == RULE_FATE_REJECT)
		printf("Fate      : refused with a non-delivery report: %s "
		       "(transport rule \"%s\")\n",
		    rule_reject_reply(tr->fate_rule), rule_name(tr->fate_rule));
	else
		printf("Fate      : delivered, copy %zu of %zu%s\n",
		    tr->copy + 1, res->ncopies,
		    res->copies[tr->copy].rewrite ? " (headers changed)" : "");
}

int
ctl_test_transportrule(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_test t;
	struct conf *c;
	struct rule_result res;
	char names[2048];
	int rc = 0;

	memset(&t, 0, sizeof(t));
	if (ctl_test_args(argc, argv, &t) < 0)
		return ctl_test_usage();
	if ((c = conf_load(ctl->conf_path, stderr)) == NULL)
		return 1;
	if (ctl_test_message(c, &t) < 0 ||
	    rule_eval(c->rules, c, &t.m, &res) < 0) {
		buf_free(&t.data);
		conf_free(c);
		return 1;
	}
	printf("Sender    : %s\n", t.from[0] ? t.from : "<>");
	printf("Size      : %llu bytes\n", (unsigned long long)t.m.size);
	if (res.defer_rule != NULL) {
		printf("Result    : deferred (451 4.7.500): transport rule "
		       "\"%s\" failed and its RuleErrorAction is Defer\n",
		    rule_name(res.defer_rule));
		rc = 1;
	} else if (res.reject_all) {
		printf("Result    : rejected at the end of data: %s "
		       "(transport rule \"%s\"); nothing is stored\n",
		    rule_reject_reply(res.reject_rule),
		    rule_name(res.reject_rule));
		rc = 1;
	} else if (res.delete_all) {
		printf("Result    : accepted (250) and deleted by transport "
		       "rules; nothing is delivered\n");
	} else {
		printf("Result    : accepted; %zu recipient%s in %zu cop%s%s\n",
		    res.nrcpts, res.nrcpts == 1 ? "" : "s", res.ncopies,
		    res.ncopies == 1 ? "y" : "ies",
		    res.ncopies > 1 ? " (split by header actions)" : "");
	}
	for (size_t i = 0; i < rule_set_count(c->rules); i++) {
		const struct rule *r = rule_set_rule(c->rules, i);
		int fired = 0, audited = 0;

		for (size_t k = 0; k < res.ntracks; k++) {
			fired |= rule_bit(res.tracks[k].fired, i);
			audited |= rule_bit(res.tracks[k].audited, i);
		}
		if (fired || audited)
			printf("Rule      : %s (%s): %s\n", rule_name(r),
			    fired ? "Enforce"
			          : rule_mode_name(rule_conf(r)->mode),
			    rule_actions_text(r));
	}
	for (size_t i = 0; res.defer_rule == NULL && i < res.nrcpts; i++) {
		putchar('\n');
		ctl_test_recipient(c, &res, &res.rcpts[i]);
	}
	for (size_t k = 0; res.defer_rule == NULL && k < res.ntracks; k++) {
		const struct rule_track *tr = &res.tracks[k];

		if (tr->fate == RULE_FATE_DELIVER ||
		    (tr->fate == RULE_FATE_REJECT && !res.reject_all))
			continue;
		ctl_rule_names(c->rules, tr->fired, names, sizeof(names));
		printf("\nRecipient : %s\nRules     : %s\nFate      : %s "
		       "(transport rule \"%s\")\n",
		    tr->addr, names,
		    tr->fate == RULE_FATE_DELETE ? "deleted" : "rejected",
		    rule_name(tr->fate_rule));
	}
	rule_result_free(&res);
	buf_free(&t.data);
	conf_free(c);
	return rc;
}
