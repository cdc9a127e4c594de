/*
 * sluicectl.c - the administrator's tool: parse the command line, find
 * the command in the table, run it.
 *
 * The table below is the only list of commands: the command list of
 * `sluicectl help`, each command's own help (`help COMMAND` and
 * `COMMAND --help`), the list of subcommands of a group (`sluicectl
 * config`) and the COMMANDS section of sluicectl(8) (`help --man`) are
 * all printed from it, so none of them can forget a command.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "version.h"

#define CTL_DEFAULT_CONF "/etc/sluice/sluice.conf"

static int ctl_help(struct ctl *, int, char **);
static int ctl_group(const char *group, const char *sub);

static const struct ctl_command ctl_commands[] = {
    {"status", "", "version, configuration, uptime, sessions and queue totals",
        ctl_status,
        "Ask the running daemon how it is: its version, the configuration "
        "file and when it was loaded, when it started, its inbound sessions "
        "and outbound connections, and the queue totals (messages and "
        "recipients waiting, ready or in retry). Exits 1 when the daemon "
        "cannot be reached.",
        "sluicectl status\n"
        "sluicectl -c /etc/sluice/sluice.conf status"},
    {"reload", "", "reload the configuration and show what changed", ctl_reload,
        "Make the running daemon load its configuration file again, as "
        "SIGHUP does, and print what changed: [Transport] and every "
        "certificate, accepted domain, connector and transport rule added, "
        "removed or changed, with the keys that changed. Open sessions "
        "finish under "
        "the configuration they started with. A file with errors is "
        "refused: its errors are printed as FILE:LINE: reason, the running "
        "configuration stays in force, and the exit status is 1.",
        "sluicectl reload\n"
        "sluicectl config check && sluicectl reload"},
    {"logs reopen", "", "reopen the log files (after rotation)",
        ctl_logs_reopen,
        "Close and open again the protocol logs, the message tracking log "
        "and the daemon's own log file, as SIGUSR1 does, so that rows go to "
        "new files once logrotate has moved the old ones. The configuration "
        "is not read again.",
        "sluicectl logs reopen"},
    {"config check", "", "validate the configuration file", ctl_config_check,
        "Load the configuration file as sluiced would, certificates and "
        "keys included, and report every error as FILE:LINE: reason. "
        "Nothing is started and the running daemon is not asked. Exits 0 "
        "when the file is good, 1 otherwise.",
        "sluicectl config check\n"
        "sluicectl -c /tmp/new.conf config check"},
    {"config dump", "", "print the effective configuration as INI",
        ctl_config_dump,
        "Print the effective configuration, defaults included, as INI that "
        "loads again as it is (as sshd -T does).",
        "sluicectl config dump\n"
        "sluicectl config dump | grep -i tls"},
    {"config keys", "", "every configuration key with its type and default",
        ctl_config_keys,
        "Print the key table the configuration is read with: one line per "
        "key, tab-separated: section, key, type, default, minimum, maximum "
        "(\"-\" where there is none). docs/config.md and sluice.conf(5) are "
        "checked against it.",
        "sluicectl config keys\n"
        "sluicectl config keys | grep -i LogMaxAge"},
    {"get-transportconfig", "", "show [Transport] (Get-TransportConfig)",
        ctl_get_transportconfig,
        "Show the [Transport] section with every effective value, the way "
        "Get-TransportConfig | Format-List does.",
        "sluicectl get-transportconfig"},
    {"get-receiveconnector", "[NAME]",
        "show receive connectors (Get-ReceiveConnector)",
        ctl_get_receiveconnector,
        "Show one receive connector, or all of them, with every effective "
        "value, the way Get-ReceiveConnector | Format-List does.",
        "sluicectl get-receiveconnector\n"
        "sluicectl get-receiveconnector \"Default Frontend\""},
    {"get-sendconnector", "[NAME]", "show send connectors (Get-SendConnector)",
        ctl_get_sendconnector,
        "Show one send connector, or all of them, with every effective "
        "value, the way Get-SendConnector | Format-List does.",
        "sluicectl get-sendconnector\n"
        "sluicectl get-sendconnector Contoso"},
    {"get-accepteddomain", "[NAME]",
        "show accepted domains (Get-AcceptedDomain)", ctl_get_accepteddomain,
        "Show one accepted domain, or all of them, as Get-AcceptedDomain "
        "does.",
        "sluicectl get-accepteddomain\n"
        "sluicectl get-accepteddomain contoso.com"},
    {"get-certificate", "[NAME]", "show certificates (Get-ExchangeCertificate)",
        ctl_get_certificate,
        "Show one [Certificate] section, or all of them: the files, the "
        "names the certificate carries and when it expires.",
        "sluicectl get-certificate\n"
        "sluicectl get-certificate mx"},
    {"queue", "[--queue P] [--status S] [--limit N] [--offset N]",
        "the daemon's queues, one per next hop (Get-Queue)", ctl_queue,
        "List the running daemon's queues, one per next hop, as Get-Queue "
        "does: identity, delivery type, status (Active, Ready, Retry, "
        "Suspended), message count, next retry and last error. Mail no "
        "connector matches waits in Unreachable. --queue takes * "
        "wildcards; --limit and --offset page through the queues that "
        "pass the filters (Get-Queue -ResultSize).",
        "sluicectl queue\n"
        "sluicectl queue --status Retry --limit 20"},
    {"messages",
        "[QUEUE] [--queue Q] [--sender P] [--recipient P] [--status S] "
        "[--limit N] [--offset N]",
        "messages, one entry per message and queue (Get-Message)", ctl_messages,
        "List the messages waiting, one entry per message and queue, as "
        "Get-Message | Format-List does: identity (QUEUE\\ID, accepted by "
        "every command that takes a message), sender, recipients, subject, "
        "size, status, retry count, next retry and last error. The filters "
        "take * wildcards (Get-Message -Filter); the queue SafetyNet lists "
        "finished messages still held for SafetyNetHoldTime. --limit N "
        "shows at most N entries (Get-Message -ResultSize) after skipping "
        "--offset N of those that pass the filters. The whole list is "
        "shown by default, however long; it is read off the daemon's "
        "event loop and streamed, so mail keeps flowing meanwhile.",
        "sluicectl messages\n"
        "sluicectl messages contoso.com\n"
        "sluicectl messages --limit 100 --offset 200\n"
        "sluicectl messages --sender '*@fabrikam.com' --status Retry\n"
        "sluicectl messages SafetyNet"},
    {"retry", "QUEUE", "try a queue's next hop now (Retry-Queue)", ctl_retry,
        "Try the queue's next hop now instead of at the next retry time, as "
        "Retry-Queue does, and say how many messages were retried.",
        "sluicectl retry contoso.com"},
    {"suspend", "QUEUE|MESSAGE",
        "stop delivering a queue or a message (Suspend-Queue, "
        "Suspend-Message)",
        ctl_suspend,
        "Stop opening connections for a queue (Suspend-Queue; not kept "
        "across restarts, as in Exchange), or hold one message "
        "(Suspend-Message; kept in the queue). Mail still arrives and "
        "waits. An unknown name is an error.",
        "sluicectl suspend contoso.com\n"
        "sluicectl suspend 'contoso.com\\6B11621004DA6005'"},
    {"resume", "QUEUE|MESSAGE",
        "deliver a suspended queue or message (Resume-Queue, "
        "Resume-Message)",
        ctl_resume,
        "Deliver from a suspended queue, or a suspended message, again.",
        "sluicectl resume contoso.com\n"
        "sluicectl resume 6B11621004DA6005"},
    {"remove", "[--with-ndr] MESSAGE",
        "end a message's delivery, with or without a notice "
        "(Remove-Message)",
        ctl_remove,
        "Remove a waiting message: its pending recipients end, without a "
        "notice to the sender (Remove-Message -WithNDR $false) or, with "
        "--with-ndr, with one.",
        "sluicectl remove 6B11621004DA6005\n"
        "sluicectl remove --with-ndr 'Sink\\6B11621004DA6005'"},
    {"export", "MESSAGE [-o FILE]",
        "the stored message, to a file or stdout (Export-Message)", ctl_export,
        "Write the stored message, as it was queued (headers included), to "
        "FILE or to standard output, as Export-Message does.",
        "sluicectl export 6B11621004DA6005 -o /tmp/msg.eml"},
    {"get-messagetrackinglog",
        "[--sender A] [--recipients A,..] [--message-id ID] "
        "[--event-id E] [--start T] [--end T] ...",
        "search the message tracking log (Get-MessageTrackingLog)",
        ctl_get_messagetrackinglog,
        "Search the message tracking log files directly, with "
        "Get-MessageTrackingLog's parameters (also --internal-message-id, "
        "--source, --reference, --message-subject, --result-size, --list, "
        "--path). Times are UTC; the first 1000 rows are shown unless "
        "--result-size says otherwise.",
        "sluicectl get-messagetrackinglog --sender john@contoso.com "
        "--start 2026-12-01\n"
        "sluicectl get-messagetrackinglog --message-id '<id@contoso.com>' "
        "--list"},
    {"get-tlsposture", "[DOMAIN]",
        "TLS per partner: policy, sessions, versions, verified, failures "
        "(Exchange Online's TLS report)",
        ctl_get_tlsposture,
        "What the running daemon recorded of each partner's TLS (a "
        "recipient domain, or a smart-host connector): the policy that "
        "applies now and, over the last 24 hours and 7 days, the "
        "sessions, TLS versions, verified certificates, failures by RFC "
        "8460 type, and messages deferred or returned for TLS. With "
        "DOMAIN, that domain's row (a domain routed through smart hosts "
        "shows its connector's).",
        "sluicectl get-tlsposture\n"
        "sluicectl get-tlsposture contoso.com"},
    {"tls-report", "[--domain D] [--date YYYY-MM-DD] [--send]",
        "the TLS report (RFC 8460 JSON) that would be sent, or send it",
        ctl_tls_report,
        "Print the SMTP TLS report (RFC 8460) of one domain, or of every "
        "domain Sluice delivered to, for one UTC day (default: "
        "yesterday, the day the daily run reports next), exactly as it "
        "would be sent to the addresses in the domain's _smtp._tls "
        "record. Exits 1 when there is nothing to report. With --send "
        "the daemon sends the reports now, as its daily run does (each "
        "address once: one sent already is not sent again; a failed one "
        "is tried again without waiting for its pause), and prints what "
        "became of each address.",
        "sluicectl tls-report\n"
        "sluicectl tls-report --domain contoso.com --date 2026-12-02\n"
        "sluicectl tls-report --send --date 2026-12-02"},
    /* Exchange's own names for the same commands */
    {"get-queue", "", "= queue", ctl_queue, "Exchange's name for queue.",
        "sluicectl get-queue"},
    {"get-message", "...", "= messages", ctl_messages,
        "Exchange's name for messages.", "sluicectl get-message"},
    {"retry-queue", "QUEUE", "= retry", ctl_retry, "Exchange's name for retry.",
        "sluicectl retry-queue contoso.com"},
    {"suspend-queue", "QUEUE", "= suspend", ctl_suspend,
        "Exchange's name for suspend.", "sluicectl suspend-queue contoso.com"},
    {"resume-queue", "QUEUE", "= resume", ctl_resume,
        "Exchange's name for resume.", "sluicectl resume-queue contoso.com"},
    {"suspend-message", "MESSAGE", "= suspend", ctl_suspend,
        "Exchange's name for suspend of one message.",
        "sluicectl suspend-message 6B11621004DA6005"},
    {"resume-message", "MESSAGE", "= resume", ctl_resume,
        "Exchange's name for resume of one message.",
        "sluicectl resume-message 6B11621004DA6005"},
    {"remove-message", "[--with-ndr] MESSAGE", "= remove", ctl_remove,
        "Exchange's name for remove.",
        "sluicectl remove-message --with-ndr 6B11621004DA6005"},
    {"export-message", "MESSAGE [-o FILE]", "= export", ctl_export,
        "Exchange's name for export.",
        "sluicectl export-message 6B11621004DA6005 -o /tmp/msg.eml"},
    {"test-tls", "HOST[:PORT] [--domain D] [--connector NAME]",
        "probe a server's STARTTLS and judge it by each TlsAuthLevel",
        ctl_test_tls,
        "Connect to a server as a send connector would: show its banner and "
        "EHLO, whether STARTTLS is offered and a plaintext MAIL FROM "
        "refused, the handshake and the certificate chain, then which "
        "TlsAuthLevel would pass for domain D and whether the connector "
        "could deliver there now.",
        "sluicectl test-tls mx.contoso.com --domain contoso.com\n"
        "sluicectl test-tls 192.0.2.10:587 --connector Contoso"},
    {"route", "[--no-dns] [--from A] user@domain",
        "which connector, next hop and TLS policy a recipient gets, and why",
        ctl_route,
        "Show where a recipient would go and why: local delivery or the "
        "send connector chosen (AddressSpaces, cost), the TLS policy that "
        "applies, and the next hops in the order the client would try them "
        "(--no-dns: without looking them up). With --from, the transport "
        "rules run first as for a message from A to that recipient alone, "
        "and the route and TLS policy are the ones they decide (a scoped "
        "connector, a TLS floor, a refusal).",
        "sluicectl route user@contoso.com\n"
        "sluicectl route --no-dns postmaster@localhost\n"
        "sluicectl route --from ceo@contoso.com user@fabrikam.com"},
    {"get-transportrule", "[NAME]",
        "show transport rules in priority order (Get-TransportRule)",
        ctl_get_transportrule,
        "Show one transport rule, or all of them in the order they run, "
        "with every effective value, its State and a Description of its "
        "conditions, exceptions and actions, the way Get-TransportRule | "
        "Format-List does. Reads the configuration file only.",
        "sluicectl get-transportrule\n"
        "sluicectl get-transportrule \"Force TLS to Fabrikam\""},
    {"test-transportrule",
        "--from A --to B [--to C ...] [--subject S] [--header \"N: V\" ...] "
        "[--size N] [--client IP] [--connector NAME] [--auth-as A]",
        "which rules match a message, its route and TLS (Test-Message)",
        ctl_test_transportrule,
        "Run a message described on the command line through the transport "
        "rules exactly as sluiced runs them at the end of data, as "
        "Exchange's Test-Message does: the rules that fire for each "
        "recipient, whether the message would be refused, deleted or split, "
        "and each recipient's route, next hop and TLS policy. --auth-as "
        "(Anonymous, Partner, Internal) says how the sender was accepted. "
        "Reads the configuration file only.",
        "sluicectl test-transportrule --from a@contoso.com --to "
        "b@fabrikam.com\n"
        "sluicectl test-transportrule --from a@lab.example --to "
        "b@fabrikam.com --subject 'Q4 budget' --client 192.0.2.7"},
    {"get-mtastspolicy", "[DOMAIN]",
        "MTA-STS policies cached in the queue (RFC 8461)", ctl_get_mtastspolicy,
        "Show the MTA-STS policies sluiced has cached in the queue "
        "database (read-only, whether the daemon runs or not): the TXT "
        "id each was fetched under, when it was fetched and expires, its "
        "mode, max_age and mx patterns. An expired policy is marked: it "
        "is no longer used.",
        "sluicectl get-mtastspolicy\n"
        "sluicectl get-mtastspolicy contoso.com"},
    {"tlsa", "CERTNAME [PORT]",
        "the TLSA record to publish for a certificate (DANE, RFC 7672)",
        ctl_tlsa,
        "Print the DANE-EE(3) SPKI(1) SHA2-256(1) record of a "
        "[Certificate] section, once as \"3 1 1 HEX\" and once per DNS "
        "name of the certificate as a zone file line at _PORT._tcp.NAME "
        "(PORT 25 unless given).",
        "sluicectl tlsa mx\n"
        "sluicectl tlsa mx 587"},
    {"help", "[COMMAND]", "this list, or one command's help", ctl_help,
        "Without a command, list the commands. With one, show its usage, "
        "what it does and examples; `sluicectl COMMAND --help` does the "
        "same. A group (config, logs) lists its subcommands.",
        "sluicectl help\n"
        "sluicectl help reload\n"
        "sluicectl config --help"},
};

