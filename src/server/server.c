/*
 * server.c - shared state of the receiving side: the configuration
 * swapped in whole on reload (listeners first) and connection counters.
 *
 * Counters are a small chained hash keyed by the client address (for
 * MaxInboundConnectionPerSource), by "connector:NAME" (for
 * MaxInboundConnection) or by the address's memory share (message bytes
 * held, per IPv4 address or IPv6 /64).  An entry is freed when its count
 * drops to zero, so the table holds at most one entry per open connection
 * and connector, and one per address holding a message.
 *
 * Descriptors are accounted here too: the soft RLIMIT_NOFILE is raised to
 * the hard one at start, and the number of inbound sessions is held below
 * what the descriptors allow beside the outbound connections, so that the
 * daemon answers a client it cannot serve instead of failing to accept.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "server/auth_pool.h"
#include "server/listener.h"
#include "server/server.h"
#include "util/addr.h"
#include "util/fnv.h"
#include "util/log.h"

#define SERVER_BUCKETS 4096
/* The soft descriptor limit is raised no further than this. */
#define SERVER_NOFILE_MAX ((rlim_t)1 << 20)

struct server_counter {
	struct server_counter *next;
	unsigned count;
	uint64_t bytes; /* memory entries: message bytes held */
	time_t window;  /* rate entries: start of the current minute */
	char key[];     /* "a:" address, "c:" connector, "m:" memory share */
};

static unsigned
server_hash(const char *key)
{
	return fnv_32_str(key) % SERVER_BUCKETS;
}

static void
server_key_addr(const struct sockaddr *sa, char *key, size_t len)
{
	char ip[ADDR_IP_MAX];

	addr_ip(sa, ip, sizeof(ip));
	snprintf(key, len, "a:%s", ip);
}

/* The memory share of an address: IPv4 as it is, IPv6 per /64. */
static void
server_key_share(const struct sockaddr *sa, char *key, size_t len)
{
	struct sockaddr_in6 s6;
	char ip[INET6_ADDRSTRLEN];

	if (sa->sa_family != AF_INET6 ||
	    IN6_IS_ADDR_V4MAPPED(
	        &((const struct sockaddr_in6 *)sa)->sin6_addr)) {
		server_key_addr(sa, key, len);
		key[0] = 'm';
		return;
	}
	memcpy(&s6, sa, sizeof(s6));
	memset(&s6.sin6_addr.s6_addr[8], 0, 8);
	inet_ntop(AF_INET6, &s6.sin6_addr, ip, sizeof(ip));
	snprintf(key, len, "m:%s/64", ip);
}

static struct server_counter **
server_bucket(struct server_counter ***table, const char *key)
{
	struct server_counter **cp;

	if (*table == NULL &&
	    (*table = calloc(SERVER_BUCKETS, sizeof(**table))) == NULL)
		log_fatal("out of memory");
	cp = &(*table)[server_hash(key)];
	while (*cp != NULL && strcmp((*cp)->key, key) != 0)
		cp = &(*cp)->next;
	return cp;
}

static struct server_counter **
server_find(struct server *srv, const char *key)
{
	return server_bucket(&srv->counters, key);
}

static unsigned
server_count(struct server *srv, const char *key)
{
	struct server_counter **cp = server_find(srv, key);

	return *cp != NULL ? (*cp)->count : 0;
}

static void
server_add(struct server *srv, const char *key, int delta)
{
	struct server_counter **cp = server_find(srv, key), *c = *cp;
	size_t len;

	if (c == NULL) {
		if (delta <= 0)
			log_panic("connection counter %s below zero", key);
		len = strlen(key) + 1;
		if ((c = calloc(1, sizeof(*c) + len)) == NULL)
			log_fatal("out of memory");
		memcpy(c->key, key, len);
		*cp = c;
	}
	if (delta < 0 && c->count < (unsigned)-delta)
		log_panic("connection counter %s below zero", key);
	c->count = (unsigned)((int)c->count + delta);
	if (c->count == 0) {
		*cp = c->next;
		free(c);
	}
}

