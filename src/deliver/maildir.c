/*
 * maildir.c - local delivery (see maildir.h).
 *
 * Maildir (D. J. Bernstein's layout, as Dovecot and Courier read it):
 * the message is written to DIR/tmp/UNIQUE, fsync'd, renamed to
 * DIR/new/UNIQUE, and DIR/new is fsync'd; only then is the recipient
 * marked delivered in the queue.  A crash in between delivers twice at
 * worst, never loses (SPEC 4: at least once).  A "Return-Path:" header
 * with the envelope sender is prepended, as for any final delivery
 * (RFC 5321 4.4).  Lines end in LF, the local convention Maildir readers
 * (Dovecot, Courier, mutt) expect: the stored CRLF is SMTP's wire form,
 * and every CRLF becomes LF on the way into the file.
 *
 * One worker thread with its own read-only SQLite connection fetches the
 * message, writes it and records the outcome through the spool; the
 * event loop never waits for the disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "deliver/maildir.h"
#include "spool/spool.h"
#include "util/fd.h"
#include "util/log.h"
#include "util/mkdirs.h"

/* Jobs waiting for the worker; the queue manager retries when full. */
#define MAILDIR_QUEUE_MAX 256
/* The converted message is written in pieces of this size. */
#define MAILDIR_CHUNK 65536

struct maildir_item {
	struct maildir_item *next;
	struct maildir_job job;
	int delivered;
	char error[256];
	struct maildir *md;
};

struct maildir {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct maildir_item *head, **tail;
	size_t queued;
	int stop;
	sqlite3 *db;
	sqlite3_stmt *sel_body;
	struct spool *spool;
	maildir_done_fn done;
	void *arg;
	unsigned long seq;
};

int
maildir_path(const char *pattern, const char *addr, char *out, size_t len)
{
	const char *at = strrchr(addr, '@');
	char local[256], domain[256];
	size_t o = 0, ll;

	if (at == NULL || (ll = (size_t)(at - addr)) == 0 ||
	    ll >= sizeof(local) || strlen(at + 1) >= sizeof(domain))
		return -1;
	memcpy(local, addr, ll);
	local[ll] = '\0';
	snprintf(domain, sizeof(domain), "%s", at + 1);
	for (char *p = domain; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if (local[0] == '.' || domain[0] == '.' || domain[0] == '[')
		return -1;
	for (const char *p = addr; *p != '\0'; p++)
		if (*p == '/' || (unsigned char)*p < 0x20 || *p == 0x7f)
			return -1;
	for (const char *p = pattern; *p != '\0'; p++) {
		const char *ins = NULL;
		char one[2] = {*p, '\0'};

		if (p[0] == '%' && p[1] == 'u')
			ins = local, p++;
		else if (p[0] == '%' && p[1] == 'd')
			ins = domain, p++;
		else
			ins = one;
		if (o + strlen(ins) >= len)
			return -1;
		memcpy(out + o, ins, strlen(ins));
		o += strlen(ins);
	}
	out[o] = '\0';
	return 0;
}

static int
maildir_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/*
 * Write the stored message with LF line ends: each CRLF becomes LF (the
 * spool holds no bare CR or LF; anything else is written as it is), in
 * MAILDIR_CHUNK pieces so the copy stays small.
 */
static int
maildir_write_lf(int fd, const char *p, size_t n)
{
	char out[MAILDIR_CHUNK];
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
			continue; /* the LF follows */
		out[o++] = p[i];
		if (o == sizeof(out)) {
			if (fd_write_all(fd, out, o) < 0)
				return -1;
			o = 0;
		}
	}
	return fd_write_all(fd, out, o);
}

/* Deliver one job; 0 on success, else error text in err. */
static int
maildir_deliver(
    struct maildir *md, const struct maildir_job *j, char *err, size_t errlen)
{
	char dir[1100], sub[1200], tmp[1400], new[1400], host[128], hdr[400];
	const void *body;
	int fd, n, rc = -1;
	size_t blen;

