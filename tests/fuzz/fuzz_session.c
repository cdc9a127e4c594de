/*
 * fuzz_session.c - libFuzzer harness for a whole inbound SMTP session.
 *
 * The input is what a client sends, after one byte that chooses how: an
 * odd byte sends it all at once (pipelined, as a spam engine would), an
 * even one line by line, a line per loop turn, so that the session can
 * answer each command before the next arrives and the fuzzer reaches the
 * deeper states (DATA, BDAT, the commit).  It goes through one end of a
 * socket pair into a real session (src/server/session.c, conn.c, the command
 * and content parsers, the spool with its SQLite queue, STARTTLS with a real
 * certificate), driven by a real event loop; then the client half-closes
 * and the session must end.  Beyond what ASan and UBSan catch, the harness
 * aborts when:
 *   - a reply line before STARTTLS is not a well-formed, printable reply;
 *   - the session is still alive long after the client has gone;
 *   - the memory the session charged to the server is not given back.
 * The fixed set-up (configuration, certificate, queue) is made once, in
 * a temporary directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "server/server.h"
#include "server/session.h"
#include "spool/spool.h"
#include "tls/tls_store.h"
#include "util/log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * After the client has gone, loop turns of at most FUZZ_TURN_MS each
 * before a session counts as hung; while it sends, a turn lasts at most
 * FUZZ_SEND_MS.
 */
#define FUZZ_TURNS 400
#define FUZZ_TURN_MS 25
#define FUZZ_SEND_MS 2

static struct daemon ctx;
static struct server srv = {.daemon = &ctx};
static const struct conf_receive_connector *rc;
static char dir[] = "/tmp/sluice-fuzz-session.XXXXXX";

/* The queue, certificate and configuration go when the fuzzer exits. */
static void
fuzz_cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_session: could not remove %s\n", dir);
}

static void
fuzz_die(const char *what)
{
	fprintf(stderr, "fuzz_session: %s\n", what);
	abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[256], cmd[1024];
	struct conf *conf;
	struct tls_store *tls;
	struct conf_ref *ref;
	const char *why = NULL;
	FILE *f;

	(void)argc;
	(void)argv;
	if (mkdtemp(dir) == NULL)
		fuzz_die("mkdtemp");
	atexit(fuzz_cleanup);
	snprintf(cmd, sizeof(cmd),
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	    "-nodes -subj /CN=mx.fuzz.test -days 30 -keyout %s/key.pem "
	    "-out %s/cert.pem >/dev/null 2>&1",
	    dir, dir);
	if (system(cmd) != 0)
		fuzz_die("openssl req failed");
	snprintf(path, sizeof(path), "%s/sluice.conf", dir);
	if ((f = fopen(path, "w")) == NULL)
		fuzz_die("cannot write the configuration");
	fprintf(f,
	    "[Transport]\n"
	    "QueueDirectory = %s/queue\n"
	    "LogDirectory = %s/log\n"
	    "ControlSocket = %s/ctl.sock\n"
	    "RecipientValidationEnabled = false\n"
	    "[Certificate mx]\n"
	    "CertificateFile = %s/cert.pem\n"
	    "KeyFile = %s/key.pem\n"
	    "[AcceptedDomain localhost]\n"
	    "[AcceptedDomain relay.test]\n"
	    "DomainType = InternalRelay\n"
	    "[ReceiveConnector fuzz]\n"
	    "Bindings = 127.0.0.1:2525\n"
	    "RemoteIPRanges = 127.0.0.0/8\n"
	    "AuthMechanism = Tls\n"
	    "TlsCertificateName = mx\n"
	    "Fqdn = mx.fuzz.test\n"
	    "TarpitInterval = 0s\n"
	    "MaxProtocolErrors = 20\n"
	    "MaxMessageSize = 64KB\n"
	    "MaxRecipientsPerMessage = 8\n"
	    "ProtocolLoggingLevel = None\n",
	    dir, dir, dir, dir, dir);
	fclose(f);
	if ((conf = conf_load(path, stderr)) == NULL ||
	    (tls = tls_store_new(conf, stderr)) == NULL)
		fuzz_die("the harness configuration does not load");
	log_open("fuzz_session", 1);
	log_set_level(LOG_LVL_ERR);
	if ((ctx.base = event_base_new()) == NULL ||
	    (ctx.spool = spool_open(
	         conf->transport.queue_directory, ctx.base, &why)) == NULL)
		fuzz_die("cannot open the queue");
	if ((ref = calloc(1, sizeof(*ref))) == NULL)
		fuzz_die("out of memory");
	ref->conf = conf;
	ref->tls = tls;
	ref->refs = 1;
	ctx.conf = ref;
	rc = &conf->receive_connectors[0];
	return 0;
}

