/*
 * spool_body.c - large message content in files of its own, written by
 * one writer thread as it arrives (see spool.h and spool_int.h).
 *
 * Why files: measured with bench/spool-layout.c (docs/design.md, "Message
 * content on disk"), storing 20 messages of 50 MB as they arrive took
 * 0.8 s in files against 11 s as SQLite rows of 256 KB chunks, and the
 * files are written once where the WAL writes everything twice.  Small
 * messages stay inline in the database, in the group commit.
 *
 * Threads: the event loop hands over pieces (spool_body_put) and never
 * touches a file; a writer thread (each body keeps to one of
 * SPOOL_BODY_WRITERS) opens, writes and removes its files, in the order
 * the jobs were handed over; a finished body (its last piece written)
 * goes to one of SPOOL_BODY_SYNCERS syncer threads, which fdatasync it
 * and its directory and hand the message to the committer.  Syncing apart
 * from writing matters: an fdatasync waits for the disk (milliseconds),
 * and done by the writer it held up every other session's pieces, and so
 * their reading, behind each message's end; several at once also let the
 * filesystem share one journal commit among them.  A finished job comes
 * back to the loop through the spool's wake (the one the committer's
 * results take: a descriptor less) and gives its buffer back to the body,
 * which can then take the next piece: a session never has more than two
 * pieces in flight, and one that gets ahead of the disk waits (its input
 * is not read) until the writer catches up.
 *
 * Ownership: a body belongs to the loop.  It counts one reference for its
 * owner (the session, until it finishes or aborts the body) and one per
 * job not yet back; it is freed on the loop when the count reaches zero.
 * The writer only reads the name and the fd, which the loop never
 * touches after creation.
 *
 * Durability: writeback of each MB is started as it is written
 * (sync_file_range), so the fdatasync at the end finds little to do; then
 * the message goes to the committer, which syncs the directory (the new
 * name must survive a crash) once for its whole batch before it commits
 * the rows.  A file whose row never commits is removed at the next start
 * (spool_bodies_sweep).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool/spool.h"
#include "spool/spool_fault.h"
#include "spool/spool_int.h"
#include "util/buf.h"
#include "util/log.h"

/* Start writeback after this many bytes written and not yet started. */
#define SPOOL_BODY_WRITEBACK (256 * 1024)
/* Threads syncing finished bodies at once. */
#define SPOOL_BODY_SYNCERS 4
/*
 * Writer threads.  A write(2) into the page cache costs about 2.5 ms per
 * MB here (a copy into fresh pages, the filesystem's bookkeeping): one
 * thread bounded acceptance at some 400 MB/s and left 20 sessions
 * blocked, waiting for it, 85% of the time with 10 MB messages.  Each
 * body keeps to one writer, so its pieces stay in order.
 */
#define SPOOL_BODY_WRITERS 2

enum job_kind { JOB_WRITE, JOB_FINISH, JOB_ABORT };

struct spool_body {
	struct spool_bodies *w;
	struct body_writer *bw; /* the one thread that writes it */
	char name[32];          /* in DIR/body: the message's queue id */
	/* writer thread only */
	int fd; /* -1 until the first piece */
	int created;
	unsigned long long written, started;
	/* event loop only (error: set by the writer, read once its job is
	 * back, so the pipe and the mutex order it) */
	unsigned refs;
	int busy;
	int error; /* errno of the first failure, 0 */
	struct buf spare;
	void (*ready)(void *);
	void *ready_arg;
};

struct spool_body_job {
	struct spool_body_job *next;
	struct spool_body *body;
	enum job_kind kind;
	struct buf data;
	struct spool_item *item; /* JOB_FINISH */
};

/* One writer thread and what it has to do. */
struct body_writer {
	struct spool_bodies *w;
	pthread_t thread;
	pthread_cond_t cv;
	struct spool_body_job *todo, **todo_tail;
};

struct spool_bodies {
	struct spool *sp;
	int dirfd;
	struct body_writer writers[SPOOL_BODY_WRITERS];
	int nwriters;
	unsigned next_writer; /* the loop's round-robin */
	int running;
	pthread_t syncers[SPOOL_BODY_SYNCERS];
	int nsyncers;
	pthread_mutex_t mu; /* every list below and in the writers */
	pthread_cond_t scv; /* the syncers: syncs */
	struct spool_body_job *syncs, **syncs_tail;
	struct spool_body_job *done, **done_tail;
	int stop, stop_sync;
};

const char *
spool_body_name(const struct spool_body *b)
{
	return b->name;
}

/* --- the writer thread ----------------------------------------------- */

