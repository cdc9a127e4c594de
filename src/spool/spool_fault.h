/*
 * spool_fault.h - fault injection for the queue's storage (tests only).
 *
 * With SLUICE_FAULT=write or SLUICE_FAULT=fsync in the environment, the
 * queue opens its database through a shim SQLite VFS that delegates to the
 * real "unix" VFS but fails every write (SQLITE_IOERR_WRITE) or every sync
 * (SQLITE_IOERR_FSYNC) once the database is initialised.  The failure thus
 * happens where a real disk error would, and the tests can show that it
 * becomes a 451 with nothing stored.  The body files of large messages
 * (spool_body.c) ask spool_fault_file() before each write and sync, so the
 * same variable fails them too.
 */
#ifndef SLUICE_SPOOL_FAULT_H
#define SLUICE_SPOOL_FAULT_H

/* VFS name to open the database with: NULL (default) without a fault. */
const char *spool_fault_vfs(void);
/*
 * Start failing now: "write" or "fsync"; "none" stops; NULL applies what
 * SLUICE_FAULT asked for (the queue calls it once its schema exists).
 */
void spool_fault_arm(const char *kind);
/* Should this body file operation ("write", "fsync") fail now? */
int spool_fault_file(const char *op);

#endif
