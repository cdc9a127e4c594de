"""Harness for the black-box tests of sluiced (tests/it).

Every test runs the real daemon ($SLUICE_BUILD/sluiced, default
build/asan) on loopback addresses only (127.0.0.0/8 and ::1), with its own
configuration, queue and logs in a temporary directory, and talks to it
over real sockets: exact bytes through `Client`, or stock clients
(smtplib, swaks).

- `Sluice` writes a configuration, starts `sluiced -f -c FILE`, waits for
  its port, and offers reload/stop/kill9/restart plus readers for the queue
  database and the logs.  `stop()` asserts a clean exit: status 0 and no
  AddressSanitizer/UBSan report on stderr.
- `Client` is a raw SMTP client: it sends exactly the bytes it is given and
  parses replies (multi-line aware) with a timeout, so tests can send what
  no well-behaved client would (smuggling, pipelining, garbage).
- `eventually(predicate, timeout, what)` polls until something the daemon
  does in its own time has happened (a delivery, a log row): the one way
  the tests wait, so that none sleeps a guessed time.
- `sluice_fixture(name, ...)` makes a module's shared daemon fixture.
- Fixtures (conftest.py) bound every test in time and stop every daemon
  they started.
"""
import contextlib
import csv
import glob
import os
import re
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("SLUICE_BUILD", ROOT / "build" / "asan"))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
SLUICED = BUILD / "sluiced"
SLUICECTL = BUILD / "sluicectl"

# The version every program reports (src/version.h).
VERSION = re.search(r'#define SLUICE_VERSION "([^"]+)"',
                    (ROOT / "src" / "version.h").read_text()).group(1)

FQDN = "sluice.test"
START_TIMEOUT = 10.0  # seconds for the daemon to accept connections
STOP_TIMEOUT = 15.0  # SIGTERM to exit (idle sessions are closed at once)
REPLY_TIMEOUT = 5.0  # one SMTP reply

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:")

_ipv6 = None


def ipv6_available():
    """True when ::1 can be bound (some containers have no IPv6)."""
    global _ipv6
    if _ipv6 is None:
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
                s.bind(("::1", 0))
            _ipv6 = True
        except OSError:
            _ipv6 = False
    return _ipv6


