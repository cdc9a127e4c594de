"""ESMTP conformance of the receive side: EHLO/HELO, the basic commands,
MAIL/RCPT/DATA and BDAT round trips (raw, smtplib, swaks), DSN parameters
in the queue, SMTPUTF8, 8BITMIME, byte-exact storage and IPv6."""
import re

import pytest

from harness import (FQDN, Client, dot_stuff, ipv6_available, make_message,
                     notify_set, our_prefix, queue_id_of, sluice_fixture,
                     swaks)

SENDER = "a@sender.example"


esmtp = sluice_fixture("esmtp", ipv6=ipv6_available(),
                       conn={"MaxMessageSize": 123456})


def start_transaction(c, rcpts=("user@localhost",), mail_args=""):
    c.ehlo()
    c.cmd(f"MAIL FROM:<{SENDER}>{mail_args}").check(250, "2.1.0")
    for r in rcpts:
        c.cmd(f"RCPT TO:<{r}>").check(250, "2.1.5")


# --- greeting, EHLO, HELO ------------------------------------------------


def test_greeting_default_banner(esmtp):
    with esmtp.client() as c:
        assert c.greeting.code == 220
        assert c.greeting.text.startswith(f"220 {FQDN} ")
        assert "Sluice ESMTP ready" in c.greeting.text


def test_ehlo_capabilities(esmtp):
    with esmtp.client() as c:
        r = c.cmd("EHLO client.example").check(250)
    assert re.match(rf"^250-{re.escape(FQDN)} Hello \[127\.0\.0\.1\]",
                    r.lines[0]), r
    keywords = [t.split()[0].upper() for t in r.texts[1:]]
    for kw in ("SIZE", "PIPELINING", "DSN", "ENHANCEDSTATUSCODES",
               "8BITMIME", "SMTPUTF8", "CHUNKING"):
        assert kw in keywords, f"{kw} not offered: {r!r}"
    # No certificate is configured (AuthMechanism None): no STARTTLS, and
    # no AUTH without BasicAuth.
    assert "STARTTLS" not in keywords
    assert "AUTH" not in keywords
    size = [t for t in r.texts[1:] if t.upper().startswith("SIZE")][0]
    assert size.split() == ["SIZE", "123456"], r
    # Only the last line uses "250 ".
    assert all(ln.startswith("250-") for ln in r.lines[:-1])
    assert r.lines[-1].startswith("250 ")


@pytest.mark.parametrize("key,keyword,refused", [
    ("PipeliningEnabled", "PIPELINING", None),
    ("ChunkingEnabled", "CHUNKING", None),
    ("EightBitMimeEnabled", "8BITMIME", " BODY=8BITMIME"),
    ("SmtpUtf8Enabled", "SMTPUTF8", " SMTPUTF8"),
    ("DeliveryStatusNotificationEnabled", "DSN", " RET=HDRS"),
])
def test_extension_switched_off(sluice_factory, key, keyword, refused):
    s = sluice_factory(conn={key: False})
    with s.client() as c:
        r = c.cmd("EHLO client.example").check(250)
        keywords = [t.split()[0].upper() for t in r.texts[1:]]
        assert keyword not in keywords, r
        # The others stay on.
        assert {"SIZE", "ENHANCEDSTATUSCODES"} <= set(keywords), r
        if refused:
            # A parameter of an extension not offered (RFC 5321 4.1.1.11).
            c.cmd(f"MAIL FROM:<{SENDER}>{refused}").check(555, "5.5.4")
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
        c.quit()


def test_helo_single_line(esmtp):
    with esmtp.client() as c:
        r = c.cmd("HELO client.example").check(250)
        assert len(r.lines) == 1
        assert r.lines[0].startswith(f"250 {FQDN} Hello"), r
        # A HELO session can still send mail (without extensions).
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
        c.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(make_message("helo-session") + ".\r\n")
        r = c.reply().check(250, "2.6.0")
    body = esmtp.message(queue_id_of(r))["body"]
    assert b"with SMTP id" in body.replace(b"\r\n\t", b" ")


