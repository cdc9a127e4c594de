/*
 * ctl_tlsrpt.c - `sluicectl tls-report [--domain D] [--date DAY]
 * [--send]`: the SMTP TLS report (RFC 8460) the daemon would send, asked
 * over the control socket (the last minute's sessions are still in its
 * memory).  The answer is the JSON of src/tlsrpt/tlsrpt.c, one object
 * per domain; with --send the daemon sends them now (as its daily run
 * would) and says what became of each address.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"

#define CTL_TLSRPT_REQUEST_MAX 510

int
ctl_tls_report(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"domain", required_argument, NULL, 'd'},
	    {"date", required_argument, NULL, 't'},
	    {"send", no_argument, NULL, 's'},
	    {NULL, 0, NULL, 0},
	};
	char req[CTL_TLSRPT_REQUEST_MAX + 1] = "tls-report";
	int ch, n;

	optind = 0; /* glibc: start over */
	while ((ch = getopt_long(argc + 1, argv - 1, "", opts, NULL)) != -1) {
		const char *key = ch == 'd' ? "domain" : "date";

		if (ch == 's') {
			n = (int)strlen(req);
			snprintf(req + n, sizeof(req) - (size_t)n, "\tsend");
			continue;
		}
		if ((ch != 'd' && ch != 't') ||
		    strpbrk(optarg, "\t\r\n ") != NULL) {
			fprintf(stderr, "usage: sluicectl tls-report [--domain "
			                "D] [--date YYYY-MM-DD] [--send]\n");
			return 2;
		}
		n = (int)strlen(req);
		if (snprintf(req + n, sizeof(req) - (size_t)n, "\t%s=%s", key,
		        optarg) >= (int)(sizeof(req) - (size_t)n)) {
			fprintf(stderr, "sluicectl: argument too long\n");
			return 2;
		}
	}
	if (optind != argc + 1) {
		fprintf(stderr,
		    "usage: sluicectl tls-report [--domain D] [--date "
		    "YYYY-MM-DD] [--send]\n");
		return 2;
	}
	return ctl_ask(ctl, req);
}
