/*
 * logretain.c - removing old log files (see logretain.h).
 *
 * The file name carries the day and the sequence number, so the order of
 * files and their age come from the names, never from mtimes an
 * administrator's copy or touch may have changed.  At most
 * LOGRETAIN_FILES_MAX files are considered in one sweep (a daily file per
 * log makes that more than ten years); beyond that the newest are kept
 * out of the count, which errs on the side of removing too little.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log/logretain.h"
#include "util/log.h"

#define LOGRETAIN_FILES_MAX 4096

struct logretain_file {
	char name[64];
	long day; /* yyyymmdd */
	long seq;
	time_t end; /* the end of its day, UTC */
	uint64_t size;
	int keep;
};

/* PREFIXyyyymmdd-N.LOG: day and N, or -1. */
static int
logretain_parse(const char *name, const char *prefix, long *day, long *seq)
{
	size_t plen = strlen(prefix);
	const char *p = name + plen;
	char *end;

	if (strncmp(name, prefix, plen) != 0)
		return -1;
	for (int i = 0; i < 8; i++)
		if (p[i] < '0' || p[i] > '9')
			return -1;
	*day = strtol(p, &end, 10);
	if (end != p + 8 || *end != '-' || end[1] < '1' || end[1] > '9')
		return -1;
	*seq = strtol(end + 1, &end, 10);
	if (strcmp(end, ".LOG") != 0)
		return -1;
	return 0;
}

static time_t
logretain_day_end(long day)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = (int)(day / 10000) - 1900;
	tm.tm_mon = (int)(day / 100 % 100) - 1;
	tm.tm_mday = (int)(day % 100) + 1; /* midnight after it */
	return timegm(&tm);
}

static int
logretain_older(const void *a, const void *b)
{
	const struct logretain_file *x = a, *y = b;

	if (x->day != y->day)
		return x->day < y->day ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int
logretain_remove(const char *dir, struct logretain_file *f, const char *why)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/%s", dir, f->name);
	if (unlink(path) < 0 && errno != ENOENT) {
		log_warn("log retention: cannot remove %s: %s", path,
		    strerror(errno));
		return 0;
	}
	log_info("log retention: removed %s (%s)", path, why);
	return 1;
}

int
logretain_sweep(const char *dir, const char *prefix, const char *keep,
    unsigned max_age, uint64_t max_size, time_t now)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct logretain_file *files;
	size_t n = 0;
	uint64_t total = 0;
	int removed = 0;

	if (d == NULL)
		return -1;
	if ((files = calloc(LOGRETAIN_FILES_MAX, sizeof(*files))) == NULL) {
		closedir(d);
		return -1;
	}
	while ((e = readdir(d)) != NULL && n < LOGRETAIN_FILES_MAX) {
		struct logretain_file *f = &files[n];
		char path[4200];
		struct stat st;

		if (strlen(e->d_name) >= sizeof(f->name) ||
		    logretain_parse(e->d_name, prefix, &f->day, &f->seq) < 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		memcpy(f->name, e->d_name, strlen(e->d_name) + 1);
		f->end = logretain_day_end(f->day);
		f->size = (uint64_t)st.st_size;
		f->keep = keep != NULL && strcmp(f->name, keep) == 0;
		n++;
	}
	closedir(d);
	qsort(files, n, sizeof(*files), logretain_older);
	for (size_t i = 0; i < n; i++) {
		if (!files[i].keep && max_age > 0 && now > files[i].end &&
		    (uint64_t)(now - files[i].end) > max_age &&
		    logretain_remove(dir, &files[i], "older than MaxAge")) {
			files[i].size = 0;
			files[i].keep = -1; /* gone */
			removed++;
		}
		total += files[i].size;
	}
	for (size_t i = 0; i < n && max_size != UINT64_MAX && total > max_size;
	     i++) {
		if (files[i].keep != 0)
			continue;
		if (logretain_remove(dir, &files[i], "over MaxDirectorySize")) {
			total -= files[i].size;
			removed++;
		}
	}
	free(files);
	return removed;
}