static int
body_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w;

		if (spool_fault_file("write")) {
			errno = EIO;
			return -1;
		}
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
body_sync(int fd)
{
	if (spool_fault_file("fsync")) {
		errno = EIO;
		return -1;
	}
	return fdatasync(fd);
}

/* Write a piece; the first one creates the file.  errno on failure. */
static int
body_append(struct spool_bodies *w, struct spool_body *b, const struct buf *d)
{
	if (d->len == 0)
		return 0;
	if (b->fd < 0) {
		b->fd = openat(w->dirfd, b->name,
		    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (b->fd < 0)
			return -1;
		b->created = 1;
	}
	if (body_write_all(b->fd, d->data, d->len) < 0)
		return -1;
	b->written += d->len;
	if (b->written - b->started >= SPOOL_BODY_WRITEBACK) {
		/* Only a hint: the final fdatasync is what counts. */
		(void)sync_file_range(b->fd, (off_t)b->started,
		    (off_t)(b->written - b->started), SYNC_FILE_RANGE_WRITE);
		b->started = b->written;
	}
	return 0;
}

static void
body_close(struct spool_body *b)
{
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
}

static void
body_run(struct spool_bodies *w, struct spool_body_job *j)
{
	struct spool_body *b = j->body;

	switch (j->kind) {
	case JOB_WRITE:
		if (b->error == 0 && body_append(w, b, &j->data) < 0)
			b->error = errno;
		break;
	case JOB_FINISH:
		/* the last piece here; the sync on a syncer thread */
		if (b->error == 0 && body_append(w, b, &j->data) < 0)
			b->error = errno;
		if (b->error == 0 && b->fd < 0)
			b->error = EINVAL; /* a body with no bytes: a bug */
		break;
	case JOB_ABORT:
		body_close(b);
		if (b->created && unlinkat(w->dirfd, b->name, 0) < 0)
			log_warn("queue: removing body %s: %s", b->name,
			    strerror(errno));
		break;
	}
}

/* A finished body: synced with its directory entry, then committed. */
static void
body_sync_one(struct spool_bodies *w, struct spool_body_job *j)
{
	struct spool_body *b = j->body;

	/* the directory: once per commit batch (spool_commit_batch) */
	if (b->error == 0 && body_sync(b->fd) < 0)
		b->error = errno;
	body_close(b);
	if (b->error != 0) {
		log_err("queue: body of %s: %s; the message is refused",
		    b->name, strerror(b->error));
		if (b->created && unlinkat(w->dirfd, b->name, 0) < 0)
			log_warn("queue: removing body %s: %s", b->name,
			    strerror(errno));
		spool_fail_now(w->sp, j->item);
	} else {
		spool_crash_point("after-body-sync");
		spool_commit_later(w->sp, j->item, b->written);
	}
	j->item = NULL;
}

/* A job is through: back to the loop (buffers, waiting sessions). */
static void
body_done(struct spool_bodies *w, struct spool_body_job *j)
{
	pthread_mutex_lock(&w->mu);
	j->next = NULL;
	*w->done_tail = j;
	w->done_tail = &j->next;
	pthread_mutex_unlock(&w->mu);
	spool_wake(w->sp);
}

static void *
body_syncer(void *arg)
{
	struct spool_bodies *w = arg;

	for (;;) {
		struct spool_body_job *j;

		pthread_mutex_lock(&w->mu);
		while (w->syncs == NULL && !w->stop_sync)
			pthread_cond_wait(&w->scv, &w->mu);
		if ((j = w->syncs) == NULL) {
			pthread_mutex_unlock(&w->mu);
			break;
		}
		if ((w->syncs = j->next) == NULL)
			w->syncs_tail = &w->syncs;
		pthread_mutex_unlock(&w->mu);
		body_sync_one(w, j);
		body_done(w, j);
	}
	return NULL;
}

static void *
body_writer(void *arg)
{
	struct body_writer *bw = arg;
	struct spool_bodies *w = bw->w;

	for (;;) {
		struct spool_body_job *j;

		pthread_mutex_lock(&w->mu);
		while (bw->todo == NULL && !w->stop)
			pthread_cond_wait(&bw->cv, &w->mu);
		if ((j = bw->todo) == NULL) {
			pthread_mutex_unlock(&w->mu);
			break;
		}
		if ((bw->todo = j->next) == NULL)
			bw->todo_tail = &bw->todo;
		pthread_mutex_unlock(&w->mu);

		body_run(w, j);
		if (j->kind == JOB_FINISH && w->nsyncers > 0) {
			pthread_mutex_lock(&w->mu);
			j->next = NULL;
			*w->syncs_tail = j;
			w->syncs_tail = &j->next;
			pthread_cond_signal(&w->scv);
			pthread_mutex_unlock(&w->mu);
			continue;
		}
		if (j->kind == JOB_FINISH)
			body_sync_one(w, j); /* no syncer could start */
		body_done(w, j);
	}
	return NULL;
}

/* --- the event loop side --------------------------------------------- */

static void
body_unref(struct spool_body *b)
{
	if (--b->refs > 0)
		return;
	buf_free(&b->spare);
	free(b);
}

/* Jobs back from the writer: buffers return, waiting sessions go on. */
void
spool_bodies_returned(struct spool_bodies *w)
{
	struct spool_body_job *list, *next;

	pthread_mutex_lock(&w->mu);
	list = w->done;
	w->done = NULL;
	w->done_tail = &w->done;
	pthread_mutex_unlock(&w->mu);
	for (; list != NULL; list = next) {
		struct spool_body *b = list->body;

		next = list->next;
		if (list->kind == JOB_WRITE) {
			b->busy = 0;
			buf_free(&b->spare);
			b->spare = list->data;
			b->spare.len = 0;
		} else {
			buf_free(&list->data);
		}
		free(list);
		/* The job's reference keeps b across the callback.  None
		 * while stopping: the loop has exited, and a session left
		 * behind by the drain timeout stays as it is. */
		if (!b->busy && b->ready != NULL && !w->stop) {
			void (*fn)(void *) = b->ready;

			b->ready = NULL;
			fn(b->ready_arg);
		}
		body_unref(b);
	}
}

static void
body_enqueue(struct spool_bodies *w, struct spool_body_job *j)
{
	struct body_writer *bw = j->body->bw;

	pthread_mutex_lock(&w->mu);
	j->next = NULL;
	*bw->todo_tail = j;
	bw->todo_tail = &j->next;
	pthread_cond_signal(&bw->cv);
	pthread_mutex_unlock(&w->mu);
}

struct spool_body *
spool_body_new(struct spool *sp, const char *queue_id)
{
	struct spool_body *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->w = spool_bodies_of(sp);
	b->bw = &b->w->writers[b->w->next_writer++ % (unsigned)b->w->nwriters];
	snprintf(b->name, sizeof(b->name), "%s", queue_id);
	b->fd = -1;
	b->refs = 1; /* the owner's */
	return b;
}

int
spool_body_put(struct spool_body *b, struct buf *piece)
{
	struct spool_body_job *j;
	struct buf empty;

	if (b->error != 0)
		return -1;
	if (b->busy)
		return 1;
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		b->error = ENOMEM;
		return -1;
	}
	j->body = b;
	j->kind = JOB_WRITE;
	j->data = *piece;
	/* The piece's storage goes to the writer; the caller stages the next
	 * bytes in the buffer last written (allocated on first use). */
	empty = b->spare;
	empty.len = 0;
	empty.max = piece->max;
	memset(&b->spare, 0, sizeof(b->spare));
	*piece = empty;
	b->busy = 1;
	b->refs++;
	body_enqueue(b->w, j);
	return 0;
}

