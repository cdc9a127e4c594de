"""Logs: the protocol log (Exchange's CSV layout) records a session's
connect, commands, replies and disconnect; the message tracking log has a
RECEIVE row per recipient with the queue id."""
import re

from harness import eventually, make_message, queue_id_of, sluice_fixture

FIELDS = ("#Fields: date-time,connector-id,session-id,sequence-number,"
          "local-endpoint,remote-endpoint,event,data,context")


logs = sluice_fixture("logs")


def wait_rows(read, pred, timeout=5.0):
    """Poll a log until pred(rows) holds (logs may be written lazily)."""
    eventually(lambda: pred(read()[1]), timeout)
    return read()


def test_protocol_log_session(logs):
    with logs.client() as c:
        me = f"127.0.0.1:{c.local_port}"
        r = c.send_message("a@sender.example", ["user@localhost"],
                           make_message("protolog"))
        r.check(250, "2.6.0")
        c.cmd("QUIT").check(221)
        assert c.closed()

    def mine(rows):
        return [x for x in rows if len(x) >= 7 and x[5] == me]

    headers, rows = wait_rows(
        logs.protolog, lambda rows: any(x[6] == "-" for x in mine(rows)))
    assert logs.protolog_files(), "no RECV*.LOG file"
    for f in logs.protolog_files():
        name = f.rsplit("/", 1)[1]
        assert len(name) >= len("RECVyyyymmdd-N.LOG")
        assert name[4:12].isdigit() and name[12] == "-", name
    assert FIELDS in headers, headers
    rows = mine(rows)
    assert rows, "no rows for our session"
    assert all(len(x) == 9 for x in rows), rows
    events = [x[6] for x in rows]
    assert events[0] == "+" and events[-1] == "-", events
    assert {"<", ">"} <= set(events)
    # One session id, sequence numbers counting up from 0.
    assert len({x[2] for x in rows}) == 1
    seqs = [int(x[3]) for x in rows]
    assert seqs == list(range(len(seqs))), seqs
    assert all(x[1].endswith("Default") for x in rows)
    assert all(x[4] == f"127.0.0.1:{logs.port}" for x in rows)
    received = [x[7] for x in rows if x[6] == "<"]
    sent = [x[7] for x in rows if x[6] == ">"]
    assert "EHLO client.example" in received
    assert "MAIL FROM:<a@sender.example>" in received
    assert "QUIT" in received
    assert any(t.startswith("220 ") for t in sent), sent
    assert any(t.startswith("250 2.6.0") and queue_id_of(r) in t
               for t in sent), sent
    # Message content is never logged.
    assert not any("protolog" in x[7] and "Subject" in x[7] for x in rows)


def test_protocol_log_escapes_control_characters(logs):
    with logs.client() as c:
        me = f"127.0.0.1:{c.local_port}"
        c.ehlo()
        c.cmd('NOOP a,"b",\x1b[31mred\x07').check(250)
        c.quit()

    def mine(rows):
        return [x for x in rows if len(x) >= 7 and x[5] == me]

    _, rows = wait_rows(logs.protolog,
                        lambda rows: any(x[6] == "-" for x in mine(rows)))
    noop = [x for x in mine(rows) if x[6] == "<" and x[7].startswith("NOOP")]
    assert len(noop) == 1, mine(rows)
    assert "\x1b" not in noop[0][7] and "\x07" not in noop[0][7]
    assert 'a,"b",' in noop[0][7]  # CSV quoting round-trips


def test_tracking_log_receive_per_recipient(logs):
    rcpts = ["one@localhost", "two@localhost", "three@example.test"]
    with logs.client() as c:
        r = c.send_message("tracker@sender.example", rcpts,
                           make_message("tracking"))
        r.check(250, "2.6.0")
        c.quit()
    qid = queue_id_of(r)
    # Only the RECEIVE rows: the local deliveries may already have added
    # their DELIVER rows for the same message (that made this test flaky).
    def received(rows):
        return [x for x in rows if qid in x and "RECEIVE" in x]

    headers, rows = wait_rows(
        logs.tracklog, lambda rows: len(received(rows)) >= len(rcpts))
    assert logs.tracklog_files(), "no MSGTRK*.LOG file"
    mine = received(rows)
    assert len(mine) == len(rcpts), mine
    assert sorted(next(f for f in x if f in rcpts) for x in mine) == \
        sorted(rcpts)
    assert all("tracker@sender.example" in x for x in mine), mine


def session_rows(logs, me, timeout=10.0):
    """The protocol log rows of the session from local endpoint me, once
    its disconnect row is written."""
    def mine(rows):
        return [x for x in rows if len(x) >= 7 and x[5] == me]
    _, rows = wait_rows(logs.protolog,
                        lambda rows: any(x[6] == "-" for x in mine(rows)),
                        timeout)
    return mine(rows)


