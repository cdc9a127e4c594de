"""TLS-Required: No (RFC 8689 3), issue 17: a message with that header
goes past DANE and MTA-STS failures, never past a send connector's own
Force TLS, and the tracking log says so.

Next hops as in test_mta_sts_outbound (one port, three loopback
addresses: a good certificate, a self-signed one, STARTTLS stripped), a
policy server with a test CA, a private unbound with a signed zone for
DANE.  The same four recipients get a message without the header (every
one waits, with DANE's or MTA-STS's reason or the connector's) and one
with it (the DANE and MTA-STS ones are delivered with
tls=...;TlsRequired=No; the Force TLS one still waits, and its next hop
never sees a MAIL in plaintext)."""
import glob

import pytest

from harness import Client, make_message, running
from peers.fakesmtp import FakeSmtp, server_context
from peers.mtasts import MtaStsServer, policy
from peers.unbound import Unbound, tlsa_rdata
from test_delivery import RELAY, events, states, wait_for

CAPS = ("PIPELINING", "STARTTLS")
STS = ["stsmx.test", "stscert.test"]
RCPTS = ["bob@stsmx.test", "bob@stscert.test", "bob@mx.dane.test",
         "bob@force.test"]


def send(s, subject, headers=""):
    with Client(s.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<alice@example.test>").check(250)
        for r in RCPTS:
            c.cmd(f"RCPT TO:<{r}>").check(250)
        c.cmd("DATA").check(354)
        c.send(make_message(subject, extra_headers=headers).encode() +
               b".\r\n")
        c.reply().check(250)


def connectors(port):
    return f"""
[SendConnector Internet]
AddressSpaces = *.test
Port = {port}
ProtocolLoggingLevel = Verbose

[SendConnector Force]
AddressSpaces = force.test
Port = {port}
RequireTLS = true
"""


@pytest.mark.timeout_s(150)
def test_tls_required_no_relaxes_dane_and_mta_sts_only(tmp_path, pki):
    wrong = tlsa_rdata(pki / "wrong.pem")
    with MtaStsServer(pki, STS) as web:
        # enforce: stsmx.test's only MX is outside its policy;
        # stscert.test's has a self-signed certificate
        web.set("stsmx.test", policy("enforce", ["mx.sluice.test"]))
        web.set("stscert.test", policy("enforce", ["*.sluice.test"]))
        good = FakeSmtp(host="127.0.0.1", capabilities=CAPS,
                        tls=server_context(pki, "server"))
        good.start()
        bad = FakeSmtp(host="127.0.0.2", port=good.port, capabilities=CAPS,
                       tls=server_context(pki, "self"))
        strip = FakeSmtp(host="127.0.0.3", port=good.port,
                         capabilities=CAPS,
                         tls=server_context(pki, "server"),
                         starttls="strip")
        port = good.port
        recs = web.dns_records("stsmx.test", "id1") + \
            web.dns_records("stscert.test", "id1") + [
                "stsmx.test. MX 10 mx.other.test.",
                "stscert.test. MX 10 self.sluice.test.",
                "force.test. MX 10 strip.sluice.test.",
                f"mx.other.test. A {good.host}",
                f"mx.sluice.test. A {good.host}",
                f"self.sluice.test. A {bad.host}",
                f"strip.sluice.test. A {strip.host}"]
        with good, bad, strip, \
                Unbound(zones=STS + ["force.test", "other.test",
                                     "sluice.test"],
                        records=recs,
                        # DANE: a record of another key for the MX host
                        signed={"dane.test": [
                            f"mx.dane.test. A {good.host}",
                            f"_{port}._tcp.mx.dane.test. TLSA {wrong}"]}
                        ) as dns, \
                running(tmp_path, conn=RELAY, transport={
                    "Resolver": dns.spec,
                    "DnssecTrustAnchorFile": str(dns.anchor_path),
                    "TrustedCAFile": f"{pki}/trusted.pem",
                    "TransientFailureRetryInterval": "1h"},
                    raw_extra=connectors(port),
                    env={"SLUICE_MTA_STS_PORT": str(web.port)}) as s:
            send(s, "strict")
            assert wait_for(lambda: all(
                r["attempts"] >= 1 or r["status"] != 0
                for r in s.recipients()), timeout=60), states(s)
            strict = {r["addr"]: (r["status"], r["last_error"])
                      for r in s.recipients()}
            assert all(st == 0 for st, _ in strict.values()), strict
            assert "MTA-STS enforce: mx.other.test does not match" in \
                strict["bob@stsmx.test"][1]
            assert "MTA-STS enforce: certificate chain not trusted" in \
                strict["bob@stscert.test"][1]
            assert "DANE" in strict["bob@mx.dane.test"][1]
            assert "STARTTLS" in strict["bob@force.test"][1]

            send(s, "relaxed", headers="TLS-Required: No\r\n")
            assert wait_for(lambda: len(events(s, "SEND")) == 3,
                            timeout=60), states(s)
            sent = {e["recipient-address"]: e for e in events(s, "SEND")}
            assert set(sent) == set(RCPTS[:3])
            for e in sent.values():
                assert e["message-subject"] == "relaxed"
                assert e["tls"].endswith(";TlsRequired=No"), e["tls"]
                assert e["tls"].startswith("tls=opportunistic:"), e["tls"]
            # the connector's Force TLS still holds: no relaxation said,
            # the message waits, its next hop never saw a MAIL
            assert wait_for(lambda: len([
                e for e in events(s, "DEFER")
                if e["message-subject"] == "relaxed"]) >= 1, timeout=60)
            (force,) = [e for e in events(s, "DEFER")
                        if e["message-subject"] == "relaxed"]
            assert force["recipient-address"] == "bob@force.test"
            assert "TlsRequired=No" not in force["tls"], force["tls"]
            assert strip.messages == []
            for fake in (good, bad, strip):
                for sess in fake.sessions:
                    if fake is not bad:
                        assert "MAIL" not in sess.verbs(tls=False), sess
            # what arrived: the relaxed message only, once per domain
            got = [m for f in (good, bad) for m in f.messages]
            assert sorted(r for m in got for r in m.rcpts) == \
                sorted(RCPTS[:3])
            assert all(b"Subject: relaxed" in m.data for m in got)
            # the SmtpSend protocol log says what they would have asked
            _, rows = s.read_csv_log(sorted(glob.glob(str(
                s.log_dir / "ProtocolLog" / "SmtpSend" / "*.LOG"))))
            notes = [r for r in rows if any(
                "TLS-Required: No: DANE and MTA-STS not applied" in f
                for f in r)]
            assert len(notes) >= 3, rows[-20:]
