"""The fake SMTP server (peers/fakesmtp.py) does what its options say.

The tests of Sluice's SMTP client rely on it as a next hop, so here it is
checked against known-good clients (smtplib, ssl, raw sockets): scripted
replies, STARTTLS and the recording of plaintext and TLS commands, SNI and
client certificates, the injection bytes arriving in the same segment as
the 220, hostile replies byte for byte, an endless reply that stops when
asked, AUTH, BDAT, and the counting sink.
"""
import smtplib
import socket
import ssl
import threading
import time

import pytest

from harness import Client, ipv6_available
from peers.fakesmtp import (BARE_LF, CLOSE, CODE_CHANGE, ENDLESS, GARBAGE,
                            HANG, OVERLONG, SILENCE, CountingSink, FakeSmtp,
                            FakeSmtpError, close_after, delayed,
                            server_context)

MSG = (b"From: a@example.org\r\nTo: b@example.test\r\n"
       b"Message-ID: <m1@example.org>\r\nSubject: fake\r\n\r\n"
       b"hello\r\n.a line that starts with a dot\r\n..two dots\r\nbye\r\n")


def client_tls(pki, cert=None):
    ctx = ssl.create_default_context(cafile=f"{pki}/ca.pem")
    if cert:
        ctx.load_cert_chain(f"{pki}/{cert}.pem", f"{pki}/{cert}.key")
    return ctx


def connect(server, timeout=5.0):
    s = socket.create_connection((server.host, server.port), timeout=timeout)
    return s


def recv_until(sock, end, limit=1 << 20):
    data = b""
    while not data.endswith(end) and len(data) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


# --- plain sessions and recording ------------------------------------------


def test_records_session_and_message():
    with FakeSmtp() as mx:
        with smtplib.SMTP(mx.host, mx.port, timeout=5) as s:
            s.sendmail("a@example.org", ["b@example.test", "c@example.test"],
                       MSG)
        (m,) = mx.wait_messages(1)
        mx.wait_closed()
    (sess,) = mx.sessions
    assert sess.verbs() == ["EHLO", "MAIL", "RCPT", "RCPT", "DATA", "QUIT"]
    assert sess.commands[1].line == b"mail FROM:<a@example.org>\r\n"
    assert all(c.line.endswith(b"\r\n") and not c.tls
               for c in sess.commands)
    assert sess.close_reason == "QUIT"
    assert (m.mail_from, m.rcpts, m.via, m.tls) == \
        ("a@example.org", ["b@example.test", "c@example.test"], "DATA", False)
    assert m.data == MSG  # dot-unstuffed
    assert b"\r\n..a line" in m.raw and b"\r\n...two" in m.raw
    assert m.message_id == "<m1@example.org>"
    assert m.accepted and m.code == 250
    assert mx.delivered() == {"b@example.test": 1, "c@example.test": 1}


def test_three_messages_on_one_connection_and_sequential_sessions():
    with FakeSmtp() as mx:
        for _ in range(2):
            with smtplib.SMTP(mx.host, mx.port, timeout=5) as s:
                for i in range(3):
                    s.sendmail("a@example.org", ["b@example.test"], MSG)
        mx.wait_messages(6)
    assert [len(s.messages) for s in mx.sessions] == [3, 3]


def test_concurrent_sessions_are_bounded():
    with FakeSmtp(max_sessions=2, banner=HANG, idle_timeout=5) as mx:
        socks = [connect(mx) for _ in range(3)]
        mx.wait_sessions(2)
        time.sleep(0.3)
        assert len(mx.sessions) == 2  # the third waits in the backlog
        socks[0].close()
        mx.wait_sessions(3)
        for s in socks[1:]:
            s.close()
        mx.wait_closed(3)