void
spool_body_when_ready(struct spool_body *b, void (*fn)(void *), void *arg)
{
	b->ready = fn;
	b->ready_arg = arg;
}

void
spool_body_abort(struct spool_body *b)
{
	struct spool_body_job *j;

	if (b == NULL)
		return;
	b->ready = NULL;
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		/*
		 * Cannot even ask for the file to be removed: it stays until
		 * the next start removes it (no row names it).
		 */
		log_warn("queue: out of memory; body %s is left for the next "
		         "start to remove",
		    b->name);
		body_unref(b);
		return;
	}
	/* The owner's reference goes to the job. */
	j->body = b;
	j->kind = JOB_ABORT;
	body_enqueue(b->w, j);
}

void
spool_body_finish(struct spool_body *b, struct buf *tail, struct spool_item *it)
{
	struct spool_body_job *j = calloc(1, sizeof(*j));

	if (j == NULL) {
		spool_fail_now(b->w->sp, it);
		spool_body_abort(b);
		return;
	}
	b->ready = NULL;
	/* The owner's reference goes to the job. */
	j->body = b;
	j->kind = JOB_FINISH;
	j->item = it;
	if (tail != NULL) {
		j->data = *tail;
		memset(tail, 0, sizeof(*tail));
		tail->max = j->data.max;
	}
	body_enqueue(b->w, j);
}

/* --- start, stop, sweep ---------------------------------------------- */

