"""TLS reports and the posture with DANE and MTA-STS (issue 17 on top of
issue 16): the RFC 8460 result types of their failures, the policy type
and strings of each report, and the partners' DANE and MTA-STS state in
`sluicectl get-tlsposture`.

Next hops on one port and three loopback addresses (a good certificate,
a self-signed one); MTA-STS policies from a local HTTPS server with a
test CA; DANE from a zone signed with ldns-signzone, one host with a
matching TLSA record, one with another key's, one whose records fail
validation, one without records behind a connector with SmtpDaneMode
Mandatory (dane-required).  Every report `sluicectl tls-report` prints is validated
against RFC 8460's schema."""
import json
import time
from pathlib import Path

import jsonschema
import pytest

from harness import running
from peers.fakesmtp import FakeSmtp, server_context
from peers.mtasts import MtaStsServer, policy
from peers.unbound import Unbound, tlsa_rdata
from test_delivery import RELAY, send, states, wait_for
from test_queue_cli import ctl

SCHEMA = json.loads((Path(__file__).parent / "tlsrpt_schema.json").read_text())
CAPS = ("PIPELINING", "STARTTLS")
STS = ["stsok.test", "stsmx.test", "stscert.test", "stsfetch.test",
       "stsbad.test"]
DANE = ["danok.test", "danebad.test", "danebogus.test", "danereq.test"]


def today():
    return time.strftime("%Y-%m-%d", time.gmtime())


def reports(s):
    r = ctl(s, "tls-report", "--date", today())
    assert r.returncode == 0, r.stdout + r.stderr
    dec, text, out = json.JSONDecoder(), r.stdout.strip(), {}
    while text:
        obj, end = dec.raw_decode(text)
        jsonschema.validate(obj, SCHEMA)
        (p,) = obj["policies"]
        out[p["policy"]["policy-domain"]] = p
        text = text[end:].lstrip()
    return out


def results(p):
    return {d["result-type"]: d["failed-session-count"]
            for d in p.get("failure-details", [])}


def posture(s, domain):
    r = ctl(s, "get-tlsposture", domain)
    assert r.returncode == 0, r.stdout + r.stderr
    return {k.strip(): v.strip() for k, v in
            (ln.split(":", 1) for ln in r.stdout.splitlines() if ":" in ln)}