def test_pipelined_commands_arrive_in_one_read():
    with FakeSmtp() as mx, Client(mx.port) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n")
        assert [r.code for r in c.replies(3)] == [250, 250, 354]
        c.send(b"hi\r\n.\r\n")
        c.reply().check(250)
        c.quit()
        mx.wait_closed()
    assert mx.sessions[0].batches() == [["EHLO"], ["MAIL", "RCPT", "DATA"],
                                        ["QUIT"]]


def test_bare_lf_in_data_is_kept_and_does_not_end_it():
    with FakeSmtp() as mx, Client(mx.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@x.test>").check(250)
        c.cmd("RCPT TO:<b@x.test>").check(250)
        c.cmd("DATA").check(354)
        c.send(b"one\n.\ntwo\r\n.\r\n")
        c.reply().check(250)
    (m,) = mx.messages
    assert m.data == b"one\n.\ntwo\r\n"


def test_bdat_chunks_are_assembled():
    with FakeSmtp(capabilities=["CHUNKING"]) as mx, Client(mx.port) as c:
        assert "CHUNKING" in c.ehlo().text
        c.cmd("MAIL FROM:<a@x.test>").check(250)
        c.cmd("RCPT TO:<b@x.test>").check(250)
        c.send(b"BDAT 6\r\nhello ")
        c.reply().check(250)
        c.send(b"BDAT 7 LAST\r\nworld\r\n")
        c.reply().check(250, word="queued")
    (m,) = mx.messages
    assert (m.via, m.chunks, m.data) == ("BDAT", [6, 7], b"hello world\r\n")


def test_ipv6_and_loopback_only():
    with pytest.raises(FakeSmtpError):
        FakeSmtp("192.0.2.1")
    if not ipv6_available():
        pytest.skip("no IPv6 loopback")
    with FakeSmtp("::1") as mx:
        with smtplib.SMTP("::1", mx.port, timeout=5) as s:
            assert s.noop()[0] == 250


# --- scripted replies ------------------------------------------------------


def test_scripted_replies():
    replies = {
        "MAIL": ["451 4.3.0 try later", "250 2.1.0 Ok"],
        "RCPT:bob@example.test": "550 5.1.1 no such user",
        "end-of-data": "452 4.2.2 full",
    }
    with FakeSmtp(replies=replies) as mx:
        with smtplib.SMTP(mx.host, mx.port, timeout=5) as s:
            with pytest.raises(smtplib.SMTPSenderRefused) as e:
                s.sendmail("a@example.org", ["x@example.test"], MSG)
            assert e.value.smtp_code == 451
            s.rset()
            with pytest.raises(smtplib.SMTPDataError) as e:
                s.sendmail("a@example.org",
                           ["Bob@example.test", "x@example.test"], MSG)
            assert e.value.smtp_code == 452
        (m,) = mx.messages
    assert m.rcpts == ["x@example.test"] and not m.accepted
    assert m.reply == "452 4.2.2 full"
    assert mx.delivered() == {}


def test_no_valid_recipients_refuses_data():
    with FakeSmtp(replies={"RCPT": "550 5.1.1 no"}) as mx, \
            Client(mx.port) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n")
        assert [r.code for r in c.replies(3)] == [250, 550, 554]
    assert mx.messages == []


def test_ehlo_refused_falls_back_to_helo():
    with FakeSmtp(replies={"EHLO": "502 5.5.2 no EHLO here"}) as mx:
        with smtplib.SMTP(mx.host, mx.port, timeout=5) as s:
            s.sendmail("a@example.org", ["b@example.test"], MSG)
        mx.wait_messages(1)
    assert mx.sessions[0].verbs()[:3] == ["EHLO", "HELO", "MAIL"]


def test_capabilities_and_size():
    caps = ["PIPELINING", "CHUNKING", "8BITMIME", "SIZE 1000", "DSN",
            "SMTPUTF8"]
    with FakeSmtp(capabilities=caps) as mx, Client(mx.port) as c:
        ehlo = c.ehlo()
        assert ehlo.texts == ["fake.test"] + caps
        c.cmd("MAIL FROM:<a@x.test> SIZE=2000").check(552, "5.3.4")
        c.cmd("MAIL FROM:<a@x.test> SIZE=999").check(250)
    with FakeSmtp(capabilities=()) as mx, Client(mx.port) as c:
        assert c.ehlo().lines == ["250 fake.test"]


def test_banners():
    with FakeSmtp(banner="554 5.7.1 no service") as mx:
        with pytest.raises(smtplib.SMTPConnectError):
            smtplib.SMTP(mx.host, mx.port, timeout=5)
        with Client(mx.port) as c:
            c.greeting.check(554)
            c.cmd("EHLO x").check(503)
            c.cmd("QUIT").check(221)
    with FakeSmtp(banner=SILENCE) as mx, Client(mx.port, greeting=False) as c:
        assert c.no_reply(0.3)
    with FakeSmtp(banner=delayed(0.3, "220 slow.test hi")) as mx:
        t0 = time.monotonic()
        with Client(mx.port) as c:
            c.greeting.check(220, word="slow.test")
        assert time.monotonic() - t0 >= 0.25


# --- hostile replies -------------------------------------------------------


@pytest.mark.parametrize("value", [OVERLONG, CODE_CHANGE, BARE_LF, GARBAGE],
                         ids=["overlong", "code-change", "bare-lf", "garbage"])
def test_hostile_bytes_arrive_exactly(value):
    with FakeSmtp(replies={"EHLO": value}) as mx, connect(mx) as s:
        assert recv_until(s, b"\r\n").startswith(b"220 ")
        s.sendall(b"EHLO x\r\n")
        got = b""
        while len(got) < len(value):
            got += s.recv(len(value) - len(got))
        assert got == value
        s.settimeout(0.2)
        with pytest.raises(TimeoutError):
            s.recv(1)  # and nothing more


def test_close_mid_reply():
    with FakeSmtp(replies={"EHLO": close_after(b"250-fake.test\r\n250-PIP"),
                           "QUIT": CLOSE}) as mx, connect(mx) as s:
        recv_until(s, b"\r\n")
        s.sendall(b"EHLO x\r\n")
        assert recv_until(s, b"\n\n") == b"250-fake.test\r\n250-PIP"
        mx.wait_closed()
    assert mx.sessions[0].close_reason == "scripted close"


def test_hang_never_answers_until_client_closes():
    with FakeSmtp(replies={"MAIL": HANG}) as mx:
        with Client(mx.port, timeout=0.5) as c:
            c.ehlo()
            c.send(b"MAIL FROM:<a@x.test>\r\n")
            assert c.no_reply(0.3)
            c.send(b"QUIT\r\n")  # recorded, still not answered
            assert c.no_reply(0.1)
        mx.wait_closed()
        sess = mx.sessions[0]
        assert sess.close_reason == "client closed"
        assert sess.verbs() == ["EHLO", "MAIL", "QUIT"]


def test_stop_ends_a_hanging_session_quickly():
    mx = FakeSmtp(banner=HANG).start()
    with connect(mx):
        mx.wait_sessions(1)
        t0 = time.monotonic()
        mx.stop()
        assert time.monotonic() - t0 < 1.0
    assert mx.sessions[0].close_reason == "stopped"


def test_endless_reply_stops_when_asked():
    mx = FakeSmtp(replies={"EHLO": ENDLESS}).start()
    s = connect(mx)
    try:
        recv_until(s, b"\r\n")
        s.sendall(b"EHLO x\r\n")
        f = s.makefile("rb")
        lines = [f.readline() for _ in range(2000)]
        assert all(ln.startswith(b"250-") for ln in lines)
        t0 = time.monotonic()
        mx.stop()  # raises if the session thread did not end
        assert time.monotonic() - t0 < 1.0
        assert mx.sessions[0].close_reason == "stopped"
    finally:
        s.close()


def test_endless_reply_has_a_cap():
    with FakeSmtp(banner=ENDLESS, endless_limit=50) as mx, \
            Client(mx.port) as c:
        assert len(c.greeting.lines) == 51
        assert c.greeting.code == 220
        c.ehlo()


# --- STARTTLS --------------------------------------------------------------


def starttls_raw(mx, pki, sni="mx.sluice.test", cert=None):
    """Client with EHLO, STARTTLS, handshake, EHLO again (harness.Client)."""
    c = Client(mx.port)
    c.ehlo()
    c.cmd("STARTTLS").check(220)
    c.sock = client_tls(pki, cert).wrap_socket(c.sock, server_hostname=sni)
    c.ehlo()
    return c


def test_starttls_records_plaintext_and_tls(pki):
    with FakeSmtp(tls=server_context(pki, "server")) as mx:
        with smtplib.SMTP(mx.host, mx.port, timeout=5) as s:
            s.ehlo()
            assert s.has_extn("starttls")
            s.starttls(context=client_tls(pki))
            s.ehlo()
            assert not s.has_extn("starttls")
            s.sendmail("a@example.org", ["b@example.test"], MSG)
        (m,) = mx.wait_messages(1)
        mx.wait_closed()
    (sess,) = mx.sessions
    assert sess.verbs(tls=False) == ["EHLO", "STARTTLS"]
    assert sess.verbs(tls=True) == ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]
    assert sess.tls and sess.tls_version == "TLSv1.3" and sess.cipher
    assert sess.sni is None  # smtplib sends no SNI for an IP address
    assert m.tls and sess.client_cert is None


