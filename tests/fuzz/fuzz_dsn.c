/*
 * fuzz_dsn.c - libFuzzer harness for what a hostile sender or next hop
 * controls in a notice: the returned original (src/queue/dsn.c) and the
 * outbound content encoding (client_content_encode, in uneven chunks).  Every
 * DSN line must end in CRLF, stay within 998 octets and carry no NUL; the
 * encoding must leave no bare CR or LF (line length is the sender's: the server
 * bounds it on the way in).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/client_content.h"
#include "queue/dsn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_out {
	char *p;
	size_t len;
};

static int
fuzz_sink(void *arg, const char *p, size_t n)
{
	struct fuzz_out *o = arg;
	char *q = realloc(o->p, o->len + n);

	if (q == NULL)
		return -1;
	memcpy(q + o->len, p, n);
	o->p = q;
	o->len += n;
	return 0;
}

/*
 * CRLF-only lines of at most 998 octets; nul_ok for the encoder, which
 * passes content through (the spool never holds a NUL: the server refuses
 * it with 5.6.11).
 */
static void
check_lines(const char *p, size_t len, int nul_ok)
{
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\0' && !nul_ok)
			abort();
		if (p[i] == '\n') {
			if (i == 0 || p[i - 1] != '\r' ||
			    (!nul_ok && i - start + 1 > 1000))
				abort();
			start = i + 1;
		} else if (p[i] == '\r' && (i + 1 >= len || p[i + 1] != '\n')) {
			abort();
		}
	}
	if (start != len)
		abort(); /* the last line ends in CRLF too */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The first bytes choose the diagnostic; the rest is the original. */
	size_t split = size > 0 ? data[0] % (size < 256 ? size : 256) : 0;
	char diag[257];
	struct dsn_rcpt r;
	struct dsn_msg m;
	struct fuzz_out out = {NULL, 0};
	struct client_content cc;
	char *text;
	size_t len;

	memcpy(diag, data, split);
	diag[split] = '\0';
	memset(&r, 0, sizeof(r));
	r.addr = "bob@example.net";
	r.orcpt = "";
	r.action = size % 2 ? DSN_FAILED : DSN_DELAYED;
	r.status = "5.1.1";
	r.remote_mta = "mx.example.net";
	r.diagnostic = diag;
	memset(&m, 0, sizeof(m));
	m.reporting_mta = "mx.sluice.test";
	m.queue_id = "QID";
	m.envid = "";
	m.sender = "alice@example.org";
	m.ret = (int)(size % 3);
	m.original = (const char *)data + split;
	m.original_len = size - split;
	m.rcpts = &r;
	m.nrcpts = 1;
	m.now = 1700000000;
	m.message_id = "QID@mx.sluice.test";
	if ((text = dsn_compose(&m, &len)) != NULL) {
		check_lines(text, len, 0);
		free(text);
	}
	/* chunks of 1, 2, 3, ... bytes: every state crosses a boundary */
	client_content_init(&cc,
	    CLIENT_CONTENT_DOTSTUFF | CLIENT_CONTENT_STRIP_ORG, fuzz_sink,
	    &out);
	for (size_t i = 0, k = 1; i < size; i += k, k++)
		client_content_feed(
		    &cc, (const char *)data + i, size - i < k ? size - i : k);
	if (client_content_end(&cc) == 0)
		check_lines(out.p, out.len, 1);
	free(out.p);
	return 0;
}
