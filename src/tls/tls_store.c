/*
 * tls_store.c - server certificates and contexts (see tls_store.h).
 *
 * Where it sits: built with each configuration (start, SIGHUP, or when a
 * watched file changes); the listener's sessions ask it for an SSL at
 * STARTTLS; the SMTP client borrows its certificates for mutual TLS.
 *
 * Every context is TLS 1.2 or 1.3 only (RFC 8996 retired 1.0 and 1.1),
 * with forward-secret AEAD ciphers (TlsCiphers, TlsCipherSuites), no
 * renegotiation, no compression, server cipher preference and session
 * tickets.  SSL_MODE_RELEASE_BUFFERS lets an idle connection give its
 * record buffers back, which is most of the memory of an idle session.
 *
 * SNI (RFC 6066 3): the client's server name is matched against each
 * loaded certificate with the RFC 9525 rules used for peers
 * (tls_name_matches).  An exact name beats a wildcard; among equals the
 * connector's own certificate wins, then configuration order; without a
 * match the connector's certificate serves.
 *
 * Trust for client certificates: one X509_STORE per store (tls_trust.c),
 * shared by all its contexts (TrustedCAFile, the optional client CA file,
 * the CRLs), so a big CA bundle is parsed once, not once per certificate.
 *
 * Invariants: a store never changes after tls_store_build(); it lives
 * while the configuration or any SSL made from it holds a reference; the
 * SNI callback's argument is the store itself, kept alive by the SSL's
 * reference.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls/tls_store.h"
#include "tls/tls_trust.h"

/*
 * Server-side session cache (TLS 1.2 session IDs) per context: enough for
 * the MTAs that reconnect within the lifetime, bounded in memory (a
 * session with a client certificate is a few KB).
 */
#define TLS_STORE_SESSION_CACHE 4096

/*
 * How long a session may be resumed, in seconds.  A resumed session
 * keeps the client certificate verdict of its first handshake, so this
 * bounds how long a revocation published in a new CRL can go unnoticed
 * on a connection that resumes (a reload starts new contexts and ends
 * resumption at once).
 */
#define TLS_STORE_SESSION_LIFETIME 3600

/* Session ID context: sessions resume only in Sluice's own contexts. */
static const unsigned char tls_store_sid[] = "sluice";

struct tls_file {
	char *path;
	struct stat st;
};

struct tls_cert {
	char *name;
	SSL_CTX *ctx;
	X509 *leaf; /* the context's certificate, one reference */
};

struct tls_store {
	atomic_uint refs;
	struct tls_cert *certs;
	size_t ncerts;
	struct tls_file *files; /* everything the store was built from */
	size_t nfiles;
	X509_STORE *trust; /* shared by every context; NULL without certs */
	STACK_OF(X509_NAME) * ca_names; /* listed in certificate requests */
};

/* SSL ex_data slot: the store an SSL was made from (one reference). */
static int tls_store_slot = -1;
static pthread_once_t tls_store_once = PTHREAD_ONCE_INIT;

static void
tls_store_ssl_free(
    void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (ptr != NULL)
		tls_store_unref(ptr);
}

static void
tls_store_init(void)
{
	tls_store_slot =
	    SSL_get_ex_new_index(0, NULL, NULL, NULL, tls_store_ssl_free);
}

static int
tls_store_empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

/*
 * "FILE: what: OpenSSL's reason ([Certificate NAME])".  The reason is
 * the first error on OpenSSL's queue, the root cause that says what is
 * wrong with the file ("no start line", "bad decrypt"), not the wrapper
 * the SSL library adds ("PEM lib").
 */
static void
tls_store_report(
    FILE *err, const char *file, const char *what, const char *section)
{
	unsigned long e = ERR_peek_error();
	const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;

	if (err != NULL)
		fprintf(err, "%s: %s%s%s%s%s%s\n", file, what,
		    reason != NULL ? ": " : "", reason != NULL ? reason : "",
		    section != NULL ? " ([Certificate " : "",
		    section != NULL ? section : "",
		    section != NULL ? "])" : "");
	ERR_clear_error();
}

