/*
 * spool-layout.c - how should a queue store message content that arrives
 * in pieces?  A measuring harness for the choice made in docs/design.md
 * ("Message content on disk"); not part of sluiced.
 *
 * It plays what the daemon does with SESSIONS concurrent messages of SIZE
 * bytes each: pieces of PIECE bytes arrive round-robin (as from sessions
 * on one event loop), are stored as they come, and at the end every
 * message is made durable together (one group commit).  Then every
 * message is read back in PIECE-sized pieces, as a delivery would.  Each
 * layout runs in a fresh directory:
 *
 *   inline  today's layout: the whole message in memory, one BLOB column
 *           written at the end (the baseline, memory = size x sessions);
 *   chunks  CHUNK-byte rows written as they fill, each in its own
 *           transaction without sync (synchronous=NORMAL), the message
 *           row in a final synchronous=FULL commit that syncs the WAL;
 *   blob    SQLite incremental BLOB I/O: a zeroblob(SIZE) row and
 *           sqlite3_blob_write() per piece.  The size must be known in
 *           advance (DATA does not say it) and an open write handle holds
 *           the database's write lock, so all messages share one
 *           transaction from first to last byte;
 *   file    one file per message, write(2) per piece, then fsync of each
 *           file and of the directory, then the index rows in one commit;
 *   filewb  the same, asking the kernel to start writeback of every MB as
 *           it is written (sync_file_range SYNC_FILE_RANGE_WRITE), so the
 *           final fsync finds less to do.
 *
 * Reported per layout: seconds to store (last piece to durable included),
 * seconds to read back, bytes the process caused to be written to storage
 * (/proc/self/io write_bytes: the WAL and its checkpoint, or the files),
 * and the peak of resident memory during the store (VmHWM, reset first).
 *
 *   cc -std=c11 -D_GNU_SOURCE -O2 -o spool-layout bench/spool-layout.c \
 *       -lsqlite3
 *   spool-layout DIR SESSIONS SIZE [layout...]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#define PIECE (64 * 1024)
#define CHUNK (256 * 1024)
#define WB_STEP (1024 * 1024)

static int sessions;
static size_t size;
static char piece[PIECE];

static void
die(const char *what, const char *why)
{
	fprintf(stderr, "spool-layout: %s: %s\n", what, why);
	exit(1);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long long
proc_value(const char *file, const char *key)
{
	char line[256];
	long long v = -1;
	FILE *f = fopen(file, "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, strlen(key)) == 0)
			v = strtoll(line + strlen(key), NULL, 10);
	fclose(f);
	return v;
}

static void
reset_hwm(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY);

	if (fd >= 0) {
		if (write(fd, "5", 1) < 0)
			perror("clear_refs");
		close(fd);
	}
}

static void
exec_sql(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		die(sql, err != NULL ? err : "?");
}

static sqlite3 *
open_db(const char *dir)
{
	char path[1100];
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/queue.db", dir);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die(path, sqlite3_errmsg(db));
	exec_sql(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
	             "CREATE TABLE messages (id INTEGER PRIMARY KEY,"
	             " size INTEGER, body BLOB, path TEXT);"
	             "CREATE TABLE chunks (message_id INTEGER, seq INTEGER,"
	             " data BLOB, PRIMARY KEY (message_id, seq));");
	return db;
}

/* The next piece of message m at offset off: how many bytes. */
static size_t
piece_len(size_t off)
{
	return size - off < PIECE ? size - off : PIECE;
}

struct msg {
	size_t off;
	char *mem;   /* inline */
	char *chunk; /* chunks: the chunk being filled */
	size_t nchunk, seq;
	sqlite3_blob *blob;
	int fd;
	size_t wb; /* filewb: bytes whose writeback was started */
};

static void
put_chunk(sqlite3 *db, sqlite3_stmt *ins, int id, struct msg *m)
{
	exec_sql(db, "BEGIN");
	sqlite3_reset(ins);
	sqlite3_bind_int(ins, 1, id);
	sqlite3_bind_int64(ins, 2, (sqlite3_int64)m->seq++);
	sqlite3_bind_blob(ins, 3, m->chunk, (int)m->nchunk, SQLITE_STATIC);
	if (sqlite3_step(ins) != SQLITE_DONE)
		die("chunk", sqlite3_errmsg(db));
	exec_sql(db, "COMMIT");
	m->nchunk = 0;
}

static void
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("write", strerror(errno));
		p += w;
		n -= (size_t)w;
	}
}

