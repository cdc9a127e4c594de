/*
 * conf_peek.c - a [Transport] value without conf_load (see conf_peek.h).
 *
 * inih reads the file; only [Transport] is looked at and nothing is
 * validated, so a file with errors elsewhere still yields its sockets.
 * Defaults come from the key table, never from a copy here.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "conf/conf_keys.h"
#include "conf/conf_peek.h"

struct conf_peek {
	const char *key;
	char value[PATH_MAX];
	int found;
};

static int
conf_peek_handler(
    void *arg, const char *section, const char *name, const char *value)
{
	struct conf_peek *p = arg;
	size_t n;

	if (p->found || strcasecmp(section, "Transport") != 0 ||
	    strcasecmp(name, p->key) != 0)
		return 1;
	n = strlen(value);
	if (n >= 2 && value[0] == '"' && value[n - 1] == '"') {
		value++;
		n -= 2;
	}
	if (n >= sizeof(p->value))
		n = sizeof(p->value) - 1;
	memcpy(p->value, value, n);
	p->value[n] = '\0';
	p->found = 1;
	return 1;
}

static const struct conf_key *
conf_peek_key(const char *name)
{
	const struct conf_section_desc *d = &conf_sections[CONF_SEC_TRANSPORT];

	for (size_t i = 0; i < d->nkeys; i++)
		if (strcasecmp(d->keys[i].name, name) == 0)
			return &d->keys[i];
	return NULL;
}

int
conf_peek_transport(const char *path, const char *key, char *out, size_t len,
    char *why, size_t whylen)
{
	const struct conf_key *k = conf_peek_key(key);
	struct conf_peek p;
	char copy[PATH_MAX], dir[PATH_MAX];
	FILE *fp;

	if (k == NULL) {
		snprintf(why, whylen, "%s is not a [Transport] key", key);
		return -1;
	}
	memset(&p, 0, sizeof(p));
	p.key = k->name;
	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	ini_parse_file(fp, conf_peek_handler, &p); /* errors: not ours */
	fclose(fp);
	if (!p.found) {
		if (k->def == NULL &&
		    strcasecmp(k->name, "ControlSocket") == 0) {
			char queue[PATH_MAX];

			if (conf_peek_transport(path, "QueueDirectory", queue,
			        sizeof(queue), why, whylen) < 0)
				return -1;
			snprintf(out, len, "%s/sluice.sock", queue);
			return 0;
		}
		snprintf(p.value, sizeof(p.value), "%s",
		    k->def != NULL ? k->def : "");
	}
	if (k->type != CT_PATH || p.value[0] == '/' || p.value[0] == '\0') {
		snprintf(out, len, "%s", p.value);
		return 0;
	}
	snprintf(copy, sizeof(copy), "%s", path);
	if (realpath(dirname(copy), dir) == NULL) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	snprintf(out, len, "%s/%s", dir, p.value);
	return 0;
}
