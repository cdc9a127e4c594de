/*
 * test_backpressure.c - back pressure's pure parts (src/server/
 * backpressure.c) as tables: levels rise at their thresholds and fall
 * only below the next lower one (Exchange's Medium = High - 2, Normal =
 * High - 4), and the disk's default High threshold is Exchange's
 * 500 MB formula.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "server/backpressure.h"

static void
test_levels(void **state)
{
	static const struct {
		enum bp_level prev;
		unsigned used, high;
		enum bp_level want;
	} t[] = {
	    /* rising: Medium at High - 2, High at High */
	    {BP_NORMAL, 0, 80, BP_NORMAL},
	    {BP_NORMAL, 77, 80, BP_NORMAL},
	    {BP_NORMAL, 78, 80, BP_MEDIUM},
	    {BP_NORMAL, 79, 80, BP_MEDIUM},
	    {BP_NORMAL, 80, 80, BP_HIGH},
	    {BP_NORMAL, 100, 80, BP_HIGH},
	    {BP_MEDIUM, 80, 80, BP_HIGH},
	    /* falling from High: Medium below High - 2, Normal below -4 */
	    {BP_HIGH, 79, 80, BP_HIGH},
	    {BP_HIGH, 78, 80, BP_HIGH},
	    {BP_HIGH, 77, 80, BP_MEDIUM},
	    {BP_HIGH, 76, 80, BP_MEDIUM},
	    {BP_HIGH, 75, 80, BP_NORMAL},
	    {BP_HIGH, 0, 80, BP_NORMAL},
	    /* falling from Medium: Normal below High - 4 */
	    {BP_MEDIUM, 79, 80, BP_MEDIUM},
	    {BP_MEDIUM, 76, 80, BP_MEDIUM},
	    {BP_MEDIUM, 75, 80, BP_NORMAL},
	    /* tiny thresholds do not wrap */
	    {BP_NORMAL, 0, 1, BP_MEDIUM},
	    {BP_NORMAL, 1, 1, BP_HIGH},
	    {BP_HIGH, 0, 3, BP_MEDIUM},
	    /* 100 means "only when full" */
	    {BP_NORMAL, 97, 100, BP_NORMAL},
	    {BP_NORMAL, 98, 100, BP_MEDIUM},
	    {BP_NORMAL, 100, 100, BP_HIGH},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		enum bp_level got =
		    backpressure_level(t[i].prev, t[i].used, t[i].high);

		if (got != t[i].want)
			fail_msg(
			    "row %zu: %s at %u%% (High %u): got %s want %s", i,
			    backpressure_level_name(t[i].prev), t[i].used,
			    t[i].high, backpressure_level_name(got),
			    backpressure_level_name(t[i].want));
	}
}

static void
test_disk_high(void **state)
{
	static const uint64_t MB = 1024 * 1024, GB = 1024 * MB;
	static const struct {
		uint64_t size;
		unsigned configured, want;
	} t[] = {
	    {1024 * GB, 0, 99}, /* Exchange's example: 1 TB -> 99 */
	    {252 * GB, 0, 99},
	    {25 * GB, 0, 98}, /* "a drive of about 25 GB or less" */
	    {10 * GB, 0, 95},
	    {1 * GB, 0, 51},
	    {501 * MB, 0, 1}, /* less than 1 % left above the margin */
	    {500 * MB, 0, 1}, /* no room at all: always High */
	    {64 * MB, 0, 1},
	    {64 * MB, 80, 80}, /* configured wins */
	    {1024 * GB, 90, 90},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (backpressure_disk_high(t[i].size, t[i].configured) !=
		    t[i].want)
			fail_msg("row %zu: got %u want %u", i,
			    backpressure_disk_high(t[i].size, t[i].configured),
			    t[i].want);
}

static void
test_names(void **state)
{
	(void)state;
	assert_string_equal(backpressure_resource_name(BP_DATABASE_USED_SPACE),
	    "DatabaseUsedSpace");
	assert_string_equal(
	    backpressure_resource_name(BP_PRIVATE_BYTES), "PrivateBytes");
	assert_string_equal(
	    backpressure_resource_name(BP_SYSTEM_MEMORY), "SystemMemory");
	assert_string_equal(backpressure_level_name(BP_MEDIUM), "Medium");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_levels),
	    cmocka_unit_test(test_disk_high),
	    cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