def test_protocol_log_bounded_per_session(logs):
    """A client that makes us log without sending mail (here 3000 refused
    recipients, about 600 KB of rows) meets the session's log budget
    (256 KB): one row says so, the rest are counted, the disconnect row
    says how many were not written (issue 10.7)."""
    n = 3000
    with logs.client() as c:
        me = f"127.0.0.1:{c.local_port}"
        c.ehlo()
        c.cmd("MAIL FROM:<a@sender.example>").check(250)
        for start in range(0, n, 250):
            c.send("".join(f"RCPT TO:<not-relayed-{i:05d}@elsewhere.example>"
                           f"\r\n" for i in range(start, start + 250)))
            for r in c.replies(250):
                r.check(550, "5.7.54")
        c.cmd("QUIT").check(221)
    rows = session_rows(logs, me)
    size = sum(len(",".join(x)) + 2 for x in rows)
    assert size < 256 * 1024 + 4096, size
    limit = [x for x in rows if x[6] == "*" and "log limit reached" in x[7]]
    assert len(limit) == 1, limit
    last = rows[-1]
    assert last[6] == "-", last
    m = re.search(r"(\d+) lines \((\d+) bytes\) not logged", last[7])
    assert m, last
    logged = len([x for x in rows if x[6] == "<" and "RCPT" in x[7]])
    assert 0 < logged < n
    # Every command and reply not written was counted.
    assert int(m.group(1)) >= 2 * (n - logged)
    # The next session logs as usual.
    with logs.client() as c:
        me = f"127.0.0.1:{c.local_port}"
        c.ehlo()
        c.quit()
    assert any(x[7] == "EHLO client.example" for x in session_rows(logs, me))


def test_protocol_log_budget_grows_with_mail(logs):
    """Mail earns its log rows: a session whose transactions are big (seven
    messages of 150 long recipients, about 290 KB of rows) is logged
    whole."""
    rcpts = [f"{'r' * 50}-{i:03d}@localhost" for i in range(150)]
    with logs.client() as c:
        me = f"127.0.0.1:{c.local_port}"
        c.ehlo()
        for k in range(7):
            c.send(f"MAIL FROM:<a@sender.example>\r\n" +
                   "".join(f"RCPT TO:<{r}>\r\n" for r in rcpts) + "DATA\r\n")
            c.reply().check(250)
            for r in c.replies(len(rcpts)):
                r.check(250, "2.1.5")
            c.reply().check(354)
            c.send(make_message(f"budget-{k}") + ".\r\n")
            c.reply().check(250, "2.6.0")
        c.cmd("QUIT").check(221)
    rows = session_rows(logs, me)
    assert not [x for x in rows if "log limit" in x[7]]
    assert len([x for x in rows if x[6] == "<" and "RCPT" in x[7]]) == 7 * 150
    assert sum(len(",".join(x)) for x in rows) > 256 * 1024
def test_logs_never_start_a_formula(logs):
    """Issue 10.25: a field that begins with '=', '+', '-' or '@' would
    open as a formula in a spreadsheet (Exchange's logs are read in
    Excel): such fields are written with a leading "'" inside quotes, the
    value still readable, while the protocol log's own event names "+"
    and "-" stay exact."""
    sender = "=1+1@sender.example"
    rcpts = ["-2+3@localhost", "+cmd@localhost"]
    with logs.client() as c:
        me = f"127.0.0.1:{c.local_port}"
        r = c.send_message(sender, rcpts, make_message("formulas"))
        r.check(250, "2.6.0")
        c.send(b"@SUM(1)\r\n")
        c.reply()
        c.quit()
    qid = queue_id_of(r)
    _, rows = wait_rows(
        logs.tracklog, lambda rows: len([x for x in rows if qid in x]) >= 2)
    mine = [x for x in rows if qid in x]
    assert len(mine) == 2, mine
    for row in mine:
        assert not any(f[:1] in ("=", "+", "-", "@") for f in row), row
        assert "'" + sender in row, row
    assert sorted(f for x in mine for f in x if f.startswith("'") and
                  f != "'" + sender) == sorted("'" + a for a in rcpts)
    # the raw file: quoted, so no cell starts with the formula character
    raw = "".join(open(p).read() for p in logs.tracklog_files())
    assert ',"\'=1+1@sender.example",' in raw

    def session(rows):
        return [x for x in rows if len(x) >= 7 and x[5] == me]

    _, rows = wait_rows(logs.protolog,
                        lambda rows: any(x[6] == "-" for x in session(rows)))
    events = [x[6] for x in session(rows)]
    assert events[0] == "+" and events[-1] == "-", events
    data = [x[7] for x in session(rows) if x[6] == "<"]
    assert "'@SUM(1)" in data, data
    assert not any(d[:1] in ("=", "+", "-", "@") for d in data), data