unsigned
server_source_count(struct server *srv, const struct sockaddr *sa)
{
	char key[64];

	server_key_addr(sa, key, sizeof(key));
	return server_count(srv, key);
}

unsigned
server_connector_count(struct server *srv, const char *connector)
{
	char key[512];

	snprintf(key, sizeof(key), "c:%s", connector);
	return server_count(srv, key);
}

void
server_account(struct server *srv, const char *connector,
    const struct sockaddr *sa, int delta)
{
	char key[512];

	server_key_addr(sa, key, sizeof(key));
	server_add(srv, key, delta);
	snprintf(key, sizeof(key), "c:%s", connector);
	server_add(srv, key, delta);
}

/* Drop rate windows that ended; called when the table is full. */
static void
server_rate_sweep(struct server *srv, time_t now)
{
	for (size_t b = 0; b < SERVER_BUCKETS; b++) {
		struct server_counter **cp = &srv->rates[b];

		while (*cp != NULL) {
			if (now - (*cp)->window >= 60) {
				struct server_counter *dead = *cp;

				*cp = dead->next;
				free(dead);
				srv->nrates--;
			} else {
				cp = &(*cp)->next;
			}
		}
	}
}

int
server_rate_allow(struct server *srv, const char *connector,
    const struct sockaddr *sa, uint64_t limit)
{
	struct server_counter **cp, *c;
	char key[600], addr[64];
	time_t now = time(NULL);
	size_t len;

	if (limit == SIZE_UNLIMITED)
		return 1;
	server_key_addr(sa, addr, sizeof(addr));
	snprintf(key, sizeof(key), "r:%s:%s", connector, addr);
	cp = server_bucket(&srv->rates, key);
	if ((c = *cp) == NULL) {
		if (srv->nrates >= SERVER_RATE_MAX)
			server_rate_sweep(srv, now);
		if (srv->nrates >= SERVER_RATE_MAX)
			return 1;
		len = strlen(key) + 1;
		if ((c = calloc(1, sizeof(*c) + len)) == NULL)
			return 1;
		memcpy(c->key, key, len);
		c->window = now;
		*cp = c;
		srv->nrates++;
	}
	if (now - c->window >= 60) {
		c->window = now;
		c->count = 0;
	}
	if (c->count >= limit)
		return 0;
	c->count++;
	return 1;
}

void
server_rate_forgive(
    struct server *srv, const char *connector, const struct sockaddr *sa)
{
	struct server_counter **cp;
	char key[600], addr[64];

	server_key_addr(sa, addr, sizeof(addr));
	snprintf(key, sizeof(key), "r:%s:%s", connector, addr);
	cp = server_bucket(&srv->rates, key);
	if (*cp != NULL && (*cp)->count > 0)
		(*cp)->count--;
}

static size_t
server_memory_max(const struct server *srv)
{
	return srv->memory_max != 0 ? srv->memory_max : SERVER_MEMORY_MAX;
}

int
server_memory_room(struct server *srv, const struct sockaddr *sa)
{
	struct server_counter **cp;
	char key[80];

	if (srv->memory_used >= server_memory_max(srv))
		return 0;
	server_key_share(sa, key, sizeof(key));
	cp = server_find(srv, key);
	return *cp == NULL ||
	       (*cp)->bytes < server_memory_max(srv) / SERVER_MEMORY_SHARES;
}

int
server_memory_charge(
    struct server *srv, const struct sockaddr *sa, long long delta)
{
	struct server_counter **cp, *c;
	char key[80];
	size_t len;
	int over;

	if (delta == 0)
		return 0;
	server_key_share(sa, key, sizeof(key));
	cp = server_find(srv, key);
	if ((c = *cp) == NULL) {
		if (delta < 0)
			log_panic("memory share %s below zero", key);
		len = strlen(key) + 1;
		if ((c = calloc(1, sizeof(*c) + len)) == NULL)
			log_fatal("out of memory");
		memcpy(c->key, key, len);
		*cp = c;
	}
	if (delta < 0 &&
	    (c->bytes < (uint64_t)-delta || srv->memory_used < (size_t)-delta))
		log_panic("memory share %s below zero", key);
	c->bytes = (uint64_t)((long long)c->bytes + delta);
	srv->memory_used = (size_t)((long long)srv->memory_used + delta);
	over = c->bytes > server_memory_max(srv) / SERVER_MEMORY_SHARES ||
	       srv->memory_used > server_memory_max(srv);
	if (c->bytes == 0) {
		*cp = c->next;
		free(c);
	}
	return over ? -1 : 0;
}

