/*
 * ctl_keys.c - "sluicectl config keys": the configuration key table, one
 * key per line (conf_keylist.c), for people who want the defaults at hand
 * and for the generator of sluice.conf(5) (man/gen-conf-man).
 */
#include <stdio.h>

#include "conf/conf_keylist.h"
#include "ctl/ctl.h"

int
ctl_config_keys(struct ctl *ctl, int argc, char **argv)
{
	(void)ctl;
	(void)argv;
	if (argc != 0) {
		fprintf(stderr, "usage: sluicectl config keys\n");
		return 2;
	}
	conf_keylist_print(stdout);
	return 0;
}
