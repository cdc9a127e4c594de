/*
 * ctl_testtls.c - "sluicectl test-tls HOST[:PORT] [--domain D]
 * [--connector NAME]": what an administrator would otherwise do by hand
 * with telnet and openssl s_client.  It connects, shows the banner and
 * the EHLO capabilities, says whether STARTTLS is offered and whether a
 * plaintext MAIL FROM is refused (a server that forces TLS), performs the
 * handshake with the same client TLS code sluiced uses (trust from
 * [Transport], the connector's client certificate, SNI), shows the chain,
 * and then states which TlsAuthLevel would pass for domain D and whether
 * the send connector could deliver there now.  DANE and MTA-STS (issue
 * 16): the host's DNSSEC status and TLSA records with what they require,
 * whether the certificate matches them (OpenSSL's DANE verifier, set up
 * as sluiced sets it up), and D's MTA-STS policy and whether it names the
 * host; with --connector they are inputs of the verdict, as in sluiced.
 *
 * It is a tool run by hand: plain blocking sockets with a timeout, one
 * connection, bounded replies through the client's reply parser.  What
 * it shares with sluiced is what decides: the TLS policy (tls_policy.c:
 * the same decision, the same words, the same verdict), the client TLS
 * code, and name resolution through [Transport] Resolver.  SIGPIPE is
 * ignored, so a server that hangs up mid-write ends the probe with its
 * report, not the process.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "conf/conf.h"
#include "ctl/ctl.h"
#include "deliver/dest_tls.h"
#include "dns/resolver.h"
#include "smtp/reply.h"
#include "tls/tls_client.h"
#include "tls/tls_dane.h"
#include "tls/tls_peer.h"
#include "tls/tls_policy.h"
#include "tls/tls_store.h"
#include "tls/tls_verify.h"
#include "util/addr.h"

/* Each read or write waits at most this long. */
#define TESTTLS_TIMEOUT_SECONDS 15

struct probe {
	int fd;
	SSL *ssl;
	char buf[8192];
	size_t len;
};

static ssize_t
probe_read(struct probe *p, char *out, size_t n)
{
	if (p->ssl != NULL) {
		int r = SSL_read(p->ssl, out, (int)n);

		return r > 0 ? r : -1;
	}
	return recv(p->fd, out, n, 0);
}

/* One complete reply; -1 on a closed connection, timeout or bad reply. */
static int
probe_reply(struct probe *p, struct reply *r)
{
	reply_init(r);
	for (;;) {
		size_t used = 0;
		enum reply_status st = reply_parse(r, p->buf, p->len, &used);
		ssize_t n;

		memmove(p->buf, p->buf + used, p->len - used);
		p->len -= used;
		if (st == REPLY_OK)
			return 0;
		if (st == REPLY_ERROR) {
			printf("  bad reply: %s\n", r->why ? r->why : "?");
			return -1;
		}
		if (p->len == sizeof(p->buf))
			return -1;
		n = probe_read(p, p->buf + p->len, sizeof(p->buf) - p->len);
		if (n <= 0) {
			printf("  connection closed or timed out\n");
			return -1;
		}
		p->len += (size_t)n;
	}
}

static int
probe_cmd(struct probe *p, const char *line, struct reply *r)
{
	char out[600];
	int n = snprintf(out, sizeof(out), "%s\r\n", line);

	if (n < 0 || (size_t)n >= sizeof(out))
		return -1;
	if (p->ssl != NULL ? SSL_write(p->ssl, out, n) != n
	                   : send(p->fd, out, (size_t)n, MSG_NOSIGNAL) != n)
		return -1;
	return probe_reply(p, r);
}

/* Print a reply as the server sent it, one line each, indented. */
static void
probe_show(const char *prefix, const struct reply *r)
{
	const char *s = r->text, *end = r->text + r->text_len;

	while (s <= end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t len = (size_t)((nl != NULL ? nl : end) - s);

		printf("%s%d %s%s%.*s\n", prefix, r->code, r->enh,
		    r->enh[0] ? " " : "", (int)len, s);
		if (nl == NULL)
			break;
		s = nl + 1;
	}
}

static int
probe_has(const struct reply *r, const char *kw)
{
	const char *s = r->text, *end = r->text + r->text_len;
	size_t k = strlen(kw);

	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));

		if ((size_t)((nl != NULL ? nl : end) - s) >= k &&
		    strncasecmp(s, kw, k) == 0 &&
		    (s + k == (nl != NULL ? nl : end) || s[k] == ' '))
			return 1;
		if (nl == NULL)
			break;
		s = nl + 1;
	}
	return 0;
}

