/*
 * auth.c - password checks for SMTP AUTH (see auth.h).
 *
 * The file is read at each attempt, so adding a user needs no reload;
 * attempts are rate-limited by the session, which bounds the cost.  This
 * runs on the worker threads of auth_pool.c, never on the event loop: it
 * keeps no state between calls and its hash scratch space is its own.
 *
 * Timing: an unknown user costs what a known one costs.  The whole file
 * is always read, and an unknown user's password is hashed with the
 * setting (algorithm, cost and salt length) of the first hash in the file,
 * so that the time taken does not tell which users exist when the file's
 * hashes are all made alike, as mkpasswd makes them.  A file without any
 * hash falls back to a built-in SHA-512 one.
 */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "server/auth.h"
#include "util/log.h"

/* A users file line: a user name, a colon and a hash; generous bound. */
#define AUTH_LINE_MAX 1024
/* Hash used when the file has none (SHA-512 of a random string). */
#define AUTH_DUMMY_HASH                                                        \
	"$6$sluicedummysalt$dbsUCrQpehZLQbQ2YXCkreNNNfqOFBbc3.FBD5JH5Vu9b5x"   \
	"JvWPUR7E/X44ObHP/lHNCcExAf1aWOPXUYpVNQ0"

int
auth_check(const char *users_file, const char *user, const char *password)
{
	char line[AUTH_LINE_MAX], hash[AUTH_LINE_MAX] = "",
	                          dummy[AUTH_LINE_MAX] = "";
	size_t ulen = strlen(user);
	struct crypt_data *cd;
	const char *out, *setting;
	int found = 0, ok;
	FILE *fp;

	if (users_file == NULL || users_file[0] == '\0')
		return 0;
	if ((fp = fopen(users_file, "r")) == NULL) {
		log_err("users file %s cannot be read", users_file);
		return 0;
	}
	/* Read to the end whether found or not: the same work either way. */
	while (fgets(line, sizeof(line), fp) != NULL) {
		char *colon;

		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || (colon = strchr(line, ':')) == NULL)
			continue;
		if (dummy[0] == '\0' && colon[1] == '$')
			snprintf(dummy, sizeof(dummy), "%s", colon + 1);
		if (!found && (size_t)(colon - line) == ulen &&
		    strncmp(line, user, ulen) == 0) {
			snprintf(hash, sizeof(hash), "%s", colon + 1);
			found = 1;
		}
	}
	fclose(fp);
	/* ~32 KB of scratch: not on a worker's stack, and one per call. */
	if ((cd = calloc(1, sizeof(*cd))) == NULL)
		return 0;
	setting = found ? hash : dummy[0] != '\0' ? dummy : AUTH_DUMMY_HASH;
	out = crypt_r(password, setting, cd);
	ok = found && out != NULL && out[0] != '*' &&
	     strlen(out) == strlen(hash) &&
	     CRYPTO_memcmp(out, hash, strlen(hash)) == 0;
	OPENSSL_cleanse(cd, sizeof(*cd));
	free(cd);
	return ok;
}
