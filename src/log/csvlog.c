/*
 * csvlog.c - CSV log files in Exchange's layout (see csvlog.h).
 *
 * Rows are buffered by stdio and flushed at the end of every row: a log is
 * not the queue, so it is never fsync'd, but it must not lose the last
 * rows of a crashed daemon either.  Field content comes from peers, so
 * every byte below 0x20 or 0x7f is written as \xNN and quotes are doubled:
 * a client can never start a new row or a new field of its own.
 *
 * Nor a formula: a field that starts with '=', '+', '-' or '@' is opened
 * as a formula by Excel and LibreOffice (CSV injection, e.g. a sender
 * address "=1+1@example.com" or a reply "-2+3"), and these logs are read
 * in spreadsheets.  Such a field is written quoted with a "'" before its
 * first byte, OWASP's advice: shown as text, the value still readable.
 * Tab and CR, the other two OWASP names, are already written as \x09 and
 * \x0D.  The protocol log's event column ("+" connect, "-" disconnect)
 * is part of Exchange's format and goes through csvlog_field_token().
 *
 * Retention (logretain.c) runs when a file is opened, when the limits are
 * set (start, reload) and at most once a CSVLOG_SWEEP_SECONDS while rows
 * are written, so files go even on a day that never rolls over.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

#include "log/csvlog.h"
#include "log/logclock.h"
#include "log/logretain.h"
#include "util/log.h"
#include "util/mkdirs.h"

/* How often a busy log looks for files to remove. */
#define CSVLOG_SWEEP_SECONDS 60

struct csvlog {
	char *dir;
	char *prefix;
	char *log_type;
	char *fields;
	FILE *fp;
	char day[16]; /* yyyymmdd of the open file */
	/* retention: MaxAge (0: none) and MaxDirectorySize (UINT64_MAX) */
	unsigned max_age;
	uint64_t max_size;
	time_t last_sweep;
	unsigned held; /* csvlog_hold() nesting: no flush per row */
};

struct csvlog *
csvlog_open(const char *dir, const char *prefix, const char *log_type,
    const char *fields)
{
	struct csvlog *l;

	if (mkdirs(dir, 0700) < 0) {
		log_err("log directory %s: %s", dir, strerror(errno));
		return NULL;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->dir = strdup(dir);
	l->prefix = strdup(prefix);
	l->log_type = strdup(log_type);
	l->fields = strdup(fields);
	l->max_size = UINT64_MAX;
	if (l->dir == NULL || l->prefix == NULL || l->log_type == NULL ||
	    l->fields == NULL) {
		csvlog_close(l);
		return NULL;
	}
	return l;
}

void
csvlog_reopen(struct csvlog *l)
{
	if (l->fp != NULL)
		fclose(l->fp);
	l->fp = NULL;
	l->day[0] = '\0';
}

void
csvlog_close(struct csvlog *l)
{
	if (l == NULL)
		return;
	csvlog_reopen(l);
	free(l->dir);
	free(l->prefix);
	free(l->log_type);
	free(l->fields);
	free(l);
}

/* Remove what the limits say must go; the open file always stays. */
static void
csvlog_sweep(struct csvlog *l, time_t now)
{
	char keep[64];

	l->last_sweep = now;
	if (l->max_age == 0 && l->max_size == UINT64_MAX)
		return;
	snprintf(keep, sizeof(keep), "%s%s-1.LOG", l->prefix, l->day);
	logretain_sweep(l->dir, l->prefix, l->day[0] ? keep : NULL, l->max_age,
	    l->max_size, now);
}

void
csvlog_retain(struct csvlog *l, unsigned max_age, uint64_t max_size)
{
	struct timeval tv;

	l->max_age = max_age;
	l->max_size = max_size;
	logclock_now(&tv);
	csvlog_sweep(l, tv.tv_sec);
}

static void
csvlog_stamp(char *out, size_t len, struct tm *tm, time_t *now)
{
	struct timeval tv;

	char base[32];

	logclock_now(&tv);
	*now = tv.tv_sec;
	gmtime_r(&tv.tv_sec, tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", tm);
	snprintf(out, len, "%s.%03dZ", base, (int)(tv.tv_usec / 1000));
}

/* Open today's file, appending; a new file gets the header lines. */
static int
csvlog_file(struct csvlog *l, const struct tm *tm, const char *stamp)
{
	char day[16], path[4200];
	struct stat st;

	strftime(day, sizeof(day), "%Y%m%d", tm);
	if (l->fp != NULL && strcmp(day, l->day) == 0)
		return 0;
	csvlog_reopen(l);
	snprintf(path, sizeof(path), "%s/%s%s-1.LOG", l->dir, l->prefix, day);
	if ((l->fp = fopen(path, "a")) == NULL) {
		log_err("log %s: %s", path, strerror(errno));
		return -1;
	}
	memcpy(l->day, day, sizeof(l->day));
	l->last_sweep = 0; /* a new file: look at the old ones now */
	if (fstat(fileno(l->fp), &st) == 0 && st.st_size == 0)
		fprintf(l->fp,
		    "#Software: Sluice\r\n#Version: 1.0\r\n#Log-type: %s\r\n"
		    "#Date: %s\r\n#Fields: %s\r\n",
		    l->log_type, stamp, l->fields);
	return 0;
}

FILE *
csvlog_begin(struct csvlog *l)
{
	char stamp[48];
	struct tm tm;
	time_t now;

	csvlog_stamp(stamp, sizeof(stamp), &tm, &now);
	if (csvlog_file(l, &tm, stamp) < 0)
		return NULL;
	if (now - l->last_sweep >= CSVLOG_SWEEP_SECONDS)
		csvlog_sweep(l, now);
	fputs(stamp, l->fp);
	return l->fp;
}

/* Would a spreadsheet take a cell starting like this for a formula? */
static int
csvlog_formula(const char *s, size_t n)
{
	return n > 0 &&
	       (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@');
}

static void
csvlog_write(FILE *fp, const char *s, size_t n, int neutralise)
{
	int quote = neutralise;

	for (size_t i = 0; i < n; i++)
		if (s[i] == ',' || s[i] == '"' || (unsigned char)s[i] < 0x20 ||
		    s[i] == 0x7f)
			quote = 1;
	fputc(',', fp);
	if (!quote) {
		fwrite(s, 1, n, fp);
		return;
	}
	fputc('"', fp);
	if (neutralise)
		fputc('\'', fp);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"')
			fputs("\"\"", fp);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(fp, "\\x%02X", ch);
		else
			fputc(ch, fp);
	}
	fputc('"', fp);
}

void
csvlog_field(FILE *fp, const char *s, size_t n)
{
	csvlog_write(fp, s, n, csvlog_formula(s, n));
}

void
csvlog_field_token(FILE *fp, const char *s, size_t n)
{
	csvlog_write(fp, s, n, 0);
}

void
csvlog_end(struct csvlog *l)
{
	fputs("\r\n", l->fp);
	if (l->held == 0)
		fflush(l->fp);
}

void
csvlog_hold(struct csvlog *l, int hold)
{
	if (hold)
		l->held++;
	else if (l->held > 0 && --l->held == 0 && l->fp != NULL)
		fflush(l->fp);
}
