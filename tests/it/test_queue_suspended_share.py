"""A suspended queue must not starve the others.  The queue manager holds
at most 8,192 recipients in flight across all queues; a suspended queue
used to keep its waiting recipients there, so that once one held about
that many, no other queue was given new mail until it was resumed.  Here
a suspended queue gets 8,400 recipients, then a message to another queue
must still go out; after the resume every one of the 8,400 is delivered
exactly once."""
import subprocess
import time

from harness import SLUICECTL, Client, eventually, make_message, running
from peers.fakesmtp import CountingSink

PER_MESSAGE = 4200  # two messages: 8,400 recipients, past the 8,192


def ctl(s, *args):
    return subprocess.run([str(SLUICECTL), "-c", str(s.conf_path), *args],
                          capture_output=True, text=True, timeout=30)


def send(s, rcpts, subject):
    """One transaction, RCPTs pipelined (thousands of round trips under
    the sanitizers would take long)."""
    with Client(s.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<sender@example.org>").check(250)
        c.send("".join(f"RCPT TO:<{r}>\r\n" for r in rcpts).encode())
        for reply in c.replies(len(rcpts), timeout=60):
            reply.check(250)
        c.cmd("DATA").check(354)
        c.send(make_message(subject).encode() + b".\r\n")
        c.reply(timeout=60).check(250)


def test_suspended_queue_leaves_room_for_the_others(tmp_path):
    with CountingSink() as held, CountingSink() as other:
        extra = f"""
[AcceptedDomain held.test]
DomainType = InternalRelay

[AcceptedDomain other.test]
DomainType = InternalRelay

[SendConnector Held]
AddressSpaces = held.test
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:{held.port}

[SendConnector Other]
AddressSpaces = other.test
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:{other.port}
"""
        conn = {"PermissionGroups": "ExchangeServers",
                "AuthMechanism": "ExternalAuthoritative",
                "MaxRecipientsPerMessage": "5000"}
        with running(tmp_path, raw_extra=extra, conn=conn) as s:
            assert ctl(s, "suspend", "Held").returncode == 0
            rcpts = [f"r{i}@held.test" for i in range(2 * PER_MESSAGE)]
            send(s, rcpts[:PER_MESSAGE], "held one")
            send(s, rcpts[PER_MESSAGE:], "held two")
            send(s, ["someone@other.test"], "not held")
            eventually(lambda: other.delivered()["someone@other.test"] == 1,
                       timeout=30,
                       what="mail to another queue while Held is suspended")
            assert sum(held.delivered().values()) == 0
            p = ctl(s, "queue", "--queue", "Held")
            assert p.returncode == 0 and "Suspended" in p.stdout, p
            assert ctl(s, "resume", "Held").returncode == 0
            eventually(lambda: sum(held.delivered().values()) >= len(rcpts),
                       timeout=120, what="the held mail after the resume")
            got = held.delivered()
            assert set(got) == set(rcpts)
            assert max(got.values()) == 1, "a recipient arrived twice"


def test_suspending_local_holds_mailbox_delivery(tmp_path):
    """`suspend Local` (Suspend-Queue on the mailbox queue) used to be
    accepted and do nothing: mail went on into the mailboxes.  Now it
    waits in the queue until `resume`, and is then delivered once."""
    mail = tmp_path / "mail"
    extra = f"\n[AcceptedDomain local.test]\nMailboxes = {mail}/%d/%u\n"
    with running(tmp_path / "d", raw_extra=extra) as s:
        assert ctl(s, "suspend", "Local").returncode == 0
        with Client(s.port) as c:
            c.send_message("sender@remote.example", ["bob@local.test"],
                           make_message("held")).check(250)
        new = mail / "local.test" / "bob" / "new"
        # the queue manager looks four times a second: a few looks
        # pass, and the mail stays queued, not delivered
        eventually(lambda: [r["status"] for r in s.recipients()] == [0],
                   20, "the recipient queued")
        time.sleep(1.5)
        assert not new.is_dir() or not list(new.iterdir())
        p = ctl(s, "queue")
        assert "Local" in p.stdout and "Suspended" in p.stdout, p.stdout
        assert ctl(s, "resume", "Local").returncode == 0
        eventually(lambda: new.is_dir() and len(list(new.iterdir())) == 1,
                   20, "delivered after the resume")
        eventually(lambda: [r["status"] for r in s.recipients()] == [1],
                   20, "recorded delivered")
        assert len(list(new.iterdir())) == 1
