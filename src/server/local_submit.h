/*
 * local_submit.h - the local submission socket ([Transport]
 * LocalSubmissionSocket): a UNIX socket any local user may connect to,
 * served as an SMTP session on the built-in "Local Submission"
 * connector.  sluice-sendmail is its client.
 */
#ifndef SLUICE_LOCAL_SUBMIT_H
#define SLUICE_LOCAL_SUBMIT_H

struct server;
struct local_submit;

/*
 * Listen on path (a new socket before the old one is closed), or close
 * when path is empty.  Returns what now listens (old when path is the
 * same, or when the new socket could not be made, which is logged), or
 * NULL when nothing does.
 */
struct local_submit *local_submit_sync(
    struct local_submit *old, struct server *, const char *path);
void local_submit_free(struct local_submit *);
/*
 * Make the directory of a socket path when it is missing, mode 0755 so
 * that every local user reaches the socket; an existing one is left as it
 * is.  -1 with errno on failure.
 */
int local_submit_dir(const char *path);

#endif
