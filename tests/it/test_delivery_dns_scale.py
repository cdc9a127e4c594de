"""Mail to many domains (issue 19): 20,000 recipients over 5,000 domains,
each looked up by MX in a private unbound that answers at once, delivered
to a counting smtp-sink.  The resolver has at most 1,024 queries out at
once (RESOLVER_QUERIES_MAX); the 5,000 destinations need about 15,000
(MX, then AAAA and A of the MX host), so most wait their turn in the
resolver's queue.  None may be deferred: a limit of Sluice's own queues a
look-up, it never defers mail.  Before the queue, the look-ups past the
cap failed and about one recipient in ten was deferred with "DNS lookup
... not started"."""
import pytest

from harness import Client, dot_stuff, free_port, make_message, running
from peers.postfix import SmtpSink
from peers.unbound import Unbound
from test_delivery import RELAY, events, pending, wait_for

DOMAINS = 5000
PER_DOMAIN = 4
PER_MESSAGE = 200  # MaxRecipientsPerMessage's default
SINK = "127.0.0.2"


def records():
    return [f"d{i}.many.test. MX 10 mx.many.test." for i in range(DOMAINS)] \
        + [f"mx.many.test. A {SINK}"]


def connector(port):
    return f"""
[SendConnector Internet]
AddressSpaces = *
Port = {port}
Fqdn = out.sluice.test
"""


def recipients():
    """Every domain PER_DOMAIN times; no message names a domain twice."""
    return [f"u{i // DOMAINS}@d{i % DOMAINS}.many.test"
            for i in range(DOMAINS * PER_DOMAIN)]


def submit(s, rcpts):
    with Client(s.port) as c:
        c.ehlo()
        for k in range(0, len(rcpts), PER_MESSAGE):
            c.cmd("MAIL FROM:<alice@example.test>").check(250)
            for r in rcpts[k:k + PER_MESSAGE]:
                c.send(f"RCPT TO:<{r}>\r\n".encode())
            for _ in rcpts[k:k + PER_MESSAGE]:
                c.reply().check(250)
            c.cmd("DATA").check(354)
            c.send(dot_stuff(make_message(f"batch {k}").encode()) +
                   b".\r\n")
            c.reply().check(250)


@pytest.mark.timeout_s(900)
def test_many_domains_none_deferred_by_the_resolver_cap(tmp_path):
    port = free_port()
    rcpts = recipients()
    with Unbound(zones=["many.test"], records=records()) as dns, \
            SmtpSink(port, host=SINK, backlog=1024) as sink, \
            running(tmp_path, conn=RELAY, transport={
                "Resolver": dns.spec,
                "TransientFailureRetryInterval": "1h"},
                raw_extra=connector(port)) as s:
        submit(s, rcpts)
        # one transaction per message and domain; a deferral ends the
        # wait at once (it would be retried only in an hour)
        wait_for(lambda: sink.count() >= len(rcpts) or events(s, "DEFER"),
                 timeout=600, step=1.0)
        assert events(s, "DEFER") == []
        assert sink.count() >= len(rcpts), sink.counters()
        assert wait_for(lambda: pending(s) == 0, timeout=120, step=1.0)
        states = [r["status"] for r in s.recipients()]
        assert len(states) == len(rcpts)
        assert states.count(1) == len(rcpts), \
            {st: states.count(st) for st in set(states)}
        assert events(s, "DEFER") == []
        assert sink.count() == len(rcpts)
