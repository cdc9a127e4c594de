"""REQUIRETLS (RFC 8689), inbound: offered in EHLO only inside TLS,
`MAIL FROM:<a> REQUIRETLS` accepted only there and refused with a reason
outside it, and the flag stored with the message, through the queue and
across a restart.  Python's smtplib is the client: no Debian MTA sends
REQUIRETLS."""
import smtplib
import ssl

import pytest

from harness import Client, Sluice, make_message, running
from peers.fakesmtp import FakeSmtp, server_context
from test_delivery import mailbox, wait_for
from test_tls import tls_conf

SENDER = "alice@sender.example"


def client_ctx(pki):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(f"{pki}/ca.pem")
    ctx.check_hostname = False
    return ctx


@pytest.fixture(scope="module")
def server(pki, tmp_path_factory):
    with running(tmp_path_factory.mktemp("requiretls"),
                 **tls_conf(pki)) as s:
        yield s


def requiretls_flags(s):
    with s._db() as db:
        return {r[0]: r[1] for r in db.execute(
            "select subject, requiretls from messages")}


def test_offered_only_inside_tls(server, pki):
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as c:
        c.ehlo("client.example")
        assert c.has_extn("starttls")
        assert not c.has_extn("requiretls")
        c.starttls(context=client_ctx(pki))
        c.ehlo("client.example")
        assert c.has_extn("requiretls")
        assert not c.has_extn("starttls")
    # HELO offers nothing, so not REQUIRETLS either
    with Client(server.port) as c:
        c.cmd("HELO client.example").check(250)
        c.cmd(f"MAIL FROM:<{SENDER}> REQUIRETLS").check(530, "5.7.10")


def test_refused_outside_tls_with_a_reason(server):
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as c:
        c.ehlo("client.example")
        code, text = c.mail(SENDER, ["REQUIRETLS"])
        assert code == 530
        assert text.startswith(b"5.7.10") and b"STARTTLS" in text
        # the session goes on: the same sender without it is fine
        code, _ = c.mail(SENDER)
        assert code == 250


def test_accepted_and_stored_inside_tls(server, pki):
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as c:
        c.starttls(context=client_ctx(pki))
        c.ehlo("client.example")
        c.sendmail(SENDER, ["bob@example.test"],
                   make_message("must stay encrypted"),
                   mail_options=["REQUIRETLS"])
        c.sendmail(SENDER, ["bob@example.test"],
                   make_message("no requirement"))
    flags = requiretls_flags(server)
    assert flags["must stay encrypted"] == 1
    assert flags["no requirement"] == 0
    # the tracking log says so on the RECEIVE row
    rows = [e for e in server.track_events("RECEIVE")
            if e["message-subject"] == "must stay encrypted"]
    assert rows and "S:RequireTLS=Yes" in rows[0]["custom-data"]


def test_bad_forms_are_refused(server, pki):
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as c:
        c.starttls(context=client_ctx(pki))
        c.ehlo("client.example")
        code, text = c.mail(SENDER, ["REQUIRETLS=YES"])
        assert code == 555 and b"no value" in text
        c.rset()
        code, text = c.mail(SENDER, ["REQUIRETLS", "REQUIRETLS"])
        assert code == 555 and b"Duplicate" in text


def test_flag_survives_a_restart(pki, tmp_path):
    # Authoritative mail is delivered at once; a relay domain with no
    # connector keeps it waiting (Unreachable) across the restart.
    conf = tls_conf(pki, PermissionGroups="ExchangeServers",
                    AuthMechanism="Tls, ExternalAuthoritative")
    with running(tmp_path, **conf) as s:
        with smtplib.SMTP("127.0.0.1", s.port, timeout=10) as c:
            c.starttls(context=client_ctx(pki))
            c.ehlo("client.example")
            c.sendmail(SENDER, ["carol@elsewhere.test"],
                       make_message("kept across restarts"),
                       mail_options=["REQUIRETLS"])
        assert requiretls_flags(s)["kept across restarts"] == 1
        s.stop()
        s.start()
        assert requiretls_flags(s)["kept across restarts"] == 1
        with s._db() as db:
            (status,) = db.execute(
                "select r.status from recipients r join messages m on "
                "m.id = r.message_id where m.subject = ?",
                ("kept across restarts",)).fetchone()
        assert status == 0


# --- outbound ---------------------------------------------------------------
#
# A sending Sluice takes REQUIRETLS mail from smtplib over TLS and relays
# it through one send connector per case; the next hop is a second Sluice
# (it offers REQUIRETLS inside TLS) or the fake server, which records
# every command and whether it came inside TLS.

VALIDATED = "RequireTLS = true\nTlsAuthLevel = CertificateValidation"


