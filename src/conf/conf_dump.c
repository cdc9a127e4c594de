/*
 * conf_dump.c - printing the effective configuration.
 *
 * Two forms, both driven by the key table so no key can be forgotten:
 * Format-List ("Name : Value", names padded to the longest, as PowerShell's
 * Get-ReceiveConnector | Format-List prints), and INI, which conf_load()
 * reads back to the same values (like sshd -T).
 */
#include <stdio.h>
#include <string.h>

#include "conf/conf_keys.h"
#include "rules/rules.h"

#define DUMP_VALUE_MAX 8192
#define DUMP_LINE_MAX 150

static int
dump_width(enum conf_section sec, int width)
{
	const struct conf_section_desc *d = &conf_sections[sec];

	for (size_t i = 0; i < d->nkeys; i++)
		if ((int)strlen(d->keys[i].name) > width)
			width = (int)strlen(d->keys[i].name);
	return width;
}

static void
dump_list(enum conf_section sec, const void *obj, const char *name, FILE *fp)
{
	const struct conf_section_desc *d = &conf_sections[sec];
	char value[DUMP_VALUE_MAX];
	int width = dump_width(sec, name != NULL ? 4 : 0);

	if (name != NULL)
		fprintf(fp, "%-*s : %s\n", width, "Name", name);
	for (size_t i = 0; i < d->nkeys; i++) {
		conf_key_format(&d->keys[i], obj, value, sizeof(value));
		fprintf(fp, "%-*s : %s\n", width, d->keys[i].name, value);
	}
}

void
conf_dump_transport(const struct conf *c, FILE *fp)
{
	dump_list(CONF_SEC_TRANSPORT, &c->transport, NULL, fp);
}

void
conf_dump_accepted_domain(const struct conf_accepted_domain *d, FILE *fp)
{
	dump_list(CONF_SEC_ACCEPTED_DOMAIN, d, d->name, fp);
}

void
conf_dump_receive_connector(const struct conf_receive_connector *rc, FILE *fp)
{
	dump_list(CONF_SEC_RECEIVE, rc, rc->name, fp);
}

void
conf_dump_send_connector(const struct conf_send_connector *sc, FILE *fp)
{
	dump_list(CONF_SEC_SEND, sc, sc->name, fp);
}

void
conf_dump_certificate(const struct conf_certificate *cert, FILE *fp)
{
	dump_list(CONF_SEC_CERTIFICATE, cert, cert->name, fp);
}

/* Get-TransportRule | Format-List: State and Description too. */
void
conf_dump_transport_rule(
    const struct conf *c, const struct conf_transport_rule *r, FILE *fp)
{
	int width = dump_width(CONF_SEC_RULE, 11);
	char text[DUMP_VALUE_MAX];

	dump_list(CONF_SEC_RULE, r, r->name, fp);
	fprintf(fp, "%-*s : %s\n", width, "State",
	    r->enabled ? "Enabled" : "Disabled");
	text[0] = '\0';
	for (size_t i = 0; i < rule_set_count(c->rules); i++) {
		const struct rule *cr = rule_set_rule(c->rules, i);

		if (rule_conf(cr) == r)
			rule_describe(cr, text, sizeof(text));
	}
	fprintf(fp, "%-*s : %s\n", width, "Description", text);
}

/*
 * inih reads at most 198 characters a line; long lists continue on
 * indented lines, which conf_load() appends to the same key.
 */
static void
dump_wrapped(FILE *fp, const char *key, const char *value)
{
	size_t col = (size_t)fprintf(fp, "%s =", key);
	const char *p = value;

	while (*p != '\0') {
		const char *sep = NULL;
		size_t n;
		int quoted = 0;

		/* the next ", " outside a quoted item */
		for (const char *q = p; *q != '\0' && sep == NULL; q++) {
			if (*q == '"' && (q == p || q[-1] != '\\'))
				quoted = !quoted;
			else if (!quoted && q[0] == ',' && q[1] == ' ')
				sep = q;
		}
		n = sep != NULL ? (size_t)(sep - p) : strlen(p);

		if (col + n + 2 > DUMP_LINE_MAX && col > 8) {
			fputs("\n\t", fp);
			col = 8;
		} else {
			fputc(' ', fp);
			col++;
		}
		fwrite(p, 1, n, fp);
		col += n;
		p += n;
		if (sep != NULL) {
			fputc(',', fp);
			col++;
			p += 2;
		}
	}
	fputc('\n', fp);
}

/*
 * Values go out in double quotes when they would not survive the INI
 * syntax as they are (a ";" would start a comment).
 */
void
conf_dump_ini(const struct conf *c, FILE *fp)
{
	char value[DUMP_VALUE_MAX];

	fprintf(fp, "; effective configuration of %s\n", c->path);
	for (int s = 0; s < CONF_SEC_COUNT; s++) {
		const struct conf_section_desc *d = &conf_sections[s];
		size_t n = conf_object_count(c, (enum conf_section)s);

		for (size_t i = 0; i < n; i++) {
			const void *obj =
			    conf_object(c, (enum conf_section)s, i);
			const char *name = NULL;

			if (s == CONF_SEC_CERTIFICATE)
				name = c->certificates[i].name;
			else if (s == CONF_SEC_ACCEPTED_DOMAIN)
				name = c->accepted_domains[i].name;
			else if (s == CONF_SEC_RECEIVE)
				name = c->receive_connectors[i].name;
			else if (s == CONF_SEC_SEND)
				name = c->send_connectors[i].name;
			else if (s == CONF_SEC_RULE)
				name = c->transport_rules[i].name;
			if (name != NULL)
				fprintf(fp, "\n[%s \"%s\"]\n", d->name, name);
			else
				fprintf(fp, "\n[%s]\n", d->name);
			for (size_t k = 0; k < d->nkeys; k++) {
				conf_key_format(
				    &d->keys[k], obj, value, sizeof(value));
				if (strlen(value) > DUMP_LINE_MAX) {
					dump_wrapped(
					    fp, d->keys[k].name, value);
					continue;
				}
				/* quoted lists quote their own items */
				if (conf_key_quoted_list(d->keys[k].type))
					fprintf(fp, "%s = %s\n",
					    d->keys[k].name, value);
				else if (strchr(value, ';') != NULL ||
				         strchr(value, '#') != NULL ||
				         value[0] == ' ' ||
				         (value[0] != '\0' &&
				             value[strlen(value) - 1] == ' '))
					fprintf(fp, "%s = \"%s\"\n",
					    d->keys[k].name, value);
				else
					fprintf(fp, "%s = %s\n",
					    d->keys[k].name, value);
			}
		}
	}
}
