/*
 * sluiced.c - the Sluice daemon: load the configuration, confine itself
 * (NO_NEW_PRIVS, Landlock), open the queue and the logs, bind the receive
 * connectors, drop privileges and run the event loop.
 *
 * Signals: SIGHUP reloads the configuration (a config that fails
 * validation is refused and the running one stays in force; open sessions
 * keep the configuration they started with); SIGTERM and SIGINT stop
 * accepting, let sessions finish what they are doing for up to
 * SLUICED_DRAIN_SECONDS, wait for the queue to commit, and exit 0.
 */
#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "log/protolog.h"
#include "log/tracklog.h"
#include "server/server.h"
#include "server/session.h"
#include "queue/qmgr.h"
#include "server/control.h"
#include "spool/spool.h"
#include "tls/tls_store.h"
#include "util/confine.h"
#include "util/log.h"
#include "util/mkdirs.h"

#define SLUICED_DEFAULT_CONF "/etc/sluice/sluice.conf"
/* How long SIGTERM waits for sessions that are mid-message. */
#define SLUICED_DRAIN_SECONDS 30

struct sluiced {
	struct server srv;
	const char *conf_path;
	struct event *drain_timer;
	struct event *cert_timer;
	struct qmgr *qmgr;
	struct control *control;
};

/* How often certificate and key files are checked for changes. */
#define SLUICED_CERT_CHECK_SECONDS 5

static void
sluiced_usage(void)
{
	fprintf(stderr,
	    "usage: sluiced [-f] [-c FILE]\n"
	    "  -f       stay in the foreground, log to stderr\n"
	    "  -c FILE  configuration (default %s)\n",
	    SLUICED_DEFAULT_CONF);
	exit(2);
}

/*
 * Load a configuration and its certificates, sending every error line to
 * the daemon log (at start they also go to stderr: see main).
 */
static struct conf *
sluiced_load(const char *path, struct tls_store **tls)
{
	char *text = NULL;
	size_t len = 0;
	FILE *err = open_memstream(&text, &len);
	FILE *out = err != NULL ? err : stderr;
	struct conf *conf = conf_load(path, out);

	*tls = NULL;
	if (conf != NULL && (*tls = tls_store_new(conf, out)) == NULL) {
		conf_free(conf);
		conf = NULL;
	}
	if (err != NULL) {
		fclose(err);
		for (char *line = text, *nl; line != NULL && *line != '\0';
		     line = nl) {
			if ((nl = strchr(line, '\n')) != NULL)
				*nl++ = '\0';
			log_err("%s", line);
		}
		free(text);
	}
	return conf;
}

static void
sluiced_reload(evutil_socket_t sig, short what, void *arg)
{
	struct sluiced *d = arg;
	struct conf *conf;
	struct tls_store *tls;
	const char *why = NULL;

	(void)sig;
	(void)what;
	log_info("reloading %s", d->conf_path);
	if ((conf = sluiced_load(d->conf_path, &tls)) == NULL) {
		log_err("reload refused: %s has errors; the running "
		        "configuration stays in force",
		    d->conf_path);
		return;
	}
	if (server_reload(&d->srv, conf, tls, &why) < 0) {
		log_err("reload refused: %s; the running configuration stays "
		        "in force",
		    why);
		tls_store_free(tls);
		conf_free(conf);
		return;
	}
	if (d->srv.protolog != NULL)
		protolog_reopen(d->srv.protolog);
	if (d->srv.sendlog != NULL)
		protolog_reopen(d->srv.sendlog);
	if (d->srv.tracklog != NULL)
		tracklog_reopen(d->srv.tracklog);
	log_info("reload done");
}

/* A renewed certificate on disk is picked up like a SIGHUP. */
static void
sluiced_cert_check(evutil_socket_t fd, short what, void *arg)
{
	struct sluiced *d = arg;
	struct tls_store *running = d->srv.conf->tls;

	(void)fd;
	(void)what;
	if (d->srv.draining || !tls_store_changed(running))
		return;
	log_info("certificate files changed on disk: reloading");
	sluiced_reload(-1, 0, d);
	if (d->srv.conf->tls == running)
		tls_store_rescan(
		    running); /* refused: wait for the next change */
}

