/*
 * ctl_tracking.c - "sluicectl get-messagetrackinglog": Exchange's
 * Get-MessageTrackingLog over the message tracking log files
 * (LogDirectory/MessageTracking/MSGTRKyyyymmdd-N.LOG), read directly, as
 * the cmdlet reads Exchange's: the daemon need not run.
 *
 * Filters (all must hold): --sender, --recipients (any of a comma list),
 * --message-id, --internal-message-id, --event-id, --source, --reference
 * (equal, case-insensitive), --message-subject (a part of it, as
 * Exchange's), --start (from, inclusive) and --end (up to, exclusive),
 * both UTC.  At most --result-size rows (1000 by default, as Exchange;
 * "unlimited"), in file order, which is time order.
 *
 * Fast over a month of logs without an index:
 * - a file is skipped by the day in its name when it is outside
 *   [--start, --end);
 * - files are streamed in large blocks, never loaded whole, and lines are
 *   found with memchr;
 * - a row's date-time (the first field, ISO 8601, so text order is time
 *   order) is compared before anything else is parsed, and a row that
 *   does not contain the most selective literal given (message-id,
 *   internal id, sender, a recipient) anywhere is dropped before the CSV
 *   is parsed;
 * - columns are found by the file's own "#Fields:" line, so files written
 *   before a layout change are read too.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "ctl/ctl.h"

/* Read this much at a time; a longer row is skipped (and counted). */
#define TRK_BLOCK (1024 * 1024)
/* Exchange's default -ResultSize. */
#define TRK_RESULT_DEFAULT 1000
#define TRK_FILES_MAX 100000
#define TRK_FIELDS_MAX 64
#define TRK_RECIPIENTS_MAX 32

/* The columns the search reads or shows, by their log names. */
enum trk_col {
	TC_TIME,
	TC_CLIENT_IP,
	TC_CLIENT_HOST,
	TC_SERVER_IP,
	TC_SERVER_HOST,
	TC_SOURCE_CONTEXT,
	TC_CONNECTOR,
	TC_SOURCE,
	TC_EVENT,
	TC_INTERNAL_ID,
	TC_MESSAGE_ID,
	TC_NETWORK_ID,
	TC_RECIPIENT,
	TC_STATUS,
	TC_BYTES,
	TC_COUNT,
	TC_RELATED,
	TC_REFERENCE,
	TC_SUBJECT,
	TC_SENDER,
	TC_RETURN_PATH,
	TC_MESSAGE_INFO,
	TC_DIRECTIONALITY,
	TC_TENANT,
	TC_ORIG_CLIENT_IP,
	TC_ORIG_SERVER_IP,
	TC_CUSTOM,
	TC_TRAFFIC,
	TC_LOG_ID,
	TC_SCHEMA,
	TC_TLS,
	TC_NCOLS
};

/* Log field name, and the property name Get-MessageTrackingLog shows. */
static const struct {
	const char *field, *property;
} trk_cols[TC_NCOLS] = {
    [TC_TIME] = {"date-time", "Timestamp"},
    [TC_CLIENT_IP] = {"client-ip", "ClientIp"},
    [TC_CLIENT_HOST] = {"client-hostname", "ClientHostname"},
    [TC_SERVER_IP] = {"server-ip", "ServerIp"},
    [TC_SERVER_HOST] = {"server-hostname", "ServerHostname"},
    [TC_SOURCE_CONTEXT] = {"source-context", "SourceContext"},
    [TC_CONNECTOR] = {"connector-id", "ConnectorId"},
    [TC_SOURCE] = {"source", "Source"},
    [TC_EVENT] = {"event-id", "EventId"},
    [TC_INTERNAL_ID] = {"internal-message-id", "InternalMessageId"},
    [TC_MESSAGE_ID] = {"message-id", "MessageId"},
    [TC_NETWORK_ID] = {"network-message-id", "NetworkMessageId"},
    [TC_RECIPIENT] = {"recipient-address", "Recipients"},
    [TC_STATUS] = {"recipient-status", "RecipientStatus"},
    [TC_BYTES] = {"total-bytes", "TotalBytes"},
    [TC_COUNT] = {"recipient-count", "RecipientCount"},
    [TC_RELATED] = {"related-recipient-address", "RelatedRecipientAddress"},
    [TC_REFERENCE] = {"reference", "Reference"},
    [TC_SUBJECT] = {"message-subject", "MessageSubject"},
    [TC_SENDER] = {"sender-address", "Sender"},
    [TC_RETURN_PATH] = {"return-path", "ReturnPath"},
    [TC_MESSAGE_INFO] = {"message-info", "MessageInfo"},
    [TC_DIRECTIONALITY] = {"directionality", "Directionality"},
    [TC_TENANT] = {"tenant-id", "TenantId"},
    [TC_ORIG_CLIENT_IP] = {"original-client-ip", "OriginalClientIp"},
    [TC_ORIG_SERVER_IP] = {"original-server-ip", "OriginalServerIp"},
    [TC_CUSTOM] = {"custom-data", "CustomData"},
    [TC_TRAFFIC] = {"transport-traffic-type", "TransportTrafficType"},
    [TC_LOG_ID] = {"log-id", "LogId"},
    [TC_SCHEMA] = {"schema-version", "SchemaVersion"},
    [TC_TLS] = {"tls", "Tls"},
};

