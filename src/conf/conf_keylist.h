/*
 * conf_keylist.h - the key table printed for people and generators
 * (`sluicectl config keys`): docs/config.md and sluice.conf(5) are checked
 * against it.
 */
#ifndef SLUICE_CONF_KEYLIST_H
#define SLUICE_CONF_KEYLIST_H

#include <stdio.h>

/*
 * One line per key: section, key, type, default, minimum, maximum,
 * separated by tabs.  The default is as the table has it ("" for an empty
 * one, "(required)" or "(derived)" when there is none); "-" stands for
 * no minimum or maximum.
 */
void conf_keylist_print(FILE *);

#endif
