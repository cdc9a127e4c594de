/*
 * session_auth.c - SMTP AUTH (RFC 4954) for receive connectors with
 * BasicAuth: PLAIN (RFC 4616) and LOGIN, checked against UsersFile
 * (auth.c) on the worker threads of auth_pool.c.  With
 * BasicAuthRequireTLS, AUTH exists only inside TLS.
 *
 * - Attempts are counted per client address (per /64 for IPv6, what one
 *   host usually holds) when they start, before any password is checked,
 *   so parallel sessions cannot all pass the check before one fails; a
 *   successful attempt is given back.  Over SESSION_AUTH_FAILURES_MAX a
 *   minute, AUTH gets 454 4.7.0.
 * - While the password is checked the session waits in SESSION_AUTH and
 *   reads nothing.  The check belongs to that state: leaving it any other
 *   way (timeout, close) cancels the job, so a result never reaches a
 *   session that is gone (GUIDE 3.8).
 * - Responses are strict: PLAIN is exactly [authzid] NUL authcid NUL
 *   passwd with a non-empty user and password and nothing after; a NUL
 *   inside a LOGIN user or password is malformed too (501 5.5.2).
 * - Nothing of a credential ever reaches a log.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "server/auth.h"
#include "server/auth_pool.h"
#include "server/conn.h"
#include "server/server.h"
#include "server/session_int.h"
#include "util/base64.h"
#include "util/log.h"

#include <openssl/crypto.h>

enum { AUTH_STEP_PLAIN = 1, AUTH_STEP_LOGIN_USER, AUTH_STEP_LOGIN_PASS };

/* The rate counter's key for a client: its address, IPv6 by /64. */
void
session_auth_source(const struct sockaddr *peer, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (peer->sa_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;

		memcpy(s6, peer, sizeof(*s6));
		s6->sin6_port = 0;
		s6->sin6_flowinfo = 0;
		s6->sin6_scope_id = 0;
		/* A v4-mapped address is one IPv4 host: keep it whole. */
		if (!IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			memset(&s6->sin6_addr.s6_addr[8], 0, 8);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)out;

		memcpy(s4, peer, sizeof(*s4));
		s4->sin_port = 0;
	}
}

static int
session_auth_count(struct session *s)
{
	struct sockaddr_storage src;

	session_auth_source((const struct sockaddr *)&s->peer, &src);
	return server_rate_allow(s->srv, "auth-attempts",
	    (const struct sockaddr *)&src, SESSION_AUTH_FAILURES_MAX);
}

static void
session_auth_uncount(struct session *s)
{
	struct sockaddr_storage src;

	session_auth_source((const struct sockaddr *)&s->peer, &src);
	server_rate_forgive(
	    s->srv, "auth-attempts", (const struct sockaddr *)&src);
}

/* BasicAuth offers AUTH; BasicAuthRequireTLS only inside TLS (SPEC 3). */
int
session_auth_offered(const struct session *s)
{
	unsigned am = s->rc->auth_mechanism;

	if (!(am & AUTHM_BASIC))
		return 0;
	return s->tls || !(am & AUTHM_BASIC_REQUIRE_TLS);
}

/*
 * The login buffer lives from AUTH to the end of its exchange; most
 * sessions never send AUTH and carry none.
 */
static void
session_auth_login_end(struct session *s)
{
	if (s->auth_login == NULL)
		return;
	OPENSSL_cleanse(s->auth_login, SESSION_AUTH_MAX + 1);
	free(s->auth_login);
	s->auth_login = NULL;
}

void
session_auth_forget(struct session *s)
{
	session_auth_login_end(s);
	free(s->auth_user);
	s->auth_user = NULL;
}

/* The session leaves SESSION_AUTH some other way: drop the check. */
void
session_auth_abandon(struct session *s)
{
	if (s->auth_job == NULL)
		return;
	auth_pool_cancel(s->srv->auth_pool, s->auth_job);
	s->auth_job = NULL;
}