def relay_sender(pki, tmp_path, connectors, name="sender"):
    """A Sluice that relays for its TLS clients, with the given send
    connectors; example.test is its own (the DSNs land there)."""
    conf = tls_conf(pki, PermissionGroups="ExchangeServers",
                    AuthMechanism="Tls, ExternalAuthoritative")
    conf["transport"] = dict(conf["transport"],
                             TransientFailureRetryInterval="1h")
    conf["raw_extra"] += connectors
    return Sluice(tmp_path / name, **conf)


def connector(name, space, port, extra=""):
    return f"""
[SendConnector {name}]
AddressSpaces = {space}
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:{port}
Fqdn = out.sluice.test
ProtocolLoggingLevel = Verbose
{extra}
"""


def submit(s, pki, rcpt, subject, requiretls=True):
    with smtplib.SMTP("127.0.0.1", s.port, timeout=10) as c:
        c.starttls(context=client_ctx(pki))
        c.ehlo("client.example")
        c.sendmail("alice@example.test", [rcpt], make_message(subject),
                   mail_options=["REQUIRETLS"] if requiretls else [])


def rcpt_state(s, addr):
    with s._db() as db:
        row = db.execute("select status, last_error from recipients "
                         "where addr = ?", (addr,)).fetchone()
    return (row[0], row[1]) if row else (None, None)


def settled(s, addr, timeout=30):
    return wait_for(lambda: rcpt_state(s, addr)[0] in (1, 2),
                    timeout=timeout)


def sent_mail_lines(s):
    """Every MAIL command of the sender's SmtpSend protocol log."""
    files = sorted((s.log_dir / "ProtocolLog" / "SmtpSend").glob("*"))
    _, rows = s.read_csv_log(files)
    return [r for r in rows if len(r) > 7 and r[6] == ">" and
            r[7].upper().startswith("MAIL FROM")]


@pytest.mark.timeout_s(120)
def test_sluice_to_sluice_with_a_validated_policy(pki, tmp_path):
    receiver = Sluice(tmp_path / "receiver", domains=("dest.test",),
                      **tls_conf(pki))
    receiver.start()
    try:
        sender = relay_sender(pki, tmp_path, connector(
            "Partner", "dest.test", receiver.port, VALIDATED))
        sender.start()
        try:
            submit(sender, pki, "bob@dest.test", "across two Sluices")
            assert settled(sender, "bob@dest.test")
            assert rcpt_state(sender, "bob@dest.test")[0] == 1
            # the receiver stored it with the flag: it came with
            # REQUIRETLS, inside TLS
            assert wait_for(lambda: requiretls_flags(receiver).get(
                "across two Sluices") == 1)
            (mail,) = sent_mail_lines(sender)
            assert mail[7].endswith(" REQUIRETLS")
            rows = [e for e in receiver.track_events("RECEIVE")
                    if e["message-subject"] == "across two Sluices"]
            assert "S:RequireTLS=Yes" in rows[0]["custom-data"]
            assert rows[0]["tls"].startswith("tls=inbound:encrypted;TLSv1")
            sender.stop()
        finally:
            sender.kill9()
        receiver.stop()
    finally:
        receiver.kill9()


@pytest.mark.timeout_s(120)
def test_returned_with_5_7_30_when_the_path_is_not_validated(pki, tmp_path):
    # An opportunistic connector to a Sluice that offers REQUIRETLS, and a
    # validated one to a fake server that offers TLS but no REQUIRETLS:
    # both are returned, neither sees a MAIL.  Mail without REQUIRETLS
    # still goes through the same connectors.
    receiver = Sluice(tmp_path / "receiver", domains=("dest.test",),
                      **tls_conf(pki))
    receiver.start()
    fake = FakeSmtp(capabilities=("PIPELINING", "ENHANCEDSTATUSCODES"),
                    tls=server_context(pki, "server")).start()
    try:
        sender = relay_sender(pki, tmp_path, connector(
            "Opp", "dest.test", receiver.port) + connector(
            "NoExt", "fake.test", fake.port, VALIDATED))
        sender.start()
        try:
            submit(sender, pki, "bob@dest.test", "opportunistic path")
            submit(sender, pki, "carol@fake.test", "no REQUIRETLS there")
            for addr in ("bob@dest.test", "carol@fake.test"):
                assert settled(sender, addr)
            st, why = rcpt_state(sender, "bob@dest.test")
            assert st == 2 and "5.7.30" in why and "Opp" in why, why
            assert "does not validate" in why
            st, why = rcpt_state(sender, "carol@fake.test")
            assert st == 2 and "5.7.30" in why, why
            assert "does not offer REQUIRETLS" in why
            # nothing of either went out: no MAIL, in TLS or not
            assert sent_mail_lines(sender) == []
            assert all("MAIL" not in sess.verbs() for sess in fake.sessions)
            assert requiretls_flags(receiver) == {}
            # the sender is told, with nothing of the original (RFC
            # 8689 5), by a notice that itself requires TLS
            assert wait_for(lambda: len(mailbox(sender, "alice")) == 2)
            for raw in mailbox(sender, "alice"):
                assert b"Status: 5.7.30" in raw
                assert b"opportunistic path" not in raw
                assert b"no REQUIRETLS there" not in raw
                assert b"Hello." not in raw  # the original's body
                assert b"message/rfc822" not in raw
                assert b"text/rfc822-headers" not in raw
                assert b"Subject: Undeliverable\n" in \
                    raw.replace(b"\r\n", b"\n")
            with sender._db() as db:
                flags = [r[0] for r in db.execute(
                    "select requiretls from messages where sender = ''")]
            assert flags == [1, 1]
            # the same connectors still carry mail without REQUIRETLS
            submit(sender, pki, "dave@dest.test", "plain old mail",
                   requiretls=False)
            assert settled(sender, "dave@dest.test")
            assert rcpt_state(sender, "dave@dest.test")[0] == 1
            sender.stop()
        finally:
            sender.kill9()
        receiver.stop()
    finally:
        receiver.kill9()
        fake.stop()


