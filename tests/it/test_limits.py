"""Every input limit is bounded and answered with a clear reply:
command and text line lengths, message and header size, recipients, hop
count, connection counts, timeouts, protocol errors and the tarpit."""
import socket
import threading
import time

import pytest

from harness import (ConnectionClosed, eventually, make_message, queue_id_of,
                     sluice_fixture)

SENDER = "a@sender.example"


limits = sluice_fixture(
    "limits", conn={"MaxMessageSize": 20000, "MaxHeaderSize": 2000,
                    "MaxHopCount": 60, "MaxRecipientsPerMessage": 200})


def open_transaction(c, rcpts=("user@localhost",), mail_args=""):
    c.ehlo()
    c.cmd(f"MAIL FROM:<{SENDER}>{mail_args}").check(250, "2.1.0")
    for r in rcpts:
        c.cmd(f"RCPT TO:<{r}>").check(250, "2.1.5")


def data(c, raw):
    """DATA with raw (already dot-stuffed, CRLF-ended) content."""
    c.cmd("DATA").check(354)
    c.send(raw + b".\r\n")
    return c.reply()


# --- line lengths -------------------------------------------------------------


@pytest.mark.parametrize("total,ok", [
    (511, True), (512, True), (513, False), (1000, False), (70000, False)])
def test_command_line_limit(limits, total, ok):
    line = b"NOOP " + b"x" * (total - 7) + b"\r\n"
    assert len(line) == total
    with limits.client() as c:
        c.ehlo()
        c.send(line)
        r = c.reply()
        if ok:
            r.check(250, "2.0.0")
        else:
            r.check(500, "5.5.2", "too long")
        # The rest of the long line was skipped, the session goes on.
        c.cmd("NOOP").check(250, "2.0.0")
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")


def test_long_mail_line_then_transaction(limits):
    with limits.client() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<" + b"a" * 600 + b"@sender.example>\r\n")
        c.reply().check(500, "5.5.2")
        r = c.send_message(SENDER, ["user@localhost"],
                           make_message("after-long-line"), ehlo=False)
        r.check(250, "2.6.0")


@pytest.mark.parametrize("total", [1000, 1001, 5000, 19000])
@pytest.mark.parametrize("how", ["DATA", "BDAT"])
def test_long_text_lines_accepted(limits, total, how):
    """Lines over RFC 5322's 998 octets are accepted within the size
    limit, as Postfix and Exim accept them (issue 10.16), and stored as
    sent; a line over the size limit is refused for its size."""
    subject = f"textline-{how}-{total}"
    raw = (f"Subject: {subject}\r\n\r\n".encode() +
           b"y" * (total - 2) + b"\r\nafter\r\n")
    with limits.client() as c:
        open_transaction(c)
        if how == "DATA":
            c.cmd("DATA").check(354)
            c.send(raw)
            # Nothing is answered before the end of the message.
            assert c.no_reply(0.3)
            c.send(b".\r\n")
        else:
            c.send(b"BDAT %d LAST\r\n" % len(raw) + raw)
        r = c.reply().check(250, "2.6.0")
        # The session continues with a new transaction.
        c.send_message(SENDER, ["user@localhost"],
                       make_message(subject + "-next"), ehlo=False
                       ).check(250, "2.6.0")
    assert limits.message(queue_id_of(r))["body"].endswith(raw)


def test_line_over_the_size_limit(limits):
    with limits.client() as c:
        open_transaction(c)
        r = data(c, b"Subject: huge-line\r\n\r\n" + b"h" * 30000 + b"\r\n")
        r.check(552, "5.3.4")
        c.send_message(SENDER, ["user@localhost"],
                       make_message("huge-line-next"), ehlo=False
                       ).check(250, "2.6.0")
    assert not any(b"Subject: huge-line\r\n" in b for b in limits.bodies())


# --- junk commands --------------------------------------------------------


JUNK = ["NOOP", "RSET", "VRFY user", "HELP", "EHLO client.example",
        "HELO client.example"]


