/*
 * conf_diff.c - what a reload changes: the running configuration and the
 * new one compared section by section through the key table, so a key
 * added to the table is compared without anyone remembering to.
 *
 * Objects are matched by name (case-insensitively, as the file's names
 * are); each key is compared in the form the INI dump prints it, which is
 * the effective value (defaults included), so "Port = 25" added to a
 * connector whose default is 25 is, rightly, no change.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf_diff.h"
#include "conf/conf_keys.h"
#include "util/buf.h"

/* Largest formatted value compared; a longer list is compared cut. */
#define CONF_DIFF_VALUE_MAX 65536

static const char *
conf_diff_name(const struct conf *c, enum conf_section sec, size_t i)
{
	switch (sec) {
	case CONF_SEC_CERTIFICATE:
		return c->certificates[i].name;
	case CONF_SEC_ACCEPTED_DOMAIN:
		return c->accepted_domains[i].name;
	case CONF_SEC_RECEIVE:
		return c->receive_connectors[i].name;
	case CONF_SEC_SEND:
		return c->send_connectors[i].name;
	case CONF_SEC_RULE:
		return c->transport_rules[i].name;
	default:
		return NULL;
	}
}

/* "[Transport]", "[SendConnector Contoso]", "[ReceiveConnector "A B"]" */
static void
conf_diff_label(struct buf *out, enum conf_section sec, const char *name)
{
	if (name == NULL)
		buf_printf(out, "[%s]", conf_sections[sec].name);
	else if (strchr(name, ' ') != NULL)
		buf_printf(out, "[%s \"%s\"]", conf_sections[sec].name, name);
	else
		buf_printf(out, "[%s %s]", conf_sections[sec].name, name);
}

/* The keys whose effective values differ, comma-separated; 0 if none. */
static int
conf_diff_keys(enum conf_section sec, const void *a, const void *b, char *va,
    char *vb, struct buf *keys)
{
	const struct conf_section_desc *d = &conf_sections[sec];
	int n = 0;

	for (size_t k = 0; k < d->nkeys; k++) {
		conf_key_format(&d->keys[k], a, va, CONF_DIFF_VALUE_MAX);
		conf_key_format(&d->keys[k], b, vb, CONF_DIFF_VALUE_MAX);
		if (strcmp(va, vb) == 0)
			continue;
		buf_printf(keys, "%s%s", n++ ? ", " : "", d->keys[k].name);
	}
	return n;
}

static long
conf_diff_find(const struct conf *c, enum conf_section sec, const char *name)
{
	size_t n = conf_object_count(c, sec);

	for (size_t i = 0; i < n; i++) {
		const char *other = conf_diff_name(c, sec, i);

		if (other != NULL && strcasecmp(other, name) == 0)
			return (long)i;
	}
	return -1;
}

int
conf_diff(const struct conf *old, const struct conf *new, struct buf *out)
{
	char *va = malloc(CONF_DIFF_VALUE_MAX),
	     *vb = malloc(CONF_DIFF_VALUE_MAX);
	struct buf keys;
	int changes = 0;

	if (va == NULL || vb == NULL) {
		free(va);
		free(vb);
		return -1;
	}
	buf_init(&keys, CONF_DIFF_VALUE_MAX);
	for (int s = 0; s < CONF_SEC_COUNT; s++) {
		enum conf_section sec = (enum conf_section)s;
		size_t nold = conf_object_count(old, sec);
		size_t nnew = conf_object_count(new, sec);

		/* Changed or added, in the new file's order. */
		for (size_t i = 0; i < nnew; i++) {
			const char *name = conf_diff_name(new, sec, i);
			long j = name != NULL ? conf_diff_find(old, sec, name)
			                      : (i < nold ? (long)i : -1);

			buf_reset(&keys);
			if (j < 0) {
				conf_diff_label(out, sec, name);
				buf_puts(out, ": added\n");
				changes++;
			} else if (conf_diff_keys(sec,
			               conf_object(old, sec, (size_t)j),
			               conf_object(new, sec, i), va, vb,
			               &keys) > 0) {
				conf_diff_label(out, sec, name);
				buf_printf(out, ": changed: %s\n", keys.data);
				changes++;
			}
		}
		/* Removed. */
		for (size_t i = 0; i < nold; i++) {
			const char *name = conf_diff_name(old, sec, i);

			if (name != NULL ? conf_diff_find(new, sec, name) >= 0
			                 : i < nnew)
				continue;
			conf_diff_label(out, sec, name);
			buf_puts(out, ": removed\n");
			changes++;
		}
	}
	buf_free(&keys);
	free(va);
	free(vb);
	return changes;
}
