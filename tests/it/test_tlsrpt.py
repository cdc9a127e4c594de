"""SMTP TLS reporting (RFC 8460), issue 17: a day of mixed outcomes against
local peers, and the reports made of it.

Sluice delivers by MX (a private unbound) to fake next hops on 127.0.0.x:
one with a good certificate, one without STARTTLS, one whose handshake
fails (and is retried in plaintext), one with an expired certificate
behind a connector that requires a valid one.  `sluicectl tls-report`
prints the day's report per domain; each is validated against RFC
8460's schema (python3-jsonschema) and its counts checked against the
sessions the peers saw."""
import json
import time
from pathlib import Path

import jsonschema
import pytest

from harness import free_port, running
from peers.fakesmtp import FakeSmtp, server_context
from peers.unbound import Unbound
from test_delivery import RELAY, send, states, wait_for
from test_queue_cli import ctl

SCHEMA = json.loads((Path(__file__).parent / "tlsrpt_schema.json").read_text())
TLS_CAPS = ("PIPELINING", "STARTTLS", "ENHANCEDSTATUSCODES")
DOMAINS = {  # domain: (127.0.0.x, peer options)
    "good.test": ("127.0.0.2", dict(capabilities=TLS_CAPS, cert="server")),
    "plain.test": ("127.0.0.3", dict(capabilities=("PIPELINING",))),
    "broken.test": ("127.0.0.4", dict(capabilities=TLS_CAPS, cert="server",
                                      starttls="garbage")),
    "expired.test": ("127.0.0.5", dict(capabilities=TLS_CAPS,
                                       cert="expired")),
}


def zone():
    recs = []
    for name, (addr, _) in DOMAINS.items():
        recs += [f"{name}. MX 10 mx.{name}.", f"mx.{name}. A {addr}"]
    return recs


def connectors(port):
    return f"""
[SendConnector Internet]
AddressSpaces = *
Port = {port}
Fqdn = out.sluice.test

[SendConnector Expired]
AddressSpaces = expired.test
Port = {port}
Fqdn = out.sluice.test
RequireTLS = true
TlsAuthLevel = CertificateValidation
"""


def today():
    return time.strftime("%Y-%m-%d", time.gmtime())


def reports(s, *args):
    """The JSON objects sluicectl tls-report prints."""
    r = ctl(s, "tls-report", *args)
    assert r.returncode == 0, r.stdout + r.stderr
    dec, text, out = json.JSONDecoder(), r.stdout.strip(), []
    while text:
        obj, end = dec.raw_decode(text)
        out.append(obj)
        text = text[end:].lstrip()
    return out


@pytest.fixture(scope="module")
def day(pki, tmp_path_factory):
    """sluiced after a day's mixed traffic, its peers and resolver."""
    port = free_port()
    peers = {}
    with Unbound(zones=list(DOMAINS), records=zone()) as dns:
        for name, (addr, opt) in DOMAINS.items():
            opt = dict(opt)
            cert = opt.pop("cert", None)
            if cert:
                opt["tls"] = server_context(pki, cert)
            peers[name] = FakeSmtp(host=addr, port=port, **opt).start()
        try:
            with running(tmp_path_factory.mktemp("tlsrpt"), conn=RELAY,
                         transport={
                             "Resolver": dns.spec,
                             "TrustedCAFile": f"{pki}/trusted.pem",
                             "TransientFailureRetryInterval": "1h",
                             "TlsReportingOrganization": "Sluice Test Org",
                             "TlsReportingContact":
                                 "tlsrpt@sluice.test"},
                         raw_extra=connectors(port)) as s:
                for name in DOMAINS:
                    send(s, [f"bob@{name}"], f"to {name}")
                assert wait_for(lambda: all(
                    st[0] != 0 or st[2] >= 1
                    for st in states(s).values()), timeout=40)
                s.peers = peers
                s.dns = dns
                s.fake_port = port
                yield s
        finally:
            for p in peers.values():
                p.stop()


def test_reports_of_the_day_follow_the_schema_and_the_traffic(day):
    got = {r["policies"][0]["policy"]["policy-domain"]: r
           for r in reports(day, "--date", today())}
    assert set(got) == set(DOMAINS)
    for domain, r in got.items():
        jsonschema.validate(r, SCHEMA)
        assert r["organization-name"] == "Sluice Test Org"
        assert r["contact-info"] == "tlsrpt@sluice.test"
        assert r["date-range"] == {
            "start-datetime": f"{today()}T00:00:00Z",
            "end-datetime": f"{today()}T23:59:59Z"}
        assert r["report-id"].endswith(f".{domain}@sluice.test")
        (p,) = r["policies"]
        assert p["policy"]["policy-type"] == "no-policy-found"

    def summary(domain):
        return got[domain]["policies"][0]["summary"]

    def details(domain):
        return got[domain]["policies"][0].get("failure-details", [])

    assert summary("good.test") == {"total-successful-session-count": 1,
                                    "total-failure-session-count": 0}
    assert details("good.test") == []
    # plaintext is no successful TLS session, even where it was allowed
    assert summary("plain.test")["total-failure-session-count"] == 1
    (d,) = details("plain.test")
    assert d["result-type"] == "starttls-not-supported"
    assert d["receiving-mx-hostname"] == "mx.plain.test"
    assert d["receiving-ip"] == "127.0.0.3"
    assert d["sending-mta-ip"].startswith("127.")
    # the failed handshake counts once; its plaintext retry not at all
    assert len(day.peers["broken.test"].sessions) == 2
    assert summary("broken.test") == {"total-successful-session-count": 0,
                                      "total-failure-session-count": 1}
    assert details("broken.test")[0]["result-type"] == "validation-failure"
    assert "handshake" in details("broken.test")[0]["failure-reason-code"]
    (d,) = details("expired.test")
    assert d["result-type"] == "certificate-expired"
    assert d["failed-session-count"] == 1
    assert d["receiving-mx-helo"] == "fake.test"


def test_one_domain_and_the_same_report_each_time(day):
    (a,) = reports(day, "--domain", "GOOD.test", "--date", today())
    (b,) = reports(day, "--domain", "good.test", "--date", today())
    assert a == b  # same report id: a retry names the same report


def test_nothing_to_report_is_an_error(day):
    r = ctl(day, "tls-report", "--domain", "elsewhere.test",
            "--date", today())
    assert r.returncode == 1 and "no outbound TLS sessions" in r.stdout
    r = ctl(day, "tls-report", "--date", "2001-01-01")
    assert r.returncode == 1
    r = ctl(day, "tls-report", "--date", "yesterday")
    assert r.returncode == 1 and "bad argument" in r.stdout