@pytest.mark.parametrize("line,code,enh", [
    ("RSET", 250, "2.0.0"),
    ("NOOP", 250, "2.0.0"),
    ("NOOP some argument", 250, "2.0.0"),
    ("noop", 250, "2.0.0"),
    ("VRFY user", 252, "2.1.5"),
    ("EXPN staff", 502, "5.3.3"),
    ("HELP", 214, "2.0.0"),
    ("FOO bar", 500, "5.3.3"),
    ("MAILFROM:<a@b.example>", 500, "5.3.3"),
    ("EHLO", 501, None),
    ("HELO", 501, None),
], ids=lambda v: str(v).replace(" ", "_"))
def test_basic_commands(esmtp, line, code, enh):
    with esmtp.client() as c:
        if not line.upper().startswith(("EHLO", "HELO")):
            c.ehlo()
        r = c.cmd(line).check(code, enh)
        if code >= 500 and enh is None:
            assert r.enhanced and r.enhanced.startswith("5."), r
        # The session stays usable.
        c.cmd("NOOP").check(250, "2.0.0")


def test_reply_never_echoes_control_or_8bit_bytes(esmtp):
    """An unknown verb is echoed in the 500, but only as printable ASCII:
    an escape sequence or 8-bit bytes never travel back."""
    with esmtp.client() as c:
        c.ehlo()
        c.send(b"\x1b[2J\x7f\xc3\xa9X\r\n")
        r = c.reply().check(500, "5.3.3")
        assert all(" " <= ch <= "~" for ch in r.text), r
        assert "?[2J???X" in r.text, r
        c.cmd("NOOP").check(250, "2.0.0")


def test_help_is_multiline_with_codes(esmtp):
    with esmtp.client() as c:
        r = c.cmd("HELP").check(214, "2.0.0")
        for t in r.texts:
            assert t.startswith("2.0.0"), r


def test_quit(esmtp):
    with esmtp.client() as c:
        c.ehlo()
        c.cmd("QUIT").check(221, "2.0.0")
        assert c.closed()


def test_every_reply_has_enhanced_code(esmtp):
    with esmtp.client() as c:
        for line in ("EHLO client.example", f"MAIL FROM:<{SENDER}>",
                     "RCPT TO:<user@localhost>", "RSET", "NOOP",
                     "VRFY x", "BOGUS", "QUIT"):
            r = c.cmd(line)
            last = r.texts[-1]
            if line.startswith("EHLO"):
                continue
            assert re.match(r"[245]\.\d{1,3}\.\d{1,3} ", last), r


# --- sequencing ---------------------------------------------------------


@pytest.mark.parametrize("before,line,codes", [
    ([], f"MAIL FROM:<{SENDER}>", (503,)),
    ([], "RCPT TO:<user@localhost>", (503,)),
    ([], "DATA", (503,)),
    (["EHLO client.example"], "RCPT TO:<user@localhost>", (503,)),
    (["EHLO client.example"], "DATA", (503,)),
    (["EHLO client.example", f"MAIL FROM:<{SENDER}>"], "DATA", (503, 554)),
    (["EHLO client.example", f"MAIL FROM:<{SENDER}>"],
     f"MAIL FROM:<{SENDER}>", (503,)),
    # RSET and a new EHLO both end the transaction.
    (["EHLO client.example", f"MAIL FROM:<{SENDER}>", "RSET"],
     "RCPT TO:<user@localhost>", (503,)),
    (["EHLO client.example", f"MAIL FROM:<{SENDER}>",
      "EHLO client.example"], "RCPT TO:<user@localhost>", (503,)),
], ids=["mail-no-helo", "rcpt-no-helo", "data-no-helo", "rcpt-no-mail",
        "data-no-mail", "data-no-rcpt", "nested-mail", "rcpt-after-rset",
        "rcpt-after-ehlo"])
def test_bad_sequence(esmtp, before, line, codes):
    with esmtp.client() as c:
        for b in before:
            assert c.cmd(b).code < 400
        r = c.cmd(line)
        assert r.code in codes and r.enhanced == "5.5.1", r
        c.cmd("NOOP").check(250, "2.0.0")


