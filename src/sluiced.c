/*
 * sluiced.c - the Sluice daemon: load the configuration, confine itself
 * (NO_NEW_PRIVS, Landlock), open the queue and the logs, bind the receive
 * connectors, drop privileges and run the event loop.
 *
 * Signals: SIGHUP reloads the configuration (a config that fails
 * validation is refused and the running one stays in force; open sessions
 * keep the configuration they started with); SIGUSR1 reopens the log
 * files and nothing else (rotation); SIGTERM and SIGINT stop accepting,
 * let sessions finish what they are doing for up to SLUICED_DRAIN_SECONDS,
 * wait for the queue to commit, and exit 0.
 *
 * How it runs (util/service.c): `-f` in the foreground; under systemd in
 * the foreground too, logging to the journal and telling systemd when it
 * is ready; elsewhere detached, with `-p PIDFILE`, logging to syslog (or
 * LogDirectory/sluiced.log when there is no syslog socket).
 */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
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
#include "conf/conf_diff.h"
#include "control/control.h"
#include "control/control_admin.h"
#include "log/protolog.h"
#include "log/tracklog.h"
#include "queue/qmgr.h"
#include "server/local_submit.h"
#include "server/server.h"
#include "server/session.h"
#include "spool/spool.h"
#include "status/deferrals.h"
#include "status/metrics.h"
#include "status/posture.h"
#include "status/status_http.h"
#include "tlsrpt/tlsrpt_send.h"
#include "tlsrpt/tlsrpt_store.h"
#include "tls/tls_store.h"
#include "util/buf.h"
#include "util/confine.h"
#include "util/log.h"
#include "util/mkdirs.h"
#include "util/service.h"
#include "version.h"

#define SLUICED_DEFAULT_CONF "/etc/sluice/sluice.conf"
/* How long SIGTERM waits for sessions that are mid-message. */
#define SLUICED_DRAIN_SECONDS 30

struct sluiced {
	struct daemon daemon; /* what every part of the daemon uses */
	struct server srv;    /* the receiving side */
	const char *conf_path;
	char conf_abs[PATH_MAX]; /* conf_path made absolute (detaching) */
	const char *pidfile;
	enum service_mode mode;
	time_t started;
	struct control_admin admin; /* status, reload, logs reopen */
	struct local_submit *local; /* LocalSubmissionSocket */
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
sluiced_usage(FILE *out, int status)
{
	fprintf(out,
	    "usage: sluiced [-f] [-c FILE] [-p PIDFILE]\n"
	    "  -f          stay in the foreground, log to stderr\n"
	    "  -c FILE     configuration (default %s)\n"
	    "  -p PIDFILE  write the daemon's PID there\n"
	    "  -V          print the version and exit\n"
	    "Without -f, sluiced stays in the foreground under systemd and "
	    "logs to the\njournal; elsewhere it detaches once it is ready "
	    "and logs to syslog.\nSee sluiced(8).\n",
	    SLUICED_DEFAULT_CONF);
	exit(status);
}

/* The retention limits of [Transport], at start and after a reload. */
static void
sluiced_logs_retain(struct sluiced *d, const struct conf *conf)
{
	const struct conf_transport *t = &conf->transport;

	if (d->daemon.tracklog != NULL)
		tracklog_retain(d->daemon.tracklog,
		    t->message_tracking_log_max_age,
		    t->message_tracking_log_max_directory_size);
	if (d->daemon.protolog != NULL)
		protolog_retain(d->daemon.protolog,
		    t->receive_protocol_log_max_age,
		    t->receive_protocol_log_max_directory_size);
	if (d->daemon.sendlog != NULL)
		protolog_retain(d->daemon.sendlog, t->send_protocol_log_max_age,
		    t->send_protocol_log_max_directory_size);
}

/*
 * Load a configuration and its certificates, sending every error line to
 * the daemon log (at start they also go to stderr: see main) and, for
 * sluicectl reload, to errors as "error: " lines.
 */
static struct conf *
sluiced_load(const char *path, struct tls_store **tls, struct buf *errors)
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
			if (strstr(line, ": warning: ") != NULL) {
				log_warn("%s", line);
				if (errors != NULL)
					buf_printf(errors, "%s\n", line);
				continue;
			}
			log_err("%s", line);
			if (errors != NULL)
				buf_printf(errors, "error: %s\n", line);
		}
		free(text);
	}
	return conf;
}