/* The worker's verdict, on the loop. */
static void
session_auth_checked(void *arg, int ok)
{
	struct session *s = arg;
	char line[400];

	s->auth_job = NULL;
	session_enter(s, SESSION_COMMAND);
	if (ok && (s->auth_user = strdup(s->auth_login)) == NULL) {
		/* Checked, but we cannot hold the name: the client may retry.
		 */
		session_auth_uncount(s);
		session_plog(s, '*', "no memory for the user name", 27, "AUTH");
		session_reply(s, "454 4.7.0 Temporary authentication failure");
	} else if (ok) {
		snprintf(
		    line, sizeof(line), "authenticated as %s", s->auth_user);
		session_plog(s, '*', line, strlen(line), "AUTH");
		session_auth_uncount(s); /* only failures stay counted */
		session_reply(s, "235 2.7.0 Authentication successful");
	} else {
		/* The name is the client's: keep logs clean. */
		snprintf(line, sizeof(line),
		    "authentication failed for \"%.100s\"", s->auth_login);
		for (char *p = line; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 ||
			    (unsigned char)*p > 0x7e)
				*p = '?';
		session_plog(s, '*', line, strlen(line), "AUTH");
		log_warn("session %s from %s: %s", s->id, s->remote, line);
		session_error(
		    s, "535 5.7.8 Authentication credentials invalid");
	}
	session_auth_login_end(s);
	if (s->state != SESSION_COMMAND)
		return; /* too many errors: closing */
	session_resume(s);
}

/* Hand user and password to a worker; the session waits for the result. */
static void
session_auth_finish(struct session *s, const char *user, const char *pass)
{
	s->auth_step = 0;
	if (s->srv->auth_pool == NULL &&
	    (s->srv->auth_pool = auth_pool_new(s->srv->daemon->base)) == NULL) {
		session_auth_uncount(s);
		session_auth_login_end(s);
		session_reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	}
	if (user != s->auth_login)
		snprintf(s->auth_login, SESSION_AUTH_MAX + 1, "%s", user);
	s->auth_job = auth_pool_submit(s->srv->auth_pool, s->tc->users_file,
	    user, pass, session_auth_checked, s);
	if (s->auth_job == NULL) {
		/* No password was checked: this attempt does not count. */
		session_auth_uncount(s);
		session_auth_login_end(s);
		session_plog(s, '*', "password check queue full", 25, "AUTH");
		session_reply(s, "454 4.7.0 Too many authentications in "
		                 "progress; try again later");
		return;
	}
	session_enter(s, SESSION_AUTH);
}

static void
session_auth_malformed(struct session *s, const char *mech)
{
	s->auth_step = 0;
	session_auth_login_end(s);
	session_error(s, "501 5.5.2 Malformed AUTH %s response", mech);
}

/*
 * RFC 4616: message = [authzid] NUL authcid NUL passwd, where authcid and
 * passwd are one or more non-NUL octets: exactly two NULs, nothing after
 * the password.  We authorise nobody as someone else, so an authzid must
 * be empty or the user's own name.
 */
static void
session_auth_plain(struct session *s, const char *b64, size_t len)
{
	char buf[3 * SESSION_AUTH_MAX];
	const char *authzid = buf, *user, *pass, *end;
	int n = base64_decode(b64, len, buf, sizeof(buf));

	if (n < 0 || (user = memchr(buf, '\0', (size_t)n)) == NULL) {
		session_auth_malformed(s, "PLAIN");
		return;
	}
	end = buf + n;
	user++;
	if ((pass = memchr(user, '\0', (size_t)(end - user))) == NULL ||
	    pass == user || ++pass == end ||
	    memchr(pass, '\0', (size_t)(end - pass)) != NULL ||
	    strlen(user) > SESSION_AUTH_MAX) {
		OPENSSL_cleanse(buf, sizeof(buf));
		session_auth_malformed(s, "PLAIN");
		return;
	}
	if (authzid[0] != '\0' && strcmp(authzid, user) != 0) {
		OPENSSL_cleanse(buf, sizeof(buf));
		s->auth_step = 0;
		session_auth_login_end(s);
		session_error(s, "535 5.7.8 Authorization identity must be "
		                 "empty or your own user name");
		return;
	}
	session_auth_finish(s, user, pass);
	OPENSSL_cleanse(buf, sizeof(buf));
}

