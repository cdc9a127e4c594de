/*
 * spool_reader.c - stored messages read back in bounded pieces (see
 * spool.h): what every delivery (SMTP client, Maildir agent) and every
 * notice (the DSN's returned original) reads.
 *
 * A view is one read-only SQLite connection with its statement and the
 * body directory, owned by one thread: the event loop has the spool's
 * (on the connection and directory descriptor the spool already holds:
 * every descriptor at start is one fewer for clients), the Maildir worker
 * makes its own.  Opening a reader runs one query (the
 * envelope and the content's first part, which is bounded: our headers,
 * the client's header section and at most SPOOL_INLINE_MAX of body) and
 * ends the read transaction at once, so a delivery that takes minutes
 * never holds a snapshot that would keep the WAL from being checkpointed.
 * The rest comes from the body file, SPOOL_READ_PIECE bytes at a time.
 *
 * A file cannot change under a reader: it is written once, synced before
 * its row commits, and only removed after the row is gone (an open
 * descriptor keeps it readable even then).  Its length is checked against
 * the row's, so a damaged file is an error, never a short message sent as
 * if whole.  Messages stored by version 2 have their whole content in
 * messages.body and no contents row; they are read from there.
 *
 * Medium content (spool_log.c) is a range of a log segment: the reader
 * preads it whole, at open, into the buffer a row's content takes (it is
 * under SPOOL_INLINE_MAX plus the header section: the same bound), and
 * checks its length and its checksum against the row's, so a truncated
 * or overwritten segment is an error, never a message sent damaged.  The
 * segment is opened by name and closed at once: a reader holds no
 * descriptor for it, and a view none at rest.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "spool/spool.h"
#include "spool/spool_int.h"
#include "util/log.h"

/* A reader gives back the page cache behind it every this many bytes. */
#define SPOOL_READ_DROP (1024 * 1024)

struct spool_view {
	sqlite3 *db;
	sqlite3_stmt *sel;
	int dirfd; /* DIR/body */
	int owned; /* db and dirfd are the view's own (else borrowed) */
	char path[4096];
	char dir[4096];
};

struct spool_reader {
	char *first; /* the content's first part */
	size_t first_len;
	int first_done;
	int fd;                           /* the body file, or -1 */
	unsigned long long left;          /* bytes the file still owes */
	unsigned long long read, dropped; /* offsets in the file */
	char *piece;                      /* SPOOL_READ_PIECE bytes */
	const char *error;
};

static struct spool_view *
view_new(const char *db, const char *dir, const char **why)
{
	struct spool_view *v = calloc(1, sizeof(*v));

	if (v == NULL) {
		*why = "out of memory";
		return NULL;
	}
	v->dirfd = -1;
	snprintf(v->path, sizeof(v->path), "%s", db);
	snprintf(v->dir, sizeof(v->dir), "%s", dir);
	return v;
}

/* The one statement of a view; -1 (logged, v freed) on failure. */
static int
view_prepare(struct spool_view *v, const char **why)
{
	if (sqlite3_prepare_v2(v->db,
	        "SELECT m.queue_id, m.sender, m.envid, m.ret, m.body_type,"
	        " m.smtputf8, m.received, m.helo, m.client, m.size,"
	        " m.body_file, c.data, m.body, m.requiretls, m.tls_optional,"
	        " m.log_seg, m.log_off, m.checksum"
	        " FROM messages m LEFT JOIN contents c ON c.message_id = m.id"
	        " WHERE m.id = ?",
	        -1, &v->sel, NULL) != SQLITE_OK) {
		log_err("queue: %s: %s", v->path, sqlite3_errmsg(v->db));
		*why = "cannot open the queue for reading";
		spool_view_free(v);
		return -1;
	}
	return 0;
}

struct spool_view *
spool_view_borrow(
    sqlite3 *conn, int dirfd, const char *db, const char *dir, const char **why)
{
	struct spool_view *v = view_new(db, dir, why);

	if (v == NULL)
		return NULL;
	v->db = conn;
	v->dirfd = dirfd;
	return view_prepare(v, why) < 0 ? NULL : v;
}

