/*
 * conf_local.c - the connector local submissions are served by.
 *
 * A local submission comes from a program on this machine (cron, mail(1),
 * monitoring) through sluice-sendmail.  The kernel tells who it is
 * (SO_PEERCRED), so it is treated like mail from an internal server
 * (ExternalAuthoritative with ExchangeServers: it may relay, as Postfix's
 * sendmail may) and offered neither TLS nor AUTH, which would add nothing
 * on a local socket.  Every other value is a receive connector's default
 * from the key table, so limits such as MaxRecipientsPerMessage apply as
 * they would on a fresh connector; MaxMessageSize is MaxReceiveSize, no
 * tarpit slows down local programs, and the per-source limit, which would
 * count every local user as one source, is the connector's total.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf_keys.h"
#include "conf/conf_local.h"

int
conf_local_connector(struct conf *c)
{
	const struct conf_section_desc *d = &conf_sections[CONF_SEC_RECEIVE];
	struct conf_receive_connector *rc = &c->local_submission;
	char host[256], bad[256];
	const char *why;

	memset(rc, 0, sizeof(*rc));
	for (size_t i = 0; i < d->nkeys; i++)
		if (d->keys[i].def != NULL &&
		    conf_key_parse(&d->keys[i], rc, d->keys[i].def, NULL, &why,
		        bad, sizeof(bad)) < 0)
			return -1;
	if (c->nreceive_connectors > 0) {
		snprintf(
		    host, sizeof(host), "%s", c->receive_connectors[0].fqdn);
	} else if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0') {
		snprintf(host, sizeof(host), "localhost");
	}
	host[sizeof(host) - 1] = '\0';
	rc->auth_mechanism = AUTHM_EXTERNAL_AUTHORITATIVE;
	rc->permission_groups = PERM_EXCHANGE_SERVERS;
	rc->max_message_size = c->transport.max_receive_size;
	rc->tarpit_interval = 0;
	rc->max_inbound_connection_per_source = rc->max_inbound_connection;
	rc->protocol_logging_level = PROTOLOG_NONE;
	if ((rc->name = strdup(CONF_LOCAL_CONNECTOR)) == NULL ||
	    (rc->fqdn = strdup(host)) == NULL ||
	    asprintf(&rc->banner, "220 %s Sluice local submission ready",
	        host) < 0) {
		rc->banner = NULL;
		return -1;
	}
	return 0;
}

void
conf_local_connector_free(struct conf *c)
{
	const struct conf_section_desc *d = &conf_sections[CONF_SEC_RECEIVE];
	struct conf_receive_connector *rc = &c->local_submission;

	for (size_t i = 0; i < d->nkeys; i++)
		conf_key_free(&d->keys[i], rc);
	free(rc->name);
	rc->name = NULL;
}
