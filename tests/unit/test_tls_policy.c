/*
 * test_tls_policy.c - the send-side TLS policy (src/tls/tls_policy.c)
 * as SPEC section 3's TLS table: one row per connector setting, one
 * column per thing a next hop can do (offer no STARTTLS, fail the
 * handshake, present an untrusted certificate, present a trusted one
 * with the wrong name), plus the good case.  The certificates are the
 * test PKI's, verified against trusted.pem as a handshake would.
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
#include "tls/tls_verify.h"

#include "test_tls.h"

static struct conf *conf;

static int
setup(void **state)
{
	char path[] = "/tmp/sluice-policy-XXXXXX";
	char text[2048];
	int fd, n;

	if (test_pki_group_setup(state) < 0)
		return -1;
	n = snprintf(text, sizeof(text),
	    "[Transport]\n"
	    "QueueDirectory = /tmp/sluice-policy-test\n"
	    "TLSSendDomainSecureList = mx.sluice.test, partner.test\n"
	    "[Certificate first]\n"
	    "CertificateFile = %s/server.pem\n"
	    "KeyFile = %s/server.key\n"
	    "[Certificate partner]\n"
	    "CertificateFile = %s/partner.pem\n"
	    "KeyFile = %s/partner.key\n"
	    "[SendConnector Default]\n"
	    "AddressSpaces = default.test\n"
	    "[SendConnector Ignore]\n"
	    "AddressSpaces = ignore.test\n"
	    "IgnoreSTARTTLS = true\n"
	    "[SendConnector Encrypt]\n"
	    "AddressSpaces = encrypt.test\n"
	    "RequireTLS = true\n"
	    "TlsAuthLevel = EncryptionOnly\n"
	    "[SendConnector Bare]\n"
	    "AddressSpaces = bare.test\n"
	    "RequireTLS = true\n"
	    "[SendConnector Verify]\n"
	    "AddressSpaces = verify.test\n"
	    "RequireTLS = true\n"
	    "TlsAuthLevel = CertificateValidation\n"
	    "TlsCertificateName = partner\n"
	    "[SendConnector Domain]\n"
	    "AddressSpaces = domain.test\n"
	    "RequireTLS = true\n"
	    "TlsAuthLevel = DomainValidation\n"
	    "TlsDomain = *.sluice.test\n"
	    "[SendConnector DomainNoTlsDomain]\n"
	    "AddressSpaces = nodomain.test\n"
	    "RequireTLS = true\n"
	    "TlsAuthLevel = DomainValidation\n"
	    "[SendConnector Secure]\n"
	    "AddressSpaces = secure.test\n"
	    "DomainSecureEnabled = true\n",
	    test_pki, test_pki, test_pki, test_pki);
	if (n < 0 || (size_t)n >= sizeof(text))
		return -1;
	if ((fd = mkstemp(path)) < 0 || write(fd, text, (size_t)n) < 0)
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

static void
decide(const char *connector, const char *domain, struct tls_policy *p)
{
	struct tls_policy_input in = {
	    .conf = conf,
	    .connector = conf_send_connector(conf, connector),
	    .domain = domain,
	    .host = "mx.next-hop.test",
	};

	assert_non_null(in.connector);
	tls_policy_decide(&in, p);
}

/* The columns of SPEC's table, and two more. */
enum column {
	COL_NO_STARTTLS, /* the next hop offers no STARTTLS */
	COL_OFFERED,     /* it does: is STARTTLS tried? */
	COL_HANDSHAKE,   /* the handshake fails */
	COL_UNTRUSTED,   /* certificate not trusted */
	COL_MISMATCH,    /* trusted, but the name does not match */
	COL_GOOD,        /* trusted and naming the right host */
	COL_COUNT
};

#define NA (-1) /* never reached: TLS is never tried */

struct policy_row {
	const char *connector;
	const char *domain;
	enum tls_policy_level level;
	int want[COL_COUNT]; /* enum tls_action, or NA */
	enum tls_check check[COL_COUNT];
};

