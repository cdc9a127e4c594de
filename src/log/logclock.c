/*
 * logclock.c - the logs' clock (see logclock.h).  Only the CSV logs read
 * it: the queue, the retry schedule and every protocol timer keep the
 * real clock even in the test build.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>

#include "log/logclock.h"

#ifdef SLUICE_TEST_HOOKS
static long long
logclock_offset(void)
{
	const char *path = getenv("SLUICE_TEST_LOG_CLOCK");
	long long off = 0;
	FILE *fp;

	if (path == NULL || (fp = fopen(path, "r")) == NULL)
		return 0;
	if (fscanf(fp, "%lld", &off) != 1)
		off = 0;
	fclose(fp);
	return off;
}
#endif

void
logclock_now(struct timeval *tv)
{
	gettimeofday(tv, NULL);
#ifdef SLUICE_TEST_HOOKS
	tv->tv_sec += (time_t)logclock_offset();
#endif
}
