/*
 * control_admin.h - the control socket's requests about the daemon as a
 * whole: "status", "reload" and "logs reopen" (control.c serves the queue
 * requests).  sluiced registers what only it can do (reload, reopen) and
 * what only it knows (its configuration file, when it started).
 */
#ifndef SLUICE_CONTROL_ADMIN_H
#define SLUICE_CONTROL_ADMIN_H

#include <time.h>

struct buf;
struct control;

struct control_admin {
	/* Reload; describe what changed, or the errors ("error: ..."). */
	int (*reload)(void *arg, struct buf *report);
	void (*logs_reopen)(void *arg);
	void *arg;
	const char *conf_path;
	time_t started;
	time_t loaded; /* kept up to date by sluiced on every reload */
};

/* One daemon, one set of hooks; NULL until sluiced registers them. */
void control_admin_register(const struct control_admin *);

/*
 * Answer line if it is one of ours (1), else leave it to control.c (0).
 */
int control_admin_run(
    const struct control *, const char *line, struct buf *out);

#endif
