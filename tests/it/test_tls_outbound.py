"""Outbound TLS policy (issue 5): every row of SPEC's TLS table against a
real next hop.  A private Postfix serves in turn with no TLS, a
self-signed certificate, a good certificate from the test CA, a
wrong-name, an expired and a wildcard certificate; sluiced sends one
message to five domains, each routed through a send connector with one
setting of the table, and each recipient must be delivered or deferred
as the table says.  A deferred recipient never reaches the peer (its
address is absent from Postfix's log), and the fake server proves from
the peer's side that no MAIL FROM crosses in plaintext when TLS is
required, also when STARTTLS is stripped or plaintext is injected."""
import subprocess
import time

import pytest

from harness import SLUICECTL, free_port, running
from peers.fakesmtp import FakeSmtp, server_context
from peers.postfix import Postfix
from test_delivery import RELAY, events, send, states, wait_for
from test_queue_cli import ctl

# connector (AddressSpaces = <name>.test) -> its TLS settings
SETTINGS = {
    "opp": "",
    "ignore": "IgnoreSTARTTLS = true",
    "enc": "RequireTLS = true\nTlsAuthLevel = EncryptionOnly",
    "cert": "RequireTLS = true\nTlsAuthLevel = CertificateValidation",
    "dom": "RequireTLS = true\nTlsAuthLevel = DomainValidation\n"
           "TlsDomain = *.sluice.test",
}

# peer certificate -> connectors that deliver (the others defer)
MATRIX = {
    None: {"opp", "ignore"},
    "self": {"opp", "ignore", "enc"},
    "server": {"opp", "ignore", "enc", "cert", "dom"},
    "wrong": {"opp", "ignore", "enc", "cert"},
    "expired": {"opp", "ignore", "enc"},
    "wild": {"opp", "ignore", "enc", "cert", "dom"},
}

# why a connector defers, per peer certificate (a word of the reason)
REASONS = {
    None: "does not offer STARTTLS",
    "self": "not trusted",
    "wrong": "does not match TlsDomain *.sluice.test",
    "expired": "expired",
}


def connectors(port):
    out = ""
    for name, extra in SETTINGS.items():
        out += f"""
[SendConnector {name}]
AddressSpaces = {name}.test
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:{port}
Fqdn = out.sluice.test
ProtocolLoggingLevel = Verbose
{extra}
"""
    return out


@pytest.mark.parametrize("cert", list(MATRIX), ids=lambda c: c or "none")
def test_tls_table(tmp_path, pki, cert):
    tls = None
    if cert is not None:
        tls = {"cert": f"{pki}/{cert}.pem", "key": f"{pki}/{cert}.key",
               "level": "may"}
    domains = [f"{n}.test" for n in SETTINGS]
    pf = Postfix(free_port(), mailbox_domains=domains, mynetworks=(),
                 tls=tls).start()
    try:
        with running(tmp_path, conn=RELAY, transport={
                "TrustedCAFile": f"{pki}/trusted.pem",
                "TransientFailureRetryInterval": "1h"},
                raw_extra=connectors(pf.port)) as s:
            rcpts = [f"bob@{d}" for d in domains]
            send(s, rcpts, f"tls table {cert}")
            assert wait_for(lambda: all(
                r["attempts"] >= 1 or r["status"] != 0
                for r in s.recipients()), timeout=30)
            st = states(s)
            for name in SETTINGS:
                addr = f"bob@{name}.test"
                if name in MATRIX[cert]:
                    assert st[addr][0] == 1, (cert, name, st[addr])
                    pf.wait_delivered(addr, timeout=20)
                else:
                    assert st[addr][0] == 0, (cert, name, st[addr])
                    assert f"send connector {name}" in st[addr][1]
                    if cert in REASONS:
                        assert REASONS[cert] in st[addr][1], st[addr]
            # a deferred recipient never reached the peer
            log = pf.log_file.read_text(errors="replace")
            for name in set(SETTINGS) - MATRIX[cert]:
                assert f"to=<bob@{name}.test>" not in log
            # and it was left with QUIT, not dropped (issue 10.14)
            assert "lost connection" not in log, log
            # the tracking log states the policy and whether it was met
            assert wait_for(lambda: len(events(s, "SEND")) ==
                            len(MATRIX[cert]))
            sent = {e["recipient-address"]: e["tls"]
                    for e in events(s, "SEND")}
            if cert is not None:
                assert sent["bob@opp.test"].startswith(
                    "tls=opportunistic:encrypted;TLSv1")
                assert sent["bob@enc.test"].startswith(
                    "tls=EncryptionOnly:encrypted;TLSv1")
            assert sent["bob@ignore.test"] == "tls=IgnoreSTARTTLS:none"
            if "dom" in MATRIX[cert]:
                assert sent["bob@dom.test"].startswith(
                    "tls=DomainValidation:verified;TLSv1")
                assert sent["bob@cert.test"].startswith(
                    "tls=CertificateValidation:verified;")
    finally:
        pf.close()