#define CTL_NCOMMANDS (sizeof(ctl_commands) / sizeof(ctl_commands[0]))

static void
ctl_usage_line(FILE *out, const struct ctl_command *c)
{
	fprintf(out, "usage: sluicectl [-c FILE] %s%s%s\n", c->name,
	    c->args[0] ? " " : "", c->args);
}

static void
ctl_list(FILE *out, const char *group)
{
	size_t glen = group != NULL ? strlen(group) : 0;

	for (size_t i = 0; i < CTL_NCOMMANDS; i++) {
		const struct ctl_command *c = &ctl_commands[i];
		char usage[160];

		if (group != NULL && (strncmp(c->name, group, glen) != 0 ||
		                         c->name[glen] != ' '))
			continue;
		snprintf(usage, sizeof(usage), "%s%s%s", c->name,
		    c->args[0] ? " " : "", c->args);
		/* a long usage gets its own line */
		if (strlen(usage) > 34)
			fprintf(
			    out, "  %s\n  %-34s %s\n", usage, "", c->summary);
		else
			fprintf(out, "  %-34s %s\n", usage, c->summary);
	}
}

static void
ctl_overview(FILE *out)
{
	fprintf(out,
	    "usage: sluicectl [-c FILE] COMMAND [ARGS]\n"
	    "       sluicectl help COMMAND | COMMAND --help | --version\n"
	    "\n"
	    "  -c FILE  configuration (default %s)\n\ncommands:\n",
	    CTL_DEFAULT_CONF);
	ctl_list(out, NULL);
}

