/*
 * conf_keylist.c - the key table as text (see conf_keylist.h).  The one
 * source of key names and defaults is conf_keys.c; this file only prints
 * it, so the documentation generators never keep a copy of their own.
 */
#include <stdio.h>

#include "conf/conf_keylist.h"
#include "conf/conf_keys.h"

static const char *
conf_keylist_type(enum conf_type t)
{
	switch (t) {
	case CT_BOOL:
		return "boolean";
	case CT_TIME:
		return "TimeSpan";
	case CT_SIZE:
		return "size";
	case CT_UINT:
		return "number";
	case CT_PORT:
		return "port";
	case CT_STR:
		return "text";
	case CT_PATH:
		return "path";
	case CT_DOMAINS:
		return "list of domains";
	case CT_BINDINGS:
		return "list of bindings";
	case CT_RANGES:
		return "list of address ranges";
	case CT_AUTHMECH:
		return "list of AuthMechanism values";
	case CT_PERMS:
		return "list of PermissionGroups values";
	case CT_DOMAINTYPE:
		return "DomainType";
	case CT_TLSLEVEL:
		return "TlsAuthLevel";
	case CT_SMARTAUTH:
		return "SmartHostAuthMechanism";
	case CT_PROTOLOG:
		return "ProtocolLoggingLevel";
	case CT_ADDRSPACES:
		return "list of address spaces";
	case CT_SMARTHOSTS:
		return "list of smart hosts";
	default:
		return "value";
	}
}

static void
conf_keylist_bound(
    const struct conf_key *k, unsigned long long v, char *out, size_t len)
{
	switch (k->type) {
	case CT_TIME:
		conf_format_timespan((unsigned)v, out, len);
		break;
	case CT_SIZE:
		if (v == UINT64_MAX)
			snprintf(out, len, "unlimited");
		else
			conf_format_size((uint64_t)v, out, len);
		break;
	case CT_UINT:
	case CT_PORT:
		snprintf(out, len, "%llu", v);
		break;
	default:
		snprintf(out, len, "-");
		break;
	}
}

void
conf_keylist_print(FILE *out)
{
	for (int s = 0; s < CONF_SEC_COUNT; s++) {
		const struct conf_section_desc *d = &conf_sections[s];

		for (size_t i = 0; i < d->nkeys; i++) {
			const struct conf_key *k = &d->keys[i];
			char lo[64], hi[64];

			conf_keylist_bound(k, k->min, lo, sizeof(lo));
			conf_keylist_bound(k, k->max, hi, sizeof(hi));
			fprintf(out, "%s\t%s\t%s\t%s\t%s\t%s\n", d->name,
			    k->name, conf_keylist_type(k->type),
			    k->def != NULL
			        ? k->def
			        : (k->required ? "(required)" : "(derived)"),
			    lo, hi);
		}
	}
}
