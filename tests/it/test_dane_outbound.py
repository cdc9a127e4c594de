"""DANE outbound (issue 16, RFC 7672): sluiced delivers through MX hosts
whose TLSA records come from a zone signed with ldns-signzone (its key is
[Transport] DnssecTrustAnchorFile), to a real Postfix next hop whose
certificate matches the records or not, and to scriptable next hops that
strip STARTTLS or break the handshake.  A secure, matching host gets the
mail with tls=dane:verified (also through a CNAME'd MX, and DANE-TA(2)
through an intermediate); an insecure or TLSA-less host gets the
connector's opportunistic TLS; a host whose records do not match, fail
validation, fail to resolve, or that offers no TLS is never used and the
mail waits with a reason that names DANE and the check; with SmtpDaneMode
Mandatory a host without records is not used either; a smart host named by
DNS name gets DANE the same way.  From the peers'
side: no MAIL is ever sent in plaintext to a DANE host, and a deferred
recipient never reaches the peer."""
import re

import pytest

from harness import free_port, run_ctl, running
from peers.fakesmtp import FakeSmtp, server_context
from peers.postfix import Postfix
from peers.unbound import Unbound, tlsa_rdata
from test_delivery import RELAY, events, send, states, wait_for

PF_DOMAINS = ["match", "cname", "nomatch", "insecure", "notlsa", "bogus",
              "servfail"]


def zone(pki, pf_port, strip_port, garbage_port, ta_port):
    server = tlsa_rdata(pki / "server.pem")
    wrong = tlsa_rdata(pki / "wrong.pem")
    inter = tlsa_rdata(pki / "chain.pem", usage=2, index=1)
    signed = [
        "mx.sluice.test. A 127.0.0.1",
        f"_{pf_port}._tcp.mx.sluice.test. TLSA {server}",
        "match.sluice.test. MX 10 mx.sluice.test.",
        "cname.sluice.test. MX 10 alias.sluice.test.",
        "alias.sluice.test. CNAME mx.sluice.test.",
        "nomatch.sluice.test. MX 10 mxw.sluice.test.",
        "mxw.sluice.test. A 127.0.0.1",
        f"_{pf_port}._tcp.mxw.sluice.test. TLSA {wrong}",
        "notlsa.sluice.test. MX 10 mxn.sluice.test.",
        "mandatory.sluice.test. MX 10 mxn.sluice.test.",
        "mxn.sluice.test. A 127.0.0.1",
        "insecure.sluice.test. MX 10 mx.unsigned.sluice.test.",
        "bogus.sluice.test. MX 10 mxb.sluice.test.",
        "mxb.sluice.test. A 127.0.0.1",
        "servfail.sluice.test. MX 10 mxsf.sluice.test.",
        "mxsf.sluice.test. A 127.0.0.1",
        "strip.sluice.test. MX 10 mxs.sluice.test.",
        "mxs.sluice.test. A 127.0.0.1",
        f"_{strip_port}._tcp.mxs.sluice.test. TLSA {server}",
        "garbage.sluice.test. MX 10 mxg.sluice.test.",
        "mxg.sluice.test. A 127.0.0.1",
        f"_{garbage_port}._tcp.mxg.sluice.test. TLSA {server}",
        "ta.sluice.test. MX 10 chain.sluice.test.",
        "chain.sluice.test. A 127.0.0.1",
        f"_{ta_port}._tcp.chain.sluice.test. TLSA {inter}",
    ]
    return Unbound(
        signed={"sluice.test": signed},
        # an unsigned zone's TLSA records mean nothing, even wrong ones
        insecure={"unsigned.sluice.test": [
            "mx.unsigned.sluice.test. A 127.0.0.1",
            f"_{pf_port}._tcp.mx.unsigned.sluice.test. TLSA {wrong}"]},
        bogus=[f"_{pf_port}._tcp.mxb.sluice.test. TLSA {server}"],
        servfail=["_tcp.mxsf.sluice.test"])


