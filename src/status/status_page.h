/*
 * status_page.h - the HTML status page (see status_page.c).
 */
#ifndef SLUICE_STATUS_PAGE_H
#define SLUICE_STATUS_PAGE_H

struct buf;
struct server;

/* The whole page into out; -1 when out is full. */
int status_page_render(struct server *, struct buf *out);

#endif
