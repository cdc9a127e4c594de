"""The queue views at scale (issue 19): `sluicectl queue` and `messages`
are answered from a worker thread and streamed, so they are complete
however large the queue (before: `messages` stopped at 16 MiB, `queue` at
4,096 queues), page with --limit/--offset (Get-Message -ResultSize) after
the filters, and leave the event loop free: SMTP is served while a view
is in progress.  Queues are written straight into queue.db, as a backlog
would leave them, so that every count is known."""
import socket
import sqlite3
import subprocess
import time

from harness import BUILD, SLUICECTL, Client, Sluice, make_message

EXTRA = """
[AcceptedDomain relay.test]
DomainType = InternalRelay

[SendConnector Relay]
AddressSpaces = relay.test
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:9

[SendConnector Internet]
AddressSpaces = *
"""
SUSPENDED = -1  # spool.h SPOOL_SUSPENDED


def ctl(s, *args, timeout=300):
    return subprocess.run([str(SLUICECTL), "-c", str(s.conf_path), *args],
                          capture_output=True, text=True, timeout=timeout)


def entries(text):
    """`messages` output as dicts (Format-List blocks)."""
    out = []
    for block in text.strip().split("\n\n"):
        if block.strip():
            out.append({k.strip(): v.strip() for k, _, v in
                        (ln.partition(":") for ln in block.splitlines())})
    return out


def identities(p):
    assert p.returncode == 0, p.stderr
    return [ln.split(":", 1)[1].strip() for ln in p.stdout.splitlines()
            if ln.startswith("Identity ")]


def queue_rows(p):
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split()[0] == "Identity"
    return [ln.split() for ln in lines[1:]]


def daemon(tmp_path):
    s = Sluice(tmp_path / "d", raw_extra=EXTRA,
               transport={"Resolver": "127.0.0.1@9"})
    s.start()
    s.stop()  # the schema
    return s


def fill(db_path, messages):
    """messages: (queue_id, sender, [(addr, next_attempt)]) each."""
    later = int(time.time()) + 3600
    body = b"Subject: q\r\n\r\nbody\r\n"
    db = sqlite3.connect(str(db_path))
    db.execute("BEGIN")
    for qid, sender, rcpts in messages:
        m = db.execute(
            "INSERT INTO messages (queue_id, received, sender, size,"
            " checksum, body, subject) VALUES (?,?,?,?,?,x'',?)",
            (qid, later - 7200, sender, len(body), "0",
             f"subject {qid}")).lastrowid
        db.execute("INSERT INTO contents (message_id, data) VALUES (?,?)",
                   (m, body))
        db.executemany(
            "INSERT INTO recipients (message_id, rcpt_index, addr,"
            " next_attempt, last_error, next_hop) VALUES (?,?,?,?,?,?)",
            [(m, k, addr, later if nxt is None else nxt,
              "451 4.4.1 later", "x") for k, (addr, nxt) in
             enumerate(rcpts)])
    db.execute("COMMIT")
    db.close()


def test_filters_and_paging(tmp_path):
    s = daemon(tmp_path)
    # 60 messages: senders a0..a59@s{i%3}.example; recipients in
    # d{i%4}.example, and every fifth one also in relay.test (two
    # entries); every seventh suspended
    msgs = []
    for i in range(60):
        nxt = SUSPENDED if i % 7 == 0 else None
        rcpts = [(f"u{i}@d{i % 4}.example", nxt)]
        if i % 5 == 0:
            rcpts.append((f"r{i}@relay.test", nxt))
        msgs.append((f"P{i:04d}", f"a{i}@s{i % 3}.example", rcpts))
    fill(s.db_path, msgs)
    s.start()
    try:
        everything = identities(ctl(s, "messages"))
        assert len(everything) == 60 + 12
        assert len(set(everything)) == len(everything)
        # pages of 7 put back together are the whole list, in its order
        pages = []
        for off in range(0, 80, 7):
            pages += identities(ctl(s, "messages", "--limit", "7",
                                    "--offset", str(off)))
        assert pages == everything
        # paging counts the entries that pass the filters
        s1 = identities(ctl(s, "messages", "--sender", "*@S1.example"))
        assert s1 and all(i.split("\\")[1] in
                          {f"P{k:04d}" for k in range(1, 60, 3)} for i in s1)
        assert identities(ctl(s, "messages", "--sender", "*@s1.example",
                              "--offset", "3", "--limit", "4")) == s1[3:7]
        relay = identities(ctl(s, "messages", "--queue", "Relay"))
        assert relay == [f"Relay\\P{i:04d}" for i in range(0, 60, 5)]
        assert identities(ctl(s, "messages", "Relay", "--limit", "2",
                              "--offset", "10")) == relay[10:]
        susp = identities(ctl(s, "messages", "--status", "Suspended"))
        assert {i.split("\\")[1] for i in susp} == {
            f"P{i:04d}" for i in range(0, 60, 7)}
        assert identities(ctl(s, "messages", "--status", "Suspended",
                              "--recipient", "r*@relay.test")) == [
            f"Relay\\P{i:04d}" for i in range(0, 60, 35)]
        # past the end: nothing, and that is no error
        p = ctl(s, "messages", "--offset", "1000")
        assert p.returncode == 0 and identities(p) == []
        # Get-Queue pages and filters too
        rows = queue_rows(ctl(s, "queue"))
        names = [r[0] for r in rows]
        assert sorted(names) == sorted(
            ["Relay"] + [f"d{k}.example" for k in range(4)])
        assert [r[0] for r in queue_rows(ctl(s, "queue", "--limit", "2",
                                             "--offset", "1"))] == names[1:3]
        assert [r[0] for r in queue_rows(
            ctl(s, "queue", "--queue", "D?.EXAMPLE"))] == [
            n for n in names if n != "Relay"]
        assert queue_rows(ctl(s, "queue", "--status", "Ready")) == []
        assert len(queue_rows(ctl(s, "queue", "--status", "retry"))) == 5
        # bad values are refused with a reason
        for args, why in [(["messages", "--limit", "0"], "limit 0"),
                          (["messages", "--limit", "x"], "limit x"),
                          (["queue", "--offset", "-1"], "offset -1")]:
            p = ctl(s, *args)
            assert p.returncode == 1 and why in p.stdout, (args, p)
        p = ctl(s, "queue", "--sender", "x")
        assert p.returncode == 2 and "usage" in p.stderr
    finally:
        s.stop()


