/*
 * conf.h - Sluice's configuration: the immutable result of loading
 * sluice.conf (SPEC section 2).
 *
 * conf_load() parses the INI file through inih against one declarative key
 * table, applies defaults, validates Exchange's constraints and returns a
 * struct conf that nobody modifies afterwards.  On SIGHUP the daemon loads
 * a new one and swaps the pointer whole; a config that fails to load is
 * never used.  Errors are reported as "FILE:LINE: reason".
 *
 * Times are stored in seconds, sizes in bytes; SIZE_UNLIMITED marks the
 * Exchange value "unlimited".
 */
#ifndef SLUICE_CONF_H
#define SLUICE_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define SIZE_UNLIMITED UINT64_MAX

/* AuthMechanism flags (Set-ReceiveConnector -AuthMechanism). */
enum {
	AUTHM_TLS = 1 << 0,
	AUTHM_BASIC = 1 << 1,
	AUTHM_BASIC_REQUIRE_TLS = 1 << 2,
	AUTHM_EXTERNAL_AUTHORITATIVE = 1 << 3,
};

/* PermissionGroups flags. */
enum {
	PERM_ANONYMOUS_USERS = 1 << 0,
	PERM_EXCHANGE_USERS = 1 << 1,
	PERM_EXCHANGE_SERVERS = 1 << 2,
	PERM_PARTNERS = 1 << 3,
};

enum conf_domain_type {
	DOMAIN_AUTHORITATIVE,
	DOMAIN_INTERNAL_RELAY,
	DOMAIN_EXTERNAL_RELAY,
};

/* Ordered: a higher level implies every check of the lower ones. */
enum tls_auth_level {
	TLS_AUTH_NONE, /* TlsAuthLevel not set */
	TLS_AUTH_ENCRYPTION_ONLY,
	TLS_AUTH_CERTIFICATE_VALIDATION,
	TLS_AUTH_DOMAIN_VALIDATION,
};

enum smarthost_auth {
	SMARTHOST_AUTH_NONE,
	SMARTHOST_AUTH_BASIC,
	SMARTHOST_AUTH_BASIC_REQUIRE_TLS
};

enum proto_log_level { PROTOLOG_NONE, PROTOLOG_VERBOSE };

/* SmtpDaneMode and MtaStsMode (Exchange Online's outbound connectors). */
enum conf_dane_mode {
	DANE_MODE_NONE,
	DANE_MODE_OPPORTUNISTIC,
	DANE_MODE_MANDATORY,
};
enum conf_sts_mode { MTASTS_MODE_NONE, MTASTS_MODE_OPPORTUNISTIC };

/* A list of strings parsed from a comma-separated value. */
struct conf_strlist {
	char **v;
	size_t n;
};

/* A listening address: Bindings = 0.0.0.0:25, [::]:25 */
struct conf_binding {
	struct sockaddr_storage ss;
	socklen_t sslen;
	char text[80]; /* as written, normalised: "0.0.0.0:25", "[::]:25" */
};

/*
 * An address range: CIDR, "a-b" or a single address.  Addresses are kept
 * as 16-byte big-endian values (IPv4 mapped into ::ffff:0:0/96) so that
 * comparisons are plain memcmp.  "size" is the number of addresses as a
 * log2 (128 for ::/0, 32 for 0.0.0.0/0 on the mapped scale it is 32 too):
 * the smaller, the more specific.
 */
struct conf_iprange {
	uint8_t lo[16];
	uint8_t hi[16];
	int family; /* AF_INET or AF_INET6 as written */
	int bits;   /* host bits spanned: 0 = one address; smaller is more
	               specific */
	char text[96];
};

