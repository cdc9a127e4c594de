/*
 * ctl_request.h - one request to the daemon's control socket and its
 * whole answer (text lines, then a "." line), for sluicectl and
 * sluice-sendmail -bp.
 */
#ifndef SLUICE_CTL_REQUEST_H
#define SLUICE_CTL_REQUEST_H

#include <stddef.h>

struct buf;

/* The daemon bounds its answers at 16 MB; allow a bit more. */
#define CTL_REQUEST_ANSWER_MAX (17 * 1024 * 1024)

/*
 * Send request (one line, no CR or LF) to the socket at path and read
 * the answer into ans, without its final "." line.  0 on success; -1
 * with a reason in why (the errno text, or that the answer was cut).
 */
int ctl_request(const char *path, const char *request, struct buf *ans,
    char *why, size_t whylen);

#endif
