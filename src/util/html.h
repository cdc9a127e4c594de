/*
 * html.h - text into HTML: the characters that mean something in HTML
 * (& < > " ') as character references, controls as U+FFFD.  Everything
 * the status page shows from outside (domains, replies of next hops,
 * addresses) goes through here.
 */
#ifndef SLUICE_HTML_H
#define SLUICE_HTML_H

struct buf;

/* Append s escaped for an HTML text node or a quoted attribute. */
int html_escape(struct buf *, const char *s);

#endif
