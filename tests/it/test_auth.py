"""SMTP AUTH (RFC 4954) on receive connectors: BasicAuth offers PLAIN and
LOGIN checked against a users file of crypt(3) hashes; BasicAuthRequireTLS
offers it only inside TLS; authenticated users (ExchangeUsers) may relay;
failures are rate-limited per client address and logged."""
import base64
import warnings
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # Debian 12 python3.11 has it; hashes for the users file
import re
import select
import subprocess

import pytest

from harness import Client, eventually, ipv6_available, running, sluice_fixture
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


basic = sluice_fixture(
    "basic", lambda d, pki: auth_conf(d, pki, "Tls, BasicAuth"))


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


# --- strict responses (issue 10.11) -----------------------------------------


def b64(raw):
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize("raw,code,enh,src", [
    (b"\0alice\0s3cret pass\0junk", 501, "5.5.2", 50),
    (b"\0alice\0s3cret pass\0", 501, "5.5.2", 51),
    (b"\0\0s3cret pass", 501, "5.5.2", 52),
    (b"\0alice\0", 501, "5.5.2", 53),
    (b"\0alice", 501, "5.5.2", 54),
    (b"bob\0alice\0s3cret pass", 535, "5.7.8", 55),
    (b"alice\0alice\0s3cret pass", 235, "2.7.0", 56),
], ids=["after-password", "trailing-nul", "no-user", "no-password",
        "one-nul", "other-authzid", "own-authzid"])
def test_auth_plain_must_be_well_formed(basic, raw, code, enh, src):
    """RFC 4616: [authzid] NUL authcid NUL passwd, nothing more; bytes
    after the password and a NUL were accepted before."""
    with Client(basic.port, source=f"127.0.0.{src}") as c:
        c.ehlo()
        c.cmd(f"AUTH PLAIN {b64(raw)}").check(code, enh)


def test_auth_login_with_nul_is_malformed(basic):
    with Client(basic.port, source="127.0.0.41") as c:
        c.ehlo()
        c.cmd("AUTH LOGIN").check(334)
        c.cmd(b64(b"alice\0x")).check(501, "5.5.2")
        c.cmd("AUTH LOGIN").check(334)
        c.cmd(b64(b"alice")).check(334)
        c.cmd(b64(PASSWORD.encode() + b"\0x")).check(501, "5.5.2")


# --- credentials never logged (issue 18.6) ------------------------------------


@pytest.mark.parametrize("sep", [b"\t", b"\x0b", b"  \t"])
def test_auth_with_other_separator_is_not_logged(basic, sep):
    secret = plain(USER, PASSWORD)
    with Client(basic.port, source="127.0.0.42") as c:
        me = f"127.0.0.42:{c.local_port}"
        c.ehlo()
        r = c.cmd(b"AUTH" + sep + b"PLAIN " + secret.encode())
        assert r.code in (500, 504), r  # bad separator; "\tPLAIN" mechanism
        assert secret[:8] not in r.text
        c.quit()

    def session_rows():
        rows = [x for x in basic.protolog()[1] if len(x) > 7 and x[5] == me]
        return rows if any(x[6] == "-" for x in rows) else None

    rows = eventually(session_rows, 5, "the session's end in the protocol log")
    auth = [x for x in rows if x[6] == "<" and x[7].upper().startswith("AUTH")]
    assert len(auth) == 1 and secret[:4] not in auth[0][7], auth
    # "+ ***", written spreadsheet-safe (a leading "'": operations.md)
    assert auth[0][8] == "'+ ***", auth
    log = "".join(open(p).read() for p in basic.protolog_files())
    assert secret not in log and secret[:12] not in log


# --- counting, timing and the worker threads (issues 10.8-10.10) ------------


def write_users(path, rounds, names=("alice", "bob", "carol")):
    """A users file whose hashes cost `rounds` SHA-512 rounds each (1M
    rounds are about 0.6 s of CPU here)."""
    lines = ["# test users"]
    for n in names:
        pw = PASSWORD if n == USER else "other"
        lines.append(f"{n}:" + crypt.crypt(
            pw, crypt.mksalt(crypt.METHOD_SHA512, rounds=rounds)))
    path.write_text("\n".join(lines) + "\n")


# its users file (auth_conf's) is rewritten by each test
slow = sluice_fixture(
    "slow", lambda d, pki: auth_conf(d, pki, "Tls, BasicAuth"))