def test_junk_command_limit_one_by_one(limits):
    """Postfix's smtpd_junk_command_limit (100): commands that change
    nothing, answered one by one, end the session at the 101st with
    421 4.7.0 (issue 10.2)."""
    with limits.client() as c:
        for i in range(100):
            c.cmd(JUNK[i % len(JUNK)]).check(
                214 if JUNK[i % len(JUNK)] == "HELP" else
                252 if JUNK[i % len(JUNK)].startswith("VRFY") else 250)
        c.cmd("NOOP").check(421, "4.7.0")
        assert c.closed()


def test_junk_command_limit_pipelined(limits):
    """RSET may be pipelined; 150 of them in one write get 100 answers,
    then 421 and the connection closes: nothing is read beyond."""
    with limits.client() as c:
        c.ehlo()
        c.send("RSET\r\n" * 150)
        for r in c.replies(99):
            r.check(250, "2.0.0")
        c.reply().check(421, "4.7.0")
        assert c.closed()


def test_junk_count_restarts_with_each_message(limits):
    """A long connection that sends RSET and NOOP around its messages is
    sending mail: the count starts again with every accepted message."""
    with limits.client() as c:
        c.ehlo()
        for k in range(3):
            for _ in range(90):
                c.cmd("RSET").check(250)
            c.send_message(SENDER, ["user@localhost"],
                           make_message(f"junk-reset-{k}"), ehlo=False
                           ).check(250, "2.6.0")
        c.cmd("NOOP").check(250)
        c.quit()


# --- sizes -----------------------------------------------------------------------


@pytest.mark.parametrize("size,code,enh", [
    (1, 250, "2.1.0"), (20000, 250, "2.1.0"), (20001, 552, "5.3.4"),
    (10 ** 12, 552, "5.3.4")])
def test_declared_size(limits, size, code, enh):
    with limits.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}> SIZE={size}").check(code, enh)
        c.cmd("NOOP").check(250)


@pytest.mark.parametrize("nbytes,ok", [(15000, True), (30000, False),
                                       (200000, False)])
