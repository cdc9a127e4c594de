/*
 * log.h - the daemon's own diagnostic log (not the protocol or tracking
 * logs, which live in src/log/).
 *
 * Three error channels (GUIDE 3.7): log_panic() for bugs, log_fatal() for
 * start-up failures that must say why, and log_warn()/log_info() for
 * everything a running server reports and survives.
 *
 * Where lines go (see docs/operations.md, "Running as a service"):
 * stderr with a time stamp (sluiced -f), stderr with a syslog priority
 * prefix and no time stamp for the systemd journal, which stamps lines
 * itself, syslog(3), or a file of its own when there is no syslog socket.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERR };

/* foreground: write to stderr; otherwise syslog(3) with the given ident. */
void log_open(const char *ident, int foreground);
/* stderr for the systemd journal: "<3>text", no time stamp. */
void log_to_journal(void);
/* Append to a file (0640), time-stamped; -1 with errno when it fails. */
int log_to_file(const char *path);
/* Close and open the log file again (rotation); nothing for others. */
void log_reopen(void);
void log_set_level(enum log_level);
void log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_err(const char *, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void log_fatal(const char *, ...)
    __attribute__((format(printf, 1, 2)));
_Noreturn void log_panic(const char *, ...)
    __attribute__((format(printf, 1, 2)));

#endif
