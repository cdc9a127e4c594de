"""Delivery through send connectors (issue 4): sluiced relays queued mail
to real next hops on loopback -- the fake SMTP server (tests/it/peers/
fakesmtp.py), Postfix's smtp-sink -- and settles every recipient:
delivered, deferred and retried, or returned with an RFC 3464 DSN."""
import email
import os
import socket
import subprocess
import time

import pytest

from harness import SLUICECTL, Client, make_message, running
from peers.fakesmtp import CountingSink, FakeSmtp, server_context

RELAY = {"PermissionGroups": "ExchangeServers",
         "AuthMechanism": "ExternalAuthoritative"}
FAST = {"TransientFailureRetryInterval": "1s",
        "TransientFailureRetryAttempts": 3,
        "OutboundConnectionFailureRetryInterval": "2s"}


def smarthost(port, name="Out", spaces="*", extra=""):
    return f"""
[SendConnector {name}]
AddressSpaces = {spaces}
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:{port}
Fqdn = out.sluice.test
{extra}
"""


def send(s, rcpts, subject="hello", sender="alice@example.test",
         body="Hello.\r\n", extra_mail=""):
    with Client(s.port) as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{sender}>{extra_mail}").check(250)
        for r in rcpts:
            c.cmd(f"RCPT TO:<{r}>").check(250)
        c.cmd("DATA").check(354)
        c.send(make_message(subject, body).encode() + b".\r\n")
        return c.reply().check(250)


def wait_for(pred, timeout=20.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def pending(s):
    return sum(1 for r in s.recipients() if r["status"] == 0)


def states(s):
    return {r["addr"]: (r["status"], r["last_error"], r["attempts"])
            for r in s.recipients()}


def events(s, name=None):
    """Tracking log rows as dicts keyed by the header's field names."""
    headers, rows = s.tracklog()
    fields = [h for h in headers if h.startswith("#Fields:")]
    names = fields[0].split(":", 1)[1].strip().split(",") if fields else []
    out = [dict(zip(names, r)) for r in rows]
    return [e for e in out if name is None or e.get("event-id") == name]


def test_relay_to_smarthost_pipelined_bdat(tmp_path):
    with FakeSmtp(capabilities=("PIPELINING", "CHUNKING", "8BITMIME",
                                "ENHANCEDSTATUSCODES")) as mx, \
            running(tmp_path, conn=RELAY, raw_extra=smarthost(mx.port)) as s:
        send(s, ["bob@remote.test", "carol@remote.test"], "one")
        (m,) = mx.wait_messages(1, timeout=20)
        assert m.mail_from == "alice@example.test"
        assert sorted(m.rcpts) == ["bob@remote.test", "carol@remote.test"]
        assert m.via == "BDAT"
        assert b"Subject: one" in m.data
        assert not m.bare_line_endings
        sess = mx.sessions[0]
        assert sess.verbs()[0] == "EHLO"
        assert sess.commands[0].line.startswith(b"EHLO out.sluice.test")
        # MAIL, both RCPTs and BDAT left in one write
        batches = sess.batches()
        assert ["MAIL", "RCPT", "RCPT", "BDAT"] in batches
        assert wait_for(lambda: pending(s) == 0)
        st = states(s)
        assert st["bob@remote.test"][0] == 1
        assert wait_for(lambda: len(events(s, "SEND")) == 2)
