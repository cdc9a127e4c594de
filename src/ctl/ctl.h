/*
 * ctl.h - sluicectl's command table.  A command is a row: its words, a
 * usage line, a one-line summary, the function that runs it, what it does
 * and examples (one per line).  "help", "help COMMAND", "COMMAND --help"
 * and the COMMANDS section of sluicectl(8) are generated from the table.
 * Commands live in files by topic (ctl_config.c, ctl_queue.c,
 * ctl_daemon.c ...).
 */
#ifndef SLUICE_CTL_H
#define SLUICE_CTL_H

#include <stddef.h>

struct ctl {
	const char *conf_path;
};

struct ctl_command {
	const char *name; /* "config check", "get-receiveconnector" */
	const char *args; /* usage of the arguments, "" when none */
	const char *summary;
	int (*run)(struct ctl *, int argc, char **argv);
	const char *help;     /* what it does, one paragraph */
	const char *examples; /* command lines, one per line */
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

/* Commands of ctl_tlsrpt.c (they talk to the running daemon) */
int ctl_tls_report(struct ctl *, int, char **);

/* Commands of ctl_tracking.c (they read the log files) */
int ctl_get_messagetrackinglog(struct ctl *, int, char **);

/* Commands of ctl_daemon.c (the running daemon, as a whole) */
int ctl_status(struct ctl *, int, char **);
int ctl_reload(struct ctl *, int, char **);
int ctl_logs_reopen(struct ctl *, int, char **);

/* Commands of ctl_keys.c */
int ctl_config_keys(struct ctl *, int, char **);

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

/*
 * Resolve as sluiced does ([Transport] Resolver, src/dns/resolver.c), on
 * a private event loop and within a bounded wait: the MX hops of domain
 * (hosts NULL) or these smart hosts (default port `port`).  0 with *out
 * filled (out->status says what DNS said), or -1 with why when no answer
 * came at all.  Used by `route` and `test-tls`.
 */
struct conf_smarthost;
struct resolver_result;
int ctl_resolve(const struct conf *, const char *domain,
    const struct conf_smarthost *hosts, size_t nhosts, unsigned port,
    struct resolver_result *out, char *why, size_t whylen);

/*
 * Run the loop until *done or seconds pass (ctl_wait.c); 0 when done.
 * Callbacks set *done; they need not break the loop.
 */
struct event_base;
int ctl_wait(struct event_base *, const int *done, int seconds);

/*
 * Commands of ctl_dane.c, and the DANE lines of `route` (the TLSA
 * records of the resolved next hops, and what they require).
 */
int ctl_tlsa(struct ctl *, int, char **);
struct conf_send_connector;
void ctl_dane_show(const struct conf *, const struct resolver_result *,
    const struct conf_send_connector *);

/*
 * The DANE and MTA-STS facts of a destination's resolved next hops, as
 * the delivery queue gathers them (ctl_desttls.c); NULL when there are
 * none (the caller unrefs the facts).
 */
struct dest_tls;
struct dest_tls *ctl_dest_tls(const struct conf *,
    const struct conf_send_connector *, const char *domain,
    const struct resolver_result *);

/* Commands of ctl_sts.c, and the MTA-STS lines of `route` */
int ctl_get_mtastspolicy(struct ctl *, int, char **);
void ctl_sts_show(const struct conf *, const struct resolver_result *,
    const struct conf_send_connector *, const char *domain);

#endif
