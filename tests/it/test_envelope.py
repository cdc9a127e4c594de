"""Hostile envelopes: xtext that decodes to CR/LF/NUL (GUIDE 4.4), raw NUL
in commands, over-long addresses, quoted local parts, and BDAT sizes that
are negative, overflowing, garbage or over the message size limit."""
import pytest

from harness import make_message, queue_id_of, sluice_fixture

SENDER = "a@sender.example"


env = sluice_fixture("env", conn={"MaxMessageSize": 10000})


def nothing_new(s, before):
    msgs = s.queue()
    assert len(msgs) == before, [m["queue_id"] for m in msgs[before:]]
    for m in msgs:
        for v in (m.get("envid") or "", m.get("sender") or ""):
            assert not any(ch in v for ch in "\r\n\x00"), m
        for r in m["rcpts"]:
            for v in (r.get("orcpt") or "", r.get("addr") or ""):
                assert not any(ch in v for ch in "\r\n\x00"), r


def try_to_finish(c):
    """Drive the rest of a transaction; every step must be refused."""
    r = c.cmd("RCPT TO:<user@localhost>")
    if r.code == 250:
        r = c.cmd("DATA")
    assert r.code != 354, r


# --- xtext ---------------------------------------------------------------------


BAD_XTEXT = ["abc+0Ddef", "abc+0Adef", "abc+00def", "a+0D+0AMAIL",
             "x+0D", "+0A"]


@pytest.mark.parametrize("value", BAD_XTEXT)
def test_envid_decoding_to_control_chars(env, value):
    before = len(env.messages())
    with env.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}> ENVID={value}").check(501, "5.5.4")
        try_to_finish(c)
        c.cmd("NOOP").check(250)
    nothing_new(env, before)


@pytest.mark.parametrize("value", BAD_XTEXT)
def test_orcpt_decoding_to_control_chars(env, value):
    before = len(env.messages())
    with env.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
        c.cmd(f"RCPT TO:<user@localhost> ORCPT=rfc822;{value}@localhost"
              ).check(501, "5.5.4")
        r = c.cmd("DATA")
        assert r.code in (503, 554), r
    nothing_new(env, before)


@pytest.mark.parametrize("value", ["abc+0G", "abc+", "abc+2", "a=b",
                                   "x" * 101])
def test_malformed_envid(env, value):
    with env.client() as c:
        c.ehlo()
        r = c.cmd(f"MAIL FROM:<{SENDER}> ENVID={value}")
        assert r.code in (501, 555) and r.enhanced == "5.5.4", r
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")


def test_valid_xtext_is_decoded(env):
    with env.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}> ENVID=id+2B1+3D+20x").check(250, "2.1.0")
        c.cmd("RCPT TO:<user@localhost> ORCPT=rfc822;user+2Btag@localhost"
              ).check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(make_message("xtext-ok") + ".\r\n")
        r = c.reply().check(250, "2.6.0")
    m = env.message(queue_id_of(r))
    assert m["envid"] == "id+1= x"
    assert m["rcpts"][0]["orcpt"].lower() == "rfc822;user+tag@localhost"


# --- NUL and raw control characters ------------------------------------------


@pytest.mark.parametrize("line", [
    b"MAIL FROM:<a\x00b@sender.example>",
    b"MAIL FROM:<a@sender.example>\x00",
    b"MAIL FROM:<a@sender.example> ENVID=a\x00b",
    b"EHLO cli\x00ent.example",
    b"NOOP \x00",
], ids=["mail-addr", "mail-end", "mail-envid", "ehlo", "noop"])
def test_raw_nul_in_command(env, line):
    before = len(env.messages())
    with env.client() as c:
        if not line.startswith(b"EHLO"):
            c.ehlo()
        r = c.cmd(line)
        assert r.code in (500, 501), r
        assert r.enhanced and r.enhanced.startswith("5.5"), r
        try_to_finish(c)
    nothing_new(env, before)


# --- address lengths and forms -------------------------------------------------


def domain_of(n):
    """A syntactically valid domain of exactly n octets (labels <= 63)."""
    labels, left = [], n
    while left > 0:
        take = min(63, left)
        if left - take == 1:   # never leave a lone dot
            take -= 2
        labels.append("d" * take)
        left -= take + 1
    d = ".".join(labels)
    assert len(d) == n, (len(d), n)
    return d


