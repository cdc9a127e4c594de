/*
 * smtpload.c - SMTP load generator that measures acceptance latency.
 *
 * C threads, each with its own connection, send M messages in total of S
 * bytes of body to HOST:PORT.  Per message it records the time from
 * sending the final "." to reading the 250: the acceptance latency, which
 * for a server that fsyncs before replying is what a client waits.  With
 * -n every message uses a new connection (like smtp-source without -d).
 *
 *   smtpload [-c conns] [-m messages] [-s size] [-n] host port
 *
 * Prints one line: messages, seconds, msgs/s, p50 ms, p99 ms, errors.
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

struct load {
	struct sockaddr_in sin;
	int per_thread;
	int new_conn;
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

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Read one whole reply (multi-line aware); returns its code or -1. */
static int
reply(int fd)
{
	char buf[4096];
	size_t len = 0;

	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		char *line, *nl;

		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		/* the last complete line decides: "250 " ends, "250-" goes on
		 */
		for (line = buf; (nl = strstr(line, "\r\n")) != NULL;
		     line = nl + 2) {
			if (nl - line >= 4 && line[3] == ' ')
				return atoi(line);
		}
		if (len >= sizeof(buf) - 1)
			return -1;
	}
}

static int
say(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);

		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
session_open(struct load *ld)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&ld->sin, sizeof(ld->sin)) < 0 ||
	    reply(fd) != 220 || say(fd, "EHLO load.example\r\n", 19) < 0 ||
	    reply(fd) != 250) {
		close(fd);
		return -1;
	}
	return fd;
}

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	struct load *ld = w->ld;
	int fd = -1;

	for (int i = 0; i < ld->per_thread; i++) {
		double t0;
		int code;

		if (fd < 0 && (fd = session_open(ld)) < 0)
			goto fail;
		if (say(fd, "MAIL FROM:<load@example.org>\r\n", 30) < 0 ||
		    reply(fd) != 250 ||
		    say(fd, "RCPT TO:<sink@example.com>\r\n", 28) < 0 ||
		    reply(fd) != 250 || say(fd, "DATA\r\n", 6) < 0 ||
		    reply(fd) != 354 || say(fd, ld->body, ld->body_len) < 0)
			goto fail;
		t0 = now();
		if (say(fd, ".\r\n", 3) < 0)
			goto fail;
		code = reply(fd);
		ld->lat[w->index * ld->per_thread + i] = (now() - t0) * 1000;
		if (code != 250)
			goto fail;
		if (ld->new_conn) {
			say(fd, "QUIT\r\n", 6);
			reply(fd);
			close(fd);
			fd = -1;
		}
		continue;
	fail:
		pthread_mutex_lock(&ld->mu);
		ld->errors++;
		pthread_mutex_unlock(&ld->mu);
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	if (fd >= 0) {
		say(fd, "QUIT\r\n", 6);
		reply(fd);
		close(fd);
	}
	return NULL;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	struct load ld;
	int conns = 20, total = 10000, size = 2048, ch;
	pthread_t *th;
	struct worker *ws;
	double t0, secs;

	memset(&ld, 0, sizeof(ld));
	while ((ch = getopt(argc, argv, "c:m:s:n")) != -1) {
		switch (ch) {
		case 'c':
			conns = atoi(optarg);
			break;
		case 'm':
			total = atoi(optarg);
			break;
		case 's':
			size = atoi(optarg);
			break;
		case 'n':
			ld.new_conn = 1;
			break;
		default:
			return 2;
		}
	}
	if (argc - optind != 2 || conns < 1 || total < conns || size < 0)
		return 2;
	ld.sin.sin_family = AF_INET;
	ld.sin.sin_port = htons((unsigned short)atoi(argv[optind + 1]));
	if (inet_pton(AF_INET, argv[optind], &ld.sin.sin_addr) != 1)
		return 2;
	ld.per_thread = total / conns;
	total = ld.per_thread * conns;
	/* headers, then lines of 76 'x' until the body reaches size bytes */
	ld.body = malloc((size_t)size + 256);
	ld.body_len = (size_t)snprintf(ld.body, 256,
	    "From: load@example.org\r\nTo: sink@example.com\r\n"
	    "Subject: load\r\n\r\n");
	while (
	    ld.body_len + 78 <= (size_t)size + 78 && (int)ld.body_len < size) {
		memset(ld.body + ld.body_len, 'x', 76);
		memcpy(ld.body + ld.body_len + 76, "\r\n", 2);
		ld.body_len += 78;
	}
	ld.lat = calloc((size_t)total, sizeof(double));
	pthread_mutex_init(&ld.mu, NULL);
	th = calloc((size_t)conns, sizeof(*th));
	ws = calloc((size_t)conns, sizeof(*ws));
	t0 = now();
	for (int i = 0; i < conns; i++) {
		ws[i].ld = &ld;
		ws[i].index = i;
		pthread_create(&th[i], NULL, worker_run, &ws[i]);
	}
	for (int i = 0; i < conns; i++)
		pthread_join(th[i], NULL);
	secs = now() - t0;
	qsort(ld.lat, (size_t)total, sizeof(double), cmp);
	printf("messages=%d seconds=%.3f rate=%.0f p50_ms=%.2f p99_ms=%.2f "
	       "errors=%d\n",
	    total, secs, total / secs, ld.lat[total / 2],
	    ld.lat[(int)(total * 0.99)], ld.errors);
	return ld.errors ? 1 : 0;
}
