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
#include "conf/conf_local.h"

/* The largest configuration file we read; far above any real one. */
#define CONF_FILE_MAX (4 * 1024 * 1024)
#define CONF_KEYS_MAX 64

struct conf_obj {
	enum conf_section sec;
	size_t index;
	int line;
	int key_line[CONF_KEYS_MAX];
};

struct conf_parse {
	struct conf *conf;
	const char *path;
	char *basedir;
	FILE *err;
	int errors;
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

static int
conf_key_index(enum conf_section sec, const char *name)
{
	const struct conf_section_desc *d = &conf_sections[sec];

	for (size_t i = 0; i < d->nkeys; i++)
		if (strcasecmp(d->keys[i].name, name) == 0)
			return (int)i;
	return -1;
}

void
conf_error_at(struct conf_parse *p, enum conf_section sec, size_t index,
    const char *key, const char *fmt, ...)
{
	struct conf_obj *o = conf_find_obj(p, sec, index);
	int line = o != NULL ? o->line : 0, k;
	va_list ap;

	if (o != NULL && key != NULL && (k = conf_key_index(sec, key)) >= 0 &&
	    o->key_line[k] > 0)
		line = o->key_line[k];
	va_start(ap, fmt);
	conf_verror(p, line, fmt, ap);
	va_end(ap);
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
		if (strcasecmp(kind, "TransportRule") == 0)
			conf_error(p, p->line,
			    "[TransportRule] sections are not supported yet "
			    "(they are specified by their own issue)");
		else
			conf_error(p, p->line,
			    "unknown section [%s] (expected Transport, "
			    "Certificate, AcceptedDomain, ReceiveConnector or "
			    "SendConnector)",
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
	       t == CT_PERMS;
}

static int
conf_handler(
    void *arg, const char *section, const char *name, const char *value)
{
	struct conf_parse *p = arg;
	const struct conf_key *k;
	char val[512];
	const char *why = NULL;
	size_t vl;
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
		conf_error(p, p->line, "unknown key %s in [%s]", name,
		    conf_sections[p->cur->sec].name);
		return 1;
	}
	k = &conf_sections[p->cur->sec].keys[ki];
	/* A value in double quotes keeps its inner text as is. */
	vl = strlen(value);
	if (vl >= sizeof(val)) {
		conf_error(p, p->line, "%s: value too long", k->name);
		return 1;
	}
	if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
		memcpy(val, value + 1, vl - 2);
		val[vl - 2] = '\0';
	} else {
		memcpy(val, value, vl + 1);
	}
	for (char *q = val; *q != '\0'; q++)
		if (*q == CONF_SEMICOLON)
			*q = ';';
	if (p->continuation && k == p->last_key) {
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
	}
	p->last_key = k;
	obj = conf_object(p->conf, p->cur->sec, p->cur->index);
	if (conf_key_parse(k, obj, val, p->basedir, &why) < 0)
		conf_error(p, p->line, "%s: %s: \"%s\"", k->name, why, val);
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
		if (k->def != NULL &&
		    conf_key_parse(k, obj, k->def, NULL, &why) < 0)
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
	free(p.objs);
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
	free(c->path);
	free(c);
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
