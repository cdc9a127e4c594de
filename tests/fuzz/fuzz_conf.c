/*
 * fuzz_conf.c - libFuzzer harness for the configuration loader
 * (src/conf/): any file either loads or is refused with errors; a loaded
 * one dumps to INI without crashing.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/sluice-fuzz-conf-XXXXXX";
	int fd = mkstemp(path);
	struct conf *c;
	FILE *devnull;

	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		unlink(path);
		return 0;
	}
	close(fd);
	devnull = fopen("/dev/null", "w");
	c = conf_load(path, devnull);
	if (c != NULL) {
		conf_dump_ini(c, devnull);
		conf_free(c);
	}
	fclose(devnull);
	unlink(path);
	return 0;
}
