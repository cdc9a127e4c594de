"""Delivery through send connectors (issue 4): sluiced relays queued mail
to real next hops on loopback -- the fake SMTP server (tests/it/peers/
fakesmtp.py), Postfix's smtp-sink -- and settles every recipient:
delivered, deferred and retried, or returned with an RFC 3464 DSN."""
import email
import os
import socket
import subprocess
import time

import pytest

from harness import (SLUICECTL, Client, dot_stuff, eventually, make_message,
                     running)
from peers.fakesmtp import FakeSmtp, server_context

RELAY = {"PermissionGroups": "ExchangeServers",
         "AuthMechanism": "ExternalAuthoritative"}
FAST = {"TransientFailureRetryInterval": "1s",
        "TransientFailureRetryAttempts": 3,
        "OutboundConnectionFailureRetryInterval": "2s"}


def smarthost(port, name="Out", spaces="*", extra=""):
    return f"""
[SendConnector {name}]
AddressSpaces = {spaces}
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:{port}
Fqdn = out.sluice.test
ProtocolLoggingLevel = Verbose
{extra}
"""


def send(s, rcpts, subject="hello", sender="alice@example.test",
         body="Hello.\r\n", extra_mail=""):
    with Client(s.port) as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{sender}>{extra_mail}").check(250)
        for r in rcpts:
            c.cmd(f"RCPT TO:<{r}>").check(250)
        c.cmd("DATA").check(354)
        c.send(dot_stuff(make_message(subject, body).encode()) + b".\r\n")
        return c.reply().check(250)


# harness.eventually() under the name the delivery tests, and the many
# that import it from here, were written with.
wait_for = eventually


def pending(s):
    return sum(1 for r in s.recipients() if r["status"] == 0)


def states(s):
    return {r["addr"]: (r["status"], r["last_error"], r["attempts"])
            for r in s.recipients()}


def events(s, name=None):
    """Tracking log rows as dicts (see Sluice.track_events)."""
    return s.track_events(name)


def test_relay_to_smarthost_pipelined_bdat(tmp_path):
    with FakeSmtp(capabilities=("PIPELINING", "CHUNKING", "8BITMIME",
                                "ENHANCEDSTATUSCODES")) as mx, \
            running(tmp_path, conn=RELAY, raw_extra=smarthost(mx.port)) as s:
        send(s, ["bob@remote.test", "carol@remote.test"], "one")
        (m,) = mx.wait_messages(1, timeout=20)
        assert m.mail_from == "alice@example.test"
        assert sorted(m.rcpts) == ["bob@remote.test", "carol@remote.test"]
        assert m.via == "BDAT"
        assert b"Subject: one" in m.data
        assert not m.bare_line_endings
        sess = mx.sessions[0]
        assert sess.verbs()[0] == "EHLO"
        assert sess.commands[0].line.startswith(b"EHLO out.sluice.test")
        # MAIL, both RCPTs and BDAT left in one write
        batches = sess.batches()
        assert ["MAIL", "RCPT", "RCPT", "BDAT"] in batches
        assert wait_for(lambda: pending(s) == 0)
        st = states(s)
        assert st["bob@remote.test"][0] == 1
        assert wait_for(lambda: len(events(s, "SEND")) == 2)


def mailbox(s, user, domain="example.test"):
    """Messages (bytes) in a local Maildir's new/ directory."""
    d = s.queue_dir / "mailboxes" / domain / user / "new"
    if not d.is_dir():
        return []
    return [p.read_bytes() for p in sorted(d.iterdir())]


def dsn_parts(raw):
    """(human text, delivery-status fields, returned part) of a DSN."""
    msg = email.message_from_bytes(raw)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    parts = msg.get_payload()
    status = parts[1].get_payload()
    fields = [dict(block.items()) for block in status]
    return parts[0].get_payload(), fields, parts[2] if len(parts) > 2 else None