def test_sni_and_client_certificate(pki):
    ctx = server_context(pki, "server", client_ca=f"{pki}/partner-ca.pem")
    with FakeSmtp(tls=ctx) as mx:
        with starttls_raw(mx, pki, cert="partner") as c:
            c.quit()
        with starttls_raw(mx, pki) as c:
            c.quit()
        mx.wait_closed(2)
    with_cert, without = mx.sessions
    assert with_cert.sni == "mx.sluice.test"
    assert with_cert.client_cert.startswith(b"\x30")  # DER
    subject = dict(x[0] for x in with_cert.client_cert_info["subject"])
    assert subject["commonName"] == "mx.partner.test"
    assert without.tls and without.client_cert is None


def test_sni_callback_of_the_test_still_runs(pki):
    ctx = server_context(pki, "server")
    ecdsa = server_context(pki, "ecdsa")

    def by_name(sslsock, name, _ctx):
        if name == "ecdsa.sluice.test":
            sslsock.context = ecdsa

    ctx.sni_callback = by_name
    with FakeSmtp(tls=ctx) as mx:
        with starttls_raw(mx, pki, sni="ecdsa.sluice.test") as c:
            der = c.sock.getpeercert(binary_form=True)
            c.quit()
        mx.wait_closed()
    assert mx.sessions[0].sni == "ecdsa.sluice.test"
    assert b"ecdsa.sluice.test" in der


