/*
 * status_page.h - the HTML status page (see status_page.c).
 */
#ifndef SLUICE_STATUS_PAGE_H
#define SLUICE_STATUS_PAGE_H

#include <stddef.h>

struct buf;
struct daemon;
struct control_queue_info;

/*
 * The whole page into out, with the number of inbound sessions and the
 * queues as the listener last read them (queues NULL: they could not be
 * read); -1 when out is full.
 */
int status_page_render(struct daemon *, size_t sessions,
    const struct control_queue_info *, size_t nqueues, struct buf *out);

#endif
