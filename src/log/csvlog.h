/*
 * csvlog.h - the file side shared by the protocol log and the message
 * tracking log: Exchange's W3C-style CSV files with "#" header lines,
 * daily files PREFIXyyyymmdd-N.LOG, safe CSV quoting.
 */
#ifndef SLUICE_CSVLOG_H
#define SLUICE_CSVLOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct csvlog;

/* dir is created (0750) as needed; fields is the "#Fields:" value. */
struct csvlog *csvlog_open(const char *dir, const char *prefix,
    const char *log_type, const char *fields);
void csvlog_close(struct csvlog *);
/* Close the file; the next row opens the current one again (rotation). */
void csvlog_reopen(struct csvlog *);
/*
 * Retention limits (logretain.h): MaxAge in seconds, 0 for none;
 * MaxDirectorySize in bytes, UINT64_MAX for none.  Applied at once, then
 * whenever a file is opened and every minute while rows are written.
 */
void csvlog_retain(struct csvlog *, unsigned max_age, uint64_t max_size);

/*
 * Start a row (rolls over to a new file at midnight UTC), then add
 * fields; the first field, the date-time, is written by csvlog_begin.
 */
FILE *csvlog_begin(struct csvlog *);
/*
 * One field: quoted when needed, control bytes escaped as \xNN, and a
 * value that a spreadsheet would read as a formula (it starts with '=',
 * '+', '-' or '@') neutralised with a leading "'" inside quotes (OWASP's
 * advice on CSV injection; Exchange's logs are read in Excel).
 */
void csvlog_field(FILE *, const char *, size_t);
/*
 * A field whose exact value is part of the format (the protocol log's
 * event column: "+", "-", ...): quoted and escaped like any other, never
 * neutralised.  Only for values the program itself chooses.
 */
void csvlog_field_token(FILE *, const char *, size_t);
void csvlog_end(struct csvlog *);
/*
 * While held (hold 1), finished rows are not flushed one by one, so the
 * rows of one message leave in one write; the last release (hold 0)
 * flushes.  Holds nest.
 */
void csvlog_hold(struct csvlog *, int hold);

#endif
