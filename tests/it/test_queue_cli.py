"""`sluicectl queue` and `sluicectl messages [QUEUE]` against the running
daemon, over its control socket (Get-Queue and Get-Message): queues are
named after the next hop of each waiting recipient."""
import os
import stat
import subprocess

from harness import SLUICECTL, Client, make_message, running

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


def ctl(s, *args):
    return subprocess.run([str(SLUICECTL), "-c", str(s.conf_path), *args],
                          capture_output=True, text=True, timeout=30)


def send(s, rcpts, subject):
    with Client(s.port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<sender@example.org>").check(250)
        for r in rcpts:
            c.cmd(f"RCPT TO:<{r}>").check(250)
        c.cmd("DATA").check(354)
        c.send(make_message(subject).encode() + b".\r\n")
        c.reply().check(250)


def test_queue_and_messages(tmp_path):
    # DNS that never answers (a dead loopback port) keeps remote.example's
    # mail waiting in its queue instead of bouncing on a failed lookup.
    with running(tmp_path, raw_extra=EXTRA,
                 transport={"Resolver": "127.0.0.1@9"},
                 conn={"PermissionGroups": "ExchangeServers",
                       "AuthMechanism": "ExternalAuthoritative"}) as s:
        sock = s.dir / "ctl.sock"
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        send(s, ["a@relay.test", "b@relay.test"], "one")
        send(s, ["x@remote.example", "y@remote.example", "a@relay.test"],
             "two")
        p = ctl(s, "queue")
        assert p.returncode == 0, p.stderr
        rows = {line.split()[0]: line.split() for line in
                p.stdout.splitlines()[1:]}
        assert rows["Relay"][1] == "SmartHostConnectorDelivery"
        assert rows["Relay"][3] == "2"  # two messages
        assert rows["remote.example"][1] == "DnsConnectorDelivery"
        assert rows["remote.example"][3] == "1"
        p = ctl(s, "messages", "remote.example")
        assert p.returncode == 0
        assert p.stdout.count("Identity      : remote.example\\") == 2
        assert "FromAddress   : sender@example.org" in p.stdout
        p = ctl(s, "messages")
        assert p.stdout.count("Identity      :") == 5
    # without a daemon: a clear error, not a hang
    p = ctl(s, "queue")
    assert p.returncode == 1 and "is sluiced running" in p.stderr