/*
 * The status listener a configuration asks for: the running one when its
 * bindings are the same, else a new one (NULL for none).  Counting
 * starts with the first listener and never stops (counters only grow).
 * -1 with why when a new binding cannot be opened: the reload is
 * refused.
 */
static int
sluiced_status_prepare(struct sluiced *d, const struct conf *conf,
    struct status_http **out, char *why, size_t whylen)
{
	const struct conf_transport *t = &conf->transport;

	*out = d->status;
	if (status_http_same(d->status, t->status_listen, t->nstatus_listen))
		return 0;
	*out = NULL;
	if (t->nstatus_listen == 0)
		return 0;
	if ((*out = status_http_start(&d->daemon, &d->srv, d->qmgr,
	         t->status_listen, t->nstatus_listen, why, whylen)) == NULL)
		return -1;
	if (d->daemon.metrics == NULL)
		d->daemon.metrics = metrics_new();
	return 0;
}

/* TlsPostureEnabled: what was counted is written before it stops. */
static void
sluiced_posture_sync(struct sluiced *d, const struct conf *conf)
{
	struct daemon *daemon = &d->daemon;

	if (conf->transport.tls_posture_enabled && daemon->posture == NULL) {
		if ((daemon->posture =
		            posture_new(daemon->spool, daemon->base)) == NULL)
			log_err("cannot start recording the TLS posture");
	} else if (!conf->transport.tls_posture_enabled &&
	           daemon->posture != NULL) {
		posture_free(daemon->posture);
		daemon->posture = NULL;
	}
}

/*
 * Reload the configuration (SIGHUP, a renewed certificate, sluicectl
 * reload).  What changed, or why the new file was refused, is logged and,
 * when report is not NULL, written there for sluicectl.
 */
static int
sluiced_reload_report(struct sluiced *d, struct buf *report)
{
	struct conf *conf;
	struct tls_store *tls;
	struct status_http *status;
	const char *why = NULL;
	char swhy[300];
	struct buf changes;
	int n, kept;

	log_info("reloading %s", d->conf_path);
	service_reloading();
	if ((conf = sluiced_load(d->conf_path, &tls, report)) == NULL) {
		log_err("reload refused: %s has errors; the running "
		        "configuration stays in force",
		    d->conf_path);
		if (report != NULL)
			buf_printf(report,
			    "error: reload refused: %s has errors; the running "
			    "configuration stays in force\n",
			    d->conf_path);
		service_reloaded("accepting mail (reload refused)");
		return -1;
	}
	if (sluiced_status_prepare(d, conf, &status, swhy, sizeof(swhy)) < 0) {
		log_err("reload refused: %s; the running configuration stays "
		        "in force",
		    swhy);
		if (report != NULL)
			buf_printf(report,
			    "error: reload refused: %s; the running "
			    "configuration stays in force\n",
			    swhy);
		tls_store_free(tls);
		conf_free(conf);
		service_reloaded("accepting mail (reload refused)");
		return -1;
	}
	/* Compared before the swap, which may free the old one. */
	buf_init(&changes, 1024 * 1024);
	kept = conf_diff_keep_running(d->daemon.conf->conf, conf, &changes);
	n = conf_diff(d->daemon.conf->conf, conf, &changes);
	if (n >= 0 && kept > 0)
		n += kept;
	if (server_reload(&d->srv, conf, tls, &why) < 0) {
		log_err("reload refused: %s; the running configuration stays "
		        "in force",
		    why);
		if (report != NULL)
			buf_printf(report,
			    "error: reload refused: %s; the running "
			    "configuration stays in force\n",
			    why);
		if (status != d->status)
			status_http_stop(status);
		tls_store_free(tls);
		conf_free(conf);
		buf_free(&changes);
		service_reloaded("accepting mail (reload refused)");
		return -1;
	}
	if (status != d->status) {
		status_http_stop(d->status);
		d->status = status;
	}
	d->admin.loaded = time(NULL);
	sluiced_logs_retain(d, d->daemon.conf->conf);
	d->local = local_submit_sync(d->local, &d->srv,
	    d->daemon.conf->conf->transport.local_submission_socket);
	if (d->daemon.protolog != NULL)
		protolog_reopen(d->daemon.protolog);
	if (d->daemon.sendlog != NULL)
		protolog_reopen(d->daemon.sendlog);
	if (d->daemon.tracklog != NULL) {
		tracklog_reopen(d->daemon.tracklog);
		tracklog_subjects(d->daemon.tracklog,
		    d->daemon.conf->conf->transport
		        .message_tracking_log_subject_logging_enabled);
	}
	if (d->qmgr != NULL)
		qmgr_reroute(d->qmgr);
	sluiced_posture_sync(d, d->daemon.conf->conf);
	if (report != NULL) {
		buf_printf(report, "reloaded %s\n", d->conf_path);
		if (n == 0)
			buf_puts(report, "no changes\n");
		else if (n > 0)
			buf_printf(report, "%s", changes.data);
	}
	/* Split in place for the log: the report has its copy. */
	for (char *line = changes.data, *nl; line != NULL && *line != '\0';
	     line = nl) {
		if ((nl = strchr(line, '\n')) != NULL)
			*nl++ = '\0';
		log_info("reload: %s", line);
	}
	log_info("reload done: %d change%s", n < 0 ? 0 : n, n == 1 ? "" : "s");
	buf_free(&changes);
	service_reloaded("accepting mail");
	return 0;
}