#define ST TLS_ACTION_STARTTLS
#define PT TLS_ACTION_PLAINTEXT
#define RP TLS_ACTION_RETRY_PLAINTEXT
#define SD TLS_ACTION_SEND
#define DF TLS_ACTION_DEFER
#define OK TLS_CHECK_OK
#define NO TLS_CHECK_NO_TLS
#define HS TLS_CHECK_HANDSHAKE
#define UT TLS_CHECK_UNTRUSTED
#define NM TLS_CHECK_NAME_MISMATCH

static const struct policy_row rows[] = {
    /* default (opportunistic): plaintext, retry in plaintext, send, send */
    {"Default", "default.test", TLS_POLICY_MAY, {PT, ST, RP, SD, SD, SD},
        {NO, OK, HS, OK, OK, OK}},
    /* IgnoreSTARTTLS: plaintext, never tries TLS */
    {"Ignore", "ignore.test", TLS_POLICY_NONE, {PT, PT, NA, NA, NA, NA},
        {NO, NO, OK, OK, OK, OK}},
    /* RequireTLS + EncryptionOnly: defer, defer, send, send */
    {"Encrypt", "encrypt.test", TLS_POLICY_ENCRYPT, {DF, ST, DF, SD, SD, SD},
        {NO, OK, HS, OK, OK, OK}},
    /* RequireTLS alone is EncryptionOnly */
    {"Bare", "bare.test", TLS_POLICY_ENCRYPT, {DF, ST, DF, SD, SD, SD},
        {NO, OK, HS, OK, OK, OK}},
    /* RequireTLS + CertificateValidation: defer, defer, defer, send */
    {"Verify", "verify.test", TLS_POLICY_VERIFY, {DF, ST, DF, DF, SD, SD},
        {NO, OK, HS, UT, OK, OK}},
    /* RequireTLS + DomainValidation: defer everywhere (TlsDomain) */
    {"Domain", "domain.test", TLS_POLICY_DOMAIN, {DF, ST, DF, DF, DF, SD},
        {NO, OK, HS, UT, NM, OK}},
    /* ... or the recipient domain when TlsDomain is empty */
    {"DomainNoTlsDomain", "mx.sluice.test", TLS_POLICY_DOMAIN,
        {DF, ST, DF, DF, DF, SD}, {NO, OK, HS, UT, NM, OK}},
    /* Domain Security: the name must be the recipient domain */
    {"Secure", "mx.sluice.test", TLS_POLICY_DOMAIN_SECURE,
        {DF, ST, DF, DF, DF, SD}, {NO, OK, HS, UT, NM, OK}},
    /* a partner domain the good certificate does not name fails
       (TlsDomain, which could widen it, is refused without
       DomainValidation) */
    {"Secure", "partner.test", TLS_POLICY_DOMAIN_SECURE,
        {DF, ST, DF, DF, DF, DF}, {NO, OK, HS, UT, NM, NM}},
    /* a domain outside TLSSendDomainSecureList: the connector alone */
    {"Secure", "secure.test", TLS_POLICY_MAY, {PT, ST, RP, SD, SD, SD},
        {NO, OK, HS, OK, OK, OK}},
};

/* The facts of one column; *o is filled for the handshake columns. */
static void
column_facts(enum column col, struct tls_facts *f, struct tls_outcome *o)
{
	static const char *const certs[] = {
	    [COL_UNTRUSTED] = "self.pem",
	    [COL_MISMATCH] = "wrong.pem",
	    [COL_GOOD] = "server.pem",
	};

	memset(f, 0, sizeof(*f));
	memset(o, 0, sizeof(*o));
	o->verify_depth = -1;
	switch (col) {
	case COL_NO_STARTTLS:
		f->stage = TLS_STAGE_EHLO;
		return;
	case COL_OFFERED:
		f->stage = TLS_STAGE_EHLO;
		f->offered = 1;
		return;
	case COL_HANDSHAKE:
		f->stage = TLS_STAGE_HANDSHAKE;
		f->error = "wrong version number";
		o->tls = 1;
		f->outcome = o;
		return;
	default:
		f->stage = TLS_STAGE_HANDSHAKE;
		o->tls = o->handshake_ok = 1;
		o->cert = test_load_cert(certs[col]);
		o->verify = test_verify(
		    o->cert, "trusted.pem", NULL, NULL, &o->verify_depth);
		f->outcome = o;
		return;
	}
}

