/*
 * conf_load.c - reading sluice.conf with inih into a struct conf.
 *
 * inih (Debian's build) neither reports line numbers to the handler nor
 * tells it about sections that have no keys.  Both matter here: every
 * error must name its line, and an empty [SendConnector X] must not vanish
 * silently.  So inih reads through conf_reader(), which hands it one line
 * at a time from memory, counts lines, and parses section headers itself;
 * the key handler then knows the current line and object.
 *
 * Order of work: parse every line (collecting all errors), apply defaults
 * to keys that were not given, derive the defaults that depend on other
 * keys, validate (conf_validate.c).  Any error and the result is NULL.
 *
 * Messages are written for the person who has to edit the file: the
 * line of the key, the one list item that is wrong, the nearest known key
 * for a misspelt one, and, for an indented line that looks like a key,
 * that the indentation made it part of the list above.  The lines of
 * every object and key stay with the configuration (conf->objs), so that
 * checks made after loading (conf_check.c) can name them too.
 */
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>

#include "conf/conf_keys.h"
#include "rules/rules.h"
#include "conf/conf_local.h"

/* The largest configuration file we read; far above any real one. */
#define CONF_FILE_MAX (4 * 1024 * 1024)

struct conf_parse {
	struct conf *conf;
	const char *path;
	char *basedir;
	FILE *err;
	int errors;
	FILE *warn; /* memory stream behind conf->warnings */
	char *warn_text;
	size_t warn_len;
	/* the reader */
	const char *text;
	size_t len, pos;
	int line;
	int continuation; /* the current line starts with blanks */
	/* objects, in file order */
	struct conf_obj *objs;
	size_t nobjs;
	struct conf_obj *cur; /* NULL outside a usable section */
	int in_bad_section;   /* keys of a refused section are ignored */
	const struct conf_key *last_key;
	int last_key_line;
};

static void
conf_verror(struct conf_parse *p, int line, const char *fmt, va_list ap)
{
	p->errors++;
	if (p->err == NULL)
		return;
	fprintf(p->err, "%s:%d: ", p->path, line);
	vfprintf(p->err, fmt, ap);
	fputc('\n', p->err);
}

static void __attribute__((format(printf, 3, 4)))
conf_error(struct conf_parse *p, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conf_verror(p, line, fmt, ap);
	va_end(ap);
}

static struct conf_obj *
conf_find_obj(struct conf_parse *p, enum conf_section sec, size_t index)
{
	for (size_t i = 0; i < p->nobjs; i++)
		if (p->objs[i].sec == sec && p->objs[i].index == index)
			return &p->objs[i];
	return NULL;
}