REQUIRED = "RequireTLS = true\nTlsAuthLevel = EncryptionOnly"


def fake_connector(port, extra=REQUIRED):
    return f"""
[SendConnector Forced]
AddressSpaces = *
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:{port}
ProtocolLoggingLevel = Verbose
{extra}
"""


@pytest.mark.parametrize("mode", ["strip", "close", "garbage", "refused"])
def test_forced_tls_never_falls_back(tmp_path, pki, mode):
    kw = {"starttls": mode} if mode != "refused" else {
        "replies": {"STARTTLS": "454 4.7.0 TLS not available"}}
    with FakeSmtp(capabilities=("PIPELINING", "STARTTLS"),
                  tls=server_context(pki, "server"), **kw) as mx, \
            running(tmp_path, conn=RELAY, transport={
                "TransientFailureRetryInterval": "1h"},
                raw_extra=fake_connector(mx.port)) as s:
        send(s, ["bob@remote.test"], f"forced {mode}")
        assert wait_for(lambda: events(s, "DEFER"), timeout=20)
        for sess in mx.sessions:
            assert "MAIL" not in sess.verbs(tls=False), sess
            assert "RCPT" not in sess.verbs(tls=False), sess
        assert len(mx.sessions) == 1  # never retried in plaintext
        assert states(s)["bob@remote.test"][0] == 0


# how a next hop fails the policy -> (fake server options, connector,
# the verbs the client sends in plaintext, the verbs inside TLS)
POLITE = {
    "no-starttls": (dict(starttls="strip"), REQUIRED,
                    ["EHLO", "QUIT"], []),
    "refused": (dict(replies={"STARTTLS": "454 4.7.0 TLS not available"}),
                REQUIRED, ["EHLO", "STARTTLS", "QUIT"], []),
    "wrong-name": (dict(tls="wrong"), "RequireTLS = true\n"
                   "TlsAuthLevel = DomainValidation\n"
                   "TlsDomain = *.sluice.test",
                   ["EHLO", "STARTTLS"], ["QUIT"]),
    "untrusted": (dict(tls="self"), "RequireTLS = true\n"
                  "TlsAuthLevel = CertificateValidation",
                  ["EHLO", "STARTTLS"], ["QUIT"]),
}


@pytest.mark.parametrize("case", list(POLITE))
def test_policy_failure_says_quit(tmp_path, pki, case):
    """Issue 10.14: a next hop that fails the TLS policy is left with
    QUIT (inside TLS when the handshake worked, then close_notify), not
    by dropping the connection, so that Postfix and Exim do not log a
    broken client; nothing of the envelope crosses either way."""
    opts, settings, plain, inside = POLITE[case]
    opts = dict(opts)
    opts["tls"] = server_context(pki, opts.get("tls", "server"))
    with FakeSmtp(capabilities=("PIPELINING", "STARTTLS"), **opts) as mx, \
            running(tmp_path, conn=RELAY, transport={
                "TrustedCAFile": f"{pki}/trusted.pem",
                "TransientFailureRetryInterval": "1h"},
                raw_extra=fake_connector(mx.port, settings)) as s:
        send(s, ["bob@remote.test"], f"polite {case}")
        assert wait_for(lambda: events(s, "DEFER"), timeout=20)
        assert wait_for(lambda: mx.sessions and mx.sessions[0].done.is_set(),
                        timeout=10)
        sess = mx.sessions[0]
        assert sess.verbs(tls=False) == plain, sess
        assert sess.verbs(tls=True) == inside, sess
        assert sess.close_reason == "QUIT", sess
        if inside:
            assert sess.close_notify, sess
        assert states(s)["bob@remote.test"][0] == 0


@pytest.mark.timeout_s(90)
@pytest.mark.parametrize("mode,reasons", [
    ("garbage", ["wrong version number"]),
    # closed with our ClientHello unread: a FIN or a reset, as it happens
    ("close", ["peer closed the connection", "Connection reset by peer"])])