@pytest.mark.timeout_s(120)
def test_never_in_plaintext_to_a_server_without_starttls(pki, tmp_path):
    fake = FakeSmtp(capabilities=("PIPELINING", "REQUIRETLS")).start()
    try:
        sender = relay_sender(pki, tmp_path,
                              connector("Plain", "*", fake.port))
        sender.start()
        try:
            submit(sender, pki, "bob@far.test", "must not leak")
            assert settled(sender, "bob@far.test")
            st, why = rcpt_state(sender, "bob@far.test")
            assert st == 2 and "5.7.30" in why and "without TLS" in why
            # the fake server's own record: a session, no MAIL
            assert fake.sessions
            assert all("MAIL" not in sess.verbs() for sess in fake.sessions)
            sender.stop()
        finally:
            sender.kill9()
    finally:
        fake.stop()


@pytest.mark.timeout_s(120)
def test_sent_with_the_parameter_inside_tls(pki, tmp_path):
    fake = FakeSmtp(capabilities=("PIPELINING", "REQUIRETLS"),
                    tls=server_context(pki, "server")).start()
    try:
        sender = relay_sender(pki, tmp_path, connector(
            "Strict", "*", fake.port,
            "RequireTLS = true\nTlsAuthLevel = DomainValidation\n"
            "TlsDomain = mx.sluice.test"))
        sender.start()
        try:
            submit(sender, pki, "bob@far.test", "validated all the way")
            (m,) = fake.wait_messages(1, timeout=30)
            assert m.tls and "REQUIRETLS" in m.mail_params.upper().split()
            assert "MAIL" not in fake.sessions[0].verbs(tls=False)
            assert settled(sender, "bob@far.test")
            assert rcpt_state(sender, "bob@far.test")[0] == 1
            sender.stop()
        finally:
            sender.kill9()
    finally:
        fake.stop()


def test_tls_required_no_is_stored_and_ignored_under_requiretls(server,
                                                                pki):
    # RFC 8689 3: the header asks relays to deliver past DANE and
    # MTA-STS failures; with REQUIRETLS on MAIL FROM it is ignored.
    hdr = "TLS-Required:  no \r\n"
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as c:
        c.starttls(context=client_ctx(pki))
        c.ehlo("client.example")
        c.sendmail(SENDER, ["bob@example.test"],
                   make_message("optional tls", extra_headers=hdr))
        c.sendmail(SENDER, ["bob@example.test"],
                   make_message("both asked", extra_headers=hdr),
                   mail_options=["REQUIRETLS"])
        c.sendmail(SENDER, ["bob@example.test"], make_message(
            "yes is no relaxation", extra_headers="TLS-Required: Yes\r\n"))
    with server._db() as db:
        got = {r[0]: (r[1], r[2]) for r in db.execute(
            "select subject, requiretls, tls_optional from messages")}
    assert got["optional tls"] == (0, 1)
    assert got["both asked"] == (1, 0)
    assert got["yes is no relaxation"] == (0, 0)
    rows = {e["message-subject"]: e["custom-data"]
            for e in server.track_events("RECEIVE")}
    assert rows["optional tls"].endswith(";S:TlsRequired=No")
    assert "TlsRequired" not in rows["both asked"]
    assert "TlsRequired" not in rows["yes is no relaxation"]
