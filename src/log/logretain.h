/*
 * logretain.h - circular logging as Exchange does it: a log's files are
 * removed once older than its MaxAge, and the oldest first while all of
 * them together are over its MaxDirectorySize
 * (Set-TransportService -MessageTrackingLogMaxAge ...).
 */
#ifndef SLUICE_LOGRETAIN_H
#define SLUICE_LOGRETAIN_H

#include <stdint.h>
#include <time.h>

/*
 * In dir, look only at the files named PREFIXyyyymmdd-N.LOG (the log's
 * own: "the total size of all log files that have the same prefix", as
 * Exchange counts it).  A file is as old as the end of its day (UTC).
 * Remove those older than max_age seconds (0: no age limit), then the
 * oldest while the total is over max_size bytes (UINT64_MAX: none).  The
 * file named keep, being written, is counted but never removed.  Returns
 * the number of files removed, or -1 when dir cannot be read.
 */
int logretain_sweep(const char *dir, const char *prefix, const char *keep,
    unsigned max_age, uint64_t max_size, time_t now);

#endif