def test_data_without_pipelining_dot_stuffs(tmp_path):
    body = ".starts with a dot\r\n..two dots\r\nplain\r\n.\r\nend\r\n"
    with FakeSmtp(capabilities=("8BITMIME",)) as mx, \
            running(tmp_path, conn=RELAY, raw_extra=smarthost(mx.port)) as s:
        send(s, ["bob@remote.test"], "dots", body=body)
        (m,) = mx.wait_messages(1, timeout=20)
        assert m.via == "DATA"
        assert body.encode() in m.data  # unstuffed by the peer: as sent
        assert b"\r\n..starts with a dot" in m.raw
        assert not m.bare_line_endings
        # one command per write without PIPELINING
        assert all(len(b) == 1 for b in mx.sessions[0].batches())
        assert wait_for(lambda: pending(s) == 0)


def test_all_recipients_refused_without_pipelining_is_recorded(tmp_path):
    """Without PIPELINING, a transaction whose every RCPT is refused ends
    with RSET; its recipients must still be recorded (deferred here) and the
    connection go on with the next message.  (A chaos run found them left
    in flight, never retried, until a restart.)"""
    with FakeSmtp(capabilities=("8BITMIME",),
                  replies={"RCPT:busy@remote.test": "450 4.2.1 busy"}) as mx, \
            running(tmp_path, conn=RELAY, transport={
                "TransientFailureRetryInterval": "1s"},
                raw_extra=smarthost(mx.port)) as s:
        send(s, ["busy@remote.test"], "refused")
        send(s, ["ok@remote.test"], "accepted")
        (m,) = mx.wait_messages(1, timeout=20)
        assert m.rcpts == ["ok@remote.test"]
        assert wait_for(lambda: states(s)["busy@remote.test"][2] >= 2), \
            states(s)
        status, error, _ = states(s)["busy@remote.test"]
        assert status == 0 and "450 4.2.1 busy" in error


def test_permanent_failure_returns_a_dsn(tmp_path):
    with FakeSmtp(capabilities=("PIPELINING", "ENHANCEDSTATUSCODES"),
                  replies={"RCPT:bad@remote.test":
                           "550 5.1.1 <bad@remote.test> no such user"}) as mx, \
            running(tmp_path, conn=RELAY, raw_extra=smarthost(mx.port)) as s:
        send(s, ["good@remote.test", "bad@remote.test"], "mixed")
        (m,) = mx.wait_messages(1, timeout=20)
        assert m.rcpts == ["good@remote.test"]
        assert wait_for(lambda: mailbox(s, "alice"))
        text, fields, returned = dsn_parts(mailbox(s, "alice")[0])
        assert "bad@remote.test" in text and "no such user" in text
        per_rcpt = [f for f in fields if "Final-Recipient" in f]
        assert len(per_rcpt) == 1
        f = per_rcpt[0]
        assert f["Final-Recipient"] == "rfc822;bad@remote.test"
        assert f["Action"] == "failed" and f["Status"] == "5.1.1"
        assert "550 5.1.1" in f["Diagnostic-Code"]
        assert f["Remote-MTA"] == "dns;127.0.0.1"
        assert b"Subject: mixed" in returned.as_bytes()
        st = states(s)
        assert st["good@remote.test"][0] == 1
        assert st["bad@remote.test"][0] == 2
        assert wait_for(lambda: [e["recipient-address"] for e in
                                 events(s, "FAIL")] == ["bad@remote.test"])
        assert wait_for(lambda: events(s, "DSN"))


def test_null_sender_is_never_bounced(tmp_path):
    with FakeSmtp(replies={"RCPT": "550 5.1.1 no such user"}) as mx, \
            running(tmp_path, conn=RELAY, raw_extra=smarthost(mx.port)) as s:
        send(s, ["bad@remote.test"], "bounce of a bounce", sender="")
        assert wait_for(lambda: pending(s) == 0)
        assert wait_for(lambda: events(s, "FAIL"))
        time.sleep(1)
        assert events(s, "DSN") == []
        assert len(s.messages()) == 1  # no notice was queued


def test_transient_failure_is_retried(tmp_path):
    with FakeSmtp(replies={"MAIL": ["451 4.3.0 try again later",
                                    "250 2.1.0 ok"]}) as mx, \
            running(tmp_path, conn=RELAY, transport=FAST,
                    raw_extra=smarthost(mx.port)) as s:
        send(s, ["bob@remote.test"], "retry me")
        assert wait_for(lambda: events(s, "DEFER"))
        st = states(s)["bob@remote.test"]
        assert st[0] == 0 and "451 4.3.0 try again later" in st[1]
        (m,) = mx.wait_messages(1, timeout=20)
        assert m.rcpts == ["bob@remote.test"]
        assert wait_for(lambda: states(s)["bob@remote.test"][0] == 1)
        assert states(s)["bob@remote.test"][2] == 2  # two attempts