struct trk_search {
	const char *sender, *message_id, *internal_id, *event, *source;
	const char *reference, *subject;
	const char *recipients[TRK_RECIPIENTS_MAX];
	size_t nrecipients;
	char start[96], end[96]; /* canonical date-time, "" open */
	long long limit;         /* -1: unlimited */
	int list;                /* Format-List instead of the table */
	const char *needle;      /* a literal every match contains */
	/* the file being read */
	int col[TC_NCOLS]; /* field index, -1 when the file has none */
	long long shown, more, skipped_long;
};

/* "2026-12-03", "2026-12-03T10:00[:00[.123]][Z]", "2026-12-03 10:00" */
static int
trk_time(const char *in, char *out, size_t len)
{
	struct tm tm;
	const char *p;
	unsigned ms = 0;

	memset(&tm, 0, sizeof(tm));
	if ((p = strptime(in, "%Y-%m-%d", &tm)) == NULL)
		return -1;
	if (*p == 'T' || *p == ' ') {
		const char *q = strptime(p + 1, "%H:%M", &tm);

		if (q == NULL)
			return -1;
		p = q;
		if (*p == ':' && (q = strptime(p + 1, "%S", &tm)) != NULL)
			p = q;
		if (*p == '.') {
			char *e;

			ms = (unsigned)strtoul(p + 1, &e, 10);
			if (e == p + 1 || e - p - 1 > 3)
				return -1;
			for (long d = e - p - 1; d < 3; d++)
				ms *= 10;
			p = e;
		}
	}
	if (*p == 'Z')
		p++;
	/* the log's own form has 24 characters: four-digit years */
	if (*p != '\0' || tm.tm_year + 1900 < 1970 || tm.tm_year + 1900 > 9999)
		return -1;
	snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, ms);
	return 0;
}

/* The fields of one CSV row, unquoted in place; returns their number. */
static int
trk_split(char *line, char **f, int max)
{
	int n = 0;
	char *p = line;

	while (n < max) {
		char *w = p;

		f[n++] = w;
		if (*p == '"') {
			p++;
			for (;;) {
				if (*p == '\0')
					break;
				if (*p == '"' && p[1] == '"') {
					*w++ = '"';
					p += 2;
				} else if (*p == '"') {
					p++;
					break;
				} else {
					*w++ = *p++;
				}
			}
			while (*p != ',' && *p != '\0')
				p++;
		} else {
			while (*p != ',' && *p != '\0')
				w = ++p;
		}
		if (*p == '\0') {
			*w = '\0';
			break;
		}
		*w = '\0';
		p++;
	}
	return n;
}

static const char *
trk_get(const struct trk_search *s, char **f, int n, enum trk_col c)
{
	int i = s->col[c];

	return i >= 0 && i < n ? f[i] : "";
}

/* A Message-ID given without its angle brackets still matches. */
static int
trk_same_msgid(const char *want, const char *have)
{
	size_t hl = strlen(have);

	if (strcmp(want, have) == 0)
		return 1;
	return want[0] != '<' && hl >= 2 && have[0] == '<' &&
	       have[hl - 1] == '>' && strlen(want) == hl - 2 &&
	       strncmp(want, have + 1, hl - 2) == 0;
}

static int
trk_has_recipient(const struct trk_search *s, const char *field)
{
	/* Exchange lists several recipients of one row with ";". */
	for (const char *p = field; *p != '\0';) {
		size_t n = strcspn(p, ";");

		for (size_t i = 0; i < s->nrecipients; i++)
			if (strlen(s->recipients[i]) == n &&
			    strncasecmp(s->recipients[i], p, n) == 0)
				return 1;
		p += n;
		if (*p == ';')
			p++;
	}
	return 0;
}

