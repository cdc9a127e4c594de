/*
 * spool_ckpt.c - the committer's checkpoint, and the page cache it fills
 * (issue 12, "At 100 KB" in docs/design.md).
 *
 * SQLite's automatic checkpoint (every SPOOL_CKPT_FRAMES pages of WAL,
 * PASSIVE, inside the commit that reaches it) is taken over with a WAL
 * hook that does the same, so that we know when it has ended.  What it
 * adds: queue.db grows (delivered content is kept SafetyNetHoldTime), and
 * the part a checkpoint appended went into fresh page-cache pages that
 * nobody reads again soon; on a VM that hands free memory back to its
 * host, each fresh page costs a host fault on first touch.  After the
 * checkpoint (which fsyncs queue.db, so those pages are clean) that part
 * is dropped from the page cache (posix_fadvise DONTNEED on a read-only
 * descriptor of the same file: the advice is about the inode), so that the
 * next checkpoints' pages are reused ones.  The pages of the part of the
 * file that was already there (indexes, recipients' rows) stay.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "spool/spool_int.h"

/* WAL pages before a checkpoint: SQLite's own default. */
#define SPOOL_CKPT_FRAMES 1000

struct spool_ckpt {
	int fd;     /* queue.db, read-only: for fstat and the advice */
	off_t size; /* its size after the last checkpoint here */
	int drop;   /* EXPERIMENT: A/B switch */
};

static off_t
spool_ckpt_size(const struct spool_ckpt *c)
{
	struct stat st;

	return fstat(c->fd, &st) < 0 ? -1 : st.st_size;
}

static int
spool_ckpt_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct spool_ckpt *c = arg;
	off_t before, after;

	if (frames < SPOOL_CKPT_FRAMES)
		return SQLITE_OK;
	before = spool_ckpt_size(c);
	/* as SQLite's own: a failure here leaves the commit done and the
	 * frames for the next checkpoint */
	if (sqlite3_wal_checkpoint_v2(
	        db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) != SQLITE_OK)
		return SQLITE_OK;
	after = spool_ckpt_size(c);
	/* what the quiet-time checkpoint (spool_tidy) grew goes too */
	if (before > c->size)
		before = c->size;
	if (c->drop && before >= 0 && after > before)
		(void)posix_fadvise(
		    c->fd, before, after - before, POSIX_FADV_DONTNEED);
	c->size = after;
	return SQLITE_OK;
}

struct spool_ckpt *
spool_ckpt_open(sqlite3 *db, const char *path)
{
	struct spool_ckpt *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	if ((c->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		free(c);
		return NULL;
	}
	c->size = spool_ckpt_size(c);
	c->drop = getenv("SLUICE_CKPT_KEEP") == NULL;
	sqlite3_wal_hook(db, spool_ckpt_hook, c);
	return c;
}

void
spool_ckpt_free(struct spool_ckpt *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	free(c);
}
