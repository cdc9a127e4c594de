"""Durability (SPEC 4, GUIDE 4.7): a 250 to the end of data means the
message is on stable storage.

(a) crash points inside the store: the client never sees a 250 for a
    message that is not durable, and a durable one is there exactly once
    after a restart;
(b) kill -9 while ten clients send: every acknowledged message survives,
    exactly once;
(c) injected write/fsync failures answer 451 4.3.0 and store nothing;
(d) strace shows the fsync before the 250 reaches the socket;
(e) the same for large messages, whose body streams to a body file of its
    own as it arrives: a crash before the row commits, or in the middle of
    the upload, leaves no file behind after the restart; one after the
    commit leaves the message whole; a failed body write or sync is a 451
    with nothing stored.
"""
import hashlib
import random
import re
import shutil
import smtplib
import threading
import time

import pytest

from harness import ConnectionClosed, make_message, queue_id_of

SENDER = "a@sender.example"
SUBJECT_RE = re.compile(rb"\r\nSubject: ([\w.-]+)\r\n")


def subjects(s):
    """Subject of every stored message (one entry per message)."""
    out = []
    for b in s.bodies():
        m = SUBJECT_RE.search(b"\r\n" + b)
        out.append(m.group(1).decode() if m else None)
    return out


# --- (a) crash points -----------------------------------------------------------


@pytest.mark.parametrize("point,durable", [("after-write", False),
                                           ("after-fsync", True),
                                           ("before-reply", True)])
def test_crash_point(sluice_factory, point, durable):
    s = sluice_factory(start=False)
    s.start(env={"SLUICE_CRASH_POINT": point})
    subject = f"crash-{point}"
    with s.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
        c.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(make_message(subject) + ".\r\n")
        try:
            r = c.reply(timeout=10)
        except (ConnectionClosed, OSError):
            r = None
        assert r is None or r.code != 250, f"got {r!r} at crash {point}"
    assert s.wait_exit(10) == 97, s.stderr()
    for mark in ("ERROR: AddressSanitizer", "runtime error:"):
        assert mark not in s.stderr()
    s.start()
    found = subjects(s).count(subject)
    assert found == (1 if durable else 0), \
        f"{point}: message stored {found} times"
    # The restarted daemon works normally.
    with s.client() as c:
        c.send_message(SENDER, ["user@localhost"],
                       make_message(f"after-{subject}")).check(250, "2.6.0")
        c.quit()
    assert subjects(s).count(subject) == (1 if durable else 0)


# --- (b) kill -9 under load ------------------------------------------------------


def sender_thread(port, tid, acked, stop):
    n = 0
    try:
        smtp = smtplib.SMTP("127.0.0.1", port, local_hostname="client.example",
                            timeout=5)
        while not stop.is_set():
            subject = f"load-{tid}-{n}"
            smtp.sendmail(SENDER, ["user@localhost", f"t{tid}@example.test"],
                          make_message(subject))
            acked.append(subject)  # only after the 250
            n += 1
        smtp.close()
    except (smtplib.SMTPException, OSError):
        pass


@pytest.mark.timeout_s(60)
def test_kill9_under_load(sluice_factory):
    s = sluice_factory()
    acked, stop = [], threading.Event()
    threads = [threading.Thread(target=sender_thread,
                                args=(s.port, i, acked, stop), daemon=True)
               for i in range(10)]
    for t in threads:
        t.start()
    time.sleep(random.uniform(0.8, 1.6))
    s.kill9()
    stop.set()
    for t in threads:
        t.join(15)
        assert not t.is_alive()
    assert s.returncode == -9
    acked_now = list(acked)
    assert acked_now, "no message was acknowledged before the kill"
    s.start()
    stored = subjects(s)
    counts = {}
    for subj in stored:
        counts[subj] = counts.get(subj, 0) + 1
    missing = [a for a in acked_now if counts.get(a, 0) == 0]
    assert not missing, f"{len(missing)} acknowledged messages lost: " \
        f"{missing[:10]}"
    twice = {k: v for k, v in counts.items() if v > 1}
    assert not twice, f"stored more than once: {twice}"
    # Every stored message is complete: both recipients, whole body.
    for m in s.queue():
        assert len(m["rcpts"]) == 2, m["queue_id"]
        assert m["body"].endswith(b"\r\n\r\nHello.\r\n"), m["queue_id"]