/* A file must exist and be readable before OpenSSL is asked to parse it. */
static int
tls_store_readable(FILE *err, const char *file, const char *section)
{
	FILE *fp = fopen(file, "r");

	if (fp != NULL) {
		fclose(fp);
		return 1;
	}
	if (err != NULL)
		fprintf(err, "%s: %s%s%s%s\n", file, strerror(errno),
		    section != NULL ? " ([Certificate " : "",
		    section != NULL ? section : "",
		    section != NULL ? "])" : "");
	return 0;
}

/*
 * Encrypted keys are refused, never prompted for on a terminal; *asked
 * (when given) records that a passphrase was wanted.
 */
static int
tls_store_no_passphrase(char *buf, int size, int rwflag, void *asked)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	if (asked != NULL)
		*(int *)asked = 1;
	return -1;
}

/* A PEM private key; *encrypted says why there is none, if that is why. */
static EVP_PKEY *
tls_store_read_key(const char *path, int *encrypted)
{
	BIO *b = BIO_new_file(path, "r");
	EVP_PKEY *key;

	*encrypted = 0;
	if (b == NULL)
		return NULL;
	key = PEM_read_bio_PrivateKey(
	    b, NULL, tls_store_no_passphrase, encrypted);
	BIO_free(b);
	return key;
}

static int
tls_store_watch(struct tls_store *st, const char *path)
{
	struct tls_file *f;

	f = realloc(st->files, (st->nfiles + 1) * sizeof(*st->files));
	if (f == NULL)
		return -1;
	st->files = f;
	memset(&f[st->nfiles], 0, sizeof(*f));
	if ((f[st->nfiles].path = strdup(path)) == NULL)
		return -1;
	/*
	 * Before the file is read: a change while it is being loaded is
	 * then seen by the next tls_store_changed(), never lost.
	 */
	if (stat(path, &f[st->nfiles].st) < 0)
		memset(&f[st->nfiles].st, 0, sizeof(struct stat));
	st->nfiles++;
	return 0;
}

/* Choose among the store's certificates by the client's server name. */
static int
tls_store_sni(SSL *ssl, int *alert, void *arg)
{
	struct tls_store *st = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	SSL_CTX *own = SSL_get_SSL_CTX(ssl);

	(void)alert;
	if (name == NULL || !tls_name_valid(name))
		return SSL_TLSEXT_ERR_NOACK; /* keep the connector's */
	for (int pass = 0; pass < 2; pass++) {
		/* Pass 0: exact names only; pass 1: wildcards too. */
		unsigned flags = X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
		                 X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
		                 (pass == 0 ? X509_CHECK_FLAG_NO_WILDCARDS : 0);
		size_t len = strlen(name);

		if (name[len - 1] == '.')
			len--;
		for (size_t i = 0; i < st->ncerts; i++)
			if (st->certs[i].ctx == own &&
			    X509_check_host(
			        st->certs[i].leaf, name, len, flags, NULL) == 1)
				return SSL_TLSEXT_ERR_OK;
		for (size_t i = 0; i < st->ncerts; i++) {
			if (X509_check_host(
			        st->certs[i].leaf, name, len, flags, NULL) != 1)
				continue;
			SSL_set_SSL_CTX(ssl, st->certs[i].ctx);
			return SSL_TLSEXT_ERR_OK;
		}
	}
	return SSL_TLSEXT_ERR_OK; /* unknown name: the connector's */
}

/*
 * The trust store shared by every context, and the CA names to list.
 * After a failure st->trust is an empty store, so that the certificates
 * are still checked and every problem reported in one go.
 */
static int
tls_store_trust(
    struct tls_store *st, const struct tls_store_params *p, FILE *err)
{
	st->trust = tls_trust_build(
	    p->trusted_ca_file, p->client_ca_file, p->crl_file, err);
	if (st->trust == NULL) {
		st->trust = X509_STORE_new();
		return 0;
	}
	if (!tls_store_empty(p->client_ca_file) &&
	    (st->ca_names = SSL_load_client_CA_file(p->client_ca_file)) ==
	        NULL) {
		tls_store_report(
		    err, p->client_ca_file, "cannot read the CA names", NULL);
		return 0;
	}
	return 1;
}

/*
 * Do the cipher lists select anything?  Checked once, before any
 * context, so a bad TlsCiphers is one report, not one per certificate.
 */