struct conf_transport {
	struct conf_strlist send_domain_secure; /* TLSSendDomainSecureList */
	struct conf_strlist
	    receive_domain_secure;             /* TLSReceiveDomainSecureList */
	uint64_t max_receive_size;             /* MaxReceiveSize, bytes */
	uint64_t max_send_size;                /* MaxSendSize */
	unsigned max_recipient_envelope_limit; /* MaxRecipientEnvelopeLimit */
	unsigned message_expiration_timeout;   /* seconds */
	unsigned transient_failure_retry_interval;
	unsigned transient_failure_retry_attempts;
	unsigned outbound_connection_failure_retry_interval;
	unsigned delay_notification_timeout;
	unsigned safety_net_hold_time; /* finished messages kept, seconds */
	char *queue_directory;
	char *log_directory;
	char *trusted_ca_file;
	char *crl_file; /* PEM CRLs checked for peer certificates; "" = none */
	char *resolver; /* "system" or "ADDR@PORT" */
	/* DNSSEC trust anchors (DS or DNSKEY records); "" = no validation */
	char *dnssec_trust_anchor_file;
	char *tls_ciphers;      /* TLS 1.2 cipher list (OpenSSL syntax) */
	char *tls_ciphersuites; /* TLS 1.3 suites */
	char *user;           /* run as this user after binding; empty = stay */
	char *control_socket; /* path of sluicectl's control socket */
	/* sluice-sendmail's socket (world-connectable); "" = none */
	char *local_submission_socket;
	char *users_file; /* "user:crypt-hash" lines for AUTH */
	/* RCPT to an Authoritative domain needs an existing mailbox */
	int recipient_validation_enabled;
	int message_tracking_log_subject_logging_enabled;
	unsigned max_per_domain_outbound_connections;
	unsigned max_outbound_connections;
	/* the status page and /metrics (loopback only); none: off */
	struct conf_binding *status_listen;
	size_t nstatus_listen;
	int tls_posture_enabled; /* record outbound TLS per partner */
	/* TLS reports (RFC 8460): organization-name, contact-info; reports
	 * are sent only when the organization is set */
	char *tls_reporting_organization;
	char *tls_reporting_contact;
	/* log retention (Set-TransportService): seconds, 0 = no age limit;
	 * bytes, SIZE_UNLIMITED = no size limit */
	unsigned message_tracking_log_max_age;
	uint64_t message_tracking_log_max_directory_size;
	unsigned receive_protocol_log_max_age;
	uint64_t receive_protocol_log_max_directory_size;
	unsigned send_protocol_log_max_age;
	uint64_t send_protocol_log_max_directory_size;
	/* back pressure (server/backpressure.h), EdgeTransport.exe.config */
	int enable_resource_monitoring;
	unsigned resource_monitoring_interval; /* seconds */
	unsigned percentage_database_disk_space_used_high_threshold; /* 0 */
	unsigned percentage_private_bytes_used_high_threshold;
	unsigned percentage_physical_memory_used_limit;
};

struct conf_certificate {
	char *name;
	char *certificate_file;
	char *key_file;
	int line;
};

struct conf_accepted_domain {
	char *name; /* lower case */
	enum conf_domain_type type;
	char *mailboxes; /* Maildir pattern, %d domain, %u local part */
	int line;
};

struct conf_receive_connector {
	char *name;
	struct conf_binding *bindings;
	size_t nbindings;
	struct conf_iprange *remote_ranges;
	size_t nremote_ranges;
	unsigned auth_mechanism;    /* AUTHM_* flags; 0 = None */
	unsigned permission_groups; /* PERM_* flags */
	int require_tls;
	int domain_secure_enabled;
	char *fqdn;
	char *banner; /* full greeting line, e.g. "220 mx ESMTP" */
	char *tls_certificate_name; /* name of a [Certificate] section */
	uint64_t max_message_size;
	uint64_t max_header_size;
	unsigned max_recipients_per_message;
	unsigned max_hop_count;
	unsigned max_inbound_connection;
	unsigned max_inbound_connection_per_source;
	unsigned max_protocol_errors;
	unsigned connection_timeout;            /* seconds */
	unsigned connection_inactivity_timeout; /* seconds */
	unsigned tarpit_interval;               /* seconds */
	unsigned greeting_delay;                /* seconds before the banner */
	uint64_t min_data_rate;      /* bytes per second, Sluice's own */
	uint64_t message_rate_limit; /* per minute; SIZE_UNLIMITED */
	int pipelining_enabled;
	int chunking_enabled;
	int eight_bit_mime_enabled;
	int smtp_utf8_enabled;
	int dsn_enabled;
	int enhanced_status_codes_enabled;
	enum proto_log_level protocol_logging_level;
	int enabled; /* Enabled = false: no listening, no serving */
	int line;
};

struct conf_address_space {
	char *domain; /* "contoso.com", "*.contoso.com" or "*" */
	unsigned cost;
};

struct conf_smarthost {
	char *host;          /* name or address literal without brackets */
	unsigned short port; /* 0: the connector's Port */
	int literal;         /* an IP address (bracketed or not): no DNS */
};

