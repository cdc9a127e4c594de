/*
 * test_rules_match.c - every condition and every exception of a transport
 * rule (src/rules/rule_match.c) as one table: each rule of the
 * configuration below tests one predicate, each row a message and a
 * recipient and whether the rule applies.  Subdomains of
 * RecipientDomainIs, the scopes, IP ranges, header and subject words
 * (case-insensitive, whole words, encoded-words), patterns, size, where
 * the sender comes from, and the pattern limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_rules_util.h"

static const char conf_text[] =
    "[Transport]\n"
    "QueueDirectory = /tmp/sluice-rules-match\n"
    "TLSSendDomainSecureList = partner.example\n"
    "MaxReceiveSize = 10MB\n"
    "[AcceptedDomain contoso.com]\n"
    "[AcceptedDomain relay.contoso.com]\n"
    "DomainType = InternalRelay\n"
    "[AcceptedDomain ext.contoso.com]\n"
    "DomainType = ExternalRelay\n"
    "[ReceiveConnector r]\n"
    "Bindings = 127.0.0.1:2525\n"
    "[SendConnector Internet]\n"
    "AddressSpaces = *\n"
    /* conditions */
    "[TransportRule SenderDomain]\n"
    "SenderDomainIs = contoso.com, Fabrikam.NET\n"
    "SenderAddressLocation = Envelope\n"
    "StopRuleProcessing = true\n"
    "[TransportRule RecipientDomain]\n"
    "RecipientDomainIs = fabrikam.com\n"
    "StopRuleProcessing = true\n"
    "[TransportRule From]\n"
    "From = ceo@contoso.com, Cfo@Contoso.com\n"
    "SenderAddressLocation = Envelope\n"
    "StopRuleProcessing = true\n"
    "[TransportRule SentTo]\n"
    "SentTo = legal@fabrikam.com\n"
    "StopRuleProcessing = true\n"
    "[TransportRule FromIn]\n"
    "FromScope = InOrganization\n"
    "SenderAddressLocation = Envelope\n"
    "StopRuleProcessing = true\n"
    "[TransportRule FromOut]\n"
    "FromScope = NotInOrganization\n"
    "SenderAddressLocation = Envelope\n"
    "StopRuleProcessing = true\n"
    "[TransportRule ToIn]\n"
    "SentToScope = InOrganization\n"
    "StopRuleProcessing = true\n"
    "[TransportRule ToOut]\n"
    "SentToScope = NotInOrganization\n"
    "StopRuleProcessing = true\n"
    "[TransportRule ToPartner]\n"
    "SentToScope = ExternalPartner\n"
    "StopRuleProcessing = true\n"
    "[TransportRule FromPattern]\n"
    "FromAddressMatchesPatterns = \"^legal\\d{1,3}@\", ^ceo@\n"
    "SenderAddressLocation = Envelope\n"
    "StopRuleProcessing = true\n"
    "[TransportRule ToPattern]\n"
    "RecipientAddressMatchesPatterns = \"@(sub\\.)?fabrikam\\.com$\"\n"
    "StopRuleProcessing = true\n"
    "[TransportRule Ip]\n"
    "SenderIpRanges = 192.0.2.0/24, 198.51.100.10-198.51.100.20,\n"
    "    2001:db8::/32\n"
    "StopRuleProcessing = true\n"
    "[TransportRule HeaderWords]\n"
    "HeaderContainsMessageHeader = X-Class\n"
    "HeaderContainsWords = secret, \"top  secret\", \"a,b\"\n"
    "StopRuleProcessing = true\n"
    "[TransportRule HeaderPattern]\n"
    "HeaderMatchesMessageHeader = X-Spam-Score\n"
    "HeaderMatchesPatterns = \"^(1[0-9]|[5-9])(\\.[0-9]+)?$\"\n"
    "StopRuleProcessing = true\n"
    "[TransportRule SubjectWords]\n"
    "SubjectContainsWords = budget, \"q3 report\", größe, [ext]\n"
    "StopRuleProcessing = true\n"
    "[TransportRule SubjectPattern]\n"
    "SubjectMatchesPatterns = \"inv(oice)?\\s*#\\d+\"\n"
    "StopRuleProcessing = true\n"
    "[TransportRule Size]\n"
    "MessageSizeOver = 10KB\n"
    "StopRuleProcessing = true\n"
    /* where the sender is */
    "[TransportRule HeaderLoc]\n"
    "From = boss@contoso.com\n"
    "StopRuleProcessing = true\n"
    "[TransportRule EnvelopeLoc]\n"
    "From = boss@contoso.com\n"
    "SenderAddressLocation = Envelope\n"
    "StopRuleProcessing = true\n"
    "[TransportRule EitherLoc]\n"
    "From = boss@contoso.com\n"
    "SenderAddressLocation = HeaderOrEnvelope\n"
    "StopRuleProcessing = true\n"
    /* AND between conditions, any exception cancels */
    "[TransportRule And]\n"
    "SenderDomainIs = contoso.com\n"
    "RecipientDomainIs = fabrikam.com\n"
    "SenderAddressLocation = Envelope\n"
    "StopRuleProcessing = true\n"
    "[TransportRule NoCondition]\n"
    "StopRuleProcessing = true\n"
    /* each exception alone, on a rule that otherwise always applies */
    "[TransportRule XSenderDomain]\n"
    "ExceptIfSenderDomainIs = lab.contoso.com\n"
    "SenderAddressLocation = Envelope\n"
    "StopRuleProcessing = true\n"
    "[TransportRule XRecipientDomain]\n"
    "ExceptIfRecipientDomainIs = fabrikam.com\n"
    "StopRuleProcessing = true\n"
    "[TransportRule XFrom]\n"
    "ExceptIfFrom = ceo@contoso.com\n"
    "SenderAddressLocation = Envelope\n"
    "StopRuleProcessing = true\n"
    "[TransportRule XSentTo]\n"
    "ExceptIfSentTo = legal@fabrikam.com\n"
    "StopRuleProcessing = true\n"
    "[TransportRule XFromScope]\n"
    "ExceptIfFromScope = InOrganization\n"
    "SenderAddressLocation = Envelope\n"
    "StopRuleProcessing = true\n"
    "[TransportRule XSentToScope]\n"
    "ExceptIfSentToScope = InOrganization\n"
    "StopRuleProcessing = true\n"
    "[TransportRule XFromPattern]\n"
    "ExceptIfFromAddressMatchesPatterns = ^noreply@\n"
    "SenderAddressLocation = Envelope\n"
    "StopRuleProcessing = true\n"
    "[TransportRule XToPattern]\n"
    "ExceptIfRecipientAddressMatchesPatterns = ^postmaster@\n"
    "StopRuleProcessing = true\n"
    "[TransportRule XIp]\n"
    "ExceptIfSenderIpRanges = 10.0.0.0/8\n"
    "StopRuleProcessing = true\n"
    "[TransportRule XHeaderWords]\n"
    "ExceptIfHeaderContainsMessageHeader = X-Class\n"
    "ExceptIfHeaderContainsWords = public\n"
    "StopRuleProcessing = true\n"
    "[TransportRule XHeaderPattern]\n"
    "ExceptIfHeaderMatchesMessageHeader = X-Mailer\n"
    "ExceptIfHeaderMatchesPatterns = ^bulk\n"
    "StopRuleProcessing = true\n"
    "[TransportRule XSubjectWords]\n"
    "ExceptIfSubjectContainsWords = newsletter\n"
    "StopRuleProcessing = true\n"
    "[TransportRule XSubjectPattern]\n"
    "ExceptIfSubjectMatchesPatterns = ^re:\n"
    "StopRuleProcessing = true\n"
    "[TransportRule XSize]\n"
    "ExceptIfMessageSizeOver = 1KB\n"
    "StopRuleProcessing = true\n"
    /* a pattern that backtracks without end on hostile text */
    "[TransportRule Redos]\n"
    "SubjectMatchesPatterns = \"^(a|aa)+$\"\n"
    "StopRuleProcessing = true\n";

