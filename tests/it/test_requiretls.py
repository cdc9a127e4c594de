"""REQUIRETLS (RFC 8689), inbound: offered in EHLO only inside TLS,
`MAIL FROM:<a> REQUIRETLS` accepted only there and refused with a reason
outside it, and the flag stored with the message, through the queue and
across a restart.  Python's smtplib is the client: no Debian MTA sends
REQUIRETLS."""
import smtplib
import ssl

import pytest

from harness import Client, make_message, running
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
