"""Inbound TLS on receive connectors: STARTTLS (RFC 3207) with its
security rules, RequireTLS, SNI, the TLS versions offered, and Domain
Security (mutual TLS with partner domains), against real clients: Python's
ssl module, openssl s_client and swaks.  The certificates come from a test
PKI made at test time (tests/pki/make-pki.sh)."""
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness import (ROOT, Client, ConnectionClosed, eventually, make_message,
                     running, sluice_fixture)

SENDER = "a@sender.example"


def certs(pki):
    return f"""
[Certificate mx]
CertificateFile = {pki}/server.pem
KeyFile = {pki}/server.key

[Certificate wild]
CertificateFile = {pki}/wild.pem
KeyFile = {pki}/wild.key

[Certificate ecdsa]
CertificateFile = {pki}/ecdsa.pem
KeyFile = {pki}/ecdsa.key
"""


def tls_conf(pki, **conn):
    c = {"AuthMechanism": "Tls", "TlsCertificateName": "mx"}
    c.update(conn)
    return dict(conn=c, raw_extra=certs(pki),
                transport={"TrustedCAFile": f"{pki}/trusted.pem",
                           "TLSReceiveDomainSecureList": "partner.test"})


tls = sluice_fixture("tls", lambda d, pki: tls_conf(pki))
secure = sluice_fixture(
    "secure", lambda d, pki: tls_conf(pki, DomainSecureEnabled="true"))


def client_ctx(pki=None, cert=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert is not None:
        ctx.load_cert_chain(f"{pki}/{cert}.pem", f"{pki}/{cert}.key")
    return ctx


def starttls(c, ctx=None, sni="mx.sluice.test"):
    c.cmd("STARTTLS").check(220, "2.0.0")
    c.sock = (ctx or client_ctx()).wrap_socket(c.sock, server_hostname=sni)
    return c.sock


def send_one(c, rcpt="user@localhost", sender=SENDER, subject="tls"):
    c.cmd(f"MAIL FROM:<{sender}>").check(250, "2.1.0")
    c.cmd(f"RCPT TO:<{rcpt}>").check(250, "2.1.5")
    c.cmd("DATA").check(354)
    c.send(make_message(subject).encode() + b".\r\n")
    return c.reply()


def test_ehlo_offers_starttls_and_handshake(tls):
    with Client(tls.port) as c:
        assert "STARTTLS" in c.ehlo().text
        sock = starttls(c)
        assert sock.version() in ("TLSv1.2", "TLSv1.3")
        r = c.ehlo()
        assert "STARTTLS" not in r.text  # RFC 3207: not offered again
        send_one(c, subject="overtls").check(250, "2.6.0")
    body = tls.bodies()[-1]
    assert re.search(rb"with ESMTPS\r\n\t\(version=TLSv1\.[23] cipher=", body)
    assert b"X-Sluice-Organization-AuthAs: Anonymous\r\n" in body
    assert b"X-Sluice-Organization-AuthMechanism: Tls\r\n" in body


def test_starttls_injection_drops_connection(tls):
    before = len(tls.messages())
    with Client(tls.port) as c:
        c.ehlo()
        c.send(b"STARTTLS\r\nMAIL FROM:<evil@x.example>\r\n")
        data = b""
        try:
            while True:
                c._fill(3)
                data += c.buf
                c.buf = b""
        except ConnectionClosed:
            pass
        assert b"220 2.0.0" not in data
    assert len(tls.messages()) == before


def test_state_reset_after_tls(tls):
    with Client(tls.port) as c:
        c.ehlo()
        starttls(c)
        c.cmd(f"MAIL FROM:<{SENDER}>").check(503, "5.5.1")
        c.ehlo()
        c.cmd("STARTTLS").check(503, "5.5.1")
        send_one(c).check(250, "2.6.0")


def test_tls_versions(tls):
    for flag, ok in (("-tls1_2", True), ("-tls1_3", True),
                     ("-tls1_1", False), ("-tls1", False)):
        args = ["openssl", "s_client", "-starttls", "smtp", "-connect",
                f"127.0.0.1:{tls.port}", flag]
        if not ok:
            args += ["-cipher", "DEFAULT@SECLEVEL=0"]
        p = subprocess.run(args, input=b"QUIT\r\n", capture_output=True,
                           timeout=20)
        out = p.stdout.decode(errors="replace")
        established = "Cipher is" in out and "Cipher is (NONE)" not in out
        assert established == ok, (flag, out[-400:])


def test_sni_and_ecdsa(tls, pki):
    for sni, want in (("a.sluice.test", "CN = wildcard"),
                      ("ecdsa.sluice.test", "CN = ecdsa.sluice.test"),
                      ("unknown.example", "CN = mx.sluice.test"),
                      ("a.b.sluice.test", "CN = mx.sluice.test")):
        p = subprocess.run(
            ["openssl", "s_client", "-starttls", "smtp", "-connect",
             f"127.0.0.1:{tls.port}", "-servername", sni],
            input=b"QUIT\r\n", capture_output=True, timeout=20)
        out = p.stdout.decode(errors="replace")
        subject = re.search(r"subject=(.*)", out).group(1)
        assert want.replace(" = ", "=") in subject.replace(" = ", "="), \
            (sni, subject)


def test_require_tls(pki, tmp_path):
    with running(tmp_path, **tls_conf(pki, RequireTLS="true")) as s:
        with Client(s.port) as c:
            c.ehlo()
            c.cmd(f"MAIL FROM:<{SENDER}>").check(
                530, "5.7.0", "Must issue a STARTTLS command first")
            starttls(c)
            c.ehlo()
            send_one(c).check(250, "2.6.0")
        # The seeds' manual check, with swaks: plain MAIL FROM is refused.
        p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port",
                            str(s.port), "--to", "user@localhost"],
                           capture_output=True, timeout=30)
        assert b"530 5.7.0" in p.stdout


