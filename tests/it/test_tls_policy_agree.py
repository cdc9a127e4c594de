"""One TLS policy, three views (issue 13): for every send connector
setting of SPEC's TLS table, `sluicectl route`, `sluicectl test-tls` and
an actual delivery by sluiced say the same thing.

Against a next hop with no STARTTLS, a self-signed, a wrong-name and a
good certificate (the fake server, tests/it/peers/fakesmtp.py), for each
connector:
- route's `TlsPolicy` line, test-tls's `TlsPolicy` line and the policy the
  daemon's protocol log names for that connection are the same words
  (all three come from tls_policy_describe());
- test-tls's verdict ("Could deliver: yes/no") is what happened to the
  recipient sent through that connector (delivered, or deferred with
  nothing sent), and both are what SPEC's table says.

The Domain Security connector is routed by DNS (a private unbound:
mx.sluice.test is 127.0.0.1, implicit MX) since Exchange allows it only
with DNS routing; the others use the fake server as their smart host."""
import pytest

from harness import run_ctl, running
from peers.fakesmtp import FakeSmtp, server_context
from peers.unbound import Unbound
from test_delivery import RELAY, events, send, states, wait_for

# connector -> (recipient domain, settings)
SETTINGS = {
    "opp": ("opp.test", ""),
    "ignore": ("ignore.test", "IgnoreSTARTTLS = true"),
    "enc": ("enc.test", "RequireTLS = true\nTlsAuthLevel = EncryptionOnly"),
    "cert": ("cert.test",
             "RequireTLS = true\nTlsAuthLevel = CertificateValidation"),
    "dom": ("dom.test", "RequireTLS = true\nTlsAuthLevel = DomainValidation\n"
                        "TlsDomain = *.sluice.test"),
    "secure": ("mx.sluice.test", "DomainSecureEnabled = true"),
}

# the next hop's certificate -> connectors that deliver (SPEC's table)
MATRIX = {
    None: {"opp", "ignore"},
    "self": {"opp", "ignore", "enc"},
    "wrong": {"opp", "ignore", "enc", "cert"},
    "server": set(SETTINGS),
}


def config(port, dns):
    out = ""
    for name, (domain, extra) in SETTINGS.items():
        hop = (f"Port = {port}" if name == "secure" else
               f"DNSRoutingEnabled = false\nSmartHosts = [127.0.0.1]:{port}")
        out += f"""
[SendConnector {name}]
AddressSpaces = {domain}
{hop}
Fqdn = out.sluice.test
ProtocolLoggingLevel = Verbose
{extra}
"""
    return out


def fields(text):
    """'Key : value' lines of sluicectl's output as a dict."""
    out = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out.setdefault(k.strip(), v.strip())
    return out


def logged_policy(s, connector):
    """The policy the daemon's first connection for a connector names."""
    rows = [r for r in s.read_csv_log(sorted(
        (s.log_dir / "ProtocolLog" / "SmtpSend").glob("*.LOG")))[1]
        if r[1] == connector and r[6] == "*" and "TLS policy: " in r[7]]
    return rows[0][7].split("TLS policy: ", 1)[1] if rows else None


@pytest.mark.timeout_s(150)
@pytest.mark.parametrize("cert", list(MATRIX), ids=lambda c: c or "none")
def test_route_test_tls_and_delivery_agree(tmp_path, pki, cert):
    caps = ("PIPELINING",) if cert is None else ("PIPELINING", "STARTTLS")
    tls = None if cert is None else server_context(pki, cert)
    with Unbound(zones=["sluice.test"],
                 records=["mx.sluice.test. A 127.0.0.1"]) as dns, \
            FakeSmtp(capabilities=caps, tls=tls, max_sessions=16) as mx, \
            running(tmp_path, conn=RELAY, transport={
                "TrustedCAFile": f"{pki}/trusted.pem",
                "Resolver": dns.spec,
                "TLSSendDomainSecureList": "mx.sluice.test",
                "TransientFailureRetryInterval": "1h"},
                raw_extra=f"""
[Certificate org]
CertificateFile = {pki}/server.pem
KeyFile = {pki}/server.key
""" + config(mx.port, dns)) as s:
        rcpts = {name: f"bob@{d}" for name, (d, _) in SETTINGS.items()}
        send(s, list(rcpts.values()), f"agree {cert}")
        assert wait_for(lambda: all(
            r["attempts"] >= 1 or r["status"] != 0
            for r in s.recipients()), timeout=40), states(s)
        st = states(s)
        for name, (domain, _) in SETTINGS.items():
            p = run_ctl("-c", s.conf_path, "route", "--no-dns",
                        rcpts[name])
            route = fields(p.stdout)
            p = run_ctl("-c", s.conf_path, "test-tls",
                        f"127.0.0.1:{mx.port}", "--domain", domain,
                        "--connector", name, timeout=60)
            probe = fields(p.stdout)
            delivered = st[rcpts[name]][0] == 1
            # the words: one function behind all three
            assert route["TlsPolicy"] == probe["TlsPolicy"], (name, p.stdout)
            assert logged_policy(s, name) == route["TlsPolicy"], name
            # the verdict: what test-tls says is what the daemon did
            verdict = probe["Could deliver"]
            assert verdict.startswith("yes" if delivered else "no"), \
                (cert, name, verdict, st[rcpts[name]])
            assert delivered == (name in MATRIX[cert]), \
                (cert, name, st[rcpts[name]])
            if not delivered:
                # the deferral's reason is the one test-tls gives
                why = verdict.split("(", 1)[1].split(";")[0]
                assert why in st[rcpts[name]][1], (verdict, st[rcpts[name]])
        # nothing deferred ever reached the next hop
        sent = {r for m in mx.messages for r in m.rcpts}
        for name in set(SETTINGS) - MATRIX[cert]:
            assert rcpts[name] not in sent
        assert len(events(s, "SEND")) == len(MATRIX[cert])