def test_unreachable_next_hop_waits_in_retry(tmp_path):
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        dead = sk.getsockname()[1]  # bound, never listening: refused
        with running(tmp_path, conn=RELAY, transport={
                "TransientFailureRetryInterval": "1h"},
                raw_extra=smarthost(dead)) as s:
            send(s, ["bob@remote.test"], "nobody home")
            assert wait_for(lambda: events(s, "DEFER"))
            st = states(s)["bob@remote.test"]
            assert st[0] == 0 and "connection failed" in st[1]
            p = subprocess.run([str(SLUICECTL), "-c", str(s.conf_path),
                                "queue"], capture_output=True, text=True,
                               timeout=20)
            row = [ln for ln in p.stdout.splitlines()
                   if ln.startswith("Out ")]
            assert row and "Retry" in row[0] and "refused" in row[0], p.stdout


def test_expiry_returns_the_message(tmp_path):
    t = dict(FAST, MessageExpirationTimeout="5s")
    with FakeSmtp(replies={"RCPT": "452 4.2.2 mailbox full"}) as mx, \
            running(tmp_path, conn=RELAY, transport=t,
                    raw_extra=smarthost(mx.port)) as s:
        send(s, ["bob@remote.test"], "too late")
        assert wait_for(lambda: events(s, "EXPIRE"), timeout=30)
        assert states(s)["bob@remote.test"][0] == 2
        assert wait_for(lambda: mailbox(s, "alice"))
        text, fields, _ = dsn_parts(mailbox(s, "alice")[0])
        f = [f for f in fields if "Final-Recipient" in f][0]
        assert f["Action"] == "failed"
        assert "452 4.2.2 mailbox full" in f["Diagnostic-Code"]


def test_delay_notice_once_then_delivery(tmp_path):
    t = dict(FAST, DelayNotificationTimeout="1s")
    with FakeSmtp(replies={"MAIL": ["451 4.4.1 busy"] * 3 +
                           ["250 2.1.0 ok"]}) as mx, \
            running(tmp_path, conn=RELAY, transport=t,
                    raw_extra=smarthost(mx.port)) as s:
        send(s, ["bob@remote.test"], "slow")
        assert wait_for(lambda: mailbox(s, "alice"), timeout=30)
        text, fields, returned = dsn_parts(mailbox(s, "alice")[0])
        f = [f for f in fields if "Final-Recipient" in f][0]
        assert f["Action"] == "delayed" and "Will-Retry-Until" in f
        (m,) = mx.wait_messages(1, timeout=30)
        assert wait_for(lambda: states(s)["bob@remote.test"][0] == 1)
        assert len(mailbox(s, "alice")) == 1  # one delay notice only


def test_messages_share_one_connection(tmp_path):
    with FakeSmtp(capabilities=("PIPELINING",)) as mx, \
            running(tmp_path, conn=RELAY, raw_extra=smarthost(mx.port)) as s:
        send(s, ["a@remote.test"], "first")
        mx.wait_messages(1, timeout=20)
        for i in range(3):
            send(s, [f"b{i}@remote.test"], f"more {i}")
        mx.wait_messages(4, timeout=20)
        # the parked connection took later messages: fewer connections
        # than messages, and the first one carried more than one
        assert len(mx.sessions) < 4
        assert len(mx.sessions[0].messages) >= 2


def test_hostile_replies_defer_and_never_crash(tmp_path):
    from peers.fakesmtp import CODE_CHANGE, ENDLESS, GARBAGE, OVERLONG
    for reply in (OVERLONG, ENDLESS, GARBAGE, CODE_CHANGE):
        d = tmp_path / f"r{len(os.listdir(tmp_path))}"
        with FakeSmtp(replies={"MAIL": reply}, endless_limit=100000) as mx, \
                running(d, conn=RELAY, transport={
                    "TransientFailureRetryInterval": "1h"},
                    raw_extra=smarthost(mx.port)) as s:
            send(s, ["bob@remote.test"], "hostile")
            assert wait_for(lambda: events(s, "DEFER"), timeout=30), reply
            st = states(s)["bob@remote.test"]
            assert st[0] == 0 and "bad reply" in st[1], st


