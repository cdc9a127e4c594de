"""The daemon confines itself (issue 10, beyond the findings): no new
privileges through execve, and, where the kernel has Landlock, writes only
to the queue, the logs, the mailboxes and the control socket's directory,
reads only system files and the directories of its configuration and
certificates."""
import ctypes
import shutil
import tempfile
from pathlib import Path


from harness import Client, eventually, make_message, running

SYS_LANDLOCK_CREATE_RULESET = 444  # x86_64 and aarch64 alike
LANDLOCK_CREATE_RULESET_VERSION = 1


def landlock_abi():
    libc = ctypes.CDLL(None, use_errno=True)
    abi = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0,
                       LANDLOCK_CREATE_RULESET_VERSION)
    return abi if abi > 0 else 0


def status_field(pid, name):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise KeyError(name)


def test_no_new_privileges_and_landlock(tmp_path):
    with running(tmp_path) as s:
        assert status_field(s.pid, "NoNewPrivs") == "1"
        if landlock_abi():
            assert s.wait_stderr(r"confined with Landlock \(ABI \d+, "
                                 r"\d+ rules\)")
        else:
            assert s.wait_stderr("Landlock is not available")


def deliver(s, rcpts, subject):
    with Client(s.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<sender@remote.example>").check(250)
        for r in rcpts:
            c.cmd(f"RCPT TO:<{r}>").check(250)
        c.cmd("DATA").check(354)
        c.send(make_message(subject).encode() + b".\r\n")
        c.reply().check(250, "2.6.0")


def wait_states(s, n, timeout=15):
    """The recipients, once n were all tried (or whatever they are then)."""
    def tried():
        rows = s.recipients()
        return len(rows) >= n and all(r["attempts"] > 0 or r["status"] != 0
                                      for r in rows)

    eventually(tried, timeout)
    return {r["addr"]: r for r in s.recipients()}


def test_no_write_outside_the_allowed_directories(tmp_path):
    # A reload names a mailbox directory the daemon was not started with:
    # Landlock refuses to create anything there (the recipient is
    # deferred with the reason), while the allowed mailboxes still work.
    assert landlock_abi(), "this kernel has no Landlock"
    mail = tmp_path / "mail"
    mail.mkdir()
    outside = Path(tempfile.mkdtemp(prefix="sluice-outside-"))
    try:
        local = f"\n[AcceptedDomain local.test]\nMailboxes = {mail}/%d/%u\n"
        with running(tmp_path / "d", raw_extra=local) as s:
            s.configure(raw_extra=local + "\n[AcceptedDomain other.test]\n"
                        f"Mailboxes = {outside}/%d/%u\n")
            s.reload()
            assert s.wait_stderr("reload done")
            deliver(s, ["alice@local.test", "bob@other.test"], "confined")
            st = wait_states(s, 2)
            assert st["alice@local.test"]["status"] == 1, st
            bob = st["bob@other.test"]
            assert bob["status"] == 0 and \
                "Permission denied" in bob["last_error"], bob
            assert list(outside.iterdir()) == []
            assert list((mail / "local.test" / "alice" / "new").iterdir())
    finally:
        shutil.rmtree(outside, ignore_errors=True)
