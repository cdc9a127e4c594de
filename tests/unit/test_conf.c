/*
 * test_conf.c - the configuration (src/conf/): value syntaxes, every
 * validation rule with the exact line it reports, unknown and duplicate
 * keys and sections, continuation lines, relative paths, defaults, and
 * the INI dump loading back to the same configuration.
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
#include "conf/conf_keys.h"

static char dir[64];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/sluice-conf-XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static const char base[] = "[Transport]\n"
                           "QueueDirectory = q\n"
                           "[ReceiveConnector r]\n"
                           "Bindings = 127.0.0.1:2525\n";

/* Load text; returns the conf (or NULL) and the error output in err. */
static struct conf *
load(const char *text, char *err, size_t errsz)
{
	char path[128], *out = NULL;
	size_t outlen = 0;
	FILE *fp, *mem = open_memstream(&out, &outlen);
	struct conf *c;

	snprintf(path, sizeof(path), "%s/t.conf", dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	c = conf_load(path, mem);
	fclose(mem);
	snprintf(err, errsz, "%s", out != NULL ? out : "");
	free(out);
	return c;
}

static void
expect_error(const char *text, int line, const char *words)
{
	char err[2048], want[64];
	struct conf *c = load(text, err, sizeof(err));

	if (c != NULL)
		fail_msg("accepted:\n%s", text);
	snprintf(want, sizeof(want), "t.conf:%d: ", line);
	if (strstr(err, want) == NULL || strstr(err, words) == NULL)
		fail_msg("want \"%s...%s\" in:\n%s", want, words, err);
}

static void
test_values(void **state)
{
	unsigned secs;
	uint64_t b;
	int v;
	const char *why;

	(void)state;
	assert_int_equal(conf_parse_bool("$true", &v, &why), 0);
	assert_int_equal(v, 1);
	assert_int_equal(conf_parse_bool("FALSE", &v, &why), 0);
	assert_int_equal(v, 0);
	assert_int_equal(conf_parse_bool("yes", &v, &why), -1);
	assert_int_equal(conf_parse_timespan("2.00:00:00", &secs, &why), 0);
	assert_int_equal(secs, 172800);
	assert_int_equal(conf_parse_timespan("00:05:00", &secs, &why), 0);
	assert_int_equal(secs, 300);
	assert_int_equal(conf_parse_timespan("30s", &secs, &why), 0);
	assert_int_equal(secs, 30);
	assert_int_equal(conf_parse_timespan("2h", &secs, &why), 0);
	assert_int_equal(secs, 7200);
	assert_int_equal(conf_parse_timespan("2d", &secs, &why), 0);
	assert_int_equal(secs, 172800);
	assert_int_equal(conf_parse_timespan("00:60:00", &secs, &why), -1);
	assert_int_equal(conf_parse_timespan("300", &secs, &why), -1);
	assert_int_equal(conf_parse_timespan("-5m", &secs, &why), -1);
	assert_int_equal(conf_parse_size("36MB", &b, &why), 0);
	assert_true(b == 36ull * 1024 * 1024);
	assert_int_equal(conf_parse_size("512 KB", &b, &why), 0);
	assert_true(b == 512 * 1024);
	assert_int_equal(conf_parse_size("1GB", &b, &why), 0);
	assert_int_equal(conf_parse_size("1048576", &b, &why), 0);
	assert_true(b == 1048576);
	assert_int_equal(conf_parse_size("unlimited", &b, &why), 0);
	assert_true(b == SIZE_UNLIMITED);
	assert_int_equal(conf_parse_size("36 MiB", &b, &why), -1);
	assert_int_equal(conf_parse_size("99999999999TB", &b, &why), -1);
}

static void
test_ranges_and_bindings(void **state)
{
	struct conf_iprange r;
	struct conf_binding bd;
	const char *why;

	(void)state;
	assert_int_equal(conf_parse_iprange("10.0.0.0/8", &r, &why), 0);
	assert_int_equal(r.bits, 24);
	assert_int_equal(conf_parse_iprange("192.0.2.1", &r, &why), 0);
	assert_int_equal(r.bits, 0);
	assert_int_equal(conf_parse_iprange("::/0", &r, &why), 0);
	assert_int_equal(r.bits, 128);
	assert_int_equal(
	    conf_parse_iprange("192.0.2.9-192.0.2.1", &r, &why), -1);
	assert_int_equal(conf_parse_iprange("10.0.0.0/33", &r, &why), -1);
	assert_int_equal(conf_parse_iprange("10.0.0.1-::1", &r, &why), -1);
	assert_int_equal(conf_parse_binding("0.0.0.0:25", &bd, &why), 0);
	assert_int_equal(conf_parse_binding("[::]:25", &bd, &why), 0);
	assert_string_equal(bd.text, "[::]:25");
	assert_int_equal(conf_parse_binding("::1:25", &bd, &why), -1);
	assert_int_equal(conf_parse_binding("127.0.0.1:0", &bd, &why), -1);
	assert_int_equal(conf_parse_binding("127.0.0.1", &bd, &why), -1);
}

/* SmartHosts items in every form: what is an address, what is a port. */
static void
test_smarthosts(void **state)
{
	static const struct {
		const char *in;
		int ok;
		const char *host;
		unsigned port;
		int literal;
	} cases[] = {
	    {"relay.contoso.com", 1, "relay.contoso.com", 0, 0},
	    {"relay.contoso.com:587", 1, "relay.contoso.com", 587, 0},
	    {"10.10.10.1", 1, "10.10.10.1", 0, 1},
	    {"10.10.10.1:2525", 1, "10.10.10.1", 2525, 1},
	    {"[10.10.10.1]", 1, "10.10.10.1", 0, 1},
	    {"[10.10.10.1]:2525", 1, "10.10.10.1", 2525, 1},
	    {"::1", 1, "::1", 0, 1},
	    {"2001:db8::1", 1, "2001:db8::1", 0, 1},
	    {"[::1]:2525", 1, "::1", 2525, 1},
	    {"[2001:db8::1]", 1, "2001:db8::1", 0, 1},
	    {"[IPv6:2001:db8::1]:25", 1, "2001:db8::1", 25, 1},
	    {"localhost", 1, "localhost", 0, 0},
	    {"10.10.10.256", 0, NULL, 0, 0},
	    {"10.10.10", 0, NULL, 0, 0},
	    {"[relay.contoso.com]", 0, NULL, 0, 0},
	    {"[10.10.10.1", 0, NULL, 0, 0},
	    {"[10.10.10.1]x", 0, NULL, 0, 0},
	    {"2001:db8::g", 0, NULL, 0, 0},
	    {"10.10.10.1:0", 0, NULL, 0, 0},
	    {"10.10.10.1:65536", 0, NULL, 0, 0},
	    {"relay.contoso.com:", 0, NULL, 0, 0},
	    {"relay_contoso.com", 0, NULL, 0, 0},
	    {"-relay.contoso.com", 0, NULL, 0, 0},
	    {"RequireTLS = true", 0, NULL, 0, 0},
	    {"", 0, NULL, 0, 0},
	};
	char host[300];
	unsigned short port;
	int literal;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = conf_parse_smarthost(
		    cases[i].in, host, sizeof(host), &port, &literal, &why);

		if (rc != (cases[i].ok ? 0 : -1))
			fail_msg("%s: got %d", cases[i].in, rc);
		if (!cases[i].ok)
			continue;
		assert_string_equal(host, cases[i].host);
		assert_int_equal(port, cases[i].port);
		assert_int_equal(literal, cases[i].literal);
	}
}

