"""SMTP smuggling (CVE-2023-51764/5/6): only CRLF ends a line and only
CRLF.CRLF ends DATA.  A message carrying a bare CR/LF ending with a second
transaction hidden behind it is refused at the real end (550 5.6.11),
nothing of it is queued, and the session continues.  A bare CR or LF in a
command line closes the connection (521)."""
import time

import pytest

from harness import make_message, queue_id_of, sluice_fixture

SMUGGLED = (b"MAIL FROM:<evil@x>\r\nRCPT TO:<victim@localhost>\r\nDATA\r\n"
            b"smuggled\r\n")

BAD_ENDINGS = [
    b"\n.\n", b"\r.\r", b"\r\n.\n", b"\n.\r\n", b"\r\n.\r",
    b"\r\n\x00.\r\n", b"\r.\r\n", b"\n.\r", b"\r\n.\r\r\n",
    b"\r\r\n.\r\r\n", b"\n\n.\n\n", b"\r\n.\x00\r\n", b"\r\n \r\n.\n",
]


def ending_id(e):
    return e.decode().replace("\r", "CR").replace("\n", "LF") \
        .replace("\x00", "NUL").replace(" ", "SP").replace(".", "DOT")


smug = sluice_fixture("smug")


def assert_nothing_smuggled(s):
    for m in s.queue():
        assert b"smuggled" not in m["body"], m["body"]
        assert b"evil" not in m["body"], m["body"]
        assert m["sender"] != "evil@x"
        assert all("victim" not in r["addr"] for r in m["rcpts"])


def second_transaction(c, s, subject):
    r = c.send_message("good@sender.example", ["user@localhost"],
                       make_message(subject), ehlo=False)
    r.check(250, "2.6.0")
    assert b"Subject: %s\r\n" % subject.encode() in \
        s.message(queue_id_of(r))["body"]


@pytest.mark.parametrize("split", [False, True], ids=["one-write", "split"])
@pytest.mark.parametrize("ending", BAD_ENDINGS, ids=ending_id)
def test_smuggled_transaction_is_refused(smug, ending, split):
    before = len(smug.messages())
    head = b"Subject: smuggling test\r\n\r\nhello"
    with smug.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<sender@sender.example>").check(250, "2.1.0")
        c.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        if split:
            # Every byte of the ending in its own segment: a CR at the end
            # of a read must not be taken as a line end either.
            c.send(head)
            for b in ending:
                time.sleep(0.02)
                c.send(bytes([b]))
            time.sleep(0.02)
            c.send(SMUGGLED + b".\r\n")
        else:
            c.send(head + ending + SMUGGLED + b".\r\n")
        r = c.reply()
        r.check(550, "5.6.11")
        # Exactly one reply: the smuggled commands were message text.
        assert c.no_reply(0.3)
        second_transaction(c, smug, "after-smuggling")
    assert len(smug.messages()) == before + 1
    assert_nothing_smuggled(smug)


@pytest.mark.parametrize("ending", BAD_ENDINGS, ids=ending_id)
def test_bad_ending_alone_does_not_end_data(smug, ending):
    before = len(smug.messages())
    with smug.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<sender@sender.example>").check(250, "2.1.0")
        c.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(b"Subject: lone ending\r\n\r\nhello" + ending)
        # The server is still reading message text.
        assert c.no_reply(0.3)
        c.send(b"\r\n.\r\n")
        c.reply().check(550, "5.6.11")
        c.cmd("NOOP").check(250)
    assert len(smug.messages()) == before


def test_bdat_with_bare_lf_is_refused(smug):
    before = len(smug.messages())
    chunk = b"Subject: bdat smuggling\r\n\r\nhello\n.\n" + SMUGGLED
    with smug.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<sender@sender.example>").check(250, "2.1.0")
        c.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        c.reply().check(550, "5.6.11")
        second_transaction(c, smug, "after-bdat-smuggling")
    assert len(smug.messages()) == before + 1
    assert_nothing_smuggled(smug)


def test_bdat_with_bare_cr_split_over_chunks(smug):
    a = b"Subject: bdat cr\r\n\r\nhello\r"
    b = b".\rmore\r\n"
    with smug.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<sender@sender.example>").check(250, "2.1.0")
        c.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
        c.send(b"BDAT %d\r\n" % len(a) + a)
        c.reply().check(250, "2.0.0")
        c.send(b"BDAT %d LAST\r\n" % len(b) + b)
        c.reply().check(550, "5.6.11")
        c.cmd("NOOP").check(250)


def test_bdat_dot_line_is_content(smug):
    # In BDAT a line holding only "." is message text, not an end marker,
    # and what follows it is not a command.
    chunk = (b"Subject: bdat dot line\r\n\r\nbefore\r\n.\r\n"
             b"MAIL FROM:<bdat-dot@x>\r\n")
    with smug.client() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<sender@sender.example>").check(250, "2.1.0")
        c.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        r = c.reply().check(250, "2.6.0")
        assert c.no_reply(0.3)
    assert smug.message(queue_id_of(r))["body"].endswith(chunk)
    assert all(m["sender"] != "bdat-dot@x" for m in smug.messages())


@pytest.mark.parametrize("prefix,line", [
    ([], b"NOOP\n"),
    ([], b"EHLO client.example\nNOOP\r\n"),
    ([], b"NOOP\rNOOP\r\n"),
    ([], b"\n"),
    (["EHLO client.example"], b"MAIL FROM:<a@sender.example>\n"),
    (["EHLO client.example", "MAIL FROM:<a@sender.example>"],
     b"RCPT TO:<user@localhost>\nDATA\r\n"),
    (["EHLO client.example", "MAIL FROM:<a@sender.example>"],
     b"RCPT TO:<user@localhost>\rDATA\r\n"),
], ids=["noop-lf", "ehlo-lf", "noop-cr", "lone-lf", "mail-lf", "rcpt-lf",
        "rcpt-cr"])
def test_bare_cr_lf_in_command_closes(smug, prefix, line):
    before = len(smug.messages())
    with smug.client() as c:
        for p in prefix:
            assert c.cmd(p).code == 250
        c.send(line)
        c.reply().check(521, "5.5.2")
        assert c.closed()
    assert len(smug.messages()) == before
