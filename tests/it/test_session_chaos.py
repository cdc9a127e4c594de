"""Hostile clients at random: several connections at once, each a random
script of sensible commands and abuse (junk and overlong lines, NUL, bare
CR and LF, absurd or negative sizes, BDAT chunks that lie about their
length, pipelined bursts, STARTTLS followed by garbage, half a line and
then a hang-up) mixed with real transactions.  With a TLS connector, some
clients also complete STARTTLS and go on with their abuse inside TLS, where
the session reads through OpenSSL instead of the plain socket path.
Whatever arrives:
- every reply is a well-formed reply line, and every 4xx or 5xx one carries
  an enhanced status code;
- the daemon survives under ASan/UBSan and stops cleanly;
- every message that got its "250 2.6.0 <queue id>" is in the queue
  exactly once, whole (nothing accepted is ever lost).
Seeds are fixed, so a failure replays."""
import random
import re
import socket
import ssl
import time

import pytest

from harness import (Client, join_threads, make_message, running,
                     start_threads)
from test_tls import tls_conf

REPLY_LINE = re.compile(rb"^[2-5]\d\d[ -][\x20-\x7e]*$")
ENHANCED = re.compile(rb"^[45]\d\d[ -][45]\.\d{1,3}\.\d{1,3}( |$)")
QUEUED = re.compile(rb"^250 2\.6\.0 <([0-9A-F]+)>")
CONNECTIONS = 12  # per client thread
THREADS = 4
TLS = b"<a real STARTTLS handshake>"


def junk(rng, n):
    return bytes(rng.randrange(256) for _ in range(n))


def moves(rng, tag):
    """One random script: a list of byte strings, each sent on its own."""
    body = make_message(tag).encode() + b".\r\n"
    out = []
    for _ in range(rng.randint(1, 12)):
        kind = rng.randrange(23)
        if kind == 0:
            out.append(b"EHLO chaos.example\r\n")
        elif kind == 1:
            out.append(b"HELO chaos.example\r\n")
        elif kind == 2:
            out.append(b"MAIL FROM:<chaos@example.org>\r\n")
        elif kind == 3:
            out.append(b"RCPT TO:<user@localhost>\r\n")
        elif kind == 4:
            # A whole transaction in one pipelined write.
            out.append(b"RSET\r\nMAIL FROM:<chaos@example.org>\r\n"
                       b"RCPT TO:<user@localhost>\r\nDATA\r\n" + body)
        elif kind == 5:
            data = make_message(tag).encode()
            out.append(b"RSET\r\nMAIL FROM:<chaos@example.org>\r\n"
                       b"RCPT TO:<user@localhost>\r\n"
                       b"BDAT %d LAST\r\n" % len(data) + data)
        elif kind == 6:
            out.append(rng.choice([b"RSET", b"NOOP", b"VRFY x", b"HELP",
                                   b"EXPN x", b"DATA", b"BDAT 0 LAST",
                                   b"AUTH PLAIN", b"QUIT"]) + b"\r\n")
        elif kind == 7:
            out.append(junk(rng, rng.randint(1, 300)))
        elif kind == 8:
            out.append(b"MAIL FROM:<" + b"a" * rng.randint(300, 3000)
                       + b"@example.org>\r\n")
        elif kind == 9:
            out.append(b"X" * rng.randint(500, 9000) + b"\r\n")
        elif kind == 10:
            out.append(rng.choice([b"\x00", b"\r", b"\n", b"\r\r\n",
                                   b"\n.\n", b"\r\n.\r", b".\r\n"]) * 3)
        elif kind == 11:
            out.append(b"BDAT " + rng.choice(
                [b"-1", b"99999999999999999999999", b"18446744073709551616",
                 b"0x10", b"1e9", b"", b"12 LAST junk"]) + b"\r\n")
        elif kind == 12:
            # A chunk shorter than announced, then commands that become
            # part of the chunk.
            out.append(b"BDAT 64\r\nshort\r\nRSET\r\nNOOP\r\n")
        elif kind == 13:
            out.append(b"MAIL FROM:<chaos@example.org> " + rng.choice(
                [b"SIZE=-5", b"SIZE=999999999999999999999", b"BODY=9BIT",
                 b"RET=FULL RET=HDRS", b"ENVID=a+00b", b"SMTPUTF8=yes",
                 b"AUTH=<>", b"X=" + junk(rng, 20)]) + b"\r\n")
        elif kind == 14:
            out.append(b"RCPT TO:<user@localhost> " + rng.choice(
                [b"NOTIFY=NEVER,SUCCESS", b"ORCPT=rfc822;a+0Db",
                 b"ORCPT=rfc822;a+00b", b"NOTIFY=", b"ORCPT=x"]) + b"\r\n")
        elif kind == 15:
            out.append(b"STARTTLS\r\n" + junk(rng, rng.randint(5, 200)))
        elif kind == 16:
            out.append(b"DATA\r\n" + junk(rng, rng.randint(0, 2000)))
        elif kind == 17:
            out.append(b"RCPT TO:<" + junk(rng, 12).replace(b">", b"")
                       + b"@localhost>\r\n")
        elif kind == 18:
            out.append(b"\r\n".join(
                rng.choice([b"NOOP", b"RSET", b"EHLO x", b"MAIL FROM:<>",
                            b"RCPT TO:<user@localhost>", b"DATA", b"."])
                for _ in range(rng.randint(5, 40))) + b"\r\n")
        elif kind == 19:
            out.append(b"ehlo " + b"h" * 255 + b"\r\nmail from:<>\r\n")
        elif kind == 20:
            out.append(b"MAIL FROM:<\xc3\xa9@example.org> SMTPUTF8\r\n")
        elif kind == 21:
            out.append(TLS)
        else:
            out.append(b"QUIT")  # half a command, then the hang-up
            break
    return out


