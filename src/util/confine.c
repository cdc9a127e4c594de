/*
 * confine.c - the daemon's sandbox: PR_SET_NO_NEW_PRIVS and Landlock.
 *
 * sluiced handles hostile input (SMTP sessions, TLS, DNS answers, next
 * hops' replies).  Whatever a bug there could be made to do, the kernel
 * then refuses: creating, writing or removing files outside the queue,
 * log and mailbox directories, reading outside the few trees the daemon
 * needs (system libraries and /etc, its configuration and certificates,
 * which SIGHUP reloads), and executing any program.  No privilege can be
 * gained through execve either (NO_NEW_PRIVS).
 *
 * Landlock (Linux 5.13 and later) is used up to the ABI the kernel
 * offers: REFER (ABI 2, renames across directories, which Maildir's
 * tmp/ -> new/ needs) and TRUNCATE (ABI 3) are handled when known.  On a
 * kernel without Landlock (ENOSYS, EOPNOTSUPP: not built, or not enabled
 * at boot) the daemon runs unconfined but for NO_NEW_PRIVS, and says so
 * once; that is the "degrade quietly" the design asks for.
 *
 * Rules are attached to the inodes the paths name when the ruleset is
 * made: directories are allowed, not files, so that a certificate renewed
 * by rename (a new inode) is still readable.  A ruleset applies to the
 * calling thread and the threads it creates later, so it is applied
 * before the spool, the queue manager and the resolver start theirs.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/confine.h"
#include "util/log.h"

#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#endif

#define CONFINE_FS_V1                                                          \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |          \
	    LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |       \
	    LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |   \
	    LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |       \
	    LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |       \
	    LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |     \
	    LANDLOCK_ACCESS_FS_MAKE_SYM)

#define CONFINE_READ_BITS                                                      \
	(LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define CONFINE_WRITE_BITS                                                     \
	(CONFINE_READ_BITS | LANDLOCK_ACCESS_FS_WRITE_FILE |                   \
	    LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |   \
	    LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |        \
	    LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_SYM |       \
	    LANDLOCK_ACCESS_FS_REFER | LANDLOCK_ACCESS_FS_TRUNCATE)
#define CONFINE_SOCKET_BITS                                                    \
	(CONFINE_READ_BITS | LANDLOCK_ACCESS_FS_MAKE_SOCK |                    \
	    LANDLOCK_ACCESS_FS_REMOVE_FILE)
/* What a rule on a file (not a directory) may carry. */
#define CONFINE_FILE_BITS                                                      \
	(LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE |        \
	    LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_EXECUTE)

int
confine_begin(struct confine *cf)
{
	struct landlock_ruleset_attr attr;
	long abi;

	memset(cf, 0, sizeof(*cf));
	cf->ruleset = -1;
	abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
	    LANDLOCK_CREATE_RULESET_VERSION);
	if (abi <= 0)
		return 0;
	cf->abi = (int)abi;
	cf->handled = CONFINE_FS_V1;
	if (abi >= 2)
		cf->handled |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		cf->handled |= LANDLOCK_ACCESS_FS_TRUNCATE;
	memset(&attr, 0, sizeof(attr));
	attr.handled_access_fs = cf->handled;
	cf->ruleset =
	    (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (cf->ruleset < 0) {
		log_warn("Landlock ruleset: %s; running without it",
		    strerror(errno));
		cf->abi = 0;
		return 0;
	}
	return cf->abi;
}

int
confine_allow(struct confine *cf, const char *path, enum confine_mode mode)
{
	struct landlock_path_beneath_attr pb;
	struct stat st;
	unsigned long long bits = mode == CONFINE_WRITE    ? CONFINE_WRITE_BITS
	                          : mode == CONFINE_SOCKET ? CONFINE_SOCKET_BITS
	                                                   : CONFINE_READ_BITS;
	int fd, rc;

	if (cf->ruleset < 0)
		return 0;
	if ((fd = open(path, O_PATH | O_CLOEXEC)) < 0)
		return -1;
	if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
		bits &= CONFINE_FILE_BITS;
	memset(&pb, 0, sizeof(pb));
	pb.allowed_access = bits & cf->handled;
	pb.parent_fd = fd;
	rc = (int)syscall(SYS_landlock_add_rule, cf->ruleset,
	    LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
	close(fd);
	if (rc < 0) {
		log_warn("Landlock rule for %s: %s", path, strerror(errno));
		return -1;
	}
	cf->rules++;
	return 0;
}

int
confine_apply(struct confine *cf, const char **why)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		*why = "prctl(PR_SET_NO_NEW_PRIVS) failed";
		return -1;
	}
	if (cf->ruleset < 0) {
		log_info("Landlock is not available on this kernel: the daemon "
		         "is not confined to its directories");
		return 0;
	}
	if (syscall(SYS_landlock_restrict_self, cf->ruleset, 0) < 0) {
		close(cf->ruleset);
		cf->ruleset = -1;
		*why = "landlock_restrict_self failed";
		return -1;
	}
	close(cf->ruleset);
	cf->ruleset = -1;
	log_info(
	    "confined with Landlock (ABI %d, %u rules)", cf->abi, cf->rules);
	return 0;
}
