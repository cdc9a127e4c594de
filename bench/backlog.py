"""backlog.py DB N - write N waiting messages of about 2 KB straight into a
stopped sluiced's queue.db, as a backlog would leave them: one recipient
each in one of 50 DNS-routed domains, deferred an hour (so the queue
manager leaves them alone).  Used by queue.sh and queueview.sh."""
import sqlite3, sys, time
db, n = sqlite3.connect(sys.argv[1]), int(sys.argv[2])
body = (b"Subject: x\r\n\r\n" + b"y" * 76 + b"\r\n") * 26
later = int(time.time()) + 3600
db.execute("BEGIN")
for i in range(n):
    m = db.execute("INSERT INTO messages (queue_id, received, sender, size,"
                   " checksum, body) VALUES (?,?,?,?,?,x'')",
                   (f"B{i:012d}", later - 3600, "a@example.org", len(body),
                    "0")).lastrowid
    db.execute("INSERT INTO contents (message_id, data) VALUES (?,?)",
               (m, body))
    db.execute("INSERT INTO recipients (message_id, rcpt_index, addr,"
               " next_attempt, last_error, next_hop) VALUES (?,?,?,?,?,?)",
               (m, 0, f"u{i}@d{i % 50}.example", later,
                "451 4.4.1 try later", f"d{i % 50}.example"))
db.execute("COMMIT")
