/*
 * sendmail.c - sluice-sendmail, the sendmail(8) command local programs
 * call (installed as /usr/sbin/sendmail, mailq and newaliases by the
 * Debian package, as Debian's MTAs do).
 *
 * It is not setuid or setgid: it reads the message, then hands it to the
 * running sluiced over [Transport] LocalSubmissionSocket, where the
 * daemon asks the kernel who is calling.  It exits 0 only after the
 * daemon's 250 to the end of data, which means the message is durable in
 * the queue; every other outcome is a message on stderr and a sysexits(3)
 * code, so cron, mail(1) and scripts see the failure (mail(1) then keeps
 * the message in dead.letter).
 *
 * The options are those programs use (sendmail 8 and Postfix agree on
 * them): -t, -i/-oi, -f/-r, -F, -N, -R, -V, -B, -v, -C, and the modes -bm
 * (the default), -bs (SMTP on stdin/stdout), -bp (mailq) and -bi
 * (newaliases).  Options that only tune sendmail 8's own queue (-od*,
 * -oe*, -O, -L, -X, -h, -A, -m, -n, -U, -G) are accepted and do nothing,
 * as in Postfix.  Options asking for what Sluice does not do here (-bd,
 * -bv, -bt, -q) are refused with a pointer to what does.
 *
 * Unqualified addresses (cron's "root") get the mail name: /etc/mailname
 * (Debian policy 11.6), else the host name.
 */
#include <ctype.h>
#include <getopt.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf_peek.h"
#include "sendmail/sm_addrlist.h"
#include "sendmail/sm_mailq.h"
#include "sendmail/sm_message.h"
#include "sendmail/sm_submit.h"
#include "util/buf.h"
#include "version.h"

#define SM_DEFAULT_CONF "/etc/sluice/sluice.conf"
/* Recipients taken from the command line and the header together. */
#define SM_RCPTS_MAX 10000

struct sm {
	const char *prog;
	const char *conf;
	char mode;   /* 'm', 's', 'p', 'i' */
	int extract; /* -t */
	int dot_ends;
	int verbose;
	const char *sender;
	const char *fullname;
	const char *notify;
	const char *ret;
	char *envid;
	int body_8bit;
	char domain[256];
	char **rcpts;
	size_t nrcpts;
};

static void
sm_usage(FILE *out, const char *prog, int status)
{
	fprintf(out,
	    "usage: %s [-t] [-i] [-f SENDER] [-F NAME] [-C FILE] [-N DSN] "
	    "[-v] [RECIPIENT...]\n"
	    "       %s -bs | -bp | -bi\n"
	    "  -t       also send to the To, Cc and Bcc of the message\n"
	    "  -i, -oi  a line with only \".\" does not end the message\n"
	    "  -f ADDR  envelope sender (default: you, at the mail name)\n"
	    "  -F NAME  your full name, for a From: field that is missing\n"
	    "  -N DSN   never, or success,delay,failure (RCPT NOTIFY)\n"
	    "  -C FILE  the configuration (default %s)\n"
	    "  -bs      speak SMTP with sluiced on stdin and stdout\n"
	    "  -bp      list the queue (mailq)\n"
	    "  -bi      newaliases: Sluice has no aliases file\n"
	    "See sluice-sendmail(8).\n",
	    prog, prog, SM_DEFAULT_CONF);
	exit(status);
}

/* /etc/mailname's first line, else the host name. */
static void
sm_mail_domain(char *out, size_t len)
{
	FILE *fp = fopen("/etc/mailname", "r");

	out[0] = '\0';
	if (fp != NULL) {
		if (fgets(out, (int)len, fp) == NULL)
			out[0] = '\0';
		fclose(fp);
		out[strcspn(out, " \t\r\n")] = '\0';
	}
	if (out[0] == '\0' && (gethostname(out, len) < 0 || out[0] == '\0'))
		snprintf(out, len, "localhost");
	out[len - 1] = '\0';
}

/* An address as given, or with @domain when it has none. */
static char *
sm_qualify(const struct sm *sm, const char *addr)
{
	char *out;

	if (addr[0] == '\0' || strchr(addr, '@') != NULL)
		return strdup(addr);
	if (asprintf(&out, "%s@%s", addr, sm->domain) < 0)
		return NULL;
	return out;
}

/* What cannot go between <> in an SMTP command. */
static int
sm_bad_address(const char *a)
{
	if (strlen(a) > SM_ADDR_MAX)
		return 1;
	for (; *a != '\0'; a++)
		if ((unsigned char)*a < 0x20 || *a == 0x7f || *a == '<' ||
		    *a == '>')
			return 1;
	return 0;
}

