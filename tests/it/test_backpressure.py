"""Back pressure on a small filesystem (issue 12): the queue lives on a
48 MB tmpfs mounted by the test.  Large messages fill it until back
pressure is High and MAIL FROM gets 452 4.3.1; when the disk is truly full
in the middle of an upload the message gets 452 4.3.1 at its end and
leaves nothing behind; nothing acknowledged is lost or damaged; and
acceptance resumes once space returns.  The mail waits for a next hop
that is never reachable, so nothing leaves the queue meanwhile.  The
resources are looked at on every MAIL FROM (ResourceMonitoringInterval
0s), so the test needs no waiting."""
import contextlib
import hashlib
import os
import re
import subprocess
import time

import pytest

from harness import Sluice, make_message

SENDER = "a@sender.example"
RCPT = "user@relay.test"
FS_MB = 48
HIGH = 70  # percent: High at 33.6 MB used, Medium at 68 %, Normal at 66 %

EXTRA = """
[AcceptedDomain relay.test]
DomainType = InternalRelay

[SendConnector Nowhere]
AddressSpaces = relay.test
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:9
"""


@contextlib.contextmanager
def tmpfs(path, size_mb):
    """A size-limited tmpfs at path, unmounted at the end."""
    path.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o",
                        f"size={size_mb}m,mode=0700", "tmpfs", str(path)],
                       capture_output=True, text=True)
    assert p.returncode == 0, \
        f"cannot mount a tmpfs (the test runs as root): {p.stderr}"
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def body_of(size, seed):
    line = (f"{seed:08d} " + "x" * 66 + "\r\n").encode()
    return line * (size // len(line))


def digest(data):
    return hashlib.sha256(data).hexdigest()


def start_message(c):
    """EHLO and MAIL FROM; returns the reply to MAIL."""
    c.ehlo()
    return c.cmd(f"MAIL FROM:<{SENDER}>")


def send_rest(c, msg):
    c.cmd(f"RCPT TO:<{RCPT}>").check(250)
    c.cmd("DATA").check(354)
    c.send(msg + b".\r\n")
    return c.reply(timeout=60)


def stored(s):
    """{subject: sha256 of the stored message after our headers}."""
    out = {}
    for m in s.messages():
        b = m["body"]
        subj = re.search(rb"\r\nSubject: (\S+)\r\n", b"\r\n" + b).group(1)
        out[subj.decode()] = digest(b[b.index(b"From: "):])
    return out


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.timeout_s(240)
def test_full_disk_452_nothing_lost_and_resumes(tmp_path):
    with tmpfs(tmp_path / "fs", FS_MB) as fs:
        s = Sluice(tmp_path / "d")
        s.queue_dir = fs / "queue"  # the harness reads the queue there
        s.configure(raw_extra=EXTRA, conn={"MaxMessageSize": "20MB"},
                    transport={"PercentageDatabaseDiskSpaceUsedHigh"
                               "Threshold": HIGH,
                               "ResourceMonitoringInterval": "0s"})
        s.start()
        try:
            acked = {}
            # 1. fill with 4 MB messages until back pressure says no
            refused = None
            for i in range(20):
                subject = f"fill-{i}"
                msg = make_message(subject, body="").encode() + \
                    body_of(4 * 1024 * 1024, i)
                with s.client(timeout=60) as c:
                    r = start_message(c)
                    if r.code == 452:
                        refused = r
                        break
                    r.check(250)
                    send_rest(c, msg).check(250, "2.6.0")
                    acked[subject] = digest(msg)
                    c.quit()
            assert refused is not None, "the disk never reached High"
            refused.check(452, "4.3.1")
            assert len(acked) >= 4, acked
            assert "back pressure: DatabaseUsedSpace" in s.stderr()

            # 2. only full means full: High at 100 %; a filler leaves
            # less room than the next message needs, which then fails at
            # its end with nothing of it left
            s.configure(raw_extra=EXTRA, conn={"MaxMessageSize": "20MB"},
                        transport={"PercentageDatabaseDiskSpaceUsedHigh"
                                   "Threshold": 100,
                                   "ResourceMonitoringInterval": "0s"})
            s.signal(1)
            assert s.wait_stderr("reload done", 10)
            st = os.statvfs(fs)
            free = st.f_bavail * st.f_frsize
            filler = fs / "filler"
            with open(filler, "wb") as f:
                f.write(b"\0" * max(0, free - 2 * 1024 * 1024))
            files_before = s.body_files()
            with s.client(timeout=60) as c:
                r = start_message(c)
                r.check(250)
                msg = make_message("too-big", body="").encode() + \
                    body_of(6 * 1024 * 1024, 99)
                send_rest(c, msg).check(452, "4.3.1")
                c.quit()
            wait_for(lambda: s.body_files() == files_before, 10,
                     "the refused message's body file to go")
            assert "too-big" not in stored(s)

            # 3. nothing acknowledged is lost or damaged
            got = stored(s)
            for subject, d in acked.items():
                assert got.get(subject) == d, f"{subject} lost or damaged"

            # 4. space returns: acceptance resumes
            filler.unlink()
            with s.client(timeout=60) as c:
                msg = make_message("after", body="").encode() + \
                    body_of(1024 * 1024, 7)
                start_message(c).check(250)
                send_rest(c, msg).check(250, "2.6.0")
                c.quit()
            assert stored(s)["after"] == digest(msg)
            s.stop()
        finally:
            s.kill9()
