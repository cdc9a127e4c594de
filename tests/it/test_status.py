"""The status listener (issue 17): the status page, Prometheus metrics and
the partners' TLS posture, after known traffic.

One daemon relays a known mix: a local delivery, and one message through
each of five smart-host connectors to fake next hops -- TLS with a
certificate that names the next hop (verified), a self-signed
certificate (encrypted, not verified), no STARTTLS (plaintext), a
required DomainValidation against an expired certificate (deferred for
TLS), and a next hop that refuses the recipient (returned).  Then:

- /metrics is parsed by Debian's python3-prometheus-client parser and
  every counter matches the traffic sent;
- `sluicectl get-tlsposture` and the page (rendered by headless Chromium,
  JavaScript off, with a screenshot) show each partner's row with the
  right figures, and the figures survive a restart;
- the listener itself: loopback only, GET and HEAD only, a loopback Host
  only (DNS rebinding), 404 elsewhere, reloads that move it.
"""
import http.client
import os
import shutil
import socket
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness import free_port, run_ctl
from peers.fakesmtp import FakeSmtp, server_context
from test_delivery import RELAY, send, states, wait_for
from test_queue_cli import ctl

TLS_CAPS = ("PIPELINING", "STARTTLS", "ENHANCEDSTATUSCODES")


