/*
 * ctl_config.c - sluicectl commands that read the configuration file:
 * check it, dump it, and show objects the way Exchange's Get-* cmdlets
 * piped to Format-List do.  They never talk to the running daemon.
 *
 * `config check` runs every check sluiced runs at start (the file, then
 * the files and directories it names, as the run-time user: see
 * conf_check.c; then every certificate and key loaded), and adds what
 * only an administrator needs to hear: warnings (FILE:LINE: warning: ...)
 * about settings Exchange would accept, such as a connector's Fqdn that
 * its certificate does not name.  Errors exit 1, warnings alone exit 0.
 */
#include <stdint.h>
#include <stdio.h>
#include <strings.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "conf/conf.h"
#include "ctl/ctl.h"
#include "rules/rules.h"
#include "tls/tls_store.h"
#include "tls/tls_verify.h"

static struct conf *
ctl_load(struct ctl *ctl)
{
	return conf_load(ctl->conf_path, stderr);
}

/* FILE:LINE: warning: ..., on stderr like the errors. */
static void
ctl_rule_warning(void *arg, int line, const char *rule, const char *msg)
{
	(void)rule;
	fprintf(stderr, "%s:%d: warning: %s\n", (const char *)arg, line, msg);
}

/*
 * Does certificate `name` (its leaf, the first in CertificateFile) name
 * host?  -1 when the file cannot be read: the store reports that.
 */
static int
ctl_cert_names(const struct conf *c, const char *name, const char *host)
{
	const struct conf_certificate *ce = conf_certificate(c, name);
	FILE *fp;
	X509 *leaf;
	int ok;

	if (ce == NULL || (fp = fopen(ce->certificate_file, "r")) == NULL)
		return -1;
	leaf = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	if (leaf == NULL)
		return -1;
	ok = tls_name_matches(leaf, host);
	X509_free(leaf);
	return ok;
}

/*
 * Exchange accepts a connector whose Fqdn its certificate does not name;
 * clients that check names (DomainValidation, Domain Security, DANE's
 * peers) will then fail.  A warning at the Fqdn line.
 */
static int
ctl_check_fqdns(const struct conf *c, FILE *err)
{
	int warnings = 0;

	for (size_t i = 0; i < c->nreceive_connectors; i++) {
		const struct conf_receive_connector *rc =
		    &c->receive_connectors[i];

		if (!rc->enabled || rc->tls_certificate_name[0] == '\0' ||
		    ctl_cert_names(c, rc->tls_certificate_name, rc->fqdn) != 0)
			continue;
		conf_report(c, err, rc, "Fqdn",
		    "warning: Fqdn %s of receive connector \"%s\" is not a "
		    "name of its certificate %s; clients that check the name "
		    "will refuse it",
		    rc->fqdn, rc->name, rc->tls_certificate_name);
		warnings++;
	}
	for (size_t i = 0; i < c->nsend_connectors; i++) {
		const struct conf_send_connector *sc = &c->send_connectors[i];

		if (!sc->enabled || sc->tls_certificate_name[0] == '\0' ||
		    ctl_cert_names(c, sc->tls_certificate_name, sc->fqdn) != 0)
			continue;
		conf_report(c, err, sc, "Fqdn",
		    "warning: Fqdn %s of send connector \"%s\" is not a name "
		    "of its certificate %s; partners that check it (Domain "
		    "Security) will refuse it",
		    sc->fqdn, sc->name, sc->tls_certificate_name);
		warnings++;
	}
	return warnings;
}

int
ctl_config_check(struct ctl *ctl, int argc, char **argv)
{
	struct conf *c = conf_load_checked(ctl->conf_path, stderr);
	struct tls_store *tls;

	(void)argc;
	(void)argv;

	if (c == NULL)
		return 1;
	/* Valid, but probably not meant: the file still loads. */
	rule_lint(c->rules, c, ctl_rule_warning, (void *)(uintptr_t)c->path);
	/* Certificates and keys must load too, as sluiced will need them. */
	if ((tls = tls_store_new(c, stderr)) == NULL) {
		conf_free(c);
		return 1;
	}
	tls_store_describe(tls, stdout);
	tls_store_free(tls);
	ctl_check_fqdns(c, stderr);
	printf("%s: configuration OK\n", ctl->conf_path);
	conf_free(c);
	return 0;
}

int
ctl_config_dump(struct ctl *ctl, int argc, char **argv)
{
	struct conf *c = ctl_load(ctl);

	(void)argc;
	(void)argv;
	if (c == NULL)
		return 1;
	conf_dump_ini(c, stdout);
	conf_free(c);
	return 0;
}

int
ctl_get_transportconfig(struct ctl *ctl, int argc, char **argv)
{
	struct conf *c = ctl_load(ctl);

	(void)argc;
	(void)argv;
	if (c == NULL)
		return 1;
	conf_dump_transport(c, stdout);
	conf_free(c);
	return 0;
}

/*
 * The Get-X [NAME] pattern shared by the named sections: every object, or
 * the one named (case-insensitive), separated by blank lines.
 */
#define CTL_GET(fn, field, count, dump, what)                                  \
	int fn(struct ctl *ctl, int argc, char **argv)                         \
	{                                                                      \
		struct conf *c = ctl_load(ctl);                                \
		int found = 0;                                                 \
		if (c == NULL)                                                 \
			return 1;                                              \
		for (size_t i = 0; i < c->count; i++) {                        \
			if (argc > 0 &&                                        \
			    strcasecmp(c->field[i].name, argv[0]) != 0)        \
				continue;                                      \
			if (found++)                                           \
				putchar('\n');                                 \
			dump(&c->field[i], stdout);                            \
		}                                                              \
		conf_free(c);                                                  \
		if (argc > 0 && !found) {                                      \
			fprintf(stderr, "sluicectl: no %s named %s\n", what,   \
			    argv[0]);                                          \
			return 1;                                              \
		}                                                              \
		return 0;                                                      \
	}

CTL_GET(ctl_get_receiveconnector, receive_connectors, nreceive_connectors,
    conf_dump_receive_connector, "receive connector")
CTL_GET(ctl_get_sendconnector, send_connectors, nsend_connectors,
    conf_dump_send_connector, "send connector")
CTL_GET(ctl_get_accepteddomain, accepted_domains, naccepted_domains,
    conf_dump_accepted_domain, "accepted domain")
CTL_GET(ctl_get_certificate, certificates, ncertificates, conf_dump_certificate,
    "certificate")
