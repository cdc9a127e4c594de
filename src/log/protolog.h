/*
 * protolog.h - the SMTP protocol log in Exchange's layout (SPEC, Logs):
 * date-time,connector-id,session-id,sequence-number,local-endpoint,
 * remote-endpoint,event,data,context
 */
#ifndef SLUICE_PROTOLOG_H
#define SLUICE_PROTOLOG_H

#include <stddef.h>
#include <stdint.h>

enum protolog_kind { PROTOLOG_RECEIVE, PROTOLOG_SEND };

struct protolog;

/* Files go to LOGDIR/ProtocolLog/SmtpReceive (or SmtpSend). */
struct protolog *protolog_open(const char *logdir, enum protolog_kind);
void protolog_reopen(struct protolog *);
/* Retention: ReceiveProtocolLogMaxAge ... (see csvlog_retain). */
void protolog_retain(struct protolog *, unsigned max_age, uint64_t max_size);
void protolog_close(struct protolog *);

/* event: '+' connect, '-' disconnect, '>' sent, '<' received, '*' info */
void protolog_write(struct protolog *, const char *connector,
    const char *session_id, unsigned seq, const char *local, const char *remote,
    char event, const char *data, size_t datalen, const char *context);

#endif