# Where the next hop stops answering, with the capabilities it offers.
STALLS = {
    "after-mail": ("RCPT", ("PIPELINING",)),
    "after-bdat": ("end-of-data", ("PIPELINING", "CHUNKING")),
    "after-data": ("end-of-data", ("PIPELINING",)),
    "no-pipelining": ("RCPT", ()),
    "banner": ("banner", ("PIPELINING",)),
}


@pytest.mark.parametrize("stall", list(STALLS))
def test_silent_next_hop_is_timed_out(tmp_path, stall):
    """Issue 10.6: a next hop that stops answering, wherever it does
    (after a pipelined MAIL, after the content...), is timed out after
    the send connector's ConnectionInactivityTimeout: the recipient is
    deferred with an attempt recorded and the connection is closed,
    instead of being held forever."""
    from peers.fakesmtp import HANG
    key, caps = STALLS[stall]
    with FakeSmtp(capabilities=caps, replies={key: HANG},
                  idle_timeout=120) as mx, \
            running(tmp_path, conn=RELAY, transport={
                "TransientFailureRetryInterval": "1h"},
                raw_extra=smarthost(mx.port, extra=(
                    "ConnectionInactivityTimeout = 00:00:02"))) as s:
        send(s, ["bob@remote.test"], f"stall {stall}")
        assert wait_for(lambda: states(s)["bob@remote.test"][2] >= 1,
                        timeout=20), states(s)
        st = states(s)["bob@remote.test"]
        assert st[0] == 0 and "timeout waiting for the server" in st[1], st
        assert events(s, "DEFER")
        # and the client left: the fake server saw the connection end
        assert wait_for(lambda: all(x.done.is_set() for x in mx.sessions),
                        timeout=10)


@pytest.mark.parametrize("caps", [("PIPELINING",), ("PIPELINING", "CHUNKING")],
                         ids=["data", "bdat"])
@pytest.mark.parametrize("keep", [False, True], ids=["strip", "keep"])
def test_organization_headers_stay_inside(tmp_path, caps, keep):
    """Issue 10.18: the X-Sluice-Organization-* headers every accepted
    message carries (how it came in) are left out of what a send connector
    sends, folded continuation lines included, by DATA and by BDAT, unless
    the connector keeps them for a next hop of our own organisation
    (CloudServicesMailEnabled).  Nothing else of the message changes."""
    extra = "CloudServicesMailEnabled = true" if keep else ""
    with FakeSmtp(capabilities=caps) as mx, \
            running(tmp_path, conn=RELAY,
                    raw_extra=smarthost(mx.port, extra=extra)) as s:
        send(s, ["bob@remote.test"], "organisation headers",
             body="X-Sluice-Organization-AuthAs: in the body stays\r\n")
        (m,) = mx.wait_messages(1, timeout=20)
        stored = s.bodies()[0]
        assert b"\r\nX-Sluice-Organization-AuthAs: " in stored
        header, _, body = m.data.partition(b"\r\n\r\n")
        names = [ln.split(b":")[0].lower() for ln in header.split(b"\r\n")
                 if ln[:1] not in (b" ", b"\t")]
        org = [n for n in names if n.startswith(b"x-sluice-organization-")]
        if keep:
            assert m.data == stored and org, m.data
        else:
            assert org == [], m.data
            # exactly those lines are gone, nothing else
            kept = b"\r\n".join(
                ln for ln in stored.split(b"\r\n\r\n")[0].split(b"\r\n")
                if not ln.lower().startswith(b"x-sluice-organization-"))
            assert header == kept
            assert body == stored.split(b"\r\n\r\n", 1)[1]
        assert b"X-Sluice-Organization-AuthAs: in the body stays" in body


# --- opportunistic TLS, AUTH ---------------------------------------------

TLS_CAPS = ("PIPELINING", "STARTTLS", "ENHANCEDSTATUSCODES")


