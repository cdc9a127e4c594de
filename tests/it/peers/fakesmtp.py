#!/usr/bin/python3
"""A scriptable fake SMTP server: the next hop for the tests of Sluice's
SMTP client, well-behaved or hostile on demand.

`FakeSmtp` listens on a loopback address (127.0.0.0/8 or ::1) and a free
or given port, serves connections in background threads (several at once,
at most `max_sessions`), records everything each client did, and answers as
its options say.  It is a context manager; stop() ends every thread within
a bounded time and raises if one is left.

What it records, per connection (`server.sessions`, each a `Session`):
- every line received, exact bytes with their line ending, and whether it
  arrived inside TLS (`Session.commands`, list of `Command`);
- the TLS version, cipher, SNI and client certificate of the handshake, or
  why the handshake failed; what the client pipelined after STARTTLS;
  whether, after QUIT inside TLS, the client sent its close_notify;
- AUTH attempts (`Auth`: mechanism, user, password, over TLS or not);
- every message (`Message`): envelope, content after dot-unstuffing (DATA)
  or assembled chunks (BDAT), the bytes as they were on the wire, over TLS
  or not, and the reply it got.

Behaviour is declared by options, in one small language of reply values
used for the banner and for every entry of `replies`:
- "451 4.3.0 try later": a str is a reply; "\\n" separates the lines of a
  multi-line reply; CRLF is added to each line;
- b"...": bytes are sent exactly as given, for hostile replies: OVERLONG,
  CODE_CHANGE, BARE_LF, GARBAGE are ready-made ones;
- delayed(seconds, value): wait, then answer value;
- close_after(b"250-partial"): send these bytes, then close (CLOSE: just
  close);
- HANG (alias SILENCE): never answer; the session ends when the client
  closes, at stop(), or after idle_timeout;
- ENDLESS: "250-" lines forever (the code of the reply it replaces), until
  the client closes, stop(), or endless_limit lines, then a last line;
- a list of these: used in turn each time the key is used, counted over
  the server's life (so [a 451, then 250] tests a retry); the last repeats.

Keys of `replies`: "banner" (same as the banner option), the verbs EHLO HELO
MAIL RCPT DATA BDAT RSET NOOP QUIT STARTTLS AUTH VRFY, "MAIL:address" and
"RCPT:address" for one address (case-insensitive), and "end-of-data": the
reply that completes a message, after the final dot of DATA or to BDAT ...
LAST ("BDAT" is the reply to each other chunk). Defaults are 250 / 354 / 221
as a good server.

Scenarios and how to script them:
- banner="554 5.7.1 no service" (every command but QUIT then gets 503),
  banner=SILENCE, banner=delayed(3, "220 slow.test ESMTP");
- capabilities=["PIPELINING", "CHUNKING", "8BITMIME", "SIZE 1000",
  "DSN", "SMTPUTF8"]; STARTTLS and AUTH are added by `tls` and `auth`;
  EHLO refused: replies={"EHLO": "502 5.5.2 no EHLO here"} (HELO works);
- tls=server_context(pki, "server"): STARTTLS with that certificate;
  starttls= "ok" | "strip" (not advertised, and refused as unknown, as a
  MITM would) | "close" (220, then close before the handshake) |
  "garbage" (220, then plaintext garbage) | "inject" (send "220 ready"
  followed in the SAME write by `inject`, then do TLS: CVE-2021-38371);
  refused: replies={"STARTTLS": "454 4.7.0 TLS not available"};
  a client certificate: server_context(..., client_ca=pki/"partner-ca.pem");
- auth=("user", "secret"): AUTH PLAIN LOGIN advertised and checked;
- answer_limit=N: stop answering (HANG) after N messages were accepted,
  until resume(): with `delivered()`, `message_ids()` and `unanswered()`
  the "counting sink" of the at-least-once tests (`CountingSink` is
  FakeSmtp with keep_data=False and CHUNKING).

Example:

    with FakeSmtp(tls=server_context(pki, "server"),
                  replies={"RCPT:bob@example.test": "550 5.1.1 no such user"}
                  ) as mx:
        ... let sluiced deliver to 127.0.0.1:mx.port ...
        mx.wait_messages(1)
        s = mx.sessions[0]
        assert s.tls_version == "TLSv1.3" and s.sni == "mx.sluice.test"
        assert "MAIL" not in s.verbs(tls=False)
        assert s.verbs(tls=True)[0] == "EHLO"
        assert not s.messages[0].bare_line_endings
"""
import base64
import collections
import ipaddress
import re
import socket
import ssl
import threading
import time

