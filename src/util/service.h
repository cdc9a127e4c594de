/*
 * service.h - how sluiced runs under a service manager: in the
 * foreground for `sluiced -f` and for systemd (Type=notify, readiness
 * through sd_notify), detached with a PID file elsewhere.
 */
#ifndef SLUICE_SERVICE_H
#define SLUICE_SERVICE_H

enum service_mode {
	SERVICE_FOREGROUND, /* -f: stay, log to stderr with time stamps */
	SERVICE_SYSTEMD,    /* started by systemd: stay, log to the journal */
	SERVICE_DETACHED,   /* elsewhere: fork, setsid, log to syslog */
};

/*
 * -f wins; then systemd is recognised by NOTIFY_SOCKET (Type=notify), or
 * by INVOCATION_ID when no PID file is asked for (Type=simple or exec:
 * a unit that wants a PID file is Type=forking and wants us to detach).
 */
enum service_mode service_mode_pick(int foreground, const char *pidfile);

/*
 * Detach: fork and setsid.  The parent waits until the child calls
 * service_ready() and exits 0, or exits 1 when the child dies first (the
 * child's start-up errors still go to the terminal's stderr).  Must run
 * before any thread is started.
 */
void service_detach(void);

/*
 * Write our PID to path (O_NOFOLLOW, 0644) and remove it at exit.  -1
 * with errno EEXIST (and *running set) when it names a live sluiced, or
 * with errno from open/write.
 */
int service_pidfile(const char *path, long *running);
void service_pidfile_remove(void);

/*
 * Listeners are bound and the daemon serves: READY=1 to systemd (a no-op
 * without NOTIFY_SOCKET), release a waiting parent and, when detached,
 * point stdin, stdout and stderr at /dev/null.
 */
void service_ready(const char *status);
/* systemd: RELOADING=1 ... READY=1 around a reload; STOPPING=1. */
void service_reloading(void);
void service_reloaded(const char *status);
void service_stopping(void);

#endif
