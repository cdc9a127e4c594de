/*
 * session_auth.c - SMTP AUTH (RFC 4954) for receive connectors with
 * BasicAuth: PLAIN (RFC 4616) and LOGIN, checked against UsersFile
 * (auth.c).  With BasicAuthRequireTLS, AUTH exists only inside TLS.
 * Failures are logged and counted per client address; nothing of a
 * credential ever reaches a log.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "server/auth.h"
#include "server/server.h"
#include "server/session_int.h"
#include "util/log.h"

enum { AUTH_STEP_PLAIN = 1, AUTH_STEP_LOGIN_USER, AUTH_STEP_LOGIN_PASS };
/* BasicAuth offers AUTH; BasicAuthRequireTLS only inside TLS (SPEC 3). */
int
session_auth_offered(const struct session *s)
{
	unsigned am = s->rc->auth_mechanism;

	if (!(am & AUTHM_BASIC))
		return 0;
	return s->tls || !(am & AUTHM_BASIC_REQUIRE_TLS);
}

/* Finish an AUTH exchange with the decoded user name and password. */
static void
session_auth_finish(struct session *s, const char *user, const char *pass)
{
	char line[400];

	s->auth_step = 0;
	if (user[0] != '\0' && auth_check(s->tc->users_file, user, pass)) {
		snprintf(s->auth_user, sizeof(s->auth_user), "%s", user);
		snprintf(line, sizeof(line), "authenticated as %s", user);
		session_plog(s, '*', line, strlen(line), "AUTH");
		session_reply(s, "235 2.7.0 Authentication successful");
		return;
	}
	snprintf(
	    line, sizeof(line), "authentication failed for \"%.100s\"", user);
	for (char *p = line; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p =
			    '?'; /* the name is the client's: keep logs clean */
	session_plog(s, '*', line, strlen(line), "AUTH");
	log_warn("session %s from %s: %s", s->id, s->remote, line);
	/* Count the failure; the next attempts meet 454 once over the limit. */
	server_rate_allow(s->srv, "auth-failures",
	    (const struct sockaddr *)&s->peer, SESSION_AUTH_FAILURES_MAX);
	session_error(s, "535 5.7.8 Authentication credentials invalid");
}

/* RFC 4616: [authzid] NUL authcid NUL passwd */
static void
session_auth_plain(struct session *s, const char *b64, size_t len)
{
	char buf[3 * SESSION_AUTH_MAX], *user, *pass;
	int n = auth_base64_decode(b64, len, buf, sizeof(buf));

	if (n < 0 || (user = memchr(buf, '\0', (size_t)n)) == NULL ||
	    (pass = memchr(user + 1, '\0', (size_t)(buf + n - user - 1))) ==
	        NULL) {
		s->auth_step = 0;
		session_error(s, "501 5.5.2 Malformed AUTH PLAIN response");
		return;
	}
	user++;
	pass++;
	session_auth_finish(s, user, pass);
}

/* A line of an AUTH exchange (never logged: it carries a password). */
void
session_auth_line(struct session *s, const char *line, size_t len)
{
	char pass[SESSION_AUTH_MAX + 1];

	session_plog(s, '<', "*** (credentials)", 17, "AUTH");
	if (len == 1 && line[0] == '*') {
		s->auth_step = 0;
		session_error(s, "501 5.7.0 Authentication cancelled");
		return;
	}
	switch (s->auth_step) {
	case AUTH_STEP_PLAIN:
		session_auth_plain(s, line, len);
		break;
	case AUTH_STEP_LOGIN_USER:
		if (auth_base64_decode(
		        line, len, s->auth_login, sizeof(s->auth_login)) < 0) {
			s->auth_step = 0;
			session_error(
			    s, "501 5.5.2 Malformed AUTH LOGIN response");
			return;
		}
		s->auth_step = AUTH_STEP_LOGIN_PASS;
		session_reply(s, "334 UGFzc3dvcmQ6"); /* "Password:" */
		break;
	case AUTH_STEP_LOGIN_PASS:
		if (auth_base64_decode(line, len, pass, sizeof(pass)) < 0) {
			s->auth_step = 0;
			session_error(
			    s, "501 5.5.2 Malformed AUTH LOGIN response");
			return;
		}
		session_auth_finish(s, s->auth_login, pass);
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

	if (!(s->rc->auth_mechanism & AUTHM_BASIC) || !s->esmtp) {
		session_error(s, "503 5.5.1 AUTH is not offered here");
		return;
	}
	if (!session_auth_offered(s) && !s->tls) {
		session_error(s, "538 5.7.11 Encryption required for requested "
		                 "authentication mechanism");
		return;
	}
	if (s->auth_user[0] != '\0' || s->have_mail) {
		session_error(s, "503 5.5.1 AUTH not allowed now");
		return;
	}
	if (!server_rate_allow(s->srv, "auth-failures",
	        (const struct sockaddr *)&s->peer, SESSION_AUTH_FAILURES_MAX)) {
		session_reply(s, "454 4.7.0 Too many failed authentications; "
		                 "try again later");
		return;
	}
	/* The check above counted an attempt; only failures should count. */
	server_rate_forgive(
	    s->srv, "auth-failures", (const struct sockaddr *)&s->peer);
	if (mlen == 5 && strncasecmp(c->arg, "PLAIN", 5) == 0) {
		if (initial != NULL && !(ilen == 1 && initial[0] == '=')) {
			session_auth_plain(s, initial, ilen);
			return;
		}
		s->auth_step = AUTH_STEP_PLAIN;
		session_reply(s, "334 ");
	} else if (mlen == 5 && strncasecmp(c->arg, "LOGIN", 5) == 0) {
		if (initial != NULL) {
			if (auth_base64_decode(initial, ilen, s->auth_login,
			        sizeof(s->auth_login)) < 0) {
				session_error(s,
				    "501 5.5.2 Malformed AUTH LOGIN "
				    "response");
				return;
			}
			s->auth_step = AUTH_STEP_LOGIN_PASS;
			session_reply(s, "334 UGFzc3dvcmQ6");
			return;
		}
		s->auth_step = AUTH_STEP_LOGIN_USER;
		session_reply(s, "334 VXNlcm5hbWU6"); /* "Username:" */
	} else {
		session_error(s, "504 5.5.4 Unrecognized authentication type");
	}
}
