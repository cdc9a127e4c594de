"""Receive connector policies that shape a session from the outside:
GreetingDelay (a client that talks before the banner is refused) and
MessageRateLimit (messages per minute per client address)."""
import socket
import time

from harness import Client, make_message, running

SENDER = "a@sender.example"


def test_greeting_delay_refuses_early_talker(tmp_path):
    with running(tmp_path, conn={"GreetingDelay": "1s"}) as s:
        sock = socket.create_connection((s.host, s.port), timeout=5)
        sock.sendall(b"EHLO early.example\r\n")
        data = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        sock.close()
        assert data.startswith(b"554 5.5.0"), data
        assert b"220" not in data

        # A patient client gets the banner after the delay.
        start = time.monotonic()
        with Client(s.port) as c:
            assert time.monotonic() - start >= 0.9
            c.ehlo().check(250)


def test_message_rate_limit(tmp_path):
    with running(tmp_path, conn={"MessageRateLimit": 3}) as s:
        with Client(s.port) as c:
            c.ehlo()
            for i in range(3):
                c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
                c.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
                c.cmd("DATA").check(354)
                c.send(make_message(f"rate{i}").encode() + b".\r\n")
                c.reply().check(250, "2.6.0")
            c.cmd(f"MAIL FROM:<{SENDER}>").check(450, "4.7.0", "rate")
        # Another client address has its own budget.
        with Client(s.port, source="127.0.0.2") as c:
            c.ehlo()
            c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
        assert len(s.messages()) == 3
