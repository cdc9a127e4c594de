/*
 * dsn.h - delivery status notifications (RFC 3464) as the MTA writes
 * them: a multipart/report message from the null sender to the original
 * sender, one per-recipient block per recipient it reports on, and the
 * original message (RET=FULL) or its header (RET=HDRS) attached, or
 * nothing of it for a message that required TLS (no_original).
 */
#ifndef SLUICE_DSN_H
#define SLUICE_DSN_H

#include <stddef.h>
#include <time.h>

enum dsn_action {
	DSN_FAILED,    /* returned: permanent failure or expiry */
	DSN_DELAYED,   /* still trying (DelayNotificationTimeout passed) */
	DSN_DELIVERED, /* NOTIFY=SUCCESS and delivered locally */
	DSN_RELAYED,   /* NOTIFY=SUCCESS and handed to a non-DSN next hop */
};

struct dsn_rcpt {
	const char *addr;  /* Final-Recipient, rfc822;addr */
	const char *orcpt; /* ORCPT as received, "" when none */
	enum dsn_action action;
	const char *status;     /* "5.4.4", "4.7.5", "2.0.0" */
	const char *remote_mta; /* next hop host name, "" when none */
	const char *diagnostic; /* the reply or reason, "" when none */
	time_t last_attempt;    /* 0 when never tried */
	time_t retry_until;     /* DSN_DELAYED: when the message expires */
};

/* The most of the original a notice returns (whole, or its header). */
#define DSN_ORIGINAL_MAX (1024 * 1024)

struct dsn_msg {
	const char *reporting_mta; /* our FQDN */
	const char *queue_id;      /* the original's queue id */
	const char *envid;         /* DSN ENVID, "" when none */
	const char *sender;        /* the original sender: the DSN's To */
	time_t arrival;            /* when we accepted the original */
	int ret;                   /* enum smtp_ret of the original */
	/*
	 * The stored message, headers and body, or its first
	 * DSN_ORIGINAL_MAX bytes when original_size (the whole message's
	 * size; 0: original_len) is larger: only then is it not returned
	 * whole anyway, so the caller need never load more.
	 */
	const char *original;
	size_t original_len;
	unsigned long long original_size;
	const struct dsn_rcpt *rcpts;
	size_t nrcpts;
	time_t now;
	const char *message_id; /* Message-ID for the DSN, without <> */
	/*
	 * RFC 8689 5: the original required TLS (REQUIRETLS), so nothing of
	 * it is returned -- not its content, not its header, not even its
	 * Subject in ours -- since the notice may travel a path the sender
	 * would not have accepted.
	 */
	int no_original;
};

/*
 * The whole notification, header and body, CRLF line endings, no line
 * over 998 octets.  Returns a malloc'ed buffer and its length in *len,
 * NULL when out of memory.
 */
char *dsn_compose(const struct dsn_msg *, size_t *len);

#endif
