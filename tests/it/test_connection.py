"""How a connection ends and what the I/O layer does with what a client
sends at its edges (issue 10 items 12, 13 and 17): a half-closed client
still gets every reply it is owed, TLS sessions end with close_notify and
can then be resumed, and a TLS handshake on a STARTTLS port is named."""
import contextlib
import re
import socket
import ssl
import subprocess

import pytest

from harness import (eventually, make_message, queue_id_of, running,
                     sluice_fixture)

SENDER = "a@sender.example"


def certs(pki):
    return (f"\n[Certificate mx]\nCertificateFile = {pki}/server.pem\n"
            f"KeyFile = {pki}/server.key\n")


tls = sluice_fixture(
    "tls", lambda d, pki: {"raw_extra": certs(pki)},
    conn={"AuthMechanism": "Tls", "TlsCertificateName": "mx"})


def tls_ctx(**kw):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # Python sets this by default; without it a TCP close with no
    # close_notify is an error (SSLEOFError), as for OpenSSL 3 itself.
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def read_to_eof(sock, timeout=10):
    data = b""
    sock.settimeout(timeout)
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def received_rows(s, qid):
    _, rows = s.tracklog()
    return [r for r in rows if "RECEIVE" in r and qid in r]


def wait_received(s, qid, timeout=5):
    return eventually(lambda: received_rows(s, qid), timeout)


# --- half-close (10.12) -------------------------------------------------------


@pytest.mark.parametrize("mode", ["data", "bdat"])
def test_half_close_after_pipelined_quit(tls, mode):
    # Exim's way: the whole transaction, the end of the message and QUIT
    # in one go, then FIN.  Every reply must still come, and the message
    # be recorded once.  Before, the FIN ended the session: no 250, no
    # RECEIVE row, and the sender retried (every message arrived twice).
    body = make_message(f"half-close-{mode}").encode()
    with tls.client() as c:
        c.ehlo()
        if mode == "data":
            c.cmd(f"MAIL FROM:<{SENDER}>").check(250)
            c.cmd("RCPT TO:<user@localhost>").check(250)
            c.cmd("DATA").check(354)
            c.send(body + b".\r\nQUIT\r\n")
            n = 2
        else:
            c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<user@localhost>\r\n"
                   f"BDAT {len(body)} LAST\r\n".encode() + body +
                   b"QUIT\r\n")
            n = 4
        c.sock.shutdown(socket.SHUT_WR)
        replies = c.replies(n)
        replies[-2].check(250, "2.6.0")
        replies[-1].check(221, "2.0.0")
        assert c.closed()
    qid = queue_id_of(replies[-2])
    assert [m["queue_id"] for m in tls.messages()].count(qid) == 1
    assert len(wait_received(tls, qid)) == 1


def test_half_close_without_quit(tls):
    # A FIN right after the end of data: the 250 still goes out, then the
    # connection closes.
    with tls.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250)
        c.cmd("RCPT TO:<user@localhost>").check(250)
        c.cmd("DATA").check(354)
        c.send(make_message("half-close-noquit").encode() + b".\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        r = c.reply().check(250, "2.6.0")
        assert c.closed()
    assert len(wait_received(tls, queue_id_of(r))) == 1


def test_half_close_mid_message_stores_nothing(tls):
    with tls.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250)
        c.cmd("RCPT TO:<user@localhost>").check(250)
        c.cmd("DATA").check(354)
        c.send(b"Subject: cut-short\r\n\r\nno end\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        assert c.closed()
    assert [m for m in tls.messages() if b"cut-short" in m["body"]] == []


class TlsPipe:
    """A TLS client over a raw socket with memory BIOs, so that the test
    decides when close_notify and the FIN are sent."""

    def __init__(self, sock):
        self.sock = sock
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = tls_ctx().wrap_bio(self.inc, self.out)
        self.plain = b""
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._pump()
        self._flush()

    def _flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def _pump(self):
        self._flush()
        data = self.sock.recv(65536)
        if not data:
            self.inc.write_eof()
        else:
            self.inc.write(data)

    def send(self, data):
        self.obj.write(data)
        self._flush()

    def close_notify(self):
        with contextlib.suppress(ssl.SSLWantReadError):
            self.obj.unwrap()
        self._flush()

    def read_until(self, needle, timeout=10):
        """Plaintext until needle appears; also says whether the server's
        close_notify came."""
        self.sock.settimeout(timeout)
        while needle not in self.plain:
            try:
                self.plain += self.obj.read(65536)
                continue
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:
                break
            self._pump()
        return self.plain


def test_half_close_inside_tls(tls):
    # Inside TLS the client's end is close_notify (and then its FIN).
    body = make_message("half-close-tls").encode()
    with tls.client() as c:
        c.ehlo()
        c.cmd("STARTTLS").check(220)
        t = TlsPipe(c.sock)
        t.send(b"EHLO client.example\r\n")
        t.read_until(b"250 ")
        t.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<user@localhost>\r\n"
               f"BDAT {len(body)} LAST\r\n".encode() + body + b"QUIT\r\n")
        t.close_notify()
        c.sock.shutdown(socket.SHUT_WR)
        out = t.read_until(b"221 ")
    assert b"250 2.6.0" in out and b"221 2.0.0" in out, out
    qid = out.split(b"250 2.6.0 <")[1].split(b">")[0].decode()
    assert [m["queue_id"] for m in tls.messages()].count(qid) == 1
    assert len(wait_received(tls, qid)) == 1


