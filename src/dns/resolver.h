/*
 * resolver.h - asynchronous next-hop resolution over libunbound, driven by
 * the daemon's libevent loop.
 *
 * A destination domain becomes the ordered list of addresses the SMTP
 * client tries (RFC 5321 section 5.1): MX hosts by preference, in random
 * order among equal preferences; each host's addresses (AAAA and A) in
 * turn; the domain's own addresses when it has no MX (implicit MX); and
 * a null MX (RFC 7505, "MX 0 .") is a permanent failure at once.  Smart
 * hosts are resolved in the order configured.
 *
 * With a trust anchor (resolver_new_dnssec) every answer is validated by
 * libunbound, and results say what DNSSEC proved: the MX RRset and each
 * hop's address record are secure or insecure (RFC 7672 2.1), and a
 * bogus answer is a temporary failure, never data.  resolver_lookup()
 * asks one question of any type (TLSA, TXT) with the same guarantees.
 */
#ifndef SLUICE_RESOLVER_H
#define SLUICE_RESOLVER_H

#include <stddef.h>
#include <sys/socket.h>

#include "conf/conf.h"

struct event_base;
struct resolver;

/* Addresses tried for one destination, at most (Postfix tries 5 MX hosts). */
#define RESOLVER_HOPS_MAX 16

enum resolver_status {
	RESOLVER_OK,       /* hops[] holds at least one address */
	RESOLVER_TEMPFAIL, /* SERVFAIL, timeout, no address yet: retry later */
	RESOLVER_PERMFAIL, /* NXDOMAIN, no MX and no address: bounce (5.1.2) */
	RESOLVER_NULLMX,   /* the domain accepts no mail (RFC 7505): 5.1.10 */
};

struct resolver_hop {
	char host[256]; /* MX or smart host name (SNI, TLS checks, logs);
	                 * the address in text for address literals */
	unsigned pref;  /* MX preference; 0 for implicit MX and smart hosts */
	struct sockaddr_storage addr; /* port already set */
	socklen_t addrlen;
	/*
	 * DNSSEC: the address record this hop came from was validated
	 * (0 for address literals and without a trust anchor), and the
	 * host's name after CNAMEs when it had any ("" otherwise): RFC 7672
	 * 2.2.2 looks for TLSA records there first.
	 */
	int secure;
	char canon[256];
};

struct resolver_result {
	enum resolver_status status;
	char why[256]; /* for logs and DSNs when status is not OK */
	/* The MX RRset (or the proof there is none, for an implicit MX)
	 * was validated; 0 for smart hosts. */
	int mx_secure;
	size_t nhops;
	struct resolver_hop hops[RESOLVER_HOPS_MAX];
};

/* The callback runs on the event loop, never inside the call that asked. */
typedef void (*resolver_fn)(void *arg, const struct resolver_result *);

/*
 * spec is the [Transport] Resolver value: "system" (resolv.conf and
 * /etc/hosts) or "ADDR@PORT" (a DNS server, e.g. a test unbound on
 * loopback).  NULL with *why set on failure.
 */
struct resolver *resolver_new(
    struct event_base *, const char *spec, const char **why);
/*
 * The same, validating with the DS or DNSKEY records of anchor_file
 * ([Transport] DnssecTrustAnchorFile; NULL or "" for no validation).
 * With a named server (ADDR@PORT), RFC 6761 "test." is insecure unless
 * the file holds an anchor below it: it cannot be signed from the root.
 */
struct resolver *resolver_new_dnssec(struct event_base *, const char *spec,
    const char *anchor_file, const char **why);
/* Does this resolver validate (was it given a trust anchor)? */
int resolver_validates(const struct resolver *);
/* Outstanding queries are cancelled; their callbacks never run. */
void resolver_free(struct resolver *);

/* Next hops of a mail domain (lower case, no trailing dot). */
int resolver_mx(struct resolver *, const char *domain, unsigned port,
    resolver_fn, void *arg);
/*
 * Next hops of a smart host list, in order: names are resolved (AAAA and
 * A), address literals used as they are; a host without its own port uses
 * default_port.
 */
int resolver_smarthosts(struct resolver *, const struct conf_smarthost *,
    size_t n, unsigned default_port, resolver_fn, void *arg);

