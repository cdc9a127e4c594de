/*
 * version.h - the version of every Sluice program (--version).  The
 * Debian changelog's first entry carries the same number; a test checks
 * that the two agree.
 */
#ifndef SLUICE_VERSION_H
#define SLUICE_VERSION_H

#define SLUICE_VERSION "0.1.0"

#endif