def free_port(ipv6_too=False):
    """A TCP port that is free on 127.0.0.1 (and ::1 when asked)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not ipv6_too:
            return port
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
                s6.bind(("::1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


# --- raw SMTP client ------------------------------------------------------


class Reply:
    """One SMTP reply: code, the text of each line, and helpers."""

    def __init__(self, lines):
        self.lines = lines  # raw lines without CRLF, as str (utf-8/replace)
        self.code = int(lines[-1][:3])
        self.texts = [ln[4:] for ln in lines]
        m = re.match(r"([245])\.(\d{1,3})\.(\d{1,3})\b", self.texts[-1])
        self.enhanced = m.group(0) if m else None

    @property
    def text(self):
        return "\n".join(self.lines)

    def __repr__(self):
        return f"Reply({self.text!r})"

    def check(self, code, enhanced=None, word=None):
        """Assert code, enhanced code and a key word (case-insensitive)."""
        assert self.code == code, f"expected {code}, got {self!r}"
        if enhanced is not None:
            assert self.enhanced == enhanced, \
                f"expected {code} {enhanced}, got {self!r}"
        if word is not None:
            assert word.lower() in self.text.lower(), \
                f"expected {word!r} in {self!r}"
        return self


class ConnectionClosed(Exception):
    pass


class Client:
    """A raw SMTP client over one TCP connection to sluiced.

    send() writes exactly the bytes given; reply() reads one (multi-line)
    reply; cmd() sends one line with CRLF and returns its reply.
    """

    def __init__(self, port, host="127.0.0.1", source=None, greeting=True,
                 timeout=REPLY_TIMEOUT):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        if source is not None:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.buf = b""
        self.eof = False
        self.greeting = self.reply() if greeting else None

    @property
    def local_port(self):
        return self.sock.getsockname()[1]

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        finally:
            self.sock.settimeout(self.timeout)
        if not chunk:
            self.eof = True
            raise ConnectionClosed(f"connection closed; unread {self.buf!r}")
        self.buf += chunk

    def line(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout(f"no complete line; have {self.buf!r}")
            self._fill(left)
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln.decode("utf-8", "replace")

    def reply(self, timeout=None):
        """Read one reply; lines "250-..." continue, "250 ..." ends it."""
        lines = []
        while True:
            ln = self.line(timeout)
            assert re.match(r"^[2-5]\d\d([ -]|$)", ln), \
                f"malformed reply line {ln!r} after {lines!r}"
            lines.append(ln)
            if len(ln) == 3 or ln[3] == " ":
                return Reply(lines)

    def replies(self, n, timeout=None):
        return [self.reply(timeout) for _ in range(n)]

    def cmd(self, line, timeout=None):
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.reply(timeout)

    def ehlo(self, name="client.example"):
        return self.cmd(f"EHLO {name}").check(250)

    def no_reply(self, wait=0.5):
        """True when nothing arrives within wait seconds."""
        if self.buf:
            return False
        try:
            self._fill(wait)
        except socket.timeout:
            return True
        except ConnectionClosed:
            return False
        return False

    def closed(self, timeout=3.0):
        """True when the server closes the connection within timeout
        (unread data is discarded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self._fill(deadline - time.monotonic())
            except ConnectionClosed:
                return True
            except (socket.timeout, TimeoutError):
                return False
            except OSError:
                return True
        return False

    def send_message(self, mail_from, rcpts, body, ehlo=True):
        """A complete transaction with DATA; returns the final reply.
        body is the message as it should arrive (dot-stuffing is done
        here) and must end with CRLF."""
        if ehlo:
            self.ehlo()
        self.cmd(f"MAIL FROM:<{mail_from}>").check(250, "2.1.0")
        for r in rcpts:
            self.cmd(f"RCPT TO:<{r}>").check(250, "2.1.5")
        self.cmd("DATA").check(354)
        if isinstance(body, str):
            body = body.encode()
        self.send(dot_stuff(body) + b".\r\n")
        return self.reply()

    def quit(self):
        with contextlib.suppress(OSError, ConnectionClosed, socket.timeout):
            self.cmd("QUIT")
        self.close()

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def dot_stuff(body):
    out = []
    for ln in body.split(b"\r\n"):
        out.append(b"." + ln if ln.startswith(b".") else ln)
    return b"\r\n".join(out)


def queue_id_of(reply):
    """The queue id in "250 2.6.0 <id> Queued mail for delivery"."""
    m = re.search(r"<([^>]+)>", reply.text)
    assert m, f"no <queue-id> in {reply!r}"
    return m.group(1)


def eventually(predicate, timeout=20.0, what=None, step=0.05):
    """Call predicate() until it returns something true, for at most
    timeout seconds, and return that.  When time runs out, with `what`
    (what the test waits for, in words) the test fails saying so; without,
    the last value is returned for the caller to judge (`assert
    eventually(...)`, or a test that also accepts the negative)."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v or time.monotonic() >= deadline:
            break
        time.sleep(step)
    if not v and what is not None:
        pytest.fail(f"{what}: not within {timeout:g} s (last: {v!r:.500})")
    return v


def start_threads(target, argss):
    """One daemon thread per argument tuple, started: the load of the
    chaos tests (their failures are collected by the threads)."""
    threads = [threading.Thread(target=target, args=args, daemon=True)
               for args in argss]
    for t in threads:
        t.start()
    return threads


def join_threads(threads, timeout, what):
    """Wait for every thread, timeout seconds in all; a thread still
    running then fails the test as hung."""
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
        assert not t.is_alive(), f"{what} hung"


def make_message(subject, body="Hello.\r\n", extra_headers=""):
    return (f"From: a@sender.example\r\nTo: user@localhost\r\n"
            f"Subject: {subject}\r\nMessage-ID: <{subject}@client.example>"
            f"\r\n{extra_headers}\r\n{body}")


# --- the daemon -------------------------------------------------------------


def _ini_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v)
    return str(v)


class Sluice:
    """One sluiced process with its own configuration, queue and logs.

    conn: overrides for the default receive connector "Default"
    connectors: extra receive connectors, each a dict with "name" and
        overrides of the default connector (so by default on the same
        binding); "{port}" in a value is replaced by the daemon's port
    transport: overrides for [Transport]
    domains: accepted domains (Authoritative)
    raw_extra: text appended verbatim to the configuration
    env: extra environment for the daemon
    wrap: command prefix (e.g. strace ...)
    """

    def __init__(self, workdir, conn=None, connectors=(), transport=None,
                 domains=("localhost", "example.test"), raw_extra="",
                 env=None, wrap=None, ipv6=False):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.queue_dir = self.dir / "queue"
        self.log_dir = self.dir / "log"
        self.conf_path = self.dir / "sluice.conf"
        self.ipv6 = ipv6
        self.port = free_port(ipv6_too=ipv6)
        self.host = "127.0.0.1"
        self.env = dict(env or {})
        self.wrap = list(wrap or [])
        self.proc = None
        self.stderr_path = self.dir / "stderr.log"
        self.stdout_path = self.dir / "stdout.log"
        self.runs = 0
        self.returncode = None
        self.configure(conn=conn, connectors=connectors, transport=transport,
                       domains=domains, raw_extra=raw_extra)

    # configuration -------------------------------------------------------

    def default_connector(self):
        bindings = [f"127.0.0.1:{self.port}"]
        if self.ipv6:
            bindings.append(f"[::1]:{self.port}")
        return {
            "name": "Default",
            "Bindings": bindings,
            "RemoteIPRanges": ["0.0.0.0/0", "::/0"],
            "AuthMechanism": "None",
            "PermissionGroups": "AnonymousUsers",
            "Fqdn": FQDN,
            "MaxMessageSize": "10MB",
            "MaxRecipientsPerMessage": 200,
            "MaxProtocolErrors": 50,
            "ConnectionTimeout": "60s",
            "ConnectionInactivityTimeout": "20s",
            "TarpitInterval": "0s",
            "ProtocolLoggingLevel": "Verbose",
        }

    def configure(self, conn=None, connectors=(), transport=None,
                  domains=("localhost", "example.test"), raw_extra=""):
        """Write the configuration file (does not reload)."""
        t = {
            "QueueDirectory": str(self.queue_dir),
            "LogDirectory": str(self.log_dir),
            "MaxReceiveSize": "100MB",
            "MaxRecipientEnvelopeLimit": 5000,
            # most tests send to made-up users of the accepted domains
            "RecipientValidationEnabled": "false",
            "ControlSocket": str(self.dir / "ctl.sock"),
        }
        t.update(transport or {})
        c = self.default_connector()
        c.update(conn or {})
        lines = ["[Transport]"]
        lines += [f"{k} = {_ini_value(v)}" for k, v in t.items()
                  if v is not None]
        for d in domains:
            lines += ["", f"[AcceptedDomain {d}]", "DomainType = Authoritative"]
        extra = []
        for x in connectors:
            rc = self.default_connector()  # same binding unless overridden
            rc.update(x)
            extra.append(rc)
        for rc in [c] + extra:
            rc = {k: self._subst(v) for k, v in rc.items()}
            name = rc.pop("name")
            lines += ["", f'[ReceiveConnector "{name}"]']
            lines += [f"{k} = {_ini_value(v)}" for k, v in rc.items()
                      if v is not None]
        self.write_config("\n".join(lines) + "\n" + raw_extra)

    def _subst(self, v):
        """"{port}" in a value stands for this daemon's port."""
        if isinstance(v, str):
            return v.replace("{port}", str(self.port))
        if isinstance(v, (list, tuple)):
            return [self._subst(x) for x in v]
        return v

    def write_config(self, text):
        """Replace the file in one step (a new file renamed over it), as
        configuration tools do: a reload still reading the file for an
        earlier SIGHUP sees the old text or the new, never an empty or
        half-written one (which can be a valid configuration without a
        receive connector, and would close the listeners)."""
        self.conf_text = text
        tmp = self.conf_path.with_name(self.conf_path.name + ".new")
        tmp.write_text(text)
        os.replace(tmp, self.conf_path)

    # process control -------------------------------------------------------

    def start(self, env=None, wait=True):
        assert self.proc is None or self.proc.poll() is not None
        self.runs += 1
        e = dict(os.environ)
        e.pop("SLUICE_CRASH_POINT", None)
        e.pop("SLUICE_FAULT", None)
        e.setdefault("ASAN_OPTIONS", "abort_on_error=0")
        e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        e.update(self.env)
        e.update(env or {})
        if not SLUICED.exists():
            pytest.fail(f"{SLUICED} does not exist: run `make asan` first")
        self._err = open(self.stderr_path, "ab")
        self._out = open(self.stdout_path, "ab")
        self._err.write(f"--- run {self.runs} ---\n".encode())
        self._err.flush()
        self._err_offset = self._err.tell()
        self.returncode = None
        self.proc = subprocess.Popen(
            self.wrap + [str(SLUICED), "-f", "-c", str(self.conf_path)],
            stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL,
            env=e, cwd=self.dir)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        """Wait until a client gets a greeting, then close that client
        cleanly (QUIT, EOF) so that it no longer counts as a session."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"sluiced exited with {self.proc.returncode} "
                            f"during start:\n{self.stderr()}")
            try:
                with Client(self.port, self.host, timeout=2) as c:
                    c.cmd("QUIT")
                    c.closed(2)
                return
            except (OSError, ConnectionClosed, AssertionError) as ex:
                last = ex
                time.sleep(0.05)
        self.kill9()
        pytest.fail(f"sluiced did not accept connections within {timeout}s "
                    f"({last!r}):\n{self.stderr()}")

    @property
    def pid(self):
        """The daemon's pid (the child of a wrapper such as strace)."""
        if not self.wrap:
            return self.proc.pid
        def child():
            for task in glob.glob(f"/proc/{self.proc.pid}/task/*/children"):
                kids = Path(task).read_text().split()
                if kids:
                    return int(kids[0])
            p = subprocess.run(["pgrep", "-P", str(self.proc.pid)],
                               capture_output=True, text=True, check=False)
            return int(p.stdout.split()[0]) if p.stdout.split() else None

        return eventually(child, 5, "the wrapped sluiced's pid")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        os.kill(self.pid, sig)

    def reload(self, settle=0.5):
        """SIGHUP; wait a little for the reload to be applied."""
        self.signal(signal.SIGHUP)
        time.sleep(settle)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            pytest.fail(f"sluiced did not exit within {timeout}s:\n"
                        f"{self.stderr()}")
        self._close_files()
        return self.returncode

    def stop(self, check=True):
        """SIGTERM, wait, and (check) assert exit 0 and a clean stderr."""
        if not self.alive():
            return self.returncode
        self.signal(signal.SIGTERM)
        rc = self.wait_exit()
        if check:
            self.assert_clean(rc)
        return rc

    def assert_clean(self, rc=0):
        err = self.stderr(all_runs=False)
        for mark in SANITIZER_MARKS:
            assert mark not in err, f"sanitizer report:\n{err}"
        assert rc == 0, f"sluiced exited with {rc}:\n{err}"

    def kill9(self):
        if self.alive():
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
            if self.wrap:
                # strace dies with SIGKILL but its child may linger
                subprocess.run(["pkill", "-9", "-P", str(self.proc.pid)],
                               check=False)
        if self.proc is not None:
            self.returncode = self.proc.returncode
        self._close_files()

    def restart(self, env=None):
        if self.alive():
            self.stop()
        return self.start(env=env)

    def _close_files(self):
        for f in (getattr(self, "_err", None), getattr(self, "_out", None)):
            if f is not None and not f.closed:
                f.close()

    def stderr(self, all_runs=False):
        try:
            data = self.stderr_path.read_bytes()
        except FileNotFoundError:
            return ""
        if not all_runs:
            marker = f"--- run {self.runs} ---\n".encode()
            i = data.rfind(marker)
            if i >= 0:
                data = data[i + len(marker):]
        return data.decode("utf-8", "replace")

    def wait_stderr(self, pattern, timeout=5.0):
        return eventually(lambda: re.search(pattern, self.stderr()), timeout)

    # clients -------------------------------------------------------------

    def client(self, **kw):
        return Client(self.port, kw.pop("host", self.host), **kw)

    def smtplib(self, **kw):
        import smtplib
        return smtplib.SMTP(self.host, self.port, local_hostname="client.example",
                            timeout=kw.pop("timeout", REPLY_TIMEOUT), **kw)

    # the queue -------------------------------------------------------------

    @property
    def db_path(self):
        return self.queue_dir / "queue.db"

    def _db(self):
        if not self.db_path.exists():
            return None
        db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True,
                             timeout=5)
        db.row_factory = sqlite3.Row
        return db

    def messages(self):
        """Rows of the messages table as dicts, "body" being the whole
        stored message as bytes: its first part (the contents table, or
        messages.body for rows of version 2) and its body file, if any."""
        db = self._db()
        if db is None:
            return []
        try:
            rows = [dict(r) for r in db.execute(
                "SELECT m.*, c.data AS first_part FROM messages m"
                " LEFT JOIN contents c ON c.message_id = m.id")]
        finally:
            db.close()
        for r in rows:
            first = r.pop("first_part")
            body = first if first is not None else r.get("body")
            if isinstance(body, str):
                body = body.encode()
            if r.get("log_seg"):
                # medium content: a range of a content log segment
                with open(self.log_segment(r["log_seg"]), "rb") as f:
                    f.seek(r["log_off"])
                    body = f.read(r["size"])
            if r.get("body_file"):
                body += (self.body_dir / r["body_file"]).read_bytes()
            r["body"] = body
        return rows

    @property
    def body_dir(self):
        """Where the spool keeps the body files of large messages."""
        return self.queue_dir / "body"

    @property
    def seglog_dir(self):
        """Where the spool keeps the content log's segments."""
        return self.queue_dir / "log"

    def log_segment(self, n):
        return self.seglog_dir / f"{n:08d}"

    def log_segments(self):
        """Names of the content log's segment files."""
        if not self.seglog_dir.exists():
            return []
        return sorted(p.name for p in self.seglog_dir.iterdir())

    def body_files(self):
        """Names of the body files in the queue."""
        if not self.body_dir.exists():
            return []
        return sorted(p.name for p in self.body_dir.iterdir())

    def recipients(self):
        db = self._db()
        if db is None:
            return []
        try:
            return [dict(r) for r in db.execute("SELECT * FROM recipients")]
        finally:
            db.close()

    def queue(self):
        """Messages, each with "rcpts": its recipient rows."""
        msgs = self.messages()
        rcpts = self.recipients()
        for m in msgs:
            key = m.get("id", m.get("rowid"))
            m["rcpts"] = [r for r in rcpts
                          if r.get("message_id") in (key, m.get("queue_id"))]
        return msgs

    def message(self, queue_id):
        found = [m for m in self.queue() if m.get("queue_id") == queue_id]
        assert len(found) == 1, \
            f"queue id {queue_id}: {len(found)} messages in the queue " \
            f"(ids: {[m.get('queue_id') for m in self.queue()]})"
        return found[0]

    def bodies(self):
        return [m["body"] for m in self.messages()]

    # logs ----------------------------------------------------------------------

    def protolog_files(self):
        return sorted(glob.glob(str(self.log_dir / "ProtocolLog" /
                                    "SmtpReceive" / "RECV*.LOG")))

    def tracklog_files(self):
        return sorted(glob.glob(str(self.log_dir / "MessageTracking" /
                                    "MSGTRK*.LOG")))

    @staticmethod
    def read_csv_log(files):
        """(header lines starting with '#', rows as lists of fields)."""
        headers, rows = [], []
        for f in files:
            with open(f, newline="", encoding="utf-8", errors="replace") as fh:
                text = fh.read()
            data = []
            for ln in text.splitlines(keepends=True):
                if ln.startswith("#"):
                    headers.append(ln.rstrip("\r\n"))
                else:
                    data.append(ln)
            rows += [r for r in csv.reader(data) if r]
        return headers, rows

    def protolog(self):
        return self.read_csv_log(self.protolog_files())

    def tracklog(self):
        return self.read_csv_log(self.tracklog_files())

    def track_events(self, event=None):
        """Tracking log rows as dicts keyed by the field names of their
        file's "#Fields:" line (Exchange's names), in order; only those of
        one event-id when event is given."""
        out = []
        for f in self.tracklog_files():
            headers, rows = self.read_csv_log([f])
            fields = [h for h in headers if h.startswith("#Fields:")]
            names = fields[-1].split(":", 1)[1].strip().split(",") \
                if fields else []
            out += [dict(zip(names, r)) for r in rows]
        return [e for e in out if event is None or e.get("event-id") == event]