int
conf_key_index(enum conf_section sec, const char *name)
{
	const struct conf_section_desc *d = &conf_sections[sec];

	for (size_t i = 0; i < d->nkeys; i++)
		if (strcasecmp(d->keys[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int
conf_line_at(
    struct conf_parse *p, enum conf_section sec, size_t index, const char *key)
{
	struct conf_obj *o = conf_find_obj(p, sec, index);
	int k;

	if (o == NULL)
		return 0;
	if (key != NULL && (k = conf_key_index(sec, key)) >= 0 &&
	    o->key_line[k] > 0)
		return o->key_line[k];
	return o->line;
}

void
conf_error_at(struct conf_parse *p, enum conf_section sec, size_t index,
    const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conf_verror(p, conf_line_at(p, sec, index, key), fmt, ap);
	va_end(ap);
}

void
conf_warn_at(struct conf_parse *p, enum conf_section sec, size_t index,
    const char *key, const char *fmt, ...)
{
	va_list ap;

	if (p->warn == NULL &&
	    (p->warn = open_memstream(&p->warn_text, &p->warn_len)) == NULL)
		return;
	fprintf(p->warn, "%s:%d: warning: ", p->path,
	    conf_line_at(p, sec, index, key));
	va_start(ap, fmt);
	vfprintf(p->warn, fmt, ap);
	va_end(ap);
	fputc('\n', p->warn);
}

/* --- sections ---------------------------------------------------------- */

static char **
conf_name_slot(struct conf *c, enum conf_section sec, size_t i)
{
	switch (sec) {
	case CONF_SEC_CERTIFICATE:
		return &c->certificates[i].name;
	case CONF_SEC_ACCEPTED_DOMAIN:
		return &c->accepted_domains[i].name;
	case CONF_SEC_RECEIVE:
		return &c->receive_connectors[i].name;
	case CONF_SEC_SEND:
		return &c->send_connectors[i].name;
	case CONF_SEC_RULE:
		return &c->transport_rules[i].name;
	default:
		return NULL;
	}
}

static int *
conf_line_slot(struct conf *c, enum conf_section sec, size_t i)
{
	switch (sec) {
	case CONF_SEC_CERTIFICATE:
		return &c->certificates[i].line;
	case CONF_SEC_ACCEPTED_DOMAIN:
		return &c->accepted_domains[i].line;
	case CONF_SEC_RECEIVE:
		return &c->receive_connectors[i].line;
	case CONF_SEC_SEND:
		return &c->send_connectors[i].line;
	case CONF_SEC_RULE:
		return &c->transport_rules[i].line;
	default:
		return NULL;
	}
}

/* Append a zeroed object to the section's array; its index or -1. */
static long
conf_new_object(struct conf *c, enum conf_section sec)
{
	void **arr;
	size_t *n, size = conf_sections[sec].size;
	char *np;

	switch (sec) {
	case CONF_SEC_CERTIFICATE:
		arr = (void **)&c->certificates;
		n = &c->ncertificates;
		break;
	case CONF_SEC_ACCEPTED_DOMAIN:
		arr = (void **)&c->accepted_domains;
		n = &c->naccepted_domains;
		break;
	case CONF_SEC_RECEIVE:
		arr = (void **)&c->receive_connectors;
		n = &c->nreceive_connectors;
		break;
	case CONF_SEC_SEND:
		arr = (void **)&c->send_connectors;
		n = &c->nsend_connectors;
		break;
	case CONF_SEC_RULE:
		arr = (void **)&c->transport_rules;
		n = &c->ntransport_rules;
		break;
	default:
		return -1;
	}
	if ((np = realloc(*arr, (*n + 1) * size)) == NULL)
		return -1;
	memset(np + *n * size, 0, size);
	*arr = np;
	return (long)(*n)++;
}

/* "[Kind]" or "[Kind NAME]" or "[Kind "NAME WITH SPACES"]" */
static void
conf_section_line(struct conf_parse *p, const char *s, size_t n)
{
	char kind[64], name[256];
	const char *close = memchr(s, ']', n), *q;
	size_t kl = 0, nl;
	int sec = -1;
	long idx = 0;

	p->cur = NULL;
	p->in_bad_section = 1;
	p->last_key = NULL;
	if (close == NULL)
		return; /* inih reports the syntax error */
	s++;
	while (s < close && isspace((unsigned char)*s))
		s++;
	while (s + kl < close && !isspace((unsigned char)s[kl]))
		kl++;
	if (kl == 0 || kl >= sizeof(kind)) {
		conf_error(p, p->line, "empty or overlong section name");
		return;
	}
	memcpy(kind, s, kl);
	kind[kl] = '\0';
	for (q = s + kl; q < close && isspace((unsigned char)*q); q++)
		;
	nl = (size_t)(close - q);
	while (nl > 0 && isspace((unsigned char)q[nl - 1]))
		nl--;
	if (nl >= 2 && q[0] == '"' && q[nl - 1] == '"') {
		q++;
		nl -= 2;
	}
	if (nl >= sizeof(name) || memchr(q, '"', nl) != NULL) {
		conf_error(p, p->line, "bad name in section [%s]", kind);
		return;
	}
	memcpy(name, q, nl);
	name[nl] = '\0';
	for (int i = 0; i < CONF_SEC_COUNT; i++)
		if (strcasecmp(conf_sections[i].name, kind) == 0)
			sec = i;
	if (sec < 0) {
		const char *kinds[CONF_SEC_COUNT];
		const char *near;

		for (int i = 0; i < CONF_SEC_COUNT; i++)
			kinds[i] = conf_sections[i].name;
		near = conf_suggest(kind, kinds, CONF_SEC_COUNT);
		if (near != NULL)
			conf_error(p, p->line,
			    "unknown section [%s] (did you mean "
			    "[%s]?)",
			    kind, near);
		else
			conf_error(p, p->line,
			    "unknown section [%s] (expected "
			    "Transport, Certificate, AcceptedDomain, "
			    "ReceiveConnector, SendConnector or "
			    "TransportRule)",
			    kind);
		return;
	}
	if (conf_sections[sec].named && name[0] == '\0') {
		conf_error(
		    p, p->line, "[%s] needs a name: [%s NAME]", kind, kind);
		return;
	}
	if (!conf_sections[sec].named && name[0] != '\0') {
		conf_error(p, p->line, "[%s] takes no name", kind);
		return;
	}
	if (sec == CONF_SEC_TRANSPORT) {
		for (size_t i = 0; i < p->nobjs; i++) {
			if (p->objs[i].sec == CONF_SEC_TRANSPORT) {
				conf_error(p, p->line,
				    "duplicate [Transport] section (first at "
				    "line %d)",
				    p->objs[i].line);
				return;
			}
		}
	} else {
		for (size_t i = 0; i < p->nobjs; i++) {
			struct conf_obj *o = &p->objs[i];

			if ((int)o->sec == sec &&
			    strcasecmp(
			        *conf_name_slot(p->conf, o->sec, o->index),
			        name) == 0) {
				conf_error(p, p->line,
				    "duplicate section [%s %s] (first at line "
				    "%d)",
				    kind, name, o->line);
				return;
			}
		}
		if ((idx = conf_new_object(p->conf, (enum conf_section)sec)) <
		        0 ||
		    (*conf_name_slot(p->conf, (enum conf_section)sec,
		         (size_t)idx) = strdup(name)) == NULL) {
			conf_error(p, p->line, "out of memory");
			return;
		}
		*conf_line_slot(p->conf, (enum conf_section)sec, (size_t)idx) =
		    p->line;
		if (sec == CONF_SEC_ACCEPTED_DOMAIN)
			for (char *c = p->conf->accepted_domains[idx].name;
			     *c != '\0'; c++)
				*c = (char)tolower((unsigned char)*c);
	}
	{
		struct conf_obj *no =
		    realloc(p->objs, (p->nobjs + 1) * sizeof(*no));

		if (no == NULL) {
			conf_error(p, p->line, "out of memory");
			return;
		}
		p->objs = no;
		p->cur = &p->objs[p->nobjs++];
		memset(p->cur, 0, sizeof(*p->cur));
		p->cur->sec = (enum conf_section)sec;
		p->cur->index = (size_t)idx;
		p->cur->line = p->line;
		p->in_bad_section = 0;
	}
}

/* --- reading ----------------------------------------------------------- */

/*
 * inih takes " ;" as the start of a comment even inside double quotes.
 * A quoted value may hold ";" (a Banner, a dumped cipher list), so inside
 * quotes it travels as CONF_SEMICOLON and the handler puts it back.
 */
#define CONF_SEMICOLON '\x01'

static void
conf_protect_quoted(char *line)
{
	char *eq = strchr(line, '=');
	int quoted = 0;

	if (eq == NULL)
		return;
	for (char *p = eq + 1; *p != '\0'; p++) {
		if (*p == '"')
			quoted = !quoted;
		else if (*p == ';' && quoted)
			*p = CONF_SEMICOLON;
	}
}

/* inih's line source: one physical line per call, counted. */
static char *
conf_reader(char *str, int num, void *arg)
{
	struct conf_parse *p = arg;
	const char *start, *nl;
	size_t n, avail;

	if (p->pos >= p->len)
		return NULL;
	start = p->text + p->pos;
	avail = p->len - p->pos;
	nl = memchr(start, '\n', avail);
	n = nl != NULL ? (size_t)(nl - start) + 1 : avail;
	p->pos += n;
	p->line++;
	p->continuation = n > 0 && (start[0] == ' ' || start[0] == '\t');
	if (n + 1 > (size_t)num) {
		conf_error(p, p->line,
		    "line too long (at most %d characters; continue a list on "
		    "an indented next line)",
		    num - 2);
		str[0] = '\n';
		str[1] = '\0';
		return str;
	}
	memcpy(str, start, n);
	str[n] = '\0';
	conf_protect_quoted(str);
	{
		const char *s = start;

		while (s < start + n && isspace((unsigned char)*s))
			s++;
		if (s < start + n && *s == '[')
			conf_section_line(p, s, (size_t)(start + n - s));
	}
	return str;
}

static int
conf_is_list(enum conf_type t)
{
	return t == CT_DOMAINS || t == CT_BINDINGS || t == CT_RANGES ||
	       t == CT_ADDRSPACES || t == CT_SMARTHOSTS || t == CT_AUTHMECH ||
	       t == CT_PERMS || conf_key_quoted_list(t);
}

/*
 * An indented line continues the key above.  When what it says looks
 * like "Name = value" instead, the administrator most likely indented a
 * key by mistake; say that, rather than report "RequireTLS = true" as a
 * bad smart host.  *name receives the word before the "=".
 */
static int
conf_looks_like_key(const char *value, char *name, size_t len)
{
	size_t n = 0;
	const char *q;

	while (isalnum((unsigned char)value[n]) || value[n] == '_')
		n++;
	if (n == 0 || n >= len || !isalpha((unsigned char)value[0]))
		return 0;
	for (q = value + n; *q == ' ' || *q == '\t'; q++)
		;
	if (*q != '=')
		return 0;
	memcpy(name, value, n);
	name[n] = '\0';
	return 1;
}

static void
conf_unknown_key(struct conf_parse *p, const char *name)
{
	enum conf_section sec = p->cur->sec;
	int other = conf_key_elsewhere(sec, name);
	const char *near = conf_suggest_key(sec, name);

	if (other >= 0)
		conf_error(p, p->line,
		    "unknown key %s in [%s] (%s is a key of [%s])", name,
		    conf_sections[sec].name, name, conf_sections[other].name);
	else if (near != NULL)
		conf_error(p, p->line,
		    "unknown key %s in [%s] (did you mean %s?)", name,
		    conf_sections[sec].name, near);
	else
		conf_error(p, p->line, "unknown key %s in [%s]", name,
		    conf_sections[sec].name);
}

/*
 * The value as the key parser sees it.  A value wrapped whole in double
 * quotes loses them (Banner = "220 mx ESMTP"); a list whose items are
 * quoted one by one ("a","b") keeps them for conf_each() to remove, and
 * lists whose items may be quoted (transport rule words and patterns)
 * always keep them for their own parser.
 */
static int
conf_unquote(const struct conf_key *k, const char *value, char *val, size_t len)
{
	size_t vl = strlen(value);

	if (vl >= len)
		return -1;
	if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"' &&
	    !conf_key_quoted_list(k->type) &&
	    (!conf_is_list(k->type) ||
	        memchr(value + 1, '"', vl - 2) == NULL)) {
		memcpy(val, value + 1, vl - 2);
		val[vl - 2] = '\0';
	} else {
		memcpy(val, value, vl + 1);
	}
	for (char *q = val; *q != '\0'; q++)
		if (*q == CONF_SEMICOLON)
			*q = ';';
	return 0;
}

static int
conf_handler(
    void *arg, const char *section, const char *name, const char *value)
{
	struct conf_parse *p = arg;
	const struct conf_key *k;
	char val[512], bad[512], word[64];
	const char *why = NULL;
	int ki;
	void *obj;

	(void)section;
	if (p->in_bad_section)
		return 1;
	if (p->cur == NULL) {
		conf_error(p, p->line, "key %s outside of any section", name);
		return 1;
	}
	if ((ki = conf_key_index(p->cur->sec, name)) < 0) {
		conf_unknown_key(p, name);
		return 1;
	}
	k = &conf_sections[p->cur->sec].keys[ki];
	if (conf_unquote(k, value, val, sizeof(val)) < 0) {
		conf_error(p, p->line, "%s: value too long", k->name);
		return 1;
	}
	if (p->continuation && k == p->last_key) {
		if (conf_looks_like_key(val, word, sizeof(word))) {
			conf_error(p, p->line,
			    "\"%s = ...\" is indented, so it continues %s "
			    "(line %d); a key must start at the beginning of "
			    "its line",
			    word, k->name, p->last_key_line);
			return 1;
		}
		if (!conf_is_list(k->type)) {
			conf_error(p, p->line,
			    "%s: only lists may continue on the next line",
			    k->name);
			return 1;
		}
	} else if (p->cur->key_line[ki] != 0) {
		conf_error(p, p->line, "duplicate key %s (first at line %d)",
		    k->name, p->cur->key_line[ki]);
		return 1;
	} else {
		p->cur->key_line[ki] = p->line;
		p->last_key_line = p->line;
	}
	p->last_key = k;
	obj = conf_object(p->conf, p->cur->sec, p->cur->index);
	if (conf_key_parse(k, obj, val, p->basedir, &why, bad, sizeof(bad)) < 0)
		conf_error(p, p->line, "%s: %s: \"%s\"", k->name, why, bad);
	return 1;
}

/* --- defaults ---------------------------------------------------------- */

static void
conf_apply_defaults(struct conf_parse *p, enum conf_section sec, size_t idx,
    const int *key_line)
{
	const struct conf_section_desc *d = &conf_sections[sec];
	void *obj = conf_object(p->conf, sec, idx);
	const char *why;
	char bad[512];

	for (size_t i = 0; i < d->nkeys; i++) {
		const struct conf_key *k = &d->keys[i];

		if (key_line != NULL && key_line[i] != 0)
			continue;
		if (k->required) {
			conf_error_at(p, sec, idx, NULL, "[%s %s] needs %s",
			    d->name, *conf_name_slot(p->conf, sec, idx),
			    k->name);
			continue;
		}
		if (k->def != NULL && conf_key_parse(k, obj, k->def, NULL, &why,
		                          bad, sizeof(bad)) < 0)
			conf_error_at(p, sec, idx, NULL,
			    "internal error: bad default for %s", k->name);
	}
}

/* Defaults that depend on other values. */
static int
conf_derive(struct conf *c)
{
	char host[256];

	if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	if (c->transport.control_socket == NULL &&
	    asprintf(&c->transport.control_socket, "%s/sluice.sock",
	        c->transport.queue_directory) < 0)
		return -1;
	for (size_t i = 0; i < c->naccepted_domains; i++) {
		struct conf_accepted_domain *d = &c->accepted_domains[i];

		if (d->mailboxes == NULL &&
		    asprintf(&d->mailboxes, "%s/mailboxes/%%d/%%u",
		        c->transport.queue_directory) < 0)
			return -1;
	}
	for (size_t i = 0; i < c->nreceive_connectors; i++) {
		struct conf_receive_connector *rc = &c->receive_connectors[i];

		if (rc->fqdn == NULL && (rc->fqdn = strdup(host)) == NULL)
			return -1;
		if (rc->banner == NULL &&
		    asprintf(
		        &rc->banner, "220 %s Sluice ESMTP ready", rc->fqdn) < 0)
			return -1;
	}
	for (size_t i = 0; i < c->nsend_connectors; i++) {
		struct conf_send_connector *sc = &c->send_connectors[i];

		if (sc->fqdn == NULL && (sc->fqdn = strdup(host)) == NULL)
			return -1;
	}
	return 0;
}

static char *
conf_read_file(const char *path, size_t *len, const char **why)
{
	FILE *fp = fopen(path, "r");
	char *text;

	if (fp == NULL) {
		*why = strerror(errno);
		return NULL;
	}
	if ((text = malloc(CONF_FILE_MAX + 1)) == NULL) {
		fclose(fp);
		*why = "out of memory";
		return NULL;
	}
	*len = fread(text, 1, CONF_FILE_MAX + 1, fp);
	if (ferror(fp) || *len > CONF_FILE_MAX) {
		*why = ferror(fp) ? strerror(errno) : "file too large";
		fclose(fp);
		free(text);
		return NULL;
	}
	fclose(fp);
	text[*len] = '\0';
	if (memchr(text, '\0', *len) != NULL) {
		*why = "file contains a NUL byte";
		free(text);
		return NULL;
	}
	return text;
}

struct conf *
conf_load(const char *path, FILE *err)
{
	struct conf_parse p;
	const char *why = NULL;
	char *text, *pathcopy;
	int rc;
	struct conf_obj *transport = NULL;

	memset(&p, 0, sizeof(p));
	p.path = path;
	p.err = err;
	if ((text = conf_read_file(path, &p.len, &why)) == NULL) {
		if (err != NULL)
			fprintf(err, "%s: %s\n", path, why);
		return NULL;
	}
	p.text = text;
	p.conf = calloc(1, sizeof(*p.conf));
	pathcopy = strdup(path);
	if (p.conf == NULL || pathcopy == NULL ||
	    (p.basedir = realpath(dirname(pathcopy), NULL)) == NULL ||
	    (p.conf->path = strdup(path)) == NULL) {
		if (err != NULL)
			fprintf(err, "%s: out of memory\n", path);
		free(pathcopy);
		free(text);
		free(p.basedir);
		conf_free(p.conf);
		return NULL;
	}
	free(pathcopy);

	rc = ini_parse_stream(conf_reader, &p, conf_handler, &p);
	if (rc > 0)
		conf_error(&p, rc,
		    "syntax error (expected [Section], key = value, or a "
		    "comment)");
	else if (rc < 0)
		conf_error(&p, 0, "cannot parse");

	for (size_t i = 0; i < p.nobjs; i++)
		if (p.objs[i].sec == CONF_SEC_TRANSPORT)
			transport = &p.objs[i];
	conf_apply_defaults(&p, CONF_SEC_TRANSPORT, 0,
	    transport != NULL ? transport->key_line : NULL);
	for (size_t i = 0; i < p.nobjs; i++)
		if (p.objs[i].sec != CONF_SEC_TRANSPORT)
			conf_apply_defaults(&p, p.objs[i].sec, p.objs[i].index,
			    p.objs[i].key_line);
	if (p.errors == 0 && conf_derive(p.conf) < 0)
		conf_error(&p, 0, "out of memory");
	if (p.errors == 0)
		conf_validate(p.conf, &p);
	if (p.errors == 0 && conf_local_connector(p.conf) < 0)
		conf_error(&p, 0, "out of memory");

	free(text);
	free(p.basedir);
	p.conf->objs = p.objs;
	p.conf->nobjs = p.nobjs;
	if (p.warn != NULL) {
		fclose(p.warn);
		p.conf->warnings = p.warn_text;
	}
	if (p.errors > 0) {
		conf_free(p.conf);
		return NULL;
	}
	return p.conf;
}

void
conf_free(struct conf *c)
{
	if (c == NULL)
		return;
	rule_set_free(c->rules); /* points into the rules below */
	for (int s = 0; s < CONF_SEC_COUNT; s++) {
		size_t n = conf_object_count(c, (enum conf_section)s);

		for (size_t i = 0; i < n; i++) {
			void *obj = conf_object(c, (enum conf_section)s, i);
			char **name =
			    conf_name_slot(c, (enum conf_section)s, i);

			for (size_t k = 0; k < conf_sections[s].nkeys; k++)
				conf_key_free(&conf_sections[s].keys[k], obj);
			if (name != NULL)
				free(*name);
		}
	}
	conf_local_connector_free(c);
	free(c->certificates);
	free(c->accepted_domains);
	free(c->receive_connectors);
	free(c->send_connectors);
	free(c->transport_rules);
	free(c->objs);
	free(c->warnings);
	free(c->path);
	free(c);
}

void
conf_warnings(const struct conf *c, FILE *out)
{
	if (c->warnings != NULL)
		fputs(c->warnings, out);
}

/* Which section and element obj is; -1 when it is none of c's. */
static int
conf_locate(const struct conf *c, const void *obj, size_t *index)
{
	for (int s = 0; s < CONF_SEC_COUNT; s++) {
		size_t n = conf_object_count(c, (enum conf_section)s);

		for (size_t i = 0; i < n; i++) {
			if (conf_object(c, (enum conf_section)s, i) == obj) {
				*index = i;
				return s;
			}
		}
	}
	return -1;
}

static const struct conf_obj *
conf_obj_of(const struct conf *c, const void *obj, enum conf_section *sec)
{
	size_t index = 0;
	int s = conf_locate(c, obj, &index);

	if (s < 0)
		return NULL;
	*sec = (enum conf_section)s;
	for (size_t i = 0; i < c->nobjs; i++)
		if ((int)c->objs[i].sec == s && c->objs[i].index == index)
			return &c->objs[i];
	return NULL;
}

int
conf_key_line(const struct conf *c, const void *obj, const char *key)
{
	enum conf_section sec;
	const struct conf_obj *o = conf_obj_of(c, obj, &sec);
	int k;

	if (o == NULL || key == NULL || (k = conf_key_index(sec, key)) < 0)
		return 0;
	return o->key_line[k];
}

void
conf_report(const struct conf *c, FILE *out, const void *obj, const char *key,
    const char *fmt, ...)
{
	enum conf_section sec;
	const struct conf_obj *o = conf_obj_of(c, obj, &sec);
	int line = conf_key_line(c, obj, key);
	va_list ap;

	if (out == NULL)
		return;
	if (line == 0 && o != NULL)
		line = o->line;
	if (line > 0)
		fprintf(out, "%s:%d: ", c->path, line);
	else
		fprintf(out, "%s: ", c->path);
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
}

/* --- look-ups ---------------------------------------------------------- */

int
conf_strlist_has(const struct conf_strlist *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i], name) == 0)
			return 1;
	return 0;
}

