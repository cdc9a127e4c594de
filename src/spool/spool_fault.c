/*
 * spool_fault.c - a delegating SQLite VFS that can fail writes or syncs
 * (see spool_fault.h).  Every method forwards to the real file; only
 * xWrite and xSync look at the armed fault.
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "spool/spool_fault.h"

#define FAULT_VFS_NAME "sluice-fault"

enum fault_kind { FAULT_NONE, FAULT_WRITE, FAULT_SYNC };

static enum fault_kind fault_wanted; /* from the environment */
static volatile enum fault_kind fault_armed;
static sqlite3_vfs fault_vfs;
static sqlite3_vfs *fault_real;

struct fault_file {
	sqlite3_file base;
	sqlite3_file *real; /* follows this struct in the same allocation */
};

#define REAL(f) (((struct fault_file *)(f))->real)

static int
fault_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}

static int
fault_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), p, n, off);
}

static int
fault_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
	if (fault_armed == FAULT_WRITE)
		return SQLITE_IOERR_WRITE;
	return REAL(f)->pMethods->xWrite(REAL(f), p, n, off);
}

static int
fault_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int
fault_sync(sqlite3_file *f, int flags)
{
	if (fault_armed == FAULT_SYNC)
		return SQLITE_IOERR_FSYNC;
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int
fault_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int
fault_lock(sqlite3_file *f, int lock)
{
	return REAL(f)->pMethods->xLock(REAL(f), lock);
}

static int
fault_unlock(sqlite3_file *f, int lock)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), lock);
}

static int
fault_check_lock(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int
fault_file_control(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int
fault_sector_size(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int
fault_device_chars(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int
fault_shm_map(sqlite3_file *f, int pg, int sz, int extend, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, extend, pp);
}

static int
fault_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}

static void
fault_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int
fault_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static const sqlite3_io_methods fault_io = {
    .iVersion = 2,
    .xClose = fault_close,
    .xRead = fault_read,
    .xWrite = fault_write,
    .xTruncate = fault_truncate,
    .xSync = fault_sync,
    .xFileSize = fault_file_size,
    .xLock = fault_lock,
    .xUnlock = fault_unlock,
    .xCheckReservedLock = fault_check_lock,
    .xFileControl = fault_file_control,
    .xSectorSize = fault_sector_size,
    .xDeviceCharacteristics = fault_device_chars,
    .xShmMap = fault_shm_map,
    .xShmLock = fault_shm_lock,
    .xShmBarrier = fault_shm_barrier,
    .xShmUnmap = fault_shm_unmap,
};

static int
fault_open(
    sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
	struct fault_file *ff = (struct fault_file *)f;
	int rc;

	(void)vfs;
	ff->real = (sqlite3_file *)(ff + 1);
	rc = fault_real->xOpen(fault_real, name, ff->real, flags, out);
	/* Only a successfully opened file gets methods (SQLite's rule). */
	f->pMethods =
	    rc == SQLITE_OK && ff->real->pMethods != NULL ? &fault_io : NULL;
	return rc;
}

static int
fault_delete(sqlite3_vfs *v, const char *name, int sync)
{
	(void)v;
	return fault_real->xDelete(fault_real, name, sync);
}

static int
fault_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
	(void)v;
	return fault_real->xAccess(fault_real, name, flags, out);
}

static int
fault_full_path(sqlite3_vfs *v, const char *name, int n, char *out)
{
	(void)v;
	return fault_real->xFullPathname(fault_real, name, n, out);
}

static int
fault_randomness(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	return fault_real->xRandomness(fault_real, n, out);
}

static int
fault_sleep(sqlite3_vfs *v, int us)
{
	(void)v;
	return fault_real->xSleep(fault_real, us);
}

static int
fault_current_time(sqlite3_vfs *v, double *out)
{
	(void)v;
	return fault_real->xCurrentTime(fault_real, out);
}

static int
fault_last_error(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	return fault_real->xGetLastError(fault_real, n, out);
}

static int
fault_current_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
	(void)v;
	return fault_real->xCurrentTimeInt64(fault_real, out);
}

static int
fault_register(void)
{
	if (fault_real != NULL)
		return 0;
	if ((fault_real = sqlite3_vfs_find(NULL)) == NULL)
		return -1;
	memset(&fault_vfs, 0, sizeof(fault_vfs));
	fault_vfs.iVersion = 2;
	fault_vfs.szOsFile =
	    (int)sizeof(struct fault_file) + fault_real->szOsFile;
	fault_vfs.mxPathname = fault_real->mxPathname;
	fault_vfs.zName = FAULT_VFS_NAME;
	fault_vfs.xOpen = fault_open;
	fault_vfs.xDelete = fault_delete;
	fault_vfs.xAccess = fault_access;
	fault_vfs.xFullPathname = fault_full_path;
	fault_vfs.xRandomness = fault_randomness;
	fault_vfs.xSleep = fault_sleep;
	fault_vfs.xCurrentTime = fault_current_time;
	fault_vfs.xGetLastError = fault_last_error;
	fault_vfs.xCurrentTimeInt64 = fault_current_time64;
	return sqlite3_vfs_register(&fault_vfs, 0) == SQLITE_OK ? 0 : -1;
}

const char *
spool_fault_vfs(void)
{
	const char *env = getenv("SLUICE_FAULT");

	/* Nothing fails until the queue is initialised and arms the fault;
	 * the body files (spool_fault_file) follow the same variable. */
	fault_armed = FAULT_NONE;
	fault_wanted = FAULT_NONE;
	if (env == NULL ||
	    (strcmp(env, "write") != 0 && strcmp(env, "fsync") != 0))
		return NULL;
	fault_wanted = strcmp(env, "write") == 0 ? FAULT_WRITE : FAULT_SYNC;
	return fault_register() == 0 ? FAULT_VFS_NAME : NULL;
}

void
spool_fault_arm(const char *kind)
{
	if (kind == NULL) {
		fault_armed = fault_wanted;
		return;
	}
	if (fault_register() < 0)
		return;
	fault_armed = strcmp(kind, "write") == 0   ? FAULT_WRITE
	              : strcmp(kind, "fsync") == 0 ? FAULT_SYNC
	                                           : FAULT_NONE;
}

int
spool_fault_file(const char *op)
{
	enum fault_kind k = fault_armed;

	return (k == FAULT_WRITE && strcmp(op, "write") == 0) ||
	       (k == FAULT_SYNC && strcmp(op, "fsync") == 0);
}
