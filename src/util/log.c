/*
 * log.c - diagnostic logging to stderr (foreground), the systemd journal,
 * syslog, or a file.
 *
 * Messages are single lines; callers never pass peer-controlled bytes
 * without escaping them first (see str_escape in util/str.h), so a log line
 * cannot be forged by a client.  The delivery threads log too, so the file
 * destination is guarded by a mutex: log_reopen() swaps the FILE while
 * another thread may be writing.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

enum log_dest {
	LOG_DEST_STDERR,
	LOG_DEST_JOURNAL,
	LOG_DEST_SYSLOG,
	LOG_DEST_FILE
};

static enum log_dest log_dest = LOG_DEST_STDERR;
static enum log_level log_min = LOG_LVL_INFO;
static const char *log_ident = "sluice";
static FILE *log_fp;
static char *log_path;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void
log_open(const char *ident, int foreground)
{
	log_ident = ident;
	log_dest = foreground ? LOG_DEST_STDERR : LOG_DEST_SYSLOG;
	if (!foreground)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_to_journal(void)
{
	log_dest = LOG_DEST_JOURNAL;
}

static FILE *
log_file_open(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	FILE *fp;

	if (fd < 0)
		return NULL;
	if ((fp = fdopen(fd, "a")) == NULL) {
		close(fd);
		return NULL;
	}
	setvbuf(fp, NULL, _IOLBF, 0);
	return fp;
}

int
log_to_file(const char *path)
{
	FILE *fp = log_file_open(path);
	char *copy;

	if (fp == NULL)
		return -1;
	if ((copy = strdup(path)) == NULL) {
		fclose(fp);
		errno = ENOMEM;
		return -1;
	}
	pthread_mutex_lock(&log_lock);
	if (log_fp != NULL)
		fclose(log_fp);
	free(log_path);
	log_fp = fp;
	log_path = copy;
	log_dest = LOG_DEST_FILE;
	pthread_mutex_unlock(&log_lock);
	return 0;
}

void
log_reopen(void)
{
	FILE *fp;

	if (log_dest != LOG_DEST_FILE)
		return;
	/* Open the new one first: if that fails, keep writing the old. */
	if ((fp = log_file_open(log_path)) == NULL) {
		log_err("cannot reopen %s: %s", log_path, strerror(errno));
		return;
	}
	pthread_mutex_lock(&log_lock);
	fclose(log_fp);
	log_fp = fp;
	pthread_mutex_unlock(&log_lock);
}

void
log_set_level(enum log_level lvl)
{
	log_min = lvl;
}

static void
log_vwrite(enum log_level lvl, const char *fmt, va_list ap)
{
	static const char *names[] = {"debug", "info", "warning", "error"};
	static const int prio[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
	char stamp[32];
	struct tm tm;
	time_t now;
	FILE *out = stderr;

	if (lvl < log_min)
		return;
	switch (log_dest) {
	case LOG_DEST_SYSLOG:
		vsyslog(prio[lvl], fmt, ap);
		return;
	case LOG_DEST_JOURNAL:
		/* sd-daemon(3): the journal reads "<N>" as the priority. */
		fprintf(stderr, "<%d>", prio[lvl]);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		return;
	case LOG_DEST_FILE:
	case LOG_DEST_STDERR:
		break;
	}
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (log_dest == LOG_DEST_FILE) {
		pthread_mutex_lock(&log_lock);
		out = log_fp;
	}
	fprintf(out, "%s %s[%s]: ", stamp, log_ident, names[lvl]);
	vfprintf(out, fmt, ap);
	fputc('\n', out);
	if (log_dest == LOG_DEST_FILE)
		pthread_mutex_unlock(&log_lock);
}

#define LOG_FN(fn, lvl)                                                        \
	void fn(const char *fmt, ...)                                          \
	{                                                                      \
		va_list ap;                                                    \
		va_start(ap, fmt);                                             \
		log_vwrite(lvl, fmt, ap);                                      \
		va_end(ap);                                                    \
	}

LOG_FN(log_debug, LOG_LVL_DEBUG)
LOG_FN(log_info, LOG_LVL_INFO)
LOG_FN(log_warn, LOG_LVL_WARN)
LOG_FN(log_err, LOG_LVL_ERR)

void
log_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERR, fmt, ap);
	va_end(ap);
	exit(1);
}

void
log_panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERR, fmt, ap);
	va_end(ap);
	abort();
}
