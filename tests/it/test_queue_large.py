"""Get-Queue over a large queue (issue 12): 30,000 waiting messages
written straight into queue.db, then `sluicectl queue` from a freshly
started daemon.  The counts must be exact: one message per queue however
many of its recipients wait there (two domains routed to one smart host),
finished recipients (the safety net) not counted, suspended ones not
ready.  Speed is a benchmark figure (bench/README.md), not asserted."""
import collections
import sqlite3
import subprocess
import time

from harness import SLUICECTL, Sluice

EXTRA = """
[AcceptedDomain relay.test]
DomainType = InternalRelay

[AcceptedDomain relay2.test]
DomainType = InternalRelay

[SendConnector Relay]
AddressSpaces = relay.test, relay2.test
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:9

[SendConnector Internet]
AddressSpaces = *
"""
N = 30000
SUSPENDED = -1  # spool.h SPOOL_SUSPENDED


def ctl(s, *args):
    return subprocess.run([str(SLUICECTL), "-c", str(s.conf_path), *args],
                          capture_output=True, text=True, timeout=60)


def populate(db_path):
    """The queue, and what Get-Queue must say of it."""
    later = int(time.time()) + 3600
    body = b"Subject: q\r\n\r\nbody\r\n"
    want = collections.defaultdict(set)  # queue -> message ids
    db = sqlite3.connect(str(db_path))
    db.execute("BEGIN")
    for i in range(N):
        m = db.execute(
            "INSERT INTO messages (queue_id, received, sender, size,"
            " checksum, body) VALUES (?,?,?,?,?,x'')",
            (f"G{i:010d}", later - 7200, "a@example.org", len(body),
             "0")).lastrowid
        db.execute("INSERT INTO contents (message_id, data) VALUES (?,?)",
                   (m, body))
        kind = i % 5
        if kind == 0:  # two domains, one smart-host queue: one message
            rcpts = [f"u{i}@relay.test", f"v{i}@relay2.test"]
        elif kind == 1:  # a DNS-routed domain, and one already delivered
            rcpts = [f"u{i}@d{i % 40}.example", f"done{i}@d0.example"]
        elif kind == 2:  # suspended: waits, not ready
            rcpts = [f"s{i}@d{i % 40}.example"]
        else:
            rcpts = [f"w{i}@d{i % 40}.example", f"x{i}@relay.test"]
        for k, addr in enumerate(rcpts):
            done = addr.startswith("done")
            nxt = SUSPENDED if kind == 2 else later + i
            db.execute(
                "INSERT INTO recipients (message_id, rcpt_index, addr,"
                " status, next_attempt, last_error, next_hop)"
                " VALUES (?,?,?,?,?,?,?)",
                (m, k, addr, 1 if done else 0, 0 if done else nxt,
                 "" if done else "451 4.4.1 later", "x"))
            if not done:
                domain = addr.split("@")[1]
                want["Relay" if domain.startswith("relay") else
                     domain].add(m)
    db.execute("COMMIT")
    db.close()
    return {q: len(ids) for q, ids in want.items()}


def test_get_queue_counts_on_a_large_queue(tmp_path):
    s = Sluice(tmp_path / "d", raw_extra=EXTRA,
               transport={"Resolver": "127.0.0.1@9"})
    s.start()
    s.stop()
    want = populate(s.db_path)
    s.start()
    try:
        p = ctl(s, "queue")
        assert p.returncode == 0, p.stderr
        rows = {ln.split()[0]: ln.split() for ln in
                p.stdout.splitlines()[1:]}
        got = {q: int(r[3]) for q, r in rows.items()}
        assert got == want
        assert sum(got.values()) > N  # some messages wait in two queues
        assert rows["Relay"][1] == "SmartHostConnectorDelivery"
        assert rows["d1.example"][1] == "DnsConnectorDelivery"
        # nothing is due before the hour is up: every queue is in Retry
        assert {r[2] for r in rows.values()} == {"Retry"}
        assert all(r[5:8] == ["451", "4.4.1", "later"]
                   for r in rows.values())
        s.stop()
    finally:
        s.kill9()