POLL = 0.05  # seconds: how often blocked threads look at the stop flag
IDLE_TIMEOUT = 30.0  # a session waiting longer than this for data ends
IO_TIMEOUT = 10.0  # one write, or a TLS handshake
CLOSE_NOTIFY_WAIT = 5.0  # after QUIT inside TLS: the client's close_notify
STOP_TIMEOUT = 5.0  # stop() waits this long for every thread to end
MAX_LINE = 64 * 1024  # a command line; a longer one ends the session
MAX_DATA_LINE = 1024 * 1024  # one line of DATA
MAX_MESSAGE = 64 * 1024 * 1024  # DATA or the sum of BDAT chunks
ENDLESS_LIMIT = 1_000_000  # lines of an ENDLESS reply before it ends


class FakeSmtpError(Exception):
    pass


# --- reply values ----------------------------------------------------------


class Act:
    """A scripted behaviour other than sending a reply: see the module
    comment (delayed, close_after, CLOSE, HANG, ENDLESS)."""

    def __init__(self, kind, data=b"", seconds=0.0, then=None):
        self.kind = kind
        self.data = data
        self.seconds = seconds
        self.then = then

    def __repr__(self):
        return f"Act({self.kind!r})"


HANG = Act("hang")
SILENCE = HANG
CLOSE = Act("close")
ENDLESS = Act("endless")


def close_after(data):
    """Send data (bytes, e.g. half a reply), then close the connection."""
    return Act("close", data=data)


def delayed(seconds, value):
    """Answer value after seconds (the wait ends early at stop())."""
    return Act("delay", seconds=seconds, then=value)


OVERLONG = b"250 " + b"x" * 10240  # 10 KB, no CRLF
CODE_CHANGE = b"250-first line\r\n451-second line\r\n250 third line\r\n"
BARE_LF = b"250-fake.test\n250 ok\n"
GARBAGE = b"2x0 \x00\xff this is not a reply\r\n"

REPLY_KEYS = ("banner", "EHLO", "HELO", "MAIL", "RCPT", "DATA", "BDAT", "RSET",
              "NOOP", "QUIT", "STARTTLS", "AUTH", "VRFY", "end-of-data")
STARTTLS_MODES = ("ok", "strip", "close", "garbage", "inject")


def server_context(pki, name="server", client_ca=None,
                   require_client_cert=False):
    """A server-side SSLContext with pki/NAME.pem and pki/NAME.key (see
    tests/pki/README.md).  With client_ca a client certificate is asked
    for and must verify against that file (required or optional)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f"{pki}/{name}.pem", f"{pki}/{name}.key")
    if client_ca is not None:
        ctx.load_verify_locations(str(client_ca))
        ctx.verify_mode = (ssl.CERT_REQUIRED if require_client_cert
                           else ssl.CERT_OPTIONAL)
    return ctx


def _recording_sni(inner):
    """An sni_callback that notes the name on the SSLSocket, then calls
    the test's own callback if it had one (e.g. to switch certificates)."""
    def callback(sslsock, server_name, ctx):
        sslsock.fake_sni = server_name
        return inner(sslsock, server_name, ctx) if inner else None
    callback.records_sni = True
    return callback


# --- records ---------------------------------------------------------------


class Command:
    """One line received: exact bytes (with its line ending), the verb,
    whether it came inside TLS, and `read`, the number of the recv() that
    completed it (lines with the same number arrived together: pipelined).
    """

    def __init__(self, line, tls, read, verb=None):
        self.line = line
        self.tls = tls
        self.read = read
        if verb is None:
            word = line.split(b" ", 1)[0].split(b":", 1)[0].strip()
            verb = word.decode("ascii", "replace").upper()
        self.verb = verb  # "" for a response inside an AUTH exchange

    @property
    def text(self):
        return self.line.rstrip(b"\r\n").decode("utf-8", "replace")

    def __repr__(self):
        return f"Command({self.line!r}, tls={self.tls})"


