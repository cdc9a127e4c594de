/*
 * daemon.c - the daemon's context (see daemon.h): the reference counting
 * of configurations.  A configuration owns what was made for it (its
 * certificates, the outbound TLS context, the sessions' resolver), so
 * they go when its last user is done, never under a connection that
 * still uses them.
 */
#include <stdlib.h>

#include "conf/conf.h"
#include "daemon/daemon.h"
#include "dns/resolver.h"
#include "tls/tls_client.h"
#include "tls/tls_store.h"

struct conf_ref *
daemon_conf_acquire(struct daemon *d)
{
	d->conf->refs++;
	return d->conf;
}

void
daemon_conf_release(struct conf_ref *ref)
{
	if (--ref->refs > 0)
		return;
	resolver_free(ref->resolver);
	tls_client_free(ref->tls_client);
	tls_store_free(ref->tls);
	conf_free(ref->conf);
	free(ref);
}
