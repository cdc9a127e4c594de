/*
 * backpressure.h - Exchange's back pressure: new mail is refused with
 * 452 4.3.1 while the queue's disk or the memory is overused, so that a
 * full disk or an exhausted host never costs mail that was acknowledged.
 *
 * Three resources, each with Exchange's three levels (Normal, Medium,
 * High) and its thresholds, set in [Transport] under the names of
 * Exchange's EdgeTransport.exe.config (docs/operations.md):
 *
 *   DatabaseUsedSpace  the filesystem of QueueDirectory, percent used
 *                      (PercentageDatabaseDiskSpaceUsedHighThreshold;
 *                      0 = Exchange's formula, High when less than
 *                      500 MB would be left)
 *   PrivateBytes       sluiced's own anonymous memory, percent of the
 *                      physical memory (PercentagePrivateBytesUsedHigh-
 *                      Threshold, 75)
 *   SystemMemory       memory used by all processes, percent of the
 *                      physical memory (PercentagePhysicalMemoryUsedLimit,
 *                      94)
 *
 * Medium is High - 2 and Normal High - 4, as Exchange derives them.  A
 * level rises when its threshold is reached and falls only below the
 * next lower one, so a resource hovering at a threshold does not flap.
 * At High every MAIL FROM gets 452 4.3.1; at Medium only sessions of our
 * own organisation (AuthAs Internal: authenticated users, Exchange
 * servers) may start a message.  A message already started goes on.
 */
#ifndef SLUICE_BACKPRESSURE_H
#define SLUICE_BACKPRESSURE_H

#include <stdint.h>

struct conf_transport;

enum bp_level { BP_NORMAL, BP_MEDIUM, BP_HIGH };

enum bp_resource {
	BP_DATABASE_USED_SPACE,
	BP_PRIVATE_BYTES,
	BP_SYSTEM_MEMORY,
	BP_RESOURCES
};

/* What one look at the machine found. */
struct bp_sample {
	unsigned used[BP_RESOURCES]; /* percent, rounded down */
	unsigned high[BP_RESOURCES]; /* the High threshold in force */
	uint64_t disk_avail;         /* bytes the queue may still use */
};

struct backpressure {
	double checked; /* CLOCK_MONOTONIC seconds of the last look; 0 never */
	enum bp_level level[BP_RESOURCES];
	struct bp_sample last;
};

/* The name of a resource and a level, as Exchange writes them. */
const char *backpressure_resource_name(enum bp_resource);
const char *backpressure_level_name(enum bp_level);

/* Pure: the new level of a resource from its old one and its use. */
enum bp_level backpressure_level(
    enum bp_level prev, unsigned used, unsigned high);
/*
 * Pure: the High threshold of the queue's disk: the configured percent,
 * or (0) Exchange's 100 * (size - 500 MB) / size, rounded down, at least
 * 1.
 */
unsigned backpressure_disk_high(uint64_t disk_size, unsigned configured);

/*
 * Look again when the last look is older than ResourceMonitoringInterval
 * (or force), and log every change of level.  Returns the highest level
 * of all resources (BP_NORMAL when monitoring is off).
 */
enum bp_level backpressure_update(struct backpressure *,
    const struct conf_transport *, double now, int force);
/* The resource at the highest level, for the reply and the log. */
enum bp_resource backpressure_worst(const struct backpressure *);

#endif
