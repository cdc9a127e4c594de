/*
 * logclock.h - the time the CSV logs go by: their row stamps, the day
 * their files are named after, and the age retention judges files by.
 *
 * In the test build (SLUICE_TEST_HOOKS, `make asan`) the environment
 * variable SLUICE_TEST_LOG_CLOCK names a file holding a number of seconds
 * added to the real time, re-read on every call, so a test can move the
 * logs' clock days ahead while the daemon runs.  Other builds ignore it.
 */
#ifndef SLUICE_LOGCLOCK_H
#define SLUICE_LOGCLOCK_H

#include <sys/time.h>

void logclock_now(struct timeval *);

#endif