def test_handshake_failure_says_why(tmp_path, pki, mode, reasons):
    """Issue 10.21: a failed handshake is reported with OpenSSL's reason
    (or that the peer went away) in the protocol log, the queue's last
    error and the DSN, not as a bare "TLS handshake failed"."""
    from test_delivery import dsn_parts, mailbox
    with FakeSmtp(capabilities=("PIPELINING", "STARTTLS"),
                  tls=server_context(pki, "server"), starttls=mode,
                  max_sessions=20) as mx, \
            running(tmp_path, conn=RELAY, transport={
                "MessageExpirationTimeout": "6s",
                "TransientFailureRetryInterval": "2s"},
                raw_extra=fake_connector(mx.port)) as s:
        send(s, ["bob@remote.test"], f"handshake {mode}")
        assert wait_for(lambda: states(s)["bob@remote.test"][2] >= 1,
                        timeout=20)
        last = states(s)["bob@remote.test"][1]
        reason = "TLS handshake failed: " + last.rsplit(": ", 1)[-1]
        assert any(last.endswith(r) for r in reasons), last
        rows = [r for r in s.read_csv_log(sorted(
            (s.log_dir / "ProtocolLog" / "SmtpSend").glob("*.LOG")))[1]
            if r[6] == "*"]
        assert any(r[7] == reason for r in rows), rows
        assert wait_for(lambda: mailbox(s, "alice"), timeout=40)
        _, fields, _ = dsn_parts(mailbox(s, "alice")[0])
        f = [f for f in fields if "Final-Recipient" in f][0]
        assert reason in " ".join(f["Diagnostic-Code"].split()), f


def test_failing_next_hop_is_not_reconnected_in_a_loop(tmp_path, pki):
    """Every connection fails the TLS its connector requires: the queue
    waits for its retry time instead of opening the next connection at
    once, and every waiting recipient is deferred with the reason.  (A
    chaos run found the queue reconnecting thousands of times a second
    while its waiting recipients were never settled.)"""
    with FakeSmtp(capabilities=("PIPELINING", "STARTTLS"),
                  tls=server_context(pki, "server"), starttls="garbage",
                  max_sessions=40) as mx, \
            running(tmp_path, conn=RELAY, transport={
                "TransientFailureRetryInterval": "1h",
                "OutboundConnectionFailureRetryInterval": "1h"},
                raw_extra=fake_connector(mx.port)) as s:
        # All ten wait first, so that one wave of connections meets them.
        assert ctl(s, "suspend", "Forced").returncode == 0
        for n in range(10):
            send(s, [f"r{n}@remote.test"], f"no loop {n}")
        assert ctl(s, "resume", "Forced").returncode == 0
        assert wait_for(lambda: all(
            r["attempts"] >= 1 and "TLS handshake failed" in r["last_error"]
            for r in s.recipients() if r["addr"].endswith("@remote.test")),
            timeout=20), states(s)
        seen = len(mx.sessions)
        time.sleep(2)
        # One wave at most (a connection per waiting message), then quiet.
        assert len(mx.sessions) == seen <= 10, (seen, len(mx.sessions))


def test_forced_tls_survives_injection(tmp_path, pki):
    with FakeSmtp(capabilities=("PIPELINING", "STARTTLS"),
                  tls=server_context(pki, "server"), starttls="inject",
                  inject=b"250 injected\r\n") as mx, \
            running(tmp_path, conn=RELAY,
                    raw_extra=fake_connector(mx.port)) as s:
        send(s, ["bob@remote.test"], "injection")
        (m,) = mx.wait_messages(1, timeout=20)
        assert m.tls
        assert mx.sessions[0].verbs(tls=False) == ["EHLO", "STARTTLS"]
        assert mx.sessions[0].verbs(tls=True)[0] == "EHLO"


def test_client_certificate_and_sni(tmp_path, pki):
    """TlsCertificateName presents our certificate; SNI names the host."""
    ctx = server_context(pki, "server", client_ca=f"{pki}/trusted.pem")
    certs = f"""
[Certificate partner]
CertificateFile = {pki}/partner.pem
KeyFile = {pki}/partner.key
"""
    extra = fake_connector(0, "TlsCertificateName = partner")
    extra = extra.replace("SmartHosts = [127.0.0.1]:0",
                          "SmartHosts = localhost:{port}")
    with FakeSmtp(capabilities=("PIPELINING", "STARTTLS"), tls=ctx) as mx, \
            running(tmp_path, conn=RELAY, raw_extra=certs + extra.replace(
                "{port}", str(mx.port))) as s:
        send(s, ["bob@remote.test"], "with our certificate")
        (m,) = mx.wait_messages(1, timeout=20)
        sess = mx.sessions[-1]
        assert m.tls and sess.client_cert is not None
        assert sess.sni == "localhost"
        assert "partner.test" in str(sess.client_cert_info)