static int
tls_store_ciphers(const struct tls_store_params *p, FILE *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	int ok = 1;

	if (ctx == NULL)
		return 0;
	if (!tls_store_empty(p->ciphers) &&
	    SSL_CTX_set_cipher_list(ctx, p->ciphers) != 1) {
		if (err != NULL)
			fprintf(err,
			    "TlsCiphers = %s: selects no usable cipher\n",
			    p->ciphers);
		ok = 0;
	}
	if (!tls_store_empty(p->ciphersuites) &&
	    SSL_CTX_set_ciphersuites(ctx, p->ciphersuites) != 1) {
		if (err != NULL)
			fprintf(err,
			    "TlsCipherSuites = %s: selects no usable suite\n",
			    p->ciphersuites);
		ok = 0;
	}
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return ok;
}

static SSL_CTX *
tls_store_ctx(struct tls_store *st, const struct tls_store_cert *c,
    const struct tls_store_params *p, FILE *err)
{
	SSL_CTX *ctx;
	EVP_PKEY *key = NULL;
	int encrypted;
	const char *ciphers =
	    tls_store_empty(p->ciphers) ? TLS_STORE_CIPHERS : p->ciphers;
	const char *suites = tls_store_empty(p->ciphersuites)
	                         ? TLS_STORE_CIPHERSUITES
	                         : p->ciphersuites;

	if (!tls_store_readable(err, c->certificate_file, c->name) ||
	    !tls_store_readable(err, c->key_file, c->name))
		return NULL;
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		tls_store_report(err, c->certificate_file,
		    "cannot create a TLS context", c->name);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	                             SSL_OP_NO_COMPRESSION |
	                             SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_id_context(
	    ctx, tls_store_sid, sizeof(tls_store_sid) - 1);
	SSL_CTX_sess_set_cache_size(ctx, TLS_STORE_SESSION_CACHE);
	SSL_CTX_set_timeout(ctx, TLS_STORE_SESSION_LIFETIME);
	SSL_CTX_set_default_passwd_cb(ctx, tls_store_no_passphrase);
	/* tls_store_ciphers() has reported bad lists already. */
	if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, suites) != 1) {
		ERR_clear_error();
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, c->certificate_file) != 1) {
		tls_store_report(err, c->certificate_file,
		    "cannot load the certificate chain (PEM, leaf first)",
		    c->name);
		goto fail;
	}
	if ((key = tls_store_read_key(c->key_file, &encrypted)) == NULL) {
		if (encrypted) {
			ERR_clear_error();
			if (err != NULL)
				fprintf(err,
				    "%s: the private key is encrypted; Sluice "
				    "needs it unencrypted (openssl pkey -in "
				    "FILE -out NEWFILE) ([Certificate %s])\n",
				    c->key_file, c->name);
		} else {
			tls_store_report(err, c->key_file,
			    "no PEM private key found", c->name);
		}
		goto fail;
	}
	if (X509_check_private_key(SSL_CTX_get0_certificate(ctx), key) != 1) {
		ERR_clear_error();
		if (err != NULL)
			fprintf(err,
			    "%s: private key does not match the certificate "
			    "in %s (the file must start with this server's "
			    "own certificate) ([Certificate %s])\n",
			    c->key_file, c->certificate_file, c->name);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		tls_store_report(
		    err, c->key_file, "cannot use the private key", c->name);
		goto fail;
	}
	EVP_PKEY_free(key);
	SSL_CTX_set1_cert_store(ctx, st->trust);
	if (st->ca_names != NULL) {
		STACK_OF(X509_NAME) *names = SSL_dup_CA_list(st->ca_names);

		if (names == NULL) {
			tls_store_report(
			    err, c->certificate_file, "out of memory", c->name);
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
	}
	SSL_CTX_set_tlsext_servername_callback(ctx, tls_store_sni);
	SSL_CTX_set_tlsext_servername_arg(ctx, st);
	return ctx;
fail:
	EVP_PKEY_free(key);
	SSL_CTX_free(ctx);
	return NULL;
}

static void
tls_store_destroy(struct tls_store *st)
{
	for (size_t i = 0; i < st->ncerts; i++) {
		SSL_CTX_free(st->certs[i].ctx);
		X509_free(st->certs[i].leaf);
		free(st->certs[i].name);
	}
	for (size_t i = 0; i < st->nfiles; i++)
		free(st->files[i].path);
	free(st->files);
	free(st->certs);
	X509_STORE_free(st->trust);
	sk_X509_NAME_pop_free(st->ca_names, X509_NAME_free);
	free(st);
}