/* Every complete line up to the STARTTLS 220 must be a printable reply. */
static void
fuzz_check_replies(const char *out, size_t len)
{
	size_t start = 0;
	int greetings = 0;

	for (size_t i = 0; i + 1 < len; i++) {
		if (out[i] != '\r' || out[i + 1] != '\n')
			continue;
		if (i - start < 4 || out[start] < '2' || out[start] > '5' ||
		    out[start + 1] < '0' || out[start + 1] > '9' ||
		    out[start + 2] < '0' || out[start + 2] > '9' ||
		    (out[start + 3] != ' ' && out[start + 3] != '-'))
			fuzz_die("a malformed reply line");
		for (size_t j = start; j < i; j++)
			if ((unsigned char)out[j] < 0x20 ||
			    (unsigned char)out[j] > 0x7e)
				fuzz_die(
				    "a reply with a control or 8-bit byte");
		/* The second 220 starts TLS: the rest is records. */
		if (memcmp(out + start, "220 ", 4) == 0 && ++greetings == 2)
			return;
		start = i + 2;
		i++;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char out[1 << 16];
	struct sockaddr_in local, remote;
	size_t off = 0, got = 0;
	int sv[2], turn = 0, shut = 0, pipelined = size > 0 && (data[0] & 1);

	if (socketpair(
	        AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		fuzz_die("socketpair");
	memset(&local, 0, sizeof(local));
	local.sin_family = AF_INET;
	local.sin_port = htons(2525);
	local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	remote = local;
	remote.sin_port = htons(40000);
	if (size > 0) {
		data++;
		size--;
	}
	session_start(&srv, daemon_conf_acquire(&ctx), rc, sv[0],
	    (struct sockaddr *)&local, (struct sockaddr *)&remote, NULL);
	while (turn < FUZZ_TURNS && srv.nsessions > 0) {
		struct timeval tv = {
		    0, (shut ? FUZZ_TURN_MS : FUZZ_SEND_MS) * 1000};
		size_t chunk = size - off;
		ssize_t n;

		if (!shut) {
			const uint8_t *nl = memchr(data + off, '\n', chunk);

			if (!pipelined && nl != NULL)
				chunk = (size_t)(nl - (data + off)) + 1;
			n = chunk > 0 ? write(sv[1], data + off, chunk) : 0;
			if (n > 0)
				off += (size_t)n;
			if (n < 0 && errno != EAGAIN)
				off = size; /* the session hung up */
			if (off == size) {
				shutdown(sv[1], SHUT_WR);
				shut = 1;
			}
		}
		event_base_loopexit(ctx.base, &tv);
		event_base_loop(ctx.base, EVLOOP_ONCE);
		turn += shut;
		/* Everything is read; the first 64 KB are checked. */
		for (;;) {
			char discard[4096];

			n = got < sizeof(out)
			        ? read(sv[1], out + got, sizeof(out) - got)
			        : read(sv[1], discard, sizeof(discard));
			if (n <= 0)
				break;
			if (got < sizeof(out))
				got += (size_t)n;
		}
	}
	if (srv.nsessions > 0)
		fuzz_die("the session outlived its client");
	if (srv.memory_used != 0)
		fuzz_die("message memory was not given back");
	fuzz_check_replies(out, got);
	close(sv[1]);
	return 0;
}
