"""The content log (issue 12, medium messages written once): a message
whose stored content is at least SPOOL_LOG_MIN (8 KB) and has no body
file is appended to a segment file, QUEUEDIR/log/NNNNNNNN, not stored
inline in SQLite; smaller ones stay inline, larger ones (128 KB of body
and more) keep their body file.

(a) sizes around both thresholds, relayed to a next hop: each lands where
    the rule says, each is delivered once, its content intact (digest);
(b) kill -9 while clients stream 100 KB messages: every message that got
    its 250 is there after the restart, once and whole, and is delivered;
(c) segments go away: filled (small segments, so that there are many),
    delivered, purged after SafetyNetHoldTime: only the current segment
    is left, and none after a restart;
(d) a damaged segment (truncated, or overwritten) makes the message's
    delivery fail with a clear log line; nothing is sent;
(e) a crash after the log's sync but before the commit leaves nothing
    (the segment goes at the restart), one after the commit the message
    whole; a failed write or sync of the log is a 451, nothing stored.
Counts and contents only; the waits are deadlines."""
import hashlib
import random
import re
import subprocess
import threading
import time

import pytest

from harness import (SLUICECTL, Client, ConnectionClosed, Sluice,
                     eventually, join_threads, make_message, queue_id_of,
                     start_threads)
from peers.fakesmtp import FakeSmtp

KB = 1024
LOG_MIN = 8 * KB         # spool.h SPOOL_LOG_MIN, of stored content
INLINE_MAX = 128 * KB    # spool.h SPOOL_INLINE_MAX, of body
RELAY = {"PermissionGroups": "ExchangeServers",
         "AuthMechanism": "ExternalAuthoritative",
         "ProtocolLoggingLevel": "None"}


def smarthost(port):
    return f"""
[SendConnector Out]
AddressSpaces = *
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:{port}
ProtocolLoggingLevel = None
"""


