/*
 * conf_keys.c - the key table (see conf_keys.h) and the per-type parse,
 * format and free functions it dispatches to.
 *
 * Defaults follow Exchange's own defaults for the same parameter (SPEC 2),
 * except where Sluice adds a key of its own; docs/config.md lists them all
 * and a unit test checks that every key here is documented there.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf_keys.h"
#include "rules/rules.h"
#include "util/hostname.h"

#define T(f) offsetof(struct conf_transport, f)
#define C(f) offsetof(struct conf_certificate, f)
#define A(f) offsetof(struct conf_accepted_domain, f)
#define R(f) offsetof(struct conf_receive_connector, f)
#define S(f) offsetof(struct conf_send_connector, f)
#define TR(f) offsetof(struct conf_transport_rule, f)
#define DAY 86400ull

static const struct conf_key transport_keys[] = {
    {"TLSSendDomainSecureList", CT_DOMAINS, T(send_domain_secure.v),
        T(send_domain_secure.n), "", 0, 0, 0},
    {"TLSReceiveDomainSecureList", CT_DOMAINS, T(receive_domain_secure.v),
        T(receive_domain_secure.n), "", 0, 0, 0},
    {"MaxReceiveSize", CT_SIZE, T(max_receive_size), 0, "36MB", 0, UINT64_MAX,
        0},
    {"MaxSendSize", CT_SIZE, T(max_send_size), 0, "36MB", 0, UINT64_MAX, 0},
    {"MaxRecipientEnvelopeLimit", CT_UINT, T(max_recipient_envelope_limit), 0,
        "500", 1, 100000, 0},
    {"MessageExpirationTimeout", CT_TIME, T(message_expiration_timeout), 0,
        "2.00:00:00", 5, 90 * DAY, 0},
    {"TransientFailureRetryInterval", CT_TIME,
        T(transient_failure_retry_interval), 0, "00:05:00", 1, 12 * 3600, 0},
    {"TransientFailureRetryAttempts", CT_UINT,
        T(transient_failure_retry_attempts), 0, "6", 0, 180, 0},
    {"OutboundConnectionFailureRetryInterval", CT_TIME,
        T(outbound_connection_failure_retry_interval), 0, "00:10:00", 1,
        20 * DAY, 0},
    {"DelayNotificationTimeout", CT_TIME, T(delay_notification_timeout), 0,
        "04:00:00", 1, 30 * DAY, 0},
    {"SafetyNetHoldTime", CT_TIME, T(safety_net_hold_time), 0, "2.00:00:00", 0,
        7 * DAY, 0},
    {"QueueDirectory", CT_PATH, T(queue_directory), 0, "/var/spool/sluice", 0,
        0, 0},
    {"LogDirectory", CT_PATH, T(log_directory), 0, "/var/log/sluice", 0, 0, 0},
    {"TrustedCAFile", CT_PATH, T(trusted_ca_file), 0,
        "/etc/ssl/certs/ca-certificates.crt", 0, 0, 0},
    {"CRLFile", CT_PATH, T(crl_file), 0, "", 0, 0, 0},
    {"Resolver", CT_STR, T(resolver), 0, "system", 0, 0, 0},
    /* Debian's dns-root-data: the root zone's key, kept up to date. */
    {"DnssecTrustAnchorFile", CT_PATH, T(dnssec_trust_anchor_file), 0,
        "/usr/share/dns/root.key", 0, 0, 0},
    /* Forward secrecy and AEAD only; TLS 1.2 is the minimum anyway. */
    {"TlsCiphers", CT_STR, T(tls_ciphers), 0,
        "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL", 0, 0, 0},
    {"TlsCipherSuites", CT_STR, T(tls_ciphersuites), 0,
        "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"
        "TLS_AES_128_GCM_SHA256",
        0, 0, 0},
    {"User", CT_STR, T(user), 0, "", 0, 0, 0},
    {"ControlSocket", CT_PATH, T(control_socket), 0, NULL, 0, 0, 0},
    {"LocalSubmissionSocket", CT_PATH, T(local_submission_socket), 0, "", 0, 0,
        0},
    {"UsersFile", CT_PATH, T(users_file), 0, "", 0, 0, 0},
    {"RecipientValidationEnabled", CT_BOOL, T(recipient_validation_enabled), 0,
        "true", 0, 0, 0},
    {"MaxPerDomainOutboundConnections", CT_UINT,
        T(max_per_domain_outbound_connections), 0, "20", 1, 10000, 0},
    {"MaxOutboundConnections", CT_UINT, T(max_outbound_connections), 0, "1000",
        1, 100000, 0},
    {"MessageTrackingLogSubjectLoggingEnabled", CT_BOOL,
        T(message_tracking_log_subject_logging_enabled), 0, "true", 0, 0, 0},
    {"StatusListen", CT_BINDINGS, T(status_listen), T(nstatus_listen), "", 0, 0,
        0},
    {"TlsPostureEnabled", CT_BOOL, T(tls_posture_enabled), 0, "true", 0, 0, 0},
    {"TlsReportingOrganization", CT_STR, T(tls_reporting_organization), 0, "",
        0, 0, 0},
    {"TlsReportingContact", CT_STR, T(tls_reporting_contact), 0, "", 0, 0, 0},
    /*
     * Log retention, Exchange 2013 and later defaults.  The longest
     * TimeSpan Exchange takes here is 24855.03:14:07 (2^31 - 1 seconds);
     * 00:00:00 turns the age limit off, as there.
     */
    {"MessageTrackingLogMaxAge", CT_TIME, T(message_tracking_log_max_age), 0,
        "30.00:00:00", 0, 2147483647ull, 0},
    {"MessageTrackingLogMaxDirectorySize", CT_SIZE,
        T(message_tracking_log_max_directory_size), 0, "1000MB", 1, UINT64_MAX,
        0},
    {"ReceiveProtocolLogMaxAge", CT_TIME, T(receive_protocol_log_max_age), 0,
        "30.00:00:00", 0, 2147483647ull, 0},
    {"ReceiveProtocolLogMaxDirectorySize", CT_SIZE,
        T(receive_protocol_log_max_directory_size), 0, "250MB", 1, UINT64_MAX,
        0},
    {"SendProtocolLogMaxAge", CT_TIME, T(send_protocol_log_max_age), 0,
        "30.00:00:00", 0, 2147483647ull, 0},
    {"SendProtocolLogMaxDirectorySize", CT_SIZE,
        T(send_protocol_log_max_directory_size), 0, "250MB", 1, UINT64_MAX, 0},
    /* Back pressure, named as in Exchange's EdgeTransport.exe.config. */
    {"EnableResourceMonitoring", CT_BOOL, T(enable_resource_monitoring), 0,
        "true", 0, 0, 0},
    {"ResourceMonitoringInterval", CT_TIME, T(resource_monitoring_interval), 0,
        "00:00:02", 0, 600, 0},
    /* 0: Exchange's formula, High when less than 500 MB would be left */
    {"PercentageDatabaseDiskSpaceUsedHighThreshold", CT_UINT,
        T(percentage_database_disk_space_used_high_threshold), 0, "0", 0, 100,
        0},
    {"PercentagePrivateBytesUsedHighThreshold", CT_UINT,
        T(percentage_private_bytes_used_high_threshold), 0, "75", 5, 100, 0},
    {"PercentagePhysicalMemoryUsedLimit", CT_UINT,
        T(percentage_physical_memory_used_limit), 0, "94", 5, 100, 0},
};