static void
sluiced_drain_check(evutil_socket_t fd, short what, void *arg)
{
	struct sluiced *d = arg;
	static int ticks;

	(void)fd;
	(void)what;
	/* Inbound sessions and outbound transactions both finish. */
	unsigned outbound = qmgr_drain(d->qmgr);

	if ((d->srv.nsessions == 0 && outbound == 0) ||
	    ++ticks > SLUICED_DRAIN_SECONDS * 10) {
		if (d->srv.nsessions > 0 || outbound > 0)
			log_warn("drain timeout: closing %zu sessions and %u "
			         "outbound connections",
			    d->srv.nsessions, outbound);
		event_base_loopexit(d->srv.base, NULL);
	}
}

static void
sluiced_stop(evutil_socket_t sig, short what, void *arg)
{
	struct sluiced *d = arg;
	struct timeval tick = {0, 100000};

	(void)what;
	if (d->srv.draining)
		return;
	log_info("signal %d: stop accepting, draining %zu sessions", (int)sig,
	    d->srv.nsessions);
	d->srv.draining = 1;
	server_close_listeners(&d->srv);
	session_drain_all(&d->srv);
	d->drain_timer =
	    event_new(d->srv.base, -1, EV_PERSIST, sluiced_drain_check, d);
	event_add(d->drain_timer, &tick);
}

/*
 * Descriptors and memory before anything is opened: the soft descriptor
 * limit up to the hard one (server.c says why), and the message memory
 * budget, which SLUICE_MEMORY_MAX may set (the tests' way to reach it
 * without uploading a gigabyte).
 */
static void
sluiced_resources(struct server *srv)
{
	const char *env = getenv("SLUICE_MEMORY_MAX");
	char *end;
	unsigned long long v;

	server_raise_nofile(srv);
	srv->memory_max = SERVER_MEMORY_MAX;
	if (env == NULL)
		return;
	errno = 0;
	v = strtoull(env, &end, 10);
	if (errno != 0 || end == env || *end != '\0' || v < 4096 ||
	    v > SERVER_MEMORY_MAX)
		log_fatal("SLUICE_MEMORY_MAX=%s: expected bytes, 4096 to %zu",
		    env, SERVER_MEMORY_MAX);
	srv->memory_max = (size_t)v;
	log_info("message memory budget %zu bytes (SLUICE_MEMORY_MAX)",
	    srv->memory_max);
}

/* Allow the directory holding path (files are replaced by rename). */
static void
sluiced_allow_dir_of(
    struct confine *cf, const char *path, enum confine_mode mode)
{
	char dir[4096];
	char *slash;

	if (path == NULL || path[0] == '\0')
		return;
	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if (confine_allow(cf, dir, mode) < 0)
		log_warn(
		    "%s: not found; %s will not be readable after a reload",
		    dir, path);
}

/*
 * The nearest existing directory at or above the static part of a
 * Maildir pattern ("/var/mail/%d/%u" -> /var/mail): the Maildir agent
 * creates what is missing below it, as the run-time user.
 */
static void
sluiced_allow_mailboxes(struct confine *cf, const char *pattern)
{
	char dir[4096];
	char *cut, *slash;

	if (pattern == NULL || pattern[0] != '/')
		return;
	snprintf(dir, sizeof(dir), "%s", pattern);
	if ((cut = strchr(dir, '%')) != NULL)
		*cut = '\0';
	while (dir[0] != '\0') {
		if (confine_allow(cf, dir, CONFINE_WRITE) == 0)
			return;
		if ((slash = strrchr(dir, '/')) == NULL)
			break;
		if (slash == dir) {
			dir[1] = '\0';
			if (confine_allow(cf, dir, CONFINE_WRITE) == 0)
				log_warn("Mailboxes %s: only / exists; the "
				         "confinement allows writing anywhere",
				    pattern);
			return;
		}
		*slash = '\0';
	}
}

/*
 * Confine the daemon before it starts a thread or reads a byte from a
 * client (util/confine.c says what and why).  Writes: the queue, the
 * logs, the mailboxes, the control socket's directory.  Reads: system
 * libraries and data, /etc, /proc (the sanitizers read it), and the
 * directories of the configuration and of every file it names, which a
 * reload reads again; a reload that names a file elsewhere cannot read
 * it and is refused (docs/operations.md).
 */
