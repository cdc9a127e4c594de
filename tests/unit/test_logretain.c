/*
 * test_logretain.c - circular logging (src/log/logretain.c) as a table:
 * files in a directory, the limits and the time, and which files remain.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "log/logretain.h"

#define DAY 86400
/* 2026-12-10T12:00:00Z */
#define NOON_DEC10 ((time_t)1796904000)

struct file {
	const char *name;
	size_t size;
};

struct retain_case {
	const char *what;
	struct file files[8];
	const char *keep;
	unsigned max_age;
	uint64_t max_size;
	time_t now;
	const char *remain; /* names left, sorted, space-separated */
	int removed;
};

static const struct retain_case cases[] = {
    {"no limits: nothing goes",
        {{"MSGTRK20261201-1.LOG", 10}, {"MSGTRK20261210-1.LOG", 10}},
        "MSGTRK20261210-1.LOG", 0, UINT64_MAX, NOON_DEC10,
        "MSGTRK20261201-1.LOG MSGTRK20261210-1.LOG", 0},
    {"age: a file is as old as the end of its day",
        {{"MSGTRK20261207-1.LOG", 10}, {"MSGTRK20261208-1.LOG", 10},
            {"MSGTRK20261209-1.LOG", 10}, {"MSGTRK20261210-1.LOG", 10}},
        "MSGTRK20261210-1.LOG", 2 * DAY, UINT64_MAX, NOON_DEC10,
        /* the 7th ended 2.5 days ago; the 8th 1.5 days ago */
        "MSGTRK20261208-1.LOG MSGTRK20261209-1.LOG MSGTRK20261210-1.LOG", 1},
    {"age 0 keeps everything",
        {{"MSGTRK20200101-1.LOG", 10}, {"MSGTRK20261210-1.LOG", 10}},
        "MSGTRK20261210-1.LOG", 0, UINT64_MAX, NOON_DEC10,
        "MSGTRK20200101-1.LOG MSGTRK20261210-1.LOG", 0},
    {"size: the oldest go first, by day then sequence number",
        {{"RECV20261208-2.LOG", 100}, {"RECV20261208-1.LOG", 100},
            {"RECV20261209-1.LOG", 100}, {"RECV20261210-1.LOG", 100}},
        "RECV20261210-1.LOG", 0, 250, NOON_DEC10,
        "RECV20261209-1.LOG RECV20261210-1.LOG", 2},
    {"size: the open file stays even when it alone is over",
        {{"RECV20261209-1.LOG", 100}, {"RECV20261210-1.LOG", 500}},
        "RECV20261210-1.LOG", 0, 250, NOON_DEC10, "RECV20261210-1.LOG", 1},
    {"only the log's own files are counted or removed",
        {{"RECV20261201-1.LOG", 1000}, {"RECV20261201-1.LOG.gz", 1000},
            {"notes.txt", 1000}, {"RECVX20261201-1.LOG", 1000},
            {"SEND20261201-1.LOG", 1000}, {"RECV2026120-1.LOG", 1000},
            {"RECV20261210-1.LOG", 10}},
        "RECV20261210-1.LOG", 2 * DAY, 500, NOON_DEC10,
        "RECV2026120-1.LOG RECV20261201-1.LOG.gz RECV20261210-1.LOG "
        "RECVX20261201-1.LOG SEND20261201-1.LOG notes.txt",
        1},
    {"age and size together",
        {{"SEND20261201-1.LOG", 10}, {"SEND20261208-1.LOG", 300},
            {"SEND20261209-1.LOG", 300}, {"SEND20261210-1.LOG", 10}},
        "SEND20261210-1.LOG", 5 * DAY, 400, NOON_DEC10,
        "SEND20261209-1.LOG SEND20261210-1.LOG", 2},
    {"no file open yet: every file may go",
        {{"SEND20261209-1.LOG", 300}, {"SEND20261210-1.LOG", 300}}, NULL, 0,
        400, NOON_DEC10, "SEND20261210-1.LOG", 1},
};

static const char *
prefix_of(const char *name)
{
	if (strncmp(name, "MSGTRK", 6) == 0)
		return "MSGTRK";
	if (strncmp(name, "SEND", 4) == 0)
		return "SEND";
	return "RECV";
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
remaining(const char *dir, char *out, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char *names[32];
	size_t n = 0, o = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL && n < 32)
		if (e->d_name[0] != '.')
			names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, n, sizeof(names[0]), by_name);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		o += (size_t)snprintf(
		    out + o, len - o, "%s%s", i ? " " : "", names[i]);
		free(names[i]);
	}
}

static void
test_sweep_table(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const struct retain_case *t = &cases[c];
		char dir[] = "/tmp/test_logretain.XXXXXX", path[256];
		char left[1024];
		const char *prefix = prefix_of(t->files[0].name);
		int removed;

		assert_non_null(mkdtemp(dir));
		for (size_t i = 0; i < 8 && t->files[i].name != NULL; i++) {
			FILE *fp;

			snprintf(
			    path, sizeof(path), "%s/%s", dir, t->files[i].name);
			fp = fopen(path, "w");
			assert_non_null(fp);
			for (size_t b = 0; b < t->files[i].size; b++)
				fputc('x', fp);
			fclose(fp);
		}
		removed = logretain_sweep(
		    dir, prefix, t->keep, t->max_age, t->max_size, t->now);
		remaining(dir, left, sizeof(left));
		if (strcmp(left, t->remain) != 0 || removed != t->removed)
			print_error("case \"%s\": left [%s], removed %d; want "
			            "[%s], %d\n",
			    t->what, left, removed, t->remain, t->removed);
		assert_string_equal(left, t->remain);
		assert_int_equal(removed, t->removed);
		/* clean up */
		for (size_t i = 0; i < 8 && t->files[i].name != NULL; i++) {
			snprintf(
			    path, sizeof(path), "%s/%s", dir, t->files[i].name);
			unlink(path);
		}
		rmdir(dir);
	}
}

static void
test_sweep_missing_dir(void **state)
{
	(void)state;
	assert_int_equal(logretain_sweep("/nonexistent/sluice-logs", "RECV",
	                     NULL, DAY, 1, NOON_DEC10),
	    -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sweep_table),
	    cmocka_unit_test(test_sweep_missing_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