static const struct conf_key certificate_keys[] = {
    {"CertificateFile", CT_PATH, C(certificate_file), 0, NULL, 0, 0, 1},
    {"KeyFile", CT_PATH, C(key_file), 0, NULL, 0, 0, 1},
};

static const struct conf_key accepted_domain_keys[] = {
    {"DomainType", CT_DOMAINTYPE, A(type), 0, "Authoritative", 0, 0, 0},
    {"Mailboxes", CT_PATH, A(mailboxes), 0, NULL, 0, 0, 0},
};

static const struct conf_key receive_keys[] = {
    {"Bindings", CT_BINDINGS, R(bindings), R(nbindings), NULL, 0, 0, 1},
    {"RemoteIPRanges", CT_RANGES, R(remote_ranges), R(nremote_ranges),
        "0.0.0.0/0, ::/0", 0, 0, 0},
    {"AuthMechanism", CT_AUTHMECH, R(auth_mechanism), 0, "Tls", 0, 0, 0},
    {"PermissionGroups", CT_PERMS, R(permission_groups), 0, "AnonymousUsers", 0,
        0, 0},
    {"RequireTLS", CT_BOOL, R(require_tls), 0, "false", 0, 0, 0},
    {"DomainSecureEnabled", CT_BOOL, R(domain_secure_enabled), 0, "false", 0, 0,
        0},
    {"Fqdn", CT_HOSTNAME, R(fqdn), 0, NULL, 0, 0, 0},
    {"Banner", CT_STR, R(banner), 0, NULL, 0, 0, 0},
    {"TlsCertificateName", CT_STR, R(tls_certificate_name), 0, "", 0, 0, 0},
    {"MaxMessageSize", CT_SIZE, R(max_message_size), 0, "36MB", 1024,
        UINT64_MAX, 0},
    {"MaxHeaderSize", CT_SIZE, R(max_header_size), 0, "256KB", 1024,
        64ull * 1024 * 1024, 0},
    {"MaxRecipientsPerMessage", CT_UINT, R(max_recipients_per_message), 0,
        "200", 1, 100000, 0},
    {"MaxHopCount", CT_UINT, R(max_hop_count), 0, "60", 1, 500, 0},
    {"MaxInboundConnection", CT_UINT, R(max_inbound_connection), 0, "5000", 1,
        1000000, 0},
    {"MaxInboundConnectionPerSource", CT_UINT,
        R(max_inbound_connection_per_source), 0, "20", 1, 1000000, 0},
    {"MaxProtocolErrors", CT_UINT, R(max_protocol_errors), 0, "5", 1, 1000, 0},
    {"ConnectionTimeout", CT_TIME, R(connection_timeout), 0, "00:10:00", 1, DAY,
        0},
    {"ConnectionInactivityTimeout", CT_TIME, R(connection_inactivity_timeout),
        0, "00:05:00", 1, DAY, 0},
    {"TarpitInterval", CT_TIME, R(tarpit_interval), 0, "00:00:05", 0, 600, 0},
    {"GreetingDelay", CT_TIME, R(greeting_delay), 0, "00:00:00", 0, 60, 0},
    {"MinDataRate", CT_SIZE, R(min_data_rate), 0, "1KB", 0,
        1024ull * 1024 * 1024, 0},
    {"MessageRateLimit", CT_SIZE, R(message_rate_limit), 0, "unlimited", 1,
        UINT64_MAX, 0},
    {"PipeliningEnabled", CT_BOOL, R(pipelining_enabled), 0, "true", 0, 0, 0},
    {"ChunkingEnabled", CT_BOOL, R(chunking_enabled), 0, "true", 0, 0, 0},
    {"EightBitMimeEnabled", CT_BOOL, R(eight_bit_mime_enabled), 0, "true", 0, 0,
        0},
    {"SmtpUtf8Enabled", CT_BOOL, R(smtp_utf8_enabled), 0, "true", 0, 0, 0},
    {"DeliveryStatusNotificationEnabled", CT_BOOL, R(dsn_enabled), 0, "true", 0,
        0, 0},
    {"EnhancedStatusCodesEnabled", CT_BOOL, R(enhanced_status_codes_enabled), 0,
        "true", 0, 0, 0},
    {"ProtocolLoggingLevel", CT_PROTOLOG, R(protocol_logging_level), 0, "None",
        0, 0, 0},
    /* Set-ReceiveConnector -Enabled: a disabled one neither listens nor
       serves. */
    {"Enabled", CT_BOOL, R(enabled), 0, "true", 0, 0, 0},
};

static const struct conf_key send_keys[] = {
    /* required, except on a scoped connector (conf_rules.c) */
    {"AddressSpaces", CT_ADDRSPACES, S(address_spaces), S(naddress_spaces), "",
        0, 0, 0},
    {"DNSRoutingEnabled", CT_BOOL, S(dns_routing_enabled), 0, "true", 0, 0, 0},
    {"SmartHosts", CT_SMARTHOSTS, S(smart_hosts), S(nsmart_hosts), "", 0, 0, 0},
    {"Port", CT_PORT, S(port), 0, "25", 1, 65535, 0},
    {"IgnoreSTARTTLS", CT_BOOL, S(ignore_starttls), 0, "false", 0, 0, 0},
    {"RequireTLS", CT_BOOL, S(require_tls), 0, "false", 0, 0, 0},
    {"TlsAuthLevel", CT_TLSLEVEL, S(tls_auth_level), 0, "", 0, 0, 0},
    {"TlsDomain", CT_STR, S(tls_domain), 0, "", 0, 0, 0},
    {"TlsCertificateName", CT_STR, S(tls_certificate_name), 0, "", 0, 0, 0},
    {"DomainSecureEnabled", CT_BOOL, S(domain_secure_enabled), 0, "false", 0, 0,
        0},
    {"SmartHostAuthMechanism", CT_SMARTAUTH, S(smart_host_auth_mechanism), 0,
        "None", 0, 0, 0},
    {"AuthenticationCredential", CT_PATH, S(authentication_credential), 0, "",
        0, 0, 0},
    {"Fqdn", CT_HOSTNAME, S(fqdn), 0, NULL, 0, 0, 0},
    {"MaxMessageSize", CT_SIZE, S(max_message_size), 0, "unlimited", 1024,
        UINT64_MAX, 0},
    {"Enabled", CT_BOOL, S(enabled), 0, "true", 0, 0, 0},
    {"ProtocolLoggingLevel", CT_PROTOLOG, S(protocol_logging_level), 0, "None",
        0, 0, 0},
    {"ConnectionInactivityTimeout", CT_TIME, S(connection_inactivity_timeout),
        0, "00:10:00", 1, DAY, 0},
    /* Exchange's name for "the next hop is our own organisation". */
    {"CloudServicesMailEnabled", CT_BOOL, S(cloud_services_mail_enabled), 0,
        "false", 0, 0, 0},
    /* Exchange Online's outbound connector keys (SPEC 6). */
    {"SmtpDaneMode", CT_DANEMODE, S(smtp_dane_mode), 0, "Opportunistic", 0, 0,
        0},
    {"MtaStsMode", CT_STSMODE, S(mta_sts_mode), 0, "Opportunistic", 0, 0, 0},
    {"IsTransportRuleScoped", CT_BOOL, S(is_transport_rule_scoped), 0, "false",
        0, 0, 0},
};

