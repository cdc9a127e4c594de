"""Transport rules (issue 15, SPEC 5) on the real daemon with real peers.

Force TLS by rule against a private Postfix without STARTTLS and one with
it: the rule's domain waits and expires with a DSN naming the rule and
never reaches the plaintext peer, other domains and the same recipient
without the rule go out in plaintext, and mail accepted under the rule
keeps its decision across a reload and a restart.  A scoped connector is
used only through a rule, with its own TLS settings.  Reject, delete,
redirect, blind copy, prepend subject, set and remove header, audit, stop
processing, a message split by a header action, and rules changed by
SIGHUP while clients send, with nothing lost."""
import email
import re
import subprocess
import threading
import time

import pytest

from harness import (SLUICECTL, Client, dot_stuff, free_port, join_threads,
                     make_message, queue_id_of, running, split_headers,
                     start_threads)
from peers.fakesmtp import FakeSmtp, server_context
from peers.postfix import Postfix
from test_delivery import (FAST, RELAY, events, mailbox, send, smarthost,
                           states, wait_for)

HISTORY = b"X-Sluice-Organization-Rules-Execution-History"


def ctl(s, *args):
    return subprocess.run([str(SLUICECTL), "-c", str(s.conf_path), *args],
                          capture_output=True, text=True, timeout=30)


def transact(s, rcpts, subject="hello", sender="alice@example.test",
             extra_headers="", body="Hello.\r\n"):
    """One message; the reply to the end of data."""
    with Client(s.port) as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{sender}>").check(250)
        for r in rcpts:
            c.cmd(f"RCPT TO:<{r}>").check(250)
        c.cmd("DATA").check(354)
        c.send(dot_stuff(make_message(subject, body,
                                      extra_headers).encode()) + b".\r\n")
        return c.reply()


