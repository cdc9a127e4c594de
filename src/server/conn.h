/*
 * conn.h - the I/O layer under an SMTP server session.
 *
 * A conn owns one socket (and, after STARTTLS, its SSL object) through a
 * libevent bufferevent.  The protocol code above it sees only events
 * ("input is available", "the peer finished sending", "the peer went
 * away", "a deadline passed") and byte slices; it never touches sockets,
 * OpenSSL or libevent.  Both directions are bounded: the layer stops
 * reading once CONN_INPUT_MAX bytes are waiting, and stops reading and
 * holds the session (conn_held) while more than CONN_OUTPUT_MAX bytes of
 * replies wait for a client that does not read them.
 */
#ifndef SLUICE_CONN_H
#define SLUICE_CONN_H

#include <stddef.h>
#include <time.h>

struct event_base;
struct conn;

struct conn_ops {
	/* New bytes are waiting. */
	void (*input)(void *arg);
	/* An I/O or TLS error ended the connection, or a closing one could
	 * not flush in time. */
	void (*closed)(void *arg, const char *why);
	/* The deadline passed. */
	void (*timeout)(void *arg);
	/* Output drained after conn_close_after_flush(). */
	void (*flushed)(void *arg);
	/* The STARTTLS handshake finished (ok) or failed. */
	void (*tls_done)(void *arg, int ok);
	/*
	 * The peer finished sending (TCP FIN, or TLS close_notify) but may
	 * still read: everything it sent before has been reported by
	 * input(), and replies can still be written.  Reading has stopped
	 * for good.  Optional: without it, closed() is called instead.
	 */
	void (*eof)(void *arg);
};

typedef struct ssl_st SSL;

/* Bytes read ahead of the protocol; bounds memory per session. */
#define CONN_INPUT_MAX (256 * 1024)
/*
 * Replies waiting for the client.  Past this the conn stops reading and
 * holds the session (conn_held) until the client has taken all but
 * CONN_OUTPUT_RESUME of them.  A client that pipelines commands and never
 * reads the replies costs at most this (plus one reply: the check is made
 * before each command) instead of growing without bound.  64 KB holds
 * more than a full window of pipelined replies of any real client.
 */
#define CONN_OUTPUT_MAX (64 * 1024)
#define CONN_OUTPUT_RESUME (16 * 1024)
/*
 * Default for conn_set_linger(): how long a closing connection may take
 * to hand its last replies to the kernel before it is closed anyway.
 */
#define CONN_LINGER_MAX 10.0

struct conn *conn_new(
    struct event_base *, int fd, const struct conn_ops *, void *arg);
void conn_free(struct conn *);

/* The waiting input as one contiguous slice (valid until the next call). */
const char *conn_peek(struct conn *, size_t *len);
void conn_consume(struct conn *, size_t n);
size_t conn_input_len(struct conn *);

void conn_write(struct conn *, const void *, size_t);
/* Stop reading (while a message is being committed), and resume. */
void conn_pause(struct conn *);
void conn_resume(struct conn *);
/*
 * Flush what is queued, then report flushed(); reading stops.  A TLS
 * session is ended with close_notify (so the peer sees a clean end and
 * may resume the TLS session).  If the client does not take the output
 * within the linger time, closed() is reported instead: no connection
 * outlives its deadline because its peer stopped reading.
 */
void conn_close_after_flush(struct conn *);
void conn_set_linger(struct conn *, double seconds);
/* Absolute deadline (CLOCK_MONOTONIC seconds); 0 clears it. */
void conn_set_deadline(struct conn *, double when);
/*
 * STARTTLS (RFC 3207): once the queued plaintext (the 220) is written,
 * run the server side of a TLS handshake on the socket with ssl, which the
 * conn then owns.  Fails when unread plaintext is waiting: anything a
 * client pipelined after STARTTLS is an injection attempt (CVE-2011-0411)
 * and the caller must drop the connection.  tls_done() reports the end of
 * the handshake.  After a TLS error the connection is finished (closed()
 * is called), after close_notify eof() is; there is no way back to
 * plaintext.
 */
int conn_starttls(struct conn *, SSL *ssl);
SSL *conn_ssl(struct conn *);

/*
 * Tarpit: hold reading, write the bytes after delay seconds, then resume
 * and report input() so that pipelined commands are processed again.
 */
void conn_write_later(struct conn *, const void *, size_t, double delay);
/*
 * Should the session stop processing input for now?  True while a reply
 * is tarpitted or while too much output waits for the client; input() is
 * reported again when that ends.
 */
int conn_held(const struct conn *);
/* Has the peer finished sending (eof() was or is about to be reported)? */
int conn_peer_eof(const struct conn *);
/* Does data already wait on the socket (used before the greeting)? */
int conn_socket_has_data(struct conn *);

double conn_now(void);

#endif