# --- (c) fault injection ---------------------------------------------------------


@pytest.mark.parametrize("fault", ["fsync", "write"])
def test_storage_fault_gives_451(sluice_factory, fault):
    s = sluice_factory(env={"SLUICE_FAULT": fault})
    with s.client() as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
        c.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(make_message(f"fault-{fault}") + ".\r\n")
        c.reply(timeout=10).check(451, "4.3.0")
        # The session survives the failure.
        c.cmd("NOOP").check(250)
        c.quit()
    assert f"fault-{fault}" not in subjects(s)
    assert s.messages() == []


# --- (d) fsync before 250, seen from outside ----------------------------------------


SYNC_DONE = re.compile(r"^(\d+) +(?:(fsync|fdatasync)\(\d+<([^>]*)>\).*"
                       r"= 0|<\.\.\. (fsync|fdatasync) resumed>.*= 0)")
SYNC_START = re.compile(r"^(\d+) +(fsync|fdatasync)\(\d+<([^>]*)>")


@pytest.mark.timeout_s(60)
def test_strace_fsync_before_250(sluice_factory, tmp_path):
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed (Debian package strace)")
    trace = tmp_path / "strace.out"
    s = sluice_factory(
        start=False,
        wrap=["strace", "-f", "-qq", "-y", "-s", "128", "-o", str(trace),
              "-e", "trace=fsync,fdatasync,write,writev,sendto,sendmsg"],
        # LeakSanitizer cannot run under ptrace.
        env={"ASAN_OPTIONS": "detect_leaks=0"})
    try:
        s.start()
    except BaseException:
        if "ptrace" in s.stderr():
            pytest.skip("ptrace is not permitted here")
        raise
    with s.client(timeout=10) as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
        c.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(make_message("strace") + ".\r\n")
        r = c.reply(timeout=10).check(250, "2.6.0")
        c.quit()
    qid = queue_id_of(r)
    s.stop()
    lines = trace.read_text(errors="replace").splitlines()
    i354 = next(i for i, ln in enumerate(lines) if '"354 ' in ln)
    i250 = next(i for i, ln in enumerate(lines)
                if '"250 2.6.0 ' in ln and qid in ln)
    pending = {}
    synced = []
    for ln in lines[i354:i250]:
        m = SYNC_START.match(ln)
        if m:
            pending[m.group(1)] = m.group(3)
        m = SYNC_DONE.match(ln)
        if m:
            path = m.group(3) or pending.get(m.group(1), "")
            synced.append(path)
    assert any("queue.db" in p for p in synced), \
        "no successful fsync/fdatasync of the queue between the 354 and " \
        "the 250:\n" + "\n".join(lines[i354:i250 + 1])


# --- (e) large messages: the body file --------------------------------------

BIG = {"MaxMessageSize": "20MB"}