static int
sm_add_rcpt(void *arg, const char *addr)
{
	struct sm *sm = arg;
	char **grown;

	char *q;

	if (sm->nrcpts >= SM_RCPTS_MAX)
		return -1;
	if (sm_bad_address(addr)) {
		fprintf(stderr, "%s: not an address: \"%s\"\n", sm->prog, addr);
		exit(EX_DATAERR);
	}
	/* Once each, as the header may name someone twice (or To and Bcc). */
	if ((q = sm_qualify(sm, addr)) == NULL) {
		fprintf(stderr, "%s: out of memory\n", sm->prog);
		exit(EX_OSERR);
	}
	for (size_t i = 0; i < sm->nrcpts; i++)
		if (strcasecmp(sm->rcpts[i], q) == 0) {
			free(q);
			return 0;
		}
	free(q);
	if ((grown = realloc(sm->rcpts, (sm->nrcpts + 1) * sizeof(char *))) ==
	        NULL ||
	    (grown[sm->nrcpts] = sm_qualify(sm, addr)) == NULL) {
		fprintf(stderr, "%s: out of memory\n", sm->prog);
		exit(EX_OSERR);
	}
	sm->rcpts = grown;
	sm->nrcpts++;
	return 0;
}

/* -N never | success,delay,failure -> NOTIFY=NEVER | SUCCESS,... */
static const char *
sm_notify(const struct sm *sm, const char *arg)
{
	static char out[64];
	char copy[64], *save = NULL;
	size_t o = 0;

	if (strlen(arg) >= sizeof(copy))
		goto bad;
	snprintf(copy, sizeof(copy), "%s", arg);
	out[0] = '\0';
	for (char *t = strtok_r(copy, ",", &save); t != NULL;
	     t = strtok_r(NULL, ",", &save)) {
		if (strcasecmp(t, "never") != 0 &&
		    strcasecmp(t, "success") != 0 &&
		    strcasecmp(t, "delay") != 0 &&
		    strcasecmp(t, "failure") != 0)
			goto bad;
		o += (size_t)snprintf(
		    out + o, sizeof(out) - o, "%s%s", o ? "," : "", t);
	}
	for (char *p = out; *p != '\0'; p++)
		*p = (char)toupper((unsigned char)*p);
	if (out[0] == '\0' ||
	    (strstr(out, "NEVER") != NULL && strcmp(out, "NEVER") != 0))
		goto bad;
	return out;
bad:
	fprintf(stderr, "%s: -N takes never, or success, delay and failure\n",
	    sm->prog);
	exit(EX_USAGE);
}

/* RFC 3461 4: ENVID is xtext. */
static char *
sm_xtext(const char *s)
{
	struct buf b;

	buf_init(&b, 400);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 33 || c > 126 || c == '+' || c == '=')
			buf_printf(&b, "+%02X", c);
		else
			buf_append(&b, s, 1);
	}
	return buf_steal(&b, NULL);
}

