/*
 * tls_client.c - outbound TLS for the SMTP client (see tls_client.h).
 *
 * Where it sits: the delivery side builds one tls_client per
 * configuration; each connection to a next hop gets an SSL from
 * tls_client_ssl() after the server's 220 to STARTTLS, and is judged by
 * tls_client_check() against the send connector's TlsAuthLevel (SPEC 3,
 * "TLS per send connector") before anything else is sent.
 *
 * Every level verifies the chain the same way (SSL_VERIFY_PEER with
 * tls_peer_verify_cb, which lets the handshake complete): opportunistic
 * and EncryptionOnly connections log what they would have found, and the
 * decision is one pure function for all levels.  Like the server: TLS 1.2
 * minimum (RFC 8996), AEAD ciphers, no renegotiation, no compression.
 *
 * Session cache: RFC 5077/8446 resumption saves a full handshake per
 * connection to a busy next hop.  Sessions are kept here, not in
 * OpenSSL's internal client cache (which never looks anything up), keyed
 * by host, port, our certificate and the trust anchors, so a session is
 * only offered to the same next hop under the same identity.  A resumed
 * session carries the server certificate and its verify result, so policy
 * judges a resumed connection exactly like the first one.  The cache is
 * direct-mapped and bounded (TLS_CLIENT_CACHE_SLOTS); a collision only
 * costs a full handshake.  TLS 1.3 tickets are taken out when used (RFC
 * 8446 C.4: single use), so a slot keeps the last TLS_CLIENT_TICKETS of
 * them (a server sends two per handshake): when a queue opens many
 * connections to one next hop at once, each can resume with a ticket of
 * its own.  TLS 1.2 sessions stay until they expire.
 *
 * Invariants: the cache has a mutex (delivery may run on several event
 * loops); every SSL from here has its cache key in ex_data, freed with it.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls/tls_client.h"
#include "tls/tls_peer.h"
#include "tls/tls_trust.h"
#include "util/fnv.h"

/* Next hops whose sessions are kept; each is a few KB with its chain. */
#define TLS_CLIENT_CACHE_SLOTS 1024

/*
 * Longest a session is offered, in seconds, whatever the server allows:
 * a resumed session keeps the verdict of its first handshake, so this
 * bounds how long a new CRL or CA change goes unnoticed for a next hop.
 */
#define TLS_CLIENT_SESSION_LIFETIME 3600

/* Cache key: host (253), port, certificate name, trust: bounded. */
#define TLS_CLIENT_KEY_MAX 400

/* Tickets kept per next hop (a queue opens up to 20 connections). */
#define TLS_CLIENT_TICKETS 16

struct tls_client_slot {
	char *key;
	SSL_SESSION *sess[TLS_CLIENT_TICKETS]; /* oldest first */
	size_t n;
};

struct tls_client {
	SSL_CTX *ctx;
	X509_STORE *trust;        /* TrustedCAFile (+ CRLs) */
	X509_STORE *secure_trust; /* + the Domain Security CAs; or NULL */
	pthread_mutex_t lock;     /* guards slots */
	struct tls_client_slot slots[TLS_CLIENT_CACHE_SLOTS];
};

/* SSL ex_data slot: the connection's cache key (malloc'd). */
static int tls_client_key_slot = -1;
static pthread_once_t tls_client_once = PTHREAD_ONCE_INIT;

static void
tls_client_key_free(
    void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	free(ptr);
}

static void
tls_client_init(void)
{
	tls_client_key_slot =
	    SSL_get_ex_new_index(0, NULL, NULL, NULL, tls_client_key_free);
}

static int
tls_client_empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

static void
tls_client_report(FILE *err, const char *file, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;

	if (err != NULL)
		fprintf(err, "%s: %s%s%s\n", file, what,
		    reason != NULL ? ": " : "", reason != NULL ? reason : "");
	ERR_clear_error();
}

static unsigned
tls_client_hash(const char *key)
{
	return fnv_32_str(key) % TLS_CLIENT_CACHE_SLOTS;
}

static void
tls_client_slot_clear(struct tls_client_slot *s)
{
	free(s->key);
	for (size_t i = 0; i < s->n; i++)
		SSL_SESSION_free(s->sess[i]);
	s->key = NULL;
	s->n = 0;
}

