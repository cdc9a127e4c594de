"""Exim 4 (Debian's exim4-daemon-light, unpacked: peers/exim.py) as a real
peer, both ways (issue 10).

Exim -> Sluice: plaintext with DATA, plaintext with BDAT (CHUNKING, which
Exim pipelines with the data and QUIT and then half-closes), STARTTLS
with BDAT, and Domain Security with Exim presenting the partner's client
certificate.  Sluice -> Exim: plaintext and STARTTLS through a smart-host
send connector.  Every message arrives exactly once: counted at the
receiver, after a forced queue run on the Exim side that would resend
anything deferred, and Exim's log shows no deferral and no
"non-properly terminated" TLS end.
"""
import pytest

from harness import free_port, running, split_headers
from peers.exim import Exim
from test_delivery import RELAY, events, send, smarthost, wait_for

PARTNER = "partner.test"


def tls_conn(pki, **extra):
    c = {"AuthMechanism": "Tls", "TlsCertificateName": "mx"}
    c.update(extra)
    return c


def certs(pki):
    return (f"\n[Certificate mx]\nCertificateFile = {pki}/server.pem\n"
            f"KeyFile = {pki}/server.key\n")


def copies(s, subject):
    return [m for m in s.messages()
            if f"Subject: {subject}\r\n".encode() in m["body"]]


def assert_clean_exim_log(exim, what):
    log = exim.log_text()
    assert " == " not in log, f"{what}: Exim deferred:\n{log[-2000:]}"
    assert "non-properly terminated" not in log, \
        f"{what}: TLS not closed properly:\n{log[-2000:]}"
    assert "protocol synchronization" not in log, log[-2000:]


def exim_to_sluice(s, exim, subject, sender="someone@exim.test"):
    exim.send(sender, "user@example.test", subject)
    # Anything deferred would be sent again by a forced queue run.
    exim.run_queue()
    assert exim.queue_count() == 0, exim.log_text()[-2000:]
    got = copies(s, subject)
    assert len(got) == 1, f"{subject}: {len(got)} copies at Sluice"
    assert_clean_exim_log(exim, subject)
    return got[0]


@pytest.mark.parametrize("chunking", [False, True], ids=["data", "bdat"])
def test_exim_to_sluice_plaintext(tmp_path, chunking):
    with running(tmp_path) as s, \
            Exim(route_to=("127.0.0.1", s.port), avoid_tls=True,
                 chunking=chunking) as exim:
        exim_to_sluice(s, exim, f"exim plain {chunking}")
        log = exim.log_text()
        assert "=> user@example.test" in log and "Completed" in log
        if chunking:
            assert "K" in [f for ln in log.splitlines() if " => " in ln
                           for f in ln.split()], log[-1000:]


def test_exim_to_sluice_tls_bdat(tmp_path, pki):
    with running(tmp_path, conn=tls_conn(pki), raw_extra=certs(pki)) as s, \
            Exim(route_to=("127.0.0.1", s.port), require_tls=True,
                 ca_file=f"{pki}/ca.pem") as exim:
        m = exim_to_sluice(s, exim, "exim tls")
        log = exim.log_text()
        assert " X=TLS1.3" in log or " X=TLS1.2" in log, log[-1000:]
        ours = [v for k, v in split_headers(m["body"]) if k == "Received"]
        assert b"ESMTPS" in ours[0], ours


def test_exim_to_sluice_domain_security(tmp_path, pki):
    transport = {"TrustedCAFile": f"{pki}/trusted.pem",
                 "TLSReceiveDomainSecureList": PARTNER}
    with running(tmp_path, conn=tls_conn(pki, DomainSecureEnabled="true"),
                 transport=transport, raw_extra=certs(pki)) as s, \
            Exim(route_to=("127.0.0.1", s.port), require_tls=True,
                 ca_file=f"{pki}/ca.pem", hostname="mx.partner.test",
                 client_cert=(f"{pki}/partner.pem",
                              f"{pki}/partner.key")) as exim:
        m = exim_to_sluice(s, exim, "exim partner", sender=f"a@{PARTNER}")
        h = dict(split_headers(m["body"]))
        assert h["X-Sluice-Organization-AuthAs"] == b"Partner"
        assert h["X-Sluice-Organization-AuthMechanism"] == b"DomainSecure"
        assert h["X-Sluice-Organization-AuthDomain"] == PARTNER.encode()


def wait_sent(s, n):
    return wait_for(lambda: len(events(s, "SEND")) >= n, timeout=30)


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_sluice_to_exim(tmp_path, pki, tls):
    port = free_port()
    server_cert = (f"{pki}/server.pem", f"{pki}/server.key") if tls else None
    extra = "RequireTLS = true\nTlsAuthLevel = EncryptionOnly" if tls else ""
    with Exim(port, server_cert=server_cert) as exim:
        exim.start()
        with running(tmp_path, conn=RELAY,
                     raw_extra=smarthost(port, extra=extra)) as s:
            for i in range(3):
                send(s, [f"bob{i}@remote.test"], f"to exim {tls} {i}")
            assert wait_sent(s, 3), events(s)
            for i in range(3):
                got = exim.wait_received(f"to exim {tls} {i}")
                assert len(got) == 1, got
            sends = events(s, "SEND")
            assert len(sends) == 3
            if tls:
                assert all("encrypted" in e["tls"] for e in sends), sends
                assert " X=TLS1.3" in exim.log_text() or \
                    " X=TLS1.2" in exim.log_text()
        # Sluice has stopped: nothing more may arrive (no duplicates).
        for i in range(3):
            assert len(exim.received(f"to exim {tls} {i}")) == 1
        log = exim.log_text()
        assert "non-properly terminated" not in log, log[-2000:]
        assert "SMTP protocol" not in log, log[-2000:]
        assert "unexpected disconnection" not in log, log[-2000:]