def test_opportunistic_starttls_with_any_certificate(tmp_path, pki):
    # self-signed: opportunistic TLS checks nothing and still encrypts
    with FakeSmtp(capabilities=TLS_CAPS, tls=server_context(pki, "self")) \
            as mx, running(tmp_path, conn=RELAY,
                           raw_extra=smarthost(mx.port)) as s:
        send(s, ["bob@remote.test"], "secret")
        (m,) = mx.wait_messages(1, timeout=20)
        assert m.tls
        sess = mx.sessions[0]
        assert sess.verbs(tls=False) == ["EHLO", "STARTTLS"]
        assert sess.verbs(tls=True)[:2] == ["EHLO", "MAIL"]
        assert wait_for(lambda: events(s, "SEND"))
        tls = events(s, "SEND")[0]["tls"]
        assert tls.startswith("tls=opportunistic:encrypted;TLSv1"), tls


def test_failed_handshake_retries_same_host_in_plaintext(tmp_path, pki):
    with FakeSmtp(capabilities=TLS_CAPS, tls=server_context(pki, "server"),
                  starttls="garbage") as mx, \
            running(tmp_path, conn=RELAY,
                    raw_extra=smarthost(mx.port)) as s:
        send(s, ["bob@remote.test"], "plain after all")
        (m,) = mx.wait_messages(1, timeout=20)
        assert not m.tls
        assert len(mx.sessions) == 2
        assert "STARTTLS" in mx.sessions[0].verbs()
        assert "STARTTLS" not in mx.sessions[1].verbs()
        assert wait_for(lambda: states(s)["bob@remote.test"][0] == 1)


def test_plaintext_injected_after_starttls_is_discarded(tmp_path, pki):
    with FakeSmtp(capabilities=TLS_CAPS, tls=server_context(pki, "server"),
                  starttls="inject",
                  inject=b"250-injected\r\n250 PIPELINING\r\n") as mx, \
            running(tmp_path, conn=RELAY,
                    raw_extra=smarthost(mx.port)) as s:
        send(s, ["bob@remote.test"], "no injection")
        (m,) = mx.wait_messages(1, timeout=20)
        assert m.tls and m.rcpts == ["bob@remote.test"]
        # the injected lines were never taken as the EHLO reply
        assert mx.sessions[0].verbs(tls=True)[0] == "EHLO"
        assert wait_for(lambda: states(s)["bob@remote.test"][0] == 1)
        log = "\n".join(",".join(r) for r in
                        s.read_csv_log(sorted((s.log_dir / "ProtocolLog" /
                                               "SmtpSend").glob("*")))[1])
        assert "discarded plaintext after STARTTLS" in log


def test_ignore_starttls_never_tries(tmp_path, pki):
    with FakeSmtp(capabilities=TLS_CAPS, tls=server_context(pki, "server")) \
            as mx, running(tmp_path, conn=RELAY, raw_extra=smarthost(
                mx.port, extra="IgnoreSTARTTLS = true")) as s:
        send(s, ["bob@remote.test"], "plain")
        (m,) = mx.wait_messages(1, timeout=20)
        assert not m.tls and "STARTTLS" not in mx.sessions[0].verbs()


def test_starttls_refused_goes_on_in_plaintext(tmp_path, pki):
    with FakeSmtp(capabilities=TLS_CAPS, tls=server_context(pki, "server"),
                  replies={"STARTTLS": "454 4.7.0 TLS not available"}) \
            as mx, running(tmp_path, conn=RELAY,
                           raw_extra=smarthost(mx.port)) as s:
        send(s, ["bob@remote.test"], "plain")
        (m,) = mx.wait_messages(1, timeout=20)
        assert not m.tls and len(mx.sessions) == 1


def test_require_tls_never_sends_in_plaintext(tmp_path):
    with FakeSmtp(capabilities=("PIPELINING",)) as mx, \
            running(tmp_path, conn=RELAY, transport={
                "TransientFailureRetryInterval": "1h"},
                raw_extra=smarthost(mx.port, extra="RequireTLS = true\n"
                                    "TlsAuthLevel = EncryptionOnly")) as s:
        send(s, ["bob@remote.test"], "must be encrypted")
        assert wait_for(lambda: events(s, "DEFER"))
        assert "MAIL" not in mx.sessions[0].verbs()
        st = states(s)["bob@remote.test"]
        assert st[0] == 0 and "does not offer STARTTLS" in st[1]