/*
 * Connect to the first address of host that answers, resolved as sluiced
 * resolves next hops ([Transport] Resolver: the system's, or the DNS
 * server the configuration names), in the same order.
 */
static int
probe_connect(const struct conf *c, const char *host, unsigned port,
    struct resolver_result *resp, size_t *hop)
{
	struct conf_smarthost sh;
	struct resolver_result res;
	struct timeval tv = {TESTTLS_TIMEOUT_SECONDS, 0};
	unsigned char bin[sizeof(struct in6_addr)];
	char why[300];
	int fd = -1;

	memset(&sh, 0, sizeof(sh));
	sh.host = (char *)(uintptr_t)host;
	sh.port = (unsigned short)port;
	sh.literal = inet_pton(AF_INET, host, bin) == 1 ||
	             inet_pton(AF_INET6, host, bin) == 1;
	if (ctl_resolve(c, NULL, &sh, 1, port, &res, why, sizeof(why)) < 0) {
		printf("  cannot resolve %s: %s\n", host, why);
		return -1;
	}
	if (res.status != RESOLVER_OK) {
		printf("  cannot resolve %s: %s\n", host, res.why);
		return -1;
	}
	for (size_t i = 0; i < res.nhops; i++) {
		const struct resolver_hop *h = &res.hops[i];
		char addr[ADDR_IP_MAX];

		fd = socket(h->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		addr_ip((const struct sockaddr *)&h->addr, addr, sizeof(addr));
		if (connect(fd, (const struct sockaddr *)&h->addr,
		        h->addrlen) == 0) {
			printf("Connected    : %s port %u\n", addr, port);
			*resp = res;
			*hop = i;
			return fd;
		}
		printf("  %s port %u: %s\n", addr, port, strerror(errno));
		close(fd);
		fd = -1;
	}
	return -1;
}

static void
probe_chain(SSL *ssl)
{
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);

	if (chain == NULL || sk_X509_num(chain) == 0) {
		printf("Chain        : (no certificate)\n");
		return;
	}
	for (int i = 0; i < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);
		char subj[256], iss[256], after[64] = "?";
		BIO *b = BIO_new(BIO_s_mem());

		X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof(subj));
		X509_NAME_oneline(X509_get_issuer_name(x), iss, sizeof(iss));
		if (b != NULL && ASN1_TIME_print(b, X509_get0_notAfter(x))) {
			int n = BIO_read(b, after, sizeof(after) - 1);

			after[n > 0 ? n : 0] = '\0';
		}
		BIO_free(b);
		printf("Chain %-7d: %s\n", i, subj);
		printf("               issuer %s, expires %s\n", iss, after);
	}
}

/* Each level, judged for domain with the connector's TlsDomain if any. */
static void
probe_levels(
    SSL *ssl, const char *tls_domain, const char *domain, const long *pkix)
{
	static const enum tls_auth_level levels[] = {TLS_AUTH_ENCRYPTION_ONLY,
	    TLS_AUTH_CERTIFICATE_VALIDATION, TLS_AUTH_DOMAIN_VALIDATION};
	struct tls_outcome o;

	tls_peer_outcome(ssl, ssl != NULL, &o);
	if (pkix != NULL) /* under DANE: the chain judged without it */
		o.verify = *pkix;
	for (size_t i = 0; i < 3; i++) {
		char why[300] = "";
		enum tls_check ch = tls_evaluate(
		    levels[i], &o, tls_domain, domain, why, sizeof(why));

		printf("%-22s: %s%s%s\n", tls_level_name(levels[i]),
		    ch == TLS_CHECK_OK ? "pass" : "FAIL",
		    ch == TLS_CHECK_OK ? "" : " - ",
		    ch == TLS_CHECK_OK ? "" : why);
	}
}

/*
 * What the send connector's policy (tls_policy.c, the daemon's own
 * decision) makes of what was observed: the same questions the SMTP
 * client asks, in the same order.
 */
