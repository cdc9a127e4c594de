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

/*
 * Run the loop until *done or seconds pass (ctl_wait.c); 0 when done.
 * Callbacks set *done; they need not break the loop.
 */
struct event_base;
int ctl_wait(struct event_base *, const int *done, int seconds);

/* Commands of ctl_dane.c, and the DANE lines of `route` */
int ctl_tlsa(struct ctl *, int, char **);
struct resolver;
struct resolver_result;
struct conf;
struct conf_send_connector;
void ctl_dane_show(struct event_base *, struct resolver *,
    const struct resolver_result *, const struct conf *,
    const struct conf_send_connector *);

/* Commands of ctl_sts.c, and the MTA-STS lines of `route` */
int ctl_get_mtastspolicy(struct ctl *, int, char **);
void ctl_sts_show(struct event_base *, struct resolver *,
    const struct resolver_result *, const struct conf *,
    const struct conf_send_connector *, const char *domain);

#endif
