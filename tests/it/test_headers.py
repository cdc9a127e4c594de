"""Headers Sluice adds and removes: the Received trace header (RFC 5321
4.4, protocol types of RFC 3848) with the queue id, and the
X-Sluice-Organization-* headers, which are Sluice's own trust decisions:
any copy from the client is removed (any case, with continuation lines)
and ours are added."""
import re

import pytest

from harness import (FQDN, Client, dot_stuff, eventually, free_port,
                     queue_id_of, running, sluice_fixture, split_headers)
from peers.unbound import Unbound

SENDER = "a@sender.example"


hdr = sluice_fixture("hdr")


def send(c, raw, rcpts=("user@localhost",), hello="EHLO client.example"):
    c.cmd(hello).check(250)
    c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
    for r in rcpts:
        c.cmd(f"RCPT TO:<{r}>").check(250, "2.1.5")
    c.cmd("DATA").check(354)
    c.send(dot_stuff(raw) + b".\r\n")
    return c.reply().check(250, "2.6.0")


def fields(body):
    return [(n.lower(), v.decode("utf-8", "replace"))
            for n, v in split_headers(body)]


@pytest.mark.parametrize("hello,proto", [("EHLO client.example", "ESMTP"),
                                         ("HELO client.example", "SMTP")])
def test_received_header(hdr, hello, proto):
    raw = b"Subject: received\r\n\r\nbody\r\n"
    with hdr.client() as c:
        r = send(c, raw, hello=hello)
    qid = queue_id_of(r)
    body = hdr.message(qid)["body"]
    assert body.startswith(b"Received: from client.example ")
    name, value = fields(body)[0]
    assert name == "received"
    assert re.search(r"^from client\.example \(.*\[127\.0\.0\.1\]\)", value), \
        value
    assert re.search(rf"\bby {re.escape(FQDN)} \(Sluice\)", value), value
    assert re.search(rf"\bwith {proto} id {re.escape(qid)}\b", value), value
    assert re.search(r"\bfor <user@localhost>", value), value
    # RFC 5322 date after the last ";"
    date = value.rsplit(";", 1)[1].strip()
    assert re.match(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} "
                    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                    r"\d{4} \d\d:\d\d:\d\d [+-]\d{4}$", date), date
    # Folded lines of our header use CRLF + white space only.
    head = body.split(b"\r\n\r\n", 1)[0]
    assert b"\n" not in head.replace(b"\r\n", b"")


def test_received_header_multiple_recipients(hdr):
    with hdr.client() as c:
        r = send(c, b"Subject: two\r\n\r\nbody\r\n",
                 rcpts=("a@localhost", "b@localhost"))
    name, value = fields(hdr.message(queue_id_of(r))["body"])[0]
    assert name == "received"
    # One Received header for the message, and it must not pretend the
    # message was for only one of the recipients.
    assert "for <a@localhost>" not in value or "b@localhost" in value
    assert [n for n, _ in fields(hdr.message(queue_id_of(r))["body"])
            ].count("received") == 1


def test_client_received_headers_kept_below_ours(hdr):
    raw = (b"Received: from earlier.example by relay.example; "
           b"Mon, 1 Jan 2024 00:00:00 +0000\r\n"
           b"Subject: trace\r\n\r\nbody\r\n")
    with hdr.client() as c:
        r = send(c, raw)
    body = hdr.message(queue_id_of(r))["body"]
    assert body.endswith(raw)
    received = [v for n, v in fields(body) if n == "received"]
    assert len(received) == 2
    assert received[1].startswith("from earlier.example")


FORGED = (
    b"X-Sluice-Organization-AuthAs: Internal\r\n"
    b"Subject: keep me\r\n"
    b"x-sluice-organization-authmechanism: BasicAuth\r\n"
    b"X-SLUICE-ORGANIZATION-AuthDomain: evil.example\r\n"
    b"\tcontinued-evil-line\r\n"
    b"X-Keep-1: one\r\n"
    b"X-Sluice-Organization-Custom: folded\r\n"
    b"  more-folded-evil\r\n"
    b"\t and-more-evil\r\n"
    b"X-Sluice-Organizational: not ours, kept\r\n"
    b"X-Sluice-Organization-AuthAs:Partner\r\n"
    b"X-Keep-2: two\r\n"
    b"  folded keep\r\n"
    b"\r\n"
    b"X-Sluice-Organization-AuthAs: in the body, kept\r\n"
)