/*
 * [TransportRule NAME]: New-TransportRule's parameters.  The conditions
 * and their ExceptIf forms are the same rows over two structs.
 */
#define RULE_PREDICATE_KEYS(pfx, set)                                          \
	{pfx "SenderDomainIs", CT_RDOMAINS, TR(set.sender_domain_is.v),        \
	    TR(set.sender_domain_is.n), "", 0, 0, 0},                          \
	    {pfx "RecipientDomainIs", CT_RDOMAINS,                             \
	        TR(set.recipient_domain_is.v), TR(set.recipient_domain_is.n),  \
	        "", 0, 0, 0},                                                  \
	    {pfx "From", CT_ADDRESSES, TR(set.from.v), TR(set.from.n), "", 0,  \
	        0, 0},                                                         \
	    {pfx "SentTo", CT_ADDRESSES, TR(set.sent_to.v), TR(set.sent_to.n), \
	        "", 0, 0, 0},                                                  \
	    {pfx "FromScope", CT_FROMSCOPE, TR(set.from_scope), 0, "", 0, 0,   \
	        0},                                                            \
	    {pfx "SentToScope", CT_TOSCOPE, TR(set.sent_to_scope), 0, "", 0,   \
	        0, 0},                                                         \
	    {pfx "FromAddressMatchesPatterns", CT_PATTERNS,                    \
	        TR(set.from_address_patterns.v),                               \
	        TR(set.from_address_patterns.n), "", 0, 0, 0},                 \
	    {pfx "RecipientAddressMatchesPatterns", CT_PATTERNS,               \
	        TR(set.recipient_address_patterns.v),                          \
	        TR(set.recipient_address_patterns.n), "", 0, 0, 0},            \
	    {pfx "SenderIpRanges", CT_RANGES, TR(set.sender_ip_ranges),        \
	        TR(set.nsender_ip_ranges), "", 0, 0, 0},                       \
	    {pfx "HeaderContainsMessageHeader", CT_HEADERNAME,                 \
	        TR(set.header_contains_name), 0, "", 0, 0, 0},                 \
	    {pfx "HeaderContainsWords", CT_WORDS,                              \
	        TR(set.header_contains_words.v),                               \
	        TR(set.header_contains_words.n), "", 0, 0, 0},                 \
	    {pfx "HeaderMatchesMessageHeader", CT_HEADERNAME,                  \
	        TR(set.header_matches_name), 0, "", 0, 0, 0},                  \
	    {pfx "HeaderMatchesPatterns", CT_PATTERNS,                         \
	        TR(set.header_matches_patterns.v),                             \
	        TR(set.header_matches_patterns.n), "", 0, 0, 0},               \
	    {pfx "SubjectContainsWords", CT_WORDS,                             \
	        TR(set.subject_contains_words.v),                              \
	        TR(set.subject_contains_words.n), "", 0, 0, 0},                \
	    {pfx "SubjectMatchesPatterns", CT_PATTERNS,                        \
	        TR(set.subject_matches_patterns.v),                            \
	        TR(set.subject_matches_patterns.n), "", 0, 0, 0},              \
	{                                                                      \
		pfx "MessageSizeOver", CT_OPTSIZE, TR(set.message_size_over),  \
		    0, "", 0, UINT64_MAX, 0                                    \
	}