static int
trk_match(const struct trk_search *s, char **f, int n)
{
	const char *v;

	if (s->event != NULL &&
	    strcasecmp(s->event, trk_get(s, f, n, TC_EVENT)) != 0)
		return 0;
	if (s->source != NULL &&
	    strcasecmp(s->source, trk_get(s, f, n, TC_SOURCE)) != 0)
		return 0;
	if (s->sender != NULL &&
	    strcasecmp(s->sender, trk_get(s, f, n, TC_SENDER)) != 0)
		return 0;
	if (s->internal_id != NULL &&
	    strcasecmp(s->internal_id, trk_get(s, f, n, TC_INTERNAL_ID)) != 0)
		return 0;
	if (s->reference != NULL &&
	    strcasecmp(s->reference, trk_get(s, f, n, TC_REFERENCE)) != 0)
		return 0;
	if (s->message_id != NULL &&
	    !trk_same_msgid(s->message_id, trk_get(s, f, n, TC_MESSAGE_ID)))
		return 0;
	if (s->nrecipients > 0 &&
	    !trk_has_recipient(s, trk_get(s, f, n, TC_RECIPIENT)))
		return 0;
	v = trk_get(s, f, n, TC_SUBJECT);
	if (s->subject != NULL && strcasestr(v, s->subject) == NULL)
		return 0;
	return 1;
}

static void
trk_show(struct trk_search *s, char **f, int n)
{
	if (s->list) {
		for (int c = 0; c < TC_NCOLS; c++)
			if (s->col[c] >= 0)
				printf("%-24s: %s\n", trk_cols[c].property,
				    trk_get(s, f, n, (enum trk_col)c));
		printf("\n");
		return;
	}
	printf("%-24s %-8s %-11s %-30s %-30s %s\n", trk_get(s, f, n, TC_TIME),
	    trk_get(s, f, n, TC_EVENT), trk_get(s, f, n, TC_SOURCE),
	    trk_get(s, f, n, TC_SENDER), trk_get(s, f, n, TC_RECIPIENT),
	    trk_get(s, f, n, TC_SUBJECT));
}

/* The "#Fields:" line names the columns of the rows after it. */
static void
trk_fields(struct trk_search *s, char *line)
{
	char *f[TRK_FIELDS_MAX];
	int n = trk_split(line, f, TRK_FIELDS_MAX);

	for (int c = 0; c < TC_NCOLS; c++) {
		s->col[c] = -1;
		for (int i = 0; i < n; i++)
			if (strcmp(f[i], trk_cols[c].field) == 0)
				s->col[c] = i;
	}
}

/* One line (NUL-terminated, without its line ending). */
static void
trk_line(struct trk_search *s, char *line, size_t len)
{
	char *f[TRK_FIELDS_MAX];
	int n;

	if (line[0] == '#') {
		if (strncmp(line, "#Fields: ", 9) == 0)
			trk_fields(s, line + 9);
		return;
	}
	/* date-time first: text order is time order */
	if (len < 24 || (s->start[0] && strncmp(line, s->start, 24) < 0) ||
	    (s->end[0] && strncmp(line, s->end, 24) >= 0))
		return;
	if (s->needle != NULL && strcasestr(line, s->needle) == NULL)
		return;
	n = trk_split(line, f, TRK_FIELDS_MAX);
	if (!trk_match(s, f, n))
		return;
	if (s->limit >= 0 && s->shown >= s->limit) {
		s->more++;
		return;
	}
	s->shown++;
	trk_show(s, f, n);
}

/* Stream one file in blocks; a line longer than a block is skipped. */
static int
trk_file(struct trk_search *s, const char *path, char *buf)
{
	size_t have = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), skipping = 0;
	ssize_t n;

	if (fd < 0) {
		fprintf(stderr, "sluicectl: %s: %s\n", path, strerror(errno));
		return -1;
	}