def test_after_starttls_a_new_ehlo_is_required(pki):
    with FakeSmtp(tls=server_context(pki)) as mx, Client(mx.port) as c:
        c.ehlo()
        c.cmd("STARTTLS").check(220)
        c.sock = client_tls(pki).wrap_socket(c.sock,
                                             server_hostname="mx.sluice.test")
        c.cmd("MAIL FROM:<a@x.test>").check(503)
        c.ehlo()
        c.cmd("MAIL FROM:<a@x.test>").check(250)
        c.cmd("STARTTLS").check(554)


def test_handshake_failure_is_recorded(pki):
    with FakeSmtp(tls=server_context(pki, "self")) as mx:
        with Client(mx.port) as c:
            c.ehlo()
            c.cmd("STARTTLS").check(220)
            with pytest.raises(ssl.SSLCertVerificationError):
                client_tls(pki).wrap_socket(c.sock,
                                            server_hostname="mx.sluice.test")
        mx.wait_closed()
    assert mx.sessions[0].close_reason == "TLS handshake failed"
    assert mx.sessions[0].tls_error and not mx.sessions[0].tls


def test_handshake_waits_for_a_slow_client_and_stop_ends_it(pki):
    with FakeSmtp(tls=server_context(pki)) as mx, Client(mx.port) as c:
        c.ehlo()
        c.cmd("STARTTLS").check(220)
        time.sleep(0.3)  # the server polls its handshake meanwhile
        c.sock = client_tls(pki).wrap_socket(c.sock,
                                             server_hostname="mx.sluice.test")
        c.ehlo()
    mx = FakeSmtp(tls=server_context(pki)).start()
    with Client(mx.port) as c:
        c.ehlo()
        c.cmd("STARTTLS").check(220)
        time.sleep(0.1)
        t0 = time.monotonic()
        mx.stop()  # while the server waits for a ClientHello
        assert time.monotonic() - t0 < 1.0
    assert mx.sessions[0].close_reason == "stopped"


