/*
 * tracklog.h - the message tracking log (SPEC, Logs): one CSV row per
 * recipient and event: RECEIVE, SEND, DELIVER, DEFER, FAIL, DSN, EXPIRE.
 */
#ifndef SLUICE_TRACKLOG_H
#define SLUICE_TRACKLOG_H

#include <stdint.h>

struct tracklog;

struct track_event {
	const char *event;
	const char *message_id;
	const char *sender;
	const char *recipient;
	const char *connector;
	const char *next_hop;
	const char *tls;
	const char *status;
};

/* Files go to LOGDIR/MessageTracking/MSGTRKyyyymmdd-N.LOG */
struct tracklog *tracklog_open(const char *logdir);
void tracklog_write(struct tracklog *, const struct track_event *);
void tracklog_reopen(struct tracklog *);
/* Retention: MessageTrackingLogMaxAge ... (see csvlog_retain). */
void tracklog_retain(struct tracklog *, unsigned max_age, uint64_t max_size);
void tracklog_close(struct tracklog *);

#endif