class Message:
    """One message transaction that reached DATA/BDAT content."""

    def __init__(self, mail_from, mail_params, rcpts, tls, via):
        self.mail_from = mail_from
        self.mail_params = mail_params  # the text after <address>
        self.rcpts = list(rcpts)  # accepted recipients
        self.rcpt_params = {}  # recipient -> text after <address>
        self.tls = tls
        self.via = via  # "DATA" or "BDAT"
        self.data = b""  # content: dot-unstuffed, or chunks assembled
        self.raw = b""  # DATA bytes as on the wire (before the final dot)
        self.chunks = []  # BDAT chunk sizes
        self.size = 0
        self.message_id = None
        self.reply = None  # the reply text sent, None when never answered

    @property
    def code(self):
        return _reply_code(self.reply)

    @property
    def accepted(self):
        return self.code is not None and 200 <= self.code < 300

    @property
    def bare_line_endings(self):
        """True when the content holds a CR or LF outside a CRLF."""
        return b"\r" in self.data.replace(b"\r\n", b"") or \
            b"\n" in self.data.replace(b"\r\n", b"")

    def __repr__(self):
        return (f"Message(<{self.mail_from}> -> {self.rcpts}, {self.size} "
                f"bytes by {self.via}, tls={self.tls}, reply={self.reply!r})")


class Auth:
    def __init__(self, mechanism, user, password, tls, ok):
        self.mechanism = mechanism
        self.user = user
        self.password = password
        self.tls = tls
        self.ok = ok

    def __repr__(self):
        return (f"Auth({self.mechanism} {self.user!r}, tls={self.tls}, "
                f"ok={self.ok})")


class _End(Exception):
    """Ends a session; the argument is the reason recorded."""


def _reply_code(text):
    if text is None:
        return None
    m = re.search(rb"(?:^|\n)(\d{3})[ -]?[^\n]*\n?\Z",
                  text if isinstance(text, bytes) else text.encode())
    return int(m.group(1)) if m else None


# --- the server ------------------------------------------------------------