const struct conf_certificate *
conf_certificate(const struct conf *c, const char *name)
{
	for (size_t i = 0; i < c->ncertificates; i++)
		if (strcasecmp(c->certificates[i].name, name) == 0)
			return &c->certificates[i];
	return NULL;
}

const struct conf_accepted_domain *
conf_accepted_domain(const struct conf *c, const char *domain)
{
	for (size_t i = 0; i < c->naccepted_domains; i++)
		if (strcasecmp(c->accepted_domains[i].name, domain) == 0)
			return &c->accepted_domains[i];
	return NULL;
}

const struct conf_receive_connector *
conf_receive_connector(const struct conf *c, const char *name)
{
	for (size_t i = 0; i < c->nreceive_connectors; i++)
		if (strcasecmp(c->receive_connectors[i].name, name) == 0)
			return &c->receive_connectors[i];
	return NULL;
}

const struct conf_send_connector *
conf_send_connector(const struct conf *c, const char *name)
{
	for (size_t i = 0; i < c->nsend_connectors; i++)
		if (strcasecmp(c->send_connectors[i].name, name) == 0)
			return &c->send_connectors[i];
	return NULL;
}

const struct conf_transport_rule *
conf_transport_rule(const struct conf *c, const char *name)
{
	for (size_t i = 0; i < c->ntransport_rules; i++)
		if (strcasecmp(c->transport_rules[i].name, name) == 0)
			return &c->transport_rules[i];
	return NULL;
}
