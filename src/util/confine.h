/*
 * confine.h - confine the daemon with PR_SET_NO_NEW_PRIVS and, where the
 * kernel has it, a Landlock ruleset: writes only where allowed, reads only
 * where allowed, never an execve.
 */
#ifndef SLUICE_CONFINE_H
#define SLUICE_CONFINE_H

enum confine_mode {
	CONFINE_READ,   /* read files and list directories beneath */
	CONFINE_WRITE,  /* and create, write, rename and remove beneath */
	CONFINE_SOCKET, /* read, and make and remove sockets (a control dir) */
};

struct confine {
	int ruleset; /* -1: Landlock unavailable, confine_apply() degrades */
	int abi;
	unsigned long long handled;
	unsigned rules;
};

/* Start a ruleset; returns the Landlock ABI, or 0 when there is none. */
int confine_begin(struct confine *);
/*
 * Allow path (a directory, or a file) in mode.  A path that does not
 * exist is skipped and returns -1 (the caller says what it will miss).
 */
int confine_allow(struct confine *, const char *path, enum confine_mode);
/*
 * PR_SET_NO_NEW_PRIVS, then the ruleset on this thread and every thread
 * it creates later: call it before starting threads.  Returns 0, or -1
 * with why set (fatal for the caller: it asked for confinement).
 */
int confine_apply(struct confine *, const char **why);

#endif
