/*
 * sm_message.c - reading the message of sluice-sendmail (see
 * sm_message.h).
 *
 * The whole message is read before the daemon is asked anything: cron
 * pipes a job's output as the job runs, and no session should wait on a
 * program for hours.  It goes to an unlinked temporary file, so a large
 * message costs disk, not memory; only the header section is held, up to
 * SM_HEADER_MAX.
 *
 * Line ends: LF, CRLF and a lone CR all end a line (a lone CR would make
 * the daemon refuse the message as a bare CR, 550 5.6.11, and a program
 * writing one meant a line break).  The header section is the leading
 * run of "Name: value" lines and their continuations; the first line
 * that is neither ends it, and if that line was not empty an empty one is
 * put before it when headers are added (needs_separator).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "sendmail/sm_message.h"
#include "util/buf.h"

struct sm_reader {
	FILE *in;
	int dot_ends;
	int ended;    /* saw the "." line */
	int ahead[2]; /* characters peeked at */
	int nahead;
};

/* The next character of the stream with CRLF and a lone CR made LF. */
static int
sm_reader_raw(struct sm_reader *r)
{
	int c = getc(r->in);

	if (c == '\r') {
		int next = getc(r->in);

		if (next != '\n' && next != EOF)
			ungetc(next, r->in);
		c = '\n';
	}
	return c;
}

static int
sm_reader_getc(struct sm_reader *r)
{
	int c;

	if (r->nahead == 0)
		return sm_reader_raw(r);
	c = r->ahead[0];
	r->ahead[0] = r->ahead[1];
	r->nahead--;
	return c;
}

static int
sm_reader_peek(struct sm_reader *r, int i)
{
	while (r->nahead <= i)
		r->ahead[r->nahead++] = sm_reader_raw(r);
	return r->ahead[i];
}

/* At the start of a line: the lone "." that ends the input? */
static int
sm_reader_dot_line(struct sm_reader *r)
{
	if (!r->dot_ends || sm_reader_peek(r, 0) != '.' ||
	    (sm_reader_peek(r, 1) != '\n' && sm_reader_peek(r, 1) != EOF))
		return 0;
	sm_reader_getc(r);
	sm_reader_getc(r);
	r->ended = 1;
	return 1;
}

/* One header line without its end into line; 0 at the end, -1 NUL. */
static int
sm_reader_line(struct sm_reader *r, struct buf *line, int *eol)
{
	int c;

	buf_reset(line);
	*eol = 0;
	if (r->ended || sm_reader_dot_line(r))
		return 0;
	while ((c = sm_reader_getc(r)) != EOF) {
		if (c == '\0')
			return -1;
		if (c == '\n') {
			*eol = 1;
			return 1;
		}
		if (buf_append(line, (char *)&c, 1) != BUF_OK)
			return -2;
	}
	return line->len > 0 ? 1 : 0;
}

/* "Name:" with a printable name and no blank before the colon. */
static size_t
sm_message_field_name(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == ':')
			return i;
		if (s[i] <= ' ' || s[i] >= 127)
			return 0;
	}
	return 0;
}

static int
sm_message_is(const char *line, size_t namelen, const char *name)
{
	return strlen(name) == namelen && strncasecmp(line, name, namelen) == 0;
}

static void
sm_message_count(struct sm_message *m, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			m->eightbit = 1;
	m->size += (long long)n + 2;
	m->lines++;
}

static FILE *
sm_message_tmpfile(void)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/sluice-sendmail.XXXXXX",
	    dir != NULL && dir[0] != '\0' ? dir : "/tmp");
	if ((fd = mkstemp(path)) < 0)
		return NULL;
	unlink(path);
	if ((fp = fdopen(fd, "w+")) == NULL)
		close(fd);
	return fp;
}

/* The body, streamed: no line is held, however long. */
static int
sm_message_body(struct sm_reader *r, struct sm_message *m)
{
	long long col = 0;
	int c;

	if (r->ended)
		return 0;
	for (;;) {
		if (col == 0 && sm_reader_dot_line(r))
			break;
		if ((c = sm_reader_getc(r)) == EOF)
			break;
		if (c == '\0')
			return -1;
		putc(c, m->text);
		if (c == '\n') {
			m->size += col + 2;
			m->lines++;
			col = 0;
			continue;
		}
		if (c >= 0x80)
			m->eightbit = 1;
		col++;
	}
	if (col > 0) { /* a last line without its end gets one */
		putc('\n', m->text);
		m->size += col + 2;
		m->lines++;
	}
	return 0;
}

