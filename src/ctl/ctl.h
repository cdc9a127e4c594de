/*
 * ctl.h - sluicectl's command table.  A command is a row: its words, a
 * usage line, a one-line summary and the function that runs it.  "help"
 * is generated from the table.  Commands live in files by topic
 * (ctl_config.c, and later ctl_queue.c for the control socket).
 */
#ifndef SLUICE_CTL_H
#define SLUICE_CTL_H

struct ctl {
	const char *conf_path;
};

struct ctl_command {
	const char *name; /* "config check", "get-receiveconnector" */
	const char *args; /* usage of the arguments, "" when none */
	const char *summary;
	int (*run)(struct ctl *, int argc, char **argv);
};

/* Commands of ctl_config.c */
int ctl_config_check(struct ctl *, int, char **);
int ctl_config_dump(struct ctl *, int, char **);
int ctl_get_transportconfig(struct ctl *, int, char **);
int ctl_get_receiveconnector(struct ctl *, int, char **);
int ctl_get_sendconnector(struct ctl *, int, char **);
int ctl_get_accepteddomain(struct ctl *, int, char **);
int ctl_get_certificate(struct ctl *, int, char **);

/* Commands of ctl_queue.c (they talk to the running daemon) */
int ctl_queue(struct ctl *, int, char **);
int ctl_messages(struct ctl *, int, char **);
int ctl_retry(struct ctl *, int, char **);
int ctl_suspend(struct ctl *, int, char **);
int ctl_resume(struct ctl *, int, char **);
int ctl_remove(struct ctl *, int, char **);
int ctl_export(struct ctl *, int, char **);
/*
 * Send one request line to the daemon's control socket and print its
 * answer; 0 when it succeeded, 1 when it failed (an "error: " answer, or
 * no daemon).
 */
int ctl_ask(struct ctl *, const char *request);

/* Commands of ctl_posture.c (they talk to the running daemon) */
int ctl_get_tlsposture(struct ctl *, int, char **);

/* Commands of ctl_tracking.c (they read the log files) */
int ctl_get_messagetrackinglog(struct ctl *, int, char **);

/* Commands of ctl_testtls.c */
int ctl_test_tls(struct ctl *, int, char **);

/* Commands of ctl_route.c */
int ctl_route(struct ctl *, int, char **);

#endif