static struct conf *conf;

static int
setup(void **state)
{
	char err[2048];

	(void)state;
	conf = tr_load(conf_text, err, sizeof(err));
	if (conf == NULL)
		fprintf(stderr, "%s", err);
	return conf == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	conf_free(conf);
	return 0;
}

struct row {
	const char *rule;
	const char *sender; /* envelope */
	const char *rcpt;
	const char *headers; /* NULL: "From: <sender>\r\nSubject: hello\r\n" */
	const char *client;
	enum rule_auth auth;
	uint64_t size; /* 0: the message's own */
	int want;      /* 1, 0 or -1 */
};

#define ANON RULE_AUTH_ANONYMOUS
#define INT RULE_AUTH_INTERNAL

static const struct row rows[] = {
    /* SenderDomainIs: the domain and its subdomains, case-insensitive */
    {"SenderDomain", "a@contoso.com", "x@y.org", NULL, NULL, ANON, 0, 1},
    {"SenderDomain", "a@mail.CONTOSO.com", "x@y.org", NULL, NULL, ANON, 0, 1},
    {"SenderDomain", "a@fabrikam.net", "x@y.org", NULL, NULL, ANON, 0, 1},
    {"SenderDomain", "a@notcontoso.com", "x@y.org", NULL, NULL, ANON, 0, 0},
    {"SenderDomain", "a@contoso.com.evil", "x@y.org", NULL, NULL, ANON, 0, 0},
    {"SenderDomain", "", "x@y.org", NULL, NULL, ANON, 0, 0},
    /* RecipientDomainIs: subdomains too, never a mere suffix */
    {"RecipientDomain", "a@b.org", "u@fabrikam.com", NULL, NULL, ANON, 0, 1},
    {"RecipientDomain", "a@b.org", "u@mx.eu.fabrikam.com", NULL, NULL, ANON, 0,
        1},
    {"RecipientDomain", "a@b.org", "u@FABRIKAM.COM", NULL, NULL, ANON, 0, 1},
    {"RecipientDomain", "a@b.org", "u@notfabrikam.com", NULL, NULL, ANON, 0, 0},
    {"RecipientDomain", "a@b.org", "u@fabrikam.com.evil", NULL, NULL, ANON, 0,
        0},
    {"RecipientDomain", "a@b.org", "u@fabrikam.net", NULL, NULL, ANON, 0, 0},
    /* From, SentTo: whole addresses, case-insensitive */
    {"From", "CEO@contoso.com", "x@y.org", NULL, NULL, ANON, 0, 1},
    {"From", "cfo@contoso.com", "x@y.org", NULL, NULL, ANON, 0, 1},
    {"From", "ceo@contoso.co", "x@y.org", NULL, NULL, ANON, 0, 0},
    {"From", "xceo@contoso.com", "x@y.org", NULL, NULL, ANON, 0, 0},
    {"SentTo", "a@b.org", "Legal@Fabrikam.com", NULL, NULL, ANON, 0, 1},
    {"SentTo", "a@b.org", "legal@sub.fabrikam.com", NULL, NULL, ANON, 0, 0},
    /* FromScope: our domain and from inside */
    {"FromIn", "a@contoso.com", "x@y.org", NULL, NULL, INT, 0, 1},
    {"FromIn", "a@relay.contoso.com", "x@y.org", NULL, NULL, INT, 0, 1},
    {"FromIn", "a@contoso.com", "x@y.org", NULL, NULL, ANON, 0, 0},
    {"FromIn", "a@contoso.com", "x@y.org", NULL, NULL, RULE_AUTH_PARTNER, 0, 0},
    {"FromIn", "a@gmail.example", "x@y.org", NULL, NULL, INT, 0, 0},
    {"FromOut", "a@contoso.com", "x@y.org", NULL, NULL, ANON, 0, 1},
    {"FromOut", "a@contoso.com", "x@y.org", NULL, NULL, INT, 0, 0},
    {"FromOut", "", "x@y.org", NULL, NULL, ANON, 0, 1},
    /* SentToScope */
    {"ToIn", "a@b.org", "u@contoso.com", NULL, NULL, ANON, 0, 1},
    {"ToIn", "a@b.org", "u@relay.contoso.com", NULL, NULL, ANON, 0, 1},
    {"ToIn", "a@b.org", "u@ext.contoso.com", NULL, NULL, ANON, 0, 0},
    {"ToIn", "a@b.org", "u@sub.contoso.com", NULL, NULL, ANON, 0, 0},
    {"ToOut", "a@b.org", "u@ext.contoso.com", NULL, NULL, ANON, 0, 1},
    {"ToOut", "a@b.org", "u@fabrikam.com", NULL, NULL, ANON, 0, 1},
    {"ToOut", "a@b.org", "u@Contoso.com", NULL, NULL, ANON, 0, 0},
    {"ToPartner", "a@b.org", "u@partner.example", NULL, NULL, ANON, 0, 1},
    {"ToPartner", "a@b.org", "u@PARTNER.example", NULL, NULL, ANON, 0, 1},
    {"ToPartner", "a@b.org", "u@fabrikam.com", NULL, NULL, ANON, 0, 0},
    {"ToPartner", "a@b.org", "u@mx.partner.example", NULL, NULL, ANON, 0, 0},
    /* address patterns: PCRE2, case-insensitive, unanchored */
    {"FromPattern", "legal12@contoso.com", "x@y.org", NULL, NULL, ANON, 0, 1},
    {"FromPattern", "LEGAL1@x.org", "x@y.org", NULL, NULL, ANON, 0, 1},
    {"FromPattern", "legal1234@x.org", "x@y.org", NULL, NULL, ANON, 0, 0},
    {"FromPattern", "legal@x.org", "x@y.org", NULL, NULL, ANON, 0, 0},
    {"FromPattern", "ceo@x.org", "x@y.org", NULL, NULL, ANON, 0, 1},
    {"ToPattern", "a@b.org", "u@sub.fabrikam.com", NULL, NULL, ANON, 0, 1},
    {"ToPattern", "a@b.org", "u@Fabrikam.Com", NULL, NULL, ANON, 0, 1},
    {"ToPattern", "a@b.org", "u@fabrikam.com.evil", NULL, NULL, ANON, 0, 0},
    /* SenderIpRanges: CIDR, a-b, IPv6; unknown client never matches */
    {"Ip", "a@b.org", "x@y.org", NULL, "192.0.2.77", ANON, 0, 1},
    {"Ip", "a@b.org", "x@y.org", NULL, "192.0.3.1", ANON, 0, 0},
    {"Ip", "a@b.org", "x@y.org", NULL, "198.51.100.10", ANON, 0, 1},
    {"Ip", "a@b.org", "x@y.org", NULL, "198.51.100.20", ANON, 0, 1},
    {"Ip", "a@b.org", "x@y.org", NULL, "198.51.100.21", ANON, 0, 0},
    {"Ip", "a@b.org", "x@y.org", NULL, "2001:db8:1::5", ANON, 0, 1},
    {"Ip", "a@b.org", "x@y.org", NULL, "2001:db9::5", ANON, 0, 0},
    {"Ip", "a@b.org", "x@y.org", NULL, NULL, ANON, 0, 0},
    /* header words: whole words, case-insensitive, any field of the name,
     * phrases across blanks and folding, encoded-words */
    {"HeaderWords", "a@b.org", "x@y.org", "X-Class: Secret\r\n", NULL, ANON, 0,
        1},
    {"HeaderWords", "a@b.org", "x@y.org", "X-Class: (SECRET)\r\n", NULL, ANON,
        0, 1},
    {"HeaderWords", "a@b.org", "x@y.org", "X-Class: secretary\r\n", NULL, ANON,
        0, 0},
    {"HeaderWords", "a@b.org", "x@y.org", "X-Class: topsecret\r\n", NULL, ANON,
        0, 0},
    {"HeaderWords", "a@b.org", "x@y.org",
        "X-Class: public\r\nx-class: very top\r\n\tsecret stuff\r\n", NULL,
        ANON, 0, 1},
    {"HeaderWords", "a@b.org", "x@y.org",
        "X-Class: =?UTF-8?Q?very_secret?=\r\n", NULL, ANON, 0, 1},
    {"HeaderWords", "a@b.org", "x@y.org", "X-Class: a,b\r\n", NULL, ANON, 0, 1},
    {"HeaderWords", "a@b.org", "x@y.org", "X-Klass: secret\r\n", NULL, ANON, 0,
        0},
    {"HeaderWords", "a@b.org", "x@y.org", "Subject: secret\r\n", NULL, ANON, 0,
        0},
    /* header patterns */
    {"HeaderPattern", "a@b.org", "x@y.org", "X-Spam-Score: 7.5\r\n", NULL, ANON,
        0, 1},
    {"HeaderPattern", "a@b.org", "x@y.org", "X-Spam-Score: 12\r\n", NULL, ANON,
        0, 1},
    {"HeaderPattern", "a@b.org", "x@y.org", "X-Spam-Score: 2.5\r\n", NULL, ANON,
        0, 0},
    {"HeaderPattern", "a@b.org", "x@y.org", "X-Spam-Score:   9\r\n", NULL, ANON,
        0, 1},
    /* subject words */
    {"SubjectWords", "a@b.org", "x@y.org", "Subject: Q3 Budget!\r\n", NULL,
        ANON, 0, 1},
    {"SubjectWords", "a@b.org", "x@y.org", "Subject: budgeting\r\n", NULL, ANON,
        0, 0},
    {"SubjectWords", "a@b.org", "x@y.org", "Subject: the budget-plan\r\n", NULL,
        ANON, 0, 1},
    {"SubjectWords", "a@b.org", "x@y.org", "Subject: your Q3   REPORT\r\n",
        NULL, ANON, 0, 1},
    {"SubjectWords", "a@b.org", "x@y.org", "Subject: Q3report\r\n", NULL, ANON,
        0, 0},
    {"SubjectWords", "a@b.org", "x@y.org", "Subject: die größe zählt\r\n", NULL,
        ANON, 0, 1},
    {"SubjectWords", "a@b.org", "x@y.org", "Subject: übergrößen\r\n", NULL,
        ANON, 0, 0},
    {"SubjectWords", "a@b.org", "x@y.org",
        "Subject: =?ISO-8859-1?Q?gr=F6=DFe?=\r\n", NULL, ANON, 0, 1},
    {"SubjectWords", "a@b.org", "x@y.org",
        "Subject: =?UTF-8?B?UTMgYnVkZ2V0?=\r\n", NULL, ANON, 0, 1},
    {"SubjectWords", "a@b.org", "x@y.org", "Subject: [EXT]hello\r\n", NULL,
        ANON, 0, 1},
    {"SubjectWords", "a@b.org", "x@y.org", "X-Subject: budget\r\n", NULL, ANON,
        0, 0},
    /* subject patterns */
    {"SubjectPattern", "a@b.org", "x@y.org", "Subject: Invoice #123\r\n", NULL,
        ANON, 0, 1},
    {"SubjectPattern", "a@b.org", "x@y.org", "Subject: re: INV#9\r\n", NULL,
        ANON, 0, 1},
    {"SubjectPattern", "a@b.org", "x@y.org", "Subject: invoice\r\n", NULL, ANON,
        0, 0},
    {"SubjectPattern", "a@b.org", "x@y.org", "Subject: inv # \xff\xfe 7\r\n",
        NULL, ANON, 0, 0},
    /* size: strictly over */
    {"Size", "a@b.org", "x@y.org", NULL, NULL, ANON, 10241, 1},
    {"Size", "a@b.org", "x@y.org", NULL, NULL, ANON, 10240, 0},
    {"Size", "a@b.org", "x@y.org", NULL, NULL, ANON, 100, 0},
    /* the sender: the From field by default, the envelope, or either */
    {"HeaderLoc", "bounce@lists.example", "x@y.org",
        "From: \"The Boss\" <Boss@Contoso.com>\r\n", NULL, ANON, 0, 1},
    {"HeaderLoc", "boss@contoso.com", "x@y.org", "From: other@contoso.com\r\n",
        NULL, ANON, 0, 0},
    {"HeaderLoc", "boss@contoso.com", "x@y.org", "Subject: no from\r\n", NULL,
        ANON, 0, 1},
    {"HeaderLoc", "x@y.org", "x@y.org", "From: boss@contoso.com (the boss)\r\n",
        NULL, ANON, 0, 1},
    {"EnvelopeLoc", "bounce@lists.example", "x@y.org",
        "From: boss@contoso.com\r\n", NULL, ANON, 0, 0},
    {"EnvelopeLoc", "boss@contoso.com", "x@y.org",
        "From: other@contoso.com\r\n", NULL, ANON, 0, 1},
    {"EitherLoc", "bounce@lists.example", "x@y.org",
        "From: boss@contoso.com\r\n", NULL, ANON, 0, 1},
    {"EitherLoc", "boss@contoso.com", "x@y.org", "From: x@y.org\r\n", NULL,
        ANON, 0, 1},
    {"EitherLoc", "a@b.org", "x@y.org", "From: x@y.org\r\n", NULL, ANON, 0, 0},
    /* conditions AND */
    {"And", "a@contoso.com", "u@fabrikam.com", NULL, NULL, ANON, 0, 1},
    {"And", "a@contoso.com", "u@other.org", NULL, NULL, ANON, 0, 0},
    {"And", "a@other.org", "u@fabrikam.com", NULL, NULL, ANON, 0, 0},
    {"NoCondition", "", "u@anything.example", NULL, NULL, ANON, 0, 1},
    /* each exception cancels, and only when it holds */
    {"XSenderDomain", "a@lab.contoso.com", "x@y.org", NULL, NULL, ANON, 0, 0},
    {"XSenderDomain", "a@x.lab.contoso.com", "x@y.org", NULL, NULL, ANON, 0, 0},
    {"XSenderDomain", "a@contoso.com", "x@y.org", NULL, NULL, ANON, 0, 1},
    {"XRecipientDomain", "a@b.org", "u@mx.fabrikam.com", NULL, NULL, ANON, 0,
        0},
    {"XRecipientDomain", "a@b.org", "u@contoso.com", NULL, NULL, ANON, 0, 1},
    {"XFrom", "CEO@contoso.com", "x@y.org", NULL, NULL, ANON, 0, 0},
    {"XFrom", "cfo@contoso.com", "x@y.org", NULL, NULL, ANON, 0, 1},
    {"XSentTo", "a@b.org", "legal@fabrikam.com", NULL, NULL, ANON, 0, 0},
    {"XSentTo", "a@b.org", "sales@fabrikam.com", NULL, NULL, ANON, 0, 1},
    {"XFromScope", "a@contoso.com", "x@y.org", NULL, NULL, INT, 0, 0},
    {"XFromScope", "a@contoso.com", "x@y.org", NULL, NULL, ANON, 0, 1},
    {"XSentToScope", "a@b.org", "u@contoso.com", NULL, NULL, ANON, 0, 0},
    {"XSentToScope", "a@b.org", "u@fabrikam.com", NULL, NULL, ANON, 0, 1},
    {"XFromPattern", "noreply@b.org", "x@y.org", NULL, NULL, ANON, 0, 0},
    {"XFromPattern", "reply@b.org", "x@y.org", NULL, NULL, ANON, 0, 1},
    {"XToPattern", "a@b.org", "Postmaster@y.org", NULL, NULL, ANON, 0, 0},
    {"XToPattern", "a@b.org", "user@y.org", NULL, NULL, ANON, 0, 1},
    {"XIp", "a@b.org", "x@y.org", NULL, "10.1.2.3", ANON, 0, 0},
    {"XIp", "a@b.org", "x@y.org", NULL, "11.1.2.3", ANON, 0, 1},
    {"XIp", "a@b.org", "x@y.org", NULL, NULL, ANON, 0, 1},
    {"XHeaderWords", "a@b.org", "x@y.org", "X-Class: Public\r\n", NULL, ANON, 0,
        0},
    {"XHeaderWords", "a@b.org", "x@y.org", "X-Class: publicity\r\n", NULL, ANON,
        0, 1},
    {"XHeaderPattern", "a@b.org", "x@y.org", "X-Mailer: BulkMail 2\r\n", NULL,
        ANON, 0, 0},
    {"XHeaderPattern", "a@b.org", "x@y.org", "X-Mailer: mutt\r\n", NULL, ANON,
        0, 1},
    {"XSubjectWords", "a@b.org", "x@y.org", "Subject: Our NEWSLETTER\r\n", NULL,
        ANON, 0, 0},
    {"XSubjectWords", "a@b.org", "x@y.org", "Subject: newsletters\r\n", NULL,
        ANON, 0, 1},
    {"XSubjectPattern", "a@b.org", "x@y.org", "Subject: RE: hi\r\n", NULL, ANON,
        0, 0},
    {"XSubjectPattern", "a@b.org", "x@y.org", "Subject: hi re:\r\n", NULL, ANON,
        0, 1},
    {"XSize", "a@b.org", "x@y.org", NULL, NULL, ANON, 1025, 0},
    {"XSize", "a@b.org", "x@y.org", NULL, NULL, ANON, 1024, 1},
    /* a pattern that runs out of its limits is an error, not a match */
    {"Redos", "a@b.org", "x@y.org",
        "Subject: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab\r\n", NULL,
        ANON, 0, -1},
    {"Redos", "a@b.org", "x@y.org", "Subject: aaaa\r\n", NULL, ANON, 0, 1},
};