/* Text wrapped at 76 columns, indented by two. */
static void
ctl_wrap(FILE *out, const char *text)
{
	const char *p = text;

	while (*p != '\0') {
		size_t n = strlen(p), cut = n;

		if (n > 74) {
			cut = 74;
			while (cut > 0 && p[cut] != ' ')
				cut--;
			if (cut == 0)
				cut = 74;
		}
		fprintf(out, "  %.*s\n", (int)cut, p);
		p += cut;
		while (*p == ' ')
			p++;
	}
}

static void
ctl_command_help(FILE *out, const struct ctl_command *c)
{
	ctl_usage_line(out, c);
	fprintf(out, "\n");
	ctl_wrap(out, c->help != NULL ? c->help : c->summary);
	if (c->examples != NULL) {
		const char *p = c->examples;

		fprintf(out, "\nexamples:\n");
		while (*p != '\0') {
			size_t n = strcspn(p, "\n");

			fprintf(out, "  %.*s\n", (int)n, p);
			p += n;
			if (*p == '\n')
				p++;
		}
	}
}

/* Is word the first word of some commands ("config", "logs")? */
static int
ctl_is_group(const char *word)
{
	size_t n = strlen(word);

	for (size_t i = 0; i < CTL_NCOMMANDS; i++)
		if (strncmp(ctl_commands[i].name, word, n) == 0 &&
		    ctl_commands[i].name[n] == ' ')
			return 1;
	return 0;
}

