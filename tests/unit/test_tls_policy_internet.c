/*
 * test_tls_policy_internet.c - DANE and MTA-STS as inputs of the one
 * send-side TLS policy (src/tls/tls_policy.c, SPEC 6), as tables: what a
 * connector setting, a host's DNSSEC and TLSA facts and a domain's
 * MTA-STS policy make of a next hop (level, source, skip, the tracking
 * log's name), then what tls_policy_judge() does at each step of a
 * connection under them.  The connector, raised by a transport rule's
 * RouteMessageOutboundRequireTls, stays the floor: DANE and MTA-STS only
 * raise the level, add checks or rule a host out.  Rows with a rule "R"
 * are the combinations of the floor a rule sets with DANE and MTA-STS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "tls/tls_policy.h"

#include "test_tls.h"

static struct conf *conf;

static int
setup(void **state)
{
	char path[] = "/tmp/sluice-policy-XXXXXX";
	static const char text[] = "[Transport]\n"
	                           "QueueDirectory = /tmp/sluice-policy-test\n"
	                           "[SendConnector Opp]\n"
	                           "AddressSpaces = opp.test\n"
	                           "[SendConnector Verify]\n"
	                           "AddressSpaces = verify.test\n"
	                           "RequireTLS = true\n"
	                           "TlsAuthLevel = CertificateValidation\n"
	                           "[SendConnector Ignore]\n"
	                           "AddressSpaces = ignore.test\n"
	                           "IgnoreSTARTTLS = true\n"
	                           "[SendConnector Mandatory]\n"
	                           "AddressSpaces = mandatory.test\n"
	                           "SmtpDaneMode = Mandatory\n"
	                           "[SendConnector NoInternet]\n"
	                           "AddressSpaces = none.test\n"
	                           "SmtpDaneMode = None\n"
	                           "MtaStsMode = None\n"
	                           "[SendConnector Smart]\n"
	                           "AddressSpaces = smart.test\n"
	                           "DNSRoutingEnabled = false\n"
	                           "SmartHosts = relay.smart.test\n";
	int fd;

	if (test_pki_group_setup(state) < 0)
		return -1;
	if ((fd = mkstemp(path)) < 0 ||
	    write(fd, text, sizeof(text) - 1) != (ssize_t)(sizeof(text) - 1))
		return -1;
	close(fd);
	conf = conf_load(path, stderr);
	unlink(path);
	return conf == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	conf_free(conf);
	return test_pki_group_teardown(state);
}

/* The facts a row gives: TLSA answer and MTA-STS mode ("-": none). */
enum tlsa_fact { T_NONE_ASKED, T_USABLE, T_UNUSABLE, T_NO_RECORDS, T_BOGUS };
enum sts_fact { S_NONE, S_ENFORCE, S_TESTING, S_MODE_NONE };

struct decide_row {
	const char *connector;
	int addr_secure;
	enum tlsa_fact tlsa;
	enum sts_fact sts;
	int host_in_policy;
	/* expected */
	enum tls_policy_level level;
	enum tls_policy_source source;
	int skip;
	const char *name;  /* tls_policy_name() */
	const char *words; /* in skip_why (skip) or tls_policy_describe() */
	const char *rule;  /* RouteMessageOutboundRequireTls, or NULL */
};

#define L_MAY TLS_POLICY_MAY
#define L_ENC TLS_POLICY_ENCRYPT
#define L_VER TLS_POLICY_VERIFY
#define L_NONE TLS_POLICY_NONE
#define SRC_C TLS_SOURCE_CONNECTOR
#define SRC_D TLS_SOURCE_DANE
#define SRC_S TLS_SOURCE_MTA_STS
#define SRC_R TLS_SOURCE_TRANSPORT_RULE

