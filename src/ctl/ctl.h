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

/* Commands of ctl_testtls.c */
int ctl_test_tls(struct ctl *, int, char **);

/* Commands of ctl_route.c */
int ctl_route(struct ctl *, int, char **);

/* Commands of ctl_rules.c (transport rules) */
int ctl_get_transportrule(struct ctl *, int, char **);
int ctl_test_transportrule(struct ctl *, int, char **);

/* Shared by ctl_route.c and ctl_rules.c */
struct conf;
struct route;
struct route_rules;
/* Route, NextHop, TlsPolicy and Reason lines of a routed recipient. */
void ctl_route_print(const struct conf *, const struct route *,
    const char *domain, const char *addr);
/*
 * The transport rules' decisions for a message from sender to rcpt
 * alone: into rr (names point into conf), the rules that fired into
 * names.  1 when the rules refuse, delete or defer it (names says so),
 * -1 on an error (said on stderr).
 */
int ctl_rules_for(const struct conf *, const char *sender, const char *rcpt,
    struct route_rules *rr, char *names, size_t len);

#endif