/* A command is one or two words ("config check"); match the longest. */
static const struct ctl_command *
ctl_find(int argc, char **argv, int *words)
{
	for (size_t i = 0; i < CTL_NCOMMANDS; i++) {
		const char *name = ctl_commands[i].name;
		const char *sp = strchr(name, ' ');

		if (sp == NULL && strcmp(name, argv[0]) == 0) {
			*words = 1;
			return &ctl_commands[i];
		}
		if (sp != NULL && argc >= 2 &&
		    strncmp(name, argv[0], (size_t)(sp - name)) == 0 &&
		    argv[0][sp - name] == '\0' &&
		    strcmp(sp + 1, argv[1]) == 0) {
			*words = 2;
			return &ctl_commands[i];
		}
	}
	return NULL;
}

/* roff: a backslash doubled, a line never starting with . or ' */
static void
ctl_roff(FILE *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\')
			fputs("\\e", out);
		else if (s[i] == '-')
			fputs("\\-", out);
		else
			fputc(s[i], out);
	}
}

/* The COMMANDS section of sluicectl(8), for man/gen-man. */
static void
ctl_help_man(FILE *out)
{
	for (size_t i = 0; i < CTL_NCOMMANDS; i++) {
		const struct ctl_command *c = &ctl_commands[i];
		const char *p = c->examples != NULL ? c->examples : "";

		fputs(".TP\n\\fB", out);
		ctl_roff(out, c->name, strlen(c->name));
		fputs("\\fR", out);
		if (c->args[0] != '\0') {
			fputs(" \\fI", out);
			ctl_roff(out, c->args, strlen(c->args));
			fputs("\\fR", out);
		}
		fputs("\n\\&", out);
		ctl_roff(out, c->help != NULL ? c->help : c->summary,
		    strlen(c->help != NULL ? c->help : c->summary));
		fputs("\n", out);
		while (*p != '\0') {
			size_t n = strcspn(p, "\n");

			fputs(".br\n\\fIExample:\\fR \\f(CW", out);
			ctl_roff(out, p, n);
			fputs("\\fR\n", out);
			p += n;
			if (*p == '\n')
				p++;
		}
	}
}

