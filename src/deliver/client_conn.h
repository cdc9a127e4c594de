/*
 * client_conn.h - the I/O layer under an outbound SMTP connection, the
 * client's counterpart of src/server/conn.c.
 *
 * A client_conn owns one socket (and, after STARTTLS, its SSL object and
 * TLS bufferevent) and the buffers in between.  The protocol code above it
 * (smtp_client.c) sees only events -- connected, input waiting, the TLS
 * handshake over, the connection closed, the deadline passed -- and byte
 * slices; it never touches sockets, OpenSSL or libevent.
 *
 * One deadline per connection, always armed while the connection lives:
 * the protocol sets it (client_conn_set_timeout(), for every state and
 * after every reply) and the layer re-arms it whenever its output makes
 * progress on the socket, so a slow but working next hop is not cut off
 * in the middle of a large message, and a silent one always is.
 */
#ifndef SLUICE_CLIENT_CONN_H
#define SLUICE_CLIENT_CONN_H

#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct client_conn;
typedef struct ssl_st SSL;

struct client_conn_ops {
	/* The TCP connection is up; the endpoints are known. */
	void (*connected)(void *arg);
	/* New bytes are waiting (client_conn_peek()). */
	void (*input)(void *arg);
	/* The STARTTLS handshake is over: error is NULL, or why it failed. */
	void (*tls_done)(void *arg, const char *error);
	/*
	 * The connection failed or ended: the connect was refused, the
	 * peer closed, an I/O or TLS error.  why is one line.
	 */
	void (*closed)(void *arg, const char *why);
	/* The deadline passed. */
	void (*timeout)(void *arg);
	/*
	 * Output waiting for the peer fell to CLIENT_CONN_OUTPUT_LOW or
	 * below: a writer that stopped at CLIENT_CONN_OUTPUT_HIGH may go on.
	 * Optional.
	 */
	void (*writable)(void *arg);
};

/* Read-ahead cap: a reply line is at most 512 bytes; this is plenty. */
#define CLIENT_CONN_INPUT_MAX (64 * 1024)
/*
 * Output: a writer of a large message keeps what waits for the peer
 * under CLIENT_CONN_OUTPUT_HIGH (client_conn_output_len) and goes on at
 * writable(); inside TLS, OpenSSL writes its records straight to the
 * socket.  A delivery's memory then does not grow with the message.
 */
#define CLIENT_CONN_OUTPUT_HIGH (256 * 1024)
#define CLIENT_CONN_OUTPUT_LOW (64 * 1024)

/*
 * Start connecting to addr; events follow from the loop, never from
 * inside this call.  NULL with *why set when it cannot even start.
 */
struct client_conn *client_conn_connect(struct event_base *,
    const struct sockaddr *addr, socklen_t addrlen, unsigned timeout,
    const struct client_conn_ops *, void *arg, const char **why);

/*
 * Close and free.  Inside TLS, a close_notify is sent first (one
 * non-blocking write: a peer that does not read cannot hold us), so the
 * peer sees a proper end and the TLS session stays resumable.  No
 * callback is made after this.
 */
void client_conn_free(struct client_conn *);

/* The waiting input as one slice (valid until the next call). */
const char *client_conn_peek(struct client_conn *, size_t *len);
void client_conn_consume(struct client_conn *, size_t n);

/* Queue bytes for the peer; -1 when out of memory. */
int client_conn_write(struct client_conn *, const void *, size_t);
/* Bytes queued and not yet taken by the socket (or by OpenSSL). */
size_t client_conn_output_len(struct client_conn *);

/* (Re)arm the deadline: seconds from now. */
void client_conn_set_timeout(struct client_conn *, unsigned seconds);

/*
 * STARTTLS as a client (RFC 3207): whatever plaintext is already waiting
 * is discarded (it arrived after the 220 and before TLS: an injection,
 * CVE-2021-38371), then an OpenSSL bufferevent takes the socket and the
 * handshake runs with ssl, which the conn then owns.  Returns the number
 * of plaintext bytes discarded, or -1 (ssl freed) when out of memory.
 * tls_done() reports the end of the handshake.
 */
long client_conn_starttls(struct client_conn *, SSL *ssl);

/* The SSL, once STARTTLS was started; NULL before. */
SSL *client_conn_ssl(struct client_conn *);

/* addr_endpoint()'s form (util/addr.h); local is "" until connected. */
const char *client_conn_local(const struct client_conn *);
const char *client_conn_remote(const struct client_conn *);

/*
 * A call made from a later turn of the loop: how the protocol code ends
 * a connection without freeing an object inside its own callback.  It is
 * allocated up front (NULL when out of memory), so that firing it, at the
 * end, cannot fail.  Firing it twice before it ran calls fn once.
 */
struct client_conn_later;
struct client_conn_later *client_conn_later_new(
    struct event_base *, void (*fn)(void *), void *arg);
void client_conn_later_fire(struct client_conn_later *);
void client_conn_later_free(struct client_conn_later *);

#endif