def test_actual_message_size(limits, nbytes, ok):
    subject = f"size-{nbytes}"
    head = f"Subject: {subject}\r\n\r\n".encode()
    line = b"z" * 98 + b"\r\n"
    raw = head + line * ((nbytes - len(head)) // len(line))
    with limits.client() as c:
        open_transaction(c)
        r = data(c, raw)
        if ok:
            r.check(250, "2.6.0")
        else:
            r.check(552, "5.3.4")
        c.send_message(SENDER, ["user@localhost"],
                       make_message(subject + "-next"), ehlo=False
                       ).check(250, "2.6.0")
    stored = [b for b in limits.bodies()
              if f"Subject: {subject}\r\n".encode() in b]
    assert len(stored) == (1 if ok else 0)


@pytest.mark.parametrize("header_bytes,ok", [(1500, True), (3000, False)])
def test_max_header_size(limits, header_bytes, ok):
    subject = f"header-{header_bytes}"
    first = f"Subject: {subject}\r\n".encode()
    field = b"X-Filler: " + b"f" * 88 + b"\r\n"  # 100 bytes
    n = (header_bytes - len(first)) // len(field)
    raw = first + field * n + b"\r\nbody\r\n"
    with limits.client() as c:
        open_transaction(c)
        r = data(c, raw)
        if ok:
            r.check(250, "2.6.0")
        else:
            r.check(552, "5.3.4")


def test_header_bomb_of_folded_lines(limits):
    raw = b"Subject: bomb\r\nX-Bomb: start\r\n" + b" folded\r\n" * 2000 + \
        b"\r\nbody\r\n"
    with limits.client() as c:
        open_transaction(c)
        data(c, raw).check(552, "5.3.4")
        c.cmd("NOOP").check(250)


hops_sluice = sluice_fixture(
    "hops_sluice", conn={"MaxHopCount": 60, "MaxHeaderSize": "256KB"})


@pytest.mark.parametrize("hops,ok", [(59, True), (60, True), (61, False),
                                     (500, False)])
def test_max_hop_count(hops_sluice, hops, ok):
    received = b"".join(
        b"Received: from h%d.example by h%d.example; "
        b"Mon, 1 Jan 2024 00:00:00 +0000\r\n" % (i, i + 1)
        for i in range(hops))
    subject = b"Subject: hops-%d\r\n" % hops
    raw = received + subject + b"\r\nbody\r\n"
    with hops_sluice.client() as c:
        open_transaction(c)
        r = data(c, raw)
        if ok:
            r.check(250, "2.6.0")
        else:
            r.check(554, "5.4.14")
        c.cmd("NOOP").check(250)
    stored = [b for b in hops_sluice.bodies() if subject in b]
    assert len(stored) == (1 if ok else 0)


# --- recipients -------------------------------------------------------------------


def test_max_recipients_sequential(limits):
    with limits.client() as c:
        open_transaction(c, rcpts=[f"r{i}@localhost" for i in range(200)])
        c.cmd("RCPT TO:<r200@localhost>").check(452, "4.5.3")
        c.cmd("RCPT TO:<r201@localhost>").check(452, "4.5.3")
        r = data(c, make_message("rcpt-200").encode())
        r.check(250, "2.6.0")
    m = limits.message(queue_id_of(r))
    assert len(m["rcpts"]) == 200
    assert {x["addr"] for x in m["rcpts"]} == \
        {f"r{i}@localhost" for i in range(200)}


def pipelined_recipients(c, n):
    c.ehlo()
    c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
    batch = b"".join(b"RCPT TO:<p%d@localhost>\r\n" % i for i in range(n))
    # Read the replies while writing so neither side's buffers fill up.
    t = threading.Thread(target=c.send, args=(batch,))
    t.start()
    replies = c.replies(n, timeout=20)
    t.join(20)
    return replies


@pytest.mark.timeout_s(90)
def test_1500_pipelined_recipients_over_limit(limits):
    with limits.client() as c:
        replies = pipelined_recipients(c, 1500)
        for r in replies[:200]:
            r.check(250, "2.1.5")
        for r in replies[200:]:
            r.check(452, "4.5.3")
        r = data(c, make_message("rcpt-1500-over").encode())
        r.check(250, "2.6.0")
    assert len(limits.message(queue_id_of(r))["rcpts"]) == 200


@pytest.mark.timeout_s(90)
def test_1500_pipelined_recipients_within_limit(sluice_factory):
    s = sluice_factory(conn={"MaxRecipientsPerMessage": 2000})
    with s.client() as c:
        replies = pipelined_recipients(c, 1500)
        for r in replies:
            r.check(250, "2.1.5")
        r = data(c, make_message("rcpt-1500").encode())
        r.check(250, "2.6.0")
    m = s.message(queue_id_of(r))
    assert len(m["rcpts"]) == 1500
    assert len({x["addr"] for x in m["rcpts"]}) == 1500


# --- connections ------------------------------------------------------------------


def wait_for_greeting(s, code, source=None, timeout=5.0):
    """Connect until the greeting has the code (slots free up
    asynchronously after a client leaves)."""
    last = []

    def greeted():
        if last:
            last.pop().close()
        last.append(s.client(source=source))
        return last[-1].greeting.code == code

    eventually(greeted, timeout, step=0.1)
    return last[-1]


def test_max_inbound_connection(sluice_factory):
    s = sluice_factory(conn={"MaxInboundConnection": 3})
    held = [s.client() for _ in range(3)]
    try:
        for c in held:
            c.greeting.check(220)
        with s.client() as extra:
            extra.greeting.check(421, "4.3.2")
            assert extra.closed()
        # Existing sessions are unaffected.
        held[0].cmd("NOOP").check(250)
        # A slot freed by a leaving client is usable again.
        held.pop().quit()
        c = wait_for_greeting(s, 220)
        c.greeting.check(220)
        held.append(c)
    finally:
        for c in held:
            c.close()


def test_max_inbound_connection_per_source(sluice_factory):
    s = sluice_factory(conn={"MaxInboundConnectionPerSource": 2})
    held = []
    try:
        for src in ("127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.4",
                    "127.0.0.4"):
            c = s.client(source=src)
            held.append(c)
            c.greeting.check(220)
        for src in ("127.0.0.2", "127.0.0.4"):
            with s.client(source=src) as c:
                c.greeting.check(421, "4.3.2")
                assert c.closed()
        # Other sources are not affected.
        with s.client(source="127.0.0.3") as c:
            c.greeting.check(220)
            c.quit()
        with s.client(source="127.0.0.5") as c:
            c.greeting.check(220)
            c.quit()
        held.pop(0).quit()  # one of 127.0.0.2
        c = wait_for_greeting(s, 220, source="127.0.0.2")
        held.append(c)
        c.greeting.check(220)
    finally:
        for c in held:
            c.close()


def test_connection_flood_from_several_sources(sluice_factory):
    s = sluice_factory(conn={"MaxInboundConnectionPerSource": 5,
                             "MaxInboundConnection": 12})
    held, codes = [], []
    try:
        for i in range(4):
            for _ in range(5):
                c = s.client(source=f"127.0.2.{i + 1}")
                held.append(c)
                codes.append(c.greeting.code)
        assert codes.count(220) == 12 and codes.count(421) == 8, codes
        for c in held:
            if c.greeting.code == 421:
                c.greeting.check(421, "4.3.2")
                assert c.closed()
        for c in held:
            if c.greeting.code == 220:
                c.cmd("NOOP").check(250)
    finally:
        for c in held:
            c.close()


# --- timeouts ---------------------------------------------------------------------


def expect_timeout_close(c, low, high, start):
    r = c.reply(timeout=high + 2)
    elapsed = time.monotonic() - start
    r.check(421, "4.4.2")
    assert c.closed()
    assert low <= elapsed <= high, f"421 after {elapsed:.1f}s"


def test_inactivity_timeout_idle_command(sluice_factory):
    s = sluice_factory(conn={"ConnectionInactivityTimeout": "2s"})
    with s.client() as c:
        c.ehlo()
        start = time.monotonic()
        expect_timeout_close(c, 1.5, 4.5, start)


def test_inactivity_timeout_idle_in_data(sluice_factory):
    s = sluice_factory(conn={"ConnectionInactivityTimeout": "2s"})
    with s.client() as c:
        open_transaction(c)
        c.cmd("DATA").check(354)
        start = time.monotonic()
        expect_timeout_close(c, 1.5, 5.0, start)
    assert s.messages() == []


def test_trickled_command_does_not_extend_inactivity(sluice_factory):
    s = sluice_factory(conn={"ConnectionInactivityTimeout": "2s"})
    with s.client() as c:
        c.ehlo()
        start = time.monotonic()
        c.send(b"NOOP ")
        got = None
        while time.monotonic() - start < 8:
            try:
                c.send(b"x")
            except OSError:
                break
            try:
                got = c.reply(timeout=0.4)
                break
            except socket.timeout:
                continue
            except ConnectionClosed:
                break
        assert got is not None, "closed without a 421"
        got.check(421, "4.4.2")
        assert time.monotonic() - start <= 4.5


def test_data_below_min_data_rate(sluice_factory):
    # Content must arrive at MinDataRate on average on top of the
    # inactivity allowance: 100 bytes/s against 1 KB/s is cut off.
    s = sluice_factory(conn={"ConnectionInactivityTimeout": "2s",
                             "MinDataRate": "1KB"})
    with s.client() as c:
        open_transaction(c)
        c.cmd("DATA").check(354)
        start = time.monotonic()
        got = None
        while time.monotonic() - start < 8:
            try:
                c.send(b"s" * 48 + b"\r\n")
            except OSError:
                break
            try:
                got = c.reply(timeout=0.5)
                break
            except socket.timeout:
                continue
            except ConnectionClosed:
                break
        elapsed = time.monotonic() - start
        assert got is not None, "closed without a 421"
        got.check(421, "4.4.2")
        assert 1.8 <= elapsed <= 4.5, f"421 after {elapsed:.1f}s"
    assert s.messages() == []


def test_fast_data_is_not_cut_by_inactivity(sluice_factory):
    s = sluice_factory(conn={"ConnectionInactivityTimeout": "2s",
                             "MinDataRate": "1KB"})
    line = b"f" * 998 + b"\r\n"
    with s.client() as c:
        open_transaction(c)
        c.cmd("DATA").check(354)
        start = time.monotonic()
        # 3 s of content at about 20 KB/s: longer than the inactivity
        # timeout, far above the minimum rate.
        while time.monotonic() - start < 3:
            c.send(line * 10)
            time.sleep(0.5)
        c.send(b".\r\n")
        c.reply().check(250, "2.6.0")


@pytest.mark.timeout_s(30)
def test_slow_client_one_byte_per_second(sluice_factory):
    s = sluice_factory(conn={"ConnectionTimeout": "5s",
                             "ConnectionInactivityTimeout": "30s"})
    with s.client() as c:
        start = time.monotonic() - 0.1  # the greeting was already read
        stream = b"NOOP\r\n" * 20
        got = []
        for b in stream:
            if time.monotonic() - start > 12:
                break
            try:
                c.send(bytes([b]))
            except OSError:
                break
            try:
                while True:
                    got.append(c.reply(timeout=1.0))
                    if got[-1].code != 250:
                        break
            except socket.timeout:
                pass
            except ConnectionClosed:
                break
            if got and got[-1].code != 250:
                break
        elapsed = time.monotonic() - start
        assert got and got[-1].code == 421, got
        got[-1].check(421, "4.4.2")
        assert c.closed()
        assert 4.5 <= elapsed <= 8.5, f"closed after {elapsed:.1f}s"


# --- errors and tarpit ------------------------------------------------------------


def test_max_protocol_errors(sluice_factory):
    s = sluice_factory(conn={"MaxProtocolErrors": 3})
    with s.client() as c:
        c.ehlo()
        c.cmd("BOGUS1").check(500, "5.3.3")
        c.cmd("NOOP").check(250)   # good commands do not count
        c.cmd("BOGUS2").check(500, "5.3.3")
        c.cmd("NOOP").check(250)
        c.send(b"BOGUS3\r\n")
        replies = []
        while True:
            replies.append(c.reply())
            if replies[-1].code == 421 or len(replies) > 2:
                break
        replies[-1].check(421, "4.7.0", "Too many errors")
        assert len(replies) <= 2 and replies[0].code in (500, 421), replies
        assert c.closed()


def test_protocol_errors_below_limit_keep_session(sluice_factory):
    s = sluice_factory(conn={"MaxProtocolErrors": 5})
    with s.client() as c:
        c.ehlo()
        for i in range(4):
            c.cmd(f"BOGUS{i}").check(500)
        c.send_message(SENDER, ["user@localhost"], make_message("errs"),
                       ehlo=False).check(250, "2.6.0")


tarpit = sluice_fixture("tarpit", conn={"TarpitInterval": "1s"})


@pytest.mark.parametrize("line,code", [
    ("BOGUS", 500), ("RCPT TO:<x@elsewhere.example>", 550),
    ("NOOP", 250), ("RCPT TO:<user@localhost>", 250)])
def test_tarpit(tarpit, line, code):
    with tarpit.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250)
        start = time.monotonic()
        r = c.cmd(line)
        elapsed = time.monotonic() - start
        assert r.code == code, r
        if code >= 400:
            assert elapsed >= 0.9, f"error reply after {elapsed:.2f}s"
            assert elapsed < 3.0
        else:
            assert elapsed < 0.5, f"good reply after {elapsed:.2f}s"
        c.quit()


def test_tarpit_zero_is_fast(limits):
    with limits.client() as c:
        c.ehlo()
        start = time.monotonic()
        c.cmd("BOGUS").check(500)
        assert time.monotonic() - start < 0.5