static void
probe_verdict(const struct tls_policy *pol, SSL *ssl, int starttls,
    const char *refused, int handshake, const char *error, int dane_ok,
    const char *dane_why, const long *pkix)
{
	struct tls_facts f;
	struct tls_outcome o;
	char why[600] = "", words[1500];
	enum tls_action a;

	tls_policy_describe(pol, words, sizeof(words));
	printf("Connector    : %s\n", pol->connector);
	printf("TlsPolicy    : %s\n", words);
	/* DANE or MTA-STS enforce rule the host out: sluiced never
	 * connects to it */
	if (pol->skip) {
		printf("Could deliver: no (%s; sluiced does not use this "
		       "host)\n",
		    pol->skip_why);
		return;
	}
	memset(&f, 0, sizeof(f));
	f.stage = TLS_STAGE_EHLO;
	f.offered = starttls;
	a = tls_policy_judge(pol, &f, NULL, why, sizeof(why));
	if (a == TLS_ACTION_STARTTLS && refused != NULL) {
		f.stage = TLS_STAGE_REFUSED;
		f.error = refused;
		a = tls_policy_judge(pol, &f, NULL, why, sizeof(why));
	} else if (a == TLS_ACTION_STARTTLS) {
		f.stage = TLS_STAGE_HANDSHAKE;
		f.error = error;
		tls_peer_outcome(ssl, handshake, &o);
		if (pkix != NULL && pol->floor_level >= TLS_POLICY_VERIFY)
			o.verify = *pkix;
		f.outcome = &o;
		f.dane_ok = dane_ok;
		f.dane_why = dane_why;
		a = tls_policy_judge(pol, &f, NULL, why, sizeof(why));
	}
	switch (a) {
	case TLS_ACTION_STARTTLS: /* not after a handshake */
	case TLS_ACTION_PLAINTEXT:
		printf("Could deliver: yes (%s)\n",
		    pol->level == TLS_POLICY_NONE
		        ? "IgnoreSTARTTLS: in plaintext"
		    : refused != NULL ? "STARTTLS refused: in plaintext"
		                      : "no STARTTLS: in plaintext");
		break;
	case TLS_ACTION_RETRY_PLAINTEXT:
		printf("Could deliver: yes (the handshake fails: in plaintext "
		       "on retry)\n");
		break;
	case TLS_ACTION_SEND:
		if (why[0] != '\0' && pol->sts == TLS_STS_TESTING)
			printf("Could deliver: yes (%s: reported, not "
			       "enforced)\n",
			    why);
		else if (tls_policy_required(pol))
			printf("Could deliver: yes (%s met)\n",
			    tls_policy_name(pol));
		else
			printf("Could deliver: yes (over TLS, nothing "
			       "checked)\n");
		break;
	case TLS_ACTION_DEFER:
		printf("Could deliver: no (%s; the message would be "
		       "deferred)\n",
		    why);
		break;
	}
}

/*
 * The host's DANE state and the domain's MTA-STS policy, as the daemon
 * would see them; need and the records for the handshake.
 */
static void
probe_internet(const struct conf_send_connector *sc,
    const struct resolver_result *res, size_t hop, const struct dest_tls *dt,
    const char *domain, enum tls_dane_need *need,
    const struct tlsa_result **tlsa)
{
	const struct resolver_hop *h = &res->hops[hop];
	const struct sts_state *st = dest_tls_sts(dt);
	char why[600], rec[200];

	*tlsa = dest_tls_tlsa(dt, hop);
	printf("Dnssec       : address of %s %s\n", h->host,
	    h->secure ? "secure (DNSSEC-validated)" : "insecure");
	*need = tls_dane_decide(
	    sc->smtp_dane_mode, h->host, h->secure, *tlsa, why, sizeof(why));
	if (sc->ignore_starttls)
		*need = TLS_DANE_OFF;
	printf("Dane         : %s: %s\n", tls_dane_need_name(*need), why);
	for (size_t i = 0; *tlsa != NULL && i < (*tlsa)->n; i++) {
		tlsa_rr_format(&(*tlsa)->rr[i], rec, sizeof(rec));
		printf("Tlsa         : %s %s%s\n", (*tlsa)->qname, rec,
		    tlsa_rr_usable(&(*tlsa)->rr[i]) ? "" : " (unusable)");
	}
	if (!sc->dns_routing_enabled)
		return;
	if (st == NULL) {
		printf("MtaSts       : no policy for %s\n", domain);
		return;
	}
	printf("MtaSts       : %s policy id %s (TXT id %s), mode %s: %s %s\n",
	    st->source, st->id, st->txt_id[0] ? st->txt_id : "none",
	    sts_policy_mode_name(st->policy.mode), h->host,
	    sts_policy_match(&st->policy, h->host)
	        ? "matches the policy"
	        : "does not match the policy");
}

static int
ctl_testtls_usage(void)
{
	fprintf(stderr, "usage: sluicectl test-tls HOST[:PORT] [--domain D] "
	                "[--connector NAME]\n");
	return 2;
}

