/*
 * test_docs.c - every configuration key is documented: each key of the
 * key table (src/conf/conf_keys.c) must appear, in backquotes, in
 * docs/config.md.  Run from the repository root (or set SLUICE_ROOT).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf/conf_keys.h"

static void
test_every_key_documented(void **state)
{
	const char *root = getenv("SLUICE_ROOT");
	char path[512], *text;
	FILE *fp;
	long len;
	int missing = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/docs/config.md", root ? root : ".");
	fp = fopen(path, "r");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	len = ftell(fp);
	rewind(fp);
	text = calloc(1, (size_t)len + 1);
	assert_int_equal(fread(text, 1, (size_t)len, fp), (size_t)len);
	fclose(fp);
	for (int s = 0; s < CONF_SEC_COUNT; s++) {
		char heading[64];

		snprintf(
		    heading, sizeof(heading), "## [%s", conf_sections[s].name);
		if (strstr(text, heading) == NULL) {
			print_error("section [%s] has no heading\n",
			    conf_sections[s].name);
			missing++;
		}
		for (size_t k = 0; k < conf_sections[s].nkeys; k++) {
			char want[80];

			snprintf(want, sizeof(want), "| `%s` |",
			    conf_sections[s].keys[k].name);
			if (strstr(text, want) == NULL) {
				print_error(
				    "[%s] %s is not in docs/config.md\n",
				    conf_sections[s].name,
				    conf_sections[s].keys[k].name);
				missing++;
			}
		}
	}
	free(text);
	assert_int_equal(missing, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_key_documented),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