static const struct decide_row decide_rows[] = {
    /* nothing known: the connector alone */
    {"Opp", 0, T_NONE_ASKED, S_NONE, 0, L_MAY, SRC_C, 0, "opportunistic",
        "opportunistic", NULL},
    /* DANE raises opportunistic to TLS required */
    {"Opp", 1, T_USABLE, S_NONE, 0, L_ENC, SRC_D, 0, "dane",
        "a TLSA record must match", NULL},
    {"Opp", 1, T_UNUSABLE, S_NONE, 0, L_ENC, SRC_D, 0, "dane", "unusable",
        NULL},
    {"Opp", 1, T_NO_RECORDS, S_NONE, 0, L_MAY, SRC_C, 0, "opportunistic",
        "opportunistic", NULL},
    {"Opp", 1, T_BOGUS, S_NONE, 0, L_MAY, SRC_C, 1, "opportunistic",
        "failed DNSSEC validation", NULL},
    /* insecure address: no DANE, whatever the records say */
    {"Opp", 0, T_USABLE, S_NONE, 0, L_MAY, SRC_C, 0, "opportunistic",
        "opportunistic", NULL},
    /* the connector's floor stays: CertificateValidation plus DANE */
    {"Verify", 1, T_USABLE, S_NONE, 0, L_VER, SRC_C, 0, "dane",
        "CertificateValidation", NULL},
    /* IgnoreSTARTTLS turns both off */
    {"Ignore", 1, T_USABLE, S_ENFORCE, 1, L_NONE, SRC_C, 0, "IgnoreSTARTTLS",
        "IgnoreSTARTTLS", NULL},
    {"Ignore", 1, T_BOGUS, S_ENFORCE, 0, L_NONE, SRC_C, 0, "IgnoreSTARTTLS",
        "IgnoreSTARTTLS", NULL},
    /* Mandatory: no usable records means the host is not used */
    {"Mandatory", 1, T_NO_RECORDS, S_NONE, 0, L_MAY, SRC_C, 1, "opportunistic",
        "Mandatory", NULL},
    {"Mandatory", 0, T_NONE_ASKED, S_NONE, 0, L_MAY, SRC_C, 1, "opportunistic",
        "Mandatory", NULL},
    {"Mandatory", 1, T_USABLE, S_NONE, 0, L_ENC, SRC_D, 0, "dane",
        "a TLSA record must match", NULL},
    /* MTA-STS enforce: in the policy, TLS required; outside, skipped */
    {"Opp", 0, T_NONE_ASKED, S_ENFORCE, 1, L_ENC, SRC_S, 0, "sts-enforce",
        "MTA-STS enforce", NULL},
    {"Opp", 0, T_NONE_ASKED, S_ENFORCE, 0, L_MAY, SRC_C, 1, "sts-enforce",
        "does not match the policy of opp.test (id 20260101)", NULL},
    /* testing: never raises, never skips */
    {"Opp", 0, T_NONE_ASKED, S_TESTING, 0, L_MAY, SRC_C, 0, "sts-testing",
        "not in the policy", NULL},
    {"Opp", 0, T_NONE_ASKED, S_MODE_NONE, 0, L_MAY, SRC_C, 0, "opportunistic",
        "opportunistic", NULL},
    /* DANE wins over MTA-STS, also over a policy that would skip */
    {"Opp", 1, T_USABLE, S_ENFORCE, 0, L_ENC, SRC_D, 0, "dane",
        "a TLSA record must match", NULL},
    /* and a DANE-less host of a DANE domain falls to MTA-STS */
    {"Opp", 1, T_NO_RECORDS, S_ENFORCE, 1, L_ENC, SRC_S, 0, "sts-enforce",
        "MTA-STS enforce", NULL},
    /* the connector says None to both */
    {"NoInternet", 1, T_BOGUS, S_ENFORCE, 0, L_MAY, SRC_C, 0, "opportunistic",
        "opportunistic", NULL},
    /* smart hosts: DANE yes, MTA-STS no (not the domain's MX) */
    {"Smart", 1, T_USABLE, S_NONE, 0, L_ENC, SRC_D, 0, "dane",
        "a TLSA record must match", NULL},
    {"Smart", 0, T_NONE_ASKED, S_ENFORCE, 0, L_MAY, SRC_C, 0, "opportunistic",
        "opportunistic", NULL},
    /* a transport rule's floor: EncryptionOnly, the rule named */
    {"Opp", 0, T_NONE_ASKED, S_NONE, 0, L_ENC, SRC_R, 0, "EncryptionOnly",
        "RequireTLS by transport rule \"R\"", "R"},
    /* rule floor + DANE: DANE adds its check; the rule stays the source */
    {"Opp", 1, T_USABLE, S_NONE, 0, L_ENC, SRC_R, 0, "dane",
        "a TLSA record must match", "R"},
    {"Opp", 1, T_BOGUS, S_NONE, 0, L_ENC, SRC_R, 1, "EncryptionOnly",
        "failed DNSSEC validation", "R"},
    {"Mandatory", 1, T_NO_RECORDS, S_NONE, 0, L_ENC, SRC_R, 1, "EncryptionOnly",
        "Mandatory", "R"},
    {"Verify", 1, T_USABLE, S_NONE, 0, L_VER, SRC_C, 0, "dane",
        "(transport rule \"R\" requires TLS too)", "R"},
    /* rule floor + MTA-STS: enforce adds its check or skips the host,
     * testing only reports */
    {"Opp", 0, T_NONE_ASKED, S_ENFORCE, 1, L_ENC, SRC_R, 0, "sts-enforce",
        "MTA-STS enforce", "R"},
    {"Opp", 0, T_NONE_ASKED, S_ENFORCE, 0, L_ENC, SRC_R, 1, "sts-enforce",
        "does not match the policy of opp.test", "R"},
    {"Opp", 0, T_NONE_ASKED, S_TESTING, 1, L_ENC, SRC_R, 0, "sts-testing",
        "MTA-STS testing", "R"},
    /* rule floor + DANE + MTA-STS: DANE still wins */
    {"Opp", 1, T_USABLE, S_ENFORCE, 0, L_ENC, SRC_R, 0, "dane",
        "a TLSA record must match", "R"},
    /* IgnoreSTARTTLS gives way to the rule, and DANE and MTA-STS stay
     * off: EncryptionOnly */
    {"Ignore", 1, T_USABLE, S_ENFORCE, 0, L_ENC, SRC_R, 0, "EncryptionOnly",
        "RequireTLS by transport rule \"R\"", "R"},
};