static void
test_conditions_and_exceptions(void **state)
{
	int failures = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *t = &rows[i];
		const struct rule *r = tr_rule(conf, t->rule);
		const char *rcpts[1] = {t->rcpt};
		char headers[512];
		struct tr_msg msg;
		struct rule_headers h;
		struct rule_match_cache *mc;
		int got;

		assert_non_null(r);
		if (t->headers == NULL)
			snprintf(headers, sizeof(headers),
			    "From: %s\r\nSubject: hello\r\n",
			    t->sender[0] ? t->sender
			                 : "nobody@nowhere.example");
		else
			snprintf(headers, sizeof(headers), "%s", t->headers);
		tr_msg(&msg, t->sender, rcpts, 1, headers, t->client);
		msg.m.auth = t->auth;
		if (t->size != 0)
			msg.m.size = t->size;
		assert_int_equal(
		    rule_headers_parse(msg.m.data, msg.m.len, &h), 0);
		mc = rule_match_cache_new(rule_set_count(conf->rules));
		assert_non_null(mc);
		got = rule_match(r, conf, &msg.m, &h, t->rcpt, mc);
		if (got != t->want) {
			print_error("row %zu: rule %s, from %s to %s%s%s: got "
			            "%d, want %d\n",
			    i, t->rule, t->sender, t->rcpt,
			    t->headers ? ", headers " : "",
			    t->headers ? t->headers : "", got, t->want);
			failures++;
		}
		rule_match_cache_free(mc);
		rule_headers_free(&h);
	}
	assert_int_equal(failures, 0);
}

/* The same predicate answers from the cache for a second recipient. */
static void
test_cache_per_message(void **state)
{
	const struct rule *r = tr_rule(conf, "And");
	const char *rcpts[2] = {"a@fabrikam.com", "b@other.org"};
	struct tr_msg msg;
	struct rule_headers h;
	struct rule_match_cache *mc;

	(void)state;
	tr_msg(&msg, "x@contoso.com", rcpts, 2, "Subject: s\r\n", NULL);
	assert_int_equal(rule_headers_parse(msg.m.data, msg.m.len, &h), 0);
	mc = rule_match_cache_new(rule_set_count(conf->rules));
	assert_int_equal(rule_match(r, conf, &msg.m, &h, rcpts[0], mc), 1);
	assert_int_equal(rule_match(r, conf, &msg.m, &h, rcpts[1], mc), 0);
	assert_int_equal(rule_match(r, conf, &msg.m, &h, rcpts[0], mc), 1);
	rule_match_cache_free(mc);
	rule_headers_free(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_conditions_and_exceptions),
	    cmocka_unit_test(test_cache_per_message),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