static void
sm_options(struct sm *sm, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"version", no_argument, NULL, 1},
	    {"help", no_argument, NULL, 2},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	while ((ch = getopt_long(argc, argv,
	            "A:B:b:C:F:f:Gh:IiL:mN:nO:o:p:q::R:r:tUV:vX:", longopts,
	            NULL)) != -1) {
		switch (ch) {
		case 1:
			printf("sluice-sendmail %s\n", SLUICE_VERSION);
			exit(0);
		case 2:
			sm_usage(stdout, sm->prog, 0);
			break;
		case 'b':
			if (strchr("msp", optarg[0]) != NULL &&
			    optarg[1] == '\0') {
				sm->mode = optarg[0];
			} else if (strcmp(optarg, "i") == 0) {
				sm->mode = 'i';
			} else {
				fprintf(stderr,
				    "%s: -b%s is not supported here: sluiced "
				    "is the daemon, sluicectl route tests "
				    "addresses (see sluice-sendmail(8))\n",
				    sm->prog, optarg);
				exit(EX_USAGE);
			}
			break;
		case 'I':
			sm->mode = 'i';
			break;
		case 'C':
			sm->conf = optarg;
			break;
		case 'F':
			sm->fullname = optarg;
			break;
		case 'f':
		case 'r':
			sm->sender = optarg;
			break;
		case 'i':
			sm->dot_ends = 0;
			break;
		case 'o':
			/* -oi; the others tune sendmail 8's queue: nothing */
			if (strcmp(optarg, "i") == 0)
				sm->dot_ends = 0;
			break;
		case 't':
			sm->extract = 1;
			break;
		case 'v':
			sm->verbose = 1;
			break;
		case 'N':
			sm->notify = sm_notify(sm, optarg);
			break;
		case 'R':
			if (strcasecmp(optarg, "full") == 0)
				sm->ret = "FULL";
			else if (strcasecmp(optarg, "hdrs") == 0)
				sm->ret = "HDRS";
			else
				sm_usage(stderr, sm->prog, EX_USAGE);
			break;
		case 'V':
			free(sm->envid);
			if (strlen(optarg) > 100) {
				fprintf(stderr, "%s: -V: at most 100 octets\n",
				    sm->prog);
				exit(EX_USAGE);
			}
			sm->envid = sm_xtext(optarg);
			break;
		case 'B':
			sm->body_8bit = strcasecmp(optarg, "8BITMIME") == 0;
			break;
		case 'q':
			fprintf(stderr,
			    "%s: -q: sluiced runs its queue itself; `sluicectl "
			    "retry QUEUE` tries a queue now\n",
			    sm->prog);
			exit(EX_USAGE);
		case 'A':
		case 'G':
		case 'h':
		case 'L':
		case 'm':
		case 'n':
		case 'O':
		case 'p':
		case 'U':
		case 'X':
			break; /* sendmail 8's own tuning: nothing to do */
		default:
			sm_usage(stderr, sm->prog, EX_USAGE);
		}
	}
}

/* The envelope sender: -f as given (qualified), else the caller. */
static char *
sm_sender(struct sm *sm)
{
	struct passwd *pw;
	char *s;

	if (sm->sender != NULL) {
		char copy[SM_ADDR_MAX + 3];
		size_t n = strlen(sm->sender);

		if (n >= sizeof(copy))
			goto bad;
		memcpy(copy, sm->sender, n + 1);
		if (n >= 2 && copy[0] == '<' && copy[n - 1] == '>') {
			copy[n - 1] = '\0';
			memmove(copy, copy + 1, n - 1);
		}
		if (sm_bad_address(copy))
			goto bad;
		return sm_qualify(sm, copy);
	}
	if ((pw = getpwuid(getuid())) != NULL)
		return sm_qualify(sm, pw->pw_name);
	if (asprintf(&s, "%lu", (unsigned long)getuid()) < 0)
		return NULL;
	{
		char *q = sm_qualify(sm, s);

		free(s);
		return q;
	}
bad:
	fprintf(
	    stderr, "%s: -f: not an address: \"%s\"\n", sm->prog, sm->sender);
	exit(EX_USAGE);
}