static const struct conf_key rule_keys[] = {
    /* no default: derived from the file order (conf_rules.c) */
    {"Priority", CT_PRIORITY, TR(priority), TR(priority_set), NULL, 0, 100000,
        0},
    {"Enabled", CT_BOOL, TR(enabled), 0, "true", 0, 0, 0},
    {"Mode", CT_RULEMODE, TR(mode), 0, "Enforce", 0, 0, 0},
    {"Comments", CT_TEXT, TR(comments), 0, "", 0, 0, 0},
    {"SenderAddressLocation", CT_SENDERLOC, TR(sender_address_location), 0,
        "Header", 0, 0, 0},
    {"RuleErrorAction", CT_ERRACTION, TR(rule_error_action), 0, "Ignore", 0, 0,
        0},
    RULE_PREDICATE_KEYS("", cond),
    RULE_PREDICATE_KEYS("ExceptIf", except),
    {"RouteMessageOutboundRequireTls", CT_BOOL, TR(route_require_tls), 0,
        "false", 0, 0, 0},
    {"RouteMessageOutboundConnector", CT_STR, TR(route_connector), 0, "", 0, 0,
        0},
    {"SetHeaderName", CT_HEADERNAME, TR(set_header_name), 0, "", 0, 0, 0},
    {"SetHeaderValue", CT_TEXT, TR(set_header_value), 0, "", 0, 0, 0},
    {"RemoveHeader", CT_HEADERNAME, TR(remove_header), 0, "", 0, 0, 0},
    {"PrependSubject", CT_TEXT, TR(prepend_subject), 0, "", 0, 0, 0},
    {"RejectMessageReasonText", CT_TEXT, TR(reject_text), 0, "", 0, 0, 0},
    {"RejectMessageEnhancedStatusCode", CT_STATUS, TR(reject_code), 0, "", 0, 0,
        0},
    {"DeleteMessage", CT_BOOL, TR(delete_message), 0, "false", 0, 0, 0},
    {"RedirectMessageTo", CT_ADDRESSES, TR(redirect_to.v), TR(redirect_to.n),
        "", 0, 0, 0},
    {"BlindCopyTo", CT_ADDRESSES, TR(blind_copy_to.v), TR(blind_copy_to.n), "",
        0, 0, 0},
    {"StopRuleProcessing", CT_BOOL, TR(stop_rule_processing), 0, "false", 0, 0,
        0},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

const struct conf_section_desc conf_sections[CONF_SEC_COUNT] = {
    {"Transport", 0, transport_keys, N(transport_keys),
        sizeof(struct conf_transport)},
    {"Certificate", 1, certificate_keys, N(certificate_keys),
        sizeof(struct conf_certificate)},
    {"AcceptedDomain", 1, accepted_domain_keys, N(accepted_domain_keys),
        sizeof(struct conf_accepted_domain)},
    {"ReceiveConnector", 1, receive_keys, N(receive_keys),
        sizeof(struct conf_receive_connector)},
    {"SendConnector", 1, send_keys, N(send_keys),
        sizeof(struct conf_send_connector)},
    {"TransportRule", 1, rule_keys, N(rule_keys),
        sizeof(struct conf_transport_rule)},
};

void *
conf_object(const struct conf *c, enum conf_section sec, size_t i)
{
	switch (sec) {
	case CONF_SEC_TRANSPORT:
		return (void *)(uintptr_t)&c->transport;
	case CONF_SEC_CERTIFICATE:
		return &c->certificates[i];
	case CONF_SEC_ACCEPTED_DOMAIN:
		return &c->accepted_domains[i];
	case CONF_SEC_RECEIVE:
		return &c->receive_connectors[i];
	case CONF_SEC_SEND:
		return &c->send_connectors[i];
	case CONF_SEC_RULE:
		return &c->transport_rules[i];
	case CONF_SEC_COUNT:
		break;
	}
	return NULL;
}

size_t
conf_object_count(const struct conf *c, enum conf_section sec)
{
	switch (sec) {
	case CONF_SEC_TRANSPORT:
		return 1;
	case CONF_SEC_CERTIFICATE:
		return c->ncertificates;
	case CONF_SEC_ACCEPTED_DOMAIN:
		return c->naccepted_domains;
	case CONF_SEC_RECEIVE:
		return c->nreceive_connectors;
	case CONF_SEC_SEND:
		return c->nsend_connectors;
	case CONF_SEC_RULE:
		return c->ntransport_rules;
	case CONF_SEC_COUNT:
		break;
	}
	return 0;
}

/* --- enumerations ------------------------------------------------------ */

struct conf_name {
	const char *name;
	unsigned value;
};

static const struct conf_name authmech_names[] = {
    {"None", 0},
    {"Tls", AUTHM_TLS},
    {"BasicAuth", AUTHM_BASIC},
    {"BasicAuthRequireTLS", AUTHM_BASIC_REQUIRE_TLS},
    {"ExternalAuthoritative", AUTHM_EXTERNAL_AUTHORITATIVE},
    {NULL, 0},
};
static const struct conf_name perm_names[] = {
    {"None", 0},
    {"AnonymousUsers", PERM_ANONYMOUS_USERS},
    {"ExchangeUsers", PERM_EXCHANGE_USERS},
    {"ExchangeServers", PERM_EXCHANGE_SERVERS},
    {"Partners", PERM_PARTNERS},
    {NULL, 0},
};
static const struct conf_name domaintype_names[] = {
    {"Authoritative", DOMAIN_AUTHORITATIVE},
    {"InternalRelay", DOMAIN_INTERNAL_RELAY},
    {"ExternalRelay", DOMAIN_EXTERNAL_RELAY},
    {NULL, 0},
};
static const struct conf_name tlslevel_names[] = {
    {"EncryptionOnly", TLS_AUTH_ENCRYPTION_ONLY},
    {"CertificateValidation", TLS_AUTH_CERTIFICATE_VALIDATION},
    {"DomainValidation", TLS_AUTH_DOMAIN_VALIDATION},
    {NULL, 0},
};
static const struct conf_name smartauth_names[] = {
    {"None", SMARTHOST_AUTH_NONE},
    {"BasicAuth", SMARTHOST_AUTH_BASIC},
    {"BasicAuthRequireTLS", SMARTHOST_AUTH_BASIC_REQUIRE_TLS},
    {NULL, 0},
};
static const struct conf_name protolog_names[] = {
    {"None", PROTOLOG_NONE},
    {"Verbose", PROTOLOG_VERBOSE},
    {NULL, 0},
};
static const struct conf_name danemode_names[] = {
    {"None", DANE_MODE_NONE},
    {"Opportunistic", DANE_MODE_OPPORTUNISTIC},
    {"Mandatory", DANE_MODE_MANDATORY},
    {NULL, 0},
};
static const struct conf_name stsmode_names[] = {
    {"None", MTASTS_MODE_NONE},
    {"Opportunistic", MTASTS_MODE_OPPORTUNISTIC},
    {NULL, 0},
};
static const struct conf_name rulemode_names[] = {
    {"Enforce", RULE_MODE_ENFORCE},
    {"Audit", RULE_MODE_AUDIT},
    {"AuditAndNotify", RULE_MODE_AUDIT_AND_NOTIFY},
    {NULL, 0},
};
static const struct conf_name scope_names[] = {
    {"", RULE_SCOPE_NONE},
    {"InOrganization", RULE_SCOPE_IN_ORGANIZATION},
    {"NotInOrganization", RULE_SCOPE_NOT_IN_ORGANIZATION},
    {"ExternalPartner", RULE_SCOPE_EXTERNAL_PARTNER},
    {NULL, 0},
};
static const struct conf_name senderloc_names[] = {
    {"Header", RULE_SENDER_HEADER},
    {"Envelope", RULE_SENDER_ENVELOPE},
    {"HeaderOrEnvelope", RULE_SENDER_HEADER_OR_ENVELOPE},
    {NULL, 0},
};
static const struct conf_name erraction_names[] = {
    {"Ignore", RULE_ERROR_IGNORE},
    {"Defer", RULE_ERROR_DEFER},
    {NULL, 0},
};

static int
conf_lookup(const struct conf_name *t, const char *s, unsigned *out)
{
	for (; t->name != NULL; t++) {
		if (strcasecmp(t->name, s) == 0) {
			*out = t->value;
			return 0;
		}
	}
	return -1;
}

const char *
conf_tls_level_name(enum tls_auth_level l)
{
	for (const struct conf_name *t = tlslevel_names; t->name != NULL; t++)
		if (t->value == (unsigned)l)
			return t->name;
	return "";
}

static const char *conf_name_of(const struct conf_name *, unsigned);

const char *
conf_dane_mode_name(enum conf_dane_mode m)
{
	return conf_name_of(danemode_names, (unsigned)m);
}

const char *
conf_sts_mode_name(enum conf_sts_mode m)
{
	return conf_name_of(stsmode_names, (unsigned)m);
}

/* --- list splitting ---------------------------------------------------- */

/*
 * Call fn for each trimmed, comma-separated item; an empty item is an
 * error ("a,,b") except after a trailing comma, which a list continued on
 * the next line naturally has.  An entirely empty value is an empty list.
 *
 * An item may be wrapped in double quotes, as PowerShell writes a list
 * (-RemoteIPRanges "127.0.0.0/8","10.0.0.0/8"): commas inside quotes do
 * not split, and the quotes are removed.  On failure the offending item
 * (as written) is copied to bad, so the message can quote it alone.
 */
static int
conf_each(const char *value, int (*fn)(void *, const char *, const char **),
    void *arg, const char **why, char *bad, size_t badlen)
{
	const char *p = value;
	char item[512];

	while (isspace((unsigned char)*p))
		p++;
	if (*p == '\0')
		return 0;
	for (;;) {
		const char *end = p, *q;
		size_t n;
		int quoted = 0;

		while (*end != '\0' && (*end != ',' || quoted)) {
			if (*end == '"')
				quoted = !quoted;
			end++;
		}
		n = (size_t)(end - p);
		while (n > 0 && isspace((unsigned char)*p))
			p++, n--;
		while (n > 0 && isspace((unsigned char)p[n - 1]))
			n--;
		snprintf(bad, badlen, "%.*s", (int)n, p);
		/* "a, b," before a continuation line: a trailing comma is ok */
		if (n == 0 && *end == '\0' && p != value)
			return 0;
		if (n == 0) {
			*why = "empty item in list";
			return -1;
		}
		q = p;
		if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
			q = p + 1;
			n -= 2;
		}
		if (memchr(q, '"', n) != NULL) {
			*why = "unbalanced double quote (write items as "
			       "a, b or \"a\", \"b\")";
			return -1;
		}
		if (n >= sizeof(item)) {
			*why = "list item too long";
			return -1;
		}
		memcpy(item, q, n);
		item[n] = '\0';
		snprintf(bad, badlen, "%s", item);
		if (fn(arg, item, why) < 0)
			return -1;
		if (*end == '\0')
			return 0;
		p = end + 1;
	}
}

