"""DANE into Sluice (issue 16): Postfix 3.7 with smtp_tls_security_level =
dane delivers to Sluice, whose TLSA record is what `sluicectl tlsa`
prints for its certificate, published in a zone signed with ldns-signzone.
Postfix validates DNSSEC through its system resolver: a validating unbound
on 127.x.y.z:53 (peers/unbound.py ValidatingUnbound) in front of the
authoritative test server, seen by this Postfix instance alone (a
resolv.conf bind-mounted in its own mount namespace).  Postfix must call
the session "Verified" when the record matches, and must not deliver at
all (no plaintext fallback) when the published record is another key's."""
import re
import smtplib
import subprocess

import pytest

from harness import SLUICECTL, Sluice, make_message
from peers.postfix import Postfix
from peers.unbound import Unbound, ValidatingUnbound, tlsa_rdata
from harness import free_port

RCPT = "user@example.test"


def sluice_with_tls(workdir, pki):
    return Sluice(workdir,
                  conn={"AuthMechanism": "Tls", "TlsCertificateName": "mx",
                        "Fqdn": "mx.sluice.test"},
                  raw_extra=f"""
[Certificate mx]
CertificateFile = {pki}/server.pem
KeyFile = {pki}/server.key
""")


def published_tlsa(s):
    """`sluicectl tlsa mx PORT`: the line for mx.sluice.test."""
    p = subprocess.run([str(SLUICECTL), "-c", str(s.conf_path), "tlsa", "mx",
                        str(s.port)], capture_output=True, text=True,
                       timeout=30, check=True)
    m = re.search(rf"^(_{s.port}\._tcp\.mx\.sluice\.test\. IN TLSA "
                  r"3 1 1 [0-9a-f]{64})$", p.stdout, re.M)
    assert m, p.stdout
    return m.group(1)


def postfix_dane(resolv_conf, sluice_port):
    return Postfix(free_port(), resolv_conf=resolv_conf,
                   transport={"example.test":
                              f"smtp:[mx.sluice.test]:{sluice_port}"},
                   main={"disable_dns_lookups": "no",
                         "smtp_dns_support_level": "dnssec",
                         "smtp_tls_security_level": "dane",
                         "smtp_tls_loglevel": "1",
                         "maximal_backoff_time": "3600s",
                         "minimal_backoff_time": "3600s"})


def send_through(pf, subject):
    with smtplib.SMTP(pf.host, pf.port, timeout=10) as c:
        c.sendmail("a@sender.example", [RCPT], make_message(subject))


@pytest.mark.timeout_s(120)
def test_postfix_dane_verifies_sluice(tmp_path, pki):
    s = sluice_with_tls(tmp_path / "s", pki)
    record = published_tlsa(s)
    # What sluicectl prints is what the key says (computed here apart).
    assert record.endswith(tlsa_rdata(pki / "server.pem"))
    with Unbound(signed={"sluice.test": ["mx.sluice.test. A 127.0.0.1",
                                         record]}) as auth, \
            ValidatingUnbound(auth) as resolver:
        s.start()
        try:
            with postfix_dane(resolver.resolv_conf_path, s.port) as pf:
                send_through(pf, "dane-verified")
                pf.wait_log(r"Verified TLS connection established to "
                            rf"mx\.sluice\.test\[127\.0\.0\.1\]:{s.port}",
                            timeout=60)
                pf.wait_log(r"status=sent", timeout=30)
            subjects = [m["body"] for m in s.messages()]
            assert any(b"dane-verified" in b for b in subjects)
        finally:
            s.stop()


@pytest.mark.timeout_s(120)
def test_postfix_dane_refuses_a_key_the_record_does_not_name(tmp_path, pki):
    s = sluice_with_tls(tmp_path / "s", pki)
    port = s.port
    wrong = f"_{port}._tcp.mx.sluice.test. IN TLSA " + \
        tlsa_rdata(pki / "wrong.pem")
    with Unbound(signed={"sluice.test": ["mx.sluice.test. A 127.0.0.1",
                                         wrong]}) as auth, \
            ValidatingUnbound(auth) as resolver:
        s.start()
        try:
            with postfix_dane(resolver.resolv_conf_path, port) as pf:
                send_through(pf, "dane-mismatch")
                pf.wait_log(r"status=deferred .*(certificate|TLSA|"
                            r"verification)", timeout=60)
                assert "Verified TLS" not in pf.log_text()
            assert not any(b"dane-mismatch" in m["body"]
                           for m in s.messages())
            # and never in plaintext: no MAIL outside TLS in Sluice's log
            log = "".join(p.read_text(errors="replace")
                          for p in (s.log_dir).rglob("*") if p.is_file())
            assert "dane-mismatch" not in log
        finally:
            s.stop()