N_MESSAGES = 50000  # four recipients each: 200,000
N_DOMAINS = 5000


def test_views_list_200000_recipients(tmp_path):
    s = daemon(tmp_path)
    # two recipients in a domain of 5,000 and two in the Relay queue:
    # 100,000 entries, 5,001 queues
    fill(s.db_path, (
        (f"L{i:08d}", "a@example.org",
         [(f"u{i}@d{i % N_DOMAINS}.example", None),
          (f"v{i}@d{i % N_DOMAINS}.example", None),
          (f"w{i}@relay.test", None), (f"x{i}@relay.test", None)])
        for i in range(N_MESSAGES)))
    s.start()
    try:
        p = ctl(s, "messages")
        assert p.returncode == 0, p.stderr
        assert len(p.stdout) > 16 * 1024 * 1024  # the old answer's bound
        got = entries(p.stdout)
        assert len(got) == 2 * N_MESSAGES
        assert len({e["Identity"] for e in got}) == 2 * N_MESSAGES
        assert sum(len(e["Recipients"].split("; ")) for e in got) == \
            4 * N_MESSAGES
        # mailq (sendmail -bp) reads the same answer line by line
        q = subprocess.run([str(BUILD / "sluice-sendmail"), "-C",
                            str(s.conf_path), "-bp"], capture_output=True,
                           text=True, timeout=300)
        assert q.returncode == 0, q.stderr
        assert q.stdout.rstrip().endswith(f"in {N_MESSAGES} Requests.")
        rows = queue_rows(ctl(s, "queue"))
        assert len(rows) == N_DOMAINS + 1
        counts = {r[0]: int(r[3]) for r in rows}
        assert counts["Relay"] == N_MESSAGES
        assert sum(counts.values()) == 2 * N_MESSAGES

        # a view whose client reads nothing holds its worker, not the
        # daemon: mail is accepted and status answered meanwhile
        stalled = socket.socket(socket.AF_UNIX)
        stalled.connect(str(s.dir / "ctl.sock"))
        stalled.sendall(b"messages\r\n")
        with Client(s.port) as c:
            c.ehlo()
            c.cmd("MAIL FROM:<b@example.org>").check(250)
            c.cmd("RCPT TO:<late@relay.test>").check(250)
            c.cmd("DATA").check(354)
            c.send(make_message("late").encode() + b".\r\n")
            c.reply().check(250)
        st = ctl(s, "status")
        assert st.returncode == 0 and "QueuedMessages" in st.stdout
        # the stalled view is still whole when it is read
        data = b""
        stalled.settimeout(60)
        while True:
            chunk = stalled.recv(1 << 20)
            if not chunk:
                break
            data += chunk
        stalled.close()
        assert data.endswith(b"\n.\n")
        n = data.count(b"\nIdentity ") + data.startswith(b"Identity ")
        assert n in (2 * N_MESSAGES, 2 * N_MESSAGES + 1)
    finally:
        s.stop()


def proc_io(pid, field):
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k == field:
                return int(v)
    raise AssertionError(f"no {field} in /proc/{pid}/io")


def test_deep_deferred_queue_is_not_read_again_at_idle(tmp_path):
    """100,000 deferred recipients, none due: an idle daemon must not
    read them.  The new-mail walk used to stay at the last never-tried
    recipient and, four times a second, read every deferred one after it
    to find nothing (7.6% of a core at 200,000, all of it SQLite reading
    pages through pread)."""
    s = daemon(tmp_path)
    fill(s.db_path, [(f"D{i:08d}", "a@example.org",
                      [(f"u{i}@d{i % 50}.example", None)])
                     for i in range(100_000)])
    s.start()
    try:
        time.sleep(2)  # the start's own reading (the orphan sweep) done
        pid = s.pid
        before = proc_io(pid, "rchar")
        time.sleep(3)  # twelve ticks of the queue manager
        read = proc_io(pid, "rchar") - before
        # one walk of 100,000 rows reads some 10 MB; twelve, over 100
        assert read < 4 * 1024 * 1024, f"{read} bytes read while idle"
    finally:
        s.stop()