void
server_raise_nofile(struct server *srv)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_warn("getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		return;
	}
	if (rl.rlim_cur < rl.rlim_max && rl.rlim_cur < SERVER_NOFILE_MAX) {
		rlim_t was = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max < SERVER_NOFILE_MAX
		                  ? rl.rlim_max
		                  : SERVER_NOFILE_MAX;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			log_warn("cannot raise the descriptor limit from %llu "
			         "to %llu: %s",
			    (unsigned long long)was,
			    (unsigned long long)rl.rlim_cur, strerror(errno));
			rl.rlim_cur = was;
		}
	}
	srv->fd_limit = (size_t)rl.rlim_cur;
	log_info("descriptor limit %zu", srv->fd_limit);
}

void
server_fd_limits(struct server *srv, const struct conf *conf)
{
	size_t other = SERVER_FD_RESERVE +
	               (size_t)conf->transport.max_outbound_connections;
	size_t want = 0;

	if (srv->fd_limit == 0) {
		srv->session_limit = 0; /* not measured: no limit of ours */
		return;
	}
	for (size_t i = 0; i < conf->nreceive_connectors; i++)
		want += conf->receive_connectors[i].max_inbound_connection;
	/* Never less than half: inbound mail matters more than outbound. */
	srv->session_limit = srv->fd_limit > 2 * other ? srv->fd_limit - other
	                                               : srv->fd_limit / 2;
	if (want > srv->session_limit)
		log_warn("the descriptor limit (%zu) leaves room for %zu "
		         "inbound connections beside %u outbound ones "
		         "(MaxOutboundConnections), fewer than the receive "
		         "connectors' MaxInboundConnection allow in all (%zu); "
		         "more clients get 421 4.3.2; raise the hard limit "
		         "(LimitNOFILE=) to serve them",
		    srv->fd_limit, srv->session_limit,
		    conf->transport.max_outbound_connections, want);
}

void
server_session_done(struct server *srv)
{
	srv->nsessions--;
	/* A descriptor was freed: accepting may work again. */
	if (srv->accept_paused)
		listener_resume(srv);
}

int
server_listen(struct server *srv, const struct conf *conf, const char **why)
{
	if (listener_sync(srv, conf, why) < 0) {
		listener_rollback(srv);
		return -1;
	}
	listener_commit(srv);
	return 0;
}

int
server_reload(struct server *srv, struct conf *conf, struct tls_store *tls,
    const char **why)
{
	struct conf_ref *ref;

	if ((ref = calloc(1, sizeof(*ref))) == NULL) {
		*why = "out of memory";
		return -1;
	}
	if (server_listen(srv, conf, why) < 0) {
		free(ref);
		return -1;
	}
	server_fd_limits(srv, conf);
	ref->conf = conf;
	ref->tls = tls;
	ref->refs = 1;
	if (srv->daemon->conf != NULL)
		daemon_conf_release(srv->daemon->conf);
	srv->daemon->conf = ref;
	return 0;
}

void
server_close_listeners(struct server *srv)
{
	listener_close_all(srv);
}

static void
server_free_table(struct server_counter **table)
{
	if (table == NULL)
		return;
	for (size_t b = 0; b < SERVER_BUCKETS; b++) {
		while (table[b] != NULL) {
			struct server_counter *c = table[b];

			table[b] = c->next;
			free(c);
		}
	}
	free(table);
}

void
server_free_tables(struct server *srv)
{
	auth_pool_free(srv->auth_pool);
	srv->auth_pool = NULL;
	server_free_table(srv->counters);
	server_free_table(srv->rates);
	srv->counters = srv->rates = NULL;
	srv->nrates = 0;
}
