"""RFC 2920 pipelining rules and the greeting rule of RFC 5321 4.3.1:
data before the greeting, commands pipelined without PIPELINING, and
message data sent before the 354 all get 554 5.5.0 and a closed
connection; correct pipelining with EHLO works and replies come in order."""
import signal
import socket

import pytest

from harness import make_message, queue_id_of, sluice_fixture

SENDER = "a@sender.example"


pipe = sluice_fixture("pipe")


@pytest.mark.parametrize("early", [b"EHLO client.example\r\n", b"EH"],
                         ids=["line", "partial"])
def test_data_before_greeting(pipe, early):
    before = len(pipe.messages())
    # Freeze the daemon so that the bytes are in its socket before it
    # accepts the connection: a deterministic "talks first" client.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(5)
    pipe.signal(signal.SIGSTOP)
    try:
        sock.connect((pipe.host, pipe.port))
        sock.sendall(early)
    finally:
        pipe.signal(signal.SIGCONT)
    data = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    assert data.startswith(b"554 5.5.0 "), data
    assert b"220" not in data.split(b"\r\n")[0][:3]
    assert data.count(b"\r\n") == 1, data
    assert len(pipe.messages()) == before


def test_pipelining_after_helo_is_refused(pipe):
    before = len(pipe.messages())
    with pipe.client() as c:
        c.cmd("HELO client.example").check(250)
        c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<user@localhost>\r\n")
        c.reply().check(554, "5.5.0")
        assert c.closed()
    assert len(pipe.messages()) == before


def test_helo_session_without_pipelining_works(pipe):
    with pipe.client() as c:
        c.cmd("HELO client.example").check(250)
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
        c.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(make_message("helo-lockstep") + ".\r\n")
        c.reply().check(250, "2.6.0")


def test_pipelining_disabled_on_connector(sluice_factory):
    s = sluice_factory(conn={"PipeliningEnabled": False})
    with s.client() as c:
        r = c.ehlo()
        assert "PIPELINING" not in [t.split()[0].upper()
                                    for t in r.texts[1:]], r
        c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<user@localhost>\r\n")
        c.reply().check(554, "5.5.0")
        assert c.closed()
    assert s.messages() == []


def test_ehlo_pipelined_group(pipe):
    with pipe.client() as c:
        r = c.ehlo()
        assert any(t.upper() == "PIPELINING" for t in r.texts), r
        c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<a@localhost>\r\n"
               f"RCPT TO:<b@example.test>\r\nDATA\r\n")
        rs = c.replies(4)
        rs[0].check(250, "2.1.0")
        rs[1].check(250, "2.1.5")
        rs[2].check(250, "2.1.5")
        rs[3].check(354)
        c.send(make_message("pipelined-group") + ".\r\n")
        r = c.reply().check(250, "2.6.0")
    m = pipe.message(queue_id_of(r))
    assert sorted(x["addr"] for x in m["rcpts"]) == \
        ["a@localhost", "b@example.test"]


def test_pipelined_group_with_refused_recipient(pipe):
    with pipe.client() as c:
        c.ehlo()
        c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<a@localhost>\r\n"
               f"RCPT TO:<x@elsewhere.example>\r\nRCPT TO:<c@localhost>\r\n"
               f"DATA\r\n")
        rs = c.replies(5)
        rs[0].check(250, "2.1.0")
        rs[1].check(250, "2.1.5")
        rs[2].check(550, "5.7.54")
        rs[3].check(250, "2.1.5")
        rs[4].check(354)
        c.send(make_message("pipelined-refused") + ".\r\n")
        r = c.reply().check(250, "2.6.0")
    m = pipe.message(queue_id_of(r))
    assert sorted(x["addr"] for x in m["rcpts"]) == \
        ["a@localhost", "c@localhost"]


def test_next_transaction_pipelined_after_end_of_data(pipe):
    with pipe.client() as c:
        c.ehlo()
        c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<a@localhost>\r\nDATA\r\n")
        rs = c.replies(3)
        assert [r.code for r in rs] == [250, 250, 354], rs
        # End of data, then the whole next envelope, in one write.
        c.send(make_message("pipe-first").encode() + b".\r\n" +
               f"RSET\r\nMAIL FROM:<{SENDER}>\r\nRCPT TO:<b@localhost>\r\n"
               f"DATA\r\n".encode())
        rs = c.replies(5)
        rs[0].check(250, "2.6.0")
        rs[1].check(250, "2.0.0")
        rs[2].check(250, "2.1.0")
        rs[3].check(250, "2.1.5")
        rs[4].check(354)
        c.send(make_message("pipe-second") + ".\r\n")
        r2 = c.reply().check(250, "2.6.0")
        c.send(b"QUIT\r\n")
        c.reply().check(221, "2.0.0")
    assert pipe.message(queue_id_of(rs[0]))["rcpts"][0]["addr"] == \
        "a@localhost"
    assert pipe.message(queue_id_of(r2))["rcpts"][0]["addr"] == \
        "b@localhost"


@pytest.mark.parametrize("envelope_first", [False, True],
                         ids=["whole-group", "data-only"])
def test_message_sent_before_354_is_refused(pipe, envelope_first):
    before = len(pipe.messages())
    body = make_message("before-354").encode() + b".\r\n"
    with pipe.client() as c:
        c.ehlo()
        if envelope_first:
            c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
            c.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
            c.send(b"DATA\r\n" + body)
        else:
            c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<user@localhost>\r\n"
                   f"DATA\r\n".encode() + body)
            c.reply().check(250, "2.1.0")
            c.reply().check(250, "2.1.5")
        c.reply().check(554, "5.5.0")
        assert c.closed()
    assert len(pipe.messages()) == before
    assert not any(b"before-354" in b for b in pipe.bodies())


@pytest.mark.parametrize("first", ["EHLO client.example", "HELO client.example",
                                   "NOOP", "VRFY user", "EXPN list", "QUIT"])
def test_commands_that_end_a_group(pipe, first):
    """RFC 2920 3.1: EHLO, HELO, DATA, VRFY, EXPN, TURN, QUIT and NOOP can
    only be the last command of a group; one followed by pipelined input
    is refused and the connection closed (no exception for HELO/EHLO)."""
    with pipe.client() as c:
        c.ehlo()
        c.send(f"{first}\r\nRSET\r\n")
        c.reply().check(554, "5.5.0")
        assert c.closed()


def test_commands_that_do_not_end_a_group(pipe):
    with pipe.client() as c:
        c.ehlo()
        c.send("RSET\r\nHELP\r\nRSET\r\nNOOP\r\n")
        assert [r.code for r in c.replies(4)] == [250, 214, 250, 250]
        c.quit()
