"""Relaying to a next hop that reads slowly (issue 19, the client's direct
socket I/O): the socket takes only part of what sluiced has to send, so
the rest waits for the write event, and the content encoder, stopped at
the output's high mark, goes on when the output drains.  The message must
arrive intact, by DATA and by BDAT.

The next hop here is a minimal SMTP server of the test's own with a small
receive buffer that stops reading for a moment after the content begins
and then reads it in small pieces: what it had in its receive queue when
it paused shows that sluiced could not hand the kernel the whole message
at once (the path under test was taken)."""
import hashlib
import socket
import threading
import time

import pytest

from harness import Client, make_message, running
from test_large import RELAY, body_lines, smarthost

RCVBUF = 16 * 1024
PAUSE = 0.5  # seconds the peer stops reading once the content begins
PIECE = 4096


class SlowReader:
    """One SMTP session on a loopback port; reads the content slowly."""

    def __init__(self, chunking):
        self.chunking = chunking
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # before listen(): accepted sockets inherit it (and its window)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(4)
        self.ls.settimeout(30)
        self.port = self.ls.getsockname()[1]
        self.content = b""
        self.queued_at_pause = None
        self.recvs = 0
        self.verbs = []
        self.error = None
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.ls.close()
        self.thread.join(10)

    def _serve(self):
        try:
            conn, _ = self.ls.accept()
            with conn:
                conn.settimeout(30)
                self._session(conn)
        except Exception as e:  # reported by the test
            self.error = repr(e)

    def _recv(self, conn, n):
        data = conn.recv(n)
        self.recvs += 1
        if not data:
            raise EOFError("sluiced closed the connection")
        return data

    def _line(self, conn):
        while b"\r\n" not in self.buf:
            self.buf += self._recv(conn, 1024)
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line.decode()

    def _pause(self, conn):
        """Stop reading; then note how much waits in our receive queue."""
        time.sleep(PAUSE)
        queued = conn.recv(RCVBUF * 64, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        self.queued_at_pause = len(queued)

    def _exact(self, conn, n):
        out = bytearray()
        take = min(len(self.buf), n)
        out += self.buf[:take]
        self.buf = self.buf[take:]
        while len(out) < n:
            out += self._recv(conn, min(PIECE, n - len(out)))
        return bytes(out)

    def _data(self, conn):
        """Content up to CRLF.CRLF, read PIECE bytes at a time."""
        out = bytearray(self.buf)
        self.buf = b""
        while not out.endswith(b"\r\n.\r\n"):
            out += self._recv(conn, PIECE)
        return bytes(out[:-3])

    def _session(self, conn):
        self.buf = b""
        conn.sendall(b"220 slow.test ESMTP\r\n")
        paused = False
        while True:
            line = self._line(conn)
            verb = line.split(" ")[0].upper()
            self.verbs.append(verb)
            if verb == "EHLO":
                caps = ["PIPELINING", "8BITMIME"]
                if self.chunking:
                    caps.append("CHUNKING")
                conn.sendall(("250-slow.test\r\n" + "".join(
                    f"250-{c}\r\n" for c in caps[:-1]) +
                    f"250 {caps[-1]}\r\n").encode())
            elif verb in ("MAIL", "RCPT"):
                conn.sendall(b"250 2.0.0 ok\r\n")
            elif verb == "DATA":
                conn.sendall(b"354 go ahead\r\n")
                self._pause(conn)
                self.content = self._data(conn)
                conn.sendall(b"250 2.0.0 got it\r\n")
            elif verb == "BDAT":
                size, last = int(line.split()[1]), line.upper().endswith(
                    " LAST")
                if not paused:
                    self._pause(conn)
                    paused = True
                self.content += self._exact(conn, size)
                conn.sendall(b"250 2.0.0 chunk\r\n")
            elif verb == "QUIT":
                conn.sendall(b"221 2.0.0 bye\r\n")
                return
            else:
                conn.sendall(b"502 5.5.2 no\r\n")


@pytest.mark.timeout_s(120)
@pytest.mark.parametrize("chunking", [False, True], ids=["data", "bdat"])
def test_slow_reader_gets_the_message_intact(tmp_path, chunking):
    body = body_lines(40000, 78)  # 3.1 MB, no line starts with a dot
    msg = make_message("slow reader", "").encode() + body
    with SlowReader(chunking) as peer, \
            running(tmp_path, conn=RELAY,
                    raw_extra=smarthost(peer.port)) as s:
        with Client(s.port, timeout=60) as c:
            c.send_message("alice@example.test", ["bob@remote.test"],
                           msg).check(250, "2.6.0")
            c.quit()
        peer.thread.join(90)
        assert peer.error is None, peer.error
        assert not peer.thread.is_alive(), "the session did not end"
        # the kernel held a small part of the content when the peer
        # paused: the rest waited in sluiced for the socket to drain
        assert peer.queued_at_pause is not None
        assert 0 < peer.queued_at_pause < len(body) // 4, \
            peer.queued_at_pause
        assert peer.recvs > len(body) // PIECE
        assert peer.verbs[-1] == "QUIT", peer.verbs
        if chunking:
            assert "DATA" not in peer.verbs and \
                peer.verbs.count("BDAT") > 1, peer.verbs
        assert peer.content.endswith(body)
        assert hashlib.sha256(peer.content[-len(body):]).digest() == \
            hashlib.sha256(body).digest()