static struct tlsa_result *
make_tlsa(enum tlsa_fact t)
{
	static unsigned char digest[32];
	struct tlsa_result *r;

	if (t == T_NONE_ASKED)
		return NULL;
	r = calloc(1, sizeof(*r));
	assert_non_null(r);
	snprintf(r->base, sizeof(r->base), "mx.next-hop.test");
	snprintf(r->qname, sizeof(r->qname), "_25._tcp.mx.next-hop.test");
	switch (t) {
	case T_USABLE:
	case T_UNUSABLE:
		r->status = TLSA_SECURE;
		r->n = 1;
		r->rr[0] =
		    (struct tlsa_rr){t == T_USABLE ? 3 : 1, 1, 1, 32, NULL};
		r->nusable = t == T_USABLE;
		break;
	case T_NO_RECORDS:
		r->status = TLSA_NONE;
		break;
	case T_BOGUS:
		r->status = TLSA_BOGUS;
		snprintf(r->why, sizeof(r->why), "bogus");
		break;
	case T_NONE_ASKED:
		break;
	}
	(void)digest;
	return r;
}

static void
make_sts(enum sts_fact s, int in_policy, struct sts_state *st)
{
	memset(st, 0, sizeof(*st));
	if (s == S_NONE)
		return;
	st->has_policy = 1;
	snprintf(st->id, sizeof(st->id), "20260101");
	st->policy.mode = s == S_ENFORCE   ? STS_POLICY_ENFORCE
	                  : s == S_TESTING ? STS_POLICY_TESTING
	                                   : STS_POLICY_NONE;
	st->policy.nmx = 1;
	snprintf(st->policy.mx[0], sizeof(st->policy.mx[0]), "%s",
	    in_policy ? "*.next-hop.test" : "mx.elsewhere.test");
}

static void
decide_row(const struct decide_row *r, struct tls_policy *p,
    struct tlsa_result **tlsa, struct sts_state *st)
{
	struct tls_policy_input in = {
	    .conf = conf,
	    .connector = conf_send_connector(conf, r->connector),
	    .domain = "opp.test",
	    .host = "mx.next-hop.test",
	    .addr_secure = r->addr_secure,
	    .rule = r->rule,
	};

	assert_non_null(in.connector);
	*tlsa = make_tlsa(r->tlsa);
	make_sts(r->sts, r->host_in_policy, st);
	in.tlsa = *tlsa;
	in.sts = st;
	tls_policy_decide(&in, p);
}

static void
test_decide(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(decide_rows) / sizeof(decide_rows[0]);
	     i++) {
		const struct decide_row *r = &decide_rows[i];
		struct tls_policy p;
		struct tlsa_result *tlsa;
		struct sts_state st;
		char words[1500];

		decide_row(r, &p, &tlsa, &st);
		tls_policy_describe(&p, words, sizeof(words));
		if (p.level != r->level || p.source != r->source ||
		    p.skip != r->skip ||
		    strcmp(tls_policy_name(&p), r->name) != 0 ||
		    strstr(r->skip ? p.skip_why : words, r->words) == NULL)
			fail_msg("row %zu (%s): level %d source %d skip %d "
			         "name %s: %s | %s",
			    i, r->connector, p.level, p.source, p.skip,
			    tls_policy_name(&p), p.skip_why, words);
		free(tlsa);
	}
}