	if (maildir_path(j->pattern, j->addr, dir, sizeof(dir)) < 0) {
		snprintf(
		    err, errlen, "mailbox path not usable for %.160s", j->addr);
		return -1;
	}
	for (int i = 0; i < 3; i++) {
		snprintf(sub, sizeof(sub), "%s/%s", dir,
		    i == 0   ? "tmp"
		    : i == 1 ? "new"
		             : "cur");
		if (mkdirs(sub, 0700) < 0) {
			snprintf(
			    err, errlen, "%.160s: %.60s", sub, strerror(errno));
			return -1;
		}
	}
	sqlite3_reset(md->sel_body);
	sqlite3_bind_int64(md->sel_body, 1, j->message_id);
	if (sqlite3_step(md->sel_body) != SQLITE_ROW) {
		snprintf(err, errlen, "message %.160s is not in the queue",
		    j->queue_id);
		return -1;
	}
	body = sqlite3_column_blob(md->sel_body, 0);
	blen = (size_t)sqlite3_column_bytes(md->sel_body, 0);
	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(tmp, sizeof(tmp), "%s/tmp/%lld.P%dQ%luS%s.%s", dir,
	    (long long)time(NULL), (int)getpid(), md->seq, j->queue_id, host);
	snprintf(new, sizeof(new), "%s/new/%s", dir, strrchr(tmp, '/') + 1);
	md->seq++;
	n = snprintf(hdr, sizeof(hdr), "Return-Path: <%s>\n", j->sender);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) <
	    0) {
		snprintf(err, errlen, "%.160s: %.60s", tmp, strerror(errno));
		goto out;
	}
	if (fd_write_all(fd, hdr, (size_t)n) < 0 ||
	    maildir_write_lf(fd, body, blen) < 0 || fsync(fd) < 0) {
		snprintf(
		    err, errlen, "writing %.160s: %.60s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	snprintf(sub, sizeof(sub), "%s/new", dir);
	if (rename(tmp, new) < 0 || maildir_fsync_dir(sub) < 0) {
		snprintf(err, errlen, "delivering into %.160s: %.60s", sub,
		    strerror(errno));
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	sqlite3_reset(md->sel_body);
	return rc;
}

/* On the event loop, once the spool made the outcome durable. */
static void
maildir_recorded(void *arg, int ok, const char *queue_id)
{
	struct maildir_item *it = arg;

	(void)queue_id;
	if (!ok)
		log_err("queue: could not record the delivery of %s to %s; it "
		        "will be delivered again",
		    it->job.queue_id, it->job.addr);
	it->md->done(it->md->arg, &it->job, it->delivered && ok, ok, it->error);
	free(it);
}

static int
maildir_stopping(struct maildir *md)
{
	int stop;

	pthread_mutex_lock(&md->mu);
	stop = md->stop;
	pthread_mutex_unlock(&md->mu);
	return stop;
}

/*
 * Hand the outcome to the spool.  It refuses only when it cannot allocate
 * the record; dropping the outcome then would leave the recipient in flight
 * (the queue manager waits for maildir_recorded) until a restart, so the
 * worker waits and tries again.  At shutdown it gives up: the recipient is
 * still pending in the queue and is delivered again after the restart.
 */
static void
maildir_record(
    struct maildir *md, struct maildir_item *it, const struct spool_result *r)
{
	const struct timespec pause = {0, 200 * 1000 * 1000};
	int logged = 0;

	while (spool_record(md->spool, r, maildir_recorded, it) < 0) {
		if (!logged++)
			log_err("queue: cannot record the delivery of %s to %s "
			        "yet; trying again",
			    it->job.queue_id, it->job.addr);
		if (maildir_stopping(md)) {
			free(it);
			return;
		}
		nanosleep(&pause, NULL);
	}
}

static void *
maildir_worker(void *arg)
{
	struct maildir *md = arg;

	for (;;) {
		struct maildir_item *it;
		struct spool_result r;

		pthread_mutex_lock(&md->mu);
		while (md->head == NULL && !md->stop)
			pthread_cond_wait(&md->cv, &md->mu);
		if ((it = md->head) == NULL) {
			pthread_mutex_unlock(&md->mu);
			break;
		}
		if ((md->head = it->next) == NULL)
			md->tail = &md->head;
		md->queued--;
		pthread_mutex_unlock(&md->mu);

		it->error[0] = '\0';
		it->delivered = maildir_deliver(md, &it->job, it->error,
		                    sizeof(it->error)) == 0;
		memset(&r, 0, sizeof(r));
		r.rcpt_id = it->job.rcpt_id;
		r.message_id = it->job.message_id;
		r.queue_id = it->job.queue_id;
		r.status =
		    it->delivered ? SPOOL_RCPT_DELIVERED : SPOOL_RCPT_PENDING;
		r.next_attempt = time(NULL) + it->job.retry_interval;
		r.error = it->error;
		r.next_hop = "Maildir";
		maildir_record(md, it, &r);
	}
	return NULL;
}

struct maildir *
maildir_start(
    const char *queue_db, struct spool *spool, maildir_done_fn done, void *arg)
{
	struct maildir *md = calloc(1, sizeof(*md));

	if (md == NULL)
		return NULL;
	md->tail = &md->head;
	md->spool = spool;
	md->done = done;
	md->arg = arg;
	if (sqlite3_open_v2(queue_db, &md->db, SQLITE_OPEN_READONLY, NULL) !=
	        SQLITE_OK ||
	    sqlite3_prepare_v2(md->db, "SELECT body FROM messages WHERE id = ?",
	        -1, &md->sel_body, NULL) != SQLITE_OK) {
		sqlite3_close(md->db);
		free(md);
		return NULL;
	}
	pthread_mutex_init(&md->mu, NULL);
	pthread_cond_init(&md->cv, NULL);
	if (pthread_create(&md->thread, NULL, maildir_worker, md) != 0) {
		sqlite3_finalize(md->sel_body);
		sqlite3_close(md->db);
		free(md);
		return NULL;
	}
	return md;
}

void
maildir_stop(struct maildir *md)
{
	if (md == NULL)
		return;
	pthread_mutex_lock(&md->mu);
	md->stop = 1;
	pthread_cond_signal(&md->cv);
	pthread_mutex_unlock(&md->mu);
	pthread_join(md->thread, NULL);
	/* Jobs never started stay pending in the queue: nothing is lost. */
	while (md->head != NULL) {
		struct maildir_item *it = md->head;

		md->head = it->next;
		free(it);
	}
}

void
maildir_free(struct maildir *md)
{
	if (md == NULL)
		return;
	sqlite3_finalize(md->sel_body);
	sqlite3_close(md->db);
	pthread_mutex_destroy(&md->mu);
	pthread_cond_destroy(&md->cv);
	free(md);
}

int
maildir_submit(struct maildir *md, const struct maildir_job *job)
{
	struct maildir_item *it;

	pthread_mutex_lock(&md->mu);
	if (md->queued >= MAILDIR_QUEUE_MAX || md->stop) {
		pthread_mutex_unlock(&md->mu);
		return -1;
	}
	pthread_mutex_unlock(&md->mu);
	if ((it = calloc(1, sizeof(*it))) == NULL)
		return -1;
	it->job = *job;
	it->md = md;
	pthread_mutex_lock(&md->mu);
	*md->tail = it;
	md->tail = &it->next;
	md->queued++;
	pthread_cond_signal(&md->cv);
	pthread_mutex_unlock(&md->mu);
	return 0;
}
