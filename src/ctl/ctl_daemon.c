/*
 * ctl_daemon.c - sluicectl commands about the running daemon as a whole,
 * over the control socket: "status", "reload" (SIGHUP, answered with what
 * changed) and "logs reopen" (SIGUSR1).  Which daemon is the one whose
 * ControlSocket the configuration names: never a process found by name.
 */
#include <stdio.h>
#include <string.h>

#include "conf/conf_peek.h"
#include "ctl/ctl.h"
#include "ctl/ctl_request.h"
#include "util/buf.h"

/*
 * Ask; print the answer; 1 when it carries "error: " lines.  The socket
 * is found without loading the whole file: a reload must be possible, and
 * report the errors, just after the file was edited into a broken one.
 */
static int
ctl_daemon_ask(struct ctl *ctl, const char *request)
{
	struct buf ans;
	char why[512], sock[4096];
	int rc = 1;

	if (conf_peek_transport(ctl->conf_path, "ControlSocket", sock,
	        sizeof(sock), why, sizeof(why)) < 0) {
		fprintf(stderr, "sluicectl: %s\n", why);
		return 1;
	}
	buf_init(&ans, CTL_REQUEST_ANSWER_MAX);
	if (ctl_request(sock, request, &ans, why, sizeof(why)) < 0) {
		fprintf(stderr, "sluicectl: %s (is sluiced running?)\n", why);
	} else {
		fwrite(ans.data, 1, ans.len, stdout);
		rc = strncmp(ans.data, "error: ", 7) == 0 ||
		             strstr(ans.data, "\nerror: ") != NULL
		         ? 1
		         : 0;
	}
	buf_free(&ans);
	return rc;
}

static int
ctl_daemon_noargs(struct ctl *ctl, const char *verb, int argc)
{
	if (argc != 0) {
		fprintf(stderr, "usage: sluicectl %s\n", verb);
		return 2;
	}
	return ctl_daemon_ask(ctl, verb);
}

int
ctl_status(struct ctl *ctl, int argc, char **argv)
{
	(void)argv;
	return ctl_daemon_noargs(ctl, "status", argc);
}

int
ctl_reload(struct ctl *ctl, int argc, char **argv)
{
	(void)argv;
	return ctl_daemon_noargs(ctl, "reload", argc);
}

int
ctl_logs_reopen(struct ctl *ctl, int argc, char **argv)
{
	(void)argv;
	return ctl_daemon_noargs(ctl, "logs reopen", argc);
}
