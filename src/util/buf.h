/*
 * buf.h - growable byte buffer with a mandatory hard maximum.
 *
 * Every buffer that holds network input is a struct buf: it has a length,
 * a capacity and a maximum fixed at init time.  Appending past the maximum
 * fails with BUF_FULL instead of growing, so hostile input can never make
 * memory grow without bound.  The contents are always NUL-terminated (the
 * terminator is not counted in len) so that text can be handed to libc.
 *
 * A buffer remembers its first failure (buf_error), as OpenSSH's sshbuf
 * and curl's dynbuf encourage for composers: text built from many appends
 * (a DSN) is checked once at the end, not after every append.  Appends
 * after a failure are still tried, so what the buffer then holds is
 * incomplete; a composer that checks buf_error() throws it away.
 */
#ifndef SLUICE_BUF_H
#define SLUICE_BUF_H

#include <stdarg.h>
#include <stddef.h>

enum buf_status {
	BUF_OK = 0,
	BUF_FULL = -1,  /* would exceed the buffer's maximum */
	BUF_NOMEM = -2, /* allocation failed */
};

struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
	int err; /* the first failure (enum buf_status), BUF_OK if none */
};

void buf_init(struct buf *, size_t max);
void buf_free(struct buf *);
void buf_reset(struct buf *);
int buf_append(struct buf *, const void *, size_t);
int buf_puts(struct buf *, const char *);
int buf_printf(struct buf *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *, const char *, va_list);
/*
 * The first append that failed since buf_init() or buf_free(), or BUF_OK.
 * buf_reset() keeps it: it belongs to the whole composition.
 */
int buf_error(const struct buf *);
/* Hand the bytes to the caller, who frees them; the buffer is left empty. */
char *buf_steal(struct buf *, size_t *lenp);

#endif
