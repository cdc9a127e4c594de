/*
 * auth.h - checking SMTP AUTH credentials (RFC 4954) against a users
 * file of crypt(3) hashes, one "user:hash" per line (yescrypt "$y$" or
 * SHA-512 "$6$", as made by mkpasswd).
 */
#ifndef SLUICE_AUTH_H
#define SLUICE_AUTH_H

#include <stddef.h>

/* 1 when user and password match an entry of the file, else 0. */
int auth_check(const char *users_file, const char *user, const char *password);

#endif