def crlf(raw):
    """A Maildir message (LF line ends) in SMTP's CRLF form."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def headers_of(raw):
    return {k.lower(): v for k, v in split_headers(crlf(raw))}


# --- Force TLS by rule ---------------------------------------------------

FORCE_TLS = """
[TransportRule "Force TLS to Fabrikam"]
Priority = 0
RecipientDomainIs = fabrikam.test, secure.test
RouteMessageOutboundRequireTls = true
"""


def peers_conf(plain_port, tls_port):
    return (smarthost(plain_port, name="Plain",
                      spaces="fabrikam.test, other.test") +
            smarthost(tls_port, name="Tlspeer", spaces="secure.test"))


@pytest.mark.timeout_s(120)
def test_force_tls_by_rule(tmp_path, pki):
    plain = Postfix(free_port(), mailbox_domains=["fabrikam.test",
                                                  "other.test"],
                    mynetworks=()).start()
    tls = Postfix(free_port(), mailbox_domains=["secure.test"], mynetworks=(),
                  tls={"cert": f"{pki}/server.pem",
                       "key": f"{pki}/server.key", "level": "may"}).start()
    transport = dict(FAST, MessageExpirationTimeout="10s")
    conf = peers_conf(plain.port, tls.port)
    try:
        with running(tmp_path, conn=RELAY, transport=transport,
                     raw_extra=conf + FORCE_TLS) as s:
            first = queue_id_of(transact(
                s, ["bob@fabrikam.test", "carol@other.test",
                    "dan@secure.test"], "under the rule").check(250))
            # other.test: no rule, plaintext (opportunistic)
            plain.wait_delivered("carol@other.test", timeout=20)
            # secure.test: the rule's floor, met by STARTTLS
            tls.wait_delivered("dan@secure.test", timeout=20)
            assert wait_for(lambda: len(events(s, "SEND")) == 2)
            sent = {e["recipient-address"]: e["tls"]
                    for e in events(s, "SEND")}
            assert ":encrypted" not in sent["carol@other.test"]
            assert sent["dan@secure.test"].startswith(
                "tls=EncryptionOnly:encrypted;TLSv1"), sent
            # fabrikam.test: no STARTTLS there, so it waits, naming the rule
            assert wait_for(lambda: any(
                e["recipient-address"] == "bob@fabrikam.test"
                for e in events(s, "DEFER")))
            st = states(s)["bob@fabrikam.test"]
            assert st[0] == 0
            assert "does not offer STARTTLS" in st[1], st
            assert 'transport rule "Force TLS to Fabrikam"' in st[1], st
            # its own queue: the rule's requirement holds up nothing else
            q = ctl(s, "queue").stdout
            assert "Plain/RequireTls" in q, q

            # the same recipient without the rule: plaintext
            s.configure(conn=RELAY, transport=transport, raw_extra=conf)
            s.reload()
            queue_id_of(transact(s, ["bob@fabrikam.test"],
                                 "after the rule").check(250))
            (text,) = plain.wait_delivered("bob@fabrikam.test", timeout=20)
            assert b"Subject: after the rule" in text
            assert HISTORY not in text

            # what was accepted under the rule keeps it: it expires with a
            # DSN naming the rule, never sent in plaintext
            assert wait_for(lambda: any(
                e["recipient-address"] == "bob@fabrikam.test"
                for e in events(s, "EXPIRE")), timeout=40)
            dsns = wait_for(lambda: [m for m in mailbox(s, "alice")
                                     if b"Undeliverable" in m])
            assert len(dsns) == 1
            text = email.message_from_bytes(dsns[0]).as_string()
            assert "Force TLS to Fabrikam" in text
            assert first in text
            delivered = plain.delivered("bob@fabrikam.test")
            assert len(delivered) == 1
            assert b"under the rule" not in delivered[0]
            # the peer never saw bob@ but for the message after the rule
            assert plain.log_text().count("to=<bob@fabrikam.test>") == 1
    finally:
        plain.close()
        tls.close()


@pytest.mark.timeout_s(90)
def test_rule_decisions_survive_a_restart(tmp_path):
    """Accepted under a TLS rule, the recipient waits across a restart even
    when the rule is gone from the file, and is never sent in plaintext."""
    with FakeSmtp(capabilities=("PIPELINING",)) as mx, \
            running(tmp_path, conn=RELAY, transport=FAST,
                    raw_extra=smarthost(mx.port) + FORCE_TLS) as s:
        transact(s, ["bob@fabrikam.test"], "kept").check(250)
        assert wait_for(lambda: events(s, "DEFER"))
        rows = [r for r in s.recipients() if r["addr"] == "bob@fabrikam.test"]
        assert rows[0]["rule_tls"] == "Force TLS to Fabrikam"
        s.configure(conn=RELAY, transport=FAST, raw_extra=smarthost(mx.port))
        s.kill9()
        s.start()
        n = len(events(s, "DEFER"))
        assert wait_for(lambda: len(events(s, "DEFER")) >= n + 2)
        assert states(s)["bob@fabrikam.test"][0] == 0
        assert all("MAIL" not in sess.verbs() for sess in mx.sessions)
        assert mx.messages == []


# --- a scoped connector ------------------------------------------------------

SCOPED = """
[SendConnector "Partner secure"]
IsTransportRuleScoped = true
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:{port}
RequireTLS = true
TlsAuthLevel = EncryptionOnly
Fqdn = out.sluice.test