def ctl(s, *args):
    p = subprocess.run([str(SLUICECTL), "-c", str(s.conf_path), *args],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p.stdout


def resume(s):
    """Resume Out; after a restart it may not be suspended any more."""
    p = subprocess.run([str(SLUICECTL), "-c", str(s.conf_path), "resume",
                        "Out"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 or "not suspended" in p.stdout, p


def body_of(size, tag):
    """A body of exactly size octets: numbered lines of 78 (CRLF
    included), the last one shorter, none starting with a dot."""
    lines, n = [], 0
    while size - n >= 78:
        lines.append((b"%s %07d " % (tag.encode(), len(lines)))
                     .ljust(76, b"z") + b"\r\n")
        n += 78
    if size - n >= 2:
        lines.append(b"y" * (size - n - 2) + b"\r\n")
    elif size - n == 1:  # no line can be one octet: lengthen the first
        lines[0] = lines[0][:-2] + b"z\r\n"
    body = b"".join(lines)
    assert len(body) == size
    return body


def message(subject, body):
    return make_message(subject, "").encode() + body


def digest(b):
    return hashlib.sha256(b).hexdigest()


def where(row):
    return "body file" if row["body_file"] else \
        "log" if row["log_seg"] else "inline"


def rows_by_subject(s):
    out = {}
    for r in s.messages():
        m = re.search(rb"\r\nSubject: (\S+)\r\n", b"\r\n" + r["body"])
        assert m, r["queue_id"]
        out.setdefault(m.group(1).decode(), []).append(r)
    return out


def digests_by_subject(got):
    """Subject -> the digests of every copy the next hop accepted."""
    out = {}
    for m in got:
        subj = re.search(rb"\r\nSubject: (\S+)\r\n", m.header).group(1)
        out.setdefault(subj.decode(), []).append(m.body_digest)
    return out


def relay_config(tmp_path, mx, **kw):
    return Sluice(tmp_path / "d", conn=RELAY,
                  raw_extra=smarthost(mx.port), **kw)


# --- (a) sizes around the thresholds -----------------------------------------


@pytest.mark.timeout_s(120)
def test_sizes_around_thresholds_relayed_whole(tmp_path):
    sizes = [2 * KB, LOG_MIN - 600, LOG_MIN - 1, LOG_MIN, LOG_MIN + 1,
             100 * KB, INLINE_MAX - 1, INLINE_MAX, INLINE_MAX + 1,
             300 * KB]
    bodies = {f"size{n}": body_of(n, f"s{n}") for n in sizes}
    with FakeSmtp(keep_data="digest") as mx:
        s = relay_config(tmp_path, mx)
        s.start()
        try:
            with Client(s.port, timeout=60) as c:
                c.ehlo()
                for subj, body in bodies.items():
                    c.send_message("a@example.test", ["b@remote.test"],
                                   message(subj, body),
                                   ehlo=False).check(250, "2.6.0")
                c.quit()
            mx.wait_messages(len(bodies), timeout=60)
            rows = rows_by_subject(s)
        finally:
            s.stop()
    # read after the stop: a late second copy would be counted too
    delivered = digests_by_subject(mx.accepted())
    kinds = set()
    for subj, body in bodies.items():
        # exactly once, the body as sent
        assert delivered.get(subj) == [digest(body)], subj
        (row,) = rows[subj]
        # stored whole (the harness reads the log's range) ...
        assert row["body"].endswith(b"\r\n\r\n" + body), subj
        # ... where the rule puts it: the stored content decides the log
        # (SPOOL_LOG_MIN), the body the body file (SPOOL_INLINE_MAX)
        if len(body) >= INLINE_MAX:
            want = "body file"
        elif row["size"] >= LOG_MIN:
            want = "log"
        else:
            want = "inline"
        assert where(row) == want, (subj, row["size"], where(row))
        kinds.add(want)
    assert kinds == {"inline", "log", "body file"}
    # the messages in the log share one segment: this run's first
    assert s.log_segments() == ["00000001"]


# --- (b) kill -9 under a stream of 100 KB messages -----------------------------


def stream(port, who, acked, stop):
    body = body_of(100 * KB, f"k{who}")
    i = 0
    try:
        with Client(port, timeout=30) as c:
            c.ehlo()
            while not stop.is_set() and i < 400:
                subj = f"k{who}-{i}"
                r = c.send_message("a@example.test", ["b@remote.test"],
                                   message(subj, body), ehlo=False)
                if r.code == 250:
                    acked.append(subj)
                i += 1
    except Exception:  # the kill: the connection goes
        pass


@pytest.mark.timeout_s(180)
def test_kill9_during_100k_stream(tmp_path):
    with FakeSmtp(keep_data="digest") as mx:
        s = relay_config(tmp_path, mx)
        s.start()
        try:
            ctl(s, "suspend", "Out")  # nothing in flight at the kill
            acked, stop = [], threading.Event()
            threads = [threading.Thread(target=stream,
                                        args=(s.port, i, acked, stop),
                                        daemon=True) for i in range(6)]
            for t in threads:
                t.start()
            eventually(lambda: len(acked) >= 20, 60, "20 messages acked")
            time.sleep(random.uniform(0.2, 0.8))
            s.kill9()
            stop.set()
            for t in threads:
                t.join(15)
                assert not t.is_alive()
            acked_now = list(acked)
            s.start()
            rows = rows_by_subject(s)
            missing = [a for a in acked_now if a not in rows]
            assert not missing, f"{len(missing)} acked messages lost"
            twice = [k for k, v in rows.items() if len(v) > 1]
            assert not twice, f"stored more than once: {twice}"
            for subj, (row,) in rows.items():
                who = subj.split("-")[0][1:]
                assert where(row) == "log", subj
                assert row["body"].endswith(
                    b"\r\n\r\n" + body_of(100 * KB, f"k{who}")), subj
            # a new segment at every start: the old ones are kept while
            # their messages are in the queue
            assert len(s.log_segments()) >= 1
            resume(s)
            mx.wait_messages(len(rows), timeout=120)
        finally:
            s.stop()
    per = digests_by_subject(mx.accepted())  # after the stop, as above
    for subj in rows:
        who = subj.split("-")[0][1:]
        assert per.get(subj) == [digest(body_of(100 * KB, f"k{who}"))], \
            subj


# --- (c) segments go away -------------------------------------------------------


@pytest.mark.timeout_s(180)
def test_segments_removed_when_no_message_names_them(tmp_path):
    with FakeSmtp(keep_data=False) as mx:
        s = relay_config(tmp_path, mx,
                         transport={"SafetyNetHoldTime": "2s"},
                         env={"SLUICE_LOG_SEGMENT_MAX": str(256 * KB)})
        s.start()
        try:
            ctl(s, "suspend", "Out")
            body = body_of(100 * KB, "seg")

            def send(who):
                with Client(s.port, timeout=30) as c:
                    c.ehlo()
                    for i in range(10):
                        c.send_message("a@example.test", ["b@remote.test"],
                                       message(f"g{who}-{i}", body),
                                       ehlo=False).check(250)
                    c.quit()
            join_threads(start_threads(send, [(w,) for w in range(4)]),
                         120, "the fill")
            rows = s.messages()
            assert len(rows) == 40
            assert all(where(r) == "log" for r in rows)
            segs = s.log_segments()
            # two 100 KB messages fit a 256 KB segment: 20 at least
            assert len(segs) >= 20, segs
            named = {f"{r['log_seg']:08d}" for r in rows}
            assert named == set(segs), (named, segs)
            ctl(s, "resume", "Out")
            mx.wait_messages(40, timeout=120)
            # delivered, held 2 s, purged: the current segment is left
            eventually(lambda: not s.messages(), 60, "the purge")
            eventually(lambda: len(s.log_segments()) == 1, 30,
                       "the log down to its current segment")
            assert s.log_segments() == [max(segs)]
            # a restart starts a new segment; the old one, which no row
            # names, is removed at start
            s.restart()
            assert s.log_segments() == []
            with Client(s.port, timeout=30) as c:
                c.send_message("a@example.test", ["b@remote.test"],
                               message("after", body)).check(250)
            assert s.log_segments() == [f"{int(max(segs)) + 1:08d}"]
        finally:
            s.stop()


# --- (d) a damaged segment ---------------------------------------------------------


@pytest.mark.timeout_s(120)
@pytest.mark.parametrize("damage", ["truncated", "overwritten"])
def test_damaged_segment_is_not_sent(tmp_path, damage):
    with FakeSmtp(keep_data="digest") as mx:
        s = relay_config(tmp_path, mx)
        s.start()
        try:
            ctl(s, "suspend", "Out")
            with Client(s.port, timeout=30) as c:
                r = c.send_message("a@example.test", ["b@remote.test"],
                                   message("damaged",
                                           body_of(100 * KB, "d")))
                r.check(250)
                qid = queue_id_of(r)
            (row,) = s.messages()
            assert where(row) == "log"
            s.stop()
            seg = s.log_segment(row["log_seg"])
            if damage == "truncated":
                with open(seg, "r+b") as f:
                    f.truncate(row["log_off"] + row["size"] // 2)
            else:
                with open(seg, "r+b") as f:
                    f.seek(row["log_off"] + row["size"] // 2)
                    f.write(b"X" * 100)
            s.start()
            resume(s)
            why = "truncated or unreadable" if damage == "truncated" \
                else "do not match the checksum recorded"
            assert s.wait_stderr(
                rf"log segment {seg.name}: .*{why}", 30), s.stderr()
            assert s.wait_stderr(
                rf"delivery of {qid}: its content in the log is damaged",
                30), s.stderr()
            # refused before any connection: nothing reached the next hop
            assert mx.messages == []
            (row,) = s.messages()
            assert s.recipients()[0]["status"] == 0  # still pending
        finally:
            s.stop()


# --- (e) crash points and storage faults ------------------------------------------


@pytest.mark.timeout_s(90)
@pytest.mark.parametrize("point,durable", [("after-write", False),
                                           ("after-fsync", True)])
def test_crash_point_medium(sluice_factory, point, durable):
    """A crash after the log was written and synced but before the rows
    commit leaves no message and, after the restart, no segment (the
    content of a message never acknowledged); one after the commit leaves
    the message whole, in the segment the restart keeps."""
    s = sluice_factory(start=False, conn=RELAY)
    s.start(env={"SLUICE_CRASH_POINT": point})
    body = body_of(60 * KB, "c")
    with s.client(timeout=30) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<a@example.test>").check(250)
        c.cmd("RCPT TO:<b@example.test>").check(250)
        c.cmd("DATA").check(354)
        c.send(message("crash", body) + b".\r\n")
        try:
            r = c.reply(timeout=30)
        except (ConnectionClosed, OSError):
            r = None
        assert r is None or r.code != 250, f"got {r!r} at crash {point}"
    assert s.wait_exit(30) == 97, s.stderr()
    assert s.log_segments() == ["00000001"]  # written before the crash
    s.start()
    rows = s.messages()
    assert len(rows) == (1 if durable else 0), f"{point}: {rows}"
    if durable:
        assert where(rows[0]) == "log"
        assert rows[0]["body"].endswith(b"\r\n\r\n" + body)
        assert s.log_segments() == ["00000001"]
    else:
        assert s.log_segments() == []
        assert re.search(r"removed 1 log segment no message names",
                         s.stderr())


@pytest.mark.timeout_s(60)
@pytest.mark.parametrize("fault", ["fsync", "write"])
def test_storage_fault_medium_gives_451(sluice_factory, fault):
    s = sluice_factory(start=False, conn=RELAY)
    s.start(env={"SLUICE_FAULT": fault})
    with s.client(timeout=30) as c:
        c.send_message("a@example.test", ["b@example.test"],
                       message("fault", body_of(60 * KB, "f"))
                       ).check(451, "4.3.0")
    assert s.wait_stderr(r"writing the content log: .*; the batch is "
                         r"refused", 10), s.stderr()
    assert s.messages() == []
