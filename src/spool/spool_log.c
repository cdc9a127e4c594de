/*
 * spool_log.c - the content log: medium message content appended to
 * segment files, written once (see spool_int.h).
 *
 * Why: a message whose content is at least SPOOL_LOG_MIN and has no body
 * file (under SPOOL_INLINE_MAX of body) was stored inline in SQLite,
 * which writes it twice, into the WAL and again by the checkpoint into
 * queue.db: at 100 KB, 218 KB written per message in 87 write calls, and
 * three quarters of sluiced's CPU on the committer (docs/design.md, "At
 * 100 KB").  A file per message writes it once but costs a creation, a
 * sync, a directory sync and ext4's inode allocator for each.  Here the
 * committer appends a batch's contents to one file, QUEUEDIR/log/NNNNNNNN,
 * with one pwritev() and one fdatasync() for the whole batch, before the
 * transaction whose rows name (segment, offset) is begun: a row is never
 * durable before its content.
 *
 * Segments: a new one at every start (never appended to after a
 * restart, so a crash's torn tail is never followed by good data that a
 * row could name past it), then whenever the current one would grow past
 * SPOOL_LOG_SEGMENT_MAX.  A new segment's name is made durable (a sync of
 * the log directory) before any content goes into it.  A segment is
 * removed when it is not the current one and no row names it: once the
 * purge that removed the last of its rows is committed (asked then, not
 * inside the transaction, where a row of the same batch written after
 * the purge would not be seen yet), at its rotation if that purge came
 * while it was current, after a failed write or sync when no committed
 * row names it, and at start for every segment no row names (content of
 * messages never acknowledged).
 *
 * Threads: the committer alone writes, rotates and removes (and the loop
 * at open, before the committer runs).  Readers (spool_reader.c) open a
 * segment by name, pread() their range and close it; a segment is only
 * removed once no row names it, so a reader that found a row finds its
 * content (or, if the message was purged in between, an error, as with
 * a body file).
 *
 * Descriptors: none at rest but the current segment, opened by its first
 * content (docs/design.md, "Memory": a descriptor held at rest is not
 * free); the directory is opened for its sync and closed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "spool/spool.h"
#include "spool/spool_fault.h"
#include "spool/spool_int.h"
#include "util/log.h"

/*
 * A segment is rotated before it would grow past this.  64 MB: a
 * segment holds some 600 messages of 100 KB, so a message deferred for
 * days pins at most that much disk; smaller means more rotations (a
 * creation and a directory sync each), larger more pinned.  Tests set a
 * smaller one with SLUICE_LOG_SEGMENT_MAX (bytes, at least
 * SPOOL_INLINE_MAX).
 */
#define SPOOL_LOG_SEGMENT_MAX ((unsigned long long)64 * 1024 * 1024)
/* iovecs per pwritev() (IOV_MAX is 1024 on Linux). */
#define SPOOL_LOG_IOV 256

struct spool_log {
	char dir[4096];                  /* QUEUEDIR/log */
	unsigned long long seg;          /* the current segment's number */
	int fd;                          /* its descriptor, -1 until made */
	unsigned long long size;         /* its length, content reserved */
	unsigned long long flushed;      /* written and synced up to here */
	unsigned long long seg_max;      /* rotate before growing past */
	unsigned long long batch_from;   /* where this batch's content starts */
	struct iovec iov[SPOOL_LOG_IOV]; /* reserved, not yet written */
	int niov;
	int (*named)(void *, unsigned long long); /* a row names segment */
	void *named_arg;
};

void
spool_log_segment_name(unsigned long long seg, char *out, size_t len)
{
	snprintf(out, len, "%08llu", seg);
}

/* A segment's number from its name: 0 when the name is not one. */
static unsigned long long
log_parse_name(const char *name)
{
	unsigned long long n = 0;
	size_t i;

	for (i = 0; name[i] != '\0'; i++) {
		if (name[i] < '0' || name[i] > '9' || i >= 19)
			return 0;
		n = n * 10 + (unsigned long long)(name[i] - '0');
	}
	return i >= 8 ? n : 0;
}

