/*
 * sm_submit.h - handing a message to sluiced over its local submission
 * socket: an SMTP transaction whose 250 to the end of data means the
 * message is durable in the queue (SPEC 4), and only then success.
 */
#ifndef SLUICE_SM_SUBMIT_H
#define SLUICE_SM_SUBMIT_H

#include <stddef.h>

struct sm_message;

struct sm_submit {
	const char *socket; /* LocalSubmissionSocket */
	const char *sender; /* envelope sender; "" is <> */
	char **rcpts;       /* envelope recipients, qualified */
	size_t nrcpts;
	const char *notify;  /* -N, as RCPT's NOTIFY= value, or NULL */
	const char *ret;     /* -R: FULL or HDRS, or NULL */
	const char *envid;   /* -V, xtext already, or NULL */
	int body_8bit;       /* -B 8BITMIME */
	int verbose;         /* -v: the dialogue on stderr */
	const char *prepend; /* header fields put in front ("" for none) */
};

/*
 * Run the transaction.  Returns a sysexits(3) code: 0 once the daemon
 * said 250 to the end of data (recipients it refused are reported on
 * stderr; at least one took the message), EX_TEMPFAIL when it could not
 * be reached or said 4xx, EX_NOUSER when it refused every recipient,
 * EX_DATAERR when it refused the message, EX_PROTOCOL on nonsense.  Each
 * failure is explained on stderr, prefixed by prog.
 */
int sm_submit_run(
    const char *prog, const struct sm_submit *, struct sm_message *);

/*
 * -bs: relay stdin and stdout to the socket, so the caller speaks SMTP
 * with the daemon itself.  A bare LF from stdin is sent as CRLF (a person
 * typing).  Returns a sysexits(3) code.
 */
int sm_submit_pipe(const char *prog, const char *socket);

#endif