static void
test_spec_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct policy_row *r = &rows[i];
		struct tls_policy p;

		decide(r->connector, r->domain, &p);
		if (p.level != r->level)
			fail_msg("row %zu (%s, %s): level %d, want %d", i,
			    r->connector, r->domain, p.level, r->level);
		for (int col = 0; col < COL_COUNT; col++) {
			struct tls_facts f;
			struct tls_outcome o;
			enum tls_check check;
			enum tls_action got;
			char why[512];

			if (r->want[col] == NA)
				continue;
			column_facts((enum column)col, &f, &o);
			got =
			    tls_policy_judge(&p, &f, &check, why, sizeof(why));
			if ((int)got != r->want[col] || check != r->check[col])
				fail_msg(
				    "row %zu (%s, %s) column %d: %s/%s (%s), "
				    "want %s/%s",
				    i, r->connector, r->domain, col,
				    tls_action_name(got), tls_check_name(check),
				    why, tls_action_name(r->want[col]),
				    tls_check_name(r->check[col]));
			/* A deferral always says why. */
			if (got == TLS_ACTION_DEFER && why[0] == '\0')
				fail_msg(
				    "row %zu column %d: no reason", i, col);
			X509_free(o.cert);
		}
	}
}

/*
 * The levels are ordered: for every column, a stricter level never
 * allows what a weaker one defers, and from ENCRYPT up nothing ever goes
 * out in plaintext.
 */
static void
test_levels_ordered(void **state)
{
	static const char *const order[] = {
	    "Default", "Encrypt", "Verify", "Domain"};

	(void)state;
	for (int col = 0; col < COL_COUNT; col++) {
		int deferred = 0;

		for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
			struct tls_policy p;
			struct tls_facts f;
			struct tls_outcome o;
			enum tls_action a;

			decide(order[i], "mx.sluice.test", &p);
			column_facts((enum column)col, &f, &o);
			a = tls_policy_judge(&p, &f, NULL, NULL, 0);
			if (deferred)
				assert_int_equal(a, TLS_ACTION_DEFER);
			deferred = a == TLS_ACTION_DEFER;
			if (tls_policy_required(&p))
				assert_true(a != TLS_ACTION_PLAINTEXT &&
				            a != TLS_ACTION_RETRY_PLAINTEXT);
			X509_free(o.cert);
		}
	}
}

