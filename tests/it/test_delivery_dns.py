"""Delivery by MX (DNSRoutingEnabled): sluiced looks the next hops up in a
private unbound on loopback (peers/unbound.py) and delivers to fake
servers on 127.0.0.x, in preference order, falling back to the next MX
when one is down; a null MX and a domain that does not exist bounce at
once, a DNS failure defers."""
from harness import free_port, running
from peers.fakesmtp import FakeSmtp
from peers.unbound import Unbound
from test_delivery import (RELAY, dsn_parts, events, mailbox, pending, send,
                           states, wait_for)

ZONES = ["mx.test", "nullmx.test", "gone.test"]


def records():
    return [
        "mx.test. MX 10 mx1.mx.test.",
        "mx.test. MX 20 mx2.mx.test.",
        "mx1.mx.test. A 127.0.0.2",
        "mx2.mx.test. A 127.0.0.3",
        "backup.mx.test. MX 10 down.mx.test.",
        "backup.mx.test. MX 20 mx2.mx.test.",
        "down.mx.test. A 127.0.0.4",
        "nullmx.test. MX 0 .",
    ]


def dns_connector(port):
    return f"""
[SendConnector Internet]
AddressSpaces = *
Port = {port}
Fqdn = out.sluice.test
"""


def test_mx_preference_and_fallback(tmp_path):
    port = free_port()
    with Unbound(zones=ZONES, records=records(),
                 servfail=["broken.test"]) as dns, \
            FakeSmtp(host="127.0.0.2", port=port) as mx1, \
            FakeSmtp(host="127.0.0.3", port=port) as mx2, \
            running(tmp_path, conn=RELAY, transport={
                "Resolver": dns.spec,
                "TransientFailureRetryInterval": "1h"},
                raw_extra=dns_connector(port)) as s:
        send(s, ["bob@mx.test"], "by mx")
        (m,) = mx1.wait_messages(1, timeout=20)
        assert m.rcpts == ["bob@mx.test"] and mx2.messages == []
        # backup.mx.test: the preferred host is down (nothing on .4)
        send(s, ["carol@backup.mx.test"], "fallback")
        (m,) = mx2.wait_messages(1, timeout=20)
        assert m.rcpts == ["carol@backup.mx.test"]
        assert wait_for(lambda: pending(s) == 0)
        assert wait_for(lambda: len(events(s, "SEND")) == 2)
        hops = {e["recipient-address"]: e["server-hostname"]
                for e in events(s, "SEND")}
        assert hops == {"bob@mx.test": "mx1.mx.test",
                        "carol@backup.mx.test": "mx2.mx.test"}


def test_null_mx_and_nxdomain_bounce_dns_failure_defers(tmp_path):
    port = free_port()
    with Unbound(zones=ZONES, records=records(),
                 servfail=["broken.test"]) as dns, \
            running(tmp_path, conn=RELAY, transport={
                "Resolver": dns.spec,
                "TransientFailureRetryInterval": "1h"},
                raw_extra=dns_connector(port)) as s:
        send(s, ["a@nullmx.test", "b@nx.gone.test", "c@broken.test"],
             "three fates")
        assert wait_for(lambda: len(events(s, "FAIL")) == 2 and
                        events(s, "DEFER"), timeout=30)
        st = states(s)
        assert st["a@nullmx.test"][0] == 2
        assert "null MX" in st["a@nullmx.test"][1]
        assert st["b@nx.gone.test"][0] == 2
        assert st["c@broken.test"][0] == 0
        assert wait_for(lambda: mailbox(s, "alice"))
        statuses = set()
        for raw in mailbox(s, "alice"):
            _, fields, _ = dsn_parts(raw)
            statuses |= {f["Status"] for f in fields
                         if "Final-Recipient" in f}
        assert statuses == {"5.1.10", "5.1.2"}