/* A line of an AUTH exchange (never logged: it carries a password). */
void
session_auth_line(struct session *s, const char *line, size_t len)
{
	char pass[SESSION_AUTH_MAX + 1];
	int n;

	session_plog(s, '<', "*** (credentials)", 17, "AUTH");
	if (len == 1 && line[0] == '*') {
		s->auth_step = 0;
		session_auth_login_end(s);
		session_error(s, "501 5.7.0 Authentication cancelled");
		return;
	}
	switch (s->auth_step) {
	case AUTH_STEP_PLAIN:
		session_auth_plain(s, line, len);
		break;
	case AUTH_STEP_LOGIN_USER:
		n = base64_decode(
		    line, len, s->auth_login, SESSION_AUTH_MAX + 1);
		if (n <= 0 || strlen(s->auth_login) != (size_t)n) {
			session_auth_malformed(s, "LOGIN");
			return;
		}
		s->auth_step = AUTH_STEP_LOGIN_PASS;
		session_reply(s, "334 UGFzc3dvcmQ6"); /* "Password:" */
		break;
	case AUTH_STEP_LOGIN_PASS:
		n = base64_decode(line, len, pass, sizeof(pass));
		if (n <= 0 || strlen(pass) != (size_t)n) {
			OPENSSL_cleanse(pass, sizeof(pass));
			session_auth_malformed(s, "LOGIN");
			return;
		}
		session_auth_finish(s, s->auth_login, pass);
		OPENSSL_cleanse(pass, sizeof(pass));
		break;
	}
}

void
session_cmd_auth(struct session *s, const struct smtp_cmd *c)
{
	const char *sp = memchr(c->arg, ' ', c->arg_len);
	size_t mlen = sp != NULL ? (size_t)(sp - c->arg) : c->arg_len;
	const char *initial = sp != NULL ? sp + 1 : NULL;
	size_t ilen = sp != NULL ? c->arg_len - mlen - 1 : 0;
	int n;

	if (!(s->rc->auth_mechanism & AUTHM_BASIC) || !s->esmtp) {
		session_error(s, "503 5.5.1 AUTH is not offered here");
		return;
	}
	if (!session_auth_offered(s) && !s->tls) {
		session_error(s, "538 5.7.11 Encryption required for requested "
		                 "authentication mechanism");
		return;
	}
	if (s->auth_user != NULL || s->have_mail) {
		session_error(s, "503 5.5.1 AUTH not allowed now");
		return;
	}
	if (!(mlen == 5 && (strncasecmp(c->arg, "PLAIN", 5) == 0 ||
	                       strncasecmp(c->arg, "LOGIN", 5) == 0))) {
		session_error(s, "504 5.5.4 Unrecognized authentication type");
		return;
	}
	/* Counted now, before any password is seen: see the top. */
	if (!session_auth_count(s)) {
		session_reply(s, "454 4.7.0 Too many failed authentications; "
		                 "try again later");
		return;
	}
	if (s->auth_login == NULL &&
	    (s->auth_login = calloc(1, SESSION_AUTH_MAX + 1)) == NULL) {
		session_auth_uncount(s); /* no password was checked */
		session_reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	}
	s->auth_login[0] = '\0';
	if (strncasecmp(c->arg, "PLAIN", 5) == 0) {
		if (initial != NULL && !(ilen == 1 && initial[0] == '=')) {
			session_auth_plain(s, initial, ilen);
			return;
		}
		s->auth_step = AUTH_STEP_PLAIN;
		session_reply(s, "334 ");
		return;
	}
	if (initial != NULL) {
		n = base64_decode(
		    initial, ilen, s->auth_login, SESSION_AUTH_MAX + 1);
		if (n <= 0 || strlen(s->auth_login) != (size_t)n) {
			session_auth_malformed(s, "LOGIN");
			return;
		}
		s->auth_step = AUTH_STEP_LOGIN_PASS;
		session_reply(s, "334 UGFzc3dvcmQ6");
		return;
	}
	s->auth_step = AUTH_STEP_LOGIN_USER;
	session_reply(s, "334 VXNlcm5hbWU6"); /* "Username:" */
}