static void
sluiced_reload(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	sluiced_reload_report(arg, NULL);
}

/* sluicectl reload, through the control socket. */
static int
sluiced_admin_reload(void *arg, struct buf *report)
{
	return sluiced_reload_report(arg, report);
}

/* A renewed certificate on disk is picked up like a SIGHUP. */
static void
sluiced_cert_check(evutil_socket_t fd, short what, void *arg)
{
	struct sluiced *d = arg;
	struct tls_store *running = d->daemon.conf->tls;

	(void)fd;
	(void)what;
	if (d->daemon.draining || !tls_store_changed(running))
		return;
	log_info("certificate files changed on disk: reloading");
	sluiced_reload(-1, 0, d);
	if (d->daemon.conf->tls == running)
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
		event_base_loopexit(d->daemon.base, NULL);
	}
}

static void
sluiced_stop(evutil_socket_t sig, short what, void *arg)
{
	struct sluiced *d = arg;
	struct timeval tick = {0, 100000};

	(void)what;
	if (d->daemon.draining)
		return;
	log_info("signal %d: stop accepting, draining %zu sessions", (int)sig,
	    d->srv.nsessions);
	service_stopping();
	local_submit_free(d->local);
	d->local = NULL;
	d->daemon.draining = 1;
	server_close_listeners(&d->srv);
	session_drain_all(&d->srv);
	d->drain_timer =
	    event_new(d->daemon.base, -1, EV_PERSIST, sluiced_drain_check, d);
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
sluiced_confine(
    const char *conf_path, const char *pidfile, const struct conf *conf)
{
	static const char *sys_read[] = {"/etc", "/usr", "/lib", "/lib64",
	    "/proc", "/sys/devices/system/cpu", "/dev/urandom", "/dev/random"};
	const struct conf_transport *t = &conf->transport;
	struct confine cf;
	const char *why = NULL;

	if (mkdirs(t->queue_directory, 0700) < 0)
		log_fatal("queue %s: %s", t->queue_directory, strerror(errno));
	if (mkdirs(t->log_directory, 0700) < 0)
		log_fatal("logs %s: %s", t->log_directory, strerror(errno));
	/*
	 * The local submission socket's directory is made now (0755: every
	 * local user must reach the socket), since the confinement only
	 * takes directories that exist.
	 */
	if (t->local_submission_socket[0] != '\0' &&
	    local_submit_dir(t->local_submission_socket) < 0)
		log_fatal("local submission socket %s: its directory: %s",
		    t->local_submission_socket, strerror(errno));
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
		sluiced_allow_dir_of(
		    &cf, t->local_submission_socket, CONFINE_SOCKET);
		/* the PID file is removed at exit */
		sluiced_allow_dir_of(&cf, pidfile, CONFINE_SOCKET);
		sluiced_allow_dir_of(&cf, conf_path, CONFINE_READ);
		sluiced_allow_dir_of(&cf, t->trusted_ca_file, CONFINE_READ);
		sluiced_allow_dir_of(&cf, t->crl_file, CONFINE_READ);
		/* libunbound reads it again whenever a resolver is made */
		sluiced_allow_dir_of(
		    &cf, t->dnssec_trust_anchor_file, CONFINE_READ);
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

/* SIGUSR1 (and sluicectl logs reopen): the log files, nothing else. */
static void
sluiced_logs_reopen(evutil_socket_t sig, short what, void *arg)
{
	struct sluiced *d = arg;

	(void)sig;
	(void)what;
	if (d->daemon.protolog != NULL)
		protolog_reopen(d->daemon.protolog);
	if (d->daemon.sendlog != NULL)
		protolog_reopen(d->daemon.sendlog);
	if (d->daemon.tracklog != NULL)
		tracklog_reopen(d->daemon.tracklog);
	log_reopen();
	log_info("log files reopened");
}

static void
sluiced_admin_logs_reopen(void *arg)
{
	sluiced_logs_reopen(-1, 0, arg);
}

/* LocalSubmissionSocket at start: a socket that cannot be made is fatal. */
static void
sluiced_local_start(struct sluiced *d)
{
	const char *path =
	    d->daemon.conf->conf->transport.local_submission_socket;

	d->local = local_submit_sync(NULL, &d->srv, path);
	if (path[0] != '\0' && d->local == NULL)
		log_fatal("cannot open the local submission socket %s", path);
}

/* What the control socket's status, reload and logs reopen use. */
static void
sluiced_admin_register(struct sluiced *d)
{
	d->admin.reload = sluiced_admin_reload;
	d->admin.logs_reopen = sluiced_admin_logs_reopen;
	d->admin.arg = d;
	d->admin.conf_path = d->conf_path;
	d->admin.started = d->started;
	d->admin.loaded = d->started;
	control_admin_register(&d->admin);
}

/*
 * The command line: -f, -c FILE, -p PIDFILE, -V/--version, -h/--help.
 * Returns whether -f was given.
 */
static int
sluiced_options(struct sluiced *d, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch, foreground = 0;

	d->conf_path = SLUICED_DEFAULT_CONF;
	while (
	    (ch = getopt_long(argc, argv, "fc:p:Vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			foreground = 1;
			break;
		case 'c':
			d->conf_path = optarg;
			break;
		case 'p':
			d->pidfile = optarg;
			break;
		case 'V':
			printf("sluiced %s\n", SLUICE_VERSION);
			exit(0);
		case 'h':
			sluiced_usage(stdout, 0);
			break;
		default:
			sluiced_usage(stderr, 2);
		}
	}
	if (optind != argc)
		sluiced_usage(stderr, 2);
	/* For reloads, once a detached daemon has left its directory. */
	if (realpath(d->conf_path, d->conf_abs) == NULL)
		d->conf_abs[0] = '\0';
	return foreground;
}

/* New mail was stored: the queue manager looks for it at once. */
static void
sluiced_stored(void *arg)
{
	qmgr_wake(arg);
}

/* Where the diagnostic log goes until the daemon is ready. */
static void
sluiced_log_start(struct sluiced *d)
{
	/* Detached: start-up errors still reach the starting terminal. */
	log_open("sluiced", 1);
	if (d->mode == SERVICE_SYSTEMD)
		log_to_journal();
	if (getenv("SLUICE_DEBUG") != NULL)
		log_set_level(LOG_LVL_DEBUG);
}

/*
 * Detached and ready: syslog when there is a syslog socket, else a file
 * of our own beside the other logs (containers often have no /dev/log).
 */
static void
sluiced_log_settle(struct sluiced *d, const struct conf *conf)
{
	struct stat st;
	char path[PATH_MAX];

	if (d->mode != SERVICE_DETACHED)
		return;
	if (stat("/dev/log", &st) == 0 && S_ISSOCK(st.st_mode)) {
		log_open("sluiced", 0);
		return;
	}
	snprintf(path, sizeof(path), "%s/sluiced.log",
	    conf->transport.log_directory);
	if (log_to_file(path) < 0)
		log_warn("no syslog socket and cannot write %s: %s; the "
		         "diagnostic log is lost once detached",
		    path, strerror(errno));
}

/* Detach (when not managed) and write the PID file, before any thread. */
static void
sluiced_service_start(struct sluiced *d)
{
	long running = 0;
	char dir[PATH_MAX], *slash;

	if (d->mode == SERVICE_DETACHED)
		service_detach();
	if (d->pidfile == NULL)
		return;
	snprintf(dir, sizeof(dir), "%s", d->pidfile);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (mkdirs(dir, 0755) < 0)
			log_fatal(
			    "PID file directory %s: %s", dir, strerror(errno));
	}
	if (service_pidfile(d->pidfile, &running) < 0) {
		if (running > 0)
			log_fatal("already running as PID %ld (%s)", running,
			    d->pidfile);
		log_fatal("PID file %s: %s", d->pidfile, strerror(errno));
	}
}

int
main(int argc, char **argv)
{
	struct sluiced d;
	struct event *ev_hup, *ev_term, *ev_int, *ev_usr1;
	struct conf *conf;
	struct tls_store *tls = NULL;
	const char *why = NULL;
	int foreground;

	/*
	 * Everything sluiced creates is private to its user: logs (0600),
	 * log directories (0700); the queue sets its own modes as well
	 * (docs/design.md, "Local users").
	 */
	umask(077);
	memset(&d, 0, sizeof(d));
	foreground = sluiced_options(&d, argc, argv);
	/* A config error at start goes to stderr as FILE:LINE: reason. */
	if ((conf = conf_load_checked(d.conf_path, stderr)) == NULL)
		return 1;
	if ((tls = tls_store_new(conf, stderr)) == NULL) {
		conf_free(conf);
		return 1;
	}
	/* Errors at start named the file as given; reloads use its path. */
	if (d.conf_abs[0] != '\0')
		d.conf_path = d.conf_abs;
	d.mode = service_mode_pick(foreground, d.pidfile);
	sluiced_log_start(&d);
	sluiced_service_start(&d);
	signal(SIGPIPE, SIG_IGN);

	/* Session ids stay unique across restarts (protocol log). */
	d.srv.daemon = &d.daemon;
	d.srv.next_session = (uint64_t)time(NULL) << 20;
	sluiced_resources(&d.srv);
	if ((d.daemon.base = event_base_new()) == NULL)
		log_fatal("cannot create the event loop");
	sluiced_confine(d.conf_path, d.pidfile, conf);
	if ((d.daemon.spool = spool_open(
	         conf->transport.queue_directory, d.daemon.base, &why)) == NULL)
		log_fatal("queue %s: %s", conf->transport.queue_directory, why);
	d.daemon.protolog =
	    protolog_open(conf->transport.log_directory, PROTOLOG_RECEIVE);
	d.daemon.tracklog = tracklog_open(conf->transport.log_directory);
	d.daemon.sendlog =
	    protolog_open(conf->transport.log_directory, PROTOLOG_SEND);
	if (d.daemon.protolog == NULL || d.daemon.tracklog == NULL ||
	    d.daemon.sendlog == NULL)
		log_fatal("cannot open the logs in %s",
		    conf->transport.log_directory);
	tracklog_subjects(d.daemon.tracklog,
	    conf->transport.message_tracking_log_subject_logging_enabled);
	sluiced_logs_retain(&d, conf);
	if (server_reload(&d.srv, conf, tls, &why) < 0)
		log_fatal("%s", why);
	sluiced_local_start(&d);
	d.daemon.deferrals = &d.deferrals;
	/* TLS reports: recorded always (a hash probe per session) */
	if ((d.daemon.tlsrpt =
	            tlsrpt_store_new(d.daemon.spool, d.daemon.base)) == NULL)
		log_fatal("cannot start recording sessions for TLS reports");
	sluiced_posture_sync(&d, conf);
	if (conf->transport.tls_posture_enabled && d.daemon.posture == NULL)
		log_fatal("cannot start recording the TLS posture");
	{
		char db[4200];

		snprintf(db, sizeof(db), "%s/queue.db",
		    conf->transport.queue_directory);
		if ((d.qmgr = qmgr_start(&d.daemon, db)) == NULL)
			log_fatal("cannot start the queue manager");
		d.srv.stored = sluiced_stored;
		d.srv.stored_arg = d.qmgr;
	}
	/* TLS reports: sent once a day; mailto: ones through the queue */
	if ((d.daemon.tlsrpt_sender = tlsrpt_sender_new(
	         &d.daemon, sluiced_stored, d.qmgr)) == NULL)
		log_fatal("cannot start sending TLS reports");
	if ((d.control = control_start(&d.daemon, &d.srv, d.qmgr,
	         conf->transport.control_socket)) == NULL)
		log_fatal("cannot open the control socket %s",
		    conf->transport.control_socket);
	{
		char swhy[300];

		if (sluiced_status_prepare(
		        &d, conf, &d.status, swhy, sizeof(swhy)) < 0)
			log_fatal("%s", swhy);
	}
	sluiced_drop_privileges(conf);

	ev_hup = evsignal_new(d.daemon.base, SIGHUP, sluiced_reload, &d);
	ev_term = evsignal_new(d.daemon.base, SIGTERM, sluiced_stop, &d);
	ev_int = evsignal_new(d.daemon.base, SIGINT, sluiced_stop, &d);
	ev_usr1 = evsignal_new(d.daemon.base, SIGUSR1, sluiced_logs_reopen, &d);
	evsignal_add(ev_hup, NULL);
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	evsignal_add(ev_usr1, NULL);
	{
		struct timeval every = {SLUICED_CERT_CHECK_SECONDS, 0};

		d.cert_timer = event_new(
		    d.daemon.base, -1, EV_PERSIST, sluiced_cert_check, &d);
		event_add(d.cert_timer, &every);
	}
	sluiced_log_settle(&d, conf);
	d.started = time(NULL);
	sluiced_admin_register(&d);
	log_info("sluiced %s ready (%s)", SLUICE_VERSION, d.conf_path);
	service_ready("accepting mail");

	event_base_dispatch(d.daemon.base);

	log_info("stopping");
	status_http_stop(d.status);
	local_submit_free(d.local);
	/* before the control socket: administrators waiting for a run are
	 * told; what the committer still owes it comes at spool_close */
	tlsrpt_sender_free(d.daemon.tlsrpt_sender);
	d.daemon.tlsrpt_sender = NULL;
	control_stop(d.control);
	qmgr_stop(d.qmgr);
	/* what the posture counted since its last flush, before the queue
	 * closes (spool_close writes it) */
	posture_free(d.daemon.posture);
	d.daemon.posture = NULL;
	tlsrpt_store_free(d.daemon.tlsrpt);
	d.daemon.tlsrpt = NULL;
	spool_close(d.daemon.spool);
	qmgr_free(d.qmgr);
	protolog_close(d.daemon.protolog);
	protolog_close(d.daemon.sendlog);
	tracklog_close(d.daemon.tracklog);
	event_free(ev_hup);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_usr1);
	if (d.drain_timer != NULL)
		event_free(d.drain_timer);
	event_free(d.cert_timer);
	daemon_conf_release(d.daemon.conf);
	server_free_tables(&d.srv);
	metrics_free(d.daemon.metrics);
	event_base_free(d.daemon.base);
	service_pidfile_remove();
	return 0;
}