static int
log_sync_dir(struct spool_log *lg)
{
	int fd, rc;

	if (spool_fault_file("fsync")) {
		errno = EIO;
		return -1;
	}
	if ((fd = open(lg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static void
log_unlink(struct spool_log *lg, unsigned long long seg)
{
	char path[4200], name[32];

	spool_log_segment_name(seg, name, sizeof(name));
	snprintf(path, sizeof(path), "%s/%s", lg->dir, name);
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("queue: removing log segment %s: %s", name,
		    strerror(errno));
}

struct spool_log *
spool_log_open(const char *dir, int (*named)(void *, unsigned long long),
    void *arg, const char **why)
{
	struct spool_log *lg = calloc(1, sizeof(*lg));
	const char *env = getenv("SLUICE_LOG_SEGMENT_MAX");
	unsigned long long last = 0;
	struct dirent *de;
	DIR *d;

	if (lg == NULL) {
		*why = "out of memory";
		return NULL;
	}
	lg->fd = -1;
	lg->named = named;
	lg->named_arg = arg;
	lg->seg_max = SPOOL_LOG_SEGMENT_MAX;
	if (env != NULL) {
		char *end;
		unsigned long long v = strtoull(env, &end, 10);

		if (*end == '\0' && v >= SPOOL_INLINE_MAX &&
		    v <= SPOOL_LOG_SEGMENT_MAX)
			lg->seg_max = v;
	}
	snprintf(lg->dir, sizeof(lg->dir), "%s/%s", dir, SPOOL_LOG_DIR);
	if ((mkdir(lg->dir, 0700) < 0 && errno != EEXIST) ||
	    chmod(lg->dir, 0700) < 0 || (d = opendir(lg->dir)) == NULL) {
		*why = strerror(errno);
		log_err("queue: %s: %s", lg->dir, *why);
		free(lg);
		return NULL;
	}
	/* The next segment comes after every one there: never append to
	 * one written before this start. */
	while ((de = readdir(d)) != NULL) {
		unsigned long long n = log_parse_name(de->d_name);

		if (n > last)
			last = n;
	}
	closedir(d);
	lg->seg = last + 1;
	return lg;
}

int
spool_log_sweep(struct spool_log *lg)
{
	unsigned long long *segs = NULL;
	size_t n = 0, cap = 0;
	int removed = 0;
	struct dirent *de;
	DIR *d;

	if ((d = opendir(lg->dir)) == NULL) {
		log_err("queue: cannot list %s: %s", lg->dir, strerror(errno));
		return -1;
	}
	/* names first, then the questions: no directory stream held
	 * across the queries */
	while ((de = readdir(d)) != NULL) {
		unsigned long long s = log_parse_name(de->d_name), *more;

		if (s == 0)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			if ((more = realloc(segs, cap * sizeof(*segs))) == NULL)
				break;
			segs = more;
		}
		segs[n++] = s;
	}
	closedir(d);
	for (size_t i = 0; i < n; i++) {
		if (segs[i] == lg->seg || lg->named(lg->named_arg, segs[i]))
			continue;
		log_unlink(lg, segs[i]);
		removed++;
	}
	free(segs);
	if (removed > 0)
		log_info("queue: removed %d log segment%s no message names",
		    removed, removed == 1 ? "" : "s");
	return removed;
}

/* Write what is reserved and sync it; -1 with errno. */
static int
log_flush(struct spool_log *lg)
{
	unsigned long long off = lg->flushed;
	int i = 0;

	while (i < lg->niov) {
		struct iovec *v = &lg->iov[i];
		ssize_t w;

		if (spool_fault_file("write")) {
			errno = EIO;
			return -1;
		}
		w = pwritev(lg->fd, v, lg->niov - i, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		off += (unsigned long long)w;
		/* a short write: go on from where it stopped */
		while (i < lg->niov && (size_t)w >= lg->iov[i].iov_len) {
			w -= (ssize_t)lg->iov[i].iov_len;
			i++;
		}
		if (i < lg->niov) {
			lg->iov[i].iov_base = (char *)lg->iov[i].iov_base + w;
			lg->iov[i].iov_len -= (size_t)w;
		}
	}
	lg->niov = 0;
	if (off == lg->flushed)
		return 0;
	if (spool_fault_file("fsync")) {
		errno = EIO;
		return -1;
	}
	if (fdatasync(lg->fd) < 0)
		return -1;
	lg->flushed = off;
	return 0;
}

/*
 * The current segment is done with: closed, and removed if no committed
 * row names it, unless the batch being written put content into it: its
 * rows are not committed yet (after a failure they never will be, and
 * check says so).  A segment whose last message a purge removed while
 * it was current goes here, at its rotation; one this batch wrote to
 * goes with the purge of its last message.
 */
static void
log_retire(struct spool_log *lg, int check)
{
	if (lg->fd < 0)
		return;
	close(lg->fd);
	lg->fd = -1;
	if (check && !lg->named(lg->named_arg, lg->seg))
		log_unlink(lg, lg->seg);
	lg->seg++;
	lg->size = lg->flushed = lg->batch_from = 0;
	lg->niov = 0;
}

/* A new segment, its name durable before anything is written to it. */
static int
log_create(struct spool_log *lg)
{
	char path[4200], name[32];

	spool_log_segment_name(lg->seg, name, sizeof(name));
	snprintf(path, sizeof(path), "%s/%s", lg->dir, name);
	lg->fd = open(
	    path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lg->fd < 0)
		return -1;
	if (log_sync_dir(lg) < 0) {
		int e = errno;

		close(lg->fd);
		lg->fd = -1;
		unlink(path);
		errno = e;
		return -1;
	}
	lg->size = lg->flushed = 0;
	return 0;
}

int
spool_log_add(struct spool_log *lg, const char *data, size_t len,
    unsigned long long *seg, unsigned long long *off)
{
	if (lg->fd >= 0 && lg->size > 0 && lg->size + len > lg->seg_max) {
		/* what this segment was given so far is made durable
		 * first: its rows are in the same batch */
		if (log_flush(lg) < 0)
			return -1;
		log_retire(lg, lg->size == lg->batch_from);
	}
	if (lg->niov == SPOOL_LOG_IOV && log_flush(lg) < 0)
		return -1;
	if (lg->fd < 0 && log_create(lg) < 0)
		return -1;
	lg->iov[lg->niov].iov_base = (void *)(uintptr_t)data;
	lg->iov[lg->niov].iov_len = len;
	lg->niov++;
	*seg = lg->seg;
	*off = lg->size;
	lg->size += len;
	return 0;
}

void
spool_log_begin(struct spool_log *lg)
{
	lg->batch_from = lg->size;
}

int
spool_log_sync(struct spool_log *lg)
{
	if (lg->fd < 0 || log_flush(lg) == 0)
		return 0;
	/*
	 * After a failed write or sync the segment's state is unknown (a
	 * failed fdatasync may have dropped the dirty pages): the batch is
	 * refused, and the next content goes to a new segment.
	 */
	int e = errno;

	log_retire(lg, 1);
	errno = e;
	return -1;
}

void
spool_log_abandon(struct spool_log *lg)
{
	/* a failure before the sync (spool_log_add): the same as above */
	log_retire(lg, 1);
}

unsigned long long
spool_log_current(const struct spool_log *lg)
{
	return lg->fd >= 0 ? lg->seg : 0;
}

void
spool_log_remove(struct spool_log *lg, unsigned long long seg)
{
	if (seg != 0 && seg != spool_log_current(lg))
		log_unlink(lg, seg);
}

void
spool_log_close(struct spool_log *lg)
{
	if (lg == NULL)
		return;
	if (lg->fd >= 0)
		close(lg->fd);
	free(lg);
}