[TransportRule "Legal via partner"]
SentTo = legal@fabrikam.test
RouteMessageOutboundConnector = Partner secure
"""


def test_scoped_connector_only_through_a_rule(tmp_path, pki):
    ctx = server_context(pki, "server")
    with FakeSmtp(capabilities=("PIPELINING",)) as internet, \
            FakeSmtp(capabilities=("PIPELINING", "STARTTLS"),
                     tls=ctx) as partner, \
            running(tmp_path, conn=RELAY, transport=FAST,
                    raw_extra=smarthost(internet.port, name="Internet") +
                    SCOPED.format(port=partner.port)) as s:
        transact(s, ["legal@fabrikam.test", "sales@fabrikam.test"],
                 "scoped").check(250)
        (via_partner,) = partner.wait_messages(1, timeout=20)
        (via_internet,) = internet.wait_messages(1, timeout=20)
        assert via_partner.rcpts == ["legal@fabrikam.test"]
        assert via_partner.tls  # the scoped connector's RequireTLS
        assert via_internet.rcpts == ["sales@fabrikam.test"]
        assert not via_internet.tls
        assert wait_for(lambda: len(events(s, "SEND")) == 2)
        conn = {e["recipient-address"]: e["connector-id"]
                for e in events(s, "SEND")}
        assert conn == {"legal@fabrikam.test": "Partner secure",
                        "sales@fabrikam.test": "Internet"}
        # normal routing never picks it, even for the same recipient
        out = ctl(s, "route", "--no-dns", "legal@fabrikam.test").stdout
        assert 'SendConnector "Internet"' in out, out
        out = ctl(s, "route", "--no-dns", "--from", "alice@example.test",
                  "legal@fabrikam.test").stdout
        assert 'SendConnector "Partner secure" (transport rule ' \
            '"Legal via partner")' in out, out


@pytest.mark.timeout_s(90)
def test_rule_connector_gone_waits_in_unreachable(tmp_path, pki):
    """A recipient a rule routes to a scoped connector that is disabled
    waits in the Unreachable queue (4.4.3, source ROUTING), is never sent
    by another route, and leaves at once when a reload enables the
    connector again, long before its next retry."""
    ctx = server_context(pki, "server")
    slow = {"TransientFailureRetryInterval": "01:00:00",
            "OutboundConnectionFailureRetryInterval": "01:00:00"}
    scoped = SCOPED.replace("Fqdn = out.sluice.test\n",
                            "Fqdn = out.sluice.test\nEnabled = {enabled}\n")
    assert "{enabled}" in scoped
    with FakeSmtp(capabilities=("PIPELINING",)) as internet, \
            FakeSmtp(capabilities=("PIPELINING", "STARTTLS"),
                     tls=ctx) as partner:
        def conf(enabled):
            return (smarthost(internet.port, name="Internet") +
                    scoped.format(port=partner.port, enabled=enabled))

        with running(tmp_path, conn=RELAY, transport=slow,
                     raw_extra=conf("false")) as s:
            qid = queue_id_of(transact(s, ["legal@fabrikam.test"],
                                       "held").check(250))
            defer = wait_for(lambda: [e for e in events(s, "DEFER")
                                      if e["internal-message-id"] == qid])
            assert defer[0]["source"] == "ROUTING"
            assert defer[0]["recipient-status"].startswith("451 4.4.3 ")
            assert 'transport rule "Legal via partner"' in \
                defer[0]["recipient-status"]
            assert "disabled" in defer[0]["recipient-status"]
            q = ctl(s, "queue").stdout
            assert re.search(r"^Unreachable\s.*\b1\b", q, re.M), q
            m = ctl(s, "messages", "Unreachable").stdout
            assert f"Unreachable\\{qid}" in m, m
            assert internet.messages == [] and partner.messages == []

            s.configure(conn=RELAY, transport=slow, raw_extra=conf("true"))
            s.reload(settle=0)
            (via_partner,) = partner.wait_messages(1, timeout=20)
            assert via_partner.rcpts == ["legal@fabrikam.test"]
            assert via_partner.tls
            assert internet.messages == []
            # the partner has the message before the 250 that the queue
            # records it by: wait for the record
            assert wait_for(
                lambda: states(s)["legal@fabrikam.test"][0] == 1)


# --- actions ---------------------------------------------------------------

ACTIONS = """
[TransportRule Reject]
Priority = 0
SubjectContainsWords = "buy now"
RejectMessageReasonText = Unsolicited mail is not accepted
RejectMessageEnhancedStatusCode = 5.7.901

[TransportRule "Reject one"]
Priority = 1
SentTo = blocked@example.test
RejectMessageReasonText = This mailbox does not take mail

[TransportRule Delete]
Priority = 2
SubjectContainsWords = delete-me
DeleteMessage = true

[TransportRule Redirect]
Priority = 3
SentTo = old@example.test
RedirectMessageTo = new@example.test

[TransportRule Bcc]
Priority = 4
SubjectContainsWords = audited
BlindCopyTo = auditor@example.test