def test_data_after_bdat_is_refused(esmtp):
    with esmtp.client() as c:
        start_transaction(c)
        c.send(b"BDAT 12\r\nSubject: x\r\n")
        c.reply().check(250, "2.0.0")
        r = c.cmd("DATA")
        assert r.code == 503 and r.enhanced == "5.5.1", r
        c.cmd("RSET").check(250, "2.0.0")


# --- round trips ------------------------------------------------------------


def test_raw_round_trip_two_messages_one_session(esmtp):
    with esmtp.client() as c:
        r1 = c.send_message(SENDER, ["user@localhost"],
                            make_message("raw-rt-1"))
        r1.check(250, "2.6.0", "Queued")
        assert re.match(r"250 2\.6\.0 <[^>]+> Queued mail for delivery",
                        r1.lines[-1]), r1
        r2 = c.send_message(SENDER, ["user@localhost", "x@example.test"],
                            make_message("raw-rt-2"), ehlo=False)
        r2.check(250, "2.6.0")
    q1, q2 = queue_id_of(r1), queue_id_of(r2)
    assert q1 != q2
    m1, m2 = esmtp.message(q1), esmtp.message(q2)
    assert m1["sender"] == SENDER
    assert [r["addr"] for r in m1["rcpts"]] == ["user@localhost"]
    assert sorted(r["addr"] for r in m2["rcpts"]) == \
        ["user@localhost", "x@example.test"]
    assert b"Subject: raw-rt-1\r\n" in m1["body"]
    assert b"Subject: raw-rt-2\r\n" in m2["body"]


def test_null_sender_accepted(esmtp):
    with esmtp.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<>").check(250, "2.1.0")
        c.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(make_message("null-sender") + ".\r\n")
        r = c.reply().check(250, "2.6.0")
    assert esmtp.message(queue_id_of(r))["sender"] == ""


def test_smtplib_round_trip(esmtp):
    msg = make_message("smtplib-rt", body="Body via smtplib.\r\n")
    with esmtp.smtplib() as s:
        code, _ = s.ehlo()
        assert code == 250
        assert s.has_extn("pipelining") and s.has_extn("chunking")
        assert s.mail(SENDER)[0] == 250
        assert s.rcpt("user@localhost")[0] == 250
        assert s.rcpt("other@example.test")[0] == 250
        code, text = s.data(msg.encode())
        assert code == 250, text
    qid = re.search(rb"<([^>]+)>", text).group(1).decode()
    m = esmtp.message(qid)
    assert m["body"].endswith(msg.encode())
    assert sorted(r["addr"] for r in m["rcpts"]) == \
        ["other@example.test", "user@localhost"]


def test_smtplib_sendmail(esmtp):
    with esmtp.smtplib() as s:
        refused = s.sendmail(SENDER, ["user@localhost"],
                             make_message("smtplib-sendmail"))
    assert refused == {}
    assert any(b"Subject: smtplib-sendmail\r\n" in b for b in esmtp.bodies())


@pytest.mark.parametrize("extra", [[], ["--pipeline"]],
                         ids=["plain", "pipeline"])
def test_swaks_round_trip(esmtp, extra):
    subject = "swaks-rt-" + ("pipe" if extra else "plain")
    p = swaks(esmtp.port, "--to", "user@localhost", "--from", SENDER,
              "--header", f"Subject: {subject}", "--body", "Sent by swaks.",
              *extra)
    assert p.returncode == 0, p.stdout + p.stderr
    assert re.search(r"^<-\s+250 2\.6\.0 ", p.stdout, re.M), p.stdout
    bodies = [b for b in esmtp.bodies()
              if f"Subject: {subject}\r\n".encode() in b]
    assert len(bodies) == 1
    assert b"Sent by swaks." in bodies[0]


# --- BDAT ---------------------------------------------------------------------