def http_get(port, path="/", host=None, method="GET", addr="127.0.0.1"):
    c = http.client.HTTPConnection(addr, port, timeout=10)
    try:
        c.putrequest(method, path, skip_host=True)
        c.putheader("Host", host or f"127.0.0.1:{port}")
        c.endheaders()
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def scrape(port):
    """{(name, frozenset(labels)): value} of every sample."""
    status, headers, body = http_get(port, "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    out = {}
    for fam in text_string_to_metric_families(body.decode()):
        assert fam.name.startswith("sluice_"), fam.name
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def sample(m, name, **labels):
    return m.get((name, frozenset(labels.items())), 0.0)


def posture(s, *args):
    """get-tlsposture as {partner: {key: value}}."""
    r = ctl(s, "get-tlsposture", *args)
    assert r.returncode == 0, r.stderr + r.stdout
    rows, cur = {}, None
    for line in r.stdout.splitlines():
        if not line.strip():
            cur = None
            continue
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "Partner":
            cur = rows.setdefault(value, {})
        cur[key] = value
    return rows


def connector(name, port, extra=""):
    return f"""
[SendConnector {name}]
AddressSpaces = {name.lower()}.test
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:{port}
Fqdn = out.sluice.test
{extra}
"""


@pytest.fixture(scope="module")
def traffic(pki, tmp_path_factory):
    """The daemon after the known traffic, with its peers."""
    from harness import Sluice
    peers = {
        "Good": FakeSmtp(capabilities=TLS_CAPS,
                         tls=server_context(pki, "server")),
        "Self": FakeSmtp(capabilities=TLS_CAPS,
                         tls=server_context(pki, "self")),
        "Plain": FakeSmtp(capabilities=("PIPELINING",)),
        "Strict": FakeSmtp(capabilities=TLS_CAPS,
                           tls=server_context(pki, "expired")),
        "Bounce": FakeSmtp(capabilities=("PIPELINING",), replies={
            "RCPT": "550 5.1.1 no such user here"}),
    }
    for p in peers.values():
        p.start()
    extra = "".join(connector(n, p.port) for n, p in peers.items()
                    if n != "Strict")
    extra += connector("Strict", peers["Strict"].port,
                       "RequireTLS = true\nTlsAuthLevel = DomainValidation\n"
                       "TlsDomain = *.sluice.test")
    status_port = free_port()
    s = Sluice(tmp_path_factory.mktemp("status"), conn=RELAY, transport={
        "TrustedCAFile": f"{pki}/trusted.pem",
        "TransientFailureRetryInterval": "1h",
        "StatusListen": f"127.0.0.1:{status_port}"}, raw_extra=extra)
    s.status_port = status_port
    s.start()
    try:
        s.before = scrape(status_port)
        send(s, ["local@example.test"], "to a mailbox")
        for name in ("Good", "Self", "Plain", "Strict"):
            send(s, [f"bob@{name.lower()}.test"], f"to {name}")
        # the null sender: no notice comes back to count
        send(s, ["nobody@bounce.test"], "refused", sender="")
        assert wait_for(lambda: all(
            r["status"] != 0 or r["attempts"] >= 1
            for r in s.recipients()), timeout=40)
        s.peers = peers
        yield s
        s.stop()
    finally:
        s.kill9()
        for p in peers.values():
            p.stop()


def test_metrics_match_the_traffic(traffic):
    s = traffic
    # inbound sessions are counted when they end, deliveries when their
    # records are durable: wait until the last ones are in
    assert wait_for(lambda: sample(
        scrape(s.status_port), "sluice_messages_delivered_total",
        connector="Maildir") == 1)
    m = scrape(s.status_port)
    b = s.before

    def delta(name, **labels):
        return sample(m, name, **labels) - sample(b, name, **labels)

    assert delta("sluice_messages_received_total", connector="Default") == 6
    for name in ("Maildir", "Good", "Self", "Plain"):
        assert delta("sluice_messages_delivered_total",
                     connector=name) == 1, name
    assert delta("sluice_messages_deferred_total", connector="Strict") == 1
    assert delta("sluice_messages_returned_total", connector="Bounce") == 1
    assert delta("sluice_messages_delivered_total", connector="Strict") == 0
    # every message got a durable commit; every delivery a latency
    assert delta("sluice_commit_latency_seconds_count") == 6
    assert delta("sluice_commit_latency_seconds_bucket", le="+Inf") == 6
    assert delta("sluice_delivery_latency_seconds_count",
                 connector="Good") == 1
    # six SMTP sessions from the test (plus none of its own)
    assert wait_for(lambda: sample(
        scrape(s.status_port), "sluice_tls_sessions_total",
        direction="inbound", policy="opportunistic", result="none") -
        sample(b, "sluice_tls_sessions_total", direction="inbound",
               policy="opportunistic", result="none") == 6)
    assert delta("sluice_sessions_total", direction="inbound",
                 connector="Default") == 6
    # outbound: one session per next hop, each with its TLS outcome
    for name in ("Good", "Self", "Plain", "Strict", "Bounce"):
        assert delta("sluice_sessions_total", direction="outbound",
                     connector=name) == 1, name
    tls = {k: v for k, v in m.items() if k[0] == "sluice_tls_sessions_total"
           and ("direction", "outbound") in k[1]}
    want = {("opportunistic", "verified"): 1,
            ("opportunistic", "encrypted"): 1,
            ("opportunistic", "none"): 2,
            ("DomainValidation", "certificate-expired"): 1}
    got = {(dict(k[1])["policy"], dict(k[1])["result"]): v
           for k, v in tls.items()}
    assert got == want
    # the gauges: the deferred message waits in its queue (the queues
    # are read at most every 10 seconds)
    assert wait_for(lambda: sample(scrape(s.status_port),
                                   "sluice_queue_messages",
                                   queue="Strict") == 1, timeout=15)
    assert sample(m, "sluice_sessions_active", direction="inbound") == 0


def test_posture_per_partner(traffic):
    rows = posture(traffic)
    good, self_, plain = rows["Good"], rows["Self"], rows["Plain"]
    strict, bounce = rows["Strict"], rows["Bounce"]
    assert good["Kind"] == "smart hosts"
    assert good["EffectivePolicy"] == "Good: opportunistic"
    assert good["Sessions24h"] == "1" and good["Verified24h"] == "1"
    assert good["TlsVersions24h"] == "TLSv1.3=1 TLSv1.2=0 none=0"
    assert good["Failures24h"] == "none"
    assert self_["Sessions24h"] == "1" and self_["Verified24h"] == "0"
    assert self_["TlsVersions24h"] == "TLSv1.3=1 TLSv1.2=0 none=0"
    assert plain["TlsVersions24h"] == "TLSv1.3=0 TLSv1.2=0 none=1"
    assert strict["EffectivePolicy"] == \
        "Strict: DomainValidation (*.sluice.test)"
    assert strict["Failures24h"] == "certificate-expired=1"
    assert strict["MessagesDeferred24h"] == "1"
    assert strict["PoliciesApplied"] == "DomainValidation"
    # a refused recipient is no TLS failure
    assert bounce["MessagesReturned24h"] == "0"
    assert bounce["Failures7d"] == "none"
    for row in rows.values():
        assert row["Sessions7d"] == row["Sessions24h"]
    # one domain: its queue's row, here the smart-host connector's
    one = posture(traffic, "strict.test")
    assert list(one) == ["Strict"]
    assert "routed through this connector" in one["Strict"]["Note"]
    # a domain with no traffic still shows what applies
    none = posture(traffic, "example.test")
    assert none["example.test"]["EffectivePolicy"] == \
        "none: delivered locally"
    assert none["example.test"]["Sessions24h"] == "0"


class _Tables(HTMLParser):
    """The text of every cell, per table id and row."""

    def __init__(self):
        super().__init__()
        self.tables, self.table, self.row, self.cell = {}, None, None, None
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "table":
            self.table = self.tables.setdefault(a.get("id"), [])
        elif tag == "tr" and self.table is not None:
            self.row = []
            self.table.append(self.row)
        elif tag in ("td", "th") and self.row is not None:
            self.cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append(self.cell)
            self.cell = None
        elif tag == "table":
            self.table = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-quic", "--no-first-run",
                  "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def chromium(*args, timeout=90):
    exe = shutil.which("chromium")
    assert exe, "chromium is not installed (scripts/setup-deps)"
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True, timeout=timeout, check=False)