struct conf_send_connector {
	char *name;
	struct conf_address_space *address_spaces;
	size_t naddress_spaces;
	int dns_routing_enabled;
	struct conf_smarthost *smart_hosts;
	size_t nsmart_hosts;
	unsigned short port;
	int ignore_starttls;
	int require_tls;
	enum tls_auth_level tls_auth_level;
	char *tls_domain;
	char *tls_certificate_name;
	int domain_secure_enabled;
	enum smarthost_auth smart_host_auth_mechanism;
	char *authentication_credential; /* file path */
	char *fqdn;
	uint64_t max_message_size;
	int enabled;
	enum proto_log_level protocol_logging_level;
	unsigned connection_inactivity_timeout;
	/* used only when a transport rule routes to it (SPEC 5) */
	int is_transport_rule_scoped;
	/* keep X-Sluice-Organization-* headers (a partner of our own) */
	int cloud_services_mail_enabled;
	enum conf_dane_mode smtp_dane_mode; /* SmtpDaneMode */
	enum conf_sts_mode mta_sts_mode;    /* MtaStsMode */
	int line;
};

/* Transport rules (SPEC 5): Mode, the scopes, SenderAddressLocation. */
enum rule_mode {
	RULE_MODE_ENFORCE,
	RULE_MODE_AUDIT,
	RULE_MODE_AUDIT_AND_NOTIFY,
};

enum rule_scope {
	RULE_SCOPE_NONE, /* not set */
	RULE_SCOPE_IN_ORGANIZATION,
	RULE_SCOPE_NOT_IN_ORGANIZATION,
	RULE_SCOPE_EXTERNAL_PARTNER, /* SentToScope only */
};

enum rule_sender_location {
	RULE_SENDER_HEADER, /* the From header field (Exchange's default) */
	RULE_SENDER_ENVELOPE,
	RULE_SENDER_HEADER_OR_ENVELOPE,
};

enum rule_error_action {
	RULE_ERROR_IGNORE, /* the rule is skipped */
	RULE_ERROR_DEFER,  /* the message is refused for now (451) */
};

/*
 * The conditions of a rule, and (a second time) its exceptions
 * (ExceptIf...).  An empty list, NULL name, RULE_SCOPE_NONE or
 * SIZE_UNLIMITED means "not set".  Values are kept as written; patterns
 * are compiled by rule_set_build().
 */
struct conf_rule_predicates {
	struct conf_strlist sender_domain_is;
	struct conf_strlist recipient_domain_is;
	struct conf_strlist from;
	struct conf_strlist sent_to;
	unsigned from_scope;    /* enum rule_scope */
	unsigned sent_to_scope; /* enum rule_scope */
	struct conf_strlist from_address_patterns;
	struct conf_strlist recipient_address_patterns;
	struct conf_iprange *sender_ip_ranges;
	size_t nsender_ip_ranges;
	char *header_contains_name;
	struct conf_strlist header_contains_words;
	char *header_matches_name;
	struct conf_strlist header_matches_patterns;
	struct conf_strlist subject_contains_words;
	struct conf_strlist subject_matches_patterns;
	uint64_t message_size_over;
};

struct conf_transport_rule {
	char *name;
	unsigned priority;
	int priority_set; /* given in the file (else derived) */
	int enabled;
	unsigned mode; /* enum rule_mode */
	char *comments;
	unsigned sender_address_location; /* enum rule_sender_location */
	unsigned rule_error_action;       /* enum rule_error_action */
	struct conf_rule_predicates cond, except;
	/* actions */
	int route_require_tls;
	char *route_connector;
	char *set_header_name;
	char *set_header_value;
	char *remove_header;
	char *prepend_subject;
	char *reject_text;
	char *reject_code;
	int delete_message;
	struct conf_strlist redirect_to;
	struct conf_strlist blind_copy_to;
	int stop_rule_processing;
	int line;
};

struct rule_set; /* src/rules/rules.h */
struct conf_obj; /* where each object and key was written (conf_keys.h) */

struct conf {
	char *path;
	struct conf_transport transport;
	struct conf_certificate *certificates;
	size_t ncertificates;
	struct conf_accepted_domain *accepted_domains;
	size_t naccepted_domains;
	struct conf_receive_connector *receive_connectors;
	size_t nreceive_connectors;
	struct conf_send_connector *send_connectors;
	size_t nsend_connectors;
	struct conf_transport_rule *transport_rules;
	size_t ntransport_rules;
	struct rule_set *rules; /* compiled, in priority order */
	/* Where things were written, for reports after loading. */
	struct conf_obj *objs;
	size_t nobjs;
	/* "FILE:LINE: warning: ..." lines found while loading, or NULL. */
	char *warnings;
	/*
	 * The built-in connector local submissions (LocalSubmissionSocket)
	 * are served by: a receive connector's defaults, relay allowed, no
	 * TLS or AUTH offered (conf_local.c).  Not in receive_connectors:
	 * it has no binding and no section of its own.
	 */
	struct conf_receive_connector local_submission;
};