def big_message(subject, size=3 * 1024 * 1024):
    """A message whose body (size bytes of 78-octet lines) is far beyond
    what is stored inline, so it goes to a body file."""
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-+.,0123456789\r\n"
    body = line * (size // len(line))
    return make_message(subject, body="").encode() + body


def send_big(c, msg):
    c.ehlo()
    c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
    c.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
    c.cmd("DATA").check(354)
    c.send(msg + b".\r\n")


@pytest.mark.timeout_s(90)
@pytest.mark.parametrize("point,durable", [("after-body-sync", False),
                                           ("after-write", False),
                                           ("after-fsync", True)])
def test_crash_point_large(sluice_factory, point, durable):
    s = sluice_factory(start=False, conn=BIG)
    s.start(env={"SLUICE_CRASH_POINT": point})
    subject = f"big-{point}"
    msg = big_message(subject)
    with s.client(timeout=30) as c:
        send_big(c, msg)
        try:
            r = c.reply(timeout=30)
        except (ConnectionClosed, OSError):
            r = None
        assert r is None or r.code != 250, f"got {r!r} at crash {point}"
    assert s.wait_exit(30) == 97, s.stderr()
    s.start()
    found = [m for m in s.messages()
             if SUBJECT_RE.search(b"\r\n" + m["body"]).group(1).decode()
             == subject]
    assert len(found) == (1 if durable else 0), f"{point}: {len(found)}"
    if durable:
        assert found[0]["body_file"] != ""
        assert found[0]["body"].endswith(msg[msg.index(b"\r\n\r\n"):])
        assert s.body_files() == [found[0]["body_file"]]
    else:
        # the partial or orphaned content went at the restart
        assert s.body_files() == []
    s.stop()


@pytest.mark.timeout_s(90)
def test_kill9_mid_upload_leaves_nothing(sluice_factory):
    """kill -9 while a large message streams in: the body file already
    holds some of it; after the restart it is gone and nothing is
    queued."""
    s = sluice_factory(conn=BIG)
    msg = big_message("half", 8 * 1024 * 1024)
    with s.client(timeout=30) as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
        c.cmd("RCPT TO:<user@localhost>").check(250, "2.1.5")
        c.cmd("DATA").check(354)
        c.send(msg[:5 * 1024 * 1024])
        deadline = time.monotonic() + 30
        while not s.body_files() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert s.body_files(), "no body file while the body streams in"
        s.kill9()
    s.start()
    assert s.body_files() == []
    assert s.messages() == []
    s.stop()


@pytest.mark.parametrize("fault", ["fsync", "write"])
def test_storage_fault_large_gives_451(sluice_factory, fault):
    s = sluice_factory(conn=BIG, env={"SLUICE_FAULT": fault})
    with s.client(timeout=30) as c:
        send_big(c, big_message(f"bigfault-{fault}"))
        c.reply(timeout=30).check(451, "4.3.0")
        c.cmd("NOOP").check(250)
        c.quit()
    assert s.messages() == []
    # the file of the refused message is removed at once
    deadline = time.monotonic() + 10
    while s.body_files() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert s.body_files() == []


def test_large_message_stored_whole(sluice_factory):
    """A body of 12 MB with lines of every length up to 2000 octets
    arrives byte for byte, by DATA and by BDAT in uneven chunks."""
    s = sluice_factory(conn=BIG)
    lines = b"".join(b"x" * (i % 2000) + b"\r\n" for i in range(12000))
    by_data = make_message("big-data", body="").encode() + lines
    by_bdat = make_message("big-bdat", body="").encode() + lines
    with s.client(timeout=60) as c:
        c.send_message(SENDER, ["user@localhost"], by_data).check(250)
        c.cmd(f"MAIL FROM:<{SENDER}>").check(250)
        c.cmd("RCPT TO:<user@localhost>").check(250)
        off, n = 0, 0
        while off < len(by_bdat):
            size = min(len(by_bdat) - off, 700001 + 13 * n)
            last = off + size == len(by_bdat)
            c.send(f"BDAT {size}{' LAST' if last else ''}\r\n".encode()
                   + by_bdat[off:off + size])
            c.reply(timeout=60).check(250)
            off += size
            n += 1
        c.quit()
    got = {SUBJECT_RE.search(b"\r\n" + m["body"]).group(1).decode():
           m for m in s.messages()}
    for subject, sent in (("big-data", by_data), ("big-bdat", by_bdat)):
        m = got[subject]
        assert m["body_file"] != ""
        body = m["body"][m["body"].index(b"Subject: " + subject.encode()):]
        want = sent[sent.index(b"Subject: "):]
        assert hashlib.sha256(body).hexdigest() == \
            hashlib.sha256(want).hexdigest()
        assert m["size"] == len(m["body"])