def test_pipelined_after_starttls_is_recorded(pki):
    with FakeSmtp(tls=server_context(pki)) as mx, Client(mx.port) as c:
        c.ehlo()
        c.send(b"STARTTLS\r\nMAIL FROM:<a@x.test>\r\n")
        c.reply().check(220)
        assert c.closed()
    s = mx.sessions[0]
    assert s.pipelined_after_starttls == b"MAIL FROM:<a@x.test>\r\n"
    assert s.close_reason == "command pipelined after STARTTLS"


def test_starttls_refused_and_stripped(pki):
    with FakeSmtp(tls=server_context(pki),
                  replies={"STARTTLS": "454 4.7.0 TLS not available"}) as mx:
        with smtplib.SMTP(mx.host, mx.port, timeout=5) as s:
            s.ehlo()
            assert s.has_extn("starttls")
            with pytest.raises(smtplib.SMTPResponseException) as e:
                s.starttls(context=client_tls(pki))
            assert e.value.smtp_code == 454
            s.sendmail("a@example.org", ["b@example.test"], MSG)
        mx.wait_messages(1)
        assert not mx.messages[0].tls
    with FakeSmtp(tls=server_context(pki), starttls="strip") as mx, \
            smtplib.SMTP(mx.host, mx.port, timeout=5) as s:
        s.ehlo()
        assert not s.has_extn("starttls")
        assert s.docmd("STARTTLS")[0] == 502


@pytest.mark.parametrize("mode", ["close", "garbage"])
def test_starttls_handshake_fails(pki, mode):
    with FakeSmtp(starttls=mode) as mx, Client(mx.port) as c:
        assert "STARTTLS" in c.ehlo().text
        c.cmd("STARTTLS").check(220)
        with pytest.raises((ssl.SSLError, OSError)):
            client_tls(pki).wrap_socket(c.sock,
                                        server_hostname="mx.sluice.test")


def test_starttls_injection_in_the_same_segment(pki):
    with FakeSmtp(tls=server_context(pki), starttls="inject") as mx:
        with connect(mx) as s:
            recv_until(s, b"\r\n")
            s.sendall(b"EHLO x\r\n")
            assert b"\r\n250 STARTTLS\r\n" in recv_until(s, b"TLS\r\n")
            s.sendall(b"STARTTLS\r\n")
            time.sleep(0.2)  # let every byte written so far arrive
            # One recv() returns the 220 and the injected line together.
            assert s.recv(4096) == b"220 2.0.0 ready\r\n250 injected\r\n"
            t = client_tls(pki).wrap_socket(s,
                                            server_hostname="mx.sluice.test")
            t.sendall(b"EHLO x\r\n")
            assert recv_until(t, b"ENHANCEDSTATUSCODES\r\n").startswith(
                b"250-fake.test\r\n")
            t.sendall(b"QUIT\r\n")
            assert recv_until(t, b"\r\n").startswith(b"221")
        mx.wait_closed()
    sess = mx.sessions[0]
    assert sess.tls and sess.verbs(tls=True) == ["EHLO", "QUIT"]