static void
sluiced_confine(const char *conf_path, const struct conf *conf)
{
	static const char *sys_read[] = {"/etc", "/usr", "/lib", "/lib64",
	    "/proc", "/sys/devices/system/cpu", "/dev/urandom", "/dev/random"};
	const struct conf_transport *t = &conf->transport;
	struct confine cf;
	const char *why = NULL;

	if (mkdirs(t->queue_directory, 0700) < 0)
		log_fatal("queue %s: %s", t->queue_directory, strerror(errno));
	if (mkdirs(t->log_directory, 0750) < 0)
		log_fatal("logs %s: %s", t->log_directory, strerror(errno));
	/* SQLite's temporary files go where it may write. */
	setenv("SQLITE_TMPDIR", t->queue_directory, 1);
	if (confine_begin(&cf) > 0) {
		for (size_t i = 0; i < sizeof(sys_read) / sizeof(sys_read[0]);
		     i++)
			(void)confine_allow(&cf, sys_read[i], CONFINE_READ);
		(void)confine_allow(&cf, "/dev/null", CONFINE_WRITE);
		(void)confine_allow(&cf, t->queue_directory, CONFINE_WRITE);
		(void)confine_allow(&cf, t->log_directory, CONFINE_WRITE);
		sluiced_allow_dir_of(&cf, t->control_socket, CONFINE_SOCKET);
		sluiced_allow_dir_of(&cf, conf_path, CONFINE_READ);
		sluiced_allow_dir_of(&cf, t->trusted_ca_file, CONFINE_READ);
		sluiced_allow_dir_of(&cf, t->crl_file, CONFINE_READ);
		sluiced_allow_dir_of(&cf, t->users_file, CONFINE_READ);
		for (size_t i = 0; i < conf->ncertificates; i++) {
			sluiced_allow_dir_of(&cf,
			    conf->certificates[i].certificate_file,
			    CONFINE_READ);
			sluiced_allow_dir_of(
			    &cf, conf->certificates[i].key_file, CONFINE_READ);
		}
		for (size_t i = 0; i < conf->nsend_connectors; i++)
			sluiced_allow_dir_of(&cf,
			    conf->send_connectors[i].authentication_credential,
			    CONFINE_READ);
		for (size_t i = 0; i < conf->naccepted_domains; i++)
			sluiced_allow_mailboxes(
			    &cf, conf->accepted_domains[i].mailboxes);
	}
	if (confine_apply(&cf, &why) < 0)
		log_fatal("confinement: %s: %s", why, strerror(errno));
}

static uid_t chown_uid;
static gid_t chown_gid;

static int
sluiced_chown_one(
    const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	if (lchown(path, chown_uid, chown_gid) < 0)
		log_fatal("cannot give %s to the run-time user: %s", path,
		    strerror(errno));
	return 0;
}

static void
sluiced_chown_tree(const char *dir, const struct passwd *pw)
{
	chown_uid = pw->pw_uid;
	chown_gid = pw->pw_gid;
	/* Bounded: the queue holds three files, the logs a few per day. */
	if (nftw(dir, sluiced_chown_one, 16, FTW_PHYS) < 0)
		log_fatal("cannot walk %s: %s", dir, strerror(errno));
}

/* After binding: never keep running as root (GUIDE 4.11). */
static void
sluiced_drop_privileges(const struct conf *conf)
{
	const char *user = conf->transport.user;
	struct passwd *pw;

	if (user == NULL || user[0] == '\0' || geteuid() != 0)
		return;
	if ((pw = getpwnam(user)) == NULL)
		log_fatal("User %s: no such user", user);
	/*
	 * The queue and the logs were opened as root; everything under them
	 * must be the user's, or the daily log file and SQLite's side files
	 * could not be created later.
	 */
	sluiced_chown_tree(conf->transport.queue_directory, pw);
	sluiced_chown_tree(conf->transport.log_directory, pw);
	if (lchown(conf->transport.control_socket, pw->pw_uid, pw->pw_gid) < 0)
		log_fatal("cannot give %s to %s: %s",
		    conf->transport.control_socket, user, strerror(errno));
	if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0)
		log_fatal("cannot become %s: %s", user, strerror(errno));
	if (setuid(0) == 0)
		log_fatal("privileges could not be dropped");
	log_info("running as %s", user);
}