def test_forged_organization_headers_removed(hdr):
    with hdr.client() as c:
        r = send(c, FORGED)
    body = hdr.message(queue_id_of(r))["body"]
    f = fields(body)
    org = [(n, v) for n, v in f if n.startswith("x-sluice-organization-")]
    assert sorted(org) == [("x-sluice-organization-authas", "Anonymous"),
                           ("x-sluice-organization-authmechanism", "None")], \
        org
    head = body.split(b"\r\n\r\n", 1)[0]
    for gone in (b"Internal", b"BasicAuth", b"evil", b"Partner"):
        assert gone not in head, head
    # Everything else is kept, byte for byte and in order.
    expected_rest = (b"Subject: keep me\r\n"
                     b"X-Keep-1: one\r\n"
                     b"X-Sluice-Organizational: not ours, kept\r\n"
                     b"X-Keep-2: two\r\n"
                     b"  folded keep\r\n"
                     b"\r\n"
                     b"X-Sluice-Organization-AuthAs: in the body, kept\r\n")
    assert body.endswith(expected_rest), body


def test_organization_headers_added_once(hdr):
    with hdr.client() as c:
        r = send(c, b"Subject: plain\r\n\r\nbody\r\n")
    f = fields(hdr.message(queue_id_of(r))["body"])
    assert [v for n, v in f if n == "x-sluice-organization-authas"] == \
        ["Anonymous"]
    assert [v for n, v in f if n == "x-sluice-organization-authmechanism"] \
        == ["None"]
    assert not [n for n, v in f if n == "x-sluice-organization-authdomain"]


def test_forged_headers_removed_with_bdat(hdr):
    # The chunk boundary falls inside a forged continuation line.
    cut = FORGED.index(b"continued-evil") + 5
    chunks = [FORGED[:cut], FORGED[cut:]]
    with hdr.client() as c:
        c.cmd("EHLO client.example").check(250)
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
        c.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
        c.send(b"BDAT %d\r\n" % len(chunks[0]) + chunks[0])
        c.reply().check(250, "2.0.0")
        c.send(b"BDAT %d LAST\r\n" % len(chunks[1]) + chunks[1])
        r = c.reply().check(250, "2.6.0")
    head = hdr.message(queue_id_of(r))["body"].split(b"\r\n\r\n", 1)[0]
    for gone in (b"Internal", b"BasicAuth", b"evil", b"Partner"):
        assert gone not in head, head
    assert b"X-Keep-2: two\r\n  folded keep" in head


CONTINUATION = (b" Internal; X-Sluice-Organization-AuthAs=Internal\r\n"
                b"Subject: continued\r\n\r\nbody\r\n")


@pytest.mark.parametrize("how", ["DATA", "BDAT"])
def test_content_starting_with_continuation_refused(hdr, how):
    """A first content line that starts with white space would continue
    the last header Sluice prepends (issue 18.1): the message is refused
    with 550 5.6.0 and nothing is stored; the session goes on."""
    before = len(hdr.messages())
    with hdr.client() as c:
        c.cmd("EHLO client.example").check(250)
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
        c.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
        if how == "DATA":
            c.cmd("DATA").check(354)
            c.send(CONTINUATION + b".\r\n")
        else:
            c.send(b"BDAT %d LAST\r\n" % len(CONTINUATION) + CONTINUATION)
        c.reply().check(550, "5.6.0", "continuation")
        r = send(c, b"Subject: after\r\n\r\nbody\r\n")
    assert len(hdr.messages()) == before + 1
    f = fields(hdr.message(queue_id_of(r))["body"])
    assert [v for n, v in f if n == "x-sluice-organization-authmechanism"] \
        == ["None"]


# --- the client's name in Received (issue 10.23) -----------------------------

