/*
 * conf_diff.h - what changes between two loaded configurations, for
 * `sluicectl reload` and the daemon's log.
 */
#ifndef SLUICE_CONF_DIFF_H
#define SLUICE_CONF_DIFF_H

#include "conf/conf.h"

struct buf;

/*
 * One line per section that was added, removed or changed (with the keys
 * that changed) is appended to out:
 *   [SendConnector Contoso]: added
 *   [ReceiveConnector "Default Frontend"]: changed: Banner, MaxMessageSize
 * Returns the number of lines, or -1 when out of memory.
 */
int conf_diff(const struct conf *old, const struct conf *new, struct buf *out);

/*
 * The [Transport] keys the running daemon cannot change: QueueDirectory,
 * LogDirectory, User and ControlSocket are opened, confined to or dropped
 * to once, at start.  Where the new configuration names another value, the
 * running one is copied into it (so nothing reads a path the daemon does
 * not use) and a line is appended to out:
 *   [Transport] QueueDirectory: /srv/q in the file takes effect at the next
 *   restart; the running daemon keeps /var/spool/sluice
 * Returns the number of lines, or -1 when out of memory.
 */
int conf_diff_keep_running(
    const struct conf *running, struct conf *new, struct buf *out);

#endif