/* From:, Date: and Message-ID: when the message has none (RFC 5322). */
static char *
sm_prepend(const struct sm *sm, const struct sm_message *m, const char *from)
{
	struct buf b;
	char date[64];
	time_t now = time(NULL);
	struct tm tm;

	buf_init(&b, 4096);
	buf_puts(&b, "");
	if (!m->has_from) {
		const char *addr = from[0] != '\0' ? from : "MAILER-DAEMON";

		if (sm->fullname != NULL && sm->fullname[0] != '\0') {
			buf_puts(&b, "From: \"");
			for (const char *p = sm->fullname; *p != '\0'; p++) {
				if ((unsigned char)*p < 0x20)
					continue;
				if (*p == '"' || *p == '\\')
					buf_puts(&b, "\\");
				buf_append(&b, p, 1);
			}
			buf_printf(&b, "\" <%s>\n", addr);
		} else {
			buf_printf(&b, "From: %s\n", addr);
		}
	}
	if (!m->has_date) {
		localtime_r(&now, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
		buf_printf(&b, "Date: %s\n", date);
	}
	if (!m->has_message_id) {
		gmtime_r(&now, &tm);
		strftime(date, sizeof(date), "%Y%m%d%H%M%S", &tm);
		buf_printf(&b, "Message-ID: <%s.%ld.%08x@%s>\n", date,
		    (long)getpid(), (unsigned)arc4random(), sm->domain);
	}
	return buf_steal(&b, NULL);
}

/* -bm: read the message, find its recipients, submit. */
static int
sm_deliver(struct sm *sm, const char *sock)
{
	struct sm_message m;
	struct sm_submit o;
	const char *why = NULL;
	char *sender, *prepend;
	int rc;

	if (sm_message_read(stdin, sm->dot_ends, &m, &why) < 0) {
		fprintf(stderr, "%s: %s; nothing was sent\n", sm->prog, why);
		return EX_DATAERR;
	}
	if (sm->extract && m.rcpt_fields != NULL &&
	    sm_addrlist_parse(m.rcpt_fields, sm_add_rcpt, sm, &why) < 0) {
		fprintf(stderr,
		    "%s: the recipient fields: %s; nothing was "
		    "sent\n",
		    sm->prog, why);
		sm_message_free(&m);
		return EX_DATAERR;
	}
	if (sm->nrcpts == 0) {
		fprintf(stderr, "%s: no recipients%s; nothing was sent\n",
		    sm->prog,
		    sm->extract ? " (none on the command line, no To, Cc or "
		                  "Bcc in the message)"
		                : " (give some, or -t to take them from the "
		                  "message)");
		sm_message_free(&m);
		return EX_USAGE;
	}
	if ((sender = sm_sender(sm)) == NULL ||
	    (prepend = sm_prepend(sm, &m, sender)) == NULL) {
		fprintf(stderr, "%s: out of memory\n", sm->prog);
		free(sender);
		sm_message_free(&m);
		return EX_OSERR;
	}
	memset(&o, 0, sizeof(o));
	o.socket = sock;
	o.sender = sender;
	o.rcpts = sm->rcpts;
	o.nrcpts = sm->nrcpts;
	o.notify = sm->notify;
	o.ret = sm->ret;
	o.envid = sm->envid;
	o.body_8bit = sm->body_8bit;
	o.verbose = sm->verbose;
	o.prepend = prepend;
	rc = sm_submit_run(sm->prog, &o, &m);
	sm_message_free(&m);
	free(prepend);
	free(sender);
	return rc;
}

int
main(int argc, char **argv)
{
	struct sm sm;
	char sock[4096], why[512], *base, progbuf[256];
	const char *key;
	int rc;

	memset(&sm, 0, sizeof(sm));
	snprintf(progbuf, sizeof(progbuf), "%s", argv[0]);
	base = basename(progbuf);
	sm.prog = "sluice-sendmail";
	sm.conf = SM_DEFAULT_CONF;
	sm.mode = 'm';
	sm.dot_ends = 1;
	if (strcmp(base, "mailq") == 0) {
		sm.prog = "mailq";
		sm.mode = 'p';
	} else if (strcmp(base, "newaliases") == 0) {
		sm.prog = "newaliases";
		sm.mode = 'i';
	} else if (strcmp(base, "sendmail") == 0) {
		sm.prog = "sendmail";
	}
	sm_options(&sm, argc, argv);
	if (sm.mode == 'i') {
		/* Programs call newaliases after editing /etc/aliases. */
		fprintf(stderr,
		    "%s: Sluice does not read /etc/aliases; nothing to do "
		    "(see sluice-sendmail(8))\n",
		    sm.prog);
		return 0;
	}
	sm_mail_domain(sm.domain, sizeof(sm.domain));
	for (int i = optind; i < argc; i++) {
		/* "a@x, b@y" in one argument is a list too */
		const char *perr = NULL;

		if (sm_addrlist_parse(argv[i], sm_add_rcpt, &sm, &perr) < 0) {
			fprintf(
			    stderr, "%s: \"%s\": %s\n", sm.prog, argv[i], perr);
			return EX_USAGE;
		}
	}
	key = sm.mode == 'p' ? "ControlSocket" : "LocalSubmissionSocket";
	if (conf_peek_transport(
	        sm.conf, key, sock, sizeof(sock), why, sizeof(why)) < 0) {
		fprintf(stderr, "%s: %s%s\n", sm.prog, why,
		    sm.mode == 'p' ? "" : "; nothing was sent");
		rc = EX_CONFIG;
	} else if (sock[0] == '\0') {
		fprintf(stderr,
		    "%s: local submission is off in %s: set [Transport] "
		    "LocalSubmissionSocket (see sluice-sendmail(8)); nothing "
		    "was sent\n",
		    sm.prog, sm.conf);
		rc = EX_CONFIG;
	} else if (sm.mode == 'p') {
		rc = sm_mailq(sm.prog, sock);
	} else if (sm.mode == 's') {
		rc = sm_submit_pipe(sm.prog, sock);
	} else {
		rc = sm_deliver(&sm, sock);
	}
	for (size_t i = 0; i < sm.nrcpts; i++)
		free(sm.rcpts[i]);
	free(sm.rcpts);
	free(sm.envid);
	return rc;
}