def test_close_notify_during_bdat_ends_session(tls):
    before = len(tls.messages())
    c = Client(tls.port)
    c.ehlo()
    sock = starttls(c)
    c.ehlo()
    c.cmd(f"MAIL FROM:<{SENDER}>").check(250)
    c.cmd("RCPT TO:<user@localhost>").check(250)
    c.send(b"BDAT 100 LAST\r\nSubject: x\r\n\r\n")
    raw = sock.unwrap()  # close_notify, back to the bare TCP socket
    try:
        raw.sendall(b"y" * 80 + b"\r\nQUIT\r\n")
        raw.settimeout(3)
        data = raw.recv(4096)
    except OSError:
        data = b""
    raw.close()
    assert b"250" not in data
    time.sleep(0.3)
    assert len(tls.messages()) == before


def swaks(port, cert=None, pki=None, sender="someone@partner.test",
          tls=True):
    args = ["swaks", "--server", "127.0.0.1", "--port", str(port),
            "--from", sender, "--to", "user@localhost", "--tls-sni",
            "mx.sluice.test"]
    if tls:
        args.append("-tls")
    if cert is not None:
        args += ["--tls-cert", f"{pki}/{cert}.pem",
                 "--tls-key", f"{pki}/{cert}.key"]
    return subprocess.run(args, capture_output=True, timeout=30,
                          text=True).stdout


def test_domain_secure_accepted(secure, pki):
    out = swaks(secure.port, "partner", pki)
    assert "250 2.6.0" in out, out
    body = secure.bodies()[-1]
    assert b"X-Sluice-Organization-AuthAs: Partner\r\n" in body
    assert b"X-Sluice-Organization-AuthMechanism: DomainSecure\r\n" in body
    assert b"X-Sluice-Organization-AuthDomain: partner.test\r\n" in body


@pytest.mark.parametrize("cert,tls,reason", [
    ("partner-wrong", True, "does not name"),
    ("partner-expired", True, "expired"),
    ("partner-self", True, "self-signed"),
    ("partner-cn", True, "does not name"),
    (None, True, "no client certificate"),
    (None, False, "not encrypted"),
])
def test_domain_secure_refused(secure, pki, cert, tls, reason):
    before = len(secure.messages())
    out = swaks(secure.port, cert, pki, tls=tls)
    m = re.search(r"<~?\*+ +(451 4\.7\.1 .*)", out)
    assert m, out
    assert reason in m.group(1), m.group(1)
    assert len(secure.messages()) == before
    assert secure.wait_stderr(re.escape(reason))


def test_domain_secure_other_domains_unaffected(secure, pki):
    out = swaks(secure.port, None, pki, sender="x@elsewhere.example")
    assert "250 2.6.0" in out, out
    body = secure.bodies()[-1]
    assert b"X-Sluice-Organization-AuthMechanism: Tls\r\n" in body


def test_broken_certificate_refused_on_reload(pki, tmp_path):
    with running(tmp_path, **tls_conf(pki)) as s:
        bad = tmp_path / "bad.pem"
        bad.write_text("not a certificate\n")
        text = s.conf_text.replace(f"{pki}/wild.pem", str(bad))
        s.write_config(text)
        s.reload()
        assert s.wait_stderr("reload refused")
        with Client(s.port) as c:
            assert "STARTTLS" in c.ehlo().text
            starttls(c, sni="a.sluice.test")
            c.ehlo()


def test_scanners_find_no_weak_protocols_or_ciphers(tls):
    """sslscan and testssl.sh, as an auditor would run them; their verdict
    is printed into the test output."""
    p = subprocess.run(["sslscan", "--no-colour", "--starttls-smtp",
                        f"127.0.0.1:{tls.port}"],
                       capture_output=True, text=True, timeout=120)
    out = p.stdout
    print(out)
    for proto in ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"):
        assert re.search(rf"^{re.escape(proto)}\s+disabled", out, re.M), proto
    assert re.search(r"^TLSv1\.3\s+enabled", out, re.M)
    ciphers = re.findall(r"^(?:Preferred|Accepted)\s+(\S+)\s+\d+ bits\s+(\S+)",
                         out, re.M)
    assert ciphers
    for version, name in ciphers:
        assert not re.search(r"RC4|DES|NULL|EXPORT|MD5|CBC|anon", name), name
        assert version in ("TLSv1.2", "TLSv1.3"), (version, name)
    assert "renegotiation not supported" in out.lower() or \
        "secure session renegotiation supported" not in out.lower()

    p = subprocess.run(["testssl", "--quiet", "--color", "0", "-t", "smtp",
                        "-p", "-R", "-4", f"127.0.0.1:{tls.port}"],
                       capture_output=True, text=True, timeout=300)
    out = p.stdout
    print(out)
    for proto in ("SSLv2", "SSLv3", "TLS 1 ", "TLS 1.1"):
        assert re.search(rf"^ {re.escape(proto)}\s*not offered", out, re.M), \
            proto
    assert re.search(r"Client-Initiated Renegotiation\s+not vulnerable", out)