# --- close_notify and resumption (10.13) ------------------------------------------


def test_quit_inside_tls_ends_with_close_notify(tls):
    with tls.client() as c:
        c.ehlo()
        c.cmd("STARTTLS").check(220)
        c.sock = tls_ctx().wrap_socket(c.sock)
        c.ehlo()
        c.cmd("QUIT").check(221)
        # A clean TLS end reads as EOF; a bare TCP close is an error
        # ("unexpected eof") for OpenSSL 3.
        assert c.sock.recv(100) == b""


def test_timeout_inside_tls_ends_with_close_notify(pki, tmp_path):
    with running(tmp_path, conn={"AuthMechanism": "Tls",
                                 "TlsCertificateName": "mx",
                                 "ConnectionInactivityTimeout": "2s"},
                 raw_extra=certs(pki)) as s, s.client() as c:
        c.ehlo()
        c.cmd("STARTTLS").check(220)
        c.sock = tls_ctx().wrap_socket(c.sock)
        c.ehlo()
        c.reply(timeout=10).check(421, "4.4.2")
        assert c.sock.recv(100) == b""


def s_client(port, *args, stdin=b"QUIT\r\n"):
    return subprocess.run(
        ["openssl", "s_client", "-starttls", "smtp", "-connect",
         f"127.0.0.1:{port}", "-tls1_2", "-no_ticket", "-ign_eof", *args],
        input=stdin, capture_output=True, timeout=20)


def test_tls12_session_id_resumption(tls, tmp_path):
    # docs/tls.md: TLS 1.2 sessions resume by session ID.  OpenSSL keeps a
    # session in the server's cache only if the connection ended with
    # close_notify; before, every session was dropped.
    sess = tmp_path / "sess.pem"
    first = s_client(tls.port, "-sess_out", str(sess))
    assert b"221 2.0.0" in first.stdout, first.stdout[-500:]
    assert b"New, TLSv1.2" in first.stdout
    second = s_client(tls.port, "-sess_in", str(sess))
    assert b"221 2.0.0" in second.stdout
    assert b"Reused, TLSv1.2" in second.stdout, second.stdout[-800:]


# --- implicit TLS on a STARTTLS port (10.17) --------------------------------------


def test_implicit_tls_on_starttls_port_is_named(tls):
    raw = socket.create_connection(("127.0.0.1", tls.port), timeout=5)
    with raw:
        raw.recv(512)  # the greeting, unread by a TLS client
        with pytest.raises(ssl.SSLError):
            tls_ctx().wrap_socket(raw)
    with tls.client() as c:
        c.send(b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03" + b"\x00" * 30)
        r = c.reply()
        r.check(554, "5.5.0", "TLS handshake received")
        assert c.closed()

    def named():
        _, rows = tls.protolog()
        return rows if sum(
            "TLS handshake received where a command was expected" in
            ",".join(r) for r in rows) >= 2 else None

    rows = eventually(named, 5, "a protocol log line naming the handshake")
    assert "implicit TLS on a STARTTLS port" in tls.stderr()
    assert "Bare CR or LF" not in ",".join(",".join(r) for r in rows)


# --- FIN, not RST ------------------------------------------------------------------


def test_refused_bdat_chunk_ends_with_fin_not_reset(tmp_path):
    # An oversized BDAT chunk is refused (552 5.3.4) and the connection
    # closed while the client is still sending it.  Closing with unread
    # input makes the kernel send RST, and many TCP stacks then throw away
    # the 552 the client has not read yet; the daemon drains what it will
    # not read first, so the client sees the reply and then a clean end.
    with running(tmp_path, conn={"MaxMessageSize": "1MB"}) as s:
        for _ in range(5):
            with s.client() as c:
                c.ehlo()
                c.cmd(f"MAIL FROM:<{SENDER}>").check(250)
                c.cmd("RCPT TO:<user@localhost>").check(250)
                c.send(b"BDAT 5000000 LAST\r\n" + b"x" * 20000)
                c.reply().check(552, "5.3.4")
                # recv waits for the end: FIN reads as b"", RST raises.
                assert c.sock.recv(100) == b"", "no clean end"


# --- every end goes through the state machine (issue 13) ---------------------


def session_transitions(s):
    """session id -> the states it entered, from the daemon's debug log."""
    seen = {}
    for m in re.finditer(r"session (\w+): (\w+) -> (\w+)", s.stderr()):
        seen.setdefault(m.group(1), [m.group(2)]).append(m.group(3))
    return seen


def test_every_session_ends_through_session_enter(tmp_path):
    # session_enter() is the only way a session changes state, so its
    # debug line names every transition, the last one to "dead" included,
    # however the session ended: QUIT, the client leaving, a refused line.
    with running(tmp_path, env={"SLUICE_DEBUG": "1"}) as s:
        with s.client() as c:
            c.ehlo()
            c.quit()
        with s.client() as c:
            c.ehlo()
        with s.client() as c:
            c.send(b"NOOP\n")
            c.reply().check(521, "5.5.2")
            c.closed()
        eventually(lambda: len(session_transitions(s)) >= 4 and all(
            v[-1] == "dead" for v in session_transitions(s).values()), 10)
        seen = session_transitions(s)
    assert len(seen) >= 4, seen  # wait_ready's session and ours
    for sid, states in seen.items():
        assert states[-1] == "dead", (sid, states)
        assert states.count("dead") == 1, (sid, states)
