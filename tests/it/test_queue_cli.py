"""The queue viewer in sluicectl against the running daemon, over its
control socket, as an Exchange administrator uses it: `queue` (Get-Queue),
`messages` with filters (Get-Message -Filter), identities that round-trip
into every command that takes one, unknown names refused, `retry`
(Retry-Queue) counting what it retried, Suspend-/Resume-Message,
Remove-Message -WithNDR, Export-Message and the SafetyNet view."""
import email
import os
import re
import stat
import subprocess

from harness import (SLUICECTL, Client, eventually, free_port, make_message,
                     running)
from peers.fakesmtp import FakeSmtp

EXTRA = """
[AcceptedDomain relay.test]
DomainType = InternalRelay

[SendConnector Internet]
AddressSpaces = *

[SendConnector Relay]
AddressSpaces = relay.test
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:9
"""

RELAY = {"PermissionGroups": "ExchangeServers",
         "AuthMechanism": "ExternalAuthoritative"}


def ctl(s, *args):
    return subprocess.run([str(SLUICECTL), "-c", str(s.conf_path), *args],
                          capture_output=True, text=True, timeout=30)


def send(s, rcpts, subject, sender="sender@example.org", headers=""):
    with Client(s.port) as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{sender}>").check(250)
        for r in rcpts:
            c.cmd(f"RCPT TO:<{r}>").check(250)
        c.cmd("DATA").check(354)
        c.send(make_message(subject, extra_headers=headers).encode() +
               b".\r\n")
        reply = c.reply().check(250)
    return re.search(r"<([^>]+)>", reply.text).group(1)


def entries(text):
    """`messages` output as dicts (Format-List blocks)."""
    out = []
    for block in text.strip().split("\n\n"):
        if not block.strip():
            continue
        d = {}
        for ln in block.splitlines():
            k, _, v = ln.partition(":")
            d[k.strip()] = v.strip()
        out.append(d)
    return out


def test_queue_and_messages(tmp_path):
    # DNS that never answers (a dead loopback port) keeps remote.example's
    # mail waiting in its queue instead of bouncing on a failed lookup.
    with running(tmp_path, raw_extra=EXTRA,
                 transport={"Resolver": "127.0.0.1@9"}, conn=RELAY) as s:
        sock = s.dir / "ctl.sock"
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        one = send(s, ["a@relay.test", "b@relay.test"], "one")
        two = send(s, ["x@remote.example", "y@remote.example",
                       "a@relay.test"], "two")
        p = ctl(s, "queue")
        assert p.returncode == 0, p.stderr
        rows = {line.split()[0]: line.split() for line in
                p.stdout.splitlines()[1:]}
        assert rows["Relay"][1] == "SmartHostConnectorDelivery"
        assert rows["Relay"][3] == "2"  # two messages
        assert rows["remote.example"][1] == "DnsConnectorDelivery"
        assert rows["remote.example"][3] == "1"
        # one entry per message and queue, its recipients there
        p = ctl(s, "messages", "remote.example")
        assert p.returncode == 0
        (e,) = entries(p.stdout)
        assert e["Identity"] == f"remote.example\\{two}"
        assert e["Recipients"] == "x@remote.example; y@remote.example"
        assert e["FromAddress"] == "sender@example.org"
        assert e["Subject"] == "two"
        assert e["InternetMessageId"] == "<two@client.example>"
        assert e["SourceIP"] == "127.0.0.1"
        all_ = entries(ctl(s, "messages").stdout)
        assert sorted(x["Identity"] for x in all_) == sorted(
            [f"Relay\\{one}", f"Relay\\{two}", f"remote.example\\{two}"])
        # the Exchange names of the same commands
        assert ctl(s, "get-message", "--queue", "Relay").stdout.count(
            "Identity") == 2
        assert ctl(s, "get-queue").stdout == ctl(s, "queue").stdout
    # without a daemon: a clear error, not a hang
    p = ctl(s, "queue")
    assert p.returncode == 1 and "is sluiced running" in p.stderr


