/*
 * command.h - parsing of SMTP commands and their arguments (RFC 5321
 * section 4.1, RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 3461 DSN, RFC 6531
 * SMTPUTF8, RFC 3030 CHUNKING).
 *
 * Pure functions over length-carrying slices: no sockets, no allocation
 * except into caller-provided fixed-size structures.  Everything that comes
 * out of here is free of CR, LF and NUL, also after xtext decoding, so it is
 * safe to store and to log (GUIDE 4.4).
 */
#ifndef SLUICE_COMMAND_H
#define SLUICE_COMMAND_H

#include <stddef.h>
#include <stdint.h>

enum smtp_verb {
	SMTP_VERB_UNKNOWN,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
};

/* RFC 5321 4.5.3.1 size limits. */
#define SMTP_LOCAL_MAX 64
#define SMTP_DOMAIN_MAX 255
#define SMTP_PATH_MAX 256
#define SMTP_ENVID_MAX 100 /* RFC 3461 4.4 */
#define SMTP_ORCPT_MAX 500 /* RFC 3461 4.2: decoded address plus type */
#define SMTP_HELO_MAX 255

struct smtp_cmd {
	enum smtp_verb verb;
	const char *verb_text; /* as sent, verb_len bytes */
	size_t verb_len;
	const char *arg; /* after the verb and one or more spaces */
	size_t arg_len;
	int bad_separator; /* a known verb followed by neither SP nor end */
};

/*
 * Split a command line (without CRLF) into verb and argument.  The verb
 * is the leading run of letters, digits and hyphens (RFC 5321 4.1.1
 * keywords); RFC 5321 separates it from the argument with SP, so any other
 * byte after a known verb (a TAB, a control, punctuation) sets
 * bad_separator and the line is a syntax error.
 */
void smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *);
const char *smtp_verb_name(enum smtp_verb);

/*
 * How many leading bytes of a command line may be shown in a log or echoed
 * in a reply.  A line whose verb starts with "AUTH" (any case, whatever
 * follows it: SP, TAB, other bytes or more letters) may carry a credential
 * after the verb: only "AUTH" and, when SP-separated, the mechanism name
 * are shown.  Every other line may be shown whole.
 */
size_t smtp_cmd_public_len(
    const char *line, size_t len, const struct smtp_cmd *);

/* A reverse-path or forward-path. */
struct smtp_path {
	char addr[SMTP_PATH_MAX + 1]; /* "local@domain", "" for <> */
	char local[SMTP_LOCAL_MAX + 1];
	char domain[SMTP_DOMAIN_MAX + 1]; /* lower-cased unless a literal */
	int null;                         /* the null path <> */
	int utf8;                         /* contains non-ASCII */
	int postmaster;                   /* <Postmaster> without a domain */
};

enum smtp_parse_status {
	SMTP_PARSE_OK = 0,
	SMTP_PARSE_SYNTAX = -1,   /* 501 5.5.4 / 5.1.3 / 5.1.7 */
	SMTP_PARSE_TOOLONG = -2,  /* 501 5.5.4 path or part too long */
	SMTP_PARSE_UTF8 = -3,     /* non-ASCII without SMTPUTF8: 553 5.6.7 */
	SMTP_PARSE_BADPARAM = -4, /* 555 5.5.4 unknown or bad parameter */
	SMTP_PARSE_BADVALUE = -5, /* 501 5.5.4 undecodable xtext value */
	SMTP_PARSE_NEEDTLS = -6,  /* 530 5.7.10 REQUIRETLS outside TLS */
};

enum smtp_body {
	SMTP_BODY_NONE,
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
	SMTP_BODY_BINARYMIME
};
enum smtp_ret { SMTP_RET_NONE, SMTP_RET_FULL, SMTP_RET_HDRS };
enum {
	SMTP_NOTIFY_NEVER = 1 << 0,
	SMTP_NOTIFY_SUCCESS = 1 << 1,
	SMTP_NOTIFY_FAILURE = 1 << 2,
	SMTP_NOTIFY_DELAY = 1 << 3,
};

/* Which extensions the session offered, to judge which parameters are ok. */
struct smtp_ext {
	int size, eightbitmime, smtputf8, dsn, chunking;
	int requiretls; /* RFC 8689: offered inside TLS only */
};

struct smtp_mail_args {
	struct smtp_path path;
	uint64_t size; /* SIZE=, 0 when absent */
	int has_size;
	enum smtp_body body;
	int smtputf8;
	enum smtp_ret ret;
	char envid[SMTP_ENVID_MAX + 1]; /* xtext-decoded */
	char auth[SMTP_PATH_MAX + 3];   /* AUTH= as given (xtext-decoded) */
	int requiretls;                 /* REQUIRETLS (RFC 8689) */
};

struct smtp_rcpt_args {
	struct smtp_path path;
	unsigned notify;                /* SMTP_NOTIFY_* flags, 0 when absent */
	char orcpt[SMTP_ORCPT_MAX + 1]; /* "rfc822;user@example", decoded */
};

/*
 * Parse the argument of MAIL ("FROM:<path> params") and RCPT
 * ("TO:<path> params").  REQUIRETLS when the session did not offer it
 * (outside TLS) is SMTP_PARSE_NEEDTLS, so that the client hears why.  "FROM:"
 * and "TO:" are case-insensitive and, as many clients do it, a space after the
 * colon is tolerated.  On failure *why is a short static reason that can follow
 * the status code.
 */
int smtp_mail_parse(const char *arg, size_t len, const struct smtp_ext *,
    struct smtp_mail_args *, const char **why);
int smtp_rcpt_parse(const char *arg, size_t len, const struct smtp_ext *,
    struct smtp_rcpt_args *, const char **why);

/*
 * A HELO/EHLO argument: a domain or an address literal.  Spaces and
 * controls are refused; any other byte that has no place in a domain or
 * an address literal (8-bit, "(", ";", ...) comes out as '?'.
 */
int smtp_helo_parse(
    const char *arg, size_t len, char *out, size_t outsz, const char **why);

/*
 * BDAT argument: "size" or "size LAST".  Rejects signs, leading spaces,
 * empty sizes and values that overflow uint64_t.
 */
int smtp_bdat_parse(const char *arg, size_t len, uint64_t *size, int *last);

/* Decode RFC 3461 xtext; rejects CR, LF, NUL and malformed +XX. */
int smtp_xtext_decode(const char *in, size_t len, char *out, size_t outsz);
/* Encode into xtext; returns -1 if outsz is too small. */
int smtp_xtext_encode(const char *in, char *out, size_t outsz);

#endif