struct tls_store *
tls_store_build(const struct tls_store_cert *certs, size_t ncerts,
    const struct tls_store_params *p, FILE *err)
{
	struct tls_store *st = calloc(1, sizeof(*st));
	const char *extra[3] = {
	    p->trusted_ca_file, p->client_ca_file, p->crl_file};
	int failed = 0;

	pthread_once(&tls_store_once, tls_store_init);
	if (st == NULL || tls_store_slot < 0) {
		free(st);
		return NULL;
	}
	atomic_init(&st->refs, 1);
	if (ncerts > 0) {
		if ((st->certs = calloc(ncerts, sizeof(*st->certs))) == NULL) {
			free(st);
			return NULL;
		}
		for (int i = 0; i < 3; i++)
			if (!tls_store_empty(extra[i]) &&
			    tls_store_watch(st, extra[i]) < 0)
				failed = 1;
		/* Client certificates are only checked with certificates. */
		if (!tls_store_trust(st, p, err))
			failed = 1;
		if (!tls_store_ciphers(p, err)) {
			tls_store_destroy(st);
			return NULL;
		}
		if (st->trust == NULL) {
			tls_store_destroy(st);
			return NULL;
		}
	}
	for (size_t i = 0; i < ncerts; i++) {
		struct tls_cert *tc = &st->certs[st->ncerts];

		for (size_t j = 0; j < i; j++) {
			if (strcasecmp(certs[j].name, certs[i].name) != 0)
				continue;
			if (err != NULL)
				fprintf(err,
				    "%s: [Certificate %s] is defined twice\n",
				    certs[i].certificate_file, certs[i].name);
			failed = 1;
		}
		if (tls_store_watch(st, certs[i].certificate_file) < 0 ||
		    tls_store_watch(st, certs[i].key_file) < 0) {
			failed = 1;
			continue;
		}
		if ((tc->ctx = tls_store_ctx(st, &certs[i], p, err)) == NULL) {
			failed = 1;
			continue;
		}
		if ((tc->leaf = SSL_CTX_get0_certificate(tc->ctx)) == NULL ||
		    (tc->name = strdup(certs[i].name)) == NULL) {
			SSL_CTX_free(tc->ctx);
			tc->ctx = NULL;
			tc->leaf = NULL;
			failed = 1;
			continue;
		}
		X509_up_ref(tc->leaf);
		st->ncerts++;
	}
	if (failed) {
		tls_store_destroy(st);
		return NULL;
	}
	return st;
}

struct tls_store *
tls_store_new(const struct conf *conf, FILE *err)
{
	const struct conf_transport *t = &conf->transport;
	struct tls_store_cert *certs = NULL;
	struct tls_store_params p = {
	    .trusted_ca_file = t->trusted_ca_file,
	    .crl_file = t->crl_file,
	    .ciphers = t->tls_ciphers,
	    .ciphersuites = t->tls_ciphersuites,
	};
	struct tls_store *st;

	if (conf->ncertificates > 0 &&
	    (certs = calloc(conf->ncertificates, sizeof(*certs))) == NULL)
		return NULL;
	for (size_t i = 0; i < conf->ncertificates; i++) {
		certs[i].name = conf->certificates[i].name;
		certs[i].certificate_file =
		    conf->certificates[i].certificate_file;
		certs[i].key_file = conf->certificates[i].key_file;
	}
	st = tls_store_build(certs, conf->ncertificates, &p, err);
	free(certs);
	return st;
}

struct tls_store *
tls_store_ref(struct tls_store *st)
{
	atomic_fetch_add(&st->refs, 1);
	return st;
}

void
tls_store_unref(struct tls_store *st)
{
	if (st != NULL && atomic_fetch_sub(&st->refs, 1) == 1)
		tls_store_destroy(st);
}

void
tls_store_free(struct tls_store *st)
{
	tls_store_unref(st);
}

int
tls_store_reload(struct tls_store **current, const struct conf *conf, FILE *err)
{
	struct tls_store *st = tls_store_new(conf, err);

	if (st == NULL)
		return -1;
	tls_store_unref(*current);
	*current = st;
	return 0;
}

