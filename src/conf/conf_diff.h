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

#endif
