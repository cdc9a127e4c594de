/*
 * backpressure.c - Exchange's back pressure on the queue's disk and on
 * memory (see backpressure.h); consulted by the session at MAIL FROM.
 *
 * Why: a message is only ever acknowledged once it is on disk, so a full
 * disk cannot lose mail; but without back pressure it fails every
 * message at the end of its upload (after the client sent it all), and
 * leaves no room for the queue's own work (delivery results, notices)
 * that frees space.  Refusing new mail at MAIL FROM while a margin is
 * left keeps deliveries going and tells clients early to come back later,
 * as Exchange and Postfix (queue_minfree) do.  Memory is watched the same
 * way so that many large sessions cannot push the host into swapping or
 * the OOM killer.
 *
 * The look is lazy: at most once per ResourceMonitoringInterval, when a
 * session asks, so an idle server does no work for it.  It costs a
 * statvfs(2) and two small /proc reads.
 */
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "conf/conf.h"
#include "server/backpressure.h"
#include "util/log.h"

/* Exchange's fixed margin for the queue database's disk. */
#define BP_DISK_MARGIN (500ull * 1024 * 1024)

static const char *const bp_resource_names[BP_RESOURCES] = {
    "DatabaseUsedSpace",
    "PrivateBytes",
    "SystemMemory",
};

const char *
backpressure_resource_name(enum bp_resource r)
{
	return r < BP_RESOURCES ? bp_resource_names[r] : "?";
}

const char *
backpressure_level_name(enum bp_level l)
{
	switch (l) {
	case BP_NORMAL:
		return "Normal";
	case BP_MEDIUM:
		return "Medium";
	case BP_HIGH:
		return "High";
	}
	return "?";
}

enum bp_level
backpressure_level(enum bp_level prev, unsigned used, unsigned high)
{
	unsigned medium = high > 2 ? high - 2 : 0;
	unsigned normal = high > 4 ? high - 4 : 0;

	if (used >= high)
		return BP_HIGH;
	if (prev == BP_HIGH && used >= medium)
		return BP_HIGH;
	if (prev == BP_HIGH && used >= normal)
		return BP_MEDIUM;
	if (prev == BP_MEDIUM && used >= normal)
		return BP_MEDIUM;
	if (used >= medium)
		return BP_MEDIUM;
	return BP_NORMAL;
}

unsigned
backpressure_disk_high(uint64_t size, unsigned configured)
{
	uint64_t pct;

	if (configured > 0)
		return configured;
	if (size <= BP_DISK_MARGIN)
		return 1;
	pct = 100 * (size - BP_DISK_MARGIN) / size;
	return pct > 0 ? (unsigned)pct : 1;
}

/* A "Key:   123 kB" line of a /proc file, in bytes; 0 when missing. */
static uint64_t
bp_proc_kb(const char *file, const char *key)
{
	char line[256];
	size_t klen = strlen(key);
	unsigned long long v = 0;
	FILE *f = fopen(file, "re");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, klen) == 0 &&
		    sscanf(line + klen, "%llu", &v) == 1)
			break;
	fclose(f);
	return (uint64_t)v * 1024;
}

static unsigned
bp_percent(uint64_t part, uint64_t whole)
{
	if (whole == 0)
		return 0;
	if (part >= whole)
		return 100;
	return (unsigned)(part * 100 / whole);
}

/* One look at the machine. */
static void
bp_sample(const struct conf_transport *t, struct bp_sample *out)
{
	struct statvfs vfs;
	uint64_t phys, total, avail;
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);

	memset(out, 0, sizeof(*out));
	if (statvfs(t->queue_directory, &vfs) == 0) {
		uint64_t size = (uint64_t)vfs.f_blocks * vfs.f_frsize;

		out->disk_avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
		out->used[BP_DATABASE_USED_SPACE] =
		    bp_percent(size - out->disk_avail, size);
		out->high[BP_DATABASE_USED_SPACE] = backpressure_disk_high(size,
		    t->percentage_database_disk_space_used_high_threshold);
	} else {
		out->high[BP_DATABASE_USED_SPACE] = 100;
		out->disk_avail = UINT64_MAX;
	}
	phys = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
	out->used[BP_PRIVATE_BYTES] =
	    bp_percent(bp_proc_kb("/proc/self/status", "RssAnon:"), phys);
	out->high[BP_PRIVATE_BYTES] =
	    t->percentage_private_bytes_used_high_threshold;
	total = bp_proc_kb("/proc/meminfo", "MemTotal:");
	avail = bp_proc_kb("/proc/meminfo", "MemAvailable:");
	out->used[BP_SYSTEM_MEMORY] =
	    total > avail ? bp_percent(total - avail, total) : 0;
	out->high[BP_SYSTEM_MEMORY] = t->percentage_physical_memory_used_limit;
}

enum bp_level
backpressure_update(struct backpressure *bp, const struct conf_transport *t,
    double now, int force)
{
	enum bp_level worst = BP_NORMAL;

	if (!t->enable_resource_monitoring) {
		memset(bp->level, 0, sizeof(bp->level));
		return BP_NORMAL;
	}
	if (force || bp->checked == 0 ||
	    now - bp->checked >= (double)t->resource_monitoring_interval) {
		bp->checked = now;
		bp_sample(t, &bp->last);
		for (int r = 0; r < BP_RESOURCES; r++) {
			enum bp_level was = bp->level[r];

			bp->level[r] = backpressure_level(
			    was, bp->last.used[r], bp->last.high[r]);
			if (bp->level[r] == was)
				continue;
			(bp->level[r] > was ? log_warn : log_info)(
			    "back pressure: %s at %u%% (High at %u%%) went "
			    "from %s to %s%s",
			    backpressure_resource_name((enum bp_resource)r),
			    bp->last.used[r], bp->last.high[r],
			    backpressure_level_name(was),
			    backpressure_level_name(bp->level[r]),
			    bp->level[r] == BP_HIGH ? ": new mail is refused "
			                              "with 452 4.3.1"
			    : bp->level[r] == BP_MEDIUM
			        ? ": only our organisation's sessions may "
			          "send"
			        : "");
		}
	}
	for (int r = 0; r < BP_RESOURCES; r++)
		if (bp->level[r] > worst)
			worst = bp->level[r];
	return worst;
}

enum bp_resource
backpressure_worst(const struct backpressure *bp)
{
	enum bp_resource worst = BP_DATABASE_USED_SPACE;

	for (int r = 1; r < BP_RESOURCES; r++)
		if (bp->level[r] > bp->level[worst])
			worst = (enum bp_resource)r;
	return worst;
}