struct spool_view *
spool_view_open(const char *db, const char *dir, const char **why)
{
	struct spool_view *v = view_new(db, dir, why);
	char body[4200];

	if (v == NULL)
		return NULL;
	v->owned = 1;
	snprintf(body, sizeof(body), "%s/%s", dir, SPOOL_BODY_DIR);
	/* A view belongs to one thread: no mutex around every call. */
	if (sqlite3_open_v2(db, &v->db,
	        SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
	        NULL) != SQLITE_OK) {
		log_err("queue: %s: %s", db,
		    v->db != NULL ? sqlite3_errmsg(v->db) : "cannot open");
		*why = "cannot open the queue for reading";
		spool_view_free(v);
		return NULL;
	}
	if (view_prepare(v, why) < 0)
		return NULL;
	sqlite3_busy_timeout(v->db, 10000);
	/* The directory may not exist yet (made by the writer at open). */
	v->dirfd = open(body, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return v;
}

struct spool_view *
spool_view_new(struct spool *sp)
{
	struct spool_view *v = spool_loop_view(sp);
	const char *why;

	return spool_view_open(v->path, v->dir, &why);
}

struct sqlite3 *
spool_view_db(struct spool_view *v)
{
	return v->db;
}

void
spool_view_free(struct spool_view *v)
{
	if (v == NULL)
		return;
	sqlite3_finalize(v->sel);
	if (v->owned) {
		sqlite3_close(v->db);
		if (v->dirfd >= 0)
			close(v->dirfd);
	}
	free(v);
}

static void
reader_text(sqlite3_stmt *q, int col, char *out, size_t len)
{
	const unsigned char *t = sqlite3_column_text(q, col);

	snprintf(out, len, "%s", t != NULL ? (const char *)t : "");
}

/* The body file, checked against the length the row promises. */
static int
reader_open_file(struct spool_view *v, struct spool_reader *r, const char *name,
    unsigned long long want, const char **why)
{
	struct stat st;

	if (v->dirfd < 0) {
		char body[4200];

		snprintf(body, sizeof(body), "%s/%s", v->dir, SPOOL_BODY_DIR);
		v->dirfd = open(body, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (v->dirfd < 0 ||
	    (r->fd = openat(
	         v->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0 ||
	    fstat(r->fd, &st) < 0) {
		log_err("queue: body file %s: %s", name, strerror(errno));
		*why = "its body file cannot be read";
		return -1;
	}
	if ((unsigned long long)st.st_size != want) {
		log_err("queue: body file %s holds %lld bytes, %llu expected",
		    name, (long long)st.st_size, want);
		*why = "its body file is damaged";
		return -1;
	}
	(void)posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	r->left = want;
	return 0;
}

/*
 * The content in the log: size bytes at off in segment seg, into
 * r->first, checked against the row's checksum (hex).
 */
static int
reader_log(struct spool_view *v, struct spool_reader *r, uint64_t seg,
    uint64_t off, uint64_t size, const char *sum, const char **why)
{
	char name[32], path[4200], want[17];
	size_t have = 0;
	int fd;

	spool_log_segment_name(seg, name, sizeof(name));
	snprintf(path, sizeof(path), "%s/%s/%s", v->dir, SPOOL_LOG_DIR, name);
	*why = "its content in the log cannot be read";
	if (size > SPOOL_LOG_MAX) {
		log_err("queue: log segment %s: a range of %llu bytes "
		        "recorded, more than content in the log can be",
		    name, (unsigned long long)size);
		*why = "its content in the log is damaged";
		return -1;
	}
	if ((r->first = malloc(size ? size : 1)) == NULL) {
		*why = "out of memory";
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		log_err("queue: log segment %s: %s", name, strerror(errno));
		return -1;
	}
	while (have < size) {
		ssize_t got = pread(
		    fd, r->first + have, size - have, (off_t)(off + have));

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		have += (size_t)got;
	}
	/*
	 * What was read leaves the page cache, as a body file's does (see
	 * reader_drop): the segment keeps growing into new pages, and the
	 * pages a delivered message frees are the ones the next contents
	 * are written into.  Only whole pages inside the range go; a second
	 * reader (another next hop) reads from disk.
	 */
	(void)posix_fadvise(fd, (off_t)off, (off_t)size, POSIX_FADV_DONTNEED);
	close(fd);
	if (have < size) {
		log_err("queue: log segment %s: %llu bytes at %llu recorded, "
		        "%zu read: the segment is truncated or unreadable",
		    name, (unsigned long long)size, (unsigned long long)off,
		    have);
		*why = "its content in the log is damaged";
		return -1;
	}
	r->first_len = size;
	snprintf(want, sizeof(want), "%016llx",
	    (unsigned long long)spool_checksum(r->first, size));
	if (strcmp(want, sum) != 0) {
		log_err("queue: log segment %s: the %llu bytes at %llu do not "
		        "match the checksum recorded (%s, read %s)",
		    name, (unsigned long long)size, (unsigned long long)off,
		    sum, want);
		*why = "its content in the log is damaged";
		return -1;
	}
	return 0;
}

struct spool_reader *
spool_reader_open(struct spool_view *v, int64_t message_id,
    struct spool_stored *out, const char **why)
{
	struct spool_reader *r = calloc(1, sizeof(*r));
	sqlite3_stmt *q = v->sel;
	char file[64] = "", sum[17] = "";
	unsigned long long size = 0;
	uint64_t seg = 0, off = 0;
	int rc = -1;

	*why = "it is no longer in the queue";
	memset(out, 0, sizeof(*out));
	if (r == NULL) {
		*why = "out of memory";
		return NULL;
	}
	r->fd = -1;
	sqlite3_reset(q);
	sqlite3_bind_int64(q, 1, (sqlite3_int64)message_id);
	if (sqlite3_step(q) == SQLITE_ROW) {
		int col = sqlite3_column_type(q, 11) != SQLITE_NULL ? 11 : 12;
		const void *first = sqlite3_column_blob(q, col);
		size_t n = (size_t)sqlite3_column_bytes(q, col);

		reader_text(q, 0, out->queue_id, sizeof(out->queue_id));
		reader_text(q, 1, out->sender, sizeof(out->sender));
		reader_text(q, 2, out->envid, sizeof(out->envid));
		out->ret = sqlite3_column_int(q, 3);
		out->body_type = sqlite3_column_int(q, 4);
		out->smtputf8 = sqlite3_column_int(q, 5);
		out->received = (time_t)sqlite3_column_int64(q, 6);
		reader_text(q, 7, out->helo, sizeof(out->helo));
		reader_text(q, 8, out->client, sizeof(out->client));
		size = (unsigned long long)sqlite3_column_int64(q, 9);
		reader_text(q, 10, file, sizeof(file));
		out->requiretls = sqlite3_column_int(q, 13);
		out->tls_optional = sqlite3_column_int(q, 14);
		out->size = size;
		seg = (uint64_t)sqlite3_column_int64(q, 15);
		off = (uint64_t)sqlite3_column_int64(q, 16);
		reader_text(q, 17, sum, sizeof(sum));
		if (seg != 0) {
			rc = 0; /* read below, after the transaction */
		} else if ((r->first = malloc(n ? n : 1)) == NULL) {
			*why = "out of memory";
		} else {
			memcpy(r->first, first, n);
			r->first_len = n;
			rc = 0;
		}
	}
	sqlite3_reset(q); /* ends the read transaction */
	if (rc == 0 && seg != 0)
		rc = reader_log(v, r, seg, off, size, sum, why);
	else if (rc == 0 && (unsigned long long)r->first_len > size) {
		*why = "its content is damaged";
		rc = -1;
	} else if (rc == 0 && file[0] != '\0') {
		rc = reader_open_file(v, r, file, size - r->first_len, why);
	} else if (rc == 0 && r->first_len != size) {
		*why = "its content is damaged";
		rc = -1;
	}
	if (rc < 0) {
		spool_reader_close(r);
		return NULL;
	}
	return r;
}

/*
 * What a delivery has read of a body file leaves the page cache behind
 * it.  The file stays (the safety net keeps it for SafetyNetHoldTime),
 * but nobody is likely to read it again soon, and pages it frees are the
 * pages the next bodies are written into.  Without this the page cache
 * grew by every message relayed and each body was written into pages
 * the kernel had to find fresh; on the project's VM, whose free memory
 * goes back to the host, that made a write(2) into the page cache 5 to
 * 10 times slower than into pages freed a moment before (measured with
 * dd: 100 to 200 MB/s against 1.3 to 1.9 GB/s), and it was most of what
 * accepting a 10 MB message cost (docs/design.md).  Postfix gets the same
 * for free: it deletes a queue file once it is delivered.  Only a hint:
 * a second reader of the same file (another next hop) reads it from disk.
 */
static void
reader_drop(struct spool_reader *r)
{
	(void)posix_fadvise(r->fd, (off_t)r->dropped,
	    (off_t)(r->read - r->dropped), POSIX_FADV_DONTNEED);
	r->dropped = r->read;
}

int
spool_reader_next(struct spool_reader *r, const char **p, size_t *n)
{
	ssize_t got;

	if (r->error != NULL)
		return -1;
	if (!r->first_done) {
		r->first_done = 1;
		if (r->first_len > 0) {
			*p = r->first;
			*n = r->first_len;
			return 1;
		}
	}
	if (r->fd < 0)
		return 0;
	if (r->piece == NULL && (r->piece = malloc(SPOOL_READ_PIECE)) == NULL) {
		r->error = "out of memory";
		return -1;
	}
	do
		got = read(r->fd, r->piece, SPOOL_READ_PIECE);
	while (got < 0 && errno == EINTR);
	if (got < 0) {
		log_err("queue: reading a body file: %s", strerror(errno));
		r->error = "its body file cannot be read";
		return -1;
	}
	if ((unsigned long long)got > r->left || (got == 0 && r->left != 0)) {
		r->error = "its body file is damaged";
		return -1;
	}
	if (got == 0)
		return 0;
	r->left -= (unsigned long long)got;
	r->read += (unsigned long long)got;
	if (r->read - r->dropped >= SPOOL_READ_DROP)
		reader_drop(r);
	*p = r->piece;
	*n = (size_t)got;
	return 1;
}

const char *
spool_reader_error(const struct spool_reader *r)
{
	return r->error != NULL ? r->error : "";
}

void
spool_reader_close(struct spool_reader *r)
{
	if (r == NULL)
		return;
	if (r->fd >= 0) {
		if (r->read > r->dropped)
			reader_drop(r);
		close(r->fd);
	}
	free(r->first);
	free(r->piece);
	free(r);
}

int
spool_load_head(struct spool *sp, int64_t message_id, size_t max,
    struct spool_stored *out, char **data, size_t *len)
{
	struct spool_reader *r;
	const char *why, *p;
	size_t n, have = 0;
	char *d;
	int rc = 0;

	*data = NULL;
	*len = 0;
	if ((r = spool_reader_open(
	         spool_loop_view(sp), message_id, out, &why)) == NULL)
		return -1;
	if ((d = malloc(max ? max : 1)) == NULL) {
		spool_reader_close(r);
		return -1;
	}
	while (have < max && (rc = spool_reader_next(r, &p, &n)) > 0) {
		if (n > max - have)
			n = max - have;
		memcpy(d + have, p, n);
		have += n;
	}
	if (have < max && rc < 0) {
		spool_reader_close(r);
		free(d);
		return -1;
	}
	spool_reader_close(r);
	*data = d;
	*len = have;
	return 0;
}
