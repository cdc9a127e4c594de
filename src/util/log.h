/*
 * log.h - the daemon's own diagnostic log (not the protocol or tracking
 * logs, which live in src/log/).
 *
 * Three error channels (GUIDE 3.7): log_panic() for bugs, log_fatal() for
 * start-up failures that must say why, and log_warn()/log_info() for
 * everything a running server reports and survives.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERR };

/* foreground: write to stderr; otherwise syslog(3) with the given ident. */
void log_open(const char *ident, int foreground);
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
