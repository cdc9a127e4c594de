/*
 * sluicectl.c - the administrator's tool: parse the command line, find
 * the command in the table, run it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl/ctl.h"

#define CTL_DEFAULT_CONF "/etc/sluice/sluice.conf"

static int ctl_help(struct ctl *, int, char **);

static const struct ctl_command ctl_commands[] = {
    {"config check", "", "validate the configuration file", ctl_config_check},
    {"config dump", "", "print the effective configuration as INI",
        ctl_config_dump},
    {"get-transportconfig", "", "show [Transport] (Get-TransportConfig)",
        ctl_get_transportconfig},
    {"get-receiveconnector", "[NAME]",
        "show receive connectors (Get-ReceiveConnector)",
        ctl_get_receiveconnector},
    {"get-sendconnector", "[NAME]", "show send connectors (Get-SendConnector)",
        ctl_get_sendconnector},
    {"get-accepteddomain", "[NAME]",
        "show accepted domains (Get-AcceptedDomain)", ctl_get_accepteddomain},
    {"get-certificate", "[NAME]", "show certificates (Get-ExchangeCertificate)",
        ctl_get_certificate},
    {"queue", "", "the daemon's queues, one per next hop (Get-Queue)",
        ctl_queue},
    {"messages",
        "[QUEUE] [--queue Q] [--sender P] [--recipient P] [--status S]",
        "messages, one entry per message and queue (Get-Message)",
        ctl_messages},
    {"retry", "QUEUE", "try a queue's next hop now (Retry-Queue)", ctl_retry},
    {"suspend", "QUEUE|MESSAGE",
        "stop delivering a queue or a message (Suspend-Queue, "
        "Suspend-Message)",
        ctl_suspend},
    {"resume", "QUEUE|MESSAGE",
        "deliver a suspended queue or message (Resume-Queue, "
        "Resume-Message)",
        ctl_resume},
    {"remove", "[--with-ndr] MESSAGE",
        "end a message's delivery, with or without a notice "
        "(Remove-Message)",
        ctl_remove},
    {"export", "MESSAGE [-o FILE]",
        "the stored message, to a file or stdout (Export-Message)", ctl_export},
    {"get-messagetrackinglog",
        "[--sender A] [--recipients A,..] [--message-id ID] "
        "[--event-id E] [--start T] [--end T] ...",
        "search the message tracking log (Get-MessageTrackingLog)",
        ctl_get_messagetrackinglog},
    {"get-tlsposture", "[DOMAIN]",
        "TLS per partner: policy, sessions, versions, verified, failures "
        "(Exchange Online's TLS report)",
        ctl_get_tlsposture},
    /* Exchange's own names for the same commands */
    {"get-queue", "", "= queue", ctl_queue},
    {"get-message", "...", "= messages", ctl_messages},
    {"retry-queue", "QUEUE", "= retry", ctl_retry},
    {"suspend-queue", "QUEUE", "= suspend", ctl_suspend},
    {"resume-queue", "QUEUE", "= resume", ctl_resume},
    {"suspend-message", "MESSAGE", "= suspend", ctl_suspend},
    {"resume-message", "MESSAGE", "= resume", ctl_resume},
    {"remove-message", "[--with-ndr] MESSAGE", "= remove", ctl_remove},
    {"export-message", "MESSAGE [-o FILE]", "= export", ctl_export},
    {"test-tls", "HOST[:PORT] [--domain D] [--connector NAME]",
        "probe a server's STARTTLS and judge it by each TlsAuthLevel",
        ctl_test_tls},
    {"route", "[--no-dns] user@domain",
        "which connector, next hop and TLS policy a recipient gets, and why",
        ctl_route},
    {"help", "", "this list", ctl_help},
};

#define CTL_NCOMMANDS (sizeof(ctl_commands) / sizeof(ctl_commands[0]))

static int
ctl_help(struct ctl *ctl, int argc, char **argv)
{
	(void)ctl;
	(void)argc;
	(void)argv;
	printf("usage: sluicectl [-c FILE] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < CTL_NCOMMANDS; i++) {
		char usage[160];

		snprintf(usage, sizeof(usage), "%s%s%s", ctl_commands[i].name,
		    ctl_commands[i].args[0] ? " " : "", ctl_commands[i].args);
		/* a long usage gets its own line */
		if (strlen(usage) > 34)
			printf("  %s\n  %-34s %s\n", usage, "",
			    ctl_commands[i].summary);
		else
			printf("  %-34s %s\n", usage, ctl_commands[i].summary);
	}
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

int
main(int argc, char **argv)
{
	struct ctl ctl = {CTL_DEFAULT_CONF};
	const struct ctl_command *cmd;
	int ch, words;

	while ((ch = getopt(argc, argv, "+c:h")) != -1) {
		switch (ch) {
		case 'c':
			ctl.conf_path = optarg;
			break;
		default:
			ctl_help(&ctl, 0, NULL);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		ctl_help(&ctl, 0, NULL);
		return 2;
	}
	if ((cmd = ctl_find(argc, argv, &words)) == NULL) {
		fprintf(stderr,
		    "sluicectl: unknown command \"%s\" (see "
		    "sluicectl help)\n",
		    argv[0]);
		return 2;
	}
	return cmd->run(&ctl, argc - words, argv + words);
}
