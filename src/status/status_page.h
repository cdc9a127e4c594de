/*
 * status_page.h - the HTML status page (see status_page.c).
 */
#ifndef SLUICE_STATUS_PAGE_H
#define SLUICE_STATUS_PAGE_H

#include <stddef.h>

struct buf;
struct daemon;
struct control_queue_info;

/* What the queue table shows (status_queues.c reads it). */
enum status_page_queues {
	STATUS_PAGE_QUEUES_READ,       /* the last reading */
	STATUS_PAGE_QUEUES_FIRST,      /* the first is being read */
	STATUS_PAGE_QUEUES_UNREADABLE, /* the last reading failed */
};

/*
 * The whole page into out, with the number of inbound sessions and the
 * queues as the listener last read them; -1 when out is full.
 */
int status_page_render(struct daemon *, size_t sessions,
    const struct control_queue_info *, size_t nqueues, enum status_page_queues,
    struct buf *out);

#endif
