"""SMTP AUTH (RFC 4954) on receive connectors: BasicAuth offers PLAIN and
LOGIN checked against a users file of crypt(3) hashes; BasicAuthRequireTLS
offers it only inside TLS; authenticated users (ExchangeUsers) may relay;
failures are rate-limited per client address and logged."""
import base64
import warnings
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # Debian 12 python3.11 has it; hashes for the users file
import subprocess

import pytest

from harness import Client, running
from test_tls import certs, send_one, starttls

USER, PASSWORD = "alice", "s3cret pass"


def auth_conf(tmp, pki, mech):
    users = tmp / "users"
    users.write_text("# test users\n"
                     f"{USER}:{crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_SHA512))}\n"
                     f"bob:{crypt.crypt('other', crypt.mksalt(crypt.METHOD_SHA512))}\n")
    return dict(conn={"AuthMechanism": mech, "TlsCertificateName": "mx",
                      "PermissionGroups": "AnonymousUsers, ExchangeUsers"},
                raw_extra=certs(pki),
                transport={"UsersFile": str(users),
                           "TrustedCAFile": f"{pki}/trusted.pem"})


def plain(user, password):
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


@pytest.fixture(scope="module")
def basic(pki, tmp_path_factory):
    d = tmp_path_factory.mktemp("auth")
    with running(d, **auth_conf(d, pki, "Tls, BasicAuth")) as s:
        yield s


def test_auth_plain_and_relay(basic):
    with Client(basic.port) as c:
        assert "AUTH PLAIN LOGIN" in c.ehlo().text
        c.cmd(f"MAIL FROM:<{USER}@localhost>").check(250)
        c.cmd("RCPT TO:<x@remote.example>").check(550, "5.7.54")
        c.cmd("RSET").check(250)
        c.cmd(f"AUTH PLAIN {plain(USER, PASSWORD)}").check(235, "2.7.0")
        send_one(c, rcpt="x@remote.example").check(250, "2.6.0")
    body = basic.bodies()[-1]
    assert b"with ESMTPA" in body
    assert b"X-Sluice-Organization-AuthAs: Internal\r\n" in body
    assert b"X-Sluice-Organization-AuthMechanism: BasicAuth\r\n" in body
    log = "".join(open(p).read() for p in basic.protolog_files())
    assert PASSWORD not in log
    assert plain(USER, PASSWORD) not in log


def test_auth_login_and_swaks(basic):
    with Client(basic.port) as c:
        c.ehlo()
        c.cmd("AUTH LOGIN").check(334)
        c.cmd(base64.b64encode(USER.encode()).decode()).check(334)
        c.cmd(base64.b64encode(PASSWORD.encode()).decode()).check(235)
    p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port",
                        str(basic.port), "--to", "x@remote.example",
                        "--auth", "PLAIN", "--auth-user", USER,
                        "--auth-password", PASSWORD],
                       capture_output=True, text=True, timeout=30)
    assert "235 2.7.0" in p.stdout and "250 2.6.0" in p.stdout, p.stdout


def test_auth_failures(basic):
    with Client(basic.port, source="127.0.0.9") as c:
        c.ehlo()
        c.cmd(f"AUTH PLAIN {plain(USER, 'wrong')}").check(535, "5.7.8")
        c.cmd(f"AUTH PLAIN {plain('nobody', 'x')}").check(535, "5.7.8")
        c.cmd("AUTH PLAIN").check(334)
        c.cmd("*").check(501)
        c.cmd("AUTH CRAM-MD5").check(504, "5.5.4")
        c.cmd("AUTH PLAIN !!!").check(501, "5.5.2")
    assert basic.wait_stderr(r"authentication failed for \"alice\"")


def test_auth_failures_rate_limited(basic):
    with Client(basic.port, source="127.0.0.10") as c:
        c.ehlo()
        for _ in range(5):
            c.cmd(f"AUTH PLAIN {plain(USER, 'wrong')}").check(535)
    with Client(basic.port, source="127.0.0.10") as c:
        c.ehlo()
        c.cmd(f"AUTH PLAIN {plain(USER, PASSWORD)}").check(454, "4.7.0")
    with Client(basic.port, source="127.0.0.11") as c:
        c.ehlo()
        c.cmd(f"AUTH PLAIN {plain(USER, PASSWORD)}").check(235)


def test_basic_auth_require_tls(pki, tmp_path):
    with running(tmp_path, **auth_conf(tmp_path, pki,
                                       "Tls, BasicAuth, BasicAuthRequireTLS")) as s:
        with Client(s.port) as c:
            r = c.ehlo()
            assert "AUTH" not in r.text and "STARTTLS" in r.text
            c.cmd(f"AUTH PLAIN {plain(USER, PASSWORD)}").check(538, "5.7.11")
            starttls(c)
            assert "AUTH PLAIN LOGIN" in c.ehlo().text
            c.cmd(f"AUTH PLAIN {plain(USER, PASSWORD)}").check(235)
            send_one(c, rcpt="x@remote.example").check(250)
        assert b"with ESMTPSA" in s.bodies()[-1]
