"""Mailboxes that come and go while mail arrives: senders queue messages
for three local users while, at random, each user's Maildir is moved aside
and a plain file put in its place (so writing fails: ENOTDIR), then put
back.  Afterwards every mailbox is restored, and every recipient must end
delivered, with the message in the user's Maildir (at least once), or
still pending with the reason; none may be left behind in flight.  The
daemon stops cleanly under ASan/UBSan.  Seeds are fixed."""
import ctypes
import os
import random
import threading
import time
from pathlib import Path

import pytest

from harness import Client, make_message, running
from test_delivery import wait_for

USERS = ("alice", "bob", "carol")
MESSAGES = 30
SECONDS = 3.0


_libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_EXCHANGE = 2


def exchange(a, b):
    """Swap two paths in one step (renameat2 RENAME_EXCHANGE).  Two renames
    left a moment with nothing at the mailbox's path, and sluiced, finding
    no Maildir there, made a new one: the test then failed on its own race
    (IsADirectoryError), not on anything sluiced did wrong."""
    if _libc.renameat2(AT_FDCWD, str(a).encode(), AT_FDCWD,
                       str(b).encode(), RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(a))


def block(box):
    """Move the Maildir aside and put a file where it was, in one step."""
    saved = box.with_name(box.name + ".saved")
    if box.is_dir() and not saved.exists():
        saved.write_text("not a directory\n")
        exchange(box, saved)


def unblock(box):
    saved = box.with_name(box.name + ".saved")
    if saved.is_dir():
        exchange(box, saved)
        saved.unlink()


def subjects_in(box):
    out = []
    for f in (box / "new").glob("*") if (box / "new").is_dir() else []:
        for line in f.read_bytes().split(b"\n"):
            if line.startswith(b"Subject: "):
                out.append(line[9:].decode())
                break
    return out


@pytest.mark.timeout_s(120)
@pytest.mark.parametrize("seed", [1, 2])
def test_mailboxes_failing_at_random(tmp_path, seed):
    rng = random.Random(seed)
    mail = tmp_path / "mail"
    boxes = {u: mail / "local.test" / u for u in USERS}
    sent = {}  # subject -> user
    with running(tmp_path / "d", transport={
            "TransientFailureRetryInterval": "1s"},
            raw_extra=f"\n[AcceptedDomain local.test]\n"
                      f"Mailboxes = {mail}/%d/%u\n") as s:
        # Every Maildir exists before the chaos starts.
        for u in USERS:
            with Client(s.port) as c:
                c.send_message("a@example.org", [f"{u}@local.test"],
                               make_message(f"first-{u}")).check(250)
                c.quit()
        assert wait_for(lambda: all(subjects_in(b) for b in boxes.values()))
        # One failure for certain, whatever the machine's load does to the
        # random timing below: a message to a blocked mailbox is tried and
        # fails before the chaos starts (and is delivered after it).
        block(boxes[USERS[0]])
        subject = f"chaos-{seed}-blocked"
        with Client(s.port) as c:
            c.send_message("a@example.org", [f"{USERS[0]}@local.test"],
                           make_message(subject)).check(250, "2.6.0")
            c.quit()
        sent[subject] = USERS[0]
        assert wait_for(lambda: any(
            r["attempts"] >= 1 and r["status"] != 1 for r in s.recipients()
            if r["addr"] == f"{USERS[0]}@local.test")), s.recipients()

        stop = threading.Event()

        def chaos():
            crng = random.Random(seed + 1000)
            while not stop.is_set():
                box = boxes[crng.choice(USERS)]
                (block if crng.random() < 0.5 else unblock)(box)
                time.sleep(crng.uniform(0.02, 0.1))

        t = threading.Thread(target=chaos, daemon=True)
        t.start()
        deadline = time.monotonic() + SECONDS
        n = 0
        while n < MESSAGES and time.monotonic() < deadline + 5:
            user = rng.choice(USERS)
            subject = f"chaos-{seed}-{n}"
            with Client(s.port) as c:
                c.send_message("a@example.org", [f"{user}@local.test"],
                               make_message(subject)).check(250, "2.6.0")
                c.quit()
            sent[subject] = user
            n += 1
            time.sleep(rng.uniform(0.0, SECONDS / MESSAGES))
        stop.set()
        t.join(10)
        for box in boxes.values():
            unblock(box)

        local = [r for r in s.recipients() if r["addr"].endswith("@local.test")]
        assert any(r["attempts"] > 1 for r in local), \
            "no delivery ever failed: the chaos did nothing"
        assert wait_for(lambda: all(
            r["status"] == 1 for r in s.recipients()
            if r["addr"].endswith("@local.test")), timeout=30), \
            [r for r in s.recipients() if r["status"] != 1][:5]
    for subject, user in sent.items():
        got = subjects_in(boxes[user]).count(subject)
        assert got >= 1, f"{subject} for {user}: not in the Maildir"
    assert not any(Path(str(b) + ".saved").exists() for b in boxes.values())