/* Grow an array held as (pointer, count) by one zeroed element. */
static void *
conf_grow(void *obj, const struct conf_key *k, size_t elem)
{
	void **arr = (void **)((char *)obj + k->off);
	size_t *n = (size_t *)((char *)obj + k->count_off);
	char *p = realloc(*arr, (*n + 1) * elem);

	if (p == NULL)
		return NULL;
	memset(p + *n * elem, 0, elem);
	*arr = p;
	return p + (*n)++ * elem;
}

struct conf_each_ctx {
	const struct conf_key *k;
	void *obj;
	unsigned flags;
	const struct conf_name *names;
};

static int
conf_valid_domain(const char *s, int allow_wild)
{
	size_t label = 0;

	if (allow_wild && strncmp(s, "*.", 2) == 0)
		s += 2;
	if (*s == '\0' || strlen(s) > 253)
		return 0;
	for (; *s != '\0'; s++) {
		if (*s == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (isalnum((unsigned char)*s) || *s == '-' ||
		           *s == '_') {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return label > 0;
}

static int
conf_add_domain(void *arg, const char *item, const char **why)
{
	struct conf_each_ctx *c = arg;
	char **slot;

	if (!conf_valid_domain(item, 1) && strcmp(item, "*") != 0) {
		*why = "not a domain name";
		return -1;
	}
	if ((slot = conf_grow(c->obj, c->k, sizeof(char *))) == NULL ||
	    (*slot = strdup(item)) == NULL) {
		*why = "out of memory";
		return -1;
	}
	for (char *p = *slot; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return 0;
}

static int
conf_add_binding(void *arg, const char *item, const char **why)
{
	struct conf_each_ctx *c = arg;
	struct conf_binding b, *slot;

	if (conf_parse_binding(item, &b, why) < 0)
		return -1;
	if ((slot = conf_grow(c->obj, c->k, sizeof(b))) == NULL) {
		*why = "out of memory";
		return -1;
	}
	*slot = b;
	return 0;
}

static int
conf_add_range(void *arg, const char *item, const char **why)
{
	struct conf_each_ctx *c = arg;
	struct conf_iprange r, *slot;

	if (conf_parse_iprange(item, &r, why) < 0)
		return -1;
	if ((slot = conf_grow(c->obj, c->k, sizeof(r))) == NULL) {
		*why = "out of memory";
		return -1;
	}
	*slot = r;
	return 0;
}

static int
conf_add_flag(void *arg, const char *item, const char **why)
{
	struct conf_each_ctx *c = arg;
	unsigned v;

	if (conf_lookup(c->names, item, &v) < 0) {
		*why = c->names == authmech_names
		           ? "expected None, Tls, BasicAuth, "
		             "BasicAuthRequireTLS or "
		             "ExternalAuthoritative"
		           : "expected None, AnonymousUsers, ExchangeUsers, "
		             "ExchangeServers or Partners";
		return -1;
	}
	c->flags |= v;
	return 0;
}

/* contoso.com;1  *.contoso.com;2  *  SMTP:contoso.com;1 */
static int
conf_add_space(void *arg, const char *item, const char **why)
{
	struct conf_each_ctx *c = arg;
	struct conf_address_space *slot;
	char dom[300];
	const char *semi;
	unsigned long cost = 1;
	size_t n;

	if (strncasecmp(item, "SMTP:", 5) == 0)
		item += 5;
	semi = strchr(item, ';');
	n = semi != NULL ? (size_t)(semi - item) : strlen(item);
	if (n >= sizeof(dom)) {
		*why = "address space too long";
		return -1;
	}
	memcpy(dom, item, n);
	dom[n] = '\0';
	if (semi != NULL) {
		char *end;

		cost = strtoul(semi + 1, &end, 10);
		if (semi[1] == '\0' || *end != '\0' || cost < 1 || cost > 100) {
			*why = "cost must be a number from 1 to 100";
			return -1;
		}
	}
	if (strcmp(dom, "*") != 0 && !conf_valid_domain(dom, 1)) {
		*why = "expected domain[;cost], *.domain[;cost] or *";
		return -1;
	}
	if ((slot = conf_grow(c->obj, c->k, sizeof(*slot))) == NULL ||
	    (slot->domain = strdup(dom)) == NULL) {
		*why = "out of memory";
		return -1;
	}
	for (char *p = slot->domain; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	slot->cost = (unsigned)cost;
	return 0;
}

/* A name or an address, each with an optional port (conf_value.c). */
static int
conf_add_smarthost(void *arg, const char *item, const char **why)
{
	struct conf_each_ctx *c = arg;
	struct conf_smarthost *slot;
	char host[300];
	unsigned short port;
	int literal;

	if (conf_parse_smarthost(
	        item, host, sizeof(host), &port, &literal, why) < 0)
		return -1;
	if ((slot = conf_grow(c->obj, c->k, sizeof(*slot))) == NULL ||
	    (slot->host = strdup(host)) == NULL) {
		*why = "out of memory";
		return -1;
	}
	slot->literal = literal;
	slot->port = port;
	return 0;
}

/* An item of a rule list: checked by its kind, then kept as written. */
static int
conf_add_rule_item(void *arg, const char *item, const char **why)
{
	struct conf_each_ctx *c = arg;
	char **slot;

	switch (c->k->type) {
	case CT_RDOMAINS:
		if (rule_value_domain(item, why) < 0)
			return -1;
		break;
	case CT_ADDRESSES:
		if (rule_value_address(item, why) < 0)
			return -1;
		break;
	case CT_WORDS:
		if (rule_value_text(item, why) < 0)
			return -1;
		break;
	case CT_PATTERNS: {
		static char msg[300];
		char err[200];
		struct rule_pattern *pat =
		    rule_pattern_compile(item, err, sizeof(err));

		if (pat == NULL) {
			snprintf(msg, sizeof(msg),
			    "pattern does not compile (PCRE2): %s", err);
			*why = msg;
			return -1;
		}
		rule_pattern_free(pat);
		break;
	}
	default:
		break;
	}
	if ((slot = conf_grow(c->obj, c->k, sizeof(char *))) == NULL ||
	    (*slot = strdup(item)) == NULL) {
		*why = "out of memory";
		return -1;
	}
	if (c->k->type == CT_RDOMAINS)
		for (char *p = *slot; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
	return 0;
}

int
conf_key_quoted_list(enum conf_type t)
{
	return t == CT_RDOMAINS || t == CT_ADDRESSES || t == CT_WORDS ||
	       t == CT_PATTERNS;
}

/* A string value after a check (NULL check: any text). */
static int
conf_set_string(void *obj, const struct conf_key *k, const char *value,
    int (*check)(const char *, const char **), const char **why)
{
	char **slot = (char **)((char *)obj + k->off), *s;

	if (value[0] != '\0' && check != NULL && check(value, why) < 0)
		return -1;
	if ((s = strdup(value)) == NULL) {
		*why = "out of memory";
		return -1;
	}
	free(*slot);
	*slot = s;
	return 0;
}

/* --- parse, format, free ----------------------------------------------- */

/*
 * Remove "." and "dir/.." components of an absolute path in place, so
 * that "/etc/sluice/../run" is shown as "/etc/run".  Purely lexical: the
 * files need not exist yet.
 */
static void
conf_normalize_path(char *path)
{
	char *out = path, *p = path;

	while (*p != '\0') {
		char *seg, *end;
		size_t n;

		while (*p == '/')
			p++;
		seg = p;
		end = strchr(seg, '/');
		n = end != NULL ? (size_t)(end - seg) : strlen(seg);
		p = seg + n;
		if (n == 0 || (n == 1 && seg[0] == '.'))
			continue;
		if (n == 2 && seg[0] == '.' && seg[1] == '.') {
			while (out > path && *--out != '/')
				;
			continue;
		}
		*out++ = '/';
		memmove(out, seg, n);
		out += n;
	}
	if (out == path)
		*out++ = '/';
	*out = '\0';
}

#define FIELD(obj, k, type) ((type *)((char *)(obj) + (k)->off))

int
conf_key_parse(const struct conf_key *k, void *obj, const char *value,
    const char *basedir, const char **why, char *bad, size_t badlen)
{
	struct conf_each_ctx ctx = {k, obj, 0, NULL};
	unsigned u;

	/* Scalars are quoted whole; lists quote their bad item. */
	snprintf(bad, badlen, "%s", value);
	uint64_t sz;
	char *end;
	unsigned long long n;

	switch (k->type) {
	case CT_BOOL:
		return conf_parse_bool(value, FIELD(obj, k, int), why);
	case CT_TIME:
		if (conf_parse_timespan(value, &u, why) < 0)
			return -1;
		if (u < k->min || u > k->max) {
			*why = "TimeSpan out of range";
			return -1;
		}
		*FIELD(obj, k, unsigned) = u;
		return 0;
	case CT_SIZE:
		if (conf_parse_size(value, &sz, why) < 0)
			return -1;
		if (sz < k->min || (sz > k->max && sz != SIZE_UNLIMITED) ||
		    (sz == SIZE_UNLIMITED && k->max != UINT64_MAX)) {
			*why = "size out of range";
			return -1;
		}
		*FIELD(obj, k, uint64_t) = sz;
		return 0;
	case CT_UINT:
	case CT_PORT:
		if (!isdigit((unsigned char)value[0]) ||
		    (n = strtoull(value, &end, 10), *end != '\0') ||
		    n < k->min || n > k->max) {
			static char msg[96];

			snprintf(msg, sizeof(msg),
			    "expected a whole number from %llu to %llu", k->min,
			    k->max);
			*why = msg;
			return -1;
		}
		if (k->type == CT_PORT)
			*FIELD(obj, k, unsigned short) = (unsigned short)n;
		else
			*FIELD(obj, k, unsigned) = (unsigned)n;
		return 0;
	case CT_STR:
	case CT_HOSTNAME:
	case CT_PATH: {
		char **slot = FIELD(obj, k, char *);
		char *s;

		if (k->type == CT_HOSTNAME &&
		    !hostname_valid(value, HOSTNAME_STRICT)) {
			*why = "not a host name (letters, digits and hyphens "
			       "in dot-separated labels, e.g. mx.contoso.com)";
			return -1;
		}
		if (k->type == CT_PATH && value[0] != '\0' && value[0] != '/' &&
		    basedir != NULL) {
			size_t len = strlen(basedir) + strlen(value) + 2;

			if ((s = malloc(len)) != NULL) {
				snprintf(s, len, "%s/%s", basedir, value);
				conf_normalize_path(s);
			}
		} else {
			s = strdup(value);
		}
		if (s == NULL) {
			*why = "out of memory";
			return -1;
		}
		free(*slot);
		*slot = s;
		return 0;
	}
	case CT_DOMAINS:
		return conf_each(
		    value, conf_add_domain, &ctx, why, bad, badlen);
	case CT_BINDINGS:
		return conf_each(
		    value, conf_add_binding, &ctx, why, bad, badlen);
	case CT_RANGES:
		return conf_each(value, conf_add_range, &ctx, why, bad, badlen);
	case CT_ADDRSPACES:
		return conf_each(value, conf_add_space, &ctx, why, bad, badlen);
	case CT_SMARTHOSTS:
		return conf_each(
		    value, conf_add_smarthost, &ctx, why, bad, badlen);
	case CT_AUTHMECH:
	case CT_PERMS:
		ctx.names =
		    k->type == CT_AUTHMECH ? authmech_names : perm_names;
		ctx.flags = *FIELD(obj, k, unsigned);
		if (conf_each(value, conf_add_flag, &ctx, why, bad, badlen) < 0)
			return -1;
		*FIELD(obj, k, unsigned) = ctx.flags;
		return 0;
	case CT_DOMAINTYPE:
		if (conf_lookup(domaintype_names, value, &u) < 0) {
			*why = "expected Authoritative, InternalRelay or "
			       "ExternalRelay";
			return -1;
		}
		*FIELD(obj, k, enum conf_domain_type) =
		    (enum conf_domain_type)u;
		return 0;
	case CT_TLSLEVEL:
		if (value[0] == '\0') {
			*FIELD(obj, k, enum tls_auth_level) = TLS_AUTH_NONE;
			return 0;
		}
		if (conf_lookup(tlslevel_names, value, &u) < 0) {
			*why =
			    "expected EncryptionOnly, CertificateValidation or "
			    "DomainValidation";
			return -1;
		}
		*FIELD(obj, k, enum tls_auth_level) = (enum tls_auth_level)u;
		return 0;
	case CT_SMARTAUTH:
		if (conf_lookup(smartauth_names, value, &u) < 0) {
			*why =
			    "expected None, BasicAuth or BasicAuthRequireTLS";
			return -1;
		}
		*FIELD(obj, k, enum smarthost_auth) = (enum smarthost_auth)u;
		return 0;
	case CT_PROTOLOG:
		if (conf_lookup(protolog_names, value, &u) < 0) {
			*why = "expected None or Verbose";
			return -1;
		}
		*FIELD(obj, k, enum proto_log_level) = (enum proto_log_level)u;
		return 0;
	case CT_DANEMODE:
		if (conf_lookup(danemode_names, value, &u) < 0) {
			*why = "expected Opportunistic, Mandatory or None";
			return -1;
		}
		*FIELD(obj, k, enum conf_dane_mode) = (enum conf_dane_mode)u;
		return 0;
	case CT_STSMODE:
		if (conf_lookup(stsmode_names, value, &u) < 0) {
			*why = "expected Opportunistic or None";
			return -1;
		}
		*FIELD(obj, k, enum conf_sts_mode) = (enum conf_sts_mode)u;
		return 0;
	case CT_PRIORITY:
		if (!isdigit((unsigned char)value[0]) ||
		    (n = strtoull(value, &end, 10), *end != '\0') ||
		    n > k->max) {
			*why = "expected a whole number from 0 to 100000 (0 "
			       "runs first)";
			return -1;
		}
		*FIELD(obj, k, unsigned) = (unsigned)n;
		*(int *)((char *)obj + k->count_off) = 1;
		return 0;
	case CT_RULEMODE:
		if (conf_lookup(rulemode_names, value, &u) < 0) {
			*why = "expected Enforce, Audit or AuditAndNotify";
			return -1;
		}
		*FIELD(obj, k, unsigned) = u;
		return 0;
	case CT_FROMSCOPE:
	case CT_TOSCOPE:
		if (conf_lookup(scope_names, value, &u) < 0 ||
		    (k->type == CT_FROMSCOPE &&
		        u == RULE_SCOPE_EXTERNAL_PARTNER)) {
			*why = k->type == CT_FROMSCOPE
			           ? "expected InOrganization or "
			             "NotInOrganization"
			           : "expected InOrganization, "
			             "NotInOrganization or ExternalPartner";
			return -1;
		}
		*FIELD(obj, k, unsigned) = u;
		return 0;
	case CT_SENDERLOC:
		if (conf_lookup(senderloc_names, value, &u) < 0) {
			*why = "expected Header, Envelope or HeaderOrEnvelope";
			return -1;
		}
		*FIELD(obj, k, unsigned) = u;
		return 0;
	case CT_ERRACTION:
		if (conf_lookup(erraction_names, value, &u) < 0) {
			*why = "expected Ignore or Defer";
			return -1;
		}
		*FIELD(obj, k, unsigned) = u;
		return 0;
	case CT_RDOMAINS:
	case CT_ADDRESSES:
	case CT_WORDS:
	case CT_PATTERNS:
		return rule_value_each(value, conf_add_rule_item, &ctx, why);
	case CT_OPTSIZE:
		if (value[0] == '\0') {
			*FIELD(obj, k, uint64_t) = SIZE_UNLIMITED;
			return 0;
		}
		if (conf_parse_size(value, &sz, why) < 0)
			return -1;
		if (sz == SIZE_UNLIMITED) {
			*why = "expected a size (leave it out for no limit)";
			return -1;
		}
		*FIELD(obj, k, uint64_t) = sz;
		return 0;
	case CT_HEADERNAME:
		return conf_set_string(
		    obj, k, value, rule_value_header_name, why);
	case CT_TEXT:
		return conf_set_string(obj, k, value, rule_value_text, why);
	case CT_STATUS:
		return conf_set_string(obj, k, value, rule_value_status, why);
	}
	*why = "unknown key type";
	return -1;
}

static void
conf_join_flags(const struct conf_name *t, unsigned v, char *out, size_t len)
{
	size_t o = 0;

	out[0] = '\0';
	for (t++; t->name != NULL; t++) /* skip "None" */
		if (v & t->value)
			o += (size_t)snprintf(out + o, o < len ? len - o : 0,
			    "%s%s", o ? ", " : "", t->name);
	if (o == 0)
		snprintf(out, len, "None");
}

static const char *
conf_name_of(const struct conf_name *t, unsigned v)
{
	for (; t->name != NULL; t++)
		if (t->value == v)
			return t->name;
	return "";
}

void
conf_key_format(
    const struct conf_key *k, const void *obj, char *out, size_t len)
{
	const char *o = obj;
	size_t n, w = 0;

	out[0] = '\0';
	switch (k->type) {
	case CT_BOOL:
		snprintf(out, len, "%s",
		    *(const int *)(o + k->off) ? "true" : "false");
		break;
	case CT_TIME:
		conf_format_timespan(*(const unsigned *)(o + k->off), out, len);
		break;
	case CT_SIZE:
		conf_format_size(*(const uint64_t *)(o + k->off), out, len);
		break;
	case CT_UINT:
		snprintf(out, len, "%u", *(const unsigned *)(o + k->off));
		break;
	case CT_PORT:
		snprintf(out, len, "%u",
		    (unsigned)*(const unsigned short *)(o + k->off));
		break;
	case CT_STR:
	case CT_HOSTNAME:
	case CT_PATH: {
		const char *s = *(char *const *)(o + k->off);

		snprintf(out, len, "%s", s != NULL ? s : "");
		break;
	}
	case CT_DOMAINS: {
		char *const *v = *(char *const *const *)(o + k->off);

		n = *(const size_t *)(o + k->count_off);
		for (size_t i = 0; i < n; i++)
			w += (size_t)snprintf(out + w, w < len ? len - w : 0,
			    "%s%s", i ? ", " : "", v[i]);
		break;
	}
	case CT_BINDINGS: {
		const struct conf_binding *v =
		    *(const struct conf_binding *const *)(o + k->off);

		n = *(const size_t *)(o + k->count_off);
		for (size_t i = 0; i < n; i++)
			w += (size_t)snprintf(out + w, w < len ? len - w : 0,
			    "%s%s", i ? ", " : "", v[i].text);
		break;
	}
	case CT_RANGES: {
		const struct conf_iprange *v =
		    *(const struct conf_iprange *const *)(o + k->off);

		n = *(const size_t *)(o + k->count_off);
		for (size_t i = 0; i < n; i++)
			w += (size_t)snprintf(out + w, w < len ? len - w : 0,
			    "%s%s", i ? ", " : "", v[i].text);
		break;
	}
	case CT_ADDRSPACES: {
		const struct conf_address_space *v =
		    *(const struct conf_address_space *const *)(o + k->off);

		n = *(const size_t *)(o + k->count_off);
		for (size_t i = 0; i < n; i++)
			w += (size_t)snprintf(out + w, w < len ? len - w : 0,
			    "%s%s;%u", i ? ", " : "", v[i].domain, v[i].cost);
		break;
	}
	case CT_SMARTHOSTS: {
		const struct conf_smarthost *v =
		    *(const struct conf_smarthost *const *)(o + k->off);

		n = *(const size_t *)(o + k->count_off);
		for (size_t i = 0; i < n; i++) {
			w += (size_t)snprintf(out + w, w < len ? len - w : 0,
			    v[i].literal ? "%s[%s]" : "%s%s", i ? ", " : "",
			    v[i].host);
			if (v[i].port)
				w += (size_t)snprintf(out + w,
				    w < len ? len - w : 0, ":%u", v[i].port);
		}
		break;
	}
	case CT_AUTHMECH:
		conf_join_flags(
		    authmech_names, *(const unsigned *)(o + k->off), out, len);
		break;
	case CT_PERMS:
		conf_join_flags(
		    perm_names, *(const unsigned *)(o + k->off), out, len);
		break;
	case CT_DOMAINTYPE:
		snprintf(out, len, "%s",
		    conf_name_of(
		        domaintype_names, *(const unsigned *)(o + k->off)));
		break;
	case CT_TLSLEVEL:
		snprintf(out, len, "%s",
		    conf_tls_level_name(
		        *(const enum tls_auth_level *)(o + k->off)));
		break;
	case CT_SMARTAUTH:
		snprintf(out, len, "%s",
		    conf_name_of(
		        smartauth_names, *(const unsigned *)(o + k->off)));
		break;
	case CT_PROTOLOG:
		snprintf(out, len, "%s",
		    conf_name_of(
		        protolog_names, *(const unsigned *)(o + k->off)));
		break;
	case CT_DANEMODE:
		snprintf(out, len, "%s",
		    conf_name_of(
		        danemode_names, *(const unsigned *)(o + k->off)));
		break;
	case CT_STSMODE:
		snprintf(out, len, "%s",
		    conf_name_of(
		        stsmode_names, *(const unsigned *)(o + k->off)));
		break;
	case CT_PRIORITY:
		snprintf(out, len, "%u", *(const unsigned *)(o + k->off));
		break;
	case CT_RULEMODE:
		snprintf(out, len, "%s",
		    conf_name_of(
		        rulemode_names, *(const unsigned *)(o + k->off)));
		break;
	case CT_FROMSCOPE:
	case CT_TOSCOPE:
		snprintf(out, len, "%s",
		    conf_name_of(scope_names, *(const unsigned *)(o + k->off)));
		break;
	case CT_SENDERLOC:
		snprintf(out, len, "%s",
		    conf_name_of(
		        senderloc_names, *(const unsigned *)(o + k->off)));
		break;
	case CT_ERRACTION:
		snprintf(out, len, "%s",
		    conf_name_of(
		        erraction_names, *(const unsigned *)(o + k->off)));
		break;
	case CT_RDOMAINS:
	case CT_ADDRESSES:
	case CT_WORDS:
	case CT_PATTERNS: {
		char *const *v = *(char *const *const *)(o + k->off);
		char item[RULE_ITEM_MAX + 3];

		n = *(const size_t *)(o + k->count_off);
		for (size_t i = 0; i < n; i++) {
			rule_value_quote(v[i], item, sizeof(item));
			w += (size_t)snprintf(out + w, w < len ? len - w : 0,
			    "%s%s", i ? ", " : "", item);
		}
		break;
	}
	case CT_OPTSIZE:
		if (*(const uint64_t *)(o + k->off) != SIZE_UNLIMITED)
			conf_format_size(
			    *(const uint64_t *)(o + k->off), out, len);
		break;
	case CT_HEADERNAME:
	case CT_TEXT:
	case CT_STATUS: {
		const char *s = *(char *const *)(o + k->off);

		snprintf(out, len, "%s", s != NULL ? s : "");
		break;
	}
	}
}

void
conf_key_free(const struct conf_key *k, void *obj)
{
	char *o = obj;
	size_t n;

	switch (k->type) {
	case CT_STR:
	case CT_HOSTNAME:
	case CT_PATH:
	case CT_HEADERNAME:
	case CT_TEXT:
	case CT_STATUS:
		free(*(char **)(o + k->off));
		*(char **)(o + k->off) = NULL;
		break;
	case CT_DOMAINS:
	case CT_RDOMAINS:
	case CT_ADDRESSES:
	case CT_WORDS:
	case CT_PATTERNS: {
		char **v = *(char ***)(o + k->off);

		n = *(size_t *)(o + k->count_off);
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		break;
	}
	case CT_ADDRSPACES: {
		struct conf_address_space *v =
		    *(struct conf_address_space **)(o + k->off);

		n = *(size_t *)(o + k->count_off);
		for (size_t i = 0; i < n; i++)
			free(v[i].domain);
		free(v);
		break;
	}
	case CT_SMARTHOSTS: {
		struct conf_smarthost *v =
		    *(struct conf_smarthost **)(o + k->off);

		n = *(size_t *)(o + k->count_off);
		for (size_t i = 0; i < n; i++)
			free(v[i].host);
		free(v);
		break;
	}
	case CT_BINDINGS:
	case CT_RANGES:
		free(*(void **)(o + k->off));
		break;
	default:
		return;
	}
	if (k->count_off != 0) {
		*(void **)(o + k->off) = NULL;
		*(size_t *)(o + k->count_off) = 0;
	}
}
