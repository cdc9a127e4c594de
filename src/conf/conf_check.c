/*
 * conf_check.c - does the configuration fit the machine it runs on?
 *
 * conf_load() judges the file alone.  conf_check() looks at what the file
 * names, where sluiced will need it, so that `sluicectl config check`
 * says OK only to what can work (issue 11) and sluiced refuses at start
 * or reload what would fail later, one message at a time:
 *
 * - Every file a key names (certificates, keys, TrustedCAFile, CRLFile,
 *   DnssecTrustAnchorFile, UsersFile, AuthenticationCredential) is
 *   opened for reading, as the daemon's run-time user when [Transport]
 *   User is set and we are root:
 *   a forked child takes that user's ids exactly as sluiced does when it
 *   drops privileges (its primary group only), opens each file and
 *   reports back over a pipe.  sluiced reads these files again on
 *   reload, after it dropped root, so "root can read it" proves nothing.
 *   Errors carry the key's line and the errno text.
 * - Secrets others can read (issue 18): a private key or a credential
 *   file that every local user can read is refused, as OpenSSH refuses
 *   such a key; a readable UsersFile (password hashes) is a warning.
 *   "Can read" means the file is o+r and every directory above it o+x.
 * - The queue and log directories: writable by every user (even /tmp's
 *   sticky 1777) is refused, since they are Sluice's alone; readable by
 *   others is a warning.  sluiced makes the queue private itself when it
 *   opens it (spool.c); the logs it creates are 0600 (umask 077) but
 *   older files in an open directory are the administrator's to fix.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf/conf_keys.h"
#include "util/fd.h"

/* How secret a file is, for its mode check. */
enum check_kind {
	CHECK_PUBLIC,     /* certificates, CAs, CRLs */
	CHECK_HASHES,     /* UsersFile: warn when others can read it */
	CHECK_SECRET,     /* a private key: refuse when others can read it */
	CHECK_CREDENTIAL, /* user:password: a secret, with a format */
};

struct check_file {
	const void *obj; /* for the line: &conf->transport, a section */
	const char *key;
	const char *path;
	enum check_kind kind;
};

/* What the (possibly unprivileged) opener found for one file. */
struct check_result {
	int err;      /* errno of open(), 0 when it opened */
	int notreg;   /* not a regular file */
	int badcreds; /* a credential file without "user:password" */
};

/* The longest credential line read, as dq_credentials() reads it. */
#define CHECK_CRED_MAX 600

static size_t
check_collect(const struct conf *c, struct check_file *f)
{
	const struct conf_transport *t = &c->transport;
	size_t n = 0;

#define CHECK_ADD(o, k, p, kd)                                                 \
	do {                                                                   \
		if ((p) != NULL && (p)[0] != '\0') {                           \
			if (f != NULL)                                         \
				f[n] =                                         \
				    (struct check_file){(o), (k), (p), (kd)};  \
			n++;                                                   \
		}                                                              \
	} while (0)

	CHECK_ADD(t, "TrustedCAFile", t->trusted_ca_file, CHECK_PUBLIC);
	CHECK_ADD(t, "CRLFile", t->crl_file, CHECK_PUBLIC);
	CHECK_ADD(t, "DnssecTrustAnchorFile", t->dnssec_trust_anchor_file,
	    CHECK_PUBLIC);
	CHECK_ADD(t, "UsersFile", t->users_file, CHECK_HASHES);
	for (size_t i = 0; i < c->ncertificates; i++) {
		const struct conf_certificate *ce = &c->certificates[i];

		CHECK_ADD(
		    ce, "CertificateFile", ce->certificate_file, CHECK_PUBLIC);
		CHECK_ADD(ce, "KeyFile", ce->key_file, CHECK_SECRET);
	}
	for (size_t i = 0; i < c->nsend_connectors; i++) {
		const struct conf_send_connector *sc = &c->send_connectors[i];

		CHECK_ADD(sc, "AuthenticationCredential",
		    sc->authentication_credential, CHECK_CREDENTIAL);
	}
#undef CHECK_ADD
	return n;
}

