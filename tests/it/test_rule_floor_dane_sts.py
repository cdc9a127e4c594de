"""A transport rule's TLS floor (RouteMessageOutboundRequireTls, SPEC 5)
together with DANE and MTA-STS (SPEC 6), in the one TLS decision: the rule
makes TLS required (EncryptionOnly), and DANE or MTA-STS enforce still add
their checks on top of it, so a next hop the rule alone would have accepted
(TLS with any certificate) is left when a TLSA record does not match or the
MTA-STS certificate check fails; MTA-STS testing still only reports, but
under the rule a next hop without STARTTLS is never sent to in plaintext.
A connector with IgnoreSTARTTLS keeps DANE off: the rule gets TLS
(EncryptionOnly) there, nothing more.  From the peers' side no MAIL goes
in plaintext."""
import pytest

from harness import running
from peers.fakesmtp import FakeSmtp, server_context
from peers.mtasts import MtaStsServer, policy
from peers.unbound import Unbound, tlsa_rdata
from test_delivery import RELAY, events, send, states, wait_for

CAPS = ("PIPELINING", "STARTTLS")
STS_DOMAINS = ["enforce.test", "untrusted.test", "testing.test"]
RULE = "Force TLS"


def config(port):
    return f"""
[SendConnector Internet]
AddressSpaces = *.test
Port = {port}

[SendConnector Ignore]
AddressSpaces = ignore.dane.test
Port = {port}
IgnoreSTARTTLS = true

[TransportRule "{RULE}"]
Priority = 0
RecipientDomainIs = dane.test, enforce.test, untrusted.test, testing.test
RouteMessageOutboundRequireTls = true
"""


@pytest.mark.timeout_s(150)
def test_rule_floor_with_dane_and_mta_sts(tmp_path, pki):
    server = tlsa_rdata(pki / "server.pem")
    wrong = tlsa_rdata(pki / "wrong.pem")
    with MtaStsServer(pki, STS_DOMAINS) as web:
        web.set("enforce.test", policy("enforce", ["mx.sluice.test"]))
        web.set("untrusted.test", policy("enforce", ["*.sluice.test"]))
        web.set("testing.test", policy("testing", ["*.sluice.test"]))
        # one port, three loopback addresses: a certificate from the test
        # CA naming mx.sluice.test, a self-signed one, STARTTLS stripped
        good = FakeSmtp(host="127.0.0.1", capabilities=CAPS,
                        tls=server_context(pki, "server"))
        good.start()
        bad = FakeSmtp(host="127.0.0.2", port=good.port, capabilities=CAPS,
                       tls=server_context(pki, "self"))
        strip = FakeSmtp(host="127.0.0.3", port=good.port,
                         capabilities=CAPS, tls=server_context(pki, "server"),
                         starttls="strip")
        port = good.port
        records = []
        for d in STS_DOMAINS:
            records += web.dns_records(d, "id1")
        records += ["enforce.test. MX 10 mx.sluice.test.",
                    "untrusted.test. MX 10 self.sluice.test.",
                    "testing.test. MX 10 strip.sluice.test.",
                    f"mx.sluice.test. A {good.host}",
                    f"self.sluice.test. A {bad.host}",
                    f"strip.sluice.test. A {strip.host}"]
        signed = [f"mx.dane.test. A {good.host}",
                  f"_{port}._tcp.mx.dane.test. TLSA {server}",
                  f"mxw.dane.test. A {good.host}",
                  f"_{port}._tcp.mxw.dane.test. TLSA {wrong}",
                  "ok.dane.test. MX 10 mx.dane.test.",
                  "wrong.dane.test. MX 10 mxw.dane.test.",
                  "ignore.dane.test. MX 10 mxw.dane.test."]
        with good, bad, strip, \
                Unbound(zones=STS_DOMAINS + ["sluice.test"],
                        records=records,
                        signed={"dane.test": signed}) as dns, \
                running(tmp_path, conn=RELAY, transport={
                    "Resolver": dns.spec,
                    "DnssecTrustAnchorFile": str(dns.anchor_path),
                    "TrustedCAFile": f"{pki}/trusted.pem",
                    "TransientFailureRetryInterval": "1h"},
                    raw_extra=config(port),
                    env={"SLUICE_MTA_STS_PORT": str(web.port)}) as s:
            domains = ["ok.dane.test", "wrong.dane.test", "ignore.dane.test",
                       "enforce.test", "untrusted.test", "testing.test"]
            send(s, [f"bob@{d}" for d in domains], "rule floor")
            assert wait_for(lambda: all(
                r["attempts"] >= 1 or r["status"] != 0
                for r in s.recipients()), timeout=60), states(s)
            st = states(s)

            for d in ("ok.dane.test", "ignore.dane.test", "enforce.test"):
                assert st[f"bob@{d}"][0] == 1, (d, st)
            # each of these would have gone under the rule alone (TLS,
            # any certificate) or under MTA-STS testing alone (plaintext)
            reasons = {
                "wrong.dane.test": "DANE: no TLSA record matched the "
                                   "certificate of mxw.dane.test",
                "untrusted.test": "MTA-STS enforce: certificate chain not "
                                  "trusted",
                "testing.test": "TLS is required and the next hop does not "
                                "offer STARTTLS",
            }
            for d, why in reasons.items():
                status, err, _ = st[f"bob@{d}"]
                assert status == 0, (d, st[f"bob@{d}"])
                assert why in err, (d, err)
                assert f'(TLS required by transport rule "{RULE}")' in err, \
                    (d, err)
            # the floor's own reason is not DANE's or MTA-STS's
            assert "MTA-STS" not in st["bob@testing.test"][1]

            # the tracking log: which policy applied, and that it was met
            assert wait_for(lambda: len(events(s, "SEND")) == 3)
            sent = {e["recipient-address"]: e["tls"]
                    for e in events(s, "SEND")}
            assert sent["bob@ok.dane.test"].startswith(
                "tls=dane:verified;TLSv1"), sent
            assert sent["bob@enforce.test"].startswith(
                "tls=sts-enforce:verified;TLSv1"), sent
            # IgnoreSTARTTLS keeps DANE off; the rule still gets TLS
            assert sent["bob@ignore.dane.test"].startswith(
                "tls=EncryptionOnly:encrypted;TLSv1"), sent

            # the peers: no MAIL in plaintext anywhere, nothing delivered
            # to the self-signed or the stripping next hop
            for fake in (good, bad, strip):
                for sess in fake.sessions:
                    assert "MAIL" not in sess.verbs(tls=False), sess
            assert bad.messages == [] and strip.messages == []
            rcpts = sorted(r for m in good.messages for r in m.rcpts)
            assert rcpts == ["bob@enforce.test", "bob@ignore.dane.test",
                             "bob@ok.dane.test"], rcpts