/*
 * Load and validate.  On failure returns NULL and writes one or more
 * "FILE:LINE: reason" lines to err (which may be NULL).
 */
struct conf *conf_load(const char *path, FILE *err);
void conf_free(struct conf *);

/*
 * Checks of what the configuration names on this machine (conf_check.c):
 * every file a key names opened as the run-time user (User), secrets
 * that every local user could read refused, the queue and log
 * directories shared with other users refused or warned about.  Errors
 * and warnings are "FILE:LINE: ..." lines on err; returns the number of
 * errors.  conf_load_checked() is conf_load(), its warnings and
 * conf_check(): what sluiced (start and reload) and `config check` use.
 */
int conf_check(const struct conf *, FILE *err);
struct conf *conf_load_checked(const char *path, FILE *err);

/*
 * What the configuration accepts but an administrator should hear about
 * (a receive connector shadowed for some clients, ...): the warning
 * lines found by conf_load(), printed by `sluicectl config check` and
 * logged by sluiced; other commands stay quiet.
 */
void conf_warnings(const struct conf *, FILE *);

/*
 * Reports about a loaded configuration, for checks made after loading.
 * obj is &conf->transport or an element of one of the section arrays.
 * conf_key_line() is the line of key in obj's section, 0 when the file
 * does not set it; conf_report() prints "FILE:LINE: " and the message,
 * with the key's line, else the section's, else no line at all.
 */
int conf_key_line(const struct conf *, const void *obj, const char *key);
void conf_report(const struct conf *, FILE *, const void *obj, const char *key,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Look-ups over a loaded configuration; NULL when absent.  Case-insensitive. */
const struct conf_certificate *conf_certificate(
    const struct conf *, const char *name);
const struct conf_accepted_domain *conf_accepted_domain(
    const struct conf *, const char *domain);
const struct conf_receive_connector *conf_receive_connector(
    const struct conf *, const char *name);
const struct conf_send_connector *conf_send_connector(
    const struct conf *, const char *name);
const struct conf_transport_rule *conf_transport_rule(
    const struct conf *, const char *name);

/*
 * Value parsers, exported for the unit tests and for sluicectl.  Each
 * returns 0 on success, -1 with *why set to a static reason on failure.
 */
int conf_parse_bool(const char *, int *, const char **why);
int conf_parse_timespan(const char *, unsigned *seconds, const char **why);
int conf_parse_size(const char *, uint64_t *bytes, const char **why);
int conf_parse_iprange(const char *, struct conf_iprange *, const char **why);
int conf_parse_binding(const char *, struct conf_binding *, const char **why);
int conf_iprange_contains(const struct conf_iprange *, const struct sockaddr *);
/*
 * One SmartHosts item: a name, an IPv4 or IPv6 address with or without
 * brackets, with or without ":port" (never after a bare IPv6 address).
 * *literal is set for addresses, *port to 0 when none is given.
 */
int conf_parse_smarthost(const char *item, char *host, size_t hostlen,
    unsigned short *port, int *literal, const char **why);

/* Format-List style dumps used by sluicectl get-* (effective values). */
void conf_dump_transport(const struct conf *, FILE *);
void conf_dump_accepted_domain(const struct conf_accepted_domain *, FILE *);
void conf_dump_receive_connector(const struct conf_receive_connector *, FILE *);
void conf_dump_send_connector(const struct conf_send_connector *, FILE *);
void conf_dump_certificate(const struct conf_certificate *, FILE *);
/* With its Description (needs the compiled rule set of conf). */
void conf_dump_transport_rule(
    const struct conf *, const struct conf_transport_rule *, FILE *);

/* Is name in the list (case-insensitive)?  For the domain lists. */
int conf_strlist_has(const struct conf_strlist *, const char *name);

/* "EncryptionOnly", ... ("" for TLS_AUTH_NONE). */
const char *conf_tls_level_name(enum tls_auth_level);
/* "None", "Opportunistic", "Mandatory". */
const char *conf_dane_mode_name(enum conf_dane_mode);
const char *conf_sts_mode_name(enum conf_sts_mode);

/* INI dump of the effective configuration; it loads again as is. */
void conf_dump_ini(const struct conf *, FILE *);

/* Formatting helpers shared by the dumps: "2.00:00:00", "36 MB". */
void conf_format_timespan(unsigned seconds, char *, size_t);
void conf_format_size(uint64_t bytes, char *, size_t);

#endif
