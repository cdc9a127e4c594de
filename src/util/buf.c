/*
 * buf.c - bounded growable buffer (see buf.h).
 *
 * Growth doubles the capacity but never past max + 1 (room for the NUL),
 * so a buffer's footprint is bounded by its maximum, chosen by the owner.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

void
buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
	b->err = BUF_OK;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->err = BUF_OK;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

/* Remember the first failure; return this one. */
static int
buf_fail(struct buf *b, int rc)
{
	if (b->err == BUF_OK)
		b->err = rc;
	return rc;
}

int
buf_error(const struct buf *b)
{
	return b->err;
}

static int
buf_reserve(struct buf *b, size_t extra)
{
	size_t need, ncap;
	char *p;

	if (extra > b->max || b->len > b->max - extra)
		return buf_fail(b, BUF_FULL);
	need = b->len + extra + 1;
	if (need <= b->cap)
		return BUF_OK;
	ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap > (b->max + 1) / 2 ? b->max + 1 : ncap * 2;
	if ((p = realloc(b->data, ncap)) == NULL)
		return buf_fail(b, BUF_NOMEM);
	b->data = p;
	b->cap = ncap;
	return BUF_OK;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	int rc;

	if ((rc = buf_reserve(b, n)) != BUF_OK)
		return rc;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return BUF_OK;
}

int
buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n, rc;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return buf_fail(b, BUF_NOMEM);
	if ((rc = buf_reserve(b, (size_t)n)) != BUF_OK)
		return rc;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return BUF_OK;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

char *
buf_steal(struct buf *b, size_t *lenp)
{
	char *p = b->data;

	if (lenp != NULL)
		*lenp = b->len;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}
