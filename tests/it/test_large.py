"""Large messages in bounded memory (issue 12): content streams to a body
file as it arrives and back out in pieces when it is relayed, by BDAT
chunks or DATA, with lines over 998 octets folded on the wire as Postfix
folds them (CRLF SP), a refused chunk ending the transaction, and 20
messages of 50 MB received and relayed at once while sluiced's peak
memory (VmHWM) stays far below what they weigh together."""
import hashlib
import os
import re
import socket
import subprocess
import threading
import time

import pytest

from harness import Client, dot_stuff, join_threads, make_message, running
from peers.fakesmtp import FakeSmtp

RELAY = {"PermissionGroups": "ExchangeServers",
         "AuthMechanism": "ExternalAuthoritative",
         "MaxMessageSize": "60MB",
         "ConnectionTimeout": "10m",
         "ConnectionInactivityTimeout": "2m",
         "ProtocolLoggingLevel": "None"}
CHUNKING = ("PIPELINING", "CHUNKING", "8BITMIME", "ENHANCEDSTATUSCODES")
NO_CHUNKING = ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES")


def smarthost(port):
    return f"""
[SendConnector Out]
AddressSpaces = *
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:{port}
Fqdn = out.sluice.test
ProtocolLoggingLevel = None
"""


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def body_lines(n, width):
    """n numbered lines of width octets (CRLF included)."""
    return b"".join((b"%07d " % i).ljust(width - 2, b"z") + b"\r\n"
                    for i in range(n))


def relay_one(tmp_path, caps, msg, **fake):
    """Relay msg through sluiced to a fake next hop; the message it got,
    and the daemon (stopped)."""
    with FakeSmtp(capabilities=caps, **fake) as mx, \
            running(tmp_path, conn=RELAY,
                    raw_extra=smarthost(mx.port)) as s:
        with Client(s.port, timeout=60) as c:
            c.send_message("alice@example.test", ["bob@remote.test"],
                           msg).check(250, "2.6.0")
            c.quit()
        (m,) = mx.wait_messages(1, timeout=60)
        assert s.messages()[0]["body_file"] != "", "not in a body file"
        return m, mx


