/*
 * ctl_posture.c - `sluicectl get-tlsposture [DOMAIN]`: what the daemon
 * recorded of each partner's TLS (Exchange Online's TLS report), asked
 * over the control socket because the counts of the last minute are
 * still in the daemon's memory and the effective policy is its live
 * configuration's.  The answer is src/status/posture_view.c's.
 */
#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"

/* A domain or a connector name: one line, no tab. */
#define CTL_POSTURE_NAME_MAX 255

int
ctl_get_tlsposture(struct ctl *ctl, int argc, char **argv)
{
	char req[300];

	if (argc > 1 ||
	    (argc == 1 &&
	        (argv[0][0] == '-' || strlen(argv[0]) > CTL_POSTURE_NAME_MAX ||
	            strpbrk(argv[0], "\t\r\n") != NULL))) {
		fprintf(stderr, "usage: sluicectl get-tlsposture [DOMAIN]\n");
		return 2;
	}
	snprintf(req, sizeof(req), "get-tlsposture%s%s", argc ? " " : "",
	    argc ? argv[0] : "");
	return ctl_ask(ctl, req);
}
