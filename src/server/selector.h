/*
 * selector.h - which receive connector serves a connection (SPEC 3,
 * "Receiving"): the one whose binding matches the local address and port
 * and whose RemoteIPRanges match the client most specifically.
 */
#ifndef SLUICE_SELECTOR_H
#define SLUICE_SELECTOR_H

#include <sys/socket.h>

#include "conf/conf.h"

/* NULL when no connector accepts this client on this address. */
const struct conf_receive_connector *selector_pick(const struct conf *,
    const struct sockaddr *local, const struct sockaddr *remote);

/* Does the binding cover this local address (wildcards included)? */
int selector_binding_matches(
    const struct conf_binding *, const struct sockaddr *local);

#endif