def test_filters(tmp_path):
    with running(tmp_path, raw_extra=EXTRA,
                 transport={"Resolver": "127.0.0.1@9"}, conn=RELAY) as s:
        assert ctl(s, "suspend", "Relay").returncode == 0  # all Ready
        a = send(s, ["a@relay.test"], "from alice", sender="alice@x.test")
        b = send(s, ["b@relay.test", "c@remote.example"], "from bob",
                 sender="bob@y.test")
        ids = lambda *args: sorted(  # noqa: E731
            e["Identity"] for e in entries(ctl(s, "messages", *args).stdout))
        assert ids("--sender", "alice@x.test") == [f"Relay\\{a}"]
        assert ids("--sender", "*@Y.TEST") == [
            f"Relay\\{b}", f"remote.example\\{b}"]
        assert ids("--recipient", "c@*") == [f"remote.example\\{b}"]
        assert ids("--recipient", "*@relay.test", "--sender", "bob@*") == [
            f"Relay\\{b}"]
        assert ids("--queue", "relay", "--status", "ready") == sorted(
            [f"Relay\\{a}", f"Relay\\{b}"])
        assert ids("--status", "Suspended") == []
        assert ids("--sender", "nobody@*") == []
        p = ctl(s, "messages", "--colour", "red")
        assert p.returncode == 2 and "usage" in p.stderr


def test_identities_round_trip(tmp_path):
    with running(tmp_path, raw_extra=EXTRA,
                 transport={"Resolver": "127.0.0.1@9",
                            "TransientFailureRetryInterval": "1h"},
                 conn=RELAY) as s:
        assert ctl(s, "suspend", "Relay").returncode == 0
        qid = send(s, ["a@relay.test", "x@remote.example"], "round trip")
        shown = [e["Identity"] for e in entries(ctl(s, "messages").stdout)]
        assert sorted(shown) == sorted(
            [f"Relay\\{qid}", f"remote.example\\{qid}"])
        relay = f"Relay\\{qid}"
        # whatever messages printed is accepted by every command
        p = ctl(s, "suspend", relay)
        assert p.returncode == 0 and "suspended (1 recipient)" in p.stdout, p
        st = {e["Identity"]: e["Status"]
              for e in entries(ctl(s, "messages").stdout)}
        assert st[relay] == "Suspended"
        assert st[f"remote.example\\{qid}"] != "Suspended"
        p = ctl(s, "resume", relay)
        assert p.returncode == 0 and "resumed" in p.stdout, p
        # the bare id: every queue
        p = ctl(s, "suspend", qid)
        assert p.returncode == 0 and "(2 recipients)" in p.stdout, p
        assert ctl(s, "resume", qid).returncode == 0
        # Exchange's Server\Queue\Id works too
        p = ctl(s, "suspend-message", f"mx1\\{relay}")
        assert p.returncode == 0, p
        assert ctl(s, "resume-message", relay).returncode == 0
        p = ctl(s, "export", relay)
        assert p.returncode == 0 and "Subject: round trip" in p.stdout
        p = ctl(s, "remove", relay)
        assert p.returncode == 0 and "removed (1 recipient)" in p.stdout, p
        left = [e["Identity"] for e in entries(ctl(s, "messages").stdout)]
        assert left == [f"remote.example\\{qid}"]
        # unknown names are errors, with a non-zero exit
        for args in (["suspend", "nosuchqueue"], ["resume", "nosuchqueue"],
                     ["suspend", "no.such.queue"], ["retry", "nosuchqueue"],
                     ["suspend", f"Relay\\{qid}"],  # gone from Relay
                     ["remove", f"Elsewhere\\{qid}"],
                     ["remove", "NOSUCHID"], ["export", "NOSUCHID"],
                     ["resume", "Relay\\"]):
            p = ctl(s, *args)
            assert p.returncode == 1 and p.stdout.startswith("error: "), \
                (args, p)
        p = ctl(s, "resume", f"remote.example\\{qid}")
        assert p.returncode == 1 and "not suspended" in p.stdout


def test_retry_says_how_many(tmp_path):
    with running(tmp_path, raw_extra=EXTRA,
                 transport={"Resolver": "127.0.0.1@9",
                            "TransientFailureRetryInterval": "1h"},
                 conn=RELAY) as s:
        # the dead smart host defers the first; the others wait for the
        # queue's retry time: all three are retried, not the suspended one
        for n in range(3):
            send(s, [f"r{n}@relay.test"], f"retry {n}")
        assert eventually(lambda: any(
            r["attempts"] >= 1 for r in s.recipients()))
        suspended = send(s, ["held@relay.test"], "held")
        assert ctl(s, "suspend", suspended).returncode == 0
        p = ctl(s, "retry", "Relay")
        assert p.returncode == 0 and "3 messages retried" in p.stdout, p
        p = ctl(s, "retry-queue", "relay")
        assert p.returncode == 0 and "messages retried" in p.stdout, p