# --- AUTH ------------------------------------------------------------------


def test_auth_plain_and_login(pki):
    with FakeSmtp(tls=server_context(pki), auth=("user", "s3cret")) as mx:
        with smtplib.SMTP(mx.host, mx.port, timeout=5) as s:
            s.ehlo()
            assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
            s.user, s.password = "user", "s3cret"
            assert s.auth("LOGIN", s.auth_login)[0] == 235
        with smtplib.SMTP(mx.host, mx.port, timeout=5) as s:
            s.starttls(context=client_tls(pki))
            s.ehlo()
            with pytest.raises(smtplib.SMTPAuthenticationError):
                s.login("user", "wrong")
            s.user, s.password = "user", "s3cret"
            assert s.auth("PLAIN", s.auth_plain)[0] == 235
        mx.wait_closed(2)
    a = [x for s in mx.sessions for x in s.auths]
    assert [(x.mechanism, x.user, x.password, x.tls, x.ok) for x in a] == [
        ("LOGIN", "user", "s3cret", False, True),
        ("PLAIN", "user", "wrong", True, False),
        ("LOGIN", "user", "wrong", True, False),  # smtplib tries both
        ("PLAIN", "user", "s3cret", True, True)]
    # The base64 responses of the exchange are recorded, without a verb.
    # smtplib sends the user name with AUTH LOGIN, then the password.
    assert mx.sessions[0].verbs(tls=False)[1:3] == ["AUTH", ""]


# --- the counting sink -----------------------------------------------------


def test_counting_sink_counts_per_recipient():
    with CountingSink() as sink:
        def send(n):
            with smtplib.SMTP(sink.host, sink.port, timeout=5) as s:
                for i in range(n):
                    s.sendmail("a@example.org", ["b@x.test", "c@x.test"],
                               MSG.replace(b"<m1@", b"<%d@" % i))
        threads = [threading.Thread(target=send, args=(3,))
                   for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        sink.wait_messages(12)
    assert sink.total == 12
    assert sink.delivered() == {"b@x.test": 12, "c@x.test": 12}
    assert sink.message_ids()["<0@example.org>"] == 4
    assert all(m.data == b"" and m.size > 0 for m in sink.messages)


def test_bare_line_endings_property():
    with FakeSmtp() as mx, Client(mx.port) as c:
        c.ehlo()
        for body in (b"a\r\nb\r\n", b"a\nb\r\n", b"a\rb\r\n"):
            c.cmd("MAIL FROM:<a@x.test>").check(250)
            c.cmd("RCPT TO:<b@x.test>").check(250)
            c.cmd("DATA").check(354)
            c.send(body + b".\r\n")
            c.reply().check(250)
    assert [m.bare_line_endings for m in mx.messages] == [False, True, True]


def test_counting_sink_stops_answering_after_n():
    with CountingSink(answer_limit=2) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=0.5) as s:
            s.sendmail("a@example.org", ["b@x.test"], MSG)
            s.sendmail("a@example.org", ["b@x.test"], MSG)
            with pytest.raises((TimeoutError, smtplib.SMTPException)):
                s.sendmail("a@example.org", ["b@x.test"], MSG)
            s.close()
        sink.wait_closed()
        assert sink.total == 2 and len(sink.unanswered()) == 1
        sink.resume()  # as after a restart of the sender
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as s:
            s.sendmail("a@example.org", ["b@x.test"], MSG)
        assert sink.delivered() == {"b@x.test": 3}
        assert sink.message_ids() == {"<m1@example.org>": 3}