def test_bdat_several_chunks_then_zero_last(esmtp):
    chunks = [b"Subject: bdat-chunks\r\n\r\nline one\r\nli",
              b"ne two\r\n.not dot-stuffed\r\n",
              b"..two dots stay\r\n"]
    with esmtp.client() as c:
        start_transaction(c)
        for ch in chunks:
            c.send(b"BDAT %d\r\n" % len(ch) + ch)
            r = c.reply().check(250, "2.0.0")
            assert re.search(r"\b\d+ octets", r.text), r
        r = c.cmd("BDAT 0 LAST").check(250, "2.6.0")
    body = esmtp.message(queue_id_of(r))["body"]
    our_prefix(body, b"".join(chunks))


def test_bdat_single_last_chunk(esmtp):
    data = make_message("bdat-single").encode()
    with esmtp.client() as c:
        start_transaction(c, rcpts=("user@localhost", "b@example.test"))
        c.send(b"BDAT %d LAST\r\n" % len(data) + data)
        r = c.reply().check(250, "2.6.0", "Queued")
        # A second transaction in the same session, with DATA this time.
        r2 = c.send_message(SENDER, ["user@localhost"],
                            make_message("after-bdat"), ehlo=False)
        r2.check(250, "2.6.0")
    our_prefix(esmtp.message(queue_id_of(r))["body"], data)
    assert len(esmtp.message(queue_id_of(r))["rcpts"]) == 2


def test_bdat_pipelined_chunks_in_one_write(esmtp):
    a = b"Subject: bdat-pipe\r\n\r\n"
    b = b"pipelined body\r\n"
    with esmtp.client() as c:
        c.ehlo()
        c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<user@localhost>\r\n"
               .encode() + b"BDAT %d\r\n" % len(a) + a +
               b"BDAT %d LAST\r\n" % len(b) + b)
        r = c.replies(4)
    r[0].check(250, "2.1.0")
    r[1].check(250, "2.1.5")
    r[2].check(250, "2.0.0")
    r[3].check(250, "2.6.0")
    our_prefix(esmtp.message(queue_id_of(r[3]))["body"], a + b)


@pytest.mark.parametrize("chunks", [
    [b"Subject: bdat-no-crlf-1\r\n\r\nlast line without CRLF"],
    [b"Subject: bdat-no-crlf-2\r\n\r\nlast line", b" without CRLF"],
    [b"Subject: bdat-no-crlf-3\r\n\r\nend\r\n", b"x"],
], ids=["one-chunk", "split", "one-byte"])
def test_bdat_last_chunk_without_crlf(esmtp, chunks):
    """RFC 3030 does not ask a message to end in CRLF, and Postfix and
    Exim accept one that does not (issue 10.15): it is accepted, and
    stored with a final CRLF."""
    with esmtp.client() as c:
        start_transaction(c)
        for ch in chunks[:-1]:
            c.send(b"BDAT %d\r\n" % len(ch) + ch)
            c.reply().check(250, "2.0.0")
        c.send(b"BDAT %d LAST\r\n" % len(chunks[-1]) + chunks[-1])
        r = c.reply().check(250, "2.6.0")
    our_prefix(esmtp.message(queue_id_of(r))["body"],
               b"".join(chunks) + b"\r\n")


def test_bdat_last_chunk_ending_in_bare_cr_is_refused(esmtp):
    with esmtp.client() as c:
        start_transaction(c)
        data = b"Subject: bdat-bare-cr-end\r\n\r\nend\r"
        c.send(b"BDAT %d LAST\r\n" % len(data) + data)
        c.reply().check(550, "5.6.11")
    assert not any(b"bdat-bare-cr-end" in b for b in esmtp.bodies())


def test_bdat_without_transaction_consumes_chunk(esmtp):
    with esmtp.client() as c:
        c.ehlo()
        # The chunk must be read (and dropped), not taken as commands.
        c.send(b"BDAT 6\r\nNOOP\r\n")
        r = c.reply()
        assert r.code == 503 and r.enhanced == "5.5.1", r
        c.cmd("NOOP").check(250, "2.0.0")


# --- DSN ----------------------------------------------------------------------


