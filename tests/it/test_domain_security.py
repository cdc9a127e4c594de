"""Domain Security between two Sluice instances (issue 5): sluice.test
and partner.test, each the other's partner, with certificates from
different test CAs that trust each other, exchange mail in both
directions over mutual TLS; it arrives Domain Secured.  With a partner
certificate that does not name the partner domain the mail waits in the
queue with a clear reason and nothing crosses.

Both find each other by MX in a private unbound: mx.sluice.test is
127.0.0.3, mx.partner.test 127.0.0.2, both on the same port (the send
connectors' Port)."""
import contextlib

import pytest

from harness import Client, free_port, make_message, running
from peers.unbound import Unbound
from test_delivery import RELAY, states, wait_for


def side(pki, dns, me, partner, addr, port, cert):
    """The configuration of one side: a submission connector on
    127.0.0.1 (relay allowed), the partner-facing connector on the MX
    address with DomainSecureEnabled, and a Domain Secure send
    connector to the partner domain."""
    return dict(
        conn=RELAY,
        domains=(me,),
        transport={"TrustedCAFile": f"{pki}/trusted.pem",
                   "Resolver": dns.spec,
                   "TLSSendDomainSecureList": partner,
                   "TLSReceiveDomainSecureList": partner,
                   "TransientFailureRetryInterval": "1h"},
        connectors=[{"name": "Partners", "Bindings": [f"{addr}:{port}"],
                     "AuthMechanism": "Tls",
                     "PermissionGroups": "AnonymousUsers, Partners",
                     "DomainSecureEnabled": "true",
                     "TlsCertificateName": "org"}],
        raw_extra=f"""
[Certificate org]
CertificateFile = {pki}/{cert}.pem
KeyFile = {pki}/{cert}.key

[SendConnector Partner]
AddressSpaces = {partner}
DomainSecureEnabled = true
Port = {port}
Fqdn = mx.{me}
ProtocolLoggingLevel = Verbose
""")


@contextlib.contextmanager
def partners(tmp_path, pki, dns, partner_cert="partner"):
    """Both sides running on one MX port: (sluice.test, partner.test)."""
    port = free_port()
    with running(tmp_path / "a", **side(pki, dns, "sluice.test",
                                        "partner.test", "127.0.0.3", port,
                                        "org")) as a, \
            running(tmp_path / "b", **side(pki, dns, "partner.test",
                                           "sluice.test", "127.0.0.2", port,
                                           partner_cert)) as b:
        yield a, b


def submit(s, sender, rcpt, subject):
    with Client(s.port) as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{sender}>").check(250)
        c.cmd(f"RCPT TO:<{rcpt}>").check(250)
        c.cmd("DATA").check(354)
        c.send(make_message(subject).encode() + b".\r\n")
        c.reply().check(250)


def inbox(s, user, domain):
    d = s.queue_dir / "mailboxes" / domain / user / "new"
    return [p.read_bytes() for p in sorted(d.iterdir())] if d.is_dir() \
        else []


RECORDS = ["sluice.test. MX 10 mx.sluice.test.",
           "mx.sluice.test. A 127.0.0.3",
           "partner.test. MX 10 mx.partner.test.",
           "mx.partner.test. A 127.0.0.2"]


@pytest.fixture
def dns():
    with Unbound(zones=["sluice.test", "partner.test"],
                 records=RECORDS) as server:
        yield server


def test_domain_secured_both_ways(tmp_path, pki, dns):
    with partners(tmp_path, pki, dns) as (a, b):
        submit(a, "alice@sluice.test", "bob@partner.test", "to partner")
        submit(b, "bob@partner.test", "alice@sluice.test", "to sluice")
        got_b = wait_for(lambda: inbox(b, "bob", "partner.test"), timeout=30)
        got_a = wait_for(lambda: inbox(a, "alice", "sluice.test"), timeout=30)
        assert got_b and got_a, (states(a), states(b))
        for body, peer in ((got_b[0], "sluice.test"),
                           (got_a[0], "partner.test")):
            assert b"with ESMTPS" in body
            assert b"X-Sluice-Organization-AuthAs: Partner\n" in body
            assert b"X-Sluice-Organization-AuthMechanism: DomainSecure" \
                in body
            assert f"X-Sluice-Organization-AuthDomain: {peer}\n".encode() \
                in body
        # the receiving side logs how it came in
        received = [",".join(r) for r in b.tracklog()[1] if "RECEIVE" in r]
        assert any("tls=DomainSecure:encrypted;TLSv1" in r
                   for r in received), received
        sent = [r for r in a.tracklog()[1] if "SEND" in r]
        assert any("tls=DomainValidation:verified" in ",".join(r)
                   for r in sent), sent


def test_wrong_partner_certificate_waits(tmp_path, pki, dns):
    with partners(tmp_path, pki, dns, "partner-wrong") as (a, b):
        submit(a, "alice@sluice.test", "bob@partner.test", "must wait")
        assert wait_for(lambda: states(a)["bob@partner.test"][2] >= 1,
                        timeout=30)
        st = states(a)["bob@partner.test"]
        assert st[0] == 0, st
        assert "send connector Partner, host mx.partner.test" in st[1]
        assert "partner.test" in st[1] and "4.7.5" in st[1], st
        assert b.messages() == []  # nothing crossed


def test_server_certificate_as_client_certificate(tmp_path, pki, dns):
    """Issue 10.19: the partner presents a certificate whose extended key
    usage is serverAuth only (what public CAs issue from 2026, and what
    Postfix and Exim present as their client certificate): its mail is
    still accepted Domain Secured.  Both sides use such certificates."""
    with partners(tmp_path, pki, dns, "partner-server") as (a, b):
        submit(b, "bob@partner.test", "alice@sluice.test", "server cert")
        submit(a, "alice@sluice.test", "bob@partner.test", "and back")
        got_a = wait_for(lambda: inbox(a, "alice", "sluice.test"), timeout=30)
        got_b = wait_for(lambda: inbox(b, "bob", "partner.test"), timeout=30)
        assert got_a and got_b, (states(a), states(b))
        assert b"X-Sluice-Organization-AuthMechanism: DomainSecure" \
            in got_a[0]
        assert b"X-Sluice-Organization-AuthDomain: partner.test\n" \
            in got_a[0]


def test_certificate_fit_for_neither_side_is_refused(tmp_path, pki, dns):
    """A partner certificate fit for no TLS use (emailProtection only) is
    still refused: its mail waits with the reason and nothing crosses."""
    with partners(tmp_path, pki, dns, "partner-email") as (a, b):
        submit(b, "bob@partner.test", "alice@sluice.test", "email cert")
        assert wait_for(lambda: states(b)["alice@sluice.test"][2] >= 1,
                        timeout=30)
        st = states(b)["alice@sluice.test"]
        assert st[0] == 0 and "purpose" in st[1], st
        assert a.messages() == []
