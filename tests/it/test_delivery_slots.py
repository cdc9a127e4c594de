"""Outbound slots (issue 19): a connection parked after its last message
gives its slot at once to a destination that needs one when
MaxOutboundConnections is reached, the least recently parked first, and
the cap is never exceeded.  The daemon parks connections for 300 s here
(SLUICE_TEST_PARK_SECONDS, a hook of the test build): without the slots
giving way, the waiting destinations would wait that long.

Each destination is a smart-host connector for one domain, with a fake
next hop of its own on 127.0.0.x.  Everything is asserted from what was
logged and in which order, never from how long it took: a connection that
gives way writes "its slot goes to queue Q" to the SmtpSend protocol log
before its QUIT, where one that outlived its parking time writes "parked
for 5 s"."""
import contextlib

from harness import Client, dot_stuff, make_message, running
from peers.fakesmtp import FakeSmtp
from test_delivery import RELAY, pending, wait_for

YIELD = "its slot goes to queue "
PARKED_TOO_LONG = "parked for "
PARK = {"SLUICE_TEST_PARK_SECONDS": "300"}


@contextlib.contextmanager
def peers_on(hosts):
    """A fake next hop on each address."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(FakeSmtp(host=h)) for h in hosts]


def connectors(peers):
    """One smart-host connector per domain dN.test, to its own peer."""
    out = ""
    for n, mx in enumerate(peers, 1):
        out += f"""
[SendConnector D{n}]
AddressSpaces = d{n}.test
DNSRoutingEnabled = false
SmartHosts = [{mx.host}]:{mx.port}
Fqdn = out.sluice.test
ProtocolLoggingLevel = Verbose
"""
    return out


def send_each(s, rcpts):
    """One message per recipient, all over one connection."""
    with Client(s.port) as c:
        c.ehlo()
        for r in rcpts:
            c.cmd("MAIL FROM:<alice@example.test>").check(250)
            c.cmd(f"RCPT TO:<{r}>").check(250)
            c.cmd("DATA").check(354)
            c.send(dot_stuff(make_message(f"to {r}").encode()) + b".\r\n")
            c.reply().check(250)


def send_rows(s):
    """SmtpSend protocol log rows, in the order they were written."""
    return s.read_csv_log(sorted(
        (s.log_dir / "ProtocolLog" / "SmtpSend").glob("*.LOG")))[1]


def sessions(rows):
    """session id -> (connector, [row indexes]) in log order."""
    out = {}
    for i, r in enumerate(rows):
        out.setdefault(r[2], (r[1], []))[1].append(i)
    return out


def most_open(rows):
    """The most sessions open at once: a session is open from its first
    row to its last (its QUIT's reply or its close)."""
    last = {r[2]: i for i, r in enumerate(rows)}
    open_now, most = set(), 0
    for i, r in enumerate(rows):
        open_now.add(r[2])
        most = max(most, len(open_now))
        if last[r[2]] == i:
            open_now.discard(r[2])
    return most


def notes(rows, text):
    """(row index, session, connector, note) of '*' rows containing text."""
    return [(i, r[2], r[1], r[7]) for i, r in enumerate(rows)
            if r[6] == "*" and text in r[7]]


def test_parked_connections_give_way_to_waiting_destinations(tmp_path):
    with peers_on([f"127.0.0.{n}" for n in range(2, 7)]) as peers, \
            running(tmp_path, conn=RELAY, env=PARK,
                    transport={"MaxOutboundConnections": 2},
                    raw_extra=connectors(peers)) as s:
        send_each(s, [f"bob@d{n}.test" for n in range(1, 6)])
        assert wait_for(lambda: pending(s) == 0, timeout=60)
        for n, mx in enumerate(peers, 1):
            (m,) = mx.wait_messages(1, timeout=20)
            assert m.rcpts == [f"bob@d{n}.test"]
        rows = send_rows(s)
        # 5 destinations, 2 slots: three connections had to give way,
        # each to a different destination that was waiting
        gave = notes(rows, YIELD)
        assert len(gave) == 3, gave
        assert len({g[1] for g in gave}) == 3
        assert len({g[3].split(YIELD)[1].split()[0] for g in gave}) == 3
        assert "MaxOutboundConnections 2 reached" in gave[0][3]
        # none of them waited for its parking time to run out
        assert not notes(rows, PARKED_TOO_LONG)
        # and the cap held: never more than 2 connections at once
        assert most_open(rows) == 2
        # the peers saw the QUIT of every connection that gave way
        quitters = {g[2] for g in gave}
        for n, mx in enumerate(peers, 1):
            if f"D{n}" in quitters:
                mx.wait_closed(1, timeout=20)
                assert "QUIT" in mx.sessions[0].verbs()


def test_least_recently_parked_gives_way_first(tmp_path):
    """Two connections parked, one destination waiting: the one parked
    first (its message's last reply came first) gives way, the other
    stays; a second waiting destination takes the other one's slot."""
    with peers_on([f"127.0.0.{n}" for n in range(2, 6)]) as peers, \
            running(tmp_path, conn=RELAY, env=PARK,
                    transport={"MaxOutboundConnections": 2},
                    raw_extra=connectors(peers)) as s:
        send_each(s, ["bob@d1.test", "bob@d2.test"])
        assert wait_for(lambda: pending(s) == 0, timeout=60)
        peers[0].wait_messages(1, timeout=20)
        peers[1].wait_messages(1, timeout=20)
        rows = send_rows(s)
        assert not notes(rows, YIELD)
        # which of the two parked first: the order of the replies
        # that ended their messages (the 250 after the content)
        ends = [(i, r[1]) for i, r in enumerate(rows)
                if r[6] == "<" and r[7].startswith("250") and
                "queued" in r[7].lower()]
        assert len(ends) == 2, rows
        first, second = ends[0][1], ends[1][1]
        send_each(s, ["bob@d3.test"])
        assert wait_for(lambda: pending(s) == 0, timeout=60)
        peers[2].wait_messages(1, timeout=20)
        (gave,) = notes(send_rows(s), YIELD)
        assert gave[2] == first and "queue D3" in gave[3]
        send_each(s, ["bob@d4.test"])
        assert wait_for(lambda: pending(s) == 0, timeout=60)
        peers[3].wait_messages(1, timeout=20)
        gave = notes(send_rows(s), YIELD)
        assert [g[2] for g in gave] == [first, second]
        assert not notes(send_rows(s), PARKED_TOO_LONG)