/*
 * The verified reverse name of a client (forward-confirmed reverse DNS):
 * the PTR names of its address, each looked up again (A for an IPv4
 * client, AAAA for IPv6), and the first whose addresses include the
 * client's is the answer.  name is NULL when there is none, when a look-up
 * failed, or after RESOLVER_PTR_TIMEOUT_SEC.  The callback runs on the
 * event loop, never inside resolver_ptr().
 */
typedef void (*resolver_ptr_fn)(void *arg, const char *name);
struct resolver_ptr;

/* Short: the answer is only used if it is there when a message starts. */
#define RESOLVER_PTR_TIMEOUT_SEC 10

/* NULL (and no callback) when the look-up cannot start. */
struct resolver_ptr *resolver_ptr(
    struct resolver *, const struct sockaddr *, resolver_ptr_fn, void *arg);
/* The asker is going away: the callback will not run; p is freed. */
void resolver_ptr_cancel(struct resolver *, struct resolver_ptr *p);

/*
 * The reverse look-up name of an address: "4.3.2.1.in-addr.arpa" or the
 * 32 nibbles under "ip6.arpa" (RFC 3596); a v4-mapped IPv6 address is
 * its IPv4 address.  -1 for another family or a short buffer.
 */
int resolver_reverse_name(const struct sockaddr *, char *out, size_t len);

/*
 * One question of any type, for TLSA and TXT records.  The callback runs
 * on the event loop, never inside resolver_lookup(), exactly once unless
 * the look-up is cancelled first; the handle is gone after the callback
 * (do not cancel it then).  resolver_free() ends every look-up silently.
 */
enum resolver_answer_status {
	RESOLVER_ANSWER_DATA,     /* records of the type asked */
	RESOLVER_ANSWER_NODATA,   /* the name exists, without that type */
	RESOLVER_ANSWER_NXDOMAIN, /* the name does not exist */
	RESOLVER_ANSWER_BOGUS,    /* DNSSEC validation failed */
	RESOLVER_ANSWER_TEMPFAIL, /* SERVFAIL, timeout, ...: ask again later */
};

struct resolver_answer {
	enum resolver_answer_status status;
	/* DATA, NODATA and NXDOMAIN were validated (RFC 4035 "secure") */
	int secure;
	const char *name;  /* as asked */
	const char *canon; /* after CNAMEs; equal to name without any */
	size_t n;          /* records, at most RESOLVER_ANSWER_RR_MAX */
	const unsigned char *const *data; /* RDATA of each record */
	const size_t *len;
	unsigned ttl;
	const char *why; /* BOGUS and TEMPFAIL: for logs and DSNs */
};

#define RESOLVER_ANSWER_RR_MAX 64

typedef void (*resolver_answer_fn)(void *arg, const struct resolver_answer *);
struct resolver_lookup;

/* NULL when it cannot even start (bad name, too many queries). */
struct resolver_lookup *resolver_lookup(struct resolver *, const char *name,
    int rrtype, resolver_answer_fn, void *arg);
void resolver_lookup_cancel(struct resolver_lookup *);

/*
 * The pure steps of MX handling, exported for the unit tests.
 *
 * resolver_mx_parse reads one MX RDATA as libunbound hands it over
 * (preference, then an uncompressed wire-format name).  It returns -1 for
 * anything that is not a usable host name: truncated or overlong data,
 * compression pointers, labels over 63 octets, names over 253 characters,
 * characters other than letters, digits and hyphens, and address literals
 * in disguise (an all-numeric last label, "192.0.2.1").  The root name
 * (null MX) parses to host "".  The host comes out in lower case.
 *
 * resolver_mx_order sorts by preference, shuffles each run of equal
 * preference with rnd (which returns a number below bound) and drops
 * repeated hosts, keeping the most preferred; it returns the new count.
 */
struct resolver_mx {
	unsigned pref;
	char host[256];
};

int resolver_mx_parse(
    const unsigned char *rdata, size_t len, struct resolver_mx *out);
size_t resolver_mx_order(struct resolver_mx *, size_t n,
    unsigned (*rnd)(void *arg, unsigned bound), void *arg);

#endif