#ifdef POSIX_FADV_SEQUENTIAL
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
	for (int c = 0; c < TC_NCOLS; c++)
		s->col[c] = -1;
	while ((n = read(fd, buf + have, TRK_BLOCK - have)) > 0) {
		char *p = buf, *end = buf + have + (size_t)n, *nl;

		while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
			size_t len = (size_t)(nl - p);

			if (len > 0 && p[len - 1] == '\r')
				len--;
			p[len] = '\0';
			if (!skipping)
				trk_line(s, p, len);
			skipping = 0;
			p = nl + 1;
		}
		have = (size_t)(end - p);
		if (have == TRK_BLOCK) { /* one line fills the block */
			s->skipped_long++;
			skipping = 1;
			have = 0;
		} else {
			memmove(buf, p, have);
		}
		if (s->limit >= 0 && s->more > 0)
			break; /* enough, and we know there is more */
	}
	if (have > 0 && !skipping && (s->limit < 0 || s->more == 0)) {
		buf[have] = '\0';
		trk_line(s, buf, have);
	}
	close(fd);
	return 0;
}

struct trk_name {
	char *path;
	char key[24]; /* yyyymmdd, then the sequence number, sortable */
};

static int
trk_name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct trk_name *)a)->key,
	    ((const struct trk_name *)b)->key);
}

/*
 * The log files in dir, by day and sequence, without those whose day is
 * outside the search (a file holds the rows of its UTC day).
 */
static int
trk_list(const struct trk_search *s, const char *dir, struct trk_name **out,
    size_t *count)
{
	struct trk_name *names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d = opendir(dir);

	*out = NULL;
	*count = 0;
	if (d == NULL) {
		fprintf(stderr, "sluicectl: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL && n < TRK_FILES_MAX) {
		const char *nm = de->d_name;
		char day[11], *e;
		unsigned long seq;

		if (strncmp(nm, "MSGTRK", 6) != 0 || strlen(nm) < 18 ||
		    strspn(nm + 6, "0123456789") != 8 || nm[14] != '-')
			continue;
		seq = strtoul(nm + 15, &e, 10);
		if (e == nm + 15 || strcmp(e, ".LOG") != 0)
			continue;
		/* the day's first and last moments against the range */
		snprintf(day, sizeof(day), "%.4s-%.2s-%.2s", nm + 6, nm + 10,
		    nm + 12);
		if (s->end[0] && strncmp(day, s->end, 10) > 0)
			continue;
		if (s->end[0] && strncmp(day, s->end, 10) == 0 &&
		    strcmp(s->end + 10, "T00:00:00.000Z") == 0)
			continue;
		if (s->start[0] && strncmp(day, s->start, 10) < 0)
			continue;
		if (n == cap) {
			size_t nc = cap ? 2 * cap : 64;
			struct trk_name *p = realloc(names, nc * sizeof(*p));

			if (p == NULL)
				break;
			names = p;
			cap = nc;
		}
		if (asprintf(&names[n].path, "%s/%s", dir, nm) < 0)
			break;
		snprintf(names[n].key, sizeof(names[n].key), "%.8s%010lu",
		    nm + 6, seq);
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), trk_name_cmp);
	*out = names;
	*count = n;
	return 0;
}

static void
trk_usage(void)
{
	fprintf(stderr,
	    "usage: sluicectl get-messagetrackinglog [--sender ADDR] "
	    "[--recipients ADDR[,ADDR...]]\n"
	    "    [--message-id ID] [--internal-message-id ID] [--event-id "
	    "EVENT]\n"
	    "    [--source SOURCE] [--reference ID] [--message-subject TEXT]\n"
	    "    [--start TIME] [--end TIME] [--result-size N|unlimited]\n"
	    "    [--list] [--path DIR]\n"
	    "TIME: 2026-12-03 or 2026-12-03T10:00[:00], UTC\n");
}

/* Split --recipients "a,b" (may be given more than once). */
static int
trk_recipients(struct trk_search *s, char *list)
{
	for (char *p = list, *comma; p != NULL; p = comma) {
		if ((comma = strchr(p, ',')) != NULL)
			*comma++ = '\0';
		while (*p == ' ')
			p++;
		if (*p == '\0')
			continue;
		if (s->nrecipients == TRK_RECIPIENTS_MAX)
			return -1;
		s->recipients[s->nrecipients++] = p;
	}
	return 0;
}

/* A literal that every matching row contains, to drop rows unparsed. */
static const char *
trk_needle(const struct trk_search *s)
{
	const char *c[] = {s->internal_id, s->message_id, s->sender,
	    s->nrecipients == 1 ? s->recipients[0] : NULL, s->reference};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		const char *v = c[i];

		/* only what the log writes as it is (no quote, no control) */
		if (v == NULL || v[0] == '\0' || strchr(v, '"') != NULL)
			continue;
		for (const char *p = v; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				v = NULL;
		if (v != NULL)
			return v;
	}
	return NULL;
}