[TransportRule Tag]
Priority = 5
RecipientDomainIs = example.test
ExceptIfSentTo = plain@example.test
SetHeaderName = X-Tag
SetHeaderValue = tagged
RemoveHeader = X-Secret
PrependSubject = "[Ext] "

[TransportRule Stop]
Priority = 6
SentTo = stop@example.test
StopRuleProcessing = true

[TransportRule "After stop"]
Priority = 7
RecipientDomainIs = example.test
SetHeaderName = X-After
SetHeaderValue = yes

[TransportRule Watch]
Priority = 8
Mode = Audit
SubjectContainsWords = watched
DeleteMessage = true
"""


@pytest.fixture(scope="module")
def actions(tmp_path_factory):
    with running(tmp_path_factory.mktemp("rules"), conn=RELAY,
                 raw_extra=ACTIONS) as s:
        yield s


def test_reject_is_the_reply_and_nothing_is_stored(actions):
    s = actions
    before = len(s.messages())
    r = transact(s, ["a@example.test", "b@example.test"], "buy now cheap")
    r.check(550, "5.7.901")
    assert "Unsolicited mail is not accepted" in r.text
    assert len(s.messages()) == before
    agent = [e for e in events(s, "AGENTINFO")
             if "TransportRule 'Reject'" in e["recipient-status"]]
    assert len(agent) == 1
    assert agent[0]["recipient-address"] == "a@example.test;b@example.test"


def test_reject_of_some_recipients_is_an_ndr(actions):
    s = actions
    qid = queue_id_of(transact(s, ["blocked@example.test", "ok@example.test"],
                               "partly refused").check(250))
    assert wait_for(lambda: mailbox(s, "ok"))
    fail = wait_for(lambda: [e for e in events(s, "FAIL")
                             if e["recipient-address"] ==
                             "blocked@example.test" and
                             e["internal-message-id"] == qid])
    assert fail[0]["source"] == "AGENT"
    assert fail[0]["recipient-status"].startswith("550 5.7.1 ")
    dsns = wait_for(lambda: [m for m in mailbox(s, "alice")
                             if qid.encode() in m and b"Undeliverable" in m])
    assert b"This mailbox does not take mail" in dsns[0]
    assert mailbox(s, "blocked") == []


def test_delete_accepts_and_drops(actions):
    s = actions
    before = len(s.messages())
    qid = queue_id_of(transact(s, ["c@example.test"], "delete-me").check(250))
    assert len(s.messages()) == before
    fail = [e for e in events(s, "FAIL") if e["internal-message-id"] == qid]
    assert len(fail) == 1 and "deleted by transport rule 'Delete'" in \
        fail[0]["recipient-status"]
    (agent,) = [e for e in events(s, "AGENTINFO")
                if e["internal-message-id"] == qid]
    (receive,) = [e for e in events(s, "RECEIVE")
                  if e["internal-message-id"] == qid]
    # the rules' rows in Exchange's layout: source AGENT, the message's
    # fields as on its RECEIVE row, no connection ends
    for row in (agent, fail[0]):
        assert row["source"] == "AGENT"
        for field in ("message-id", "message-subject", "sender-address",
                      "connector-id", "source-context", "total-bytes"):
            assert row[field] == receive[field], field
        assert row["client-ip"] == row["server-ip"] == ""
    assert agent["message-subject"] == "delete-me"


def test_redirect_bcc_and_header_actions(actions):
    s = actions
    qid = queue_id_of(transact(
        s, ["old@example.test"], "audited", extra_headers="X-Secret: 42\r\n"
        "X-Tag: from outside\r\n").check(250))
    (new,) = wait_for(lambda: mailbox(s, "new"))
    (copy,) = wait_for(lambda: mailbox(s, "auditor"))
    assert mailbox(s, "old") == []
    for raw in (new, copy):
        h = headers_of(raw)
        assert h["subject"] == b"[Ext] audited"
        assert h["x-tag"] == b"tagged"
        assert "x-secret" not in h
        assert h[HISTORY.decode().lower()] == b"Redirect; Bcc; Tag; After stop"
        # the blind copy's address is in no header
        assert b"auditor@" not in crlf(raw).split(b"\r\n\r\n", 1)[0]
    redirect = [e for e in events(s, "REDIRECT") if e["internal-message-id"] == qid]
    assert redirect[0]["recipient-address"] == "old@example.test"
    assert "new@example.test" in redirect[0]["recipient-status"]


def test_stop_processing_and_split_by_header_action(actions):
    s = actions
    qid = queue_id_of(transact(
        s, ["stop@example.test", "plain@example.test", "tag@example.test"],
        "split").check(250))
    (stop,) = wait_for(lambda: mailbox(s, "stop"))
    (plain,) = wait_for(lambda: mailbox(s, "plain"))
    (tag,) = wait_for(lambda: mailbox(s, "tag"))
    hs, hp, ht = headers_of(stop), headers_of(plain), headers_of(tag)
    # Tag fired for stop@, then Stop: After stop never ran for it
    assert hs["x-tag"] == b"tagged" and "x-after" not in hs
    # plain@ is excepted from Tag, but After stop runs
    assert hp["subject"] == b"split" and "x-tag" not in hp
    assert hp["x-after"] == b"yes"
    assert ht["x-tag"] == b"tagged" and ht["x-after"] == b"yes"
    # three different header results: three stored messages, the split
    # visible in the tracking log
    transfers = [e for e in events(s, "TRANSFER") if e["internal-message-id"] == qid]
    assert sorted(e["recipient-address"] for e in transfers) == \
        ["plain@example.test", "tag@example.test"]
    ids = {re.search(r"bifurcated into (\w+)", e["recipient-status"]).group(1)
           for e in transfers}
    assert len(ids) == 2 and qid not in ids
    stored = {m["queue_id"] for m in s.messages()}
    assert {qid} | ids <= stored


def test_audit_changes_nothing(actions):
    s = actions
    qid = queue_id_of(transact(s, ["plain@example.test"],
                               "watched").check(250))
    assert wait_for(lambda: [m for m in mailbox(s, "plain")
                             if b"Subject: watched" in m])
    agent = [e for e in events(s, "AGENTINFO") if e["internal-message-id"] == qid]
    watch = [e for e in agent if "TransportRule 'Watch'" in e["recipient-status"]]
    assert watch and "mode=Audit would: DeleteMessage" in \
        watch[0]["recipient-status"]
    assert not [e for e in events(s, "FAIL") if e["internal-message-id"] == qid]


# --- reload under load ---------------------------------------------------

RELOAD_RULES = ["""
[TransportRule Mark]
RecipientDomainIs = example.test
SetHeaderName = X-Generation
SetHeaderValue = {gen}
""", """
[TransportRule Mark]
RecipientDomainIs = example.test
SetHeaderName = X-Generation
SetHeaderValue = {gen}
PrependSubject = "[g{gen}] "