def test_dsn_parameters_stored(esmtp):
    with esmtp.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}> RET=HDRS ENVID=QQ+2Bid+3D1"
              ).check(250, "2.1.0")
        c.cmd("RCPT TO:<a@localhost> NOTIFY=SUCCESS,FAILURE "
              "ORCPT=rfc822;a+2Bx@localhost").check(250, "2.1.5")
        c.cmd("RCPT TO:<b@localhost> NOTIFY=NEVER").check(250, "2.1.5")
        c.cmd("RCPT TO:<c@localhost> NOTIFY=DELAY").check(250, "2.1.5")
        c.cmd("RCPT TO:<d@localhost>").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(make_message("dsn-params") + ".\r\n")
        r = c.reply().check(250, "2.6.0")
    m = esmtp.message(queue_id_of(r))
    assert m["envid"] == "QQ+id=1"
    assert m["ret"] in (2, "HDRS", "hdrs"), m["ret"]
    rc = {r["addr"]: r for r in m["rcpts"]}
    assert set(rc) == {"a@localhost", "b@localhost", "c@localhost",
                       "d@localhost"}
    assert notify_set(rc["a@localhost"]["notify"]) == {"SUCCESS", "FAILURE"}
    assert notify_set(rc["b@localhost"]["notify"]) == {"NEVER"}
    assert notify_set(rc["c@localhost"]["notify"]) == {"DELAY"}
    assert notify_set(rc["d@localhost"]["notify"]) == set()
    assert rc["a@localhost"]["orcpt"].lower() == "rfc822;a+x@localhost"
    assert not rc["d@localhost"]["orcpt"]


def test_dsn_ret_full(esmtp):
    with esmtp.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}> RET=FULL").check(250, "2.1.0")
        c.cmd("RCPT TO:<a@localhost>").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(make_message("dsn-full") + ".\r\n")
        r = c.reply().check(250, "2.6.0")
    m = esmtp.message(queue_id_of(r))
    assert m["ret"] in (1, "FULL", "full"), m["ret"]
    assert not m["envid"]


@pytest.mark.parametrize("line", [
    f"MAIL FROM:<{SENDER}> RET=SOME",
    f"MAIL FROM:<{SENDER}> RET=FULL RET=HDRS",
    f"MAIL FROM:<{SENDER}> SIZE=10 SIZE=20",
    f"MAIL FROM:<{SENDER}> FOO=bar",
    f"MAIL FROM:<{SENDER}> BODY=BINARYMIME",
    f"MAIL FROM:<{SENDER}> BODY=9BIT",
], ids=["ret-bad", "ret-dup", "size-dup", "unknown", "binarymime",
        "body-bad"])
def test_bad_mail_parameters(esmtp, line):
    with esmtp.client() as c:
        c.ehlo()
        r = c.cmd(line)
        assert r.code in (501, 555) and r.enhanced == "5.5.4", r
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")


def test_bad_rcpt_notify(esmtp):
    with esmtp.client() as c:
        start_transaction(c, rcpts=())
        for arg in ("NOTIFY=NEVER,SUCCESS", "NOTIFY=SOMETIMES", "FOO=1"):
            r = c.cmd(f"RCPT TO:<a@localhost> {arg}")
            assert r.code in (501, 555) and r.enhanced == "5.5.4", (arg, r)


# --- SMTPUTF8 and 8BITMIME -------------------------------------------------


def test_smtputf8_address_accepted_with_smtputf8(esmtp):
    sender = "jürgen@bücher.example"
    rcpt = "用户@localhost"
    msg = ("Subject: smtputf8 ünïcödé\r\nFrom: " + sender +
           "\r\n\r\nÜnïcödé body\r\n").encode()
    with esmtp.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{sender}> SMTPUTF8 BODY=8BITMIME".encode()
              ).check(250, "2.1.0")
        c.cmd(f"RCPT TO:<{rcpt}>".encode()).check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(msg + b".\r\n")
        r = c.reply().check(250, "2.6.0")
    m = esmtp.message(queue_id_of(r))
    assert m["sender"] == sender
    assert [r["addr"] for r in m["rcpts"]] == [rcpt]
    our_prefix(m["body"], msg)