def resident_bytes(path):
    """How much of a file is in the page cache (util-linux fincore)."""
    out = subprocess.run(["fincore", "--bytes", "--noheadings",
                          "--output", "RES", str(path)],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


@pytest.mark.timeout_s(120)
def test_relayed_body_leaves_the_page_cache(tmp_path):
    # A delivery drops what it has read of a body file from the page
    # cache: the file stays (safety net), its pages are free for the next
    # bodies.  Before, every relayed body stayed cached and new bodies
    # were written into fresh pages (docs/design.md, "Message content on
    # disk").
    body = body_lines(60000, 78)  # 4.7 MB
    msg = make_message("drop", "").encode() + body
    with FakeSmtp(capabilities=NO_CHUNKING) as mx, \
            running(tmp_path, conn=RELAY,
                    raw_extra=smarthost(mx.port)) as s:
        with Client(s.port, timeout=60) as c:
            c.send_message("alice@example.test", ["bob@remote.test"],
                           msg).check(250, "2.6.0")
            c.quit()
        (name,) = s.body_files()
        path = s.body_dir / name
        size = path.stat().st_size
        assert size > 4_000_000, size
        (m,) = mx.wait_messages(1, timeout=60)
        assert m.data.endswith(body)
        wait_for(lambda: resident_bytes(path) == 0, 20,
                 f"the relayed body to leave the page cache "
                 f"({resident_bytes(path)} of {size} bytes cached)")
        assert s.body_files() == [name]  # kept: the safety net


@pytest.mark.timeout_s(120)
def test_bdat_chunks_stream_a_large_message(tmp_path):
    body = body_lines(60000, 78)  # 4.7 MB
    msg = make_message("chunks", "").encode() + body
    m, mx = relay_one(tmp_path, CHUNKING, msg)
    assert m.via == "BDAT"
    # piece by piece, never the whole message as one chunk
    assert len(m.chunks) > 20, m.chunks
    assert max(m.chunks) <= 200 * 1024, max(m.chunks)
    assert m.data.endswith(body)
    assert not m.bare_line_endings


@pytest.mark.timeout_s(120)
def test_data_streams_a_large_message(tmp_path):
    body = b"".join(b"." * (i % 3) + b"line %d\r\n" % i
                    for i in range(200000))  # dots to stuff, 2.1 MB
    msg = make_message("data", "").encode() + body
    m, mx = relay_one(tmp_path, NO_CHUNKING, msg)
    assert m.via == "DATA"
    assert m.data.endswith(body)  # unstuffed by the fake: as stored
    assert not m.bare_line_endings


@pytest.mark.timeout_s(120)
@pytest.mark.parametrize("caps", [CHUNKING, NO_CHUNKING],
                         ids=["bdat", "data"])
def test_long_lines_folded_as_postfix_does(tmp_path, caps):
    """Stored lines may be longer than 998 octets; on the wire none is:
    each is folded with CRLF SP at 998 (Postfix's smtp_line_length_limit),
    in the header as in the body."""
    long_header = "X-Long: " + "h" * 2500
    body = (b"short\r\n" + b"b" * 998 + b"\r\n" + b"c" * 999 + b"\r\n" +
            b"d" * 5000 + b"\r\n") + body_lines(3000, 70)
    msg = make_message("long", "", long_header + "\r\n").encode() + body
    m, mx = relay_one(tmp_path, caps, msg)
    wire = m.data
    assert max(len(ln) for ln in wire.split(b"\r\n")) <= 998
    unfolded = wire.replace(b"\r\n ", b"")
    assert unfolded.endswith(body)
    assert ("\r\n" + long_header + "\r\n").encode() in unfolded
    assert b"b" * 998 + b"\r\n" in wire  # exactly 998: not folded
    assert b"c" * 998 + b"\r\n c\r\n" in wire


@pytest.mark.timeout_s(120)
def test_refused_chunk_ends_the_transaction(tmp_path):
    """A next hop that refuses the third BDAT chunk: no chunk follows
    beyond those already on their way, the message is not ended (no BDAT
    LAST), the recipient is deferred with the chunk's reply and the
    transaction is reset."""
    body = body_lines(60000, 78)
    with FakeSmtp(capabilities=CHUNKING,
                  replies={"BDAT": ["250 2.0.0 ok", "250 2.0.0 ok",
                                    "452 4.3.1 out of room", "250 2.0.0 ok"]}
                  ) as mx, \
            running(tmp_path, conn=RELAY,
                    transport={"TransientFailureRetryInterval": "1h"},
                    raw_extra=smarthost(mx.port)) as s:
        with Client(s.port, timeout=60) as c:
            c.send_message("alice@example.test", ["bob@remote.test"],
                           make_message("first", "").encode() + body
                           ).check(250)
            c.quit()
        wait_for(lambda: any(r["attempts"] > 0 for r in s.recipients()),
                 60, "the first attempt")
        (r,) = s.recipients()
        assert r["status"] == 0 and "452 4.3.1 out of room" in \
            r["last_error"], r
        sess = mx.sessions[0]
        verbs = sess.verbs()
        first_rset = verbs.index("RSET")
        # chunks after the refused one: at most the window, then RSET
        assert verbs[:first_rset].count("BDAT") <= 3 + 8, verbs
        assert "LAST" not in " ".join(
            ln.text for ln in sess.commands[:first_rset]
            if ln.verb == "BDAT"), "the refused message was still ended"
        assert mx.messages == [] or not mx.messages[0].accepted


@pytest.mark.timeout_s(600)
def test_twenty_50mb_messages_relayed_in_bounded_memory(tmp_path):
    """20 clients send a 50 MB message each at once; sluiced stores them
    as they arrive and relays them, each intact (SHA-256 of the body at
    the next hop), while its peak resident memory stays under 200 MB:
    together the messages weigh 1000 MB, and holding them whole (as
    before issue 12) needs more than that.  The bound is for the ASan
    build, whose allocator keeps freed memory in quarantine (limited here
    to 32 MB so that what is measured is sluiced's own use) and adds
    redzones and shadow memory: measured 129 MB peak (22 MB idle); the
    optimised build peaks at 30 MB (10 MB idle) in the same test."""
    n, size = 20, 50 * 1024 * 1024
    block = body_lines(13000, 80)  # ~1 MB, numbered lines
    blocks = size // len(block)
    digests = {}

    with FakeSmtp(capabilities=CHUNKING, keep_data="digest",
                  max_sessions=n + 4) as mx, \
            running(tmp_path, conn=RELAY, raw_extra=smarthost(mx.port),
                    transport={"MaxSendSize": "100MB"},
                    env={"ASAN_OPTIONS": "abort_on_error=0:"
                                         "quarantine_size_mb=32"}) as s:
        def send(i):
            h = hashlib.sha256()
            with Client(s.port, timeout=120) as c:
                c.ehlo()
                c.cmd("MAIL FROM:<alice@example.test>").check(250)
                c.cmd(f"RCPT TO:<bob{i}@remote.test>").check(250)
                c.cmd("DATA").check(354)
                c.send(make_message(f"big-{i}", "").encode())
                for b in range(blocks):
                    piece = b"BLOCK %02d %04d\r\n" % (i, b) + block
                    h.update(piece)
                    c.send(piece)
                c.send(b".\r\n")
                c.reply(timeout=120).check(250, "2.6.0")
                c.quit()
            digests[f"bob{i}@remote.test"] = h.hexdigest()

        threads = [threading.Thread(target=send, args=(i,), daemon=True)
                   for i in range(n)]
        for t in threads:
            t.start()
        join_threads(threads, 400, "senders")
        assert len(digests) == n
        got = mx.wait_messages(n, timeout=300)
        hwm = 0
        with open(f"/proc/{s.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
        assert len(got) == n
        for m in got:
            (rcpt,) = m.rcpts
            assert m.body_digest == digests.pop(rcpt), f"{rcpt} damaged"
        assert digests == {}
        assert hwm < 200 * 1024 * 1024, \
            f"sluiced peaked at {hwm >> 20} MB for {n} x 50 MB"
