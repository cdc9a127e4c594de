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



# --- sending ----------------------------------------------------------------
#
# The same kind of day, then the reports sent: good.test publishes an
# https: and a mailto: address, plain.test a mailto: one, expired.test an
# https: one whose server fails the first POST, broken.test nothing.  The
# https: receiver is Python's http.server with TLS (the test PKI's
# server.pem) on mx.sluice.test; the mailto: address is served by a
# recording fake SMTP server, reached through Sluice's own queue.


class ReportReceiver:
    """An HTTPS server that records every POST and answers from a script
    per path (a list of status codes, the last one repeating)."""

    def __init__(self, pki, script):
        import http.server
        import ssl
        import threading

        self.posts = []
        self.script = {k: list(v) for k, v in script.items()}
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                owner.posts.append((self.path, dict(self.headers), body))
                codes = owner.script.get(self.path, [200])
                code = codes.pop(0) if len(codes) > 1 else codes[0]
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(f"{pki}/server.pem", f"{pki}/server.key")
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket,
                                            server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def to(self, path):
        return [p for p in self.posts if p[0] == path]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


def report_of(gz):
    import gzip
    r = json.loads(gzip.decompress(gz))
    jsonschema.validate(r, SCHEMA)
    return r


def mail_report(raw):
    """The JSON report of a multipart/report message, and the message."""
    import email
    msg = email.message_from_bytes(raw)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "tlsrpt"
    (att,) = [p for p in msg.walk()
              if p.get_content_type() == "application/tlsrpt+gzip"]
    return report_of(att.get_payload(decode=True)), msg, att


@pytest.fixture(scope="module")
def sending(pki, tmp_path_factory):
    port = free_port()
    web = ReportReceiver(pki, {"/tlsrpt/expired": [500, 200]})
    url = f"https://mx.sluice.test:{web.port}/tlsrpt"
    recs = zone() + [
        f'_smtp._tls.good.test. TXT "v=TLSRPTv1; rua={url}/good,'
        f'mailto:tlsrpt@reports.test"',
        '_smtp._tls.plain.test. TXT "v=TLSRPTv1;rua=mailto:'
        'tlsrpt@reports.test"',
        f'_smtp._tls.expired.test. TXT "v=TLSRPTv1; rua={url}/expired"',
        "reports.test. MX 10 mx.reports.test.",
        "mx.reports.test. A 127.0.0.6",
        "mx.sluice.test. A 127.0.0.1",
    ]
    peers = {}
    with Unbound(zones=list(DOMAINS) + ["reports.test", "sluice.test"],
                 records=recs) as dns:
        for name, (addr, opt) in DOMAINS.items():
            opt = dict(opt)
            cert = opt.pop("cert", None)
            if cert:
                opt["tls"] = server_context(pki, cert)
            peers[name] = FakeSmtp(host=addr, port=port, **opt).start()
        inbox = FakeSmtp(host="127.0.0.6", port=port,
                         capabilities=("PIPELINING", "8BITMIME")).start()
        try:
            with running(tmp_path_factory.mktemp("tlsrpt-send"), conn=RELAY,
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
                s.web, s.inbox = web, inbox
                yield s
        finally:
            web.stop()
            inbox.stop()
            for p in peers.values():
                p.stop()


def send_reports(s):
    r = ctl(s, "tls-report", "--send", "--date", today())
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.mark.timeout_s(120)
def test_reports_are_sent_once_by_each_method(sending):
    s = sending
    out = send_reports(s)
    assert "good.test https://" in out and "good.test mailto:" in out
    assert "broken.test: no TLS reporting policy" in out
    assert "expired.test https://" in out and "failed (attempt 1 of 6)" in \
        out and "HTTP 500" in out
    # https: one POST each, the gzip'd JSON, valid
    (post,) = s.web.to("/tlsrpt/good")
    assert post[1]["Content-Type"] == "application/tlsrpt+gzip"
    r = report_of(post[2])
    assert r["policies"][0]["policy"]["policy-domain"] == "good.test"
    assert r["organization-name"] == "Sluice Test Org"
    assert len(s.web.to("/tlsrpt/expired")) == 1
    # mailto: through our queue to the recording server
    msgs = s.inbox.wait_messages(2, timeout=40)
    domains = set()
    for m in msgs:
        assert m.rcpts == ["tlsrpt@reports.test"]
        assert m.mail_from == "tlsrpt@sluice.test"
        r, msg, att = mail_report(m.data)
        d = r["policies"][0]["policy"]["policy-domain"]
        domains.add(d)
        assert msg["TLS-Report-Domain"] == d
        assert msg["TLS-Report-Submitter"] == "sluice.test"
        assert msg["TLS-Required"] == "No"
        assert f"Report-ID: <{r['report-id']}>" in " ".join(
            msg["Subject"].split())
        assert att.get_filename().startswith(f"sluice.test!{d}!")
    assert domains == {"good.test", "plain.test"}
    # the failure was logged with its attempt
    assert wait_for(lambda: "failed (attempt 1 of 6): HTTP 500" in
                    s.stderr())
    # again: the failed one is retried and goes, the rest is not sent again
    out = send_reports(s)
    assert out.count("already sent") == 3, out
    assert "expired.test https://" in out and ": sent" in out
    assert len(s.web.to("/tlsrpt/expired")) == 2
    assert len(s.web.to("/tlsrpt/good")) == 1
    # and once more: nothing new goes anywhere
    out = send_reports(s)
    assert out.count("already sent") == 4, out
    assert len(s.web.posts) == 3
    assert wait_for(lambda: all(r["status"] != 0
                                for r in s.recipients()
                                if r["addr"] == "tlsrpt@reports.test"))
    assert len(s.inbox.messages) == 2
    with s._db() as db:
        sent = db.execute("select count(*) from tlsrpt_sent where "
                          "state = 1").fetchone()[0]
    assert sent == 4


@pytest.mark.timeout_s(120)
def test_reports_are_not_sent_again_after_a_restart(sending):
    s = sending
    # everything sent (this module's first test may not have run)
    for _ in range(3):
        out = send_reports(s)
        if out.count("already sent") == 4:
            break
    assert out.count("already sent") == 4, out
    assert wait_for(lambda: len(s.inbox.messages) == 2, timeout=40)
    posts = len(s.web.posts)
    s.restart()
    # what was recorded survives the restart: nothing goes twice
    out = send_reports(s)
    assert out.count("already sent") == 4, out
    assert "failed" not in out and "queued as" not in out
    assert len(s.web.posts) == posts
    assert len(s.web.to("/tlsrpt/good")) == 1
    assert len(s.inbox.messages) == 2
    assert "TLS report" not in s.stderr()  # this run of the daemon sent none
