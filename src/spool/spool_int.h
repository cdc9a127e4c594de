/*
 * spool_int.h - what the parts of the spool share (internal to
 * src/spool/):
 *
 *   spool.c         the database, the committer thread, group commit
 *   spool_body.c    body files and the writer thread that fills them
 *   spool_reader.c  reading messages back in pieces (views, readers)
 *   spool_fault.c   fault injection for the tests
 *   spool_tidy.c    giving disk space back (vacuum, WAL truncation)
 *   spool_log.c     the content log: medium content in segment files
 */
#ifndef SLUICE_SPOOL_INT_H
#define SLUICE_SPOOL_INT_H

#include <stddef.h>
#include <stdint.h>

struct buf;
struct spool;
struct spool_body;
struct spool_bodies;
struct spool_item;
struct spool_view;
struct sqlite3;

/* The directory of the body files, under the queue directory. */
#define SPOOL_BODY_DIR "body"
/* The directory of the content log's segments, under the same. */
#define SPOOL_LOG_DIR "log"
/*
 * The most content one range of the log holds: a body under
 * SPOOL_INLINE_MAX with a header section up to MaxHeaderSize's default
 * (256 KB) fits many times over.  Larger content (a header section of
 * megabytes, which MaxHeaderSize allows up to 64 MB) stays inline, as it
 * did before the log; a reader refuses a row that says more (damaged).
 */
#define SPOOL_LOG_MAX ((size_t)4 * 1024 * 1024)

/* The FNV-1a checksum (by 64-bit words) a row stores of its content. */
uint64_t spool_checksum(const char *, size_t);

/* spool.c: an item whose body file (of body_size bytes) is durable goes
 * to the committer; one whose body could not be written is reported
 * failed.  Any thread. */
void spool_commit_later(
    struct spool *, struct spool_item *, unsigned long long body_size);
void spool_fail_now(struct spool *, struct spool_item *);
struct spool_bodies *spool_bodies_of(struct spool *);
/* Wake the loop: committed messages or returned body jobs wait.  Any
 * thread. */
void spool_wake(struct spool *);

/*
 * spool_body.c: the writer thread.  start() makes DIR/body; stop() waits
 * until every piece handed over is written (and every finished body is
 * with the committer), then joins the thread; free() releases what is
 * left once the loop will run no more callbacks.
 */
struct spool_bodies *spool_bodies_start(
    struct spool *, const char *dir, const char **why);
void spool_bodies_stop(struct spool_bodies *);
/* On the loop, after spool_wake(): jobs back from the threads. */
void spool_bodies_returned(struct spool_bodies *);
/* The body directory (openat); the spool's, not to be closed. */
int spool_bodies_dirfd(const struct spool_bodies *);
void spool_bodies_free(struct spool_bodies *);
/*
 * Remove every body file that named() does not know (no row names it):
 * the content of messages that were never acknowledged, or of purged
 * ones whose removal a crash interrupted.  Returns the number removed.
 */
int spool_bodies_sweep(
    struct spool_bodies *, int (*named)(void *, const char *), void *);
/* A body file no row names any more (after a purge); any thread. */
void spool_bodies_unlink(struct spool_bodies *, const char *name);
/* fsync the body directory (new names durable); -1 with errno. */
int spool_bodies_sync_dir(struct spool_bodies *);
/* The end of a body: tail's bytes (taken over) are written, the file is
 * synced, then it goes to the committer as it (or fails). */
void spool_body_finish(
    struct spool_body *, struct buf *tail, struct spool_item *);
const char *spool_body_name(const struct spool_body *);

/*
 * spool_tidy.c, on the writing connection.  spool_tidy_open(), at open
 * before the schema: incremental vacuum for a new database (or an old
 * one small enough to convert), the WAL's size limit.  spool_tidy(), on
 * the committer at a quiet moment: free pages beyond a reserve handed
 * back, the WAL checkpointed and truncated: 0.  It stops early (1) when
 * busy(arg) says new work waits, and is -1 when it failed (a reader kept
 * the checkpoint from finishing, an I/O error): try again at the next
 * quiet moment (after a failure, a longer one).
 */
struct sqlite3;
/* sqlite3_exec, its failure logged with the statement (spool.c). */
int spool_exec(struct sqlite3 *, const char *sql);
int spool_tidy_open(struct sqlite3 *, const char *path);
int spool_tidy(struct sqlite3 *, int (*busy)(void *), void *arg);

/* spool_reader.c: a view on its own read-only connection; or one on the
 * loop's connection and the body directory, which it does not close
 * (descriptors: the loop's view costs none of its own). */
struct spool_view *spool_view_open(
    const char *db, const char *dir, const char **why);
struct spool_view *spool_view_borrow(struct sqlite3 *conn, int dirfd,
    const char *db, const char *dir, const char **why);
struct sqlite3 *spool_view_db(struct spool_view *);

/*
 * spool_log.c: the content log (medium content, written once).  open():
 * makes DIR/log and picks the next segment's number, after every one
 * there; named(arg, seg) says whether a row names a segment (the
 * committer's connection).  sweep(): at open, removes every segment no
 * row names.  On the committer: add() reserves len bytes of data (the
 * caller's until sync) in the current segment, rotating it when full,
 * and says where they go; sync() writes all that is reserved and
 * fdatasyncs it, before the transaction whose rows name it begins; after
 * a failure of either (-1, errno) the batch is refused and
 * spool_log_abandon() leaves the segment for a new one.  remove(): a
 * segment no row names any more (after a purge), unless it is current.
 */
struct spool_log;
struct spool_log *spool_log_open(const char *dir,
    int (*named)(void *, unsigned long long), void *arg, const char **why);
int spool_log_sweep(struct spool_log *);
/* A batch's contents are about to be added (see spool_log.c, retire). */
void spool_log_begin(struct spool_log *);
int spool_log_add(struct spool_log *, const char *data, size_t len,
    unsigned long long *seg, unsigned long long *off);
int spool_log_sync(struct spool_log *);
void spool_log_abandon(struct spool_log *);
unsigned long long spool_log_current(const struct spool_log *);
void spool_log_remove(struct spool_log *, unsigned long long seg);
void spool_log_close(struct spool_log *);
/* A segment's file name (8 digits or more), in out. */
void spool_log_segment_name(unsigned long long seg, char *out, size_t len);

#endif
