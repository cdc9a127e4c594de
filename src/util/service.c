/*
 * service.c - sluiced and the service manager (see service.h).
 *
 * Readiness means the same thing in both managed modes: the receive
 * connectors are bound, the queue is open and the privileges are dropped.
 * systemd learns it from sd_notify(READY=1) (Type=notify), an init script
 * from the exit of the process it started, which waits on a pipe until
 * the detached child says so: `sluiced -p FILE && next-step` is ordered
 * correctly, and a daemon that cannot start makes the command fail.
 *
 * The PID file is opened with O_NOFOLLOW: its directory (/run/sluice)
 * belongs to the run-time user, and root must not be led to write
 * through a link planted there.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "util/log.h"
#include "util/service.h"

static int service_ready_fd = -1; /* the waiting parent's pipe */
static int service_detached;
static char *service_pid_path;
static pid_t service_pid_owner;

enum service_mode
service_mode_pick(int foreground, const char *pidfile)
{
	const char *notify = getenv("NOTIFY_SOCKET");
	const char *invocation = getenv("INVOCATION_ID");

	if (foreground)
		return SERVICE_FOREGROUND;
	if (notify != NULL && notify[0] != '\0')
		return SERVICE_SYSTEMD;
	if (invocation != NULL && invocation[0] != '\0' && pidfile == NULL)
		return SERVICE_SYSTEMD;
	return SERVICE_DETACHED;
}

void
service_detach(void)
{
	int p[2];
	pid_t pid;
	char ok;
	ssize_t n;

	if (pipe2(p, O_CLOEXEC) < 0)
		log_fatal("cannot detach: pipe: %s", strerror(errno));
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) < 0)
		log_fatal("cannot detach: fork: %s", strerror(errno));
	if (pid > 0) {
		close(p[1]);
		do
			n = read(p[0], &ok, 1);
		while (n < 0 && errno == EINTR);
		if (n == 1)
			_exit(0);
		/* The child died during start; it said why on stderr. */
		waitpid(pid, NULL, WNOHANG);
		_exit(1);
	}
	close(p[0]);
	service_ready_fd = p[1];
	service_detached = 1;
	if (setsid() < 0)
		log_fatal("cannot detach: setsid: %s", strerror(errno));
	/* Hold no mount point busy; every configured path is absolute. */
	if (chdir("/") < 0)
		log_fatal("cannot detach: chdir /: %s", strerror(errno));
}

/* A PID file naming a live sluiced; a reused PID is another program. */
static long
service_pid_running(const char *path)
{
	char text[32], proc[64], comm[32];
	FILE *fp;
	long pid;
	char *end;
	size_t n;

	if ((fp = fopen(path, "r")) == NULL)
		return 0;
	n = fread(text, 1, sizeof(text) - 1, fp);
	fclose(fp);
	text[n] = '\0';
	pid = strtol(text, &end, 10);
	if (end == text || pid <= 1 || pid == (long)getpid())
		return 0;
	if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
		return 0;
	snprintf(proc, sizeof(proc), "/proc/%ld/comm", pid);
	if ((fp = fopen(proc, "r")) == NULL)
		return pid; /* no /proc: believe the file */
	n = fread(comm, 1, sizeof(comm) - 1, fp);
	fclose(fp);
	comm[n] = '\0';
	return strncmp(comm, "sluiced", 7) == 0 ? pid : 0;
}

static void
service_pidfile_atexit(void)
{
	service_pidfile_remove();
}

int
service_pidfile(const char *path, long *running)
{
	char text[32];
	int fd, len;

	*running = service_pid_running(path);
	if (*running > 0) {
		errno = EEXIST;
		return -1;
	}
	fd = open(
	    path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	len = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	if (write(fd, text, (size_t)len) != len) {
		int e = errno;

		close(fd);
		unlink(path);
		errno = e != 0 ? e : EIO;
		return -1;
	}
	close(fd);
	if (service_pid_path == NULL) {
		if ((service_pid_path = strdup(path)) == NULL)
			return 0; /* written; it just stays behind at exit */
		atexit(service_pidfile_atexit);
	}
	service_pid_owner = getpid();
	return 0;
}

void
service_pidfile_remove(void)
{
	/* After the user switch the directory may no longer be ours. */
	if (service_pid_path != NULL && service_pid_owner == getpid())
		unlink(service_pid_path);
	service_pid_owner = 0;
}

void
service_ready(const char *status)
{
	int null;

	sd_notifyf(
	    0, "READY=1\nSTATUS=%s\nMAINPID=%ld", status, (long)getpid());
	if (service_ready_fd >= 0) {
		if (write(service_ready_fd, "R", 1) != 1)
			log_warn("cannot tell the starting process we are "
			         "ready: %s",
			    strerror(errno));
		close(service_ready_fd);
		service_ready_fd = -1;
	}
	if (service_detached && (null = open("/dev/null", O_RDWR)) >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
}

void
service_reloading(void)
{
	sd_notify(0, "RELOADING=1");
}

void
service_reloaded(const char *status)
{
	sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void
service_stopping(void)
{
	sd_notify(0, "STOPPING=1\nSTATUS=draining");
}