def cpu_ticks(s):
    """utime + stime of the daemon, all threads, in clock ticks."""
    f = open(f"/proc/{s.pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


def pending_replies(clients):
    """How many of the clients have a reply waiting (not blocking)."""
    ready, _, _ = select.select([c.sock for c in clients], [], [], 0)
    return len(ready)


def test_auth_attempts_counted_when_they_start(slow):
    """15 parallel sessions from one address each open an AUTH before any
    password is checked: only 5 get to send one (issue 10.8)."""
    write_users(slow.dir / "users", 5000)
    clients = [Client(slow.port, source="127.0.0.60") for _ in range(15)]
    try:
        for c in clients:
            c.ehlo()
        got = [c.cmd("AUTH PLAIN").code for c in clients]
        assert got.count(334) == 5 and got.count(454) == 10, got
        for c, code in zip(clients, got):
            if code == 334:
                c.cmd(plain(USER, "wrong")).check(535, "5.7.8")
    finally:
        for c in clients:
            c.close()
    with Client(slow.port, source="127.0.0.60") as c:
        c.ehlo()
        c.cmd(f"AUTH PLAIN {plain(USER, PASSWORD)}").check(454, "4.7.0")
    assert len(re.findall(r"127\.0\.0\.60:\d+: authentication failed",
                          slow.stderr())) == 5


def test_auth_success_is_not_counted(slow):
    write_users(slow.dir / "users", 5000)
    for _ in range(8):
        with Client(slow.port, source="127.0.0.61") as c:
            c.ehlo()
            c.cmd(f"AUTH PLAIN {plain(USER, PASSWORD)}").check(235)


def test_unknown_user_costs_a_real_hash(slow):
    """An unknown user is hashed with the file's own setting (issue
    10.9): the daemon spends as much CPU on wrong passwords for unknown
    users as for a known one.  CPU ticks from /proc, not wall time."""
    write_users(slow.dir / "users", 400000)
    used = {}
    for who, src in (("alice", "127.0.0.62"), ("nobody", "127.0.0.63")):
        before = cpu_ticks(slow)
        for _ in range(4):
            with Client(slow.port, source=src, timeout=30) as c:
                c.ehlo()
                c.cmd(f"AUTH PLAIN {plain(who, 'wrong')}").check(535)
        used[who] = cpu_ticks(slow) - before
    assert used["alice"] >= 20, used  # four slow hashes were measured
    assert used["nobody"] * 2 >= used["alice"], used


def test_password_checks_do_not_stop_the_loop(slow):
    """Eight slow checks in flight (each ~0.6 s of CPU) from eight
    addresses, and a NOOP client on the side: its ten NOOPs are answered
    while the checks still run (issue 10.10; a count, not a time)."""
    write_users(slow.dir / "users", 1000000)
    side = Client(slow.port, source="127.0.0.64", timeout=30)
    side.ehlo()
    auths = [Client(slow.port, source=f"127.0.0.{70 + i}", timeout=30)
             for i in range(8)]
    try:
        for c in auths:
            c.ehlo()
        for c in auths:
            c.send(f"AUTH PLAIN {plain(USER, 'wrong')}\r\n")
        for _ in range(10):
            side.cmd("NOOP").check(250)
        assert pending_replies(auths) <= 2, "the checks blocked the loop"
        for c in auths:
            c.reply().check(535, "5.7.8")
    finally:
        side.close()
        for c in auths:
            c.close()


def test_password_check_queue_is_bounded(slow):
    """More checks than the pool's queue (32) at once: the excess gets
    454 4.7.0 at once instead of waiting, the rest their answer, and the
    server takes AUTH again afterwards."""
    write_users(slow.dir / "users", 200000)
    clients = [Client(slow.port, source=f"127.0.1.{i}", timeout=60)
               for i in range(1, 41)]
    try:
        for c in clients:
            c.ehlo()
        for c in clients:
            c.send(f"AUTH PLAIN {plain(USER, 'wrong')}\r\n")
        replies = [c.reply() for c in clients]
    finally:
        for c in clients:
            c.close()
    busy = [r for r in replies if r.code == 454]
    assert all(r.enhanced == "4.7.0" for r in busy), busy
    assert 1 <= len(busy) <= 8, [r.code for r in replies]
    assert all(r.code == 535 for r in replies if r.code != 454), replies
    write_users(slow.dir / "users", 5000)
    with Client(slow.port, source="127.0.1.100") as c:
        c.ehlo()
        c.cmd(f"AUTH PLAIN {plain(USER, PASSWORD)}").check(235)


def test_client_gone_during_password_check(slow):
    """Sessions that close while their check runs are not touched by the
    result (the sanitizers would say so when the daemon stops)."""
    write_users(slow.dir / "users", 1000000)
    for i in range(4):
        c = Client(slow.port, source=f"127.0.0.{90 + i}")
        c.ehlo()
        c.send(f"AUTH PLAIN {plain(USER, 'wrong')}\r\n")
        c.close()
    write_users(slow.dir / "users", 5000)
    with Client(slow.port, source="127.0.0.95", timeout=30) as c:
        c.ehlo()
        c.cmd(f"AUTH PLAIN {plain(USER, PASSWORD)}").check(235)
        c.cmd("NOOP").check(250)


def test_auth_rate_counted_per_ipv6_address(pki, tmp_path):
    if not ipv6_available():
        pytest.skip("no IPv6 loopback")
    kw = auth_conf(tmp_path, pki, "Tls, BasicAuth")
    with running(tmp_path, ipv6=True, **kw) as s:
        for _ in range(5):
            with Client(s.port, host="::1") as c:
                c.ehlo()
                c.cmd(f"AUTH PLAIN {plain(USER, 'wrong')}").check(535)
        with Client(s.port, host="::1") as c:
            c.ehlo()
            c.cmd(f"AUTH PLAIN {plain(USER, PASSWORD)}").check(454, "4.7.0")
