/*
 * sluiced.c - the Sluice daemon: load the configuration, open the queue
 * and the logs, bind the receive connectors, drop privileges and run the
 * event loop.
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
#include "status/deferrals.h"
#include "status/metrics.h"
#include "status/posture.h"
#include "status/status_http.h"
#include "tls/tls_store.h"
#include "util/log.h"

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
	struct status_http *status; /* StatusListen, or NULL */
	struct deferrals deferrals;
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
	struct conf *conf = conf_load_checked(path, out);

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
			if (strstr(line, ": warning: ") != NULL)
				log_warn("%s", line);
			else
				log_err("%s", line);
		}
		free(text);
	}
	return conf;
}

/*
 * The status listener a configuration asks for: the running one when its
 * bindings are the same, else a new one (NULL for none).  Counting
 * starts with the first listener and never stops (counters only grow).
 * -1 when a new binding cannot be opened: the reload is refused.
 */
static int
sluiced_status_prepare(
    struct sluiced *d, const struct conf *conf, struct status_http **out)
{
	const struct conf_transport *t = &conf->transport;
	char why[300];

	*out = d->status;
	if (status_http_same(d->status, t->status_listen, t->nstatus_listen))
		return 0;
	*out = NULL;
	if (t->nstatus_listen == 0)
		return 0;
	if ((*out = status_http_start(&d->srv, t->status_listen,
	         t->nstatus_listen, why, sizeof(why))) == NULL) {
		log_err("reload refused: %s; the running configuration stays "
		        "in force",
		    why);
		return -1;
	}
	if (d->srv.metrics == NULL)
		d->srv.metrics = metrics_new();
	return 0;
}

static void
sluiced_reload(evutil_socket_t sig, short what, void *arg)
{
	struct sluiced *d = arg;
	struct conf *conf;
	struct tls_store *tls;
	struct status_http *status;
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
	if (sluiced_status_prepare(d, conf, &status) < 0) {
		tls_store_free(tls);
		conf_free(conf);
		return;
	}
	if (server_reload(&d->srv, conf, tls, &why) < 0) {
		log_err("reload refused: %s; the running configuration stays "
		        "in force",
		    why);
		if (status != d->status)
			status_http_stop(status);
		tls_store_free(tls);
		conf_free(conf);
		return;
	}
	if (status != d->status) {
		status_http_stop(d->status);
		d->status = status;
	}
	if (d->srv.protolog != NULL)
		protolog_reopen(d->srv.protolog);
	if (d->srv.sendlog != NULL)
		protolog_reopen(d->srv.sendlog);
	if (d->srv.tracklog != NULL) {
		tracklog_reopen(d->srv.tracklog);
		tracklog_subjects(d->srv.tracklog,
		    conf->transport
		        .message_tracking_log_subject_logging_enabled);
	}
	if (d->qmgr != NULL)
		qmgr_reroute(d->qmgr);
	/* TlsPostureEnabled: what was counted is written before it stops */
	if (conf->transport.tls_posture_enabled && d->srv.posture == NULL)
		d->srv.posture = posture_new(d->srv.spool, d->srv.base);
	else if (!conf->transport.tls_posture_enabled &&
	         d->srv.posture != NULL) {
		posture_free(d->srv.posture);
		d->srv.posture = NULL;
	}
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

	/*
	 * Everything sluiced creates is private to its user: logs (0600),
	 * log directories (0700); the queue sets its own modes as well
	 * (docs/design.md, "Local users").
	 */
	umask(077);
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
	if ((conf = conf_load_checked(d.conf_path, stderr)) == NULL)
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
	if ((d.srv.base = event_base_new()) == NULL)
		log_fatal("cannot create the event loop");
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
	tracklog_subjects(d.srv.tracklog,
	    conf->transport.message_tracking_log_subject_logging_enabled);
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
	d.srv.deferrals = &d.deferrals;
	if (conf->transport.tls_posture_enabled &&
	    (d.srv.posture = posture_new(d.srv.spool, d.srv.base)) == NULL)
		log_fatal("cannot start recording the TLS posture");
	if (conf->transport.nstatus_listen > 0) {
		char swhy[300];

		if ((d.srv.metrics = metrics_new()) == NULL ||
		    (d.status = status_http_start(&d.srv,
		         conf->transport.status_listen,
		         conf->transport.nstatus_listen, swhy, sizeof(swhy))) ==
		        NULL)
			log_fatal("%s",
			    d.srv.metrics == NULL ? "out of memory" : swhy);
	}
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
	status_http_stop(d.status);
	control_stop(d.control);
	qmgr_stop(d.qmgr);
	/* what the posture counted since its last flush, before the queue
	 * closes (spool_close writes it) */
	posture_free(d.srv.posture);
	d.srv.posture = NULL;
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
	metrics_free(d.srv.metrics);
	event_base_free(d.srv.base);
	return 0;
}
