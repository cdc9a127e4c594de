/*
 * rule_words.c - "contains words" as Exchange's SubjectContainsWords and
 * HeaderContainsWords mean it: a word or phrase matches when it occurs
 * case-insensitively and as whole words, so "budget" matches "Q3 Budget!"
 * and "budget-plan" but not "budgeting".
 *
 * Letters, digits and '_' are word characters, and so is every octet of
 * 0x80 and up: a word never matches inside a UTF-8 word.  Case folding is
 * ASCII only, which is what a byte comparison can promise; within a
 * phrase any run of blanks matches any run of blanks.
 */
#include <ctype.h>
#include <string.h>

#include "rules/rules.h"

static int
words_is_word(unsigned char c)
{
	return isalnum(c) || c == '_' || c >= 0x80;
}

/* ASCII case folding without the locale tables of tolower(). */
static inline unsigned char
words_fold(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static int
words_is_blank(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Does word match text at i?  *end gets the offset after the match. */
static int
words_at(const char *t, size_t len, size_t i, const char *w, size_t *end)
{
	while (*w != '\0') {
		if (words_is_blank((unsigned char)*w)) {
			if (i >= len || !words_is_blank((unsigned char)t[i]))
				return 0;
			while (words_is_blank((unsigned char)*w))
				w++;
			while (i < len && words_is_blank((unsigned char)t[i]))
				i++;
			continue;
		}
		if (i >= len ||
		    tolower((unsigned char)t[i]) != tolower((unsigned char)*w))
			return 0;
		i++;
		w++;
	}
	*end = i;
	return 1;
}

int
rule_words_contain(const char *t, size_t len, const char *word)
{
	size_t end, wl;
	unsigned char first, last;

	while (words_is_blank((unsigned char)*word))
		word++;
	if (*word == '\0')
		return 0;
	wl = strlen(word);
	first = words_fold((unsigned char)word[0]);
	last = (unsigned char)word[wl - 1];
	for (size_t i = 0; i < len; i++) {
		if (words_fold((unsigned char)t[i]) != first)
			continue;
		/* the word must start and end at a word boundary, unless
		 * it starts or ends with punctuation itself */
		if (i > 0 && words_is_word((unsigned char)t[i - 1]) &&
		    words_is_word((unsigned char)*word))
			continue;
		if (!words_at(t, len, i, word, &end))
			continue;
		if (end < len && words_is_word((unsigned char)t[end]) &&
		    words_is_word(last))
			continue;
		return 1;
	}
	return 0;
}
