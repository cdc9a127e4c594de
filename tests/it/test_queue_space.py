"""Space comes back (issue 19): with a short SafetyNetHoldTime, three
cycles of filling the queue (a suspended smart-host queue, small messages
in queue.db, medium ones in the content log's segments and large ones in
body files) and draining it (resumed, delivered to a fake next hop,
purged) leave queue.db, its WAL, body/ and log/ small after every drain, and the database no larger at the third fill than at the first:
delivered content is removed with its body files, free pages are handed
back beyond a small reserve (incremental vacuum) and the WAL is truncated
at a quiet moment.  Sizes and counts only; the waits are deadlines."""
import os
import sqlite3
import subprocess

import pytest

from harness import (SLUICECTL, Client, Sluice, eventually, join_threads,
                     make_message, start_threads)
from peers.fakesmtp import FakeSmtp

SMALL = 1000         # messages per cycle kept in queue.db
SMALL_SIZE = 6000    # bytes of body each (under SPOOL_LOG_MIN, 8 KB)
MEDIUM = 40          # messages per cycle in the content log
MEDIUM_SIZE = 60000
LARGE = 8            # messages per cycle with a body file
LARGE_SIZE = 300000
MB = 1024 * 1024
FREE_KEEP = 1024     # spool_tidy.c SPOOL_FREE_KEEP, pages


def ctl(s, *args):
    p = subprocess.run([str(SLUICECTL), "-c", str(s.conf_path), *args],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p.stdout


def send(port, n, size, tag):
    body = ("x" * 76 + "\r\n") * (size // 78)
    with Client(port) as c:
        c.ehlo()
        for i in range(n):
            c.cmd("MAIL FROM:<a@example.org>").check(250)
            c.cmd(f"RCPT TO:<u{i % 7}@remote.test>").check(250)
            c.cmd("DATA").check(354)
            c.send(make_message(f"{tag} {i}", body).encode() + b".\r\n")
            c.reply().check(250)


def sizes(s):
    def size(p):
        return os.path.getsize(p) if os.path.exists(p) else 0
    db = sqlite3.connect(f"file:{s.db_path}?mode=ro", uri=True, timeout=5)
    try:
        free, page, msgs = (db.execute("PRAGMA freelist_count").fetchone()[0],
                            db.execute("PRAGMA page_size").fetchone()[0],
                            db.execute("SELECT count(*) FROM messages")
                            .fetchone()[0])
    finally:
        db.close()
    bodies = [s.body_dir / f for f in os.listdir(s.body_dir)] \
        if s.body_dir.exists() else []
    segs = [s.seglog_dir / f for f in s.log_segments()]
    return {"db": size(s.db_path), "wal": size(f"{s.db_path}-wal"),
            "bodies": len(bodies), "body_bytes": sum(map(size, bodies)),
            "segments": len(segs), "segment_bytes": sum(map(size, segs)),
            "free": free * page, "free_pages": free, "messages": msgs}


def pending(s):
    db = sqlite3.connect(f"file:{s.db_path}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute("SELECT status, count(*), max(last_error)"
                          " FROM recipients GROUP BY status").fetchall()
    finally:
        db.close()


@pytest.mark.timeout_s(600)
def test_fill_and_drain_three_times(tmp_path):
    mx = FakeSmtp(keep_data=False)
    mx.start()
    s = Sluice(tmp_path / "d",
               conn={"PermissionGroups": "ExchangeServers",
                     "AuthMechanism": "ExternalAuthoritative"},
               transport={"SafetyNetHoldTime": "2s",
                          "Resolver": "127.0.0.1@9"},
               # segments of 512 KB: a fill makes several
               env={"SLUICE_LOG_SEGMENT_MAX": str(512 * 1024)},
               raw_extra=f"""
[SendConnector Out]
AddressSpaces = *
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:{mx.port}
""")
    s.start()
    try:
        full, drained = [], []
        for cycle in range(3):
            ctl(s, "suspend", "Out")
            threads = start_threads(
                send, [(s.port, SMALL // 4, SMALL_SIZE, f"c{cycle}s")
                       for _ in range(4)] +
                [(s.port, LARGE, LARGE_SIZE, f"c{cycle}l"),
                 (s.port, MEDIUM, MEDIUM_SIZE, f"c{cycle}m")])
            join_threads(threads, 300, "the fill")
            at_full = sizes(s)
            assert at_full["messages"] == SMALL + LARGE + MEDIUM
            assert at_full["bodies"] == LARGE
            assert at_full["segment_bytes"] >= MEDIUM * MEDIUM_SIZE
            assert at_full["segments"] >= 4, at_full
            full.append(at_full)
            ctl(s, "resume", "Out")
            # delivered, held 2 s, purged with the body files
            if not eventually(lambda: sizes(s)["messages"] == 0, 180):
                raise AssertionError(
                    f"cycle {cycle}: not delivered and purged: {pending(s)}")
            # at the next quiet moment: free pages back, WAL truncated
            eventually(lambda: (lambda z: z["wal"] == 0 and
                                z["free_pages"] <= FREE_KEEP)(sizes(s)),
                       60, "the WAL truncated and free pages handed back")
            after = sizes(s)
            assert after["bodies"] == 0 and after["body_bytes"] == 0
            # the content log: at most the segment being written
            assert after["segments"] <= 1, after
            drained.append(after)
        content = SMALL * SMALL_SIZE  # what queue.db held at each fill
        for at_full, after in zip(full, drained):
            assert at_full["db"] + at_full["wal"] > content
            # most of it is given back: the reserve and the schema stay
            assert after["db"] <= FREE_KEEP * 4096 + 2 * MB, (at_full, after)
        # the third fill takes no more room than the first
        assert full[2]["db"] + full[2]["wal"] <= \
            1.25 * (full[0]["db"] + full[0]["wal"]), full
        assert drained[2]["db"] <= drained[0]["db"] + MB, drained
        # and all of it was delivered
        assert len(mx.messages) == 3 * (SMALL + LARGE + MEDIUM)
    finally:
        s.stop()
        mx.stop()