void
tls_store_rescan(struct tls_store *st)
{
	for (size_t i = 0; i < st->nfiles; i++)
		if (stat(st->files[i].path, &st->files[i].st) < 0)
			memset(&st->files[i].st, 0, sizeof(struct stat));
}

int
tls_store_changed(const struct tls_store *st)
{
	for (size_t i = 0; i < st->nfiles; i++) {
		const struct stat *old = &st->files[i].st;
		struct stat now;

		if (stat(st->files[i].path, &now) < 0)
			memset(&now, 0, sizeof(now));
		if (now.st_ino != old->st_ino || now.st_dev != old->st_dev ||
		    now.st_size != old->st_size ||
		    now.st_mtim.tv_sec != old->st_mtim.tv_sec ||
		    now.st_mtim.tv_nsec != old->st_mtim.tv_nsec)
			return 1;
	}
	return 0;
}

static const struct tls_cert *
tls_store_find(const struct tls_store *st, const char *name)
{
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < st->ncerts; i++)
		if (strcasecmp(st->certs[i].name, name) == 0)
			return &st->certs[i];
	return NULL;
}

int
tls_store_has(const struct tls_store *st, const char *name)
{
	return tls_store_find(st, name) != NULL;
}

SSL *
tls_store_ssl(
    struct tls_store *st, const char *cert_name, int request_client_cert)
{
	const struct tls_cert *c = tls_store_find(st, cert_name);
	SSL *ssl;

	if (c == NULL || (ssl = SSL_new(c->ctx)) == NULL)
		return NULL;
	if (SSL_set_ex_data(ssl, tls_store_slot, tls_store_ref(st)) != 1) {
		tls_store_unref(st);
		SSL_free(ssl);
		return NULL;
	}
	/*
	 * Without FAIL_IF_NO_PEER_CERT: a client without a certificate still
	 * gets TLS; tls_peer_verify_cb lets any chain through and keeps the
	 * verdict for tls_domain_secure_check().
	 */
	if (request_client_cert)
		SSL_set_verify(ssl, SSL_VERIFY_PEER, tls_peer_verify_cb);
	return ssl;
}

const char *
tls_store_served(SSL *ssl)
{
	struct tls_store *st;
	SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);

	pthread_once(&tls_store_once, tls_store_init);
	if ((st = SSL_get_ex_data(ssl, tls_store_slot)) == NULL)
		return NULL;
	for (size_t i = 0; i < st->ncerts; i++)
		if (st->certs[i].ctx == ctx)
			return st->certs[i].name;
	return NULL;
}

int
tls_store_use_cert(const struct tls_store *st, const char *name, SSL *ssl)
{
	const struct tls_cert *c = tls_store_find(st, name);
	STACK_OF(X509) *chain = NULL;

	if (c == NULL)
		return -1;
	SSL_CTX_get0_chain_certs(c->ctx, &chain);
	if (SSL_use_cert_and_key(
	        ssl, c->leaf, SSL_CTX_get0_privatekey(c->ctx), chain, 1) != 1) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

static void
tls_store_time(const ASN1_TIME *t, char *out, size_t len)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1 ||
	    strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(out, len, "(unreadable)");
}

void
tls_store_describe(const struct tls_store *st, FILE *out)
{
	for (size_t i = 0; i < st->ncerts; i++) {
		const struct tls_cert *c = &st->certs[i];
		EVP_PKEY *key = SSL_CTX_get0_privatekey(c->ctx);
		char names[TLS_PEER_NAMES_MAX], expiry[40], subject[256];
		int days = 0, secs = 0;

		tls_cert_names(c->leaf, names, sizeof(names));
		tls_store_time(
		    X509_get0_notAfter(c->leaf), expiry, sizeof(expiry));
		X509_NAME_oneline(
		    X509_get_subject_name(c->leaf), subject, sizeof(subject));
		ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(c->leaf));
		fprintf(out,
		    "%s: %s; names %s; expires %s (%s%d days); %s %d\n",
		    c->name, subject, names[0] != '\0' ? names : "(none)",
		    expiry, days < 0 || secs < 0 ? "EXPIRED " : "in ",
		    days < 0 ? -days : days,
		    key != NULL ? EVP_PKEY_get0_type_name(key) : "?",
		    key != NULL ? EVP_PKEY_get_bits(key) : 0);
	}
}
