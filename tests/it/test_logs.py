"""Logs: the protocol log (Exchange's CSV layout) records a session's
connect, commands, replies and disconnect; the message tracking log has a
RECEIVE row per recipient with the queue id."""
import time

import pytest

from harness import make_message, queue_id_of, running

FIELDS = ("#Fields: date-time,connector-id,session-id,sequence-number,"
          "local-endpoint,remote-endpoint,event,data,context")


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    with running(tmp_path_factory.mktemp("logs")) as s:
        yield s


def wait_rows(read, pred, timeout=5.0):
    """Poll a log until pred(rows) holds (logs may be written lazily)."""
    deadline = time.monotonic() + timeout
    while True:
        headers, rows = read()
        if pred(rows) or time.monotonic() > deadline:
            return headers, rows
        time.sleep(0.1)


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
    headers, rows = wait_rows(
        logs.tracklog,
        lambda rows: len([x for x in rows if qid in x]) >= len(rcpts))
    assert logs.tracklog_files(), "no MSGTRK*.LOG file"
    mine = [x for x in rows if qid in x]
    assert len(mine) == len(rcpts), mine
    assert all("RECEIVE" in x for x in mine), mine
    assert sorted(next(f for f in x if f in rcpts) for x in mine) == \
        sorted(rcpts)
    assert all("tracker@sender.example" in x for x in mine), mine


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