PTR_ZONES = ["client.test", "127.in-addr.arpa"]
PTR_RECORDS = [
    # confirmed: the name's address is the client's
    "131.0.0.127.in-addr.arpa. PTR mail.client.test.",
    "mail.client.test. A 127.0.0.131",
    # not confirmed: the name points elsewhere
    "132.0.0.127.in-addr.arpa. PTR liar.client.test.",
    "liar.client.test. A 127.0.0.99",
    # two names, only the second one confirms
    "134.0.0.127.in-addr.arpa. PTR other.client.test.",
    "134.0.0.127.in-addr.arpa. PTR good.client.test.",
    "other.client.test. A 127.0.0.98",
    "good.client.test. A 127.0.0.134",
    # a name that is no host name
    "135.0.0.127.in-addr.arpa. PTR bad_name.client.test.",
    "bad_name.client.test. A 127.0.0.135",
]


@pytest.fixture(scope="module")
def ptr(tmp_path_factory):
    with Unbound(zones=PTR_ZONES, records=PTR_RECORDS) as dns, \
            running(tmp_path_factory.mktemp("ptr"),
                    transport={"Resolver": dns.spec}) as s:
        yield s


def reverse_row(s, me, timeout=10.0):
    """The session's "reverse DNS" row: the look-up started at connect is
    done (a test's synchronisation point, not a delay of the session)."""
    rows = eventually(
        lambda: [x for x in s.protolog()[1] if len(x) > 8 and x[5] == me
                 and x[6] == "*" and x[7].startswith("reverse DNS")],
        timeout, f"a reverse DNS row for {me}")
    return rows[0][7]


def received_from(s, src, hello="EHLO client.example", wait=True):
    with Client(s.port, source=src) as c:
        if wait:
            reverse_row(s, f"{src}:{c.local_port}")
        r = send(c, b"Subject: ptr\r\n\r\nbody\r\n", hello=hello)
    name, value = fields(s.message(queue_id_of(r))["body"])[0]
    assert name == "received"
    return value.split(" by ", 1)[0]


@pytest.mark.parametrize("src,want", [
    ("127.0.0.131", "from client.example (mail.client.test [127.0.0.131])"),
    ("127.0.0.132", "from client.example ([127.0.0.132])"),
    ("127.0.0.133", "from client.example ([127.0.0.133])"),
    ("127.0.0.134", "from client.example (good.client.test [127.0.0.134])"),
    ("127.0.0.135", "from client.example ([127.0.0.135])"),
], ids=["confirmed", "not-confirmed", "no-ptr", "second-name", "bad-name"])
def test_received_has_the_verified_reverse_name(ptr, src, want):
    """RFC 5321 4.4: from HELO (NAME [IP]) with a forward-confirmed PTR
    name, or from HELO ([IP]); never the address in the name's place."""
    assert received_from(ptr, src) == want


def test_received_sanitises_the_helo(ptr):
    got = received_from(ptr, "127.0.0.131",
                        hello=b"EHLO h\xc3\xa9lo(x);y.example")
    assert got == "from h??lo?x??y.example (mail.client.test [127.0.0.131])", got


def test_a_refused_ehlo_keeps_the_name_given_before(hdr):
    """A second EHLO that is refused (501) changes nothing: Received names
    the first one whole, not overwritten by the refused one's first
    characters (the name was parsed in place before)."""
    with hdr.client() as c:
        c.cmd("EHLO long.client.example").check(250)
        c.cmd("EHLO ab cd").check(501, "5.5.4")
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
        c.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(b"Subject: rehlo\r\n\r\nbody\r\n.\r\n")
        r = c.reply().check(250, "2.6.0")
    name, value = fields(hdr.message(queue_id_of(r))["body"])[0]
    assert name == "received"
    assert value.startswith("from long.client.example ("), value


def test_no_reply_waits_for_a_dead_dns_server(tmp_path):
    """A Resolver that never answers: the session is served at once, and
    Received has no name (the look-up runs beside the session)."""
    with running(tmp_path,
                 transport={"Resolver": f"127.0.0.1@{free_port()}"}) as s:
        got = received_from(s, "127.0.0.136", wait=False)
    assert got == "from client.example ([127.0.0.136])", got