def test_suspended_message_waits_until_resumed(tmp_path):
    with FakeSmtp() as mx, running(
            tmp_path, conn=RELAY,
            raw_extra=f"""
[SendConnector Out]
AddressSpaces = *
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:{mx.port}
""") as s:
        assert ctl(s, "suspend", "Out").returncode == 0
        held = send(s, ["held@remote.test"], "held")
        free = send(s, ["free@remote.test"], "free")
        p = ctl(s, "suspend", f"Out\\{held}")
        assert p.returncode == 0, p
        assert ctl(s, "resume", "Out").returncode == 0
        mx.wait_messages(1, timeout=20)
        assert eventually(lambda: [r["status"] for r in s.recipients()
                                 if r["addr"] == "free@remote.test"] == [1])
        # the queue went on; the suspended message did not go with it
        assert [m.rcpts for m in mx.messages] == [["free@remote.test"]]
        (e,) = entries(ctl(s, "messages", "--status", "Suspended").stdout)
        assert e["Identity"] == f"Out\\{held}"
        assert ctl(s, "resume", held).returncode == 0
        mx.wait_messages(2, timeout=20)
        assert sorted(r for m in mx.messages for r in m.rcpts) == [
            "free@remote.test", "held@remote.test"]
        del free


def test_remove_with_ndr(tmp_path):
    dead = free_port()
    with running(tmp_path, conn=RELAY,
                 transport={"TransientFailureRetryInterval": "1h"},
                 raw_extra=f"""
[SendConnector Out]
AddressSpaces = *
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:{dead}
""") as s:
        qid = send(s, ["bob@remote.test"], "unwanted",
                   sender="alice@example.test")
        assert eventually(lambda: s.recipients()[0]["attempts"] >= 1)
        p = ctl(s, "remove", "--with-ndr", f"Out\\{qid}")
        assert p.returncode == 0 and "non-delivery report" in p.stdout, p
        assert s.message(qid)["rcpts"][0]["status"] == 2
        # the sender, a local mailbox, gets the notice
        new = s.queue_dir / "mailboxes" / "example.test" / "alice" / "new"
        assert eventually(lambda: new.is_dir() and list(new.iterdir()))
        dsn = email.message_from_bytes(next(new.iterdir()).read_bytes())
        status = dsn.get_payload()[1].get_payload()
        f = [dict(b.items()) for b in status if "Final-Recipient" in b][0]
        assert f["Action"] == "failed"
        assert "deleted by administrative action" in \
            " ".join(f["Diagnostic-Code"].split())
        assert dsn["Subject"] == "Undeliverable: unwanted"
        # the tracking log says who did it
        fails = s.track_events("FAIL")
        assert [(e["source"], e["internal-message-id"]) for e in fails] == \
            [("ADMIN", qid)]


def test_export_and_safety_net(tmp_path):
    out = tmp_path / "exported.eml"
    with running(tmp_path / "d") as s:
        qid = send(s, ["u@example.test"], "kept", sender="a@sender.example")
        assert eventually(lambda: [r["status"] for r in s.recipients()] == [1])
        (e,) = entries(ctl(s, "messages", "SafetyNet").stdout)
        assert e["Identity"] == f"SafetyNet\\{qid}"
        assert e["Status"] == "Delivered" and e["Subject"] == "kept"
        assert e["DateFinished"] != "-"
        assert entries(ctl(s, "messages", "--status", "delivered").stdout)
        assert entries(ctl(s, "messages").stdout) == []  # nothing pending
        stored = s.message(qid)["body"]
        # Export-Message: the stored bytes, to stdout or to a file
        p = subprocess.run([str(SLUICECTL), "-c", str(s.conf_path),
                            "export", f"SafetyNet\\{qid}"],
                           capture_output=True, timeout=30)
        assert p.returncode == 0 and p.stdout == stored
        p = ctl(s, "export-message", qid, "-o", out)
        assert p.returncode == 0, p
        assert out.read_bytes() == stored
        assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
        # a finished message cannot be suspended or removed
        p = ctl(s, "remove", qid)
        assert p.returncode == 1 and "no pending message" in p.stdout