def smarthost_auth(port, mech, cred):
    return smarthost(port, extra=f"SmartHostAuthMechanism = {mech}\n"
                     f"AuthenticationCredential = {cred}")


@pytest.mark.parametrize("mech", ["BasicAuth", "BasicAuthRequireTLS"])
def test_auth_to_smarthost_inside_tls(tmp_path, pki, mech):
    """Credentials go inside TLS whenever TLS is possible, for both."""
    cred = tmp_path / "relay.secret"
    cred.write_text("relayuser:s3cret pass\n")
    with FakeSmtp(capabilities=TLS_CAPS, tls=server_context(pki, "server"),
                  auth=("relayuser", "s3cret pass")) as mx, \
            running(tmp_path / "d", conn=RELAY, raw_extra=smarthost_auth(
                mx.port, mech, cred)) as s:
        send(s, ["bob@remote.test"], "authenticated")
        (m,) = mx.wait_messages(1, timeout=20)
        (a,) = mx.sessions[0].auths
        assert a.tls and a.ok and a.user == "relayuser"
        assert wait_for(lambda: states(s)["bob@remote.test"][0] == 1)
        # credentials never reach the protocol log
        text = "".join(p.read_text() for p in
                       (s.log_dir / "ProtocolLog" / "SmtpSend").glob("*"))
        assert "AUTH ****" in text and "czNjcmV0" not in text


def test_auth_require_tls_without_tls_sends_nothing(tmp_path):
    cred = tmp_path / "relay.secret"
    cred.write_text("relayuser:s3cret\n")
    with FakeSmtp(capabilities=("PIPELINING",),
                  auth=("relayuser", "s3cret")) as mx, \
            running(tmp_path / "d", conn=RELAY, transport={
                "TransientFailureRetryInterval": "1h"},
                raw_extra=smarthost_auth(mx.port, "BasicAuthRequireTLS",
                                         cred)) as s:
        send(s, ["bob@remote.test"], "no creds in clear")
        assert wait_for(lambda: events(s, "DEFER"))
        assert mx.sessions[0].auths == []
        assert "MAIL" not in mx.sessions[0].verbs()
        assert "credentials not sent" in states(s)["bob@remote.test"][1]


def test_basic_auth_without_tls_on_offer(tmp_path):
    cred = tmp_path / "relay.secret"
    cred.write_text("relayuser:s3cret\n")
    with FakeSmtp(capabilities=("PIPELINING",), auth_mechanisms=("LOGIN",),
                  auth=("relayuser", "s3cret")) as mx, \
            running(tmp_path / "d", conn=RELAY, raw_extra=smarthost_auth(
                mx.port, "BasicAuth", cred)) as s:
        send(s, ["bob@remote.test"], "login")
        mx.wait_messages(1, timeout=20)
        (a,) = mx.sessions[0].auths
        assert a.mechanism == "LOGIN" and a.ok and not a.tls


# --- DSN parameters (RFC 3461) --------------------------------------------

def send_dsn(s, rcpt_params, mail_params=" RET=HDRS ENVID=env+2Bid"):
    with Client(s.port) as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<alice@example.test>{mail_params}").check(250)
        c.cmd(f"RCPT TO:<bob@remote.test>{rcpt_params}").check(250)
        c.cmd("DATA").check(354)
        c.send(make_message("dsn params").encode() + b".\r\n")
        c.reply().check(250)


def test_dsn_parameters_pass_to_a_dsn_next_hop(tmp_path):
    with FakeSmtp(capabilities=("PIPELINING", "DSN")) as mx, \
            running(tmp_path, conn=RELAY, raw_extra=smarthost(mx.port)) as s:
        send_dsn(s, " NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob+2Bx@remote.test")
        (m,) = mx.wait_messages(1, timeout=20)
        params = " ".join(m.mail_params).upper() if isinstance(
            m.mail_params, (list, tuple)) else str(m.mail_params).upper()
        assert "RET=HDRS" in params and "ENVID=ENV+2BID" in params
        rp = str(m.rcpt_params).upper()
        assert "NOTIFY=SUCCESS,FAILURE" in rp
        assert "ORCPT=RFC822;BOB+2BX@REMOTE.TEST" in rp
        assert wait_for(lambda: pending(s) == 0)
        time.sleep(1)
        assert mailbox(s, "alice") == []  # the next hop reports success