def run_ctl(*args, cwd=None, timeout=20, env=None):
    """sluicectl with these arguments; env: variables added to ours."""
    if not SLUICECTL.exists():
        pytest.fail(f"{SLUICECTL} does not exist: run `make asan` first")
    e = None
    if env is not None:
        e = dict(os.environ)
        e.update(env)
    return subprocess.run([str(SLUICECTL)] + [str(a) for a in args],
                          capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env=e)


def split_headers(raw):
    """Header fields of a message (bytes) as [(name, value)], unfolded;
    stops at the first empty line."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    fields = []
    for ln in head.split(b"\r\n"):
        if ln[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b" " + ln.strip())
        elif b":" in ln:
            name, value = ln.split(b":", 1)
            fields.append((name.decode("latin-1"), value.strip()))
        else:
            fields.append((ln.decode("latin-1"), b""))
    return fields


def our_prefix(stored, original):
    """Check that the stored message is exactly <our headers> + original
    and return those headers as [(name, value)]."""
    assert stored.endswith(original), \
        f"stored message does not end with what was sent:\n{stored!r}"
    prefix = stored[:len(stored) - len(original)]
    assert prefix.endswith(b"\r\n"), f"prefix {prefix!r}"
    return split_headers(prefix + b"\r\n")


def notify_set(v):
    """Normalise a stored DSN NOTIFY value (flags or text) to a set."""
    if v is None or v == "" or v == 0:
        return set()
    if isinstance(v, int):
        names = {1: "NEVER", 2: "SUCCESS", 4: "FAILURE", 8: "DELAY"}
        return {n for bit, n in names.items() if v & bit}
    return {t.strip().upper() for t in str(v).split(",") if t.strip()}


def swaks(port, *args, host="127.0.0.1", timeout=30):
    return subprocess.run(
        ["swaks", "--server", host, "--port", str(port),
         "--helo", "client.example", "--timeout", "10"] + list(args),
        capture_output=True, text=True, timeout=timeout)


def sluice_fixture(name, config=None, **kw):
    """A module-scoped fixture named `name`: one sluiced for a module's
    tests, stopped (and checked) after the last.  kw are Sluice's keyword
    arguments; config(workdir, pki), when given, returns more of them from
    the daemon's directory and the test PKI (certificates, users files).
        anon = sluice_fixture("anon")
        tls = sluice_fixture("tls", lambda d, pki: tls_conf(pki))"""
    @pytest.fixture(scope="module", name=name)
    def fixture(request, tmp_path_factory):
        d = tmp_path_factory.mktemp(name)
        more = config(d, request.getfixturevalue("pki")) if config else {}
        with running(d, **kw, **more) as s:
            yield s
    return fixture


@contextlib.contextmanager
def running(workdir, **kw):
    """A started Sluice for a module-scoped fixture; stopped (and checked)
    at the end, killed if stopping fails."""
    s = Sluice(workdir, **kw)
    s.start()
    try:
        yield s
        s.stop()
    finally:
        s.kill9()
