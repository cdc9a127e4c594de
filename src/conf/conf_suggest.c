/*
 * conf_suggest.c - "did you mean RequireTLS?" for a misspelt key or
 * section kind.
 *
 * The distance is Damerau's (optimal string alignment: insertions,
 * deletions, substitutions and swaps of two neighbours each cost one),
 * case-insensitive, since keys are.  A suggestion is made only when it is
 * close: at most one edit for short words, two up to ten letters, three
 * beyond, and never more than a third of the word; otherwise silence is
 * more useful than a wild guess.  Names are bounded (CONF_SUGGEST_MAX), so
 * the table on the stack is too.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "conf/conf_keys.h"

/* Longer names are never keys: no suggestion, no work. */
#define CONF_SUGGEST_MAX 64

static unsigned
suggest_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned d[CONF_SUGGEST_MAX + 1][CONF_SUGGEST_MAX + 1];

	if (la > CONF_SUGGEST_MAX || lb > CONF_SUGGEST_MAX)
		return ~0u;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (unsigned)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			int ca = tolower((unsigned char)a[i - 1]);
			int cb = tolower((unsigned char)b[j - 1]);
			unsigned best = d[i - 1][j - 1] + (ca != cb);

			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 &&
			    ca == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == cb &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

/* How many edits still count as a typo of a word this long. */
static unsigned
suggest_limit(size_t len)
{
	unsigned limit = len <= 4 ? 1 : len <= 10 ? 2 : 3;

	return limit > len / 3 && len >= 3 ? (unsigned)(len / 3) : limit;
}

const char *
conf_suggest(const char *word, const char *const *names, size_t n)
{
	const char *best = NULL;
	unsigned best_d = suggest_limit(strlen(word)) + 1;

	if (strlen(word) < 3)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned dist = suggest_distance(word, names[i]);

		if (dist < best_d) {
			best_d = dist;
			best = names[i];
		}
	}
	return best;
}

const char *
conf_suggest_key(enum conf_section sec, const char *word)
{
	const struct conf_section_desc *d = &conf_sections[sec];
	const char *names[CONF_KEYS_MAX];
	size_t n = 0;

	for (size_t i = 0; i < d->nkeys && n < CONF_KEYS_MAX; i++)
		names[n++] = d->keys[i].name;
	return conf_suggest(word, names, n);
}

int
conf_key_elsewhere(enum conf_section sec, const char *word)
{
	for (int s = 0; s < CONF_SEC_COUNT; s++) {
		if (s == (int)sec)
			continue;
		for (size_t i = 0; i < conf_sections[s].nkeys; i++)
			if (strcasecmp(conf_sections[s].keys[i].name, word) ==
			    0)
				return s;
	}
	return -1;
}