/* Reasons that reach the queue's last error and the DSN. */
static void
test_reasons(void **state)
{
	struct tls_policy p;
	struct tls_facts f = {.stage = TLS_STAGE_EHLO};
	struct tls_outcome o = {.tls = 1, .verify_depth = -1};
	char why[256];

	(void)state;
	decide("Encrypt", "encrypt.test", &p);
	tls_policy_judge(&p, &f, NULL, why, sizeof(why));
	assert_string_equal(
	    why, "TLS is required and the next hop does not offer STARTTLS");
	f.offered = f.unavailable = 1;
	tls_policy_judge(&p, &f, NULL, why, sizeof(why));
	assert_non_null(strstr(why, "cannot be started"));
	f.stage = TLS_STAGE_REFUSED;
	f.error = "454 4.7.0 TLS not available";
	assert_int_equal(
	    tls_policy_judge(&p, &f, NULL, why, sizeof(why)), TLS_ACTION_DEFER);
	assert_string_equal(
	    why, "STARTTLS refused: 454 4.7.0 TLS not available");
	f.stage = TLS_STAGE_HANDSHAKE;
	f.outcome = &o;
	f.error = "certificate verify failed";
	tls_policy_judge(&p, &f, NULL, why, sizeof(why));
	assert_string_equal(
	    why, "TLS handshake failed: certificate verify failed");
	f.error = NULL;
	tls_policy_judge(&p, &f, NULL, why, sizeof(why));
	assert_string_equal(why, "TLS handshake failed");
	/* Opportunistic says what it does instead. */
	decide("Default", "default.test", &p);
	f.error = "peer closed";
	assert_int_equal(tls_policy_judge(&p, &f, NULL, why, sizeof(why)),
	    TLS_ACTION_RETRY_PLAINTEXT);
	assert_string_equal(
	    why, "TLS handshake failed: peer closed; retrying in plaintext");
	f.stage = TLS_STAGE_REFUSED;
	assert_int_equal(
	    tls_policy_judge(&p, &f, NULL, NULL, 0), TLS_ACTION_PLAINTEXT);
	/* The plaintext retry never tries TLS again. */
	f.stage = TLS_STAGE_EHLO;
	f.offered = 1;
	f.unavailable = 0;
	f.plain_retry = 1;
	assert_int_equal(
	    tls_policy_judge(&p, &f, NULL, NULL, 0), TLS_ACTION_PLAINTEXT);
}