/* ---- judging a connection under DANE and MTA-STS ---- */

enum step {
	NO_STARTTLS, /* EHLO without STARTTLS */
	HS_FAILED,   /* the handshake failed */
	GOOD,        /* trusted, names the host (server.pem as mx.sluice) */
	UNTRUSTED,   /* self-signed */
};

struct judge_row {
	const char *connector;
	int addr_secure;
	enum tlsa_fact tlsa;
	enum sts_fact sts;
	enum step step;
	int dane_ok; /* what OpenSSL's DANE verifier said */
	enum tls_action want;
	enum tls_check check;
	const char *words; /* in why; "^..." at its start */
	const char *rule;  /* RouteMessageOutboundRequireTls, or NULL */
};

#define A_DF TLS_ACTION_DEFER
#define A_SD TLS_ACTION_SEND
#define A_PT TLS_ACTION_PLAINTEXT
#define A_RP TLS_ACTION_RETRY_PLAINTEXT

static const struct judge_row judge_rows[] = {
    /* DANE: never plaintext, never a plaintext retry */
    {"Opp", 1, T_USABLE, S_NONE, NO_STARTTLS, 0, A_DF, TLS_CHECK_NO_TLS,
        "DANE: TLS is required and the next hop does not offer STARTTLS", NULL},
    {"Opp", 1, T_USABLE, S_NONE, HS_FAILED, 0, A_DF, TLS_CHECK_HANDSHAKE,
        "DANE: TLS handshake failed", NULL},
    /* the record decides, not the CA */
    {"Opp", 1, T_USABLE, S_NONE, UNTRUSTED, 1, A_SD, TLS_CHECK_OK, "", NULL},
    {"Opp", 1, T_USABLE, S_NONE, GOOD, 0, A_DF, TLS_CHECK_DANE,
        "DANE: no TLSA record matched", NULL},
    /* unusable records: TLS, no authentication */
    {"Opp", 1, T_UNUSABLE, S_NONE, UNTRUSTED, 0, A_SD, TLS_CHECK_OK, "", NULL},
    {"Opp", 1, T_UNUSABLE, S_NONE, NO_STARTTLS, 0, A_DF, TLS_CHECK_NO_TLS,
        "DANE: TLS is required", NULL},
    /* the connector's floor under DANE: its PKIX check still counts */
    {"Verify", 1, T_USABLE, S_NONE, UNTRUSTED, 1, A_DF, TLS_CHECK_UNTRUSTED,
        "not trusted", NULL},
    {"Verify", 1, T_USABLE, S_NONE, GOOD, 1, A_SD, TLS_CHECK_OK, "", NULL},
    /* MTA-STS enforce: a trusted certificate naming the MX host */
    {"Opp", 0, T_NONE_ASKED, S_ENFORCE, GOOD, 0, A_SD, TLS_CHECK_OK, "", NULL},
    {"Opp", 0, T_NONE_ASKED, S_ENFORCE, UNTRUSTED, 0, A_DF, TLS_CHECK_UNTRUSTED,
        "MTA-STS enforce: certificate chain not "
        "trusted",
        NULL},
    {"Opp", 0, T_NONE_ASKED, S_ENFORCE, NO_STARTTLS, 0, A_DF, TLS_CHECK_NO_TLS,
        "MTA-STS enforce: TLS is required", NULL},
    /* MTA-STS testing: reported, delivered; plaintext as usual */
    {"Opp", 0, T_NONE_ASKED, S_TESTING, UNTRUSTED, 0, A_SD, TLS_CHECK_UNTRUSTED,
        "MTA-STS testing: certificate chain", NULL},
    {"Opp", 0, T_NONE_ASKED, S_TESTING, NO_STARTTLS, 0, A_PT, TLS_CHECK_NO_TLS,
        "", NULL},
    {"Opp", 0, T_NONE_ASKED, S_TESTING, HS_FAILED, 0, A_RP, TLS_CHECK_HANDSHAKE,
        "retrying in plaintext", NULL},
    /* rule floor + DANE: the rule required TLS first, so its reasons
     * carry no "DANE:"; a TLSA record must still match */
    {"Opp", 1, T_USABLE, S_NONE, NO_STARTTLS, 0, A_DF, TLS_CHECK_NO_TLS,
        "^TLS is required and the next hop does not offer STARTTLS", "R"},
    {"Opp", 1, T_USABLE, S_NONE, HS_FAILED, 0, A_DF, TLS_CHECK_HANDSHAKE,
        "^TLS handshake failed: wrong version number", "R"},
    {"Opp", 1, T_USABLE, S_NONE, UNTRUSTED, 1, A_SD, TLS_CHECK_OK, "", "R"},
    {"Opp", 1, T_USABLE, S_NONE, GOOD, 0, A_DF, TLS_CHECK_DANE,
        "^DANE: no TLSA record matched", "R"},
    /* rule floor + MTA-STS enforce: its check on top */
    {"Opp", 0, T_NONE_ASKED, S_ENFORCE, GOOD, 0, A_SD, TLS_CHECK_OK, "", "R"},
    {"Opp", 0, T_NONE_ASKED, S_ENFORCE, UNTRUSTED, 0, A_DF, TLS_CHECK_UNTRUSTED,
        "^MTA-STS enforce: certificate chain not trusted", "R"},
    /* rule floor + MTA-STS testing: reported, but the floor never lets
     * it go in plaintext */
    {"Opp", 0, T_NONE_ASKED, S_TESTING, UNTRUSTED, 0, A_SD, TLS_CHECK_UNTRUSTED,
        "^MTA-STS testing: certificate chain", "R"},
    {"Opp", 0, T_NONE_ASKED, S_TESTING, NO_STARTTLS, 0, A_DF, TLS_CHECK_NO_TLS,
        "^TLS is required and the next hop does not offer STARTTLS", "R"},
    {"Opp", 0, T_NONE_ASKED, S_TESTING, HS_FAILED, 0, A_DF, TLS_CHECK_HANDSHAKE,
        "^TLS handshake failed", "R"},
    /* IgnoreSTARTTLS with a rule: EncryptionOnly, DANE off */
    {"Ignore", 1, T_USABLE, S_NONE, UNTRUSTED, 0, A_SD, TLS_CHECK_OK, "", "R"},
    {"Ignore", 1, T_USABLE, S_NONE, NO_STARTTLS, 0, A_DF, TLS_CHECK_NO_TLS,
        "^TLS is required", "R"},
};