class FakeSmtp:
    """A scripted SMTP server on a loopback address; see the module comment.

    Options (all keyword except host and port):
    - host: 127.x.y.z or ::1; port: 0 picks a free one (then .port).
    - hostname: the name in the banner and the EHLO reply.
    - banner: a reply value (default "220 <hostname> ESMTP fake").
    - capabilities: EHLO keywords after the first line.
    - tls: an ssl.SSLContext (server side) for STARTTLS; starttls: the
      mode, "ok" "strip" "close" "garbage" "inject"; inject: the bytes sent
      after "220 ready" in the same write in "inject" mode.
    - auth: (user, password) to accept; auth_mechanisms: advertised.
    - replies: {key: reply value}, see the module comment.
    - answer_limit: after this many accepted messages, HANG at the end of
      every later message (it is recorded, with reply None).
    - keep_data: keep message content (False: only size and Message-ID).
    - max_sessions: connections served at once (more wait in the backlog).
    - idle_timeout, endless_limit: the bounds of waiting and of ENDLESS.
    """

    def __init__(self, host="127.0.0.1", port=0, *, hostname="fake.test",
                 banner=None, capabilities=("PIPELINING", "8BITMIME",
                                            "ENHANCEDSTATUSCODES"),
                 tls=None, starttls="ok", inject=b"250 injected\r\n",
                 auth=None, auth_mechanisms=("PLAIN", "LOGIN"),
                 replies=None, answer_limit=None, keep_data=True,
                 max_sessions=8, idle_timeout=IDLE_TIMEOUT,
                 endless_limit=ENDLESS_LIMIT):
        addr = ipaddress.ip_address(host)
        if not addr.is_loopback:
            raise FakeSmtpError(f"{host}: loopback addresses only")
        if starttls not in STARTTLS_MODES:
            raise FakeSmtpError(f"starttls={starttls!r}: one of "
                                f"{STARTTLS_MODES}")
        self.replies = {}
        for key, value in dict(replies or {}).items():
            verb, colon, address = key.partition(":")
            if verb not in REPLY_KEYS or (colon and
                                          verb not in ("MAIL", "RCPT")):
                raise FakeSmtpError(f"replies: unknown key {key!r}")
            self.replies[verb + colon + address.lower()] = value
        if banner is not None:
            self.replies["banner"] = banner
        self.host = host
        self.port = port
        self.hostname = hostname
        self.capabilities = list(capabilities)
        self.tls = tls
        if tls is not None and \
                not getattr(tls.sni_callback, "records_sni", False):
            tls.sni_callback = _recording_sni(tls.sni_callback)
        self.starttls = starttls
        self.inject = inject
        self.auth = auth
        self.auth_mechanisms = list(auth_mechanisms)
        self.answer_limit = answer_limit
        self.keep_data = keep_data
        self.max_sessions = max_sessions
        self.idle_timeout = idle_timeout
        self.endless_limit = endless_limit
        self.size_limit = 0
        for cap in self.capabilities:
            m = re.fullmatch(r"SIZE\s+(\d+)", cap, re.I)
            if m:
                self.size_limit = int(m.group(1))

        self.sessions = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._uses = collections.Counter()  # reply key -> times used
        self._accepting = 0  # messages given a 2xx end-of-data reply
        self._slots = threading.BoundedSemaphore(max_sessions)
        self._threads = []
        self._listener = None
        self._acceptor = None

    # --- life cycle --------------------------------------------------------

    def start(self):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        ls = socket.socket(family, socket.SOCK_STREAM)
        try:
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ls.bind((self.host, self.port))
            ls.listen(16)
            ls.settimeout(POLL)
        except BaseException:
            ls.close()
            raise
        self._listener = ls
        self.port = ls.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop,
                                          name=f"fakesmtp-{self.port}",
                                          daemon=True)
        self._acceptor.start()
        return self

    def stop(self):
        """End every session and the listener; raise FakeSmtpError if a
        thread is still running after STOP_TIMEOUT."""
        self._stop.set()
        deadline = time.monotonic() + STOP_TIMEOUT
        left = []
        for t in [self._acceptor] + list(self._threads):
            if t is None:
                continue
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                left.append(t.name)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if left:
            raise FakeSmtpError(f"threads still running: {left}")

    @property
    def stopping(self):
        return self._stop.is_set()

    def __enter__(self):
        if self._listener is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def _accept_loop(self):
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=POLL):
                continue
            try:
                conn, peer = self._listener.accept()
            except (TimeoutError, OSError):
                self._slots.release()
                continue
            session = Session(self, conn, peer, len(self.sessions))
            self.sessions.append(session)
            t = threading.Thread(target=self._serve, args=(session,),
                                 name=f"fakesmtp-{self.port}-{session.number}",
                                 daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, session):
        try:
            session.run()
        finally:
            self._slots.release()

    # --- observation -------------------------------------------------------

    @property
    def messages(self):
        """Every message of every session, in order of arrival."""
        return [m for s in list(self.sessions) for m in list(s.messages)]

    def accepted(self):
        return [m for m in self.messages if m.accepted]

    def delivered(self):
        """Counter: recipient -> accepted messages (the counting sink)."""
        c = collections.Counter()
        for m in self.accepted():
            c.update(m.rcpts)
        return c

    def unanswered(self):
        """Messages whose content arrived but got no reply (answer_limit,
        or an end-of-data HANG)."""
        return [m for m in self.messages if m.reply is None]

    def resume(self):
        """Lift answer_limit: later messages are answered again (sessions
        already hanging stay so until their client goes away)."""
        with self._lock:
            self.answer_limit = None

    def message_ids(self):
        """Counter: Message-ID -> accepted messages carrying it."""
        return collections.Counter(m.message_id for m in self.accepted())

    def _wait(self, what, done, timeout):
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise FakeSmtpError(f"timed out waiting for {what}")
            time.sleep(0.02)

    def wait_sessions(self, n, timeout=10.0):
        """Wait until n connections were accepted; return the sessions."""
        self._wait(f"{n} sessions", lambda: len(self.sessions) >= n, timeout)
        return self.sessions[:n]

    def wait_closed(self, n=None, timeout=10.0):
        """Wait until n sessions (default: every one so far) have ended."""
        n = len(self.sessions) if n is None else n
        self._wait(f"{n} closed sessions",
                   lambda: sum(s.done.is_set() for s in self.sessions) >= n,
                   timeout)

    def wait_messages(self, n, timeout=10.0, accepted=True):
        """Wait for n (accepted, by default) messages; return them."""
        def got():
            return self.accepted() if accepted else self.messages
        self._wait(f"{n} messages", lambda: len(got()) >= n, timeout)
        return got()

    # --- scripting ---------------------------------------------------------

    def _scripted(self, key):
        """The reply value for key, or None when not scripted."""
        value = self.replies.get(key)
        if isinstance(value, list):
            with self._lock:
                i = self._uses[key]
                self._uses[key] += 1
            value = value[min(i, len(value) - 1)]
        return value

    def _may_accept(self):
        """False once answer_limit messages were accepted; else count one
        more (so concurrent sessions never accept more than the limit)."""
        with self._lock:
            if self.answer_limit is not None and \
                    self._accepting >= self.answer_limit:
                return False
            self._accepting += 1
            return True