@pytest.mark.timeout_s(150)
def test_dane_and_mta_sts_in_reports_and_posture(tmp_path, pki):
    good_rr = tlsa_rdata(pki / "server.pem")
    wrong_rr = tlsa_rdata(pki / "wrong.pem")
    with MtaStsServer(pki, STS) as web:
        web.set("stsok.test", policy("enforce", ["mx.sluice.test"]))
        web.set("stsmx.test", policy("enforce", ["mx.sluice.test"]))
        web.set("stscert.test", policy("enforce", ["*.sluice.test"]))
        web.set("stsfetch.test", "down", status=500)
        web.set("stsbad.test", "version: STSv1\r\nmode: sideways\r\n")
        good = FakeSmtp(host="127.0.0.1", capabilities=CAPS,
                        tls=server_context(pki, "server"))
        good.start()
        bad = FakeSmtp(host="127.0.0.2", port=good.port, capabilities=CAPS,
                       tls=server_context(pki, "self"))
        port = good.port
        recs = [r for d in STS for r in web.dns_records(d, "id1")] + [
            "stsok.test. MX 10 mx.sluice.test.",
            "stsmx.test. MX 10 mx.other.test.",
            "stscert.test. MX 10 self.sluice.test.",
            "stsfetch.test. MX 10 mx.sluice.test.",
            "stsbad.test. MX 10 mx.sluice.test.",
            "danok.test. MX 10 mx.dane.test.",
            "danebad.test. MX 10 mxw.dane.test.",
            "danebogus.test. MX 10 mxb.dane.test.",
            "danereq.test. MX 10 mxn.dane.test.",
            f"mx.sluice.test. A {good.host}",
            f"mx.other.test. A {good.host}",
            f"self.sluice.test. A {bad.host}"]
        with good, bad, \
                Unbound(zones=STS + DANE + ["other.test", "sluice.test"],
                        records=recs,
                        signed={"dane.test": [
                            f"mx.dane.test. A {good.host}",
                            f"_{port}._tcp.mx.dane.test. TLSA {good_rr}",
                            f"mxw.dane.test. A {good.host}",
                            f"_{port}._tcp.mxw.dane.test. TLSA {wrong_rr}",
                            f"mxb.dane.test. A {good.host}",
                            # secure, and without TLSA records
                            f"mxn.dane.test. A {good.host}"]},
                        bogus=[f"_{port}._tcp.mxb.dane.test. TLSA "
                               f"{good_rr}"]) as dns, \
                running(tmp_path, conn=RELAY, transport={
                    "Resolver": dns.spec,
                    "DnssecTrustAnchorFile": str(dns.anchor_path),
                    "TrustedCAFile": f"{pki}/trusted.pem",
                    "TransientFailureRetryInterval": "1h",
                    "TlsReportingOrganization": "Sluice Test Org"},
                    raw_extra=f"""
[SendConnector Internet]
AddressSpaces = *.test
Port = {port}

[SendConnector DaneRequired]
AddressSpaces = danereq.test
Port = {port}
SmtpDaneMode = Mandatory
""",
                    env={"SLUICE_MTA_STS_PORT": str(web.port)}) as s:
            send(s, [f"bob@{d}" for d in STS + DANE], "policies")
            assert wait_for(lambda: all(
                r["attempts"] >= 1 or r["status"] != 0
                for r in s.recipients()), timeout=60), states(s)
            st = states(s)
            for d in ("stsok.test", "stsfetch.test", "stsbad.test",
                      "danok.test"):
                assert st[f"bob@{d}"][0] == 1, (d, st)
            for d in ("stsmx.test", "stscert.test", "danebad.test",
                      "danebogus.test", "danereq.test"):
                assert st[f"bob@{d}"][0] == 0, (d, st)

            got = reports(s)
            # MTA-STS: the policy's lines and mx patterns, by domain
            p = got["stsok.test"]
            assert p["policy"]["policy-type"] == "sts"
            assert "mode: enforce" in p["policy"]["policy-string"]
            assert "mx: mx.sluice.test" in p["policy"]["policy-string"]
            assert p["policy"]["mx-host"] == ["mx.sluice.test"]
            assert p["summary"] == {"total-successful-session-count": 1,
                                    "total-failure-session-count": 0}
            p = got["stsmx.test"]
            assert p["policy"]["policy-type"] == "sts"
            assert set(results(p)) == {"validation-failure"}
            (d,) = p["failure-details"]
            assert d["receiving-mx-hostname"] == "mx.other.test"
            assert "does not match" in d["failure-reason-code"]
            p = got["stscert.test"]
            assert set(results(p)) == {"sts-webpki-invalid"}
            p = got["stsfetch.test"]
            assert p["policy"]["policy-type"] == "sts"
            assert set(results(p)) == {"sts-policy-fetch-error"}
            p = got["stsbad.test"]
            assert set(results(p)) == {"sts-policy-invalid"}
            # DANE: reported to the host's TLSA base domain, its records
            p = got["mx.dane.test"]
            assert p["policy"]["policy-type"] == "tlsa"
            assert p["policy"]["policy-string"] == [good_rr.upper()] or \
                [x.lower() for x in p["policy"]["policy-string"]] == \
                [good_rr.lower()], p["policy"]
            assert p["summary"]["total-successful-session-count"] == 1
            p = got["mxw.dane.test"]
            assert p["policy"]["policy-type"] == "tlsa"
            assert set(results(p)) == {"tlsa-invalid"}
            p = got["mxb.dane.test"]
            assert set(results(p)) == {"dnssec-invalid"}
            # Mandatory, and the host's zone securely has no TLSA records:
            # the host is not connected to, and the type says why
            p = got["mxn.dane.test"]
            assert set(results(p)) == {"dane-required"}, p
            assert p["summary"] == {"total-successful-session-count": 0,
                                    "total-failure-session-count": 1}, p
            assert not any("bob@danereq.test" in m.rcpts
                           for m in good.messages)
            assert "danok.test" not in got  # DANE's domain is the host's

            # the posture: DANE and MTA-STS as the last session met them
            assert posture(s, "stsok.test")["MtaSts"] == "enforce (id id1)"
            assert posture(s, "stsok.test")["Dane"] == "off"
            assert posture(s, "danok.test")["Dane"] == "verify"
            assert posture(s, "danebogus.test")["Dane"] == "skip"
            assert posture(s, "stsfetch.test")["MtaSts"] == "none"