/* Our certificate, the partner CAs, and the name in the tracking log. */
static void
test_identity_and_names(void **state)
{
	static const struct {
		const char *connector, *domain, *cert, *name;
		int partner;
	} t[] = {
	    {"Default", "default.test", NULL, "opportunistic", 0},
	    {"Ignore", "ignore.test", NULL, "IgnoreSTARTTLS", 0},
	    {"Encrypt", "encrypt.test", NULL, "EncryptionOnly", 0},
	    {"Verify", "verify.test", "partner", "CertificateValidation", 0},
	    {"Domain", "domain.test", NULL, "DomainValidation", 0},
	    /* Domain Security without TlsCertificateName: the first one */
	    {"Secure", "mx.sluice.test", "first", "DomainValidation", 1},
	    {"Secure", "secure.test", NULL, "opportunistic", 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct tls_policy p;

		decide(t[i].connector, t[i].domain, &p);
		if (t[i].cert == NULL)
			assert_null(p.cert_name);
		else
			assert_string_equal(p.cert_name, t[i].cert);
		assert_string_equal(tls_policy_name(&p), t[i].name);
		assert_int_equal(p.partner_trust, t[i].partner);
		assert_string_equal(p.connector, t[i].connector);
	}
}

/* The words `sluicectl route` and `test-tls` print. */
static void
test_describe(void **state)
{
	static const struct {
		const char *connector, *domain, *words[3];
	} t[] = {
	    {"Default", "default.test", {"opportunistic", "plaintext", NULL}},
	    {"Ignore", "ignore.test", {"IgnoreSTARTTLS", "never", NULL}},
	    {"Encrypt", "encrypt.test", {"EncryptionOnly", "defer", NULL}},
	    {"Verify", "verify.test",
	        {"CertificateValidation", "\"partner\"", "defer"}},
	    {"Domain", "domain.test",
	        {"DomainValidation", "*.sluice.test", "defer"}},
	    {"DomainNoTlsDomain", "nodomain.test",
	        {"DomainValidation", "recipient domain nodomain.test", NULL}},
	    {"Secure", "mx.sluice.test",
	        {"Domain Security", "\"first\"", "mx.sluice.test"}},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct tls_policy p;
		char out[512], small[16];

		decide(t[i].connector, t[i].domain, &p);
		tls_policy_describe(&p, out, sizeof(out));
		for (size_t w = 0; w < 3 && t[i].words[w] != NULL; w++)
			if (strstr(out, t[i].words[w]) == NULL)
				fail_msg("%s: \"%s\" lacks \"%s\"",
				    t[i].connector, out, t[i].words[w]);
		/* bounded and terminated */
		tls_policy_describe(&p, small, sizeof(small));
		assert_int_equal(strlen(small), sizeof(small) - 1);
	}
}

/*
 * A transport rule's RouteMessageOutboundRequireTls (SPEC 5) as an input:
 * at least ENCRYPT, IgnoreSTARTTLS giving way, a stricter connector and
 * Domain Security keeping their own level; the source says which input
 * set the level, and the words name the rule either way.  Under the
 * floor the columns are ENCRYPT's: never plaintext.
 */
static void
test_rule_floor(void **state)
{
	static const struct {
		const char *connector, *domain;
		enum tls_policy_level level;
		enum tls_policy_source source;
		const char *words;
	} t[] = {
	    {"Default", "default.test", TLS_POLICY_ENCRYPT,
	        TLS_SOURCE_TRANSPORT_RULE,
	        "RequireTLS by transport rule \"R\" "
	        "(RouteMessageOutboundRequireTls), EncryptionOnly"},
	    {"Ignore", "ignore.test", TLS_POLICY_ENCRYPT,
	        TLS_SOURCE_TRANSPORT_RULE, "by transport rule \"R\""},
	    {"Encrypt", "encrypt.test", TLS_POLICY_ENCRYPT,
	        TLS_SOURCE_CONNECTOR,
	        "EncryptionOnly: TLS required, certificate not checked; "
	        "otherwise defer (transport rule \"R\" requires TLS too)"},
	    {"Domain", "domain.test", TLS_POLICY_DOMAIN, TLS_SOURCE_CONNECTOR,
	        "*.sluice.test; otherwise defer (transport rule \"R\" "
	        "requires TLS too)"},
	    {"Secure", "mx.sluice.test", TLS_POLICY_DOMAIN_SECURE,
	        TLS_SOURCE_DOMAIN_SECURE, "(transport rule \"R\" requires"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct tls_policy_input in = {
		    .conf = conf,
		    .connector = conf_send_connector(conf, t[i].connector),
		    .domain = t[i].domain,
		    .rule = "R",
		};
		struct tls_policy p;
		char out[512];

		tls_policy_decide(&in, &p);
		if (p.level != t[i].level || p.source != t[i].source)
			fail_msg("%s: level %d source %d, want %d %d",
			    t[i].connector, p.level, p.source, t[i].level,
			    t[i].source);
		assert_true(tls_policy_required(&p));
		tls_policy_describe(&p, out, sizeof(out));
		if (strstr(out, t[i].words) == NULL)
			fail_msg("%s: \"%s\" lacks \"%s\"", t[i].connector, out,
			    t[i].words);
		for (int col = 0; col < COL_COUNT; col++) {
			struct tls_facts f;
			struct tls_outcome o;
			enum tls_action got;
			char why[512];

			column_facts((enum column)col, &f, &o);
			got = tls_policy_judge(&p, &f, NULL, why, sizeof(why));
			if (got == TLS_ACTION_PLAINTEXT ||
			    got == TLS_ACTION_RETRY_PLAINTEXT)
				fail_msg("%s column %d: %s", t[i].connector,
				    col, tls_action_name(got));
			X509_free(o.cert);
		}
	}
	/* an empty rule name is no rule */
	{
		struct tls_policy_input in = {.conf = conf,
		    .connector = conf_send_connector(conf, "Default"),
		    .domain = "default.test",
		    .rule = ""};
		struct tls_policy p;

		tls_policy_decide(&in, &p);
		assert_int_equal(p.level, TLS_POLICY_MAY);
		assert_null(p.rule);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spec_table),
	    cmocka_unit_test(test_levels_ordered),
	    cmocka_unit_test(test_reasons),
	    cmocka_unit_test(test_identity_and_names),
	    cmocka_unit_test(test_describe),
	    cmocka_unit_test(test_rule_floor),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