def connectors(pf_port, strip_port, garbage_port, ta_port):
    pf_spaces = ", ".join(f"{d}.sluice.test" for d in PF_DOMAINS)
    out = f"""
[SendConnector Postfix]
AddressSpaces = {pf_spaces}
Port = {pf_port}
Fqdn = out.sluice.test
ProtocolLoggingLevel = Verbose

[SendConnector Mandatory]
AddressSpaces = mandatory.sluice.test
Port = {pf_port}
SmtpDaneMode = Mandatory

[SendConnector Smart]
AddressSpaces = smart.example
DNSRoutingEnabled = false
SmartHosts = mx.sluice.test:{pf_port}
"""
    for name, port in (("strip", strip_port), ("garbage", garbage_port),
                       ("ta", ta_port)):
        out += f"""
[SendConnector {name}]
AddressSpaces = {name}.sluice.test
Port = {port}
ProtocolLoggingLevel = Verbose
"""
    return out


@pytest.mark.timeout_s(150)
def test_dane_outbound(tmp_path, pki):
    caps = ("PIPELINING", "STARTTLS")
    pf = Postfix(free_port(), mailbox_domains=[f"{d}.sluice.test"
                                               for d in PF_DOMAINS] +
                 ["smart.example"],
                 mynetworks=(), tls={"cert": f"{pki}/server.pem",
                                     "key": f"{pki}/server.key",
                                     "level": "may"}).start()
    try:
        with FakeSmtp(capabilities=caps, tls=server_context(pki, "server"),
                      starttls="strip") as strip, \
                FakeSmtp(capabilities=caps,
                         tls=server_context(pki, "server"),
                         starttls="garbage") as garbage, \
                FakeSmtp(capabilities=caps,
                         tls=server_context(pki, "chain")) as ta, \
                zone(pki, pf.port, strip.port, garbage.port,
                     ta.port) as dns, \
                running(tmp_path, conn=RELAY, transport={
                    "Resolver": dns.spec,
                    "DnssecTrustAnchorFile": str(dns.anchor_path),
                    "TrustedCAFile": f"{pki}/trusted.pem",
                    "TransientFailureRetryInterval": "1h"},
                    raw_extra=connectors(pf.port, strip.port,
                                         garbage.port, ta.port)) as s:
            domains = PF_DOMAINS + ["mandatory", "strip", "garbage", "ta"]
            rcpts = [f"bob@{d}.sluice.test" for d in domains]
            rcpts.append("bob@smart.example")  # a smart host by name
            send(s, rcpts, "dane outbound")
            assert wait_for(lambda: all(
                r["attempts"] >= 1 or r["status"] != 0
                for r in s.recipients()), timeout=60), states(s)
            st = states(s)

            delivered = {"match", "cname", "insecure", "notlsa", "ta"}
            for d in delivered:
                assert st[f"bob@{d}.sluice.test"][0] == 1, (d, st)
            for d in ("match", "cname", "insecure", "notlsa"):
                pf.wait_delivered(f"bob@{d}.sluice.test", timeout=20)
            assert st["bob@smart.example"][0] == 1, st
            pf.wait_delivered("bob@smart.example", timeout=20)
            ta.wait_messages(1, timeout=20)

            reasons = {
                "nomatch": "DANE: no TLSA record matched the certificate "
                           "of mxw.sluice.test",
                "bogus": "DANE: the TLSA records of mxb.sluice.test failed "
                         "DNSSEC validation",
                "servfail": "DANE: the TLSA records of mxsf.sluice.test "
                            "could not be looked up",
                "mandatory": "(SmtpDaneMode Mandatory)",
                "strip": "DANE: TLS is required and the next hop does not "
                         "offer STARTTLS",
                "garbage": "DANE: TLS handshake failed",
            }
            for d, why in reasons.items():
                status, err, _ = st[f"bob@{d}.sluice.test"]
                assert status == 0, (d, st[f"bob@{d}.sluice.test"])
                assert why in err, (d, err)

            # the tracking log: which policy applied, and that it was met
            assert wait_for(lambda: len(events(s, "SEND")) ==
                            len(delivered) + 1)
            sent = {e["recipient-address"]: e["tls"]
                    for e in events(s, "SEND")}
            for d in ("match", "cname", "ta"):
                assert sent[f"bob@{d}.sluice.test"].startswith(
                    "tls=dane:verified;TLSv1"), sent
            assert sent["bob@smart.example"].startswith(
                "tls=dane:verified;TLSv1"), sent
            for d in ("insecure", "notlsa"):
                assert sent[f"bob@{d}.sluice.test"].startswith(
                    "tls=opportunistic:encrypted;TLSv1"), sent
            deferred = {e["recipient-address"]: e["tls"]
                        for e in events(s, "DEFER")}
            assert deferred["bob@bogus.sluice.test"].startswith(
                "tls=dane:skipped"), deferred

            # the peers: a deferred recipient never reached Postfix, and
            # nothing went in plaintext to the DANE hosts
            log = pf.log_text()
            for d in reasons:
                assert f"to=<bob@{d}.sluice.test>" not in log
            for line in re.findall(r"disconnect from .*", log):
                if "mail=" in line:
                    assert "starttls=1" in line, line
            for fake in (strip, garbage):
                for sess in fake.sessions:
                    assert "MAIL" not in sess.verbs(tls=False), sess
                    assert "RCPT" not in sess.verbs(tls=False), sess

            # sluicectl test-tls shows the same DANE state and verdict
            def probe(host, domain):
                p = run_ctl("-c", s.conf_path, "test-tls",
                            f"{host}:{pf.port}", "--domain", domain,
                            "--connector", "Postfix", timeout=90)
                assert p.returncode == 0, p.stdout + p.stderr
                return p.stdout
            out = probe("mx.sluice.test", "match.sluice.test")
            assert "Dnssec       : address of mx.sluice.test secure" in out
            assert "Dane         : verify: DANE: mx.sluice.test has 1 " \
                   "usable TLSA record" in out, out
            assert "DaneMatch    : yes (DANE-EE(3) 1 1 at depth 0)" in out
            assert "Could deliver: yes (dane met)" in out, out
            out = probe("mxw.sluice.test", "nomatch.sluice.test")
            assert "DaneMatch    : NO - DANE: no TLSA record matched" in out
            assert "Could deliver: no (DANE: no TLSA record matched the " \
                   "certificate of mxw.sluice.test" in out, out
            out = probe("mx.unsigned.sluice.test", "insecure.sluice.test")
            assert "Dane         : off: DANE: the address records of " \
                   "mx.unsigned.sluice.test are not DNSSEC-signed" in out
    finally:
        pf.close()