@pytest.mark.parametrize("lines", [
    ["MAIL FROM:<jürgen@bücher.example>"],
    [f"MAIL FROM:<{SENDER}>", "RCPT TO:<用户@localhost>"],
], ids=["mail", "rcpt"])
def test_smtputf8_address_refused_without_smtputf8(esmtp, lines):
    with esmtp.client() as c:
        c.ehlo()
        for ln in lines[:-1]:
            c.cmd(ln.encode()).check(250)
        c.cmd(lines[-1].encode()).check(553, "5.6.7")
        c.cmd("NOOP").check(250)


@pytest.mark.parametrize("body,msg", [
    ("8BITMIME", b"Subject: 8bit\r\n\r\nLatin-1 \xe9\xe8, UTF-8 \xc3\xa9\r\n"),
    ("7BIT", b"Subject: 7bit\r\n\r\nplain ASCII\r\n"),
], ids=["8bitmime", "7bit"])
def test_body_parameter_accepted(esmtp, body, msg):
    with esmtp.client() as c:
        start_transaction(c, mail_args=f" BODY={body}")
        c.cmd("DATA").check(354)
        c.send(msg + b".\r\n")
        r = c.reply().check(250, "2.6.0")
    our_prefix(esmtp.message(queue_id_of(r))["body"], msg)


def test_size_parameter_within_limit(esmtp):
    with esmtp.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}> SIZE=123456").check(250, "2.1.0")


# --- byte-exact storage --------------------------------------------------------


def test_message_stored_byte_exact(esmtp):
    original = (b"Subject: exact\r\n"
                b"X-Test:  \t spaced \t \r\n"
                b"X-Folded: one\r\n\ttwo\r\n  three\r\n"
                b"\r\n"
                b"trailing spaces   \r\n"
                b"\tindented\r\n"
                b".leading dot (stuffed on the wire)\r\n"
                b"..two dots\r\n"
                b".\tdot tab\r\n"
                b"\r\n\r\n"
                b"two empty lines above\r\n" +
                b"x" * 998 + b"\r\n" +
                b"8bit \xc3\xa9\xff\x80\x01\x7f\r\n"
                b"last line\r\n")
    with esmtp.client() as c:
        start_transaction(c, mail_args=" BODY=8BITMIME")
        c.cmd("DATA").check(354)
        c.send(dot_stuff(original) + b".\r\n")
        r = c.reply().check(250, "2.6.0")
    qid = queue_id_of(r)
    headers = our_prefix(esmtp.message(qid)["body"], original)
    names = [n.lower() for n, _ in headers]
    assert names[0] == "received"
    assert sorted(names) == sorted(["received",
                                    "x-sluice-organization-authas",
                                    "x-sluice-organization-authmechanism"])
    assert qid.encode() in headers[0][1]


def test_message_without_header_body_separator(esmtp):
    original = b"just one line, no header block\r\n"
    with esmtp.client() as c:
        start_transaction(c)
        c.cmd("DATA").check(354)
        c.send(original + b".\r\n")
        r = c.reply().check(250, "2.6.0")
    assert esmtp.message(queue_id_of(r))["body"].endswith(original)


def test_empty_message(esmtp):
    with esmtp.client() as c:
        start_transaction(c)
        c.cmd("DATA").check(354)
        c.send(b".\r\n")
        r = c.reply().check(250, "2.6.0")
    assert esmtp.message(queue_id_of(r))["body"].startswith(b"Received: ")


# --- IPv6 ---------------------------------------------------------------------


def test_ipv6_listener(esmtp):
    if not ipv6_available():
        pytest.skip("no IPv6 loopback in this environment")
    with Client(esmtp.port, host="::1") as c:
        assert c.greeting.code == 220
        r = c.cmd("EHLO client.example").check(250)
        assert "::1" in r.lines[0], r
        r = c.send_message(SENDER, ["user@localhost"],
                           make_message("ipv6"), ehlo=False)
        r.check(250, "2.6.0")
    body = esmtp.message(queue_id_of(r))["body"]
    assert b"::1" in body.split(b"\r\n\r\n")[0]
