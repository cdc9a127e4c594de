/*
 * auth.c - password checks for SMTP AUTH (see auth.h).
 *
 * The file is read at each attempt, so adding a user needs no reload;
 * failed attempts are rate-limited by the session, which bounds the cost.
 * An unknown user still costs one hash computation, so that the time
 * taken does not tell which users exist.
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
/* Hash used for unknown users (SHA-512 of a random string). */
#define AUTH_DUMMY_HASH                                                        \
	"$6$sluicedummysalt$dbsUCrQpehZLQbQ2YXCkreNNNfqOFBbc3.FBD5JH5Vu9b5x"   \
	"JvWPUR7E/X44ObHP/lHNCcExAf1aWOPXUYpVNQ0"

int
auth_check(const char *users_file, const char *user, const char *password)
{
	static struct crypt_data cd; /* ~32 KB: not on the stack */
	char line[AUTH_LINE_MAX], hash[AUTH_LINE_MAX] = AUTH_DUMMY_HASH;
	size_t ulen = strlen(user);
	int found = 0;
	const char *out;
	FILE *fp;

	if (users_file == NULL || users_file[0] == '\0')
		return 0;
	if ((fp = fopen(users_file, "r")) == NULL) {
		log_err("users file %s cannot be read", users_file);
		return 0;
	}
	while (!found && fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || strncmp(line, user, ulen) != 0 ||
		    line[ulen] != ':')
			continue;
		snprintf(hash, sizeof(hash), "%s", line + ulen + 1);
		found = 1;
	}
	fclose(fp);
	memset(&cd, 0, sizeof(cd));
	out = crypt_r(password, hash, &cd);
	if (out == NULL || out[0] == '*')
		return 0;
	return found && strlen(out) == strlen(hash) &&
	       CRYPTO_memcmp(out, hash, strlen(hash)) == 0;
}

int
auth_base64_decode(const char *in, size_t len, char *out, size_t outsz)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned acc = 0;
	int bits = 0, pad = 0;
	size_t o = 0;

	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		const char *p;

		if (in[i] == '=') {
			if (++pad > 2 || i < len - 2)
				return -1;
			continue;
		}
		if (pad || (p = memchr(alphabet, in[i], 64)) == NULL ||
		    in[i] == '\0')
			return -1;
		acc = (acc << 6) | (unsigned)(p - alphabet);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o + 1 >= outsz)
				return -1;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	return (int)o;
}
