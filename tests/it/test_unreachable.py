"""The Unreachable queue (issue 11): mail for a recipient that no enabled
send connector matches -- none does, or the one that would is disabled --
is accepted from a relay client and kept, not bounced: it waits in
`Unreachable` until a connector appears (a reload routes it again at once)
or MessageExpirationTimeout returns it with a DSN, as in Exchange."""
import subprocess

from harness import SLUICECTL, running
from peers.fakesmtp import FakeSmtp
from test_delivery import RELAY, dsn_parts, events, mailbox, send, wait_for


def ctl(s, *args):
    return subprocess.run([str(SLUICECTL), "-c", str(s.conf_path), *args],
                          capture_output=True, text=True, timeout=30)


def connector(port, enabled=True):
    return f"""
[SendConnector Partner]
AddressSpaces = partner.test
DNSRoutingEnabled = false
SmartHosts = [127.0.0.1]:{port}
Enabled = {"true" if enabled else "false"}
"""


def test_no_connector_waits_in_unreachable(tmp_path):
    with running(tmp_path, conn=RELAY, raw_extra=connector(9),
                 transport={"TransientFailureRetryInterval": "1h"}) as s:
        # a relay client's RCPT is accepted (Exchange routes after the
        # message is received), and the mail is kept
        send(s, ["bob@nowhere.test"], "kept")
        assert wait_for(lambda: events(s, "DEFER"))
        (row,) = events(s, "DEFER")
        assert row["source"] == "ROUTING"
        assert "451 4.4.4 Unable to route" in row["recipient-status"]
        (r,) = s.recipients()
        assert r["status"] == 0 and r["next_hop"] == "Unreachable"
        assert "nowhere.test" in r["last_error"]
        assert events(s, "FAIL") == [] and mailbox(s, "alice") == []
        q = ctl(s, "queue").stdout.splitlines()
        row = [ln.split() for ln in q if ln.startswith("Unreachable ")]
        assert row and row[0][1] == "Unreachable" and row[0][3] == "1", q
        p = ctl(s, "messages", "Unreachable")
        assert "Identity         : Unreachable\\" in p.stdout, p.stdout
        p = ctl(s, "route", "--no-dns", "bob@nowhere.test")
        assert "Unreachable queue" in p.stdout, p.stdout


def test_reload_routes_it_when_the_connector_is_enabled(tmp_path):
    t = {"TransientFailureRetryInterval": "1h"}
    with FakeSmtp() as mx, running(tmp_path, conn=RELAY, transport=t,
                                   raw_extra=connector(mx.port, False)) as s:
        send(s, ["bob@partner.test"], "maintenance")
        assert wait_for(lambda: events(s, "DEFER"))
        assert s.recipients()[0]["next_hop"] == "Unreachable"
        assert mx.messages == []
        # the connector is back: the reload routes the mail now, not in
        # an hour
        s.configure(conn=RELAY, transport=t,
                    raw_extra=connector(mx.port, True))
        s.reload()
        (m,) = mx.wait_messages(1, timeout=20)
        assert m.rcpts == ["bob@partner.test"]
        assert wait_for(lambda: s.recipients()[0]["status"] == 1)
        assert mailbox(s, "alice") == []  # never bounced


def test_unreachable_expires_with_a_dsn(tmp_path):
    t = {"TransientFailureRetryInterval": "1s",
         "MessageExpirationTimeout": "5s"}
    with running(tmp_path, conn=RELAY, transport=t,
                 raw_extra=connector(9)) as s:
        send(s, ["bob@nowhere.test"], "too long")
        assert wait_for(lambda: mailbox(s, "alice"), timeout=30)
        text, fields, _ = dsn_parts(mailbox(s, "alice")[0])
        f = [f for f in fields if "Final-Recipient" in f][0]
        assert f["Action"] == "failed" and f["Status"] == "4.4.4"
        assert "Unable to route" in " ".join(f["Diagnostic-Code"].split())
        assert s.recipients()[0]["status"] == 2
        # causal order: the EXPIRE row, then the DSN row it caused
        order = [e["event-id"] for e in events(s)
                 if e["event-id"] in ("EXPIRE", "DSN")]
        assert order == ["EXPIRE", "DSN"], order