static void
judge_facts(enum step step, struct tls_facts *f, struct tls_outcome *o)
{
	memset(f, 0, sizeof(*f));
	memset(o, 0, sizeof(*o));
	o->verify_depth = -1;
	switch (step) {
	case NO_STARTTLS:
		f->stage = TLS_STAGE_EHLO;
		return;
	case HS_FAILED:
		f->stage = TLS_STAGE_HANDSHAKE;
		f->error = "wrong version number";
		o->tls = 1;
		f->outcome = o;
		return;
	case GOOD:
	case UNTRUSTED:
		f->stage = TLS_STAGE_HANDSHAKE;
		o->tls = o->handshake_ok = 1;
		o->cert =
		    test_load_cert(step == GOOD ? "server.pem" : "self.pem");
		o->verify = test_verify(
		    o->cert, "trusted.pem", NULL, NULL, &o->verify_depth);
		f->outcome = o;
		return;
	}
}

static void
test_judge(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(judge_rows) / sizeof(judge_rows[0]);
	     i++) {
		const struct judge_row *r = &judge_rows[i];
		struct decide_row d = {r->connector, r->addr_secure, r->tlsa,
		    r->sts, 1, 0, 0, 0, NULL, NULL, r->rule};
		struct tls_policy p;
		struct tlsa_result *tlsa;
		struct sts_state st;
		struct tls_facts f;
		struct tls_outcome o;
		enum tls_check check;
		enum tls_action got;
		char why[600];

		decide_row(&d, &p, &tlsa, &st);
		/* GOOD names mx.sluice.test: that is the host here */
		p.host = "mx.sluice.test";
		judge_facts(r->step, &f, &o);
		f.dane_ok = r->dane_ok;
		f.dane_why = "DANE: no TLSA record matched the certificate of "
		             "mx.sluice.test";
		got = tls_policy_judge(&p, &f, &check, why, sizeof(why));
		if (got != r->want || check != r->check ||
		    (r->words[0] == '^'
		            ? strncmp(why, r->words + 1, strlen(r->words + 1))
		            : strstr(why, r->words) == NULL))
			fail_msg("row %zu: %s/%s \"%s\", want %s/%s \"%s\"", i,
			    tls_action_name(got), tls_check_name(check), why,
			    tls_action_name(r->want), tls_check_name(r->check),
			    r->words);
		X509_free(o.cert);
		free(tlsa);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decide),
	    cmocka_unit_test(test_judge),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