/* The syncers finish what is queued, then end. */
static void
body_stop_syncers(struct spool_bodies *w)
{
	pthread_mutex_lock(&w->mu);
	w->stop_sync = 1;
	pthread_cond_broadcast(&w->scv);
	pthread_mutex_unlock(&w->mu);
	for (int i = 0; i < w->nsyncers; i++)
		pthread_join(w->syncers[i], NULL);
	w->nsyncers = 0;
}

struct spool_bodies *
spool_bodies_start(struct spool *sp, const char *dir, const char **why)
{
	struct spool_bodies *w = calloc(1, sizeof(*w));
	int qfd = -1;

	if (w == NULL) {
		*why = "out of memory";
		return NULL;
	}
	w->sp = sp;
	w->dirfd = -1;
	w->syncs_tail = &w->syncs;
	w->done_tail = &w->done;
	if ((qfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    (mkdirat(qfd, SPOOL_BODY_DIR, 0700) < 0 && errno != EEXIST) ||
	    (w->dirfd = openat(qfd, SPOOL_BODY_DIR,
	         O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0 ||
	    fchmod(w->dirfd, 0700) < 0 || fsync(qfd) < 0) {
		*why = strerror(errno);
		log_err("queue: %s/%s: %s", dir, SPOOL_BODY_DIR, *why);
		goto fail;
	}
	close(qfd);
	qfd = -1;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->scv, NULL);
	while (
	    w->nsyncers < SPOOL_BODY_SYNCERS &&
	    pthread_create(&w->syncers[w->nsyncers], NULL, body_syncer, w) == 0)
		w->nsyncers++;
	while (w->nwriters < SPOOL_BODY_WRITERS) {
		struct body_writer *bw = &w->writers[w->nwriters];

		bw->w = w;
		bw->todo_tail = &bw->todo;
		pthread_cond_init(&bw->cv, NULL);
		if (pthread_create(&bw->thread, NULL, body_writer, bw) != 0) {
			pthread_cond_destroy(&bw->cv);
			break;
		}
		w->nwriters++;
	}
	if (w->nwriters == 0) {
		*why = "cannot start the body writer thread";
		body_stop_syncers(w);
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->scv);
		goto fail;
	}
	w->running = 1;
	return w;
fail:
	if (qfd >= 0)
		close(qfd);
	if (w->dirfd >= 0)
		close(w->dirfd);
	free(w);
	return NULL;
}

void
spool_bodies_stop(struct spool_bodies *w)
{
	if (w == NULL || !w->running)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	for (int i = 0; i < w->nwriters; i++)
		pthread_cond_signal(&w->writers[i].cv);
	pthread_mutex_unlock(&w->mu);
	for (int i = 0; i < w->nwriters; i++)
		pthread_join(w->writers[i].thread, NULL);
	body_stop_syncers(w); /* after the writers: they feed them */
	w->running = 0;
	spool_bodies_returned(w);
}

void
spool_bodies_free(struct spool_bodies *w)
{
	if (w == NULL)
		return;
	spool_bodies_stop(w);
	close(w->dirfd);
	for (int i = 0; i < w->nwriters; i++)
		pthread_cond_destroy(&w->writers[i].cv);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->scv);
	free(w);
}

int
spool_bodies_sweep(
    struct spool_bodies *w, int (*named)(void *, const char *), void *arg)
{
	int fd = dup(w->dirfd), removed = 0;
	struct dirent *de;
	DIR *d;

	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		log_err("queue: cannot list %s: %s", SPOOL_BODY_DIR,
		    strerror(errno));
		return -1;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || named(arg, de->d_name))
			continue;
		if (unlinkat(w->dirfd, de->d_name, 0) < 0) {
			log_warn("queue: removing %s/%s: %s", SPOOL_BODY_DIR,
			    de->d_name, strerror(errno));
			continue;
		}
		removed++;
	}
	closedir(d);
	if (removed > 0) {
		log_info("queue: removed %d body file%s of messages that were "
		         "not acknowledged or already purged",
		    removed, removed == 1 ? "" : "s");
		if (fsync(w->dirfd) < 0)
			log_warn("queue: syncing %s: %s", SPOOL_BODY_DIR,
			    strerror(errno));
	}
	return removed;
}

int
spool_bodies_dirfd(const struct spool_bodies *w)
{
	return w->dirfd;
}

int
spool_bodies_sync_dir(struct spool_bodies *w)
{
	if (spool_fault_file("fsync")) {
		errno = EIO;
		return -1;
	}
	return fsync(w->dirfd);
}

void
spool_bodies_unlink(struct spool_bodies *w, const char *name)
{
	if (unlinkat(w->dirfd, name, 0) < 0 && errno != ENOENT)
		log_warn("queue: removing body %s: %s", name, strerror(errno));
}
