"""GUIDE 4.11: after binding its ports sluiced does not keep running as
root.  With [Transport] User set it switches to that user for good, having
given it the queue and the logs, and still accepts, stores and logs mail."""
import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest

from harness import Client, make_message, running


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop root")
def test_runs_as_user_after_binding():
    nobody = pwd.getpwnam("nobody")
    # The run-time user must be able to reach its files: pytest's own
    # tmp_path sits under a directory only root may enter.
    work = Path(tempfile.mkdtemp(prefix="sluice-user-"))
    os.chmod(work, 0o755)
    try:
        run_as_nobody(work, nobody)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_as_nobody(work, nobody):
    with running(work, transport={"User": "nobody"}) as s:
        status = open(f"/proc/{s.pid}/status").read()
        uids = [int(x) for x in
                next(l for l in status.splitlines()
                     if l.startswith("Uid:")).split()[1:]]
        assert uids == [nobody.pw_uid] * 4, status
        with Client(s.port) as c:
            c.ehlo()
            c.cmd("MAIL FROM:<a@sender.example>").check(250)
            c.cmd("RCPT TO:<user@localhost>").check(250)
            c.cmd("DATA").check(354)
            c.send(make_message("asnobody").encode() + b".\r\n")
            c.reply().check(250, "2.6.0")
        assert len(s.messages()) == 1
        assert s.protolog_files()
        assert os.stat(s.queue_dir / "queue.db").st_uid == nobody.pw_uid
        assert s.wait_stderr("running as nobody")