def test_postfix_sends_domain_secured(pki, tmp_path):
    """A real Postfix relays a partner's mail to sluiced with
    smtp_tls_security_level = encrypt and the partner's client
    certificate: the mail arrives Domain Secured."""
    with running(tmp_path / "sluice",
                 **tls_conf(pki, DomainSecureEnabled="true")) as s:
        # Postfix's daemons run as "postfix": they need a path they can
        # traverse, which pytest's private tmp_path is not.
        pf = Path(tempfile.mkdtemp(prefix="sluice-postfix-"))
        os.chmod(pf, 0o755)
        pport = s.port + 1 if s.port < 65000 else s.port - 1
        extra = "\n".join([
            "relayhost = [127.0.0.1]:%d" % s.port,
            "smtp_tls_security_level = encrypt",
            f"smtp_tls_cert_file = {pki}/partner.pem",
            f"smtp_tls_key_file = {pki}/partner.key",
            "smtp_tls_loglevel = 1",
        ])
        env = dict(os.environ, HOLD="0", POSTFIX_EXTRA=extra)
        script = str(ROOT / "bench/postfix-instance.sh")
        subprocess.run([script, "start", str(pf), str(pport), "localhost"],
                       env=env, check=True, timeout=60)
        try:
            subprocess.run(["/usr/sbin/smtp-source", "-m", "1", "-f",
                            "someone@partner.test", "-t", "user@localhost",
                            f"127.0.0.1:{pport}"], check=True, timeout=30)
            eventually(s.messages, 20, step=0.2)
        finally:
            subprocess.run([script, "stop", str(pf)], timeout=60)
            log = (pf / "maillog").read_text() if (pf / "maillog").exists() \
                else ""
            shutil.rmtree(pf, ignore_errors=True)
        msgs = s.messages()
        assert len(msgs) == 1, log[-2000:]
        body = msgs[0]["body"]
        assert b"with ESMTPS" in body
        assert b"X-Sluice-Organization-AuthAs: Partner\r\n" in body
        assert b"X-Sluice-Organization-AuthDomain: partner.test\r\n" in body


def test_domain_secure_revoked_with_crl(pki, tmp_path):
    conf = tls_conf(pki, DomainSecureEnabled="true")
    conf["transport"]["CRLFile"] = f"{pki}/partner-ca.crl"
    with running(tmp_path, **conf) as s:
        out = swaks(s.port, "partner-revoked", pki)
        assert re.search(r"451 4\.7\.1 .*revoked", out), out
        # A good certificate of the same CA passes the CRL check.
        out = swaks(s.port, "partner", pki)
        assert "250 2.6.0" in out, out
    # Without a CRL file, revocation is not checked (docs/tls.md).
    with running(tmp_path / "nocrl", **tls_conf(pki, DomainSecureEnabled="true")) as s:
        assert "250 2.6.0" in swaks(s.port, "partner-revoked", pki)


def test_certificate_file_change_reloads(pki, tmp_path):
    """A renewed certificate on disk is used without a signal."""
    import shutil as sh
    cert, key = tmp_path / "mx.pem", tmp_path / "mx.key"
    sh.copy(f"{pki}/server.pem", cert)
    sh.copy(f"{pki}/server.key", key)
    conf = tls_conf(pki)
    conf["raw_extra"] = conf["raw_extra"].replace(
        f"{pki}/server.pem", str(cert)).replace(f"{pki}/server.key", str(key))
    with running(tmp_path / "d", **conf) as s:
        def served():
            p = subprocess.run(
                ["openssl", "s_client", "-starttls", "smtp", "-connect",
                 f"127.0.0.1:{s.port}"],
                input=b"QUIT\r\n", capture_output=True, timeout=20)
            return re.search(r"subject=(.*)", p.stdout.decode()).group(1)
        assert "mx.sluice.test" in served()
        # Replace both files (renewal), the key first as certbot does.
        sh.copy(f"{pki}/ecdsa.key", tmp_path / "new.key")
        sh.copy(f"{pki}/ecdsa.pem", tmp_path / "new.pem")
        os.replace(tmp_path / "new.key", key)
        os.replace(tmp_path / "new.pem", cert)
        assert s.wait_stderr("certificate files changed", timeout=15)
        eventually(lambda: "ecdsa.sluice.test" in served(), 15, step=0.5)
        assert "ecdsa.sluice.test" in served()