int
ctl_test_tls(struct ctl *ctl, int argc, char **argv)
{
	const char *target = NULL, *domain = NULL, *cname = NULL;
	char host[300], port[16] = "25";
	const struct conf_send_connector *sc = NULL;
	struct tls_client *tc = NULL;
	struct tls_store *certs = NULL;
	struct probe p;
	struct reply r;
	struct conf *c;
	struct tls_policy pol;
	const char *refused = NULL, *error = NULL;
	char refused_text[300], error_text[200];
	int starttls = 0, handshake = 0, rc = 1;
	struct resolver_result res;
	size_t hop = 0;
	struct dest_tls *dt = NULL;
	enum tls_dane_need dane = TLS_DANE_OFF;
	const struct tlsa_result *tlsa = NULL;
	char dane_why[400] = "", dane_match[80] = "";
	int dane_ok = 0;
	long pkix = 0;
	const long *pkixp = NULL;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--domain") == 0 && i + 1 < argc)
			domain = argv[++i];
		else if (strcmp(argv[i], "--connector") == 0 && i + 1 < argc)
			cname = argv[++i];
		else if (argv[i][0] != '-' && target == NULL)
			target = argv[i];
		else
			return ctl_testtls_usage();
	}
	if (target == NULL)
		return ctl_testtls_usage();
	/* HOST, HOST:PORT, [v6]:PORT */
	if (target[0] == '[') {
		const char *close = strchr(target, ']');

		if (close == NULL)
			return ctl_testtls_usage();
		snprintf(host, sizeof(host), "%.*s", (int)(close - target - 1),
		    target + 1);
		if (close[1] == ':')
			snprintf(port, sizeof(port), "%s", close + 2);
	} else {
		const char *colon = strrchr(target, ':');

		if (colon != NULL && strchr(target, ':') == colon) {
			snprintf(host, sizeof(host), "%.*s",
			    (int)(colon - target), target);
			snprintf(port, sizeof(port), "%s", colon + 1);
		} else {
			snprintf(host, sizeof(host), "%s", target);
		}
	}
	if (domain == NULL)
		domain = host;
	if ((c = conf_load(ctl->conf_path, stderr)) == NULL)
		return 1;
	/*
	 * A server that closes while we write (after the handshake, say)
	 * must not kill the tool with SIGPIPE and lose what it found: the
	 * write fails instead, and the report is printed.
	 */
	signal(SIGPIPE, SIG_IGN);
	if (cname != NULL && (sc = conf_send_connector(c, cname)) == NULL) {
		fprintf(stderr, "sluicectl: no send connector %s\n", cname);
		conf_free(c);
		return 1;
	}
	memset(&p, 0, sizeof(p));
	if ((p.fd = probe_connect(
	         c, host, (unsigned)strtoul(port, NULL, 10), &res, &hop)) < 0)
		goto out;
	{
		/*
		 * Without --connector: Sluice's defaults (DANE and MTA-STS
		 * opportunistic), MTA-STS only for an explicit --domain.
		 */
		struct conf_send_connector def;
		const struct conf_send_connector *eff = sc;

		if (eff == NULL) {
			memset(&def, 0, sizeof(def));
			def.smtp_dane_mode = DANE_MODE_OPPORTUNISTIC;
			def.mta_sts_mode = MTASTS_MODE_OPPORTUNISTIC;
			def.dns_routing_enabled = domain != host;
			eff = &def;
		}
		dt = ctl_dest_tls(c, eff, domain, &res);
		probe_internet(eff, &res, hop, dt, domain, &dane, &tlsa);
	}
	if (sc != NULL) {
		struct tls_policy_input in = {.conf = c,
		    .connector = sc,
		    .domain = domain,
		    .host = host,
		    .addr_secure = res.hops[hop].secure,
		    .tlsa = tlsa,
		    .sts = dest_tls_sts(dt)};

		tls_policy_decide(&in, &pol);
	}
	if (probe_reply(&p, &r) < 0)
		goto out;
	probe_show("Banner       : ", &r);
	{
		char ehlo[300];

		snprintf(ehlo, sizeof(ehlo), "EHLO %s",
		    sc != NULL ? sc->fqdn : "sluicectl.invalid");
		if (probe_cmd(&p, ehlo, &r) < 0)
			goto out;
	}
	probe_show("EHLO         : ", &r);
	starttls = r.code / 100 == 2 && probe_has(&r, "STARTTLS");
	printf("STARTTLS     : %s\n", starttls ? "offered" : "NOT offered");
	if (probe_cmd(&p, "MAIL FROM:<>", &r) < 0)
		goto out;
	printf("Plain MAIL   : %s (%d %s)\n",
	    r.code / 100 == 2 ? "accepted (TLS is not forced)"
	                      : "refused (the server forces TLS or refuses us)",
	    r.code, r.enh);
	if (r.code / 100 == 2 && probe_cmd(&p, "RSET", &r) < 0)
		goto out;
	rc = 0;
	if (starttls) {
		struct tls_client_target t;
		const char *why = NULL;
		SSL *ssl;

		if (probe_cmd(&p, "STARTTLS", &r) < 0 || r.code != 220) {
			printf(
			    "TLS          : STARTTLS refused (%d)\n", r.code);
			snprintf(refused_text, sizeof(refused_text),
			    "%d %s%s%.*s", r.code, r.enh, r.enh[0] ? " " : "",
			    (int)r.text_len, r.text);
			refused = refused_text;
			goto verdict;
		}
		p.len = 0; /* nothing sent before the handshake is trusted */
		if ((tc = tls_client_from_conf(c, stderr)) == NULL) {
			rc = 1;
			goto out;
		}
		memset(&t, 0, sizeof(t));
		t.host = host;
		t.port = (unsigned)strtoul(port, NULL, 10);
		if (sc != NULL) {
			/* who we are and whom we trust: the policy's */
			t.domain_secure = pol.partner_trust;
			t.cert_name = pol.cert_name;
		}
		if (t.cert_name != NULL &&
		    (certs = tls_store_new(c, stderr)) == NULL) {
			rc = 1;
			goto out;
		}
		if ((ssl = tls_client_ssl(tc, &t, certs, &why)) == NULL) {
			printf("TLS          : cannot start (%s)\n",
			    why ? why : "?");
			goto verdict;
		}
		/* DANE as sluiced does it: OpenSSL's verifier, the records */
		if (dane == TLS_DANE_VERIFY &&
		    tls_dane_enable(ssl, tlsa, host, &why) < 0)
			printf("DaneMatch    : cannot check (%s)\n",
			    why ? why : "?");
		SSL_set_fd(ssl, p.fd);
		p.ssl = ssl;
		handshake = SSL_connect(ssl) == 1;
		tls_client_done(ssl, handshake);
		if (!handshake) {
			unsigned long e = ERR_get_error();

			snprintf(error_text, sizeof(error_text), "%s",
			    e != 0 && ERR_reason_error_string(e) != NULL
			        ? ERR_reason_error_string(e)
			        : "peer closed");
			error = error_text;
			printf("TLS          : handshake FAILED (%s)\n", error);
			goto verdict;
		}
		{
			struct tls_peer peer;

			tls_peer_describe(ssl, &peer);
			printf("TLS          : %s %s%s\n", peer.version,
			    peer.cipher,
			    t.cert_name ? " (client certificate "
			                  "presented)"
			                : "");
			printf("Names        : %s\n",
			    peer.names[0] ? peer.names : "(none)");
		}
		probe_chain(ssl);
		if (dane == TLS_DANE_VERIFY) {
			int depth;

			dane_ok = tls_dane_verified(ssl, host, dane_match,
			    sizeof(dane_match), dane_why, sizeof(dane_why));
			printf("DaneMatch    : %s%s%s%s\n",
			    dane_ok ? "yes" : "NO", dane_ok ? " (" : " - ",
			    dane_ok ? dane_match : dane_why,
			    dane_ok ? ")" : "");
			pkix = tls_dane_pkix(ssl, &depth);
			pkixp = &pkix;
		}
		printf("Verification : %s\n",
		    X509_verify_cert_error_string(
		        pkixp != NULL ? pkix : SSL_get_verify_result(ssl)));
		probe_levels(ssl,
		    sc != NULL && sc->tls_domain[0] ? sc->tls_domain : NULL,
		    domain, pkixp);
		/* What was offered before TLS counts for nothing now. */
		if (probe_cmd(&p, "EHLO sluicectl.invalid", &r) == 0)
			probe_show("EHLO in TLS  : ", &r);
	} else {
		printf("TLS          : not possible (no STARTTLS)\n");
		probe_levels(NULL, NULL, domain, NULL);
	}
verdict:
	if (sc != NULL)
		probe_verdict(&pol, p.ssl, starttls, refused, handshake, error,
		    dane_ok, dane_why, pkixp);
	if (probe_cmd(&p, "QUIT", &r) < 0)
		(void)0; /* the answer to QUIT does not matter */
out:
	if (p.ssl != NULL) {
		SSL_shutdown(p.ssl);
		SSL_free(p.ssl);
	}
	if (p.fd > 0)
		close(p.fd);
	tls_client_free(tc);
	tls_store_free(certs);
	dest_tls_unref(dt);
	conf_free(c);
	return rc;
}