def test_notify_success_without_dsn_next_hop_is_relayed(tmp_path):
    with FakeSmtp(capabilities=("PIPELINING",)) as mx, \
            running(tmp_path, conn=RELAY, raw_extra=smarthost(mx.port)) as s:
        send_dsn(s, " NOTIFY=SUCCESS ORCPT=rfc822;Bob+2Bx+3Dy@remote.test")
        mx.wait_messages(1, timeout=20)
        (m,) = mx.messages
        assert "NOTIFY" not in str(m.rcpt_params).upper()
        assert wait_for(lambda: mailbox(s, "alice"))
        _, fields, returned = dsn_parts(mailbox(s, "alice")[0])
        f = [f for f in fields if "Final-Recipient" in f][0]
        assert f["Action"] == "relayed" and f["Status"].startswith("2.")
        # decoded from xtext, as RFC 3464 and Postfix have them (10.20)
        assert any(x.get("Original-Envelope-Id") == "env+id"
                   for x in fields), fields
        assert f["Original-Recipient"] == "rfc822;Bob+x=y@remote.test", f
        # RET=HDRS: the header only
        assert returned.get_content_type() == "text/rfc822-headers"


def test_notify_never_gets_no_bounce(tmp_path):
    with FakeSmtp(replies={"RCPT": "550 5.1.1 no such user"}) as mx, \
            running(tmp_path, conn=RELAY, raw_extra=smarthost(mx.port)) as s:
        send_dsn(s, " NOTIFY=NEVER")
        assert wait_for(lambda: events(s, "FAIL"))
        time.sleep(1)
        assert mailbox(s, "alice") == [] and events(s, "DSN") == []


def test_connector_max_message_size_returns_larger_mail(tmp_path):
    with FakeSmtp() as mx, running(tmp_path, conn=RELAY, raw_extra=smarthost(
            mx.port, extra="MaxMessageSize = 2KB")) as s:
        send(s, ["small@remote.test"], "small")
        send(s, ["big@remote.test"], "big", body="x" * 70 + "\r\n" * 1 +
             ("y" * 70 + "\r\n") * 60)
        mx.wait_messages(1, timeout=20)
        assert wait_for(lambda: mailbox(s, "alice"))
        _, fields, _ = dsn_parts(mailbox(s, "alice")[0])
        f = [f for f in fields if "Final-Recipient" in f][0]
        assert f["Final-Recipient"] == "rfc822;big@remote.test"
        assert f["Status"] == "5.3.4"
        assert "MaxMessageSize" in f["Diagnostic-Code"]
        assert [m.rcpts for m in mx.messages] == [["small@remote.test"]]


def test_ipv6_next_hop(tmp_path):
    from harness import ipv6_available
    if not ipv6_available():
        pytest.skip("no IPv6 loopback in this environment")
    with FakeSmtp(host="::1") as mx, running(
            tmp_path, conn=RELAY, raw_extra=smarthost(mx.port).replace(
                f"[127.0.0.1]:{mx.port}", f"[::1]:{mx.port}")) as s:
        send(s, ["bob@remote.test"], "over IPv6")
        (m,) = mx.wait_messages(1, timeout=20)
        assert m.rcpts == ["bob@remote.test"]
        assert wait_for(lambda: events(s, "SEND"))
        log = "".join(p.read_text() for p in
                      (s.log_dir / "ProtocolLog" / "SmtpSend").glob("*"))
        assert f"[::1]:{mx.port}" in log


def test_max_per_domain_outbound_connections(tmp_path):
    """One connection at a time to a next hop: the messages queue behind
    it and share it."""
    from peers.fakesmtp import delayed
    with FakeSmtp(capabilities=("PIPELINING",),
                  replies={"end-of-data": delayed(0.3, "250 2.0.0 ok")}) \
            as mx, running(tmp_path, conn=RELAY, transport={
                "MaxPerDomainOutboundConnections": 1},
                raw_extra=smarthost(mx.port)) as s:
        for i in range(4):
            send(s, [f"r{i}@remote.test"], f"one lane {i}")
        mx.wait_messages(4, timeout=20)
        assert len(mx.sessions) == 1
        assert wait_for(lambda: pending(s) == 0)
