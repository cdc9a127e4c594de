/*
 * tlsload.c - STARTTLS load for the TLS benchmark (bench/tls.sh).
 *
 * Modes:
 *   -H         handshakes: each iteration connects, EHLO, STARTTLS, full
 *              TLS handshake (no resumption: no session cache, no
 *              tickets), EHLO, QUIT; M iterations over C threads.
 *   (default)  C threads, each with one TLS session, send M messages of S
 *              bytes in total; per message the time from the final "." to
 *              the 250 is recorded.
 *   -I N       idle: open N sessions, each in TLS after EHLO, print
 *              "idle N" and hold them until stdin closes, then QUIT.
 *
 *   tlsload [-c threads] [-m count] [-s size] [-H] [-I N] host port
 *
 * Prints one line: count, seconds, rate, p50 ms, p99 ms, errors.  Plain
 * SMTP load is bench/smtpload.c's job; this one is blocking and threaded
 * because OpenSSL's blocking API keeps the handshake code obvious.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

struct load {
	struct sockaddr_in sin;
	int per_thread;
	int handshakes;
	SSL_CTX *ctx;
	char *body;
	size_t body_len;
	double *lat;
	int errors;
	pthread_mutex_t mu;
};

struct worker {
	struct load *ld;
	int index;
};

/* One client connection, plain until STARTTLS, then TLS. */
struct link {
	int fd;
	SSL *ssl;
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static ssize_t
link_read(struct link *l, char *buf, size_t n)
{
	if (l->ssl != NULL)
		return SSL_read(l->ssl, buf, (int)n);
	return read(l->fd, buf, n);
}

static int
say(struct link *l, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = l->ssl != NULL ? SSL_write(l->ssl, s, (int)n)
		                           : write(l->fd, s, n);

		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read one whole reply (multi-line aware); returns its code or -1. */
static int
reply(struct link *l)
{
	char buf[4096];
	size_t len = 0;

	for (;;) {
		ssize_t n = link_read(l, buf + len, sizeof(buf) - 1 - len);
		char *line, *nl;

		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		for (line = buf; (nl = strstr(line, "\r\n")) != NULL;
		     line = nl + 2)
			if (nl - line >= 4 && line[3] == ' ')
				return atoi(line);
		if (len >= sizeof(buf) - 1)
			return -1;
	}
}

static void
link_close(struct link *l)
{
	if (l->ssl != NULL) {
		SSL_shutdown(l->ssl);
		SSL_free(l->ssl);
	}
	if (l->fd >= 0)
		close(l->fd);
	l->ssl = NULL;
	l->fd = -1;
}

/* Connect, EHLO, STARTTLS, handshake, EHLO again. */
static int
link_open(struct load *ld, struct link *l)
{
	int one = 1;

	l->ssl = NULL;
	if ((l->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return -1;
	setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(l->fd, (struct sockaddr *)&ld->sin, sizeof(ld->sin)) < 0 ||
	    reply(l) != 220 || say(l, "EHLO load.example\r\n", 19) < 0 ||
	    reply(l) != 250 || say(l, "STARTTLS\r\n", 10) < 0 ||
	    reply(l) != 220 || (l->ssl = SSL_new(ld->ctx)) == NULL)
		goto fail;
	SSL_set_fd(l->ssl, l->fd);
	if (SSL_connect(l->ssl) != 1 ||
	    say(l, "EHLO load.example\r\n", 19) < 0 || reply(l) != 250)
		goto fail;
	return 0;
fail:
	link_close(l);
	return -1;
}

static void
count_error(struct load *ld)
{
	pthread_mutex_lock(&ld->mu);
	ld->errors++;
	pthread_mutex_unlock(&ld->mu);
}

static int
send_message(struct load *ld, struct link *l, double *lat)
{
	double t0;
	int code;

	if (say(l, "MAIL FROM:<load@example.org>\r\n", 30) < 0 ||
	    reply(l) != 250 ||
	    say(l, "RCPT TO:<sink@example.com>\r\n", 28) < 0 ||
	    reply(l) != 250 || say(l, "DATA\r\n", 6) < 0 || reply(l) != 354 ||
	    say(l, ld->body, ld->body_len) < 0)
		return -1;
	t0 = now();
	if (say(l, ".\r\n", 3) < 0)
		return -1;
	code = reply(l);
	*lat = (now() - t0) * 1000;
	return code == 250 ? 0 : -1;
}

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	struct load *ld = w->ld;
	struct link l = {-1, NULL};

	for (int i = 0; i < ld->per_thread; i++) {
		double *lat = &ld->lat[w->index * ld->per_thread + i];
		double t0 = now();

		if (l.fd < 0 && link_open(ld, &l) < 0) {
			count_error(ld);
			continue;
		}
		if (ld->handshakes) {
			say(&l, "QUIT\r\n", 6);
			reply(&l);
			link_close(&l);
			*lat = (now() - t0) * 1000;
		} else if (send_message(ld, &l, lat) < 0) {
			count_error(ld);
			link_close(&l);
		}
	}
	if (l.fd >= 0) {
		say(&l, "QUIT\r\n", 6);
		reply(&l);
		link_close(&l);
	}
	return NULL;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Hold n TLS sessions open until stdin closes. */
static int
run_idle(struct load *ld, int n)
{
	struct link *links = calloc((size_t)n, sizeof(*links));
	char buf[64];
	int opened = 0;

	for (int i = 0; i < n; i++) {
		if (link_open(ld, &links[i]) == 0)
			opened++;
		else
			links[i].fd = -1;
	}
	printf("idle %d\n", opened);
	fflush(stdout);
	while (fgets(buf, sizeof(buf), stdin) != NULL)
		;
	for (int i = 0; i < n; i++) {
		if (links[i].fd < 0)
			continue;
		say(&links[i], "QUIT\r\n", 6);
		link_close(&links[i]);
	}
	free(links);
	return opened == n ? 0 : 1;
}

int
main(int argc, char **argv)
{
	struct load ld;
	int threads = 20, total = 1000, size = 2048, idle = 0, ch;
	pthread_t *th;
	struct worker *ws;
	double t0, secs;

	memset(&ld, 0, sizeof(ld));
	while ((ch = getopt(argc, argv, "c:m:s:HI:")) != -1) {
		switch (ch) {
		case 'c':
			threads = atoi(optarg);
			break;
		case 'm':
			total = atoi(optarg);
			break;
		case 's':
			size = atoi(optarg);
			break;
		case 'H':
			ld.handshakes = 1;
			break;
		case 'I':
			idle = atoi(optarg);
			break;
		default:
			return 2;
		}
	}
	if (argc - optind != 2 || threads < 1 || total < threads || size < 0)
		return 2;
	ld.sin.sin_family = AF_INET;
	ld.sin.sin_port = htons((unsigned short)atoi(argv[optind + 1]));
	if (inet_pton(AF_INET, argv[optind], &ld.sin.sin_addr) != 1)
		return 2;
	ld.ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(ld.ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ld.ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ld.ctx, SSL_OP_NO_TICKET);
	if (idle > 0)
		return run_idle(&ld, idle);
	ld.per_thread = total / threads;
	total = ld.per_thread * threads;
	ld.body = malloc((size_t)size + 256);
	ld.body_len = (size_t)snprintf(ld.body, 256,
	    "From: load@example.org\r\nTo: sink@example.com\r\n"
	    "Subject: load\r\n\r\n");
	while ((int)ld.body_len < size) {
		memset(ld.body + ld.body_len, 'x', 76);
		memcpy(ld.body + ld.body_len + 76, "\r\n", 2);
		ld.body_len += 78;
	}
	ld.lat = calloc((size_t)total, sizeof(double));
	pthread_mutex_init(&ld.mu, NULL);
	th = calloc((size_t)threads, sizeof(*th));
	ws = calloc((size_t)threads, sizeof(*ws));
	t0 = now();
	for (int i = 0; i < threads; i++) {
		ws[i].ld = &ld;
		ws[i].index = i;
		pthread_create(&th[i], NULL, worker_run, &ws[i]);
	}
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	secs = now() - t0;
	qsort(ld.lat, (size_t)total, sizeof(double), cmp);
	printf("count=%d seconds=%.3f rate=%.0f p50_ms=%.2f p99_ms=%.2f "
	       "errors=%d\n",
	    total, secs, total / secs, ld.lat[total / 2],
	    ld.lat[(int)(total * 0.99)], ld.errors);
	return ld.errors ? 1 : 0;
}
