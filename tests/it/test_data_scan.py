"""DATA read in one pass (src/util/crlf_scan.c): the session finds the
next CRLF-dot and checks the lines before it at once, and content.c does
not check them again.  Whatever the writes' cuts (after a CR, between CRLF
and a dot, inside "..", inside the final CRLF.CRLF), a large body with
dot-started lines is stored exactly, unstuffed, in the body file and in
the row; a bare CR, bare LF or NUL deep in such a body, cut the same
ways, is still refused with 550 5.6.11, and nothing of it is queued."""
import pytest

from harness import queue_id_of, sluice_fixture

scan = sluice_fixture("scan")


def body_lines(n):
    """n lines of 78 octets, every 7th starting with a dot, some two."""
    out = []
    for i in range(n):
        text = b"%06d " % i + b"x" * 70
        if i % 7 == 3:
            text = b"." + text[1:]
        if i % 91 == 5:
            text = b".." + text[2:]
        out.append(text + b"\r\n")
    return b"".join(out)


def stuffed(body):
    """What the client sends for body: a dot added to each leading dot."""
    return b"".join(b"." + l if l.startswith(b".") else l
                    for l in body.split(b"\r\n")[:-1]
                    for l in [l + b"\r\n"])


def cuts(wire):
    """Write boundaries at the places that decide: after a CR, between
    CRLF and a dot, between the two dots of a stuffed line."""
    at = set()
    for i in range(1, len(wire)):
        if wire[i - 1:i] == b"\r" and i % 3 == 0:
            at.add(i)
        if wire[i - 2:i] == b"\r\n" and wire[i:i + 1] == b"." and i % 2:
            at.add(i)
        if wire[i - 1:i + 1] == b".." and i % 5 == 0:
            at.add(i + 0)
    at.update((len(wire) - 1, len(wire) - 2, len(wire) - 3, len(wire) - 4))
    return sorted(x for x in at if 0 < x < len(wire))


def send_cut(c, wire):
    last = 0
    for x in cuts(wire) + [len(wire)]:
        c.send(wire[last:x])
        last = x


def transaction(c):
    c.cmd("MAIL FROM:<sender@sender.example>").check(250, "2.1.0")
    c.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
    c.cmd("DATA").check(354)


@pytest.mark.parametrize("nlines", [40, 6000], ids=["inline", "bodyfile"])
def test_large_body_stored_exactly(scan, nlines):
    head = b"Subject: scan\r\n\r\n"
    body = body_lines(nlines)
    with scan.client() as c:
        c.ehlo()
        transaction(c)
        send_cut(c, head + stuffed(body) + b".\r\n")
        r = c.reply()
        r.check(250, "2.6.0")
        stored = scan.message(queue_id_of(r))["body"]
    assert stored.endswith(head + body)
    # the file holds most of it when the body is large (128 KB and more)
    assert (len(body) >= 128 * 1024) == bool(
        scan.message(queue_id_of(r)).get("body_file"))


@pytest.mark.parametrize("bad", [b"bare\rcr", b"bare\nlf", b"n\x00ul",
                                 b"end\r"],
                         ids=["CR", "LF", "NUL", "CR-CRLF"])
@pytest.mark.parametrize("where", [100, 3000], ids=["early", "deep"])
def test_bad_line_in_large_body_refused(scan, bad, where):
    before = len(scan.messages())
    lines = body_lines(4000).split(b"\r\n")
    # at the end of a line: "end\r" and its CRLF make CR CR LF
    lines[where] = lines[where][:-len(bad)] + bad
    body = b"\r\n".join(lines)
    with scan.client() as c:
        c.ehlo()
        transaction(c)
        send_cut(c, b"Subject: bad\r\n\r\n" + stuffed(body) + b".\r\n")
        c.reply().check(550, "5.6.11")
        c.cmd("NOOP").check(250)
    assert len(scan.messages()) == before
