/*
 * fnv.h - the FNV-1a hash (Fowler, Noll, Vo), 32 and 64 bits.
 *
 * What Sluice hashes: table slots (per-address counters, delivery queues,
 * TLS sessions, the PTR cache), a DSN's MIME boundary and the spool's
 * record checksum.  None of them faces an attacker who could choose
 * collisions to any effect beyond a longer chain, so a fast, simple hash
 * serves; the checksum is stored, so its function must never change.
 */
#ifndef SLUICE_FNV_H
#define SLUICE_FNV_H

#include <stddef.h>
#include <stdint.h>

#define FNV_32_INIT 2166136261u             /* the offset basis */
#define FNV_64_INIT 14695981039346656037ull /* the offset basis */

/* h, continued over n bytes at p (start with FNV_32_INIT). */
uint32_t fnv_32(uint32_t h, const void *p, size_t n);
/* A NUL-terminated string. */
uint32_t fnv_32_str(const char *s);
/* A string with ASCII letters lower-cased (for case-blind names). */
uint32_t fnv_32_lower(const char *s);
/* n bytes at p, from FNV_64_INIT. */
uint64_t fnv_64(const void *p, size_t n);

#endif
