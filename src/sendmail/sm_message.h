/*
 * sm_message.h - the message sluice-sendmail reads from its standard
 * input, made ready for SMTP: line ends normalised, the header fields it
 * must know about found, recipients taken from the header (-t), Bcc
 * removed.
 */
#ifndef SLUICE_SM_MESSAGE_H
#define SLUICE_SM_MESSAGE_H

#include <stdio.h>

/* The header section is held in memory while it is read; bounded. */
#define SM_HEADER_MAX (1024 * 1024)

struct sm_message {
	FILE *text;     /* the message, lines ending in "\n", Bcc removed */
	long long size; /* bytes as sent (CRLF line ends) */
	long long lines;
	int eightbit; /* an octet >= 0x80 */
	int has_from, has_date, has_message_id;
	/* the header section did not end in an empty line */
	int needs_separator;
	/* -t: To, Cc and Bcc (or the Resent- ones), unfolded, "," joined */
	char *rcpt_fields;
};

/*
 * Read a message from in.  Lines may end in LF, CRLF or a lone CR.
 * dot_ends: a line holding only "." ends the input (sendmail's default;
 * -i and -oi turn it off).  A NUL byte or an oversized header section is
 * an error (-1, why set).
 */
int sm_message_read(
    FILE *in, int dot_ends, struct sm_message *, const char **why);
void sm_message_free(struct sm_message *);

#endif