class Session:
    """One connection: what arrived, what TLS did, and why it ended."""

    def __init__(self, server, sock, peer, number):
        self.server = server
        self.sock = sock
        self.peer = peer
        self.number = number
        self.commands = []
        self.messages = []
        self.auths = []
        self.tls = False
        self.tls_version = None
        self.cipher = None
        self.sni = None
        self.client_cert = None  # DER bytes, or None
        self.client_cert_info = None  # getpeercert() when verified
        self.tls_error = None
        self.pipelined_after_starttls = b""
        self.close_reason = None
        self.close_notify = False  # the client ended TLS with close_notify
        self.done = threading.Event()
        self._buf = bytearray()
        self._reads = 0
        self._greeted = False
        self._rejecting = False  # a 554 banner was sent
        self._reset()

    # --- questions tests ask -----------------------------------------------

    def verbs(self, tls=None):
        """Verbs received, optionally only those in (or outside) TLS."""
        return [c.verb for c in self.commands if tls is None or c.tls == tls]

    def lines(self, tls=None):
        return [c.line for c in self.commands if tls is None or c.tls == tls]

    def batches(self):
        """Verbs grouped by the read that brought them (pipelining)."""
        groups = collections.OrderedDict()
        for c in self.commands:
            groups.setdefault(c.read, []).append(c.verb)
        return list(groups.values())

    def __repr__(self):
        return (f"Session({self.number}, tls={self.tls}, "
                f"verbs={self.verbs()}, end={self.close_reason!r})")

    # --- I/O ---------------------------------------------------------------

    def _fill(self):
        deadline = time.monotonic() + self.server.idle_timeout
        while True:
            if self.server.stopping:
                raise _End("stopped")
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, ssl.SSLWantReadError):
                if time.monotonic() > deadline:
                    raise _End("idle timeout")
                continue
            except (ssl.SSLError, OSError) as e:
                raise _End(f"read error: {e}")
            if not data:
                raise _End("client closed")
            self._buf += data
            self._reads += 1
            return

    def _line(self, limit=MAX_LINE):
        """One line up to LF (exact bytes) and the read that completed it."""
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                line = bytes(self._buf[:i + 1])
                del self._buf[:i + 1]
                return line, self._reads
            if len(self._buf) > limit:
                raise _End("line too long")
            self._fill()

    def _exact(self, n):
        while len(self._buf) < n:
            self._fill()
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def _write(self, data):
        view = memoryview(data)
        deadline = time.monotonic() + IO_TIMEOUT
        while view:
            if self.server.stopping:
                raise _End("stopped")
            try:
                n = self.sock.send(view)
                view = view[n:]
            except (TimeoutError, ssl.SSLWantWriteError):
                if time.monotonic() > deadline:
                    raise _End("write timeout")
            except (ssl.SSLError, OSError) as e:
                raise _End(f"write error: {e}")

    def _pause(self, seconds):
        if self.server._stop.wait(seconds):
            raise _End("stopped")

    # --- replies -----------------------------------------------------------

    def _reply(self, key, default):
        """Answer with the scripted value for key, else default; return the
        code sent (None when it has none)."""
        value = self.server._scripted(key)
        return self._send_value(default if value is None else value, default)

    def _send_value(self, value, default):
        if isinstance(value, str):
            data = "".join(ln + "\r\n" for ln in value.split("\n")).encode()
            self._write(data)
            return _reply_code(data)
        if isinstance(value, bytes):
            self._write(value)
            return _reply_code(value)
        if not isinstance(value, Act):
            raise FakeSmtpError(f"not a reply value: {value!r}")
        if value.kind == "delay":
            self._pause(value.seconds)
            return self._send_value(value.then, default)
        if value.kind == "close":
            if value.data:
                self._write(value.data)
            raise _End("scripted close")
        if value.kind == "hang":
            self._hang()
        if value.kind == "endless":
            return self._endless(str(_reply_code(default) or 250))
        raise FakeSmtpError(f"unknown act {value!r}")

    def _hang(self):
        """Never answer; record what arrives until the client closes,
        stop() or idle_timeout."""
        while True:
            line, read = self._line()
            self._record(line, read)

    def _endless(self, code):
        line = f"{code}-{self.server.hostname} endless reply".encode()
        for i in range(self.server.endless_limit):
            self._write(line + b" %d\r\n" % i)
        end = f"{code} end of an endless reply\r\n".encode()
        self._write(end)
        return int(code)

    # --- the session -------------------------------------------------------

    def run(self):
        try:
            self.sock.settimeout(POLL)
            code = self._reply("banner",
                               f"220 {self.server.hostname} ESMTP fake")
            self._rejecting = code is not None and code != 220
            while True:
                line, read = self._line()
                self._record(line, read)
                self._dispatch(line)
        except _End as e:
            self.close_reason = e.args[0]
        except Exception as e:  # noqa: BLE001 - recorded, not lost
            self.close_reason = f"fakesmtp error: {e!r}"
        finally:
            try:
                self.sock.close()
            except OSError:
                pass
            self.done.set()

    def _record(self, line, read, verb=None):
        self.commands.append(Command(line, self.tls, read, verb))

    def _reset(self):
        self._mail = None  # (address, params) once MAIL was accepted
        self._rcpts = []
        self._rcpt_params = {}
        self._bdat = None  # the Message being assembled by BDAT

    def _dispatch(self, line):
        text = line.rstrip(b"\r\n").decode("utf-8", "replace")
        verb, _, arg = text.partition(" ")
        verb = verb.upper()
        if self._rejecting and verb != "QUIT":
            self._write(b"503 5.5.1 Error: no service here\r\n")
            return
        handler = getattr(self, "_cmd_" + verb, None) \
            if verb in REPLY_KEYS else None
        if handler is None:
            self._write(b"502 5.5.2 Error: command not recognized\r\n")
            return
        handler(arg.strip())

    def _need_greeting(self):
        if not self._greeted:
            self._write(b"503 5.5.1 Error: send HELO/EHLO first\r\n")
            return True
        return False

    def _ehlo_text(self):
        caps = list(self.server.capabilities)
        srv = self.server
        offer = srv.tls is not None or srv.starttls in ("close", "garbage")
        if (offer and not self.tls and srv.starttls != "strip"
                and "STARTTLS" not in caps):
            caps.append("STARTTLS")
        if self.tls or srv.starttls == "strip":
            caps = [c for c in caps if c.upper() != "STARTTLS"]
        if srv.auth is not None and srv.auth_mechanisms:
            caps.append("AUTH " + " ".join(srv.auth_mechanisms))
        lines = [srv.hostname] + caps
        return "\n".join(("250 " if i == len(lines) - 1 else "250-") + ln
                         for i, ln in enumerate(lines))

    def _cmd_EHLO(self, arg):
        code = self._reply("EHLO", self._ehlo_text())
        if code is not None and 200 <= code < 300:
            self._greeted = True
            self._reset()

    def _cmd_HELO(self, arg):
        code = self._reply("HELO", f"250 {self.server.hostname}")
        if code is not None and 200 <= code < 300:
            self._greeted = True
            self._reset()

    def _cmd_NOOP(self, arg):
        self._reply("NOOP", "250 2.0.0 Ok")

    def _cmd_VRFY(self, arg):
        self._reply("VRFY", "252 2.0.0 Cannot VRFY, send some mail")

    def _cmd_RSET(self, arg):
        self._reset()
        self._reply("RSET", "250 2.0.0 Ok")

    def _cmd_QUIT(self, arg):
        self._reply("QUIT", "221 2.0.0 Bye")
        if self.tls:
            self._tls_shutdown()
        raise _End("QUIT")

    def _tls_shutdown(self):
        """Inside TLS, end it properly and note whether the client's
        close_notify came (`Session.close_notify`) within
        CLOSE_NOTIFY_WAIT (a client that never sends one, or never
        closes, does not hold the session longer)."""
        deadline = time.monotonic() + CLOSE_NOTIFY_WAIT
        while time.monotonic() < deadline and not self.server.stopping:
            try:
                self.sock = self.sock.unwrap()
                self.close_notify = True
                return
            except (TimeoutError, ssl.SSLWantReadError,
                    ssl.SSLWantWriteError):
                continue
            except (ssl.SSLError, OSError):
                return

    @staticmethod
    def _path(arg, keyword):
        """("address", "params") from "FROM:<a@b> SIZE=1", or None."""
        m = re.match(keyword + r":\s*<([^>]*)>\s*(.*)", arg, re.I)
        return (m.group(1), m.group(2)) if m else None

    def _cmd_MAIL(self, arg):
        if self._need_greeting():
            return
        if self._mail is not None:
            self._write(b"503 5.5.1 Error: nested MAIL command\r\n")
            return
        path = self._path(arg, "FROM")
        if path is None:
            self._write(b"501 5.5.4 Syntax: MAIL FROM:<address>\r\n")
            return
        size = re.search(r"\bSIZE=(\d+)", path[1], re.I)
        limit = self.server.size_limit
        if limit and size and int(size.group(1)) > limit:
            self._write(b"552 5.3.4 Message size exceeds fixed limit\r\n")
            return
        key = "MAIL:" + path[0].lower()
        if key not in self.server.replies:
            key = "MAIL"
        code = self._reply(key, "250 2.1.0 Ok")
        if code is not None and 200 <= code < 300:
            self._mail = path

    def _cmd_RCPT(self, arg):
        if self._mail is None:
            self._write(b"503 5.5.1 Error: need MAIL command\r\n")
            return
        path = self._path(arg, "TO")
        if path is None:
            self._write(b"501 5.5.4 Syntax: RCPT TO:<address>\r\n")
            return
        key = "RCPT:" + path[0].lower()
        if key not in self.server.replies:
            key = "RCPT"
        code = self._reply(key, "250 2.1.5 Ok")
        if code is not None and 200 <= code < 300:
            self._rcpts.append(path[0])
            self._rcpt_params[path[0]] = path[1]

    def _new_message(self, via):
        m = Message(self._mail[0], self._mail[1], self._rcpts, self.tls, via)
        m.rcpt_params = dict(self._rcpt_params)
        return m

    def _cmd_DATA(self, arg):
        if self._mail is None or not self._rcpts:
            self._write(b"554 5.5.1 Error: no valid recipients\r\n")
            return
        if self._bdat is not None:
            self._write(b"503 5.5.1 Error: DATA after BDAT\r\n")
            return
        code = self._reply("DATA", "354 End data with <CR><LF>.<CR><LF>")
        if code != 354:
            return
        msg = self._new_message("DATA")
        raw, content = bytearray(), bytearray()
        at_line_start = True  # the previous line ended with CRLF
        while True:
            line, _ = self._line(MAX_DATA_LINE)
            if at_line_start and line == b".\r\n":
                break
            if len(raw) + len(line) <= MAX_MESSAGE:
                raw += line
                content += line[1:] if at_line_start and \
                    line.startswith(b".") else line
            msg.size += len(line)
            at_line_start = line.endswith(b"\r\n")
        self._finish(msg, bytes(content), bytes(raw))

    def _cmd_BDAT(self, arg):
        m = re.fullmatch(r"(\d+)(\s+LAST)?", arg, re.I)
        if m is None:
            self._write(b"501 5.5.4 Syntax: BDAT size [LAST]\r\n")
            return
        size, last = int(m.group(1)), m.group(2) is not None
        if size > MAX_MESSAGE:
            self._write(b"552 5.3.4 Chunk too big\r\n")
            raise _End("BDAT chunk too big")
        chunk = self._exact(size)
        if self._mail is None or not self._rcpts:
            self._write(b"554 5.5.1 Error: no valid recipients\r\n")
            return
        if self._bdat is None:
            self._bdat = self._new_message("BDAT")
            self._bdat.data = bytearray()
        msg = self._bdat
        msg.chunks.append(size)
        msg.size += size
        if len(msg.data) + size > MAX_MESSAGE:
            self._write(b"552 5.3.4 Message too big\r\n")
            raise _End("BDAT message too big")
        msg.data += chunk
        if last:
            self._finish(msg, bytes(msg.data), b"")
        else:
            self._reply("BDAT", f"250 2.0.0 {size} octets received")

    def _finish(self, msg, content, raw):
        """Record the message and give it its end-of-data reply."""
        m = re.search(rb"^Message-ID:\s*(\S+)", content.split(b"\r\n\r\n")[0],
                      re.I | re.M)
        msg.message_id = m.group(1).decode("utf-8", "replace") if m else None
        msg.data = content if self.server.keep_data else b""
        msg.raw = raw if self.server.keep_data else b""
        self.messages.append(msg)
        self._reset()
        queued = f"250 2.0.0 Ok: queued as F{self.number}M{len(self.messages)}"
        value = self.server._scripted("end-of-data")
        if value is None:
            value = queued
        code = _reply_code(value) if isinstance(value, (str, bytes)) \
            else None
        if code is not None and 200 <= code < 300 and \
                not self.server._may_accept():
            self._hang()  # answer_limit reached: never answer
        if isinstance(value, (str, bytes)):
            msg.reply = value  # recorded before sending: the client may
            self._send_value(value, queued)  # close at once
        else:
            code = self._send_value(value, queued)
            msg.reply = None if code is None else f"{code} (scripted)"

    # --- STARTTLS and AUTH -------------------------------------------------

    def _cmd_STARTTLS(self, arg):
        srv = self.server
        if self.tls:
            self._write(b"554 5.5.1 Error: TLS already active\r\n")
            return
        if srv.starttls == "strip":
            self._write(b"502 5.5.2 Error: command not recognized\r\n")
            return
        if srv.tls is None and srv.starttls in ("ok", "inject"):
            self._write(b"454 4.7.0 TLS not available\r\n")
            return
        if srv.starttls == "inject":
            self._write(b"220 2.0.0 ready\r\n" + srv.inject)
            code = 220
        else:
            code = self._reply("STARTTLS", "220 2.0.0 Ready to start TLS")
        if code != 220:
            return
        pipelined = bytes(self._buf) + self._peek_plaintext()
        if pipelined:
            self.pipelined_after_starttls = pipelined
            raise _End("command pipelined after STARTTLS")
        if srv.starttls == "close":
            raise _End("scripted close before the handshake")
        if srv.starttls == "garbage":
            self._write(b"this is not a TLS handshake\r\n" * 8)
            raise _End("scripted garbage instead of the handshake")
        self._handshake()

    def _peek_plaintext(self):
        """Bytes waiting in the socket that are not a TLS record (a TLS
        handshake record starts with 0x16); they stay in the socket."""
        try:
            data = self.sock.recv(65536, socket.MSG_PEEK)
        except (TimeoutError, OSError):
            return b""
        return b"" if data.startswith(b"\x16") else data

    def _handshake(self):
        try:
            tsock = self.server.tls.wrap_socket(
                self.sock, server_side=True, do_handshake_on_connect=False)
        except (ssl.SSLError, OSError) as e:
            self.tls_error = str(e)
            raise _End("TLS setup failed")
        self.sock = tsock
        deadline = time.monotonic() + IO_TIMEOUT
        while True:
            if self.server.stopping:
                raise _End("stopped")
            try:
                tsock.do_handshake()
                break
            except (TimeoutError, ssl.SSLWantReadError,
                    ssl.SSLWantWriteError):
                if time.monotonic() > deadline:
                    self.tls_error = "handshake timeout"
                    raise _End("TLS handshake failed")
            except (ssl.SSLError, OSError) as e:
                self.tls_error = str(e)
                self.sni = getattr(tsock, "fake_sni", None)
                raise _End("TLS handshake failed")
        self.tls = True
        self.tls_version = tsock.version()
        self.cipher = tsock.cipher()[0]
        self.sni = getattr(tsock, "fake_sni", None)
        self.client_cert = tsock.getpeercert(binary_form=True)
        self.client_cert_info = tsock.getpeercert() or None
        self._greeted = False
        self._reset()

    def _cmd_AUTH(self, arg):
        srv = self.server
        if srv.auth is None:
            self._write(b"502 5.5.2 Error: authentication not enabled\r\n")
            return
        if self._need_greeting():
            return
        mech, _, initial = arg.partition(" ")
        mech = mech.upper()
        if mech not in srv.auth_mechanisms or mech not in ("PLAIN", "LOGIN"):
            self._write(b"504 5.5.4 Unrecognized authentication type\r\n")
            return
        try:
            if mech == "PLAIN":
                resp = initial or self._challenge("")
                _authz, user, password = _b64(resp).split("\0", 2)
            else:
                user = _b64(initial or self._challenge("VXNlcm5hbWU6"))
                password = _b64(self._challenge("UGFzc3dvcmQ6"))
        except ValueError:
            self._write(b"501 5.5.2 Cannot decode response\r\n")
            return
        except _Cancel:
            self._write(b"501 5.7.0 Authentication aborted\r\n")
            return
        ok = (user, password) == tuple(srv.auth)
        self.auths.append(Auth(mech, user, password, self.tls, ok))
        if ok:
            self._reply("AUTH", "235 2.7.0 Authentication successful")
        else:
            self._write(b"535 5.7.8 Authentication credentials invalid\r\n")

    def _challenge(self, text):
        self._write(f"334 {text}\r\n".encode())
        line, read = self._line()
        self._record(line, read, verb="")
        if line.rstrip(b"\r\n") == b"*":
            raise _Cancel()
        return line.rstrip(b"\r\n").decode("ascii", "replace")


class _Cancel(Exception):
    pass


def _b64(text):
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(str(e))


class CountingSink(FakeSmtp):
    """Accepts everything and counts: delivered() is recipient -> accepted
    messages, message_ids() is Message-ID -> accepted messages; content is
    not kept.  answer_limit=N stops answering after N messages (the at-
    least-once tests kill sluiced while a message is unacknowledged)."""

    def __init__(self, host="127.0.0.1", port=0, *, answer_limit=None,
                 capabilities=("PIPELINING", "8BITMIME", "CHUNKING",
                               "ENHANCEDSTATUSCODES"), **kw):
        kw.setdefault("keep_data", False)
        kw.setdefault("max_sessions", 32)
        super().__init__(host, port, answer_limit=answer_limit,
                         capabilities=capabilities, **kw)

    @property
    def total(self):
        return len(self.accepted())