/* Open one file as whoever we are now. */
static void
check_open(const struct check_file *f, struct check_result *r)
{
	struct stat st;
	int fd;

	memset(r, 0, sizeof(*r));
	/* Non-blocking: a FIFO named by mistake must not hang the check. */
	if ((fd = open(f->path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) <
	    0) {
		r->err = errno;
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		r->notreg = 1;
		close(fd);
		return;
	}
	if (f->kind == CHECK_CREDENTIAL) {
		char line[CHECK_CRED_MAX];
		ssize_t got = read(fd, line, sizeof(line) - 1);
		char *colon, *nl;

		if (got < 0)
			got = 0;
		line[got] = '\0';
		if ((nl = strpbrk(line, "\r\n")) != NULL)
			*nl = '\0';
		colon = strchr(line, ':');
		r->badcreds = colon == NULL || colon == line;
		explicit_bzero(line, sizeof(line));
	}
	close(fd);
}

/*
 * Open every file as pw (a child with pw's ids; 0 on success) or, with
 * pw NULL, as ourselves.  *why says why the child could not be the user.
 */
static int
check_open_all(const struct check_file *f, size_t n, const struct passwd *pw,
    struct check_result *r, int *why)
{
	int fds[2], status;
	pid_t pid;
	size_t want = n * sizeof(*r), got = 0;

	*why = 0;
	if (pw == NULL) {
		for (size_t i = 0; i < n; i++)
			check_open(&f[i], &r[i]);
		return 0;
	}
	if (pipe(fds) < 0 || (pid = fork()) < 0) {
		*why = errno;
		return -1;
	}
	if (pid == 0) {
		int err = 0;

		close(fds[0]);
		if (setgroups(1, &pw->pw_gid) < 0 ||
		    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
		    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
			err = errno;
		for (size_t i = 0; i < n && err == 0; i++)
			check_open(&f[i], &r[i]);
		if (fd_write_all(fds[1], &err, sizeof(err)) == 0 && err == 0)
			fd_write_all(fds[1], r, want);
		_exit(0);
	}
	close(fds[1]);
	if (read(fds[0], why, sizeof(*why)) != (ssize_t)sizeof(*why))
		*why = EIO;
	while (*why == 0 && got < want) {
		ssize_t rd = read(fds[0], (char *)r + got, want - got);

		if (rd <= 0) {
			*why = EIO;
			break;
		}
		got += (size_t)rd;
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return *why == 0 ? 0 : -1;
}

/*
 * Can every local user read path: the file o+r and each directory on
 * its real path o+x?  *mode is the file's mode.
 */
static int
check_others_read(const char *path, mode_t *mode)
{
	char *real = realpath(path, NULL), *slash;
	struct stat st;
	int open_to_all = 0;

	if (real == NULL || stat(real, &st) < 0)
		goto done;
	*mode = st.st_mode & 07777;
	if (!(st.st_mode & S_IROTH))
		goto done;
	open_to_all = 1;
	for (slash = strrchr(real, '/'); slash != NULL && open_to_all;
	     slash = strrchr(real, '/')) {
		*slash = '\0';
		if (stat(real[0] != '\0' ? real : "/", &st) < 0 ||
		    !(st.st_mode & S_IXOTH))
			open_to_all = 0;
		if (real[0] == '\0')
			break;
	}
done:
	free(real);
	return open_to_all;
}

/* The queue and log directories: Sluice's own, never shared. */
static int
check_dir(const struct conf *c, FILE *err, const char *key, const char *dir,
    const char *advice)
{
	struct stat st;
	unsigned mode;

	if (stat(dir, &st) < 0)
		return 0; /* sluiced makes it, private */
	mode = (unsigned)(st.st_mode & 07777);
	if (!S_ISDIR(st.st_mode)) {
		conf_report(c, err, &c->transport, key,
		    "%s %s: not a directory", key, dir);
		return 1;
	}
	if (st.st_mode & S_IWOTH) {
		conf_report(c, err, &c->transport, key,
		    "%s %s: every local user may write to it (mode %04o); "
		    "give Sluice a directory of its own (chmod o-rwx)",
		    key, dir, mode);
		return 1;
	}
	if (st.st_mode & (S_IROTH | S_IXOTH))
		conf_report(c, err, &c->transport, key,
		    "warning: %s %s is open to every local user (mode %04o); "
		    "%s",
		    key, dir, mode, advice);
	return 0;
}

/* An existing queue.db that others can read: sluiced will fix it. */
static void
check_queue_files(const struct conf *c, FILE *err)
{
	static const char *const names[] = {
	    "queue.db", "queue.db-wal", "queue.db-shm"};
	char path[4200];
	struct stat st;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s",
		    c->transport.queue_directory, names[i]);
		if (lstat(path, &st) == 0 && (st.st_mode & 077))
			conf_report(c, err, &c->transport, "QueueDirectory",
			    "warning: %s is readable by other users (mode "
			    "%04o); sluiced makes it 0600 when it starts",
			    path, (unsigned)(st.st_mode & 07777));
	}
}

static int
check_report_file(const struct conf *c, FILE *err, const struct check_file *f,
    const struct check_result *r, const char *as)
{
	const char *dflt =
	    conf_key_line(c, f->obj, f->key) == 0 ? " (the default)" : "";
	mode_t mode = 0;

	if (r->err != 0) {
		conf_report(c, err, f->obj, f->key, "%s %s%s: %s%s", f->key,
		    f->path, dflt, strerror(r->err), as);
		return 1;
	}
	if (r->notreg) {
		conf_report(c, err, f->obj, f->key,
		    "%s %s%s: not a regular file", f->key, f->path, dflt);
		return 1;
	}
	if (r->badcreds) {
		conf_report(c, err, f->obj, f->key,
		    "%s %s: the first line must be user:password", f->key,
		    f->path);
		return 1;
	}
	if (f->kind == CHECK_PUBLIC || !check_others_read(f->path, &mode))
		return 0;
	if (f->kind == CHECK_HASHES) {
		conf_report(c, err, f->obj, f->key,
		    "warning: %s %s can be read by every local user (mode "
		    "%04o), who could then try to crack the password hashes: "
		    "chmod o-r %s",
		    f->key, f->path, (unsigned)mode, f->path);
		return 0;
	}
	conf_report(c, err, f->obj, f->key,
	    "%s %s can be read by every local user (mode %04o); a secret "
	    "must not be: chmod o-r %s (and give it to the group of User "
	    "if sluiced needs it)",
	    f->key, f->path, (unsigned)mode, f->path);
	return 1;
}

int
conf_check(const struct conf *c, FILE *err)
{
	const struct conf_transport *t = &c->transport;
	struct passwd *pw = NULL;
	struct check_file *files = NULL;
	struct check_result *res = NULL;
	size_t n = check_collect(c, NULL);
	char as[300] = "";
	int errors = 0, why = 0;

	if (t->user != NULL && t->user[0] != '\0') {
		errno = 0;
		if ((pw = getpwnam(t->user)) == NULL) {
			conf_report(c, err, t, "User", "User %s: %s", t->user,
			    errno != 0 ? strerror(errno) : "no such user");
			errors++;
		} else if (geteuid() != 0 || pw->pw_uid == 0) {
			pw = NULL; /* sluiced will not change user either */
		} else {
			snprintf(as, sizeof(as), " (as user %s)", t->user);
		}
	}
	if (n > 0 && ((files = calloc(n, sizeof(*files))) == NULL ||
	                 (res = calloc(n, sizeof(*res))) == NULL)) {
		conf_report(c, err, t, NULL, "out of memory");
		errors++;
		goto done;
	}
	check_collect(c, files);
	if (n > 0 && check_open_all(files, n, pw, res, &why) < 0) {
		conf_report(c, err, t, "User",
		    "cannot check the files as user %s: %s", t->user,
		    strerror(why));
		errors++;
		goto done;
	}
	for (size_t i = 0; i < n; i++)
		errors += check_report_file(c, err, &files[i], &res[i], as);
	errors += check_dir(c, err, "QueueDirectory", t->queue_directory,
	    "sluiced makes it 0700 when it starts");
	check_queue_files(c, err);
	errors += check_dir(c, err, "LogDirectory", t->log_directory,
	    "the logs hold addresses and subjects: chmod o-rwx, and chmod "
	    "o-r the files already in it");
done:
	free(files);
	free(res);
	return errors;
}

struct conf *
conf_load_checked(const char *path, FILE *err)
{
	struct conf *c = conf_load(path, err);

	if (c == NULL)
		return NULL;
	if (err != NULL)
		conf_warnings(c, err);
	if (conf_check(c, err) > 0) {
		conf_free(c);
		return NULL;
	}
	return c;
}
