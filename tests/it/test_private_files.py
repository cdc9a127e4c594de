"""Queued mail is private to sluiced (issue 18, item 2): another local
user cannot read the queue database, its -wal and -shm files or the logs,
whatever the umask sluiced was started with and even when an installer
made the queue directory 0755 and an older version left queue.db 0644.
sluiced makes the queue private at start and says so."""
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness import Sluice, make_message


def mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def readable_by_nobody(path):
    """Can the user nobody open path for reading?  Asked of a real
    process running as nobody, as a local user would try."""
    nobody = pwd.getpwnam("nobody")

    def become():
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)

    p = subprocess.run(["/bin/cat", str(path)], preexec_fn=become,
                       capture_output=True, timeout=10)
    return p.returncode == 0


@pytest.fixture
def open_dir():
    """A work directory every user may enter, so that only the modes
    sluiced gives its own files stand between them and a local user."""
    d = Path(tempfile.mkdtemp(prefix="sluice-private-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as nobody")
def test_queue_and_logs_private_despite_installer_and_umask(open_dir):
    s = Sluice(open_dir / "s")
    # What an installer and an older version left behind.
    s.queue_dir.mkdir()
    os.chmod(s.queue_dir, 0o755)
    (s.queue_dir / "queue.db").touch()
    os.chmod(s.queue_dir / "queue.db", 0o644)
    os.chmod(s.dir, 0o755)
    old = os.umask(0o022)
    try:
        s.start()
    finally:
        os.umask(old)
    try:
        with s.client() as c:
            c.send_message("a@sender.example", ["user@localhost"],
                           make_message("private", "secret body\r\n")
                           ).check(250, "2.6.0")
            c.quit()
        db = s.queue_dir / "queue.db"
        assert mode(s.queue_dir) == 0o700
        for f in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            assert f.exists(), f
            assert mode(f) == 0o600, (f, oct(mode(f)))
        logs = s.protolog_files() + s.tracklog_files()
        assert logs
        for f in logs:
            assert mode(f) & 0o077 == 0, (f, oct(mode(f)))
        assert mode(s.log_dir) & 0o077 == 0, oct(mode(s.log_dir))
        # What the local user did: copy the database, read the body.
        assert not readable_by_nobody(db)
        for f in logs:
            assert not readable_by_nobody(f), f
        assert s.wait_stderr(r"queue: \S+/queue was mode 0755, readable by "
                             r"other users; made 0700")
        assert s.wait_stderr(r"queue: \S+/queue\.db was mode 0644, readable "
                             r"by other users; made 0600")
    finally:
        s.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as nobody")
def test_fresh_queue_private(open_dir):
    """A new queue: created 0700 with queue.db 0600 (SQLite alone would
    create it 0644 whatever the umask)."""
    s = Sluice(open_dir / "s")
    os.chmod(s.dir, 0o755)
    s.start()
    try:
        with s.client() as c:
            c.send_message("a@sender.example", ["user@localhost"],
                           make_message("fresh")).check(250, "2.6.0")
            c.quit()
        assert mode(s.queue_dir) == 0o700
        assert mode(s.queue_dir / "queue.db") == 0o600
        assert mode(s.queue_dir / "queue.db-wal") == 0o600
        assert "readable by other users" not in s.stderr()
    finally:
        s.stop()