@pytest.mark.timeout_s(180)
def test_status_page_in_chromium(traffic, tmp_path):
    url = f"http://127.0.0.1:{traffic.status_port}/"
    shot = tmp_path / "status.png"
    r = chromium(f"--screenshot={shot}", "--window-size=1400,1000", url)
    assert shot.exists() and shot.stat().st_size > 10000, r.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = chromium("--dump-dom", url)
    assert r.returncode == 0, r.stderr[-2000:]
    page = _Tables()
    page.feed(r.stdout.decode())
    assert page.scripts == 0
    rows = {row[0]: row for row in page.tables["posture"][2:]}
    # partner, policy, sessions, 1.3, 1.2, plain, verified, failures,
    # deferred, returned (24 hours); sessions, verified, failures,
    # deferred (7 days)
    assert rows["Good"][1:10] == ["Good: opportunistic", "1", "1", "0", "0",
                                  "1", "none", "0", "0"]
    assert rows["Self"][2:7] == ["1", "1", "0", "0", "0"]
    assert rows["Plain"][2:7] == ["1", "0", "0", "1", "0"]
    assert rows["Strict"][7:9] == ["certificate-expired=1", "1"]
    assert rows["Strict"][10:] == ["1", "0", "certificate-expired=1", "1"]
    queues = {row[0]: row for row in page.tables["queue-table"][1:]}
    assert queues["Strict"][3] == "1"  # (read after the metrics test)
    deferrals = page.tables["deferral-table"][1:]
    assert any(d[2] == "bob@strict.test" and "expired" in d[4]
               for d in deferrals)
    # kept for the report
    keep = os.environ.get("SLUICE_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, Path(keep) / "status.png")


def test_posture_survives_a_restart(pki, tmp_path):
    from harness import Sluice
    with FakeSmtp(capabilities=TLS_CAPS,
                  tls=server_context(pki, "server")) as mx:
        s = Sluice(tmp_path / "s", conn=RELAY, transport={
            "TrustedCAFile": f"{pki}/trusted.pem"},
            raw_extra=connector("Good", mx.port))
        s.start()
        try:
            send(s, ["bob@good.test"], "once")
            assert wait_for(lambda: states(s)["bob@good.test"][0] == 1)
            assert wait_for(
                lambda: posture(s, "Good")["Good"]["Sessions24h"] == "1")
            s.stop()
            # written by the stop, in the queue database
            with s._db() as db:
                n = db.execute("select sum(sessions) from tls_posture "
                               "where partner = 'Good'").fetchone()[0]
            assert n == 1
            s.start()
            row = posture(s, "Good")["Good"]
            assert row["Sessions24h"] == "1" and row["Verified7d"] == "1"
            s.stop()
        finally:
            s.kill9()


def test_posture_off(pki, sluice_factory):
    s = sluice_factory(transport={"TlsPostureEnabled": "false"})
    r = ctl(s, "get-tlsposture")
    assert r.returncode == 1 and "TlsPostureEnabled" in r.stdout


@pytest.fixture(scope="module")
def listener(tmp_path_factory):
    from harness import Sluice
    port = free_port()
    s = Sluice(tmp_path_factory.mktemp("listener"),
               transport={"StatusListen": f"127.0.0.1:{port}"})
    s.status_port = port
    s.start()
    yield s
    s.stop()


def test_page_headers_and_methods(listener):
    port = listener.status_port
    status, h, body = http_get(port, "/")
    assert status == 200 and h["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in h["Content-Security-Policy"]
    assert h["Cache-Control"] == "no-store"
    assert h["X-Content-Type-Options"] == "nosniff"
    assert b"<script" not in body.lower()
    assert b'id="posture"' in body and b'id="queue-table"' in body
    status, _, body = http_get(port, "/", method="HEAD")
    assert status == 200 and body == b""
    status, _, _ = http_get(port, "/", method="POST")
    assert status == 405
    status, _, body = http_get(port, "/etc/passwd")
    assert status == 404 and b"/metrics" in body
    for host in ("localhost", f"localhost:{port}", "127.0.0.2",
                 "[::1]:80"):
        assert http_get(port, "/", host=host)[0] == 200, host
    # a rebound DNS name reaching loopback gets nothing
    for host in ("evil.example", f"evil.example:{port}", "10.0.0.1",
                 "127.0.0.1.evil.example", "[::2]"):
        status, _, body = http_get(port, "/metrics", host=host)
        assert status == 403 and b"sluice_" not in body, host


def test_oversized_request_is_refused(listener):
    with socket.create_connection(("127.0.0.1", listener.status_port),
                                  timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Junk: " +
                     b"a" * 20000 + b"\r\n\r\n")
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 4") and b"sluice_" not in data
    # and the listener still serves
    assert http_get(listener.status_port, "/metrics")[0] == 200


def test_status_listen_must_be_loopback(tmp_path):
    from harness import Sluice
    s = Sluice(tmp_path / "s", transport={
        "StatusListen": "127.0.0.1:8025, 0.0.0.0:8026"})
    r = run_ctl("-c", str(s.conf_path), "config", "check")
    assert r.returncode == 1
    line = [ln for ln in s.conf_text.splitlines()
            if ln.startswith("StatusListen")]
    lineno = s.conf_text.splitlines().index(line[0]) + 1
    assert f"{s.conf_path}:{lineno}: StatusListen 0.0.0.0:8026" in \
        r.stdout + r.stderr
    assert "loopback" in r.stdout + r.stderr


def test_reload_moves_the_listener(sluice_factory):
    a, b = free_port(), free_port()
    s = sluice_factory(transport={"StatusListen": f"127.0.0.1:{a}"})
    assert http_get(a, "/metrics")[0] == 200
    s.configure(transport={"StatusListen": f"127.0.0.1:{b}"})
    s.reload()
    assert wait_for(lambda: _serves(b), timeout=10)
    assert not _serves(a)
    # a binding that cannot be opened refuses the reload: b stays
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        taken = busy.getsockname()[1]
        s.configure(transport={"StatusListen": f"127.0.0.1:{taken}"})
        s.reload()
        assert wait_for(lambda: "reload refused" in s.stderr())
        assert _serves(b)
    # and off again
    s.configure()
    s.reload()
    assert wait_for(lambda: not _serves(b), timeout=10)


def _serves(port):
    try:
        return http_get(port, "/metrics")[0] == 200
    except OSError:
        return False


DEEP_MESSAGES = 100000  # two recipients each: 200,000
DEEP_DOMAINS = 50


@pytest.mark.timeout_s(300)
def test_queue_reading_leaves_smtp_served(tmp_path):
    """The queue table of a deep queue (200,000 recipients written straight
    into queue.db) is read on a thread of its own: while a reading is in
    progress (held open by the test build's SLUICE_TEST_STATUS_HOLD) mail
    is accepted and the page and /metrics answer without its figures;
    once it ends, its counts are served."""
    from harness import Client, Sluice, make_message
    from test_queue_views import EXTRA, fill

    hold, port = tmp_path / "hold", free_port()
    s = Sluice(tmp_path / "d", raw_extra=EXTRA, transport={
        "Resolver": "127.0.0.1@9", "StatusListen": f"127.0.0.1:{port}"},
        env={"SLUICE_TEST_STATUS_HOLD": str(hold)})
    s.start()
    s.stop()  # the schema
    fill(s.db_path, (
        (f"S{i:08d}", "a@example.org",
         [(f"u{i}@relay.test", None),
          (f"v{i}@d{i % DEEP_DOMAINS}.example", None)])
        for i in range(DEEP_MESSAGES)))
    s.start()
    try:
        # the first request starts the first reading: none to serve yet
        m = scrape(port)
        assert sample(m, "sluice_queue_reading") == 1
        assert sample(m, "sluice_queue_readings_total") == 0
        assert not [k for k in m if k[0] == "sluice_queue_messages"]
        status, _, body = http_get(port, "/")
        assert status == 200 and b"The queue is being read" in body
        # the loop is free: a message is accepted meanwhile
        with Client(s.port) as c:
            c.ehlo()
            c.cmd("MAIL FROM:<b@example.org>").check(250)
            c.cmd("RCPT TO:<late@relay.test>").check(250)
            c.cmd("DATA").check(354)
            c.send(make_message("late").encode() + b".\r\n")
            c.reply().check(250)
        m = scrape(port)
        assert sample(m, "sluice_queue_reading") == 1
        assert sample(m, "sluice_queue_readings_total") == 0
        assert sample(m, "sluice_messages_received_total",
                      connector="Default") == 1
        # the reading ends: its counts from then on
        hold.touch()
        assert wait_for(lambda: sample(
            scrape(port), "sluice_queue_readings_total") == 1, timeout=120)
        m = scrape(port)
        assert sample(m, "sluice_queue_reading") == 0
        got = {dict(k[1])["queue"]: v for k, v in m.items()
               if k[0] == "sluice_queue_messages"}
        assert len(got) == DEEP_DOMAINS + 1, sorted(got)
        # the late message is counted if the walk had not passed it
        assert got["Relay"] in (DEEP_MESSAGES, DEEP_MESSAGES + 1)
        for d in range(DEEP_DOMAINS):
            assert got[f"d{d}.example"] == DEEP_MESSAGES // DEEP_DOMAINS
        status, _, body = http_get(port, "/")
        assert status == 200 and b"The queue is being read" not in body
        assert b"<td>d0.example</td>" in body
    finally:
        s.stop()


MIXED_EXTRA = """
[SendConnector Partner]
IsTransportRuleScoped = true
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:9
"""


@pytest.mark.timeout_s(180)
def test_queue_table_is_get_queue(tmp_path):
    """The page's queue table and sluice_queue_messages, read on the
    status thread through their own narrow query (the seven columns a
    count needs), say exactly what `sluicectl queue` says: the same
    queues, MessageCount (a message once per queue however many of its
    recipients wait there, a domain however it is spelled), Status,
    NextRetryTime and LastError (the last one in queue order), for a queue
    of mixed recipients: several queues per message, a transport rule's
    connector, suspended, due and deferred ones.  And
    sluice_queue_reading_cpu_seconds says what the reading cost: 0 before
    the first, more once one has finished."""
    import sqlite3
    import time as _time
    from harness import Sluice
    from test_queue_views import EXTRA, SUSPENDED, fill, queue_rows

    port = free_port()
    s = Sluice(tmp_path / "d", raw_extra=EXTRA + MIXED_EXTRA, transport={
        "Resolver": "127.0.0.1@9", "StatusListen": f"127.0.0.1:{port}"})
    s.start()
    s.stop()  # the schema
    now = int(_time.time())
    msgs = []
    for i in range(300):
        # the domain spelled three ways, the relay, a second domain twice
        rcpts = [(f"u{i}@relay.test", now + 600 + i),
                 (f"v{i}@{('d1.example', 'D1.Example', 'd1.EXAMPLE')[i % 3]}",
                  (now + 900 - i, 0, SUSPENDED)[i % 3]),
                 (f"w{i}@d{i % 7}.example", now + 1200 + 7 * i),
                 (f"x{i}@d{i % 7}.example", now + 60 + i)]
        msgs.append((f"M{i:08d}", "a@example.org", rcpts))
    fill(s.db_path, msgs)
    db = sqlite3.connect(str(s.db_path))
    # each row its own last error; a transport rule's connector for some
    db.execute("UPDATE recipients SET last_error = '451 4.4.1 row ' || id")
    db.execute("UPDATE recipients SET rule_connector = 'Partner',"
               " rule_route = 'to partner' WHERE addr LIKE 'w%'"
               " AND message_id % 5 = 0")
    db.execute("UPDATE recipients SET rule_tls = 'tls rule'"
               " WHERE addr LIKE 'x%' AND message_id % 11 = 0")
    db.commit()
    db.close()
    s.start()
    try:
        m = scrape(port)
        assert sample(m, "sluice_queue_reading_cpu_seconds") == 0
        assert wait_for(lambda: sample(
            scrape(port), "sluice_queue_readings_total") == 1, timeout=60)
        m = scrape(port)
        assert sample(m, "sluice_queue_reading_cpu_seconds") > 0
        status, _, body = http_get(port, "/")
        assert status == 200
        t = _Tables()
        t.feed(body.decode())
        page = {r[0]: r for r in t.tables["queue-table"][1:]}
        p = ctl(s, "queue")
        want = {}
        for ln in p.stdout.splitlines()[1:]:
            f = ln.split(None, 5)
            want[f[0]] = f
        # Relay, Partner, d0..d6.example and each with RequireTls
        assert queue_rows(p) and len(want) == 16, sorted(want)
        assert sorted(page) == sorted(want)
        for name, (ident, typ, st, count, retry, err) in want.items():
            got = page[name]
            assert got[:4] == [ident, typ, st, count], (got, want[name])
            assert got[5] == err, (got, want[name])
            assert (got[4] == "-") == (retry == "-"), (got, want[name])
            if retry != "-":
                # the page says "YYYY-MM-DD HH:MM:SS UTC", the CLI ISO 8601
                assert got[4] == retry.replace("T", " ").replace(
                    "Z", " UTC"), (got, want[name])
            assert sample(m, "sluice_queue_messages", queue=name) == \
                int(count), name
        assert page["Relay"][3] == "300" and page["Partner"][3] == "60"
        assert page["d1.example"][2:4] == ["Ready", "300"]
    finally:
        s.stop()