/* Take session i out of the slot (the caller owns its reference). */
static SSL_SESSION *
tls_client_slot_take(struct tls_client_slot *s, size_t i)
{
	SSL_SESSION *sess = s->sess[i];

	memmove(
	    &s->sess[i], &s->sess[i + 1], (s->n - i - 1) * sizeof(*s->sess));
	s->n--;
	return sess;
}

/* OpenSSL hands over each new session (TLS 1.3: each ticket). */
static int
tls_client_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_client *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	const char *key = SSL_get_ex_data(ssl, tls_client_key_slot);
	struct tls_client_slot *s;
	char *copy;

	if (c == NULL || key == NULL || !SSL_SESSION_is_resumable(sess) ||
	    (copy = strdup(key)) == NULL)
		return 0; /* not kept: OpenSSL frees it */
	pthread_mutex_lock(&c->lock);
	s = &c->slots[tls_client_hash(key)];
	if (s->key == NULL || strcmp(s->key, key) != 0) {
		tls_client_slot_clear(s); /* another next hop: replaced */
		s->key = copy;
	} else {
		free(copy);
	}
	if (s->n == TLS_CLIENT_TICKETS)
		SSL_SESSION_free(tls_client_slot_take(s, 0)); /* the oldest */
	s->sess[s->n++] = sess;
	pthread_mutex_unlock(&c->lock);
	return 1; /* the cache owns the reference now */
}