static void
store(const char *dir, const char *layout, sqlite3 *db)
{
	struct msg *ms = calloc((size_t)sessions, sizeof(*ms));
	sqlite3_stmt *ins = NULL, *row = NULL;
	char path[4200];
	size_t left = (size_t)sessions;
	int is_file = strncmp(layout, "file", 4) == 0;

	if (ms == NULL)
		die("calloc", "no memory");
	sqlite3_prepare_v2(db,
	    "INSERT INTO chunks (message_id, seq, data) VALUES (?,?,?)", -1,
	    &ins, NULL);
	sqlite3_prepare_v2(db,
	    "INSERT INTO messages (id, size, body, path) VALUES (?,?,?,?)", -1,
	    &row, NULL);
	if (strcmp(layout, "chunks") == 0)
		exec_sql(db, "PRAGMA synchronous=NORMAL");
	if (strcmp(layout, "blob") == 0) {
		exec_sql(db, "BEGIN");
		for (int i = 0; i < sessions; i++) {
			sqlite3_reset(row);
			sqlite3_bind_int(row, 1, i + 1);
			sqlite3_bind_int64(row, 2, (sqlite3_int64)size);
			sqlite3_bind_zeroblob64(row, 3, size);
			sqlite3_bind_null(row, 4);
			if (sqlite3_step(row) != SQLITE_DONE ||
			    sqlite3_blob_open(db, "main", "messages", "body",
			        i + 1, 1, &ms[i].blob) != SQLITE_OK)
				die("blob", sqlite3_errmsg(db));
		}
	}
	for (int i = 0; i < sessions; i++) {
		if (strcmp(layout, "inline") == 0 &&
		    (ms[i].mem = malloc(size)) == NULL)
			die("malloc", "no memory");
		if (strcmp(layout, "chunks") == 0 &&
		    (ms[i].chunk = malloc(CHUNK)) == NULL)
			die("malloc", "no memory");
		if (is_file) {
			snprintf(path, sizeof(path), "%s/m%d", dir, i);
			ms[i].fd = open(path,
			    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			if (ms[i].fd < 0)
				die(path, strerror(errno));
		}
	}
	/* The pieces arrive round-robin, as from sessions on one loop. */
	while (left > 0) {
		left = 0;
		for (int i = 0; i < sessions; i++) {
			struct msg *m = &ms[i];
			size_t n;

			if (m->off >= size)
				continue;
			n = piece_len(m->off);
			if (m->mem != NULL) {
				memcpy(m->mem + m->off, piece, n);
			} else if (m->chunk != NULL) {
				size_t take = n;

				if (take > CHUNK - m->nchunk)
					take = CHUNK - m->nchunk;
				memcpy(m->chunk + m->nchunk, piece, take);
				m->nchunk += take;
				if (m->nchunk == CHUNK)
					put_chunk(db, ins, i + 1, m);
				if (take < n) {
					memcpy(
					    m->chunk, piece + take, n - take);
					m->nchunk = n - take;
				}
			} else if (m->blob != NULL) {
				if (sqlite3_blob_write(m->blob, piece, (int)n,
				        (int)m->off) != SQLITE_OK)
					die("blob_write", sqlite3_errmsg(db));
			} else {
				write_all(m->fd, piece, n);
				if (strcmp(layout, "filewb") == 0 &&
				    m->off + n - m->wb >= WB_STEP) {
					sync_file_range(m->fd, (off_t)m->wb,
					    (off_t)(m->off + n - m->wb),
					    SYNC_FILE_RANGE_WRITE);
					m->wb = m->off + n;
				}
			}
			m->off += n;
			if (m->off < size)
				left++;
		}
	}
	/* The end of every message: make it durable, one group commit. */
	if (strcmp(layout, "chunks") == 0) {
		for (int i = 0; i < sessions; i++)
			if (ms[i].nchunk > 0)
				put_chunk(db, ins, i + 1, &ms[i]);
		exec_sql(db, "PRAGMA synchronous=FULL");
	}
	if (is_file) {
		int dfd = open(dir, O_RDONLY | O_DIRECTORY);

		for (int i = 0; i < sessions; i++) {
			if (fsync(ms[i].fd) < 0)
				die("fsync", strerror(errno));
			close(ms[i].fd);
		}
		if (dfd < 0 || fsync(dfd) < 0)
			die("fsync dir", strerror(errno));
		close(dfd);
	}
	if (strcmp(layout, "blob") == 0) {
		for (int i = 0; i < sessions; i++)
			sqlite3_blob_close(ms[i].blob);
	} else {
		exec_sql(db, "BEGIN");
		for (int i = 0; i < sessions; i++) {
			sqlite3_reset(row);
			sqlite3_bind_int(row, 1, i + 1);
			sqlite3_bind_int64(row, 2, (sqlite3_int64)size);
			if (ms[i].mem != NULL)
				sqlite3_bind_blob64(
				    row, 3, ms[i].mem, size, SQLITE_STATIC);
			else
				sqlite3_bind_null(row, 3);
			snprintf(path, sizeof(path), "m%d", i);
			sqlite3_bind_text(row, 4, path, -1, SQLITE_TRANSIENT);
			if (sqlite3_step(row) != SQLITE_DONE)
				die("row", sqlite3_errmsg(db));
		}
	}
	exec_sql(db, "COMMIT");
	for (int i = 0; i < sessions; i++) {
		free(ms[i].mem);
		free(ms[i].chunk);
	}
	sqlite3_finalize(ins);
	sqlite3_finalize(row);
	free(ms);
}

/* Read every message back in pieces; returns a checksum of the bytes. */
static unsigned long
read_back(const char *dir, const char *layout, sqlite3 *db)
{
	static char buf[PIECE];
	unsigned long sum = 0;
	sqlite3_stmt *q = NULL;

	if (strcmp(layout, "inline") == 0)
		sqlite3_prepare_v2(
		    db, "SELECT body FROM messages WHERE id = ?", -1, &q, NULL);
	else if (strcmp(layout, "chunks") == 0)
		sqlite3_prepare_v2(db,
		    "SELECT data FROM chunks WHERE message_id = ?"
		    " ORDER BY seq",
		    -1, &q, NULL);
	for (int i = 0; i < sessions; i++) {
		if (q != NULL) {
			sqlite3_reset(q);
			sqlite3_bind_int(q, 1, i + 1);
			while (sqlite3_step(q) == SQLITE_ROW) {
				const char *p = sqlite3_column_blob(q, 0);
				size_t n = (size_t)sqlite3_column_bytes(q, 0);

				for (size_t o = 0; o < n; o += PIECE) {
					size_t k =
					    n - o < PIECE ? n - o : PIECE;

					memcpy(buf, p + o, k);
					sum += (unsigned char)buf[k - 1];
				}
			}
		} else if (strcmp(layout, "blob") == 0) {
			sqlite3_blob *b;

			if (sqlite3_blob_open(db, "main", "messages", "body",
			        i + 1, 0, &b) != SQLITE_OK)
				die("blob_open", sqlite3_errmsg(db));
			for (size_t o = 0; o < size; o += PIECE) {
				size_t k = piece_len(o);

				sqlite3_blob_read(b, buf, (int)k, (int)o);
				sum += (unsigned char)buf[k - 1];
			}
			sqlite3_blob_close(b);
		} else {
			char path[4200];
			ssize_t r;
			int fd;

			snprintf(path, sizeof(path), "%s/m%d", dir, i);
			if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
				die(path, strerror(errno));
			while ((r = read(fd, buf, sizeof(buf))) > 0)
				sum += (unsigned char)buf[r - 1];
			close(fd);
		}
	}
	sqlite3_finalize(q);
	return sum;
}

int
main(int argc, char **argv)
{
	static const char *const all[] = {
	    "inline", "chunks", "blob", "file", "filewb"};
	const char *const *layouts = all;
	int nlayouts = 5;

	if (argc < 4) {
		fprintf(stderr, "usage: spool-layout DIR SESSIONS SIZE "
		                "[layout...]\n");
		return 2;
	}
	sessions = (int)strtol(argv[2], NULL, 10);
	size = (size_t)strtoull(argv[3], NULL, 10);
	if (sessions < 1 || size < 1)
		die("arguments", "SESSIONS and SIZE must be positive");
	if (argc > 4) {
		layouts = (const char *const *)(argv + 4);
		nlayouts = argc - 4;
	}
	for (size_t i = 0; i < sizeof(piece); i++)
		piece[i] = (i % 78 == 76)   ? '\r'
		           : (i % 78 == 77) ? '\n'
		                            : 'a' + i % 26;
	printf("%-7s %9s %9s %10s %12s %10s\n", "layout", "store_s", "read_s",
	    "MB/s_in", "disk_MB", "peak_MB");
	for (int l = 0; l < nlayouts; l++) {
		char dir[1024], cmd[2200];
		long long w0, w1, hwm;
		double t0, t1, t2;
		sqlite3 *db;

		snprintf(dir, sizeof(dir), "%s/%s", argv[1], layouts[l]);
		snprintf(
		    cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", dir, dir);
		if (system(cmd) != 0)
			die(dir, "cannot prepare");
		db = open_db(dir);
		reset_hwm();
		w0 = proc_value("/proc/self/io", "write_bytes: ");
		t0 = now();
		store(dir, layouts[l], db);
		t1 = now();
		hwm = proc_value("/proc/self/status", "VmHWM:");
		(void)read_back(dir, layouts[l], db);
		t2 = now();
		exec_sql(db, "PRAGMA wal_checkpoint(TRUNCATE)");
		w1 = proc_value("/proc/self/io", "write_bytes: ");
		sqlite3_close(db);
		printf("%-7s %9.3f %9.3f %10.1f %12.1f %10.1f\n", layouts[l],
		    t1 - t0, t2 - t1,
		    (double)size * sessions / (t1 - t0) / 1048576.0,
		    (double)(w1 - w0) / 1048576.0, (double)hwm / 1024.0);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			die(dir, "cannot remove");
	}
	return 0;
}