int
main(int argc, char **argv)
{
	struct sluiced d;
	struct event *ev_hup, *ev_term, *ev_int;
	struct conf *conf;
	struct tls_store *tls = NULL;
	const char *why = NULL;
	int ch, foreground = 0;

	memset(&d, 0, sizeof(d));
	d.conf_path = SLUICED_DEFAULT_CONF;
	while ((ch = getopt(argc, argv, "fc:h")) != -1) {
		switch (ch) {
		case 'f':
			foreground = 1;
			break;
		case 'c':
			d.conf_path = optarg;
			break;
		default:
			sluiced_usage();
		}
	}
	if (optind != argc)
		sluiced_usage();
	/* A config error at start goes to stderr as FILE:LINE: reason. */
	if ((conf = conf_load(d.conf_path, stderr)) == NULL)
		return 1;
	if ((tls = tls_store_new(conf, stderr)) == NULL) {
		conf_free(conf);
		return 1;
	}
	log_open("sluiced", foreground);
	if (getenv("SLUICE_DEBUG") != NULL)
		log_set_level(LOG_LVL_DEBUG);
	signal(SIGPIPE, SIG_IGN);

	/* Session ids stay unique across restarts (protocol log). */
	d.srv.next_session = (uint64_t)time(NULL) << 20;
	sluiced_resources(&d.srv);
	if ((d.srv.base = event_base_new()) == NULL)
		log_fatal("cannot create the event loop");
	sluiced_confine(d.conf_path, conf);
	if ((d.srv.spool = spool_open(
	         conf->transport.queue_directory, d.srv.base, &why)) == NULL)
		log_fatal("queue %s: %s", conf->transport.queue_directory, why);
	d.srv.protolog =
	    protolog_open(conf->transport.log_directory, PROTOLOG_RECEIVE);
	d.srv.tracklog = tracklog_open(conf->transport.log_directory);
	d.srv.sendlog =
	    protolog_open(conf->transport.log_directory, PROTOLOG_SEND);
	if (d.srv.protolog == NULL || d.srv.tracklog == NULL ||
	    d.srv.sendlog == NULL)
		log_fatal("cannot open the logs in %s",
		    conf->transport.log_directory);
	if (server_reload(&d.srv, conf, tls, &why) < 0)
		log_fatal("%s", why);
	{
		char db[4200];

		snprintf(db, sizeof(db), "%s/queue.db",
		    conf->transport.queue_directory);
		if ((d.qmgr = qmgr_start(&d.srv, db)) == NULL)
			log_fatal("cannot start the queue manager");
		d.srv.qmgr = d.qmgr;
	}
	if ((d.control = control_start(
	         &d.srv, conf->transport.control_socket)) == NULL)
		log_fatal("cannot open the control socket %s",
		    conf->transport.control_socket);
	sluiced_drop_privileges(conf);

	ev_hup = evsignal_new(d.srv.base, SIGHUP, sluiced_reload, &d);
	ev_term = evsignal_new(d.srv.base, SIGTERM, sluiced_stop, &d);
	ev_int = evsignal_new(d.srv.base, SIGINT, sluiced_stop, &d);
	evsignal_add(ev_hup, NULL);
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	{
		struct timeval every = {SLUICED_CERT_CHECK_SECONDS, 0};

		d.cert_timer = event_new(
		    d.srv.base, -1, EV_PERSIST, sluiced_cert_check, &d);
		event_add(d.cert_timer, &every);
	}
	log_info("sluiced ready (%s)", d.conf_path);

	event_base_dispatch(d.srv.base);

	log_info("stopping");
	control_stop(d.control);
	qmgr_stop(d.qmgr);
	spool_close(d.srv.spool);
	qmgr_free(d.qmgr);
	protolog_close(d.srv.protolog);
	protolog_close(d.srv.sendlog);
	tracklog_close(d.srv.tracklog);
	event_free(ev_hup);
	event_free(ev_term);
	event_free(ev_int);
	if (d.drain_timer != NULL)
		event_free(d.drain_timer);
	event_free(d.cert_timer);
	server_conf_release(d.srv.conf);
	server_free_tables(&d.srv);
	event_base_free(d.srv.base);
	return 0;
}
