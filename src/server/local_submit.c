/*
 * local_submit.c - accepting local submissions (see local_submit.h).
 *
 * The socket is mode 0666 in a directory made 0755 when missing: every
 * local user may hand mail to the daemon, which is what /usr/sbin/sendmail
 * is for, and no program needs to be setuid or setgid for it.  Who sent a
 * message is what the kernel says about the peer (SO_PEERCRED), never what
 * the client claims: the uid and its account name go into the Received
 * header.  What a local user may do is docs/operations.md's "Local
 * submission": any sender, any recipient, as with Postfix's sendmail; the
 * trace header names who it was.
 *
 * A stale socket left by a crash is replaced; anything at the path that
 * is not a socket is left alone and reported.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "conf/conf.h"
#include "server/local_submit.h"
#include "server/server.h"
#include "server/session.h"
#include "util/log.h"
#include "util/mkdirs.h"

#define LOCAL_SUBMIT_BACKLOG 128

struct local_submit {
	struct server *srv;
	struct evconnlistener *ev;
	char *path;
};

/* The account's name when it is a plain one, else the uid in digits. */
static void
local_submit_user(uid_t uid, char *out, size_t len)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	snprintf(out, len, "%lu", (unsigned long)uid);
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return;
	if (strlen(pw.pw_name) >= len ||
	    strspn(pw.pw_name, "abcdefghijklmnopqrstuvwxyz"
	                       "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
	        strlen(pw.pw_name) ||
	    pw.pw_name[0] == '\0')
		return;
	snprintf(out, len, "%s", pw.pw_name);
}

static void
local_submit_accept(struct evconnlistener *ev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct local_submit *ls = arg;
	struct server *srv = ls->srv;
	struct session_local who;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct conf_ref *cref;
	const struct conf_receive_connector *rc;
	const char *refuse = NULL;

	(void)ev;
	(void)sa;
	(void)salen;
	if (srv->daemon->draining ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
		close(fd);
		return;
	}
	memset(&who, 0, sizeof(who));
	who.uid = (unsigned long)cred.uid;
	local_submit_user(cred.uid, who.user, sizeof(who.user));
	cref = daemon_conf_acquire(srv->daemon);
	rc = &cref->conf->local_submission;
	if (server_connector_count(srv, rc->name) >= rc->max_inbound_connection)
		refuse = "421 4.3.2 The maximum number of concurrent server "
		         "connections has exceeded a limit, closing "
		         "transmission channel";
	session_start_local(srv, cref, rc, fd, &who, refuse);
}

int
local_submit_dir(const char *path)
{
	char dir[4096], *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
		return 0;
	*slash = '\0';
	/* made 0755 whatever the umask; an existing one keeps its mode */
	return mkdirs(dir, 0755);
}

static struct local_submit *
local_submit_open(struct server *srv, const char *path)
{
	struct sockaddr_un sun;
	struct local_submit *ls;
	struct stat st;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_err("LocalSubmissionSocket %s: path too long", path);
		return NULL;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (local_submit_dir(path) < 0) {
		log_err("LocalSubmissionSocket %s: its directory: %s", path,
		    strerror(errno));
		return NULL;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_err("LocalSubmissionSocket %s: exists and is not a "
			        "socket; left alone",
			    path);
			return NULL;
		}
		unlink(path); /* left by a previous run */
	}
	if ((fd = socket(
	         AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		goto fail;
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(path, 0666) < 0 || listen(fd, LOCAL_SUBMIT_BACKLOG) < 0) {
		close(fd);
		goto fail;
	}
	if ((ls = calloc(1, sizeof(*ls))) == NULL ||
	    (ls->path = strdup(path)) == NULL) {
		free(ls);
		close(fd);
		errno = ENOMEM;
		goto fail;
	}
	ls->srv = srv;
	ls->ev = evconnlistener_new(srv->daemon->base, local_submit_accept, ls,
	    LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (ls->ev == NULL) {
		close(fd);
		free(ls->path);
		free(ls);
		goto fail;
	}
	log_info("local submission on %s", path);
	return ls;
fail:
	log_err("LocalSubmissionSocket %s: %s", path, strerror(errno));
	return NULL;
}

struct local_submit *
local_submit_sync(
    struct local_submit *old, struct server *srv, const char *path)
{
	struct local_submit *ls;

	if (path == NULL || path[0] == '\0') {
		local_submit_free(old);
		return NULL;
	}
	if (old != NULL && strcmp(old->path, path) == 0)
		return old;
	if ((ls = local_submit_open(srv, path)) == NULL)
		return old;
	local_submit_free(old);
	return ls;
}

void
local_submit_free(struct local_submit *ls)
{
	if (ls == NULL)
		return;
	evconnlistener_free(ls->ev);
	/* After the user switch this may fail; the next start replaces it. */
	unlink(ls->path);
	free(ls->path);
	free(ls);
}
