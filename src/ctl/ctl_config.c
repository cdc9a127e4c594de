/*
 * ctl_config.c - sluicectl commands that read the configuration file:
 * check it, dump it, and show objects the way Exchange's Get-* cmdlets
 * piped to Format-List do.  They never talk to the running daemon.
 */
#include <stdint.h>
#include <stdio.h>
#include <strings.h>

#include "conf/conf.h"
#include "ctl/ctl.h"
#include "rules/rules.h"
#include "tls/tls_store.h"

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

int
ctl_config_check(struct ctl *ctl, int argc, char **argv)
{
	struct conf *c = ctl_load(ctl);
	struct tls_store *tls;

	(void)argc;
	(void)argv;

	if (c == NULL)
		return 1;
	/* Valid, but probably not meant: the file still loads. */
	rule_lint(
	    c->rules, c, ctl_rule_warning, (void *)(uintptr_t)ctl->conf_path);
	/* Certificates and keys must load too, as sluiced will need them. */
	if ((tls = tls_store_new(c, stderr)) == NULL) {
		conf_free(c);
		return 1;
	}
	tls_store_describe(tls, stdout);
	tls_store_free(tls);
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