struct tls_client *
tls_client_new(const struct tls_client_params *p, FILE *err)
{
	struct tls_client *c = calloc(1, sizeof(*c));
	const char *ciphers =
	    tls_client_empty(p->ciphers) ? TLS_STORE_CIPHERS : p->ciphers;
	const char *suites = tls_client_empty(p->ciphersuites)
	                         ? TLS_STORE_CIPHERSUITES
	                         : p->ciphersuites;

	pthread_once(&tls_client_once, tls_client_init);
	if (c == NULL || tls_client_key_slot < 0) {
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	if ((c->ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		tls_client_report(err, "TLS client", "cannot create a context");
		goto fail;
	}
	SSL_CTX_set_app_data(c->ctx, c);
	SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(
	    c->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(c->ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_cipher_list(c->ctx, ciphers) != 1 ||
	    SSL_CTX_set_ciphersuites(c->ctx, suites) != 1) {
		tls_client_report(err, "TlsCiphers/TlsCipherSuites",
		    "selects no usable cipher");
		goto fail;
	}
	SSL_CTX_set_session_cache_mode(
	    c->ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(c->ctx, tls_client_new_session);
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, tls_peer_verify_cb);
	/* Ready for DANE (RFC 7672): SSL_dane_enable() per connection. */
	if (SSL_CTX_dane_enable(c->ctx) <= 0) {
		tls_client_report(err, "TLS client", "cannot enable DANE");
		goto fail;
	}
	if ((c->trust = tls_trust_build(
	         p->trusted_ca_file, NULL, p->crl_file, err)) == NULL)
		goto fail;
	SSL_CTX_set1_cert_store(c->ctx, c->trust);
	if (!tls_client_empty(p->domain_secure_ca_file) &&
	    (c->secure_trust = tls_trust_build(p->trusted_ca_file,
	         p->domain_secure_ca_file, p->crl_file, err)) == NULL)
		goto fail;
	return c;
fail:
	tls_client_free(c);
	return NULL;
}

struct tls_client *
tls_client_from_conf(const struct conf *conf, FILE *err)
{
	const struct conf_transport *t = &conf->transport;
	struct tls_client_params p = {
	    .trusted_ca_file = t->trusted_ca_file,
	    .crl_file = t->crl_file,
	    .ciphers = t->tls_ciphers,
	    .ciphersuites = t->tls_ciphersuites,
	};

	return tls_client_new(&p, err);
}

void
tls_client_free(struct tls_client *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < TLS_CLIENT_CACHE_SLOTS; i++)
		tls_client_slot_clear(&c->slots[i]);
	SSL_CTX_free(c->ctx);
	X509_STORE_free(c->trust);
	X509_STORE_free(c->secure_trust);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Offer the cached session of this key, if it is still good. */
static void
tls_client_resume(struct tls_client *c, SSL *ssl, const char *key)
{
	struct tls_client_slot *s;
	time_t now = time(NULL);

	pthread_mutex_lock(&c->lock);
	s = &c->slots[tls_client_hash(key)];
	/* The newest good session; expired ones are dropped on the way. */
	while (s->key != NULL && strcmp(s->key, key) == 0 && s->n > 0) {
		SSL_SESSION *sess = s->sess[s->n - 1];
		time_t born = (time_t)SSL_SESSION_get_time(sess);
		long life = SSL_SESSION_get_timeout(sess);

		if (life > TLS_CLIENT_SESSION_LIFETIME)
			life = TLS_CLIENT_SESSION_LIFETIME;
		if (now - born >= life || !SSL_SESSION_is_resumable(sess)) {
			SSL_SESSION_free(tls_client_slot_take(s, s->n - 1));
			continue;
		}
		if (SSL_set_session(ssl, sess) == 1 &&
		    SSL_SESSION_get_protocol_version(sess) >= TLS1_3_VERSION)
			/* tickets are single use */
			SSL_SESSION_free(tls_client_slot_take(s, s->n - 1));
		break;
	}
	pthread_mutex_unlock(&c->lock);
}

SSL *
tls_client_ssl(struct tls_client *c, const struct tls_client_target *t,
    const struct tls_store *certs, const char **why)
{
	char key[TLS_CLIENT_KEY_MAX], *kcopy;
	unsigned char addr[4];
	int literal, n;
	SSL *ssl;

	*why = NULL;
	if (t->host == NULL || t->host[0] == '\0') {
		*why = "no next hop name";
		return NULL;
	}
	if ((ssl = SSL_new(c->ctx)) == NULL) {
		ERR_clear_error();
		*why = "cannot create a TLS connection";
		return NULL;
	}
	if (!tls_client_empty(t->cert_name) &&
	    (certs == NULL ||
	        tls_store_use_cert(certs, t->cert_name, ssl) < 0)) {
		*why = "TlsCertificateName names no loaded certificate";
		goto fail;
	}
	if (t->domain_secure && c->secure_trust != NULL &&
	    SSL_set1_verify_cert_store(ssl, c->secure_trust) != 1) {
		*why = "cannot set the Domain Security trust anchors";
		goto fail;
	}
	/* RFC 6066 3: SNI carries host names only, never an address. */
	literal = t->host[0] == '[' || !tls_name_valid(t->host) ||
	          inet_pton(AF_INET, t->host, addr) == 1;
	if (!literal) {
		char host[TLS_NAME_MAX + 2];
		size_t len = strlen(t->host);

		memcpy(host, t->host, len + 1);
		if (host[len - 1] == '.')
			host[len - 1] = '\0';
		if (SSL_set_tlsext_host_name(ssl, host) != 1) {
			*why = "cannot set the server name (SNI)";
			goto fail;
		}
	}
	n = snprintf(key, sizeof(key), "%s:%u/%s/%s%s%s", t->host, t->port,
	    tls_client_empty(t->cert_name) ? "-" : t->cert_name,
	    t->domain_secure ? "secure" : "default",
	    tls_client_empty(t->dane) ? "" : "/", t->dane ? t->dane : "");
	/* A key that does not fit is not cached rather than truncated. */
	if (n > 0 && (size_t)n < sizeof(key)) {
		for (char *p = key; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		if ((kcopy = strdup(key)) != NULL) {
			if (SSL_set_ex_data(ssl, tls_client_key_slot, kcopy) ==
			    1)
				tls_client_resume(c, ssl, key);
			else
				free(kcopy);
		}
	}
	return ssl;
fail:
	ERR_clear_error();
	SSL_free(ssl);
	return NULL;
}

void
tls_client_done(SSL *ssl, int handshake_ok)
{
	struct tls_client *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	const char *key = SSL_get_ex_data(ssl, tls_client_key_slot);
	struct tls_client_slot *s;

	if (handshake_ok || c == NULL || key == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	s = &c->slots[tls_client_hash(key)];
	if (s->key != NULL && strcmp(s->key, key) == 0)
		tls_client_slot_clear(s);
	pthread_mutex_unlock(&c->lock);
}

enum tls_check
tls_client_check(SSL *ssl, int handshake_ok, enum tls_auth_level level,
    const char *tls_domain, const char *domain, char *why, size_t whylen)
{
	struct tls_outcome o;

	tls_peer_outcome(ssl, handshake_ok, &o);
	return tls_evaluate(level, &o, tls_domain, domain, why, whylen);
}

size_t
tls_client_cached(struct tls_client *c)
{
	size_t n = 0;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < TLS_CLIENT_CACHE_SLOTS; i++)
		n += c->slots[i].n > 0;
	pthread_mutex_unlock(&c->lock);
	return n;
}