/* "did you mean": close typos only. */
static void
test_suggestions(void **state)
{
	static const char *const names[] = {"RequireTLS", "MaxMessageSize",
	    "Fqdn", "Enabled", "TlsDomain", "DomainSecureEnabled"};
	static const struct {
		const char *word, *want;
	} cases[] = {
	    {"RequireTSL", "RequireTLS"},
	    {"requiretls", "RequireTLS"},
	    {"RequireTL", "RequireTLS"},
	    {"MaxMesageSize", "MaxMessageSize"},
	    {"Fqnd", "Fqdn"},
	    {"Enabeld", "Enabled"},
	    {"TlsDomian", "TlsDomain"},
	    {"Frobnicate", NULL},
	    {"Port", NULL},
	    {"RequireSSL", "RequireTLS"},
	    {"RequireAuth", NULL},
	    {"xy", NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = conf_suggest(
		    cases[i].word, names, sizeof(names) / sizeof(names[0]));

		if (cases[i].want == NULL
		        ? got != NULL
		        : got == NULL || strcmp(got, cases[i].want) != 0)
			fail_msg("%s: got %s, want %s", cases[i].word,
			    got ? got : "(none)",
			    cases[i].want ? cases[i].want : "(none)");
	}
}

/*
 * Shadowed receive connectors: a warning naming the line of the second
 * connector's RemoteIPRanges, or none.  Each case is two connectors.
 */
static void
test_shadow_warnings(void **state)
{
	static const struct {
		const char *a_bind, *a_ranges, *b_bind, *b_ranges, *b_extra;
		int warn;
	} cases[] = {
	    /* issue 11: the second loses every IPv4 client */
	    {"127.0.0.1:25", "0.0.0.0/0", "127.0.0.1:25", "0.0.0.0/0, ::/0", "",
	        1},
	    /* a narrower range winning is the point */
	    {"127.0.0.1:25", "0.0.0.0/0", "127.0.0.1:25", "10.0.0.0/8", "", 0},
	    {"127.0.0.1:25", "10.0.0.0/8", "127.0.0.1:25", "0.0.0.0/0", "", 0},
	    /* equal size, but no common client */
	    {"127.0.0.1:25", "10.0.0.0/8", "127.0.0.1:25", "11.0.0.0/8", "", 0},
	    /* equal size, partly common: ranges a-b */
	    {"127.0.0.1:25", "10.0.0.0-10.0.0.200", "127.0.0.1:25",
	        "10.0.0.100-10.0.0.255", "", 1},
	    /* another port, another family */
	    {"127.0.0.1:25", "0.0.0.0/0", "127.0.0.1:26", "0.0.0.0/0", "", 0},
	    {"127.0.0.1:25", "::/0", "[::1]:25", "::/0", "", 0},
	    /* wildcard beside explicit: explicit wins the tie by rule */
	    {"0.0.0.0:25", "0.0.0.0/0", "127.0.0.1:25", "0.0.0.0/0, 10.0.0.1",
	        "", 0},
	    /* both wildcards */
	    {"0.0.0.0:25", "0.0.0.0/0", "0.0.0.0:25", "0.0.0.0/0, ::1", "", 1},
	    /* IPv6 clients tie on an IPv6 endpoint */
	    {"[::1]:25", "::/0", "[::1]:25", "::/0, 10.0.0.0/8", "", 1},
	    /* ::/0 is wider than 0.0.0.0/0 for IPv4 clients: no tie */
	    {"127.0.0.1:25", "0.0.0.0/0", "127.0.0.1:25", "::/0", "", 0},
	    /* a disabled connector serves nobody */
	    {"127.0.0.1:25", "0.0.0.0/0", "127.0.0.1:25", "0.0.0.0/0, ::/0",
	        "Enabled = false\n", 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[512], err[1024];
		struct conf *c;
		const char *w;

		snprintf(text, sizeof(text),
		    "[ReceiveConnector a]\nBindings = %s\nRemoteIPRanges = %s\n"
		    "[ReceiveConnector b]\nBindings = %s\nRemoteIPRanges = %s\n"
		    "%s",
		    cases[i].a_bind, cases[i].a_ranges, cases[i].b_bind,
		    cases[i].b_ranges, cases[i].b_extra);
		c = load(text, err, sizeof(err));
		if (c == NULL)
			fail_msg("case %zu refused: %s", i, err);
		w = c->warnings != NULL ? c->warnings : "";
		if (cases[i].warn &&
		    (strstr(w, "t.conf:6: warning: receive connector \"b\" is "
		               "shadowed by \"a\"") == NULL))
			fail_msg("case %zu: no warning in \"%s\"", i, w);
		if (!cases[i].warn && w[0] != '\0')
			fail_msg("case %zu: unexpected \"%s\"", i, w);
		conf_free(c);
	}
}

/* Messages that say what to edit, and the rules added for issue 11. */
static void
test_messages(void **state)
{
	char err[1024];
	struct conf *c;

	(void)state;
	expect_error("[SendConnector s]\nAddressSpaces = *\n"
	             "DNSRoutingEnabled = false\nSmartHosts = relay.example,\n"
	             "  RequireTLS = true\n",
	    5,
	    "\"RequireTLS = ...\" is indented, so it continues SmartHosts "
	    "(line 4)");
	expect_error("[ReceiveConnector r]\nBindings = 127.0.0.1:25\n"
	             "RequireTSL = true\n",
	    3, "(did you mean RequireTLS?)");
	expect_error("[ReceiveConnector r]\nBindings = 127.0.0.1:25\n"
	             "TlsDomain = x.example\n",
	    3, "(TlsDomain is a key of [SendConnector])");
	expect_error(
	    "[SendConector s]\n", 1, "(did you mean [SendConnector]?)");
	expect_error("[ReceiveConnector r]\nBindings = 127.0.0.1:25\n"
	             "RemoteIPRanges = 10.0.0.0/8, 10.0.0.0/99, ::1\n",
	    3, "bad CIDR prefix length: \"10.0.0.0/99\"");
	expect_error("[ReceiveConnector r]\nBindings = 127.0.0.1:25\n"
	             "RemoteIPRanges = \"10.0.0.0/8,\"::1\"\n",
	    3, "unbalanced double quote");
	expect_error("[SendConnector s]\nAddressSpaces = *\n"
	             "RequireTLS = true\nTlsAuthLevel = EncryptionOnly\n"
	             "TlsDomain = contoso.com\n",
	    5, "TlsDomain is used only with TlsAuthLevel = DomainValidation");
	expect_error("[ReceiveConnector r]\nBindings = 127.0.0.1:25\n"
	             "RequireTLS = true\n",
	    3, "RequireTLS = true needs a certificate");
	expect_error("[ReceiveConnector r]\nBindings = 127.0.0.1:25\n"
	             "Fqdn = not a hostname!\n",
	    3, "not a host name");
	c = load("[ReceiveConnector r]\nBindings = 127.0.0.1:25\n"
	         "RemoteIPRanges = \"127.0.0.0/8\",\"10.0.0.0/8\"\n"
	         "Enabled = $false\n",
	    err, sizeof(err));
	if (c == NULL)
		fail_msg("refused: %s", err);
	assert_int_equal(c->receive_connectors[0].nremote_ranges, 2);
	assert_string_equal(
	    c->receive_connectors[0].remote_ranges[1].text, "10.0.0.0/8");
	assert_int_equal(c->receive_connectors[0].enabled, 0);
	conf_free(c);
}

static void
test_defaults_and_paths(void **state)
{
	char err[1024], expect[200];
	struct conf *c = load(base, err, sizeof(err));
	const struct conf_receive_connector *rc;

	(void)state;
	assert_non_null(c);
	rc = conf_receive_connector(c, "R");
	assert_non_null(rc);
	assert_true(rc->max_message_size == 36ull * 1024 * 1024);
	assert_int_equal(rc->max_recipients_per_message, 200);
	assert_int_equal(rc->tarpit_interval, 5);
	assert_int_equal(rc->auth_mechanism, AUTHM_TLS);
	assert_int_equal(rc->nremote_ranges, 2);
	snprintf(expect, sizeof(expect), "220 %s Sluice ESMTP ready", rc->fqdn);
	assert_string_equal(rc->banner, expect);
	/* relative to the file's directory */
	snprintf(expect, sizeof(expect), "%s/q", dir);
	assert_string_equal(c->transport.queue_directory, expect);
	snprintf(expect, sizeof(expect), "%s/q/sluice.sock", dir);
	assert_string_equal(c->transport.control_socket, expect);
	assert_int_equal(c->transport.message_expiration_timeout, 172800);
	conf_free(c);
}

static void
test_syntax_errors(void **state)
{
	(void)state;
	expect_error("[Transport]\nNoSuchKey = 1\n", 2, "unknown key");
	expect_error("[Transport]\n[Bogus x]\n", 2, "unknown section");
	expect_error("[TransportRule r1]\n", 1, "has no action");
	expect_error(
	    "[Transport]\nMaxReceiveSize = 1MB\nMaxReceiveSize = 2MB\n", 3,
	    "duplicate key");
	expect_error("[ReceiveConnector a]\nBindings = 127.0.0.1:25\n"
	             "[ReceiveConnector A]\nBindings = 127.0.0.1:26\n",
	    3, "duplicate section");
	expect_error(
	    "[Transport]\nMaxReceiveSize = lots\n", 2, "MaxReceiveSize");
	expect_error("[Transport]\nMessageExpirationTimeout = 5 minutes\n", 2,
	    "TimeSpan");
	expect_error("[ReceiveConnector r]\n", 1, "needs Bindings");
	expect_error(
	    "[Certificate c]\nCertificateFile = x.pem\n", 1, "needs KeyFile");
	expect_error("[Transport]\nthis is not ini\n", 2, "syntax error");
	{
		char text[400];

		snprintf(text, sizeof(text),
		    "[Transport]\n; comment\nResolver = %0*d\n", 200, 1);
		expect_error(text, 3, "line too long");
	}
}

static void
test_validation_rules(void **state)
{
	(void)state;
	expect_error("[SendConnector s]\nAddressSpaces = *\n"
	             "TlsAuthLevel = DomainValidation\n",
	    3, "needs RequireTLS");
	expect_error("[SendConnector s]\nAddressSpaces = *\n"
	             "RequireTLS = true\nIgnoreSTARTTLS = true\n"
	             "TlsAuthLevel = EncryptionOnly\n",
	    5, "IgnoreSTARTTLS");
	expect_error("[SendConnector s]\nAddressSpaces = *\n"
	             "DNSRoutingEnabled = false\nSmartHosts = relay.example\n"
	             "RequireTLS = true\nTlsAuthLevel = DomainValidation\n",
	    6, "needs TlsDomain");
	expect_error("[SendConnector s]\nAddressSpaces = *\n"
	             "RequireTLS = true\nTlsAuthLevel = DomainValidation\n"
	             "TlsDomain = mx*.contoso.com\n",
	    5, "wildcard");
	expect_error("[SendConnector s]\nAddressSpaces = *\n"
	             "DomainSecureEnabled = true\nDNSRoutingEnabled = false\n"
	             "SmartHosts = relay.example\n",
	    3, "DomainSecureEnabled needs");
	expect_error(
	    "[Transport]\nTLSSendDomainSecureList = *.partner.example\n", 2,
	    "no wildcard");
	expect_error("[ReceiveConnector r]\nBindings = 127.0.0.1:25\n"
	             "AuthMechanism = None\nRequireTLS = true\n",
	    4, "needs Tls");
	expect_error("[ReceiveConnector r]\nBindings = 127.0.0.1:25\n"
	             "AuthMechanism = None\nDomainSecureEnabled = true\n",
	    4, "needs Tls");
	expect_error("[ReceiveConnector r]\nBindings = 127.0.0.1:25\n"
	             "AuthMechanism = Tls, BasicAuthRequireTLS\n",
	    3, "BasicAuthRequireTLS needs");
	expect_error("[ReceiveConnector a]\nBindings = 127.0.0.1:25\n"
	             "[ReceiveConnector b]\nBindings = 127.0.0.1:25\n",
	    4, "same binding");
	expect_error("[ReceiveConnector r]\nBindings = 127.0.0.1:25\n"
	             "TlsCertificateName = nope\n",
	    3, "no [Certificate nope]");
	expect_error("[SendConnector s]\nAddressSpaces = *\n"
	             "DNSRoutingEnabled = false\n",
	    3, "needs SmartHosts");
	expect_error("[SendConnector s]\nAddressSpaces = *\n"
	             "IgnoreSTARTTLS = true\nSmtpDaneMode = Mandatory\n",
	    4, "SmtpDaneMode = Mandatory needs IgnoreSTARTTLS = false");
	expect_error("[SendConnector s]\nAddressSpaces = *\n"
	             "SmtpDaneMode = Required\n",
	    3, "expected Opportunistic, Mandatory or None");
	expect_error("[SendConnector s]\nAddressSpaces = *\n"
	             "MtaStsMode = Mandatory\n",
	    3, "expected Opportunistic or None");
}

/* SPEC 6: both default to Opportunistic; values are case-insensitive. */
static void
test_dane_sts_modes(void **state)
{
	static const struct {
		const char *text;
		enum conf_dane_mode dane;
		enum conf_sts_mode sts;
	} t[] = {
	    {"", DANE_MODE_OPPORTUNISTIC, MTASTS_MODE_OPPORTUNISTIC},
	    {"SmtpDaneMode = Mandatory\n", DANE_MODE_MANDATORY,
	        MTASTS_MODE_OPPORTUNISTIC},
	    {"SmtpDaneMode = none\nMtaStsMode = NONE\n", DANE_MODE_NONE,
	        MTASTS_MODE_NONE},
	    {"smtpdanemode = opportunistic\n", DANE_MODE_OPPORTUNISTIC,
	        MTASTS_MODE_OPPORTUNISTIC},
	};
	char text[512], err[1024];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct conf *c;

		snprintf(text, sizeof(text),
		    "%s[SendConnector s]\nAddressSpaces = *\n%s", base,
		    t[i].text);
		c = load(text, err, sizeof(err));
		if (c == NULL)
			fail_msg("refused %s: %s", t[i].text, err);
		assert_int_equal(
		    c->send_connectors[0].smtp_dane_mode, t[i].dane);
		assert_int_equal(c->send_connectors[0].mta_sts_mode, t[i].sts);
		conf_free(c);
	}
	assert_string_equal(
	    conf_dane_mode_name(DANE_MODE_MANDATORY), "Mandatory");
	assert_string_equal(conf_sts_mode_name(MTASTS_MODE_NONE), "None");
}

static void
test_continuation_and_quotes(void **state)
{
	char err[1024];
	struct conf *c = load("[ReceiveConnector \"Default Frontend\"]\n"
	                      "Bindings = 127.0.0.1:2525\n"
	                      "RemoteIPRanges = 10.0.0.0/8,\n"
	                      "    192.0.2.0/24, 198.51.100.0/24\n"
	                      "Banner = \"220 mx.example ESMTP; hello\"\n",
	    err, sizeof(err));
	const struct conf_receive_connector *rc;

	(void)state;
	assert_non_null(c);
	rc = conf_receive_connector(c, "default frontend");
	assert_non_null(rc);
	assert_int_equal(rc->nremote_ranges, 3);
	assert_string_equal(rc->banner, "220 mx.example ESMTP; hello");
	conf_free(c);
	expect_error("[Transport]\nResolver = a\n  b\n", 3, "only lists");
}

static void
test_dump_round_trip(void **state)
{
	char err[1024], path[128], *one = NULL, *two = NULL;
	size_t l1 = 0, l2 = 0;
	struct conf *c =
	    load("[Transport]\nQueueDirectory = q\n"
	         "TLSSendDomainSecureList = a.example, b.example\n"
	         "[AcceptedDomain example.com]\n"
	         "[SendConnector s]\nAddressSpaces = x.example;2, *\n"
	         "RequireTLS = true\nTlsAuthLevel = "
	         "CertificateValidation\n"
	         "[ReceiveConnector r]\n"
	         "Bindings = 127.0.0.1:2525, [::1]:2525\n",
	        err, sizeof(err));
	FILE *fp;
	struct conf *again;

	(void)state;
	assert_non_null(c);
	fp = open_memstream(&one, &l1);
	conf_dump_ini(c, fp);
	fclose(fp);
	snprintf(path, sizeof(path), "%s/dump.conf", dir);
	fp = fopen(path, "w");
	fputs(one, fp);
	fclose(fp);
	again = conf_load(path, stderr);
	assert_non_null(again);
	fp = open_memstream(&two, &l2);
	conf_dump_ini(again, fp);
	fclose(fp);
	/* identical but for the first comment line naming the file */
	assert_string_equal(strchr(one, '\n'), strchr(two, '\n'));
	free(one);
	free(two);
	conf_free(c);
	conf_free(again);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_ranges_and_bindings),
	    cmocka_unit_test(test_smarthosts),
	    cmocka_unit_test(test_suggestions),
	    cmocka_unit_test(test_shadow_warnings),
	    cmocka_unit_test(test_messages),
	    cmocka_unit_test(test_defaults_and_paths),
	    cmocka_unit_test(test_syntax_errors),
	    cmocka_unit_test(test_validation_rules),
	    cmocka_unit_test(test_dane_sts_modes),
	    cmocka_unit_test(test_continuation_and_quotes),
	    cmocka_unit_test(test_dump_round_trip),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