@pytest.mark.timeout_s(90)
def test_dane_dsn_names_the_policy_and_the_check(tmp_path, pki):
    """A message that DANE kept from the only MX host expires with a DSN
    whose Diagnostic-Code says DANE, the host and the check."""
    from test_delivery import dsn_parts, mailbox
    with FakeSmtp(capabilities=("PIPELINING", "STARTTLS"),
                  tls=server_context(pki, "server")) as mx:
        wrong = tlsa_rdata(pki / "wrong.pem")
        with Unbound(signed={"sluice.test": [
                "nomatch.sluice.test. MX 10 mxw.sluice.test.",
                "mxw.sluice.test. A 127.0.0.1",
                f"_{mx.port}._tcp.mxw.sluice.test. TLSA {wrong}"]}) as dns, \
                running(tmp_path, conn=RELAY, transport={
                    "Resolver": dns.spec,
                    "DnssecTrustAnchorFile": str(dns.anchor_path),
                    "MessageExpirationTimeout": "5s",
                    "TransientFailureRetryInterval": "1s"},
                    raw_extra=f"""
[SendConnector Internet]
AddressSpaces = *.sluice.test
Port = {mx.port}
""") as s:
            send(s, ["bob@nomatch.sluice.test"], "dane dsn")
            assert wait_for(lambda: events(s, "EXPIRE"), timeout=60)
            assert wait_for(lambda: mailbox(s, "alice"))
            _, fields, _ = dsn_parts(mailbox(s, "alice")[0])
            f = [f for f in fields if "Final-Recipient" in f][0]
            diag = " ".join(f["Diagnostic-Code"].split())
            assert "send connector Internet, host mxw.sluice.test" in diag
            assert "DANE: no TLSA record matched the certificate of " \
                   "mxw.sluice.test" in diag, diag
            assert all("MAIL" not in sess.verbs() for sess in mx.sessions)