def drain(sock, lines, until, stop_after=None):
    """Read replies until nothing came for a moment (or until `until`, or
    until stop_after lines)."""
    buf = b""
    first = len(lines)
    while time.monotonic() < until:
        if stop_after is not None and len(lines) - first >= stop_after:
            break
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
        while b"\r\n" in buf:
            line, buf = buf.split(b"\r\n", 1)
            lines.append(line)
    if buf:
        lines.append(buf)  # a reply line cut short would show here


def starttls(sock, lines):
    """STARTTLS for real: on a 220, the rest of the script goes over TLS
    (after a new EHLO, as a client must); otherwise on as it was."""
    sock.sendall(b"STARTTLS\r\n")
    before = len(lines)
    drain(sock, lines, time.monotonic() + 2, stop_after=1)
    if len(lines) == before or not lines[-1].startswith(b"220 "):
        return sock
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sock.settimeout(5)
    tls = ctx.wrap_socket(sock, server_hostname="mx.sluice.test")
    tls.settimeout(0.15)
    tls.sendall(b"EHLO chaos.example\r\n")
    return tls


def client(port, seed, lines, errors, tls, handshakes):
    rng = random.Random(seed)
    for n in range(CONNECTIONS):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError as e:
            errors.append(f"connect: {e}")
            return
        sock.settimeout(0.15)
        try:
            # Each client first sends one plain message.  Most others wait
            # for the greeting and say EHLO first (the rest talk too early,
            # or skip it, and are told so).
            plain = n == 0
            if plain or rng.random() < 0.9:
                drain(sock, lines, time.monotonic() + 2, stop_after=1)
                if plain or rng.random() < 0.85:
                    sock.sendall(b"EHLO chaos.example\r\n")
                    drain(sock, lines, time.monotonic() + 2)
                    # Half the clients of a TLS connector go into TLS now.
                    if tls and rng.random() < 0.5:
                        sock = starttls(sock, lines)
                        handshakes.append(isinstance(sock, ssl.SSLSocket))
                        drain(sock, lines, time.monotonic() + 2)
            if plain:
                script = [b"MAIL FROM:<chaos@example.org>\r\n",
                          b"RCPT TO:<user@localhost>\r\n", b"DATA\r\n",
                          make_message(f"plain-{seed}").encode() + b".\r\n"]
            else:
                script = moves(rng, f"chaos-{seed}-{n}")
            for data in script:
                try:
                    if data is TLS:
                        sock = starttls(sock, lines)
                        handshakes.append(isinstance(sock, ssl.SSLSocket))
                    else:
                        sock.sendall(data)
                except OSError:
                    break
                drain(sock, lines, time.monotonic() + 2)
            drain(sock, lines, time.monotonic() + 1)
        finally:
            sock.close()


@pytest.mark.timeout_s(120)
@pytest.mark.parametrize("seed,tls", [(1, False), (2, False), (3, False),
                                      (4, True), (5, True)])
def test_random_hostile_clients(tmp_path, seed, tls, request):
    limits = {"MaxProtocolErrors": 1000, "ConnectionInactivityTimeout": "3s"}
    config = tls_conf(request.getfixturevalue("pki"), **limits) if tls \
        else {"conn": limits}
    with running(tmp_path, **config) as s:
        lines, errors, handshakes = [], [], []
        join_threads(start_threads(client, [
            (s.port, seed * 100 + i, lines, errors, tls, handshakes)
            for i in range(THREADS)]), 100, "a chaos client")
        assert not errors, errors
        if tls:
            assert any(handshakes), "no client completed STARTTLS"

        bad = [ln for ln in lines if not REPLY_LINE.match(ln)]
        assert not bad, f"malformed reply lines: {bad[:5]}"
        plain = [ln for ln in lines
                 if ln[:1] in b"45" and not ENHANCED.match(ln)]
        assert not plain, f"4xx/5xx without an enhanced code: {plain[:5]}"

        acked = [QUEUED.match(ln).group(1).decode() for ln in lines
                 if QUEUED.match(ln)]
        assert len(acked) >= THREADS, "the plain messages were not accepted"
        assert len(set(acked)) == len(acked), "a queue id was given twice"

        # The daemon still serves a plain transaction.
        with Client(s.port) as c:
            c.send_message("after@example.org", ["user@localhost"],
                           make_message("after-chaos")).check(250, "2.6.0")
            c.quit()
        assert s.alive()
    # Stopped cleanly (checked by running()); every acknowledged message
    # is stored once, with its whole body.
    stored = {}
    for m in s.messages():
        stored.setdefault(m["queue_id"], []).append(m)
    missing = [q for q in acked if q not in stored]
    assert not missing, f"acknowledged but not in the queue: {missing}"
    for q in acked:
        assert len(stored[q]) == 1, f"{q} stored {len(stored[q])} times"
        assert stored[q][0]["body"].endswith(b"Hello.\r\n"), q