[TransportRule Copy]
SubjectContainsWords = copy
BlindCopyTo = archive@example.test
"""]


@pytest.mark.timeout_s(120)
def test_reload_under_load_loses_nothing(tmp_path):
    s_kw = dict(conn=RELAY, raw_extra=RELOAD_RULES[0].format(gen=0))
    with running(tmp_path, **s_kw) as s:
        accepted, failures = [], []
        stop = threading.Event()

        def sender(n):
            i = 0
            while not stop.is_set() and i < 200:
                subject = f"load {n} {i}" + (" copy" if i % 5 == 0 else "")
                try:
                    r = transact(s, [f"u{n}@example.test"], subject)
                    if r.code == 250:
                        accepted.append((f"u{n}", subject,
                                         queue_id_of(r)))
                    elif r.code // 100 != 4:
                        failures.append(r.text)
                except Exception as exc:  # noqa: BLE001 - reported below
                    failures.append(repr(exc))
                i += 1

        threads = start_threads(sender, [(n,) for n in range(4)])
        for gen in range(1, 9):
            time.sleep(0.2)
            s.configure(conn=RELAY, raw_extra=RELOAD_RULES[gen % 2].format(
                gen=gen))
            s.reload(settle=0)
        stop.set()
        join_threads(threads, 60, "senders")
        assert failures == []
        assert len(accepted) > 20
        # every accepted message is delivered exactly once, with the
        # header of one whole rule generation
        def delivered():
            return sum(len(mailbox(s, f"u{n}")) for n in range(4))
        assert wait_for(lambda: delivered() == len(accepted), timeout=60)
        gens = set()
        for n in range(4):
            for raw in mailbox(s, f"u{n}"):
                h = headers_of(raw)
                gen = int(h["x-generation"])
                gens.add(gen)
                if gen % 2:
                    assert h["subject"].startswith(b"[g%d] " % gen), h
                else:
                    assert not h["subject"].startswith(b"[g")
        assert len(gens) >= 3, gens  # the reloads took effect in flight
        subjects = [headers_of(m)["subject"] for m in mailbox(s, "archive")]
        assert all(b"copy" in x for x in subjects)
        assert not s.stderr().count("ERROR: AddressSanitizer")


# --- sluicectl ---------------------------------------------------------------


def test_ctl_commands(actions):
    s = actions
    out = ctl(s, "get-transportrule", "Tag")
    assert out.returncode == 0, out.stderr
    assert re.search(r"^Name\s+: Tag$", out.stdout, re.M)
    assert re.search(r"^Priority\s+: 5$", out.stdout, re.M)
    assert re.search(r"^PrependSubject\s+: \[Ext\] $", out.stdout, re.M)
    assert re.search(r"^State\s+: Enabled$", out.stdout, re.M)
    assert "Description" in out.stdout
    every = ctl(s, "get-transportrule").stdout
    names = re.findall(r"^Name\s+: (.*)$", every, re.M)
    assert names[:3] == ["Reject", "Reject one", "Delete"]
    assert ctl(s, "get-transportrule", "nope").returncode == 1

    out = ctl(s, "test-transportrule", "--from", "x@y.org", "--to",
              "old@example.test", "--to", "plain@example.test",
              "--subject", "audited", "--header", "X-Secret: 1")
    assert out.returncode == 0, out.stderr
    assert "Recipient : new@example.test" in out.stdout
    assert 'AddedBy   : transport rule "Bcc"' in out.stdout
    assert "copies (split by header actions)" in out.stdout
    out = ctl(s, "test-transportrule", "--from", "x@y.org", "--to",
              "a@example.test", "--subject", "buy now")
    assert out.returncode == 1
    assert "rejected at the end of data: 550 5.7.901" in out.stdout

    check = ctl(s, "config", "check")
    assert check.returncode == 0
    assert "warning" not in check.stderr


def test_config_check_warnings_and_errors(tmp_path):
    base = ("[Transport]\nQueueDirectory = q\n"
            "[ReceiveConnector r]\nBindings = 127.0.0.1:2525\n"
            "[SendConnector Internet]\nAddressSpaces = *\n")
    conf = tmp_path / "w.conf"
    conf.write_text(base + "[TransportRule Everything]\n"
                    "SetHeaderName = X-A\nSetHeaderValue = b\n"
                    "[TransportRule Never]\nSentTo = a@x.org\n"
                    "ExceptIfSentTo = a@x.org\nStopRuleProcessing = true\n")
    out = subprocess.run([str(SLUICECTL), "-c", str(conf), "config", "check"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert f"{conf}:7: warning: rule \"Everything\" has no condition" \
        in out.stderr
    assert f"{conf}:10: warning: rule \"Never\" can never match: " \
        "ExceptIfSentTo covers SentTo" in out.stderr
    conf.write_text(base + "[TransportRule Bad]\n"
                    "SubjectMatchesPatterns = \"(unclosed\"\n"
                    "RouteMessageOutboundConnector = Internet\n")
    out = subprocess.run([str(SLUICECTL), "-c", str(conf), "config", "check"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert f"{conf}:8: SubjectMatchesPatterns: pattern does not compile " \
        "(PCRE2): missing closing parenthesis at offset 9" in out.stderr
