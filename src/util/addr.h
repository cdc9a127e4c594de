/*
 * addr.h - a socket address as text, the one way Sluice writes it: in the
 * logs, the tracking log, the per-address counters and sluicectl.
 */
#ifndef SLUICE_ADDR_H
#define SLUICE_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* Enough for an address alone (INET6_ADDRSTRLEN), and for an endpoint
 * with its brackets and port. */
#define ADDR_IP_MAX 46
#define ADDR_TEXT_MAX 64

/*
 * The address alone: "192.0.2.1", "2001:db8::1".  An IPv4-mapped IPv6
 * address ("::ffff:192.0.2.1", what a dual-stack socket reports for an
 * IPv4 peer) is written as the IPv4 address it is.  "?" for a family
 * that is neither.
 */
void addr_ip(const struct sockaddr *, char *out, size_t len);
/* The port, in host order; 0 for a family that has none. */
unsigned addr_port(const struct sockaddr *);
/* The address and port: "192.0.2.1:25", "[2001:db8::1]:25". */
void addr_endpoint(const struct sockaddr *, char *out, size_t len);

#endif