static int
ctl_help(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_command *c;
	int words;

	(void)ctl;
	if (argc == 0) {
		ctl_overview(stdout);
		return 0;
	}
	if (argc == 1 && strcmp(argv[0], "--help") == 0) {
		for (size_t i = 0; i < CTL_NCOMMANDS; i++)
			if (ctl_commands[i].run == ctl_help)
				ctl_command_help(stdout, &ctl_commands[i]);
		return 0;
	}
	if (argc == 1 && strcmp(argv[0], "--man") == 0) {
		ctl_help_man(stdout);
		return 0;
	}
	if ((c = ctl_find(argc, argv, &words)) != NULL && words == argc) {
		ctl_command_help(stdout, c);
		return 0;
	}
	if (argc == 1 && ctl_is_group(argv[0]))
		return ctl_group(argv[0], "--help");
	fprintf(stderr,
	    "sluicectl: no command \"%s%s%s\" (see sluicectl help)\n", argv[0],
	    argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
	return 2;
}

/*
 * A group without a subcommand it knows ("sluicectl config", "sluicectl
 * logs rotate"): list the group, as an error unless --help asked for it.
 */
static int
ctl_group(const char *group, const char *sub)
{
	int asked = sub != NULL && strcmp(sub, "--help") == 0;
	FILE *out = asked ? stdout : stderr;

	if (sub != NULL && !asked)
		fprintf(out, "sluicectl: no command \"%s %s\"\n\n", group, sub);
	fprintf(out,
	    "usage: sluicectl [-c FILE] %s SUBCOMMAND\n\nsubcommands:\n",
	    group);
	ctl_list(out, group);
	return asked ? 0 : 2;
}

/* "COMMAND ... --help" anywhere after the command words. */
static int
ctl_wants_help(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0)
			return 1;
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct ctl ctl = {CTL_DEFAULT_CONF};
	const struct ctl_command *cmd;
	int ch, words;

	while ((ch = getopt_long(argc, argv, "+c:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			ctl.conf_path = optarg;
			break;
		case 'V':
			printf("sluicectl %s\n", SLUICE_VERSION);
			return 0;
		case 'h':
			ctl_overview(stdout);
			return 0;
		default:
			ctl_overview(stderr);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		ctl_overview(stderr);
		return 2;
	}
	if ((cmd = ctl_find(argc, argv, &words)) == NULL) {
		if (ctl_is_group(argv[0]))
			return ctl_group(argv[0], argc > 1 ? argv[1] : NULL);
		fprintf(stderr,
		    "sluicectl: unknown command \"%s\" (see "
		    "sluicectl help)\n",
		    argv[0]);
		return 2;
	}
	if (cmd->run != ctl_help &&
	    ctl_wants_help(argc - words, argv + words)) {
		ctl_command_help(stdout, cmd);
		return 0;
	}
	return cmd->run(&ctl, argc - words, argv + words);
}
