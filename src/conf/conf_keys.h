/*
 * conf_keys.h - the declarative key table behind the configuration
 * (internal to src/conf/).
 *
 * Every key of every section is one row: its Exchange name, its type,
 * where it lives in the section's struct, its default (as text, parsed by
 * the same parser as the file, so there is one source of truth), its range
 * and the Exchange cmdlet parameter it mirrors.  Loading, defaults,
 * validation messages, Format-List dumps, the INI dump and freeing are all
 * driven by this table.
 */
#ifndef SLUICE_CONF_KEYS_H
#define SLUICE_CONF_KEYS_H

#include <stddef.h>

#include "conf/conf.h"

enum conf_section {
	CONF_SEC_TRANSPORT,
	CONF_SEC_CERTIFICATE,
	CONF_SEC_ACCEPTED_DOMAIN,
	CONF_SEC_RECEIVE,
	CONF_SEC_SEND,
	CONF_SEC_RULE, /* [TransportRule NAME] */
	CONF_SEC_COUNT,
};

enum conf_type {
	CT_BOOL,
	CT_TIME,
	CT_SIZE,
	CT_UINT,
	CT_PORT,
	CT_STR,
	CT_HOSTNAME, /* a host name (Fqdn): hostname_valid() */
	CT_PATH,     /* a file or directory, relative to the config file */
	CT_DOMAINS,  /* list of domain names */
	CT_BINDINGS,
	CT_RANGES,
	CT_AUTHMECH,
	CT_PERMS,
	CT_DOMAINTYPE,
	CT_TLSLEVEL,
	CT_SMARTAUTH,
	CT_PROTOLOG,
	CT_ADDRSPACES,
	CT_SMARTHOSTS,
	CT_DANEMODE, /* None | Opportunistic | Mandatory */
	CT_STSMODE,  /* None | Opportunistic */
	/* transport rules (values checked by src/rules/rule_value.c) */
	CT_PRIORITY,  /* number; count_off: "given" flag */
	CT_RULEMODE,  /* Enforce | Audit | AuditAndNotify */
	CT_FROMSCOPE, /* "" | InOrganization | NotInOrganization */
	CT_TOSCOPE,   /* the same, or ExternalPartner */
	CT_SENDERLOC, /* Header | Envelope | HeaderOrEnvelope */
	CT_ERRACTION, /* Ignore | Defer */
	CT_RDOMAINS,  /* list of plain domains (subdomains implied) */
	CT_ADDRESSES, /* list of e-mail addresses */
	CT_WORDS,     /* list of words or phrases, items may be quoted */
	CT_PATTERNS,  /* list of PCRE2 patterns, items may be quoted */
	CT_OPTSIZE,   /* a size, or "" for not set (SIZE_UNLIMITED) */
	CT_HEADERNAME,
	CT_TEXT,   /* header text: no control characters */
	CT_STATUS, /* "" or an enhanced status code 5.7.x */
};

struct conf_key {
	const char *name;
	enum conf_type type;
	size_t off;       /* of the value (or of the array pointer) */
	size_t count_off; /* of the element count, for array types */
	const char *def;  /* NULL: no default (see conf_load.c fix-ups) */
	unsigned long long min, max; /* CT_UINT, CT_TIME, CT_SIZE */
	int required;
};

struct conf_section_desc {
	const char *name; /* as written in the file: "ReceiveConnector" */
	int named;        /* [Kind NAME] rather than [Kind] */
	const struct conf_key *keys;
	size_t nkeys;
	size_t size; /* of one object */
};

extern const struct conf_section_desc conf_sections[CONF_SEC_COUNT];

/* The most keys a section has; conf_obj records a line for each. */
#define CONF_KEYS_MAX 64

/*
 * Where an object was written: its section line and the line of each
 * key (0: not written, the default applies).  Kept in struct conf after
 * loading, so that checks made later still report FILE:LINE.
 */
struct conf_obj {
	enum conf_section sec;
	size_t index;
	int line;
	int key_line[CONF_KEYS_MAX];
};

/* Index of a key in its section's table (case-insensitive), or -1. */
int conf_key_index(enum conf_section, const char *name);

/*
 * Suggestions for misspelt names (conf_suggest.c): the nearest of names
 * when it is close enough to be a typo, else NULL; the nearest key of a
 * section; the other section that has exactly this key, or -1.
 */
const char *conf_suggest(const char *word, const char *const *names, size_t n);
const char *conf_suggest_key(enum conf_section, const char *word);
int conf_key_elsewhere(enum conf_section, const char *word);

/* The object of a section: &conf->transport, &conf->certificates[i]... */
void *conf_object(const struct conf *, enum conf_section, size_t index);
size_t conf_object_count(const struct conf *, enum conf_section);

/*
 * Parse value into the object's field; appends for list types.  On
 * failure *why says why and bad holds what to quote: the whole value, or
 * the one list item that is wrong.
 */
int conf_key_parse(const struct conf_key *, void *obj, const char *value,
    const char *basedir, const char **why, char *bad, size_t badlen);
/* Print the field as the file would say it. */
void conf_key_format(
    const struct conf_key *, const void *obj, char *out, size_t len);
void conf_key_free(const struct conf_key *, void *obj);
/* Types whose items may be quoted: the value keeps its quotes. */
int conf_key_quoted_list(enum conf_type);

/* Validation over a loaded configuration (conf_validate.c). */
struct conf_parse;
int conf_validate(struct conf *, struct conf_parse *);
/* Transport rules: priorities, references, the compiled set
 * (conf_rules.c); called by conf_validate(). */
void conf_validate_rules(struct conf *, struct conf_parse *);
/* Report "FILE:LINE: reason" for a key (or the section) of an object. */
void conf_error_at(struct conf_parse *, enum conf_section, size_t index,
    const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Warnings about receive connectors shadowed by a tie (conf_overlap.c). */
void conf_overlap_check(struct conf *, struct conf_parse *);
/*
 * The same as a warning ("FILE:LINE: warning: reason"): kept with the
 * configuration for conf_warnings(), never a reason to refuse it.
 */
void conf_warn_at(struct conf_parse *, enum conf_section, size_t index,
    const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
