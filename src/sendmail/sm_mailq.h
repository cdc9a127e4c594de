/*
 * sm_mailq.h - mailq (sendmail -bp): the queue as sendmail and Postfix
 * print it, from the daemon's control socket.
 */
#ifndef SLUICE_SM_MAILQ_H
#define SLUICE_SM_MAILQ_H

/* Returns a sysexits(3) code; the listing goes to stdout. */
int sm_mailq(const char *prog, const char *control_socket);

#endif