int
ctl_get_messagetrackinglog(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"sender", required_argument, NULL, 's'},
	    {"recipients", required_argument, NULL, 'r'},
	    {"message-id", required_argument, NULL, 'm'},
	    {"internal-message-id", required_argument, NULL, 'i'},
	    {"event-id", required_argument, NULL, 'e'},
	    {"source", required_argument, NULL, 'S'},
	    {"reference", required_argument, NULL, 'R'},
	    {"message-subject", required_argument, NULL, 'j'},
	    {"start", required_argument, NULL, 'a'},
	    {"end", required_argument, NULL, 'b'},
	    {"result-size", required_argument, NULL, 'n'},
	    {"list", no_argument, NULL, 'l'},
	    {"path", required_argument, NULL, 'p'},
	    {NULL, 0, NULL, 0},
	};
	struct trk_search s;
	struct trk_name *names;
	char **av = argv - 1, dir[4200] = "", *buf;
	int ac = argc + 1, ch, rc = 0;
	size_t nnames;

	memset(&s, 0, sizeof(s));
	s.limit = TRK_RESULT_DEFAULT;
	optind = 0;
	while ((ch = getopt_long(ac, av, "", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			s.sender = optarg;
			break;
		case 'r':
			if (trk_recipients(&s, optarg) < 0) {
				fprintf(stderr,
				    "sluicectl: at most %d "
				    "recipients\n",
				    TRK_RECIPIENTS_MAX);
				return 2;
			}
			break;
		case 'm':
			s.message_id = optarg;
			break;
		case 'i':
			s.internal_id = optarg;
			break;
		case 'e':
			s.event = optarg;
			break;
		case 'S':
			s.source = optarg;
			break;
		case 'R':
			s.reference = optarg;
			break;
		case 'j':
			s.subject = optarg;
			break;
		case 'a':
		case 'b':
			if (trk_time(optarg, ch == 'a' ? s.start : s.end,
			        sizeof(s.start)) < 0) {
				fprintf(stderr,
				    "sluicectl: --%s %s: not a date and time "
				    "(2026-12-03 or 2026-12-03T10:00:00, "
				    "UTC)\n",
				    ch == 'a' ? "start" : "end", optarg);
				return 2;
			}
			break;
		case 'n': {
			char *e;

			if (strcasecmp(optarg, "unlimited") == 0) {
				s.limit = -1;
				break;
			}
			errno = 0;
			s.limit = strtoll(optarg, &e, 10);
			if (errno != 0 || *e != '\0' || e == optarg ||
			    s.limit < 1) {
				fprintf(stderr,
				    "sluicectl: --result-size %s: a number "
				    "from 1, or unlimited\n",
				    optarg);
				return 2;
			}
			break;
		}
		case 'l':
			s.list = 1;
			break;
		case 'p':
			snprintf(dir, sizeof(dir), "%s", optarg);
			break;
		default:
			trk_usage();
			return 2;
		}
	}
	if (optind != ac) {
		trk_usage();
		return 2;
	}
	if (dir[0] == '\0') {
		struct conf *c = conf_load(ctl->conf_path, stderr);

		if (c == NULL)
			return 1;
		snprintf(dir, sizeof(dir), "%s/MessageTracking",
		    c->transport.log_directory);
		conf_free(c);
	}
	s.needle = trk_needle(&s);
	if ((buf = malloc(TRK_BLOCK + 1)) == NULL)
		return 1;
	if (trk_list(&s, dir, &names, &nnames) < 0)
		rc = 1;
	if (!s.list)
		printf("%-24s %-8s %-11s %-30s %-30s %s\n", "Timestamp",
		    "EventId", "Source", "Sender", "Recipients",
		    "MessageSubject");
	for (size_t i = 0; i < nnames; i++) {
		if (s.more == 0 && trk_file(&s, names[i].path, buf) < 0)
			rc = 1;
		free(names[i].path);
	}
	free(names);
	free(buf);
	if (s.more > 0)
		fprintf(stderr,
		    "WARNING: there are more results; only the first %lld are "
		    "shown. Use --result-size unlimited (or a number) to see "
		    "more.\n",
		    s.limit);
	if (s.skipped_long > 0)
		fprintf(stderr,
		    "sluicectl: %lld rows longer than %d bytes were skipped\n",
		    s.skipped_long, TRK_BLOCK);
	fflush(stdout);
	return rc;
}