@pytest.mark.parametrize("verb,addr,ok", [
    ("MAIL", "l" * 64 + "@sender.example", True),
    ("MAIL", "l" * 65 + "@sender.example", False),
    ("MAIL", "a@" + domain_of(250), True),
    ("MAIL", "a@" + domain_of(256), False),
    ("MAIL", "l" * 64 + "@" + domain_of(200), False),
    ("RCPT", "l" * 64 + "@localhost", True),
    ("RCPT", "l" * 65 + "@localhost", False),
    ("RCPT", "l" * 64 + "@" + domain_of(200), False),
], ids=["mail-local64", "mail-local65", "mail-domain250", "mail-domain256",
        "mail-path265", "rcpt-local64", "rcpt-local65", "rcpt-path265"])
def test_address_lengths(env, verb, addr, ok):
    with env.client() as c:
        c.ehlo()
        if verb == "RCPT":
            c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
            r = c.cmd(f"RCPT TO:<{addr}>")
            good, bad_enh = "2.1.5", ("5.5.4", "5.1.3")
        else:
            r = c.cmd(f"MAIL FROM:<{addr}>")
            good, bad_enh = "2.1.0", ("5.5.4", "5.1.7")
        if ok:
            r.check(250, good)
        else:
            assert r.code == 501 and r.enhanced in bad_enh, r
        c.cmd("NOOP").check(250)


@pytest.mark.parametrize("addr", [
    '"john doe"@sender.example',
    '"a\\"b"@sender.example',
    '"weird,chars;here"@sender.example',
])
def test_quoted_local_part_sender(env, addr):
    with env.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{addr}>").check(250, "2.1.0")
        c.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(make_message("quoted-sender") + ".\r\n")
        r = c.reply().check(250, "2.6.0")
    assert env.message(queue_id_of(r))["sender"] == addr


def test_quoted_local_part_recipient(env):
    with env.client() as c:
        r = c.send_message(SENDER, ['"a.b c"@localhost'],
                           make_message("quoted-rcpt"))
        r.check(250, "2.6.0")
    m = env.message(queue_id_of(r))
    assert [x["addr"] for x in m["rcpts"]] == ['"a.b c"@localhost']


@pytest.mark.parametrize("addr", [
    '"unterminated@sender.example',
    "a..b@sender.example",
    ".a@sender.example",
    "a.@sender.example",
    "a b@sender.example",
    "a@sender..example",
    "a@",
    "@sender.example",
    "a@sender.example>junk<",
])
def test_bad_sender_syntax(env, addr):
    with env.client() as c:
        c.ehlo()
        r = c.cmd(f"MAIL FROM:<{addr}>")
        assert r.code == 501 and r.enhanced in ("5.1.7", "5.5.4"), r
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")


def test_missing_angle_bracket(env):
    with env.client() as c:
        c.ehlo()
        r = c.cmd(f"MAIL FROM:<{SENDER}")
        assert r.code == 501, r


# --- BDAT sizes ---------------------------------------------------------------


@pytest.mark.parametrize("arg", [
    "-1", "+5", "18446744073709551616", "99999999999999999999", "abc", "",
    "5x", "0x10", "1e3", "5 FIRST", "5 LAST LAST", "-0"])
def test_bdat_bad_size(env, arg):
    before = len(env.messages())
    with env.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
        c.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
        c.cmd(f"BDAT {arg}".rstrip()).check(501, "5.5.4")
    nothing_new(env, before)


@pytest.mark.parametrize("arg", ["20000 LAST", "10001", "18446744073709551615"])
def test_bdat_over_max_message_size_closes(env, arg):
    before = len(env.messages())
    with env.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
        c.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
        c.cmd(f"BDAT {arg}").check(552, "5.3.4")
        assert c.closed()
    nothing_new(env, before)


def test_bdat_chunks_summing_over_limit_close(env):
    before = len(env.messages())
    chunk = b"Subject: sum\r\n\r\n" + b"s" * 5982 + b"\r\n"
    assert len(chunk) == 6000
    with env.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
        c.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
        c.send(b"BDAT 6000\r\n" + chunk)
        c.reply().check(250, "2.0.0")
        c.cmd("BDAT 6000 LAST").check(552, "5.3.4")
        assert c.closed()
    nothing_new(env, before)


def test_bdat_zero_last_without_content(env):
    with env.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
        c.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
        r = c.cmd("BDAT 0 LAST").check(250, "2.6.0")
    assert env.message(queue_id_of(r))["body"].startswith(b"Received: ")