# --- sluicectl test-tls --------------------------------------------------

def test_tls_probe(tmp_path, pki):
    import subprocess
    from harness import SLUICECTL
    conf = tmp_path / "probe.conf"
    conf.write_text(f"""[Transport]
QueueDirectory = {tmp_path}/q
TrustedCAFile = {pki}/trusted.pem
[SendConnector Contoso]
AddressSpaces = contoso.test
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:25
RequireTLS = true
TlsAuthLevel = DomainValidation
TlsDomain = *.sluice.test
""")

    def probe(port, *args):
        p = subprocess.run([str(SLUICECTL), "-c", str(conf), "test-tls",
                            f"127.0.0.1:{port}", *args],
                           capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout + p.stderr

    caps = ("PIPELINING", "STARTTLS", "ENHANCEDSTATUSCODES")
    with FakeSmtp(capabilities=caps, tls=server_context(pki, "server"),
                  replies={"MAIL": "530 5.7.0 Must issue a STARTTLS "
                                   "command first"}) as mx:
        rc, out = probe(mx.port, "--domain", "mx.sluice.test",
                        "--connector", "Contoso")
        assert rc == 0, out
        assert "STARTTLS     : offered" in out
        assert "Plain MAIL   : refused" in out
        assert "TLSv1" in out and "Sluice Test CA" in out
        assert "CertificateValidation : pass" in out
        assert "DomainValidation      : pass" in out
        assert "Could deliver: yes (DomainValidation met)" in out
        # the probe renewed EHLO inside TLS
        assert mx.sessions[0].verbs(tls=True)[0] == "EHLO"
    with FakeSmtp(capabilities=caps, tls=server_context(pki, "wrong")) as mx:
        rc, out = probe(mx.port, "--connector", "Contoso")
        assert "Plain MAIL   : accepted" in out
        assert "EncryptionOnly        : pass" in out
        assert "DomainValidation      : FAIL" in out
        assert "does not match TlsDomain *.sluice.test" in out
        assert "Could deliver: no" in out
    with FakeSmtp(capabilities=("PIPELINING",)) as mx:
        rc, out = probe(mx.port, "--connector", "Contoso")
        assert "STARTTLS     : NOT offered" in out
        assert "Could deliver: no (TLS is required and the next hop does not " \
            "offer STARTTLS" in out
    rc, out = probe(free_port())
    assert rc == 1 and "Connection refused" in out


@pytest.mark.parametrize("host", ["127.0.0.1", "mx.probe.test"])
@pytest.mark.parametrize("when", ["before-handshake", "after-handshake"])
def test_tls_probe_survives_a_hangup(tmp_path, pki, when, host):
    """Issue 10.24: a server that closes while test-tls still has to
    write (after the 220 to STARTTLS, or once TLS is up) used to kill
    sluicectl with SIGPIPE (exit 141, all output lost when piped); the
    probe now ends with its report.  The host is a name that only the
    configured [Transport] Resolver knows: the probe resolves next hops
    as sluiced does, not through the system's resolver."""
    from peers.fakesmtp import CLOSE
    from peers.unbound import Unbound
    kw = {"starttls": "close"} if when == "before-handshake" else {
        "replies": {"EHLO": ["250-fake.test\n250-PIPELINING\n250 STARTTLS",
                             CLOSE]}}
    with Unbound(zones=["probe.test"],
                 records=["mx.probe.test. A 127.0.0.1"]) as dns, \
            FakeSmtp(capabilities=("PIPELINING", "STARTTLS"),
                     tls=server_context(pki, "server"), **kw) as mx:
        conf = tmp_path / "probe.conf"
        conf.write_text(f"""[Transport]
QueueDirectory = {tmp_path}/q
TrustedCAFile = {pki}/trusted.pem
Resolver = {dns.spec}
[SendConnector Contoso]
AddressSpaces = probe.test
RequireTLS = true
TlsAuthLevel = CertificateValidation
""")
        # piped, as an administrator's `| less` or a script reads it
        p = subprocess.run([str(SLUICECTL), "-c", str(conf), "test-tls",
                            f"{host}:{mx.port}", "--connector",
                            "Contoso"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        assert p.returncode in (0, 1), (p.returncode, p.stdout)
        assert "Connected    : 127.0.0.1" in p.stdout, p.stdout
        assert "Could deliver: " in p.stdout, p.stdout
        if when == "before-handshake":
            assert "handshake FAILED" in p.stdout
            assert "Could deliver: no (TLS handshake failed" in p.stdout
        else:
            assert "CertificateValidation met" in p.stdout


def test_seed_mixed_scenario(tmp_path, pki):
    """The seed's three partners in one run: domain-a has no TLS and gets
    plaintext, domain-b offers TLS and gets opportunistic TLS, domain-c
    has a Force TLS connector and is delivered only over TLS."""
    ctx = server_context(pki, "server")
    with FakeSmtp(capabilities=("PIPELINING",)) as a, \
            FakeSmtp(capabilities=("PIPELINING", "STARTTLS"), tls=ctx) as b, \
            FakeSmtp(capabilities=("PIPELINING", "STARTTLS"), tls=ctx) as c:
        extra = ""
        for name, mx, settings in (
                ("a", a, ""), ("b", b, ""),
                ("c", c, "RequireTLS = true\n"
                         "TlsAuthLevel = CertificateValidation")):
            extra += f"""
[SendConnector domain-{name}]
AddressSpaces = domain-{name}.test
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:{mx.port}
{settings}
"""
        with running(tmp_path, conn=RELAY, transport={
                "TrustedCAFile": f"{pki}/trusted.pem"},
                raw_extra=extra) as s:
            send(s, ["x@domain-a.test", "y@domain-b.test",
                     "z@domain-c.test"], "mixed partners")
            (ma,) = a.wait_messages(1, timeout=20)
            (mb,) = b.wait_messages(1, timeout=20)
            (mc,) = c.wait_messages(1, timeout=20)
            assert not ma.tls and mb.tls and mc.tls
            assert "MAIL" not in c.sessions[0].verbs(tls=False)
            # the log row follows the peer's reply: wait for all three
            assert wait_for(lambda: len(events(s, "SEND")) == 3)
            sent = {e["recipient-address"]: e["tls"]
                    for e in events(s, "SEND")}
            assert sent["x@domain-a.test"] == "tls=opportunistic:none"
            assert sent["y@domain-b.test"].startswith(
                "tls=opportunistic:encrypted")
            assert sent["z@domain-c.test"].startswith(
                "tls=CertificateValidation:verified")


def test_expired_forced_tls_dsn_names_the_check(tmp_path, pki):
    from test_delivery import dsn_parts, mailbox
    with FakeSmtp(capabilities=("PIPELINING", "STARTTLS"),
                  tls=server_context(pki, "wrong")) as mx, \
            running(tmp_path, conn=RELAY, transport={
                "TrustedCAFile": f"{pki}/trusted.pem",
                "MessageExpirationTimeout": "5s",
                "TransientFailureRetryInterval": "1s"},
                raw_extra=fake_connector(
                    mx.port, "RequireTLS = true\n"
                    "TlsAuthLevel = DomainValidation\n"
                    "TlsDomain = *.contoso.test")) as s:
        send(s, ["bob@contoso.test"], "never in clear")
        assert wait_for(lambda: events(s, "EXPIRE"), timeout=30)
        assert wait_for(lambda: mailbox(s, "alice"))
        text, fields, _ = dsn_parts(mailbox(s, "alice")[0])
        f = [f for f in fields if "Final-Recipient" in f][0]
        diag = " ".join(f["Diagnostic-Code"].split())
        assert "send connector Forced" in diag
        assert "certificate name mx.other.test does not match TlsDomain " \
            "*.contoso.test" in diag
        assert all("MAIL" not in sess.verbs() for sess in mx.sessions)


def test_revoked_next_hop_defers_with_crl(tmp_path, pki):
    """CertificateValidation checks revocation where CRLFile has a CRL."""
    with FakeSmtp(capabilities=("PIPELINING", "STARTTLS"),
                  tls=server_context(pki, "revoked")) as mx, \
            running(tmp_path, conn=RELAY, transport={
                "TrustedCAFile": f"{pki}/trusted.pem",
                "CRLFile": f"{pki}/crls.pem",
                "TransientFailureRetryInterval": "1h"},
                raw_extra=fake_connector(
                    mx.port, "RequireTLS = true\n"
                    "TlsAuthLevel = CertificateValidation")) as s:
        send(s, ["bob@remote.test"], "revoked")
        assert wait_for(lambda: events(s, "DEFER"), timeout=20)
        st = states(s)["bob@remote.test"]
        assert st[0] == 0 and "revoked" in st[1], st
        assert all("MAIL" not in x.verbs() for x in mx.sessions)