/*
 * A header line: remember the fields that matter, collect recipient
 * fields for -t; 1 when it belongs to the header section, 0 when it is
 * the first line of the body.  *skip: the line is not to be written (a
 * Bcc field and its continuations).
 */
static int
sm_message_header(struct sm_message *m, const char *s, size_t n,
    struct buf *normal, struct buf *resent, struct buf **collect, int *skip,
    int *seen, int *toolong)
{
	size_t name;

	if (n > 0 && (s[0] == ' ' || s[0] == '\t') && *seen) {
		if (*collect != NULL && buf_append(*collect, s, n) != BUF_OK)
			*toolong = 1;
		return 1;
	}
	if ((name = sm_message_field_name(s, n)) == 0)
		return 0;
	*seen = 1;
	*collect = NULL;
	if (sm_message_is(s, name, "To") || sm_message_is(s, name, "Cc") ||
	    sm_message_is(s, name, "Bcc"))
		*collect = normal;
	else if (sm_message_is(s, name, "Resent-To") ||
	         sm_message_is(s, name, "Resent-Cc") ||
	         sm_message_is(s, name, "Resent-Bcc"))
		*collect = resent;
	if (*collect != NULL &&
	    (buf_puts(*collect, ",") != BUF_OK ||
	        buf_append(*collect, s + name + 1, n - name - 1) != BUF_OK))
		*toolong = 1;
	m->has_from |= sm_message_is(s, name, "From");
	m->has_date |= sm_message_is(s, name, "Date");
	m->has_message_id |= sm_message_is(s, name, "Message-ID");
	/* Bcc fields never reach the daemon (RFC 5322 3.6.3) */
	*skip = sm_message_is(s, name, "Bcc") ||
	        sm_message_is(s, name, "Resent-Bcc");
	return 1;
}

int
sm_message_read(FILE *in, int dot_ends, struct sm_message *m, const char **why)
{
	struct sm_reader r;
	struct buf line, normal, resent;
	struct buf *collect = NULL;
	int rc, eol = 1, skip = 0, seen = 0, toolong = 0;

	memset(&r, 0, sizeof(r));
	r.in = in;
	r.dot_ends = dot_ends;
	memset(m, 0, sizeof(*m));
	if ((m->text = sm_message_tmpfile()) == NULL) {
		*why = "cannot create a temporary file";
		return -1;
	}
	buf_init(&line, SM_HEADER_MAX);
	buf_init(&normal, SM_HEADER_MAX);
	buf_init(&resent, SM_HEADER_MAX);
	while ((rc = sm_reader_line(&r, &line, &eol)) > 0) {
		const char *s = line.data != NULL ? line.data : "";

		if (!sm_message_header(m, s, line.len, &normal, &resent,
		        &collect, &skip, &seen, &toolong)) {
			/* the body starts with this line */
			m->needs_separator = line.len > 0;
			fwrite(s, 1, line.len, m->text);
			putc('\n', m->text);
			sm_message_count(m, s, line.len);
			if (eol)
				rc = sm_message_body(&r, m);
			break;
		}
		if (toolong) {
			*why = "the recipient fields are larger than 1 MB";
			goto fail;
		}
		if (!skip) {
			fwrite(s, 1, line.len, m->text);
			putc('\n', m->text);
			sm_message_count(m, s, line.len);
		}
		if (!eol)
			break;
	}
	if (rc < 0) {
		*why = rc == -1 ? "the message contains a NUL byte"
		                : "a header line is longer than 1 MB";
		goto fail;
	}
	if (fflush(m->text) != 0 || ferror(m->text) ||
	    fseek(m->text, 0, SEEK_SET) != 0) {
		*why = "cannot write the temporary file";
		goto fail;
	}
	/* RFC 5322 3.6.6: Resent- fields, when present, name the recipients */
	if (resent.len > 0)
		m->rcpt_fields = buf_steal(&resent, NULL);
	else if (normal.len > 0)
		m->rcpt_fields = buf_steal(&normal, NULL);
	buf_free(&line);
	buf_free(&normal);
	buf_free(&resent);
	return 0;
fail:
	buf_free(&line);
	buf_free(&normal);
	buf_free(&resent);
	sm_message_free(m);
	return -1;
}

void
sm_message_free(struct sm_message *m)
{
	if (m->text != NULL)
		fclose(m->text);
	m->text = NULL;
	free(m->rcpt_fields);
	m->rcpt_fields = NULL;
}
